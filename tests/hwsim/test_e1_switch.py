"""E1 spans (CAS, alarms, counters) and the card's switch (cross-connect, loopback)."""
from __future__ import annotations

import numpy as np
import pytest

from hwsim.parties import Action
from hwsim.scenario import Scenario
from hwsim.world import AddCounter, SetAlarms

from sigtools import on_runs, peak_freqs
from worldkit import make


def test_e1_channels_and_timeslots(e1_cfg):
    assert e1_cfg.nchan == 60
    assert [c.timeslot for c in e1_cfg.channels[:31]] == list(range(1, 16)) + list(range(17, 32)) + [1]
    assert {c.type for c in e1_cfg.channels} == {"E1_CAS"}


def test_far_end_cas_reaches_host_and_host_cas_is_kept(e1_cfg):
    sc = (Scenario().fault(1.0, "cas", "e1site:31", abcd=0b0011)
          .fault(2.0, "cas", "e1site:31", abcd=0b0011)          # no change: no event
          .fault(3.0, "cas", "e1site:31", abcd=0b1011))
    h = make(e1_cfg, sc)
    h.send("CAS", 30, 0b1111)
    h.run(4)
    assert [(t, e.kind, e.chan, e.span, e.value) for t, e in h.events] == [
        (50, "CAS", 31, 1, 0b0011), (150, "CAS", 31, 1, 0b1011)]
    span1 = h.world.spans[1]
    assert span1.cas_tx[0] == 0b1111 and span1.cas_history == [(0.02, 30, 0b1111)]


def test_alarms_set_clear_silence_and_counters(e1_cfg):
    sc = (Scenario().fault(1.0, "alarm-set", "e1site:0", alarm="LOS")
          .fault(1.5, "alarm-set", "e1site:0", alarm="YELLOW")
          .fault(2.0, "alarm-clear", "e1site:0", alarm="LOS")
          .fault(2.5, "counter", "e1site:0", counter="crc4", n=7)
          .fault(1.2, "cas", "e1site:3", abcd=0b0011))           # during LOS: told when it clears
    h = make(e1_cfg, sc)
    h.send("LOOPBACK", 3, 1)
    h.send("LOOPBACK", 40, 1)
    h.record(3)
    h.record(40)
    h.tx[:] = 1000
    h.run(3)
    assert [(t, e.kind, e.span, e.value) for t, e in h.events] == [
        (50, "ALARM_SET", 0, 1), (75, "ALARM_SET", 0, 8), (100, "ALARM_CLEAR", 0, 1), (100, "CAS", 0, 3)]
    assert [e.chan for _, e in h.events] == [-1, -1, -1, 3]
    assert [o for _, o in h.outputs] == [SetAlarms(0, 1), SetAlarms(0, 9), SetAlarms(0, 8),
                                         AddCounter(0, "crc4", 7)]
    a3, a40 = h.heard(3), h.heard(40)
    # loopback on span 0 is silent during LOS (ticks 50..99); span 1 is unaffected
    assert np.all(a3[:49 * 160] == 1000) and np.all(a3[49 * 160:99 * 160] == 0)
    assert np.all(a3[99 * 160:] == 1000) and np.all(a40 == 1000)
    assert h.world.spans[0].counters["crc4"] == 7


def test_loopback_returns_tx_and_stops(hotline_cfg):
    h = make(hotline_cfg)
    h.send("LOOPBACK", 2, 1)
    h.record(2)
    h.tx[2] = np.arange(160)
    h.run(ticks=3)
    h.send("LOOPBACK", 2, 0)
    h.run(ticks=2)
    heard = h.heard(2).reshape(5, 160)
    assert np.all(heard[:3] == np.arange(160)) and not np.any(heard[3:])


