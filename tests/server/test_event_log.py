"""The event lines of the server's log (EventLog): the same lines logging gave, written directly."""
from __future__ import annotations

import io
import json
import logging

import pytest

from voiceserver.core.events import EventBus, EventLog, ServerEventKind

pytestmark = pytest.mark.unit

FORMAT = "%(asctime)s %(levelname)s %(message)s"   # `voiceboard serve`'s log format


def logging_line(ev, at: float) -> str:
    """The line `log.info("event %s", json)` gives under the serve format at time `at`."""
    rec = logging.LogRecord("voiceserver", logging.INFO, __file__, 1, "event %s",
                            (json.dumps(ev.as_dict(), default=str),), None)
    rec.created, rec.msecs = at, int((at - int(at)) * 1000)
    return logging.Formatter(FORMAT).format(rec)


@pytest.mark.parametrize("at", [1764745541.0, 1764745541.123, 1764745541.9995, 1764745599.5])
def test_a_line_is_what_the_logging_format_gave(at):
    bus = EventBus()
    out = io.StringIO()
    bus.subscribe(EventLog(out, clock=lambda: at))
    ev = bus.publish(42, ServerEventKind.CALL_DIGIT, chan=3, call_id="vs1-r2-c000007", digit="*", masked=True)
    assert out.getvalue() == logging_line(ev, at) + "\n"


def test_each_event_is_one_line_of_json_after_its_time():
    bus = EventBus()
    out = io.StringIO()
    times = iter([100.0, 100.5, 101.25])
    bus.subscribe(EventLog(out, clock=lambda: next(times)))
    bus.publish(1, ServerEventKind.CALL_START, chan=0, call_id="a", caller="01088886666", note="two\nlines")
    bus.publish(2, ServerEventKind.CALL_DIGIT, chan=0, call_id="a", digit="5", masked=False)
    bus.publish(3, ServerEventKind.CALL_END, chan=0, call_id="a", cause="caller hung up")
    lines = out.getvalue().splitlines()
    assert len(lines) == 3        # a newline inside a value stays escaped inside its line
    stamps = [ln.split(" INFO event ", 1)[0] for ln in lines]
    assert [s[-3:] for s in stamps] == ["000", "500", "250"]
    assert stamps[0][:-4] == stamps[1][:-4] != stamps[2][:-4]    # the second changed at the third
    events = [json.loads(ln.split(" INFO event ", 1)[1]) for ln in lines]
    assert [e["kind"] for e in events] == ["call.start", "call.digit", "call.end"]
    assert events[0]["note"] == "two\nlines" and [e["seq"] for e in events] == [1, 2, 3]
