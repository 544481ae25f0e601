"""IvrCall under random event sequences on the demo config: it never fails, and
the command stream stays consistent (one play at a time, nothing after done)."""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from voiceserver.config.server import load_config
from voiceserver.ivr.flows import Hangup, Log, Play, Queue, StopPlay, Transfer, Voicemail

DEMO = load_config(Path(__file__).resolve().parents[2] / "voiceserver" / "configs" / "demo.toml")
TERMINAL = (Hangup, Queue, Voicemail, Transfer)

event = st.one_of(
    st.tuples(st.just("digit"), st.sampled_from("0123456789*#"), st.integers(0, 3000)),
    st.tuples(st.just("tick"), st.none(), st.integers(0, 10_000)),
    st.tuples(st.just("done"), st.none(), st.integers(0, 5000)),
    st.tuples(st.just("stale"), st.none(), st.integers(0, 100)),
)


@settings(max_examples=200, deadline=None)
@given(events=st.lists(event, max_size=60), night=st.booleans(), hang=st.booleans())
def test_random_calls_stay_consistent(events, night, hang):
    hour = 22 if night else 10
    call = DEMO.new_call("13812345678", "4008001234",
                         dt.datetime(2026, 11, 23, hour, tzinfo=ZoneInfo("Asia/Shanghai")))
    t = 0
    playing: int | None = None
    ids: set[int] = set()
    terminal = 0

    def apply(out):
        nonlocal playing, terminal
        for c in out:
            assert terminal == 0 or isinstance(c, Log), f"{c} after the call left the IVR"
            if isinstance(c, StopPlay):
                assert c.id == playing
                playing = None
            elif isinstance(c, Play):
                assert playing is None, "a new play while one is playing"
                assert c.id not in ids
                ids.add(c.id)
                playing = c.id
            elif isinstance(c, TERMINAL):
                terminal += 1
                playing = None

    apply(call.call_started("13812345678", "4008001234", 0))
    for kind, d, dt_ms in events:
        t += dt_ms
        if kind == "digit":
            apply(call.digit(d, t))
        elif kind == "tick":
            apply(call.tick(t))
        elif kind == "done" and playing is not None:
            pid, playing = playing, None
            apply(call.prompt_done(pid, t))
        elif kind == "stale":
            assert [c for c in call.prompt_done(10_000, t) if not isinstance(c, Log)] == []
    if hang:
        apply(call.hangup(t + 1))
        assert call.done
    assert terminal <= 1
    assert (terminal == 1) <= call.done
    if call.done:
        assert call.deadline is None
    assert not any(s.what == "error" for s in call.path)
