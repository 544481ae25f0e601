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
    bus.publish(1, ServerEventKind.CALL_START, chan=0, call_id="a", caller="01088886666", called="two\nlines")
    bus.publish(2, ServerEventKind.CALL_DIGIT, chan=0, call_id="a", digit="5", masked=False)
    bus.publish(3, ServerEventKind.CALL_END, chan=0, call_id="a", reason="caller hung up")
    lines = out.getvalue().splitlines()
    assert len(lines) == 3        # a newline inside a value stays escaped inside its line
    stamps = [ln.split(" INFO event ", 1)[0] for ln in lines]
    assert [s[-3:] for s in stamps] == ["000", "500", "250"]
    assert stamps[0][:-4] == stamps[1][:-4] != stamps[2][:-4]    # the second changed at the third
    events = [json.loads(ln.split(" INFO event ", 1)[1]) for ln in lines]
    assert [e["kind"] for e in events] == ["call.start", "call.digit", "call.end"]
    assert events[0]["called"] == "two\nlines" and [e["seq"] for e in events] == [1, 2, 3]


class CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, s: str) -> int:
        self.writes += 1
        return super().write(s)


def test_in_the_event_loop_the_lines_of_several_ticks_go_out_in_one_write():
    import asyncio

    from voiceserver.core.events import FLUSH_INTERVAL
    bus = EventBus()
    out = CountingStream()
    bus.subscribe(EventLog(out, clock=lambda: 100.0))
    seen: list[tuple[int, int]] = []

    async def main() -> None:
        for n in range(3):
            bus.publish(n, ServerEventKind.CALL_DIGIT, chan=0, call_id="a", digit=str(n), masked=False)
            await asyncio.sleep(0)                                    # a loop turn (a tick) ends
        seen.append((out.writes, len(out.getvalue().splitlines())))   # nothing yet
        await asyncio.sleep(FLUSH_INTERVAL * 2)
        seen.append((out.writes, len(out.getvalue().splitlines())))
    asyncio.run(main())
    assert seen == [(0, 0), (1, 3)]
    bus.publish(9, ServerEventKind.CALL_END, chan=0, call_id="a")     # no loop: at once
    assert out.writes == 2 and out.getvalue().splitlines()[-1].endswith('"call_id": "a"}')


def test_flush_writes_what_a_stopped_loop_left():
    import asyncio
    bus = EventBus()
    out = io.StringIO()
    log = EventLog(out, clock=lambda: 100.0)
    bus.subscribe(log)

    async def main() -> None:
        bus.publish(1, ServerEventKind.CALL_END, chan=0, call_id="a")
        asyncio.get_running_loop().stop()     # the loop ends before the write was due

    loop = asyncio.new_event_loop()
    loop.create_task(main())
    loop.run_forever()
    loop.close()
    assert out.getvalue() == ""
    log.flush()
    assert json.loads(out.getvalue().split(" INFO event ", 1)[1])["kind"] == "call.end"


def test_every_event_carries_its_time_in_utc_and_its_server():
    bus = EventBus(server_id="pbx1")
    out = io.StringIO()
    bus.subscribe(EventLog(out, clock=lambda: 100.0))
    ev = bus.publish(7, ServerEventKind.CALL_END, chan=2, call_id="pbx1-3-000001")
    assert ev.server_id == "pbx1" and ev.time.endswith("Z") and len(ev.time) == len("2026-12-03T07:40:00.123Z")
    logged = json.loads(out.getvalue().split(" INFO event ", 1)[1])
    assert (logged["seq"], logged["time"], logged["server_id"], logged["tick"]) == (1, ev.time, "pbx1", 7)
    times = iter(["2026-12-03T07:40:00.000Z", "2026-12-03T07:40:00.020Z"])
    bus = EventBus(server_id="b", clock=lambda: next(times))
    assert [bus.publish(1, ServerEventKind.CALL_END).time for _ in range(2)] == \
        ["2026-12-03T07:40:00.000Z", "2026-12-03T07:40:00.020Z"]


def test_events_published_while_the_time_is_held_share_it():
    """The controller holds the time for a tick's handling: its events read the clock once."""
    reads = iter(f"2026-12-03T07:40:00.{ms:03d}Z" for ms in range(0, 1000, 20))
    bus = EventBus(clock=lambda: next(reads))
    assert bus.publish(1, ServerEventKind.CALL_END).time == "2026-12-03T07:40:00.000Z"
    bus.hold_time()
    held = [bus.publish(2, ServerEventKind.CALL_END).time for _ in range(3)]
    bus.release_time()
    after = [bus.publish(3, ServerEventKind.CALL_END).time for _ in range(2)]
    assert held == ["2026-12-03T07:40:00.020Z"] * 3
    assert after == ["2026-12-03T07:40:00.040Z", "2026-12-03T07:40:00.060Z"]


@pytest.mark.parametrize("ms", [0, 999, 1_000, 951_782_400_500, 1_700_000_000_123, 1_764_775_200_999,
                                1_764_775_201_000])
def test_an_events_time_is_iso_8601_utc_to_the_millisecond(monkeypatch, ms):
    """utc_now formats the date and time once a second and adds the milliseconds: the same
    text as datetime's isoformat, at a second's edges too."""
    import datetime as dt
    import time

    from voiceserver.core import events
    monkeypatch.setattr(events, "_last_stamp", (-1, ""))
    monkeypatch.setattr(events, "_last_second", (-1, ""))
    monkeypatch.setattr(time, "time_ns", lambda: ms * 1_000_000)
    want = dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert events.utc_now() == want
    monkeypatch.setattr(time, "time_ns", lambda: (ms + 1) * 1_000_000)   # the next millisecond, from the cache
    nxt = dt.datetime.fromtimestamp((ms + 1) / 1000, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    assert events.utc_now() == nxt


def test_the_bus_makes_the_event_the_dataclass_would_and_it_stays_frozen():
    import dataclasses

    from voiceserver.core.events import ServerEvent
    bus = EventBus(server_id="vs1", clock=lambda: "2026-12-03T10:00:00.000Z")
    ev = bus.publish(7, ServerEventKind.CALL_DIGIT, chan=2, call_id="c1", digit="5", masked=False)
    same = ServerEvent(1, 7, ServerEventKind.CALL_DIGIT, 2, "c1", {"digit": "5", "masked": False},
                       "2026-12-03T10:00:00.000Z", "vs1")
    assert ev == same and ev.json == same.json and repr(ev) == repr(same)
    with pytest.raises(dataclasses.FrozenInstanceError):
        ev.seq = 2   # type: ignore[misc]


@pytest.mark.parametrize("data", [
    {"digit": "5", "masked": False, "duration_ms": None},
    {"caller": "张三 <01088886666>", "called": "two\nlines", "gain": 0.1, "big": 10 ** 30},
    {"items": ["a", ["b", {"c": 1.5}]], "when": __import__("datetime").date(2026, 12, 3), "none": None},
    {"ratio": float("inf"), "kind_of": ServerEventKind.CALL_END},
])
def test_an_events_json_is_what_json_dumps_gives(data):
    from voiceserver.core.events import ServerEvent
    ev = ServerEvent.made(9, 3, ServerEventKind.CALL_DIGIT, 1, "c", data, "2026-12-03T10:00:00.000Z", "vs1")
    assert ev.json == json.dumps(ev.as_dict(), default=str)
