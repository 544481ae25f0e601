"""FXS port + phone: rung by the host, answers, hangs up, flashes, calls out."""
from __future__ import annotations

import numpy as np
import pytest

from hwsim.parties import Action
from hwsim.scenario import Scenario

from sigtools import on_runs, peak_freqs
from worldkit import make


def _ring(h, chan, on_s=1.0, off_s=4.0, cycles=3):
    """The host rings the phone with a cadence until it goes off-hook."""
    for _ in range(cycles):
        h.send("RING", chan, 1)
        for _ in range(h.world.clock.ticks(on_s)):
            h.run(ticks=1)
            if any(k == "HOOK_OFF" for _, k in h.kinds(chan)):
                h.send("RING", chan, 0)
                return
        h.send("RING", chan, 0)
        for _ in range(h.world.clock.ticks(off_s)):
            h.run(ticks=1)
            if any(k == "HOOK_OFF" for _, k in h.kinds(chan)):
                return


def test_agent_answers_after_delay_then_hangs_up(hotline_cfg):
    h = make(hotline_cfg, Scenario().agent("hotline:4", answer_after=2.0, hangup_after=3.0))
    h.send("RING", 4, 1)
    h.run(ticks=1)
    first = h.tick
    _ring(h, 4)
    h.run(5)
    (off, on) = h.kinds(4)
    assert off == (first + 100, "HOOK_OFF")          # 2 s after the first ring
    assert on == (first + 250, "HOOK_ON")            # 3 s after answering
    (call,) = h.world.calls
    assert call.kind == "fxs" and call.who_hung_up == "agent"
    assert call.ring == [pytest.approx(first * 0.02)]


def test_phone_without_agent_never_answers_and_alert_ends(hotline_cfg):
    h = make(hotline_cfg, Scenario().agent("hotline:5", answer_after=None))
    _ring(h, 5, cycles=2)
    h.run(7)
    assert h.kinds(5) == []
    (call,) = h.world.calls
    assert call.who_hung_up == "unanswered" and len(call.ring) == 2


def test_agent_flashes_and_hears_the_host(hotline_cfg):
    sc = Scenario().agent("hotline:6", answer_after=0.5,
                          script=[Action(at=1.0, flash=True), Action(after=1.0, hangup=True)])
    h = make(hotline_cfg, sc)
    _ring(h, 6)
    t = np.arange(160) / 8000
    h.run(3, tx_fn=lambda host: host.tx.__setitem__(6, (5000 * np.sin(2 * np.pi * 800 * t)).astype(np.int16)))
    kinds = h.kinds(6)
    assert [k for _, k in kinds] == ["HOOK_OFF", "FLASH", "HOOK_ON"]
    assert kinds[1][0] - kinds[0][0] == 50 and kinds[2][0] - kinds[1][0] == 50
    (call,) = h.world.calls
    assert call.heard_seconds == pytest.approx(2.0, abs=0.03)
    assert peak_freqs(call.heard) == [pytest.approx(800, abs=5)]


def test_phone_calls_out_with_dtmf(hotline_cfg):
    h = make(hotline_cfg, Scenario().dial(1.0, "hotline:7", "80", hangup_after=4.0))
    h.record(7)
    h.run(6)
    assert h.kinds(7) == [(50, "HOOK_OFF"), (250, "HOOK_ON")]
    runs = on_runs(h.heard(7))
    assert [(round(s, 2), round(n, 2)) for s, n in runs] == [(1.98, 0.1), (2.18, 0.1)]
    d8 = h.heard(7)[int(1.99 * 8000):int(2.07 * 8000)]
    assert sorted(peak_freqs(d8, 2)) == [pytest.approx(852, abs=8), pytest.approx(1336, abs=8)]
    (call,) = h.world.calls
    assert call.direction == "out" and call.dialled == "80" and call.digits == []


def test_ring_while_offhook_is_ignored_and_cut_phone_goes_onhook(hotline_cfg):
    sc = (Scenario().dial(0.0, "hotline:4", "1")
          .fault(2.0, "line-cut", "hotline:4").fault(3.0, "line-restore", "hotline:4"))
    h = make(hotline_cfg, sc)
    h.run(1)
    h.send("RING", 4, 1)
    h.run(3)
    assert [k for _, k in h.kinds(4)] == ["HOOK_OFF", "HOOK_ON"]
    (call,) = h.world.calls
    assert call.who_hung_up == "fault"
    h.send("RING", 4, 0)
    h.run(ticks=1)
    h.send("RING", 4, 1)
    h.run(ticks=1)
    assert h.world.phones[4].state == "alerting"