def test_xconnect_lets_the_caller_and_the_agent_hear_each_other(hotline_cfg):
    sc = (Scenario().caller(0.0, "hotline:0", "1", script=[Action(at=2.0, digits="1")])
          .agent("hotline:4", answer_after=0.1, script=[Action(at=3.0, digits="9")]))
    h = make(hotline_cfg, sc)
    h.run(ticks=2)
    h.send("HOOK", 0, 1)          # answer the caller
    h.send("RING", 4, 1)          # ring the agent
    h.run(1)
    assert ("HOOK_OFF" in [k for _, k in h.kinds(4)])
    h.send("XCONNECT", 0, 4)
    h.tx[:] = 700                  # the host's own tx on 0 and 4 must not reach the far ends
    h.run(4)
    h.send("XCONNECT", 0, -1)
    h.run(ticks=5)
    cust = h.world.capture.peek(0)
    agent = h.world.capture.peek(4)
    # the caller heard the agent's '9' (852+1477), the agent heard the caller's '1' (697+1209)
    seg = cust[cust != 700]
    assert sorted(peak_freqs(seg[seg != 0], 2)) == [pytest.approx(852, abs=8), pytest.approx(1477, abs=8)]
    seg = agent[agent != 700]
    assert sorted(peak_freqs(seg[seg != 0], 2)) == [pytest.approx(697, abs=8), pytest.approx(1209, abs=8)]
    # after disconnecting, each far end hears the host again
    assert np.all(cust[-4 * 160:] == 700) and np.all(agent[-4 * 160:] == 700)


def test_companding_board_quantises_both_ways():
    from dsp import g711
    from hwsim.config import config_from_text

    from worldkit import E1
    cfg = config_from_text(E1.replace('name = "e1site"', 'name = "e1site"\ncompanding = true')).boards[0]
    h = make(cfg)
    h.send("LOOPBACK", 0, 1)
    h.record(0)
    h.tx[0] = np.arange(-8000, 8000, 100)
    h.run(ticks=2)
    want = g711.alaw_decode(g711.alaw_encode(np.arange(-8000, 8000, 100).astype(np.int16)))
    assert not np.array_equal(want, np.arange(-8000, 8000, 100))     # quantisation is visible
    assert np.array_equal(h.heard(0)[-160:], want)


def _cas(h, chan):
    return [(t, e.value) for t, e in h.events if e.kind == "CAS" and e.chan == chan]


def test_e1_caller_china_no1_line_signalling_caller_clears(e1_cfg):
    sc = Scenario().caller(0.0, "e1site:35", "13800138000",
                           script=[Action(after=0.5, digits="8")], hangup_after=2.0)
    h = make(e1_cfg, sc)
    h.record(35)
    h.run(ticks=2)
    assert _cas(h, 35) == [(1, 0b0011)]                 # seize
    h.send("CAS", 35, 0b1111)                           # seize acknowledge
    h.run(1)
    h.send("CAS", 35, 0b0111)                           # answer
    h.run(3)
    answered = 53
    assert _cas(h, 35) == [(1, 0b0011), (answered + 100, 0b1011)]   # clear-forward 2 s after answer
    runs = on_runs(h.heard(35))
    assert len(runs) == 1 and runs[0][1] == pytest.approx(0.1, abs=0.02)
    assert h.world.calls == []                          # open until the host returns to idle
    h.send("CAS", 35, 0b1011)
    h.run(ticks=1)
    (call,) = h.world.calls
    assert (call.kind, call.who_hung_up, call.digits[0]["digits"]) == ("e1", "caller", "8")
    assert call.answer == pytest.approx(answered * 0.02) and call.hangup == pytest.approx(call.answer + 2.0)


def test_e1_host_clears_back_and_los_drops_calls(e1_cfg):
    sc = (Scenario().caller(0.0, "e1site:0", "1").caller(0.0, "e1site:31", "2")
          .fault(2.0, "alarm-set", "e1site:1", alarm="LOS").fault(3.0, "alarm-clear", "e1site:1", alarm="LOS"))
    h = make(e1_cfg, sc)
    h.run(ticks=1)
    for ch in (0, 31):
        h.send("CAS", ch, 0b1111)
        h.send("CAS", ch, 0b0111)
    h.run(1)
    h.send("CAS", 0, 0b1111)                            # clear-back
    h.run(ticks=1)
    assert _cas(h, 0)[-1] == (h.tick, 0b1011)           # the caller clears forward at once
    h.send("CAS", 0, 0b1011)
    h.run(3)
    calls = {c.channel: c for c in h.world.calls}
    assert calls[0].who_hung_up == "host"
    assert calls[31].who_hung_up == "fault" and calls[31].hangup == pytest.approx(2.0)
    # when the signal returns the host learns that channel 31 is idle again
    assert _cas(h, 31) == [(1, 0b0011), (150, 0b1011)]
