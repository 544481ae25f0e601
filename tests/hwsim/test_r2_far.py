"""hwsim's China No.1 exchange on E1 channels (hwsim.r2far), against a scripted host.

The host here is a test double (worldkit.R2Peer) that sends the exact China
No.1 sequences, signal by signal, and checks what the exchange sends back
and when: line bits as CAS events, MF R2 signals in the audio.
"""
from __future__ import annotations

import threading

import numpy as np
import pytest

from hwsim.config import config_from_text
from hwsim.parties import Action
from hwsim.scenario import Scenario

from worldkit import E1, R2Peer, make

IDLE, SEIZE, ACK, ANSWER, CLEAR_BACK, CLEAR_FORWARD, BLOCKED = (
    0b1011, 0b0011, 0b1111, 0b0111, 0b1111, 0b1011, 0b1111)
# group A / B (backward), group I / II (forward): China No.1
A1, A2, A3, A4, A6 = 1, 2, 3, 4, 6
B_ACCEPT, B_FREE, B_BUSY, B_CONGESTION, B_UNALLOCATED, B_OUT_OF_ORDER = 1, 7, 2, 4, 5, 8
I_END_OF_ANI, I_RESTRICTED = 15, 12


def mf(digit: str) -> int:
    return 10 if digit == "0" else int(digit)


def secs(h, ticks: int) -> float:
    return ticks * h.world.clock.tick_seconds


# ---------------------------------------------------------------------------- inbound
def test_inbound_call_sends_dnis_then_ani_with_category_on_request(e1_cfg):
    """The exchange seizes, sends the DNIS digit by digit, the category and ANI after
    A-6, ends the DNIS by falling silent, gives the category again after the A-3
    pulse, and waits for answer after B-1; its caller then clears forward."""
    sc = Scenario().caller(0.0, "e1site:3", "1062345678", called="95588",
                           category="national_priority_subscriber", hangup_after=1.0)
    h = make(e1_cfg, sc)
    p = R2Peer(h, 3, forward=False)
    assert p.wait_cas(SEIZE) == 1
    p.cas(ACK)
    assert p.answer_cycle(A6) == mf("9")                 # first DNIS digit; ask for the category
    assert p.answer_cycle(A1) == 2                       # II-2: national priority subscriber
    ani = [p.answer_cycle(A1) for _ in range(10)]
    assert ani == [mf(d) for d in "1062345678"]
    assert p.answer_cycle(A1) == I_END_OF_ANI
    rest = [p.answer_cycle(A1) for _ in range(4)]
    assert rest == [mf(d) for d in "5588"]
    p.quiet_for(2.0)                                    # no more digits: the host's timeout ends the DNIS
    p.pulse(A3, 8)                                      # A-3 as a 160 ms pulse
    sig, _ = p.wait_signal()
    assert sig == 2                                     # the category again, as group II
    p.send(B_ACCEPT)
    p.wait_silence()
    p.stop()
    p.quiet_for(0.2)
    p.cas(ANSWER)
    t_clear = p.wait_cas(CLEAR_FORWARD, 3.0)
    p.cas(IDLE)
    p.step()
    (call,) = h.world.calls
    assert (call.direction, call.number, call.called, call.category) == (
        "in", "1062345678", "95588", "national_priority_subscriber")
    assert call.result == "answer" and call.who_hung_up == "caller"
    assert call.hangup - call.answer == pytest.approx(1.0, abs=0.03)
    assert secs(h, t_clear) == pytest.approx(call.hangup, abs=0.03)
    sent = [r["signal"] for r in call.r2 if r["dir"] == "tx" and r["signal"].startswith("MF")]
    assert sent[:3] == ["MF I-9", "MF II-2", "MF I-1"] and sent[-1] == "MF II-2"


def test_inbound_repeats_digits_on_a2_and_sends_restricted_ani(e1_cfg):
    """A-2 asks again for the last-but-one digit (then the sequence goes on from
    there); a caller without a number sends I-12 (ANI restricted)."""
    sc = Scenario().caller(0.0, "e1site:0", None, called="4321")
    h = make(e1_cfg, sc)
    p = R2Peer(h, 0, forward=False)
    p.wait_cas(SEIZE)
    p.cas(ACK)
    assert p.answer_cycle(A1) == 4
    assert p.answer_cycle(A1) == 3
    assert p.answer_cycle(A2) == 2                      # send digit n-1 again
    assert p.answer_cycle(A6) == 3                      # ... it is 3; now the category
    assert p.answer_cycle(A1) == 1                      # II-1
    assert p.answer_cycle(A1) == I_RESTRICTED           # no ANI to give
    assert [p.answer_cycle(A1) for _ in range(2)] == [2, 1]   # the DNIS goes on after 3
    p.pulse(A3, 8)
    assert p.answer_cycle(B_FREE) == 1
    p.quiet_for(0.15)                                   # the answer delay
    p.cas(ANSWER)
    h.run(0.5)
    call = h.world.live[0]
    assert (call.number, call.called, call.result, call.answer is not None) == (None, "4321", "answer-free", True)


def test_inbound_busy_congestion_unallocated_clear_forward(e1_cfg):
    """A B signal other than accept makes the exchange clear forward at once; the call
    record says which. A-4 (congestion in group A) does the same before group B."""
    outcomes = {}
    for chan, (b, want) in enumerate([(B_BUSY, "busy"), (B_CONGESTION, "congestion"),
                                      (B_UNALLOCATED, "unallocated"), (B_OUT_OF_ORDER, "out-of-order")]):
        sc = Scenario().caller(0.0, f"e1site:{chan}", "123", called="7")
        h = make(e1_cfg, sc)
        p = R2Peer(h, chan, forward=False)
        p.wait_cas(SEIZE)
        p.cas(ACK)
        assert p.answer_cycle(A6) == 7
        assert p.answer_cycle(A1) == 1                  # II-1 national subscriber
        assert [p.answer_cycle(A1) for _ in range(4)] == [1, 2, 3, I_END_OF_ANI]
        p.pulse(A3, 8)                                  # the DNIS ends here
        assert p.answer_cycle(b) == 1
        p.wait_cas(CLEAR_FORWARD, 0.5)
        p.cas(IDLE)
        p.step()
        (call,) = h.world.calls
        outcomes[want] = (call.result, call.who_hung_up, call.answer)
    assert outcomes == {w: (w, "host", None) for w in outcomes}
    sc = Scenario().caller(0.0, "e1site:0", "123", called="7")
    h = make(e1_cfg, sc)
    p = R2Peer(h, 0, forward=False)
    p.wait_cas(SEIZE)
    p.cas(ACK)
    p.answer_cycle(A4)
    p.wait_cas(CLEAR_FORWARD, 0.5)
    p.cas(IDLE)
    p.step()
    assert h.world.calls[0].result == "congestion"


# ---------------------------------------------------------------------------- outbound
def outbound_register(p: R2Peer, dnis: str, ani: str, category: int = 1) -> tuple[int, int]:
    """The host's side of a China call to `dnis`: seize, the first digit, category and
    ANI on A-6, the rest of the DNIS, then silence until the exchange's A-3 pulse, the
    category in group II. Returns (the B signal, ticks from the last digit's end to the
    A-3 pulse)."""
    p.cas(SEIZE)
    p.wait_cas(ACK, 0.1)                                # acknowledged at once
    assert p.forward_cycle(mf(dnis[0])) == A6
    assert p.forward_cycle(category) == A1
    for d in ani:
        assert p.forward_cycle(mf(d)) == A1
    assert p.forward_cycle(I_END_OF_ANI) == A1
    for d in dnis[1:]:
        assert p.forward_cycle(mf(d)) == A1
    last = p.h.tick
    sig, t_pulse = p.wait_signal(3.0)
    assert sig == A3
    end = p.wait_silence(1.0)
    assert secs(p.h, end - t_pulse) == pytest.approx(0.15, abs=0.03)   # a pulse, not compelled
    b = p.forward_cycle(category)
    return b, t_pulse - last


def test_outbound_call_answered_then_far_end_clears_back(e1_cfg):
    sc = Scenario().plan_outbound("e1site:5", "answer", ring=2.0, hangup_after=1.5,
                                  script=[Action(after=0.2, digits="5")])
    h = make(e1_cfg, sc)
    p = R2Peer(h, 5, forward=True)
    h.record(5)
    b, timeout = outbound_register(p, "12345", "13800138000", category=1)
    assert b == B_ACCEPT
    assert secs(h, timeout) == pytest.approx(2.0, abs=0.1)    # end of DNIS: mf_back_cycle
    t_b = h.tick
    t_answer = p.wait_cas(ANSWER, 3.0)
    assert secs(h, t_answer - t_b) == pytest.approx(2.0, abs=0.05)
    t_back = p.wait_cas(CLEAR_BACK, 3.0)                 # the called party hangs up first
    assert secs(h, t_back - t_answer) == pytest.approx(1.5, abs=0.05)
    p.cas(CLEAR_FORWARD)
    assert p.wait_cas(IDLE, 0.1) == h.tick               # released at once
    (call,) = h.world.calls
    assert (call.direction, call.called, call.number, call.category) == (
        "out", "12345", "13800138000", "national_subscriber")
    assert (call.result, call.who_hung_up) == ("answer", "caller")
    assert call.digits[0]["digits"] == "5" and call.released is not None


@pytest.mark.parametrize("result,signal", [("busy", B_BUSY), ("congestion", B_CONGESTION),
                                           ("unallocated", B_UNALLOCATED),
                                           ("out-of-order", B_OUT_OF_ORDER)])
def test_outbound_number_busy_congestion_unallocated(e1_cfg, result, signal):
    """A plan for a called number is its standing answer (each call to it gets it);
    other numbers get the default answer."""
    sc = (Scenario().plan_outbound(None, result, called="95588")
          .plan_outbound(None, "answer", called="10086", charge=False))
    h = make(e1_cfg, sc)
    for chan in (0, 1):
        p = R2Peer(h, chan, forward=True)
        b, _ = outbound_register(p, "95588", "6001")
        assert b == signal
        p.quiet_for(1.0)                                 # no answer bits: only the B signal
        assert p.cas_events()[-1][1] == ACK
        p.cas(CLEAR_FORWARD)
        p.wait_cas(IDLE, 0.1)
    p = R2Peer(h, 2, forward=True)
    assert outbound_register(p, "10086", "6001")[0] == B_FREE
    assert [(c.called, c.result, c.who_hung_up) for c in h.world.calls] == [("95588", result, "host")] * 2


def test_outbound_host_clears_forward_first_and_no_answer(e1_cfg):
    sc = (Scenario().plan_outbound("e1site:7", "answer", ring=0.5)
          .plan_outbound("e1site:8", "no-answer"))
    h = make(e1_cfg, sc)
    p = R2Peer(h, 7, forward=True)
    assert outbound_register(p, "8001", "")[0] == B_ACCEPT
    p.wait_cas(ANSWER, 1.0)
    h.run(1.0)
    p.cas(CLEAR_FORWARD)                                 # the host hangs up first
    p.wait_cas(IDLE, 0.1)
    q = R2Peer(h, 8, forward=True)
    assert outbound_register(q, "8002", "")[0] == B_ACCEPT
    q.quiet_for(5.0)
    assert q.cas_events()[-1][1] == ACK                  # rings on, never answers
    q.cas(CLEAR_FORWARD)
    q.wait_cas(IDLE, 0.1)
    calls = {c.channel: c for c in h.world.calls}
    assert (calls[7].who_hung_up, calls[7].result, calls[7].number) == ("host", "answer", None)
    assert calls[7].hangup - calls[7].answer == pytest.approx(1.0, abs=0.05)
    assert (calls[8].who_hung_up, calls[8].result, calls[8].answer) == ("host", "no-answer", None)


def test_outbound_ani_restricted_and_max_digits(e1_cfg):
    h = make(e1_cfg, Scenario())
    p = R2Peer(h, 0, forward=True)
    p.cas(SEIZE)
    p.wait_cas(ACK, 0.1)
    assert p.forward_cycle(1) == A6
    assert p.forward_cycle(1) == A1
    assert p.forward_cycle(I_RESTRICTED) == A1
    for _ in range(18):
        assert p.forward_cycle(2) == A1
    assert p.forward_cycle(3) == A3                      # the 20th digit: change to group B at once
    assert p.forward_cycle(1) == B_ACCEPT
    call = h.world.live[0]
    assert call.ani_restricted and call.called == "1" + "2" * 18 + "3"


def test_outbound_forward_signal_that_never_stops_times_out(e1_cfg):
    h = make(e1_cfg, Scenario())
    p = R2Peer(h, 0, forward=True)
    p.cas(SEIZE)
    p.wait_cas(ACK, 0.1)
    p.send(5)
    assert p.wait_signal()[0] == A6
    t = p.wait_silence(3.0)                              # the exchange gives up after mf_back_cycle
    p.stop()
    assert secs(h, t) == pytest.approx(2.0 + 0.1, abs=0.1)
    p.cas(CLEAR_FORWARD)
    p.wait_cas(IDLE, 0.1)
    (call,) = h.world.calls
    assert call.result == "mf-timeout" and call.notes


# ---------------------------------------------------------------------------- line signalling
def inbound_to_answer(p: R2Peer, dnis_len: int, ani_len: int) -> None:
    """The host's side of an inbound call up to its answer (B-1)."""
    p.wait_cas(SEIZE)
    p.cas(ACK)
    p.answer_cycle(A6)
    for _ in range(ani_len + 2):              # category, ANI digits, end of ANI
        p.answer_cycle(A1)
    for _ in range(dnis_len - 1):
        p.answer_cycle(A1)
    p.quiet_for(2.0)
    p.pulse(A3, 8)
    assert p.answer_cycle(B_ACCEPT) == 1
    p.quiet_for(0.15)
    p.cas(ANSWER)


def test_inbound_host_clears_back_first_and_the_caller_clears_forward(e1_cfg):
    sc = Scenario().caller(0.0, "e1site:2", "88", called="123", hangup_after=30.0)
    h = make(e1_cfg, sc)
    p = R2Peer(h, 2, forward=False)
    inbound_to_answer(p, 3, 2)
    h.run(1.0)
    p.cas(CLEAR_BACK)
    t = p.wait_cas(CLEAR_FORWARD, 0.1)
    assert t == h.tick
    assert h.world.calls == []                          # open until the host is idle
    p.cas(IDLE)
    p.step()
    (call,) = h.world.calls
    assert (call.who_hung_up, call.number, call.called) == ("host", "88", "123")


def test_glare_the_exchange_yields_to_the_host(e1_cfg):
    sc = Scenario().caller(0.0, "e1site:4", "1", called="2")
    h = make(e1_cfg, sc)
    p = R2Peer(h, 4, forward=True)
    p.wait_cas(SEIZE)
    p.cas(SEIZE)                                        # the host seized the same channel
    t_idle = p.wait_cas(IDLE, 0.5)                       # holds its seizure, then yields
    t_ack = p.wait_cas(ACK, 0.5)                         # and acknowledges the host's
    assert secs(h, t_idle) == pytest.approx(0.04 + 0.15, abs=0.021)   # the host seized at tick 2
    assert secs(h, t_ack - t_idle) == pytest.approx(0.15, abs=0.03)
    assert p.forward_cycle(2) == A6                     # the host's call goes on
    glare = h.world.calls[0]
    assert glare.glare and glare.who_hung_up == "blocked" and glare.direction == "in"
    assert h.world.live[4].direction == "out"


def test_blocking_both_ways(e1_cfg):
    """The exchange blocks a channel (1111 while idle): callers take another; the host's
    blocking (1111 from the host) keeps callers off it too."""
    sc = (Scenario().fault(0.1, "block", "e1site:0").fault(3.0, "unblock", "e1site:0")
          .caller(1.0, "e1site:0-2", "1", called="2").caller(1.5, "e1site:0-2", "3", called="4"))
    h = make(e1_cfg, sc)
    h.send("CAS", 1, BLOCKED)                           # the host blocks channel 1
    h.run(2.5)
    cas = [(e.chan, e.value) for _, e in h.events if e.kind == "CAS"]
    assert cas == [(0, BLOCKED), (2, SEIZE)]
    calls = h.world.calls
    assert [(c.channel, c.who_hung_up) for c in calls] == [(0, "blocked")]   # no idle line for the second
    assert h.world.live[2].number == "1"
    h.run(1.0)                           # unblocked at 3.0; the host never acknowledged channel 2
    cas = [(e.chan, e.value) for _, e in h.events if e.kind == "CAS"]
    assert sorted(cas[2:]) == [(0, IDLE), (2, CLEAR_FORWARD)]
    assert (h.world.calls[-1].channel, h.world.calls[-1].result) == (2, "no-seize-ack")


def test_call_during_an_alarm(e1_cfg):
    """LOS on span 0: the call up on it drops (fault); a caller meanwhile finds no
    channel; the host's seizure gets no acknowledge until the signal is back; after it
    the exchange calls again. Slips and CRC-4 errors are counted."""
    sc = (Scenario().caller(0.0, "e1site:1", "555", called="1", hangup_after=60)
          .fault(2.0, "alarm-set", "e1site:0", alarm="LOS")
          .fault(2.5, "counter", "e1site:0", counter="slips", n=2)
          .fault(2.5, "counter", "e1site:0", counter="crc4", n=9)
          .caller(3.0, "e1site:0-29", "666", called="1")
          .fault(5.0, "alarm-clear", "e1site:0", alarm="LOS")
          .caller(6.0, "e1site:1", "777", called="1"))
    h = make(e1_cfg, sc)
    p = R2Peer(h, 1, forward=False)
    p.wait_cas(SEIZE)
    p.cas(ACK)
    p.answer_cycle(A3)                                  # straight to group B
    assert p.answer_cycle(B_ACCEPT) == 1
    p.quiet_for(0.15)
    p.cas(ANSWER)
    h.run(ticks=130 - h.tick)                           # t = 2.6: the span is down
    h.send("CAS", 5, SEIZE)                             # the host tries to call out meanwhile
    q = R2Peer(h, 5, forward=True)
    h.run(ticks=245 - h.tick)                           # t = 4.9
    assert q.cas_events() == []                         # no acknowledge while the span is down
    assert q.wait_cas(ACK, 0.3) == 250                  # the exchange sees the seizure when it is back
    calls = {c.number: c for c in h.world.calls}
    assert calls["555"].who_hung_up == "fault" and calls["555"].hangup == pytest.approx(2.0)
    assert calls["666"].who_hung_up == "blocked"
    assert (1, IDLE) in [(e.chan, e.value) for _, e in h.events if e.kind == "CAS"]
    assert h.world.spans[0].counters["slips"] == 2 and h.world.spans[0].counters["crc4"] == 9
    p.cas(IDLE)
    q.cas(CLEAR_FORWARD)
    h.run(1.0)
    assert h.world.live[1].number == "777"              # after the alarm the exchange calls again
    assert h.world.calls[-1].direction == "out" and h.world.calls[-1].who_hung_up == "host"


# ---------------------------------------------------------------------------- files and the cable
def test_example_scenario_and_pair_config_load_and_run():
    import os

    import hwsim
    from hwsim.config import load_config
    from hwsim.scenario import load_scenario
    from hwsim.simtime import SimClock
    from hwsim.world import BoardWorld

    from worldkit import Host
    base = os.path.dirname(hwsim.__file__)
    cfg = load_config(os.path.join(base, "configs", "e1-site.toml")).boards[0]
    sc = load_scenario(os.path.join(base, "scenarios", "e1-r2.toml"))
    first = sc.callers[0]
    assert (first.number, first.called, first.category) == ("13800138000", "95588", "national_subscriber")
    assert sc.arrivals[0].called == ["95588", "95599"]
    assert [(o.called, o.result, o.charge) for o in sc.outbound][:4] == [
        ("12345", "answer", True), ("10000", "busy", True), ("99999", "unallocated", True),
        ("95500", "answer", False)]
    h = Host(BoardWorld(cfg, SimClock(160), sc.for_board("e1site")))
    h.run(2.1)
    assert [(e.chan, e.value) for _, e in h.events if e.kind == "CAS"] == [(0, SEIZE)]
    pair = load_config(os.path.join(base, "configs", "e1-pair.toml")).boards[0]
    assert pair.cables == [(0, 1)]


@pytest.mark.parametrize("text,error", [
    ('[[caller]]\nat = 1\nline = "e1site"\ncalled = "12#"\n', r"key 'caller\[0\].called': expected digits 0-9"),
    ('[[caller]]\nat = 1\nline = "e1site"\ncategory = "vip"\n',
     r"key 'caller\[0\].category': unknown calling party category 'vip'"),
    ('[[caller]]\nat = 1\nline = "e1site"\ncategory = 16\n', r"key 'caller\[0\].category': a category signal is 1-15"),
    ('[[arrivals]]\nlines = "e1site"\nrate = 1\ncalled = ["1", "x"]\n', r"key 'arrivals\[0\].called': expected a DNIS"),
    ('[[outbound]]\nresult = "vacant"\n', r"key 'outbound\[0\].result'"),
])
def test_scenario_keys_are_checked(tmp_path, text, error):
    from hwsim.scenario import ConfigError, load_scenario
    f = tmp_path / "sc.toml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=error):
        load_scenario(f)


def test_e1_only_plans_and_block_faults_need_an_e1_exchange(hotline_cfg):
    from hwsim.scenario import ConfigError
    from hwsim.simtime import SimClock
    from hwsim.world import BoardWorld
    with pytest.raises(ConfigError, match="channel 0 of board 'hotline' is not an E1 CAS channel"):
        BoardWorld(hotline_cfg, SimClock(160), Scenario().plan_outbound("hotline:0", "unallocated"))
    with pytest.raises(ConfigError, match="has no China No.1 exchange"):
        BoardWorld(hotline_cfg, SimClock(160), Scenario().fault(1.0, "block", "hotline:0"))


@pytest.mark.parametrize("extra,error", [
    ('[[cable]]\na = "e1site:0"\nb = "e1site:0"\n', "a cable joins two different spans"),
    ('[[cable]]\na = "e1site:0"\nb = "e1site:5"\n', "span 5 of board 'e1site' is not an E1 span"),
    ('[[cable]]\na = "e1site:0"\nb = "other:0"\n', "no board 'other'"),
    ('[[cable]]\na = "e1site:0"\nb = "e1site:1"\n[[cable]]\na = "e1site:1"\nb = "e1site:0"\n',
     "span 1 of board 'e1site' already has a cable"),
])
def test_cable_config_errors(extra, error):
    from hwsim.config import ConfigError
    with pytest.raises(ConfigError, match=error):
        config_from_text(E1 + extra, "c.toml")


def test_line_signalling_only_span_has_no_register_phase():
    cfg = config_from_text(E1.replace('count = 2', 'count = 2\nsignalling = "line"')).boards[0]
    sc = Scenario().caller(0.0, "e1site:0", "1", called="2")
    h = make(cfg, sc)
    p = R2Peer(h, 0, forward=False)
    p.wait_cas(SEIZE)
    p.cas(ACK)
    p.quiet_for(1.0)                                    # no MF from a line-only exchange
    assert type(h.world.cas[0]).__name__ == "CasTrunk"


def test_back_to_back_cable_passes_bits_and_audio_both_ways():
    cfg = config_from_text(E1 + '[[cable]]\na = "e1site:0"\nb = "e1site:1"\n', "pair.toml").boards[0]
    assert cfg.cables == [(0, 1)]
    h = make(cfg, Scenario())
    assert h.world.cas == {}                            # no exchange behind a cabled span
    h.record(3)
    h.record(33)
    h.send("CAS", 3, SEIZE)                             # span 0, channel 3 seizes ...
    h.run(ticks=1)
    h.send("CAS", 33, ACK)                              # ... span 1, channel 3 acknowledges
    h.tx[3] = 1000
    h.tx[33] = -2000
    h.run(ticks=3)
    cas = [(t, e.chan, e.value) for t, e in h.events if e.kind == "CAS"]
    assert cas == [(1, 33, SEIZE), (2, 3, ACK)]
    assert h.world.spans[1].cas_tx[3] == ACK
    a, b = h.heard(3).reshape(-1, 160), h.heard(33).reshape(-1, 160)
    assert not a[0].any() and np.all(a[1:] == -2000)   # from the tick the other host sent it
    assert not b[0].any() and np.all(b[1:] == 1000)


TWO_BOARDS = """
[[board]]
name = "left"
[[board.span]]
kind = "e1"
[[board]]
name = "right"
[[board.span]]
kind = "e1"
count = 2
[[cable]]
a = "left:0"
b = "right:1"
"""


def test_cable_between_two_boards_sans_io():
    """Each board's world pushes its host's span every tick and pulls the other's:
    bits as CAS events, audio in rx, one tick later than on one board."""
    from hwsim.cable import CableEnd, CableLink
    from hwsim.simtime import SimClock
    from hwsim.world import BoardWorld

    from worldkit import Host
    cfg = config_from_text(TWO_BOARDS, "two.toml")
    left, right = cfg.boards
    assert left.linked == {0: ("right", 1)} and right.linked == {1: ("left", 0)}
    link = CableLink("left:0-right:1")
    a = Host(BoardWorld(left, SimClock(160), Scenario(), cable_ends=[CableEnd(link, 0, 0)]))
    b = Host(BoardWorld(right, SimClock(160), Scenario(), cable_ends=[CableEnd(link, 1, 1)]))
    assert a.world.cas == {} and sorted(b.world.cas) == list(range(30))   # right's span 0 has its exchange
    link.attach(0, 160)
    link.attach(1, 160)
    a.record(3)
    b.record(33)
    a.send("CAS", 3, SEIZE)
    a.tx[3] = 1000
    b.tx[33] = -2000
    for _ in range(4):
        a.run(ticks=1)
        b.run(ticks=1)
    b.send("CAS", 33, ACK)
    for _ in range(3):
        a.run(ticks=1)
        b.run(ticks=1)
    assert [(t, e.chan, e.span, e.value) for t, e in b.events if e.kind == "CAS"] == [(2, 33, 1, SEIZE)]
    assert [(t, e.chan, e.span, e.value) for t, e in a.events if e.kind == "CAS"] == [(6, 3, 0, ACK)]
    ra, rb = a.heard(3).reshape(-1, 160), b.heard(33).reshape(-1, 160)
    assert not ra[:1].any() and np.all(ra[1:] == -2000)
    assert not rb[:1].any() and np.all(rb[1:] == 1000)
    assert link.underruns == [0, 0]
    link.detach(1)                                      # the right board's host is gone: nothing arrives
    a.run(ticks=2)
    assert not a.heard(3)[-160:].any()


def test_cable_between_boards_with_different_blocks():
    """One host ticks every 10 ms, the other every 20 ms: the cable counts samples, so
    each gets the other's audio whole, in order, and the bits with it."""
    from hwsim.cable import CableEnd, CableLink
    from hwsim.simtime import SimClock
    from hwsim.world import BoardWorld

    from worldkit import Host
    cfg = config_from_text(TWO_BOARDS, "two.toml")
    left, right = cfg.boards
    link = CableLink("left:0-right:1")
    a = Host(BoardWorld(left, SimClock(80), Scenario(), cable_ends=[CableEnd(link, 0, 0)]))
    b = Host(BoardWorld(right, SimClock(160), Scenario(), cable_ends=[CableEnd(link, 1, 1)]))
    link.attach(0, 80)
    link.attach(1, 160)
    a.record(3)
    b.record(33)
    ramp_a = iter(range(100000))
    ramp_b = iter(range(100000))

    def send_a(h):
        h.tx[3] = [next(ramp_a) % 30000 for _ in range(80)]

    def send_b(h):
        h.tx[33] = [-(next(ramp_b) % 30000) for _ in range(160)]

    a.send("CAS", 3, SEIZE)
    for k in range(40):                                 # 2 left ticks per right tick
        if k % 2:
            assert link.wait_ready(1, 160, threading.Event(), timeout=0)
            b.run(ticks=1, tx_fn=send_b)
        assert link.wait_ready(0, 80, threading.Event(), timeout=0)
        a.run(ticks=1, tx_fn=send_a)
    a.run(ticks=1, tx_fn=send_a)                        # its second 10 ms of right's last block
    assert not link.wait_ready(0, 80, threading.Event(), timeout=0)   # now left waits for right
    got_b, got_a = b.heard(33), a.heard(3)
    start = int(np.flatnonzero(got_b)[0])
    assert np.array_equal(got_b[start:], np.arange(1, 1 + len(got_b) - start) % 30000)
    start = int(np.flatnonzero(got_a)[0])
    assert np.array_equal(got_a[start:], -(np.arange(1, 1 + len(got_a) - start) % 30000))
    assert [(e.chan, e.value) for _, e in b.events if e.kind == "CAS"] == [(33, SEIZE)]
    assert link.underruns == [0, 0]


def test_cable_between_two_boards_each_with_its_own_host():
    """Two boards, a host each on its own thread (one ticking every 10 ms, the other every
    20 ms): each host runs until it has the other's bits and audio (and the other has its);
    meanwhile the boards tick in step."""
    import itertools
    import os
    import threading

    from boarddrv import EventKind, open_board
    from hwsim.simulator import Simulator
    tag = f"r2c{os.getpid()}n{next(itertools.count())}"
    text = TWO_BOARDS.replace('"left', f'"{tag}l').replace('"right', f'"{tag}r')
    cfg = config_from_text(text, "two.toml")
    got: dict[str, tuple[list, np.ndarray]] = {}
    satisfied: set[str] = set()
    lock = threading.Lock()
    underruns_when_done: list[int] = []

    def host(name: str, block: int, chan: int, bits: int, level: int, want_bits: int, want_level: int) -> None:
        with open_board(f"sim://{name}") as board:
            board.start(block=block)
            board.set_cas(chan, bits)
            events: list = []
            rx = np.zeros(block, np.int16)
            for _ in range(4000):
                board.wait_tick(timeout=5.0)
                events += board.events()
                if name not in satisfied:        # (once the other host leaves, silence follows)
                    rx = board.rx[chan].copy()
                board.tx[chan] = level
                board.commit()
                have = any(e.kind == EventKind.CAS and e.value == want_bits for e in events)
                with lock:
                    if have and np.all(rx == want_level):
                        satisfied.add(name)
                    if len(satisfied) == 2:
                        if not underruns_when_done:
                            underruns_when_done.append(sum(sum(e.link.underruns)
                                                           for ends in sim.cable_ends.values() for e in ends))
                        break
            got[name] = (events, rx)

    with Simulator(cfg, Scenario()) as sim:
        threads = [threading.Thread(target=host, args=(f"{tag}l", 80, 3, SEIZE, 1000, ACK, -2000)),
                   threading.Thread(target=host, args=(f"{tag}r", 160, 33, ACK, -2000, SEIZE, 1000))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    (lev, lrx), (rev, rrx) = got[f"{tag}l"], got[f"{tag}r"]
    assert [(e.chan, e.value) for e in lev if e.kind == EventKind.CAS] == [(3, ACK)]
    assert [(e.chan, e.value) for e in rev if e.kind == EventKind.CAS] == [(33, SEIZE)]
    assert np.all(lrx == -2000) and np.all(rrx == 1000)
    assert underruns_when_done == [0]                   # in step: no tick went without the other's block


def test_compelled_cycle_timing_and_the_forward_safety_timer(e1_cfg):
    """Each half of a cycle takes the exchange a few ticks (two 10 ms frames to hear a
    change, one tick to act); a host that acknowledges and then never answers the
    first digit gets a clear-forward after mf_fwd_safety (10 s)."""
    sc = Scenario().caller(0.0, "e1site:0", "1", called="23").caller(0.0, "e1site:1", "1", called="23")
    h = make(e1_cfg, sc)
    p = R2Peer(h, 0, forward=False)
    p.wait_cas(SEIZE)
    p.cas(ACK)
    sig, t_on = p.wait_signal()
    assert sig == 2 and t_on - 1 <= 3                    # the first digit right after the acknowledge
    p.send(A1)
    t_off = p.wait_silence()
    assert 1 <= t_off - t_on <= 3                       # our A-1 stops its signal within 60 ms
    p.stop()
    sig, t_next = p.wait_signal()
    assert sig == 3 and 1 <= t_next - t_off <= 3        # our A-1 ended: the next digit within 60 ms
    q = R2Peer(h, 1, forward=False)
    q.cas(ACK)
    q.wait_signal()                                     # and never answered
    t_clear = q.wait_cas(CLEAR_FORWARD, 12.0)
    assert secs(h, t_clear) == pytest.approx(10.0 + 0.1, abs=0.2)
    q.cas(IDLE)
    q.step()
    assert [c.result for c in h.world.calls if c.channel == 1] == ["mf-timeout"]


def test_span_r2_table_sets_the_exchanges_timers_and_when_it_asks_for_ani():
    text = E1.replace('count = 2', 'count = 2\n[board.span.r2]\nmf_back_cycle = 1.0\nmf_pulse = 0.1\n'
                                    'ani_after_digits = 0\nmax_dnis = 4\n')
    cfg = config_from_text(text, "e1.toml").boards[0]
    assert cfg.spans[1].r2.mf_back_cycle == 1.0 and cfg.spans[1].r2.seize_ack == 2.0
    h = make(cfg, Scenario())
    p = R2Peer(h, 40, forward=True)
    p.cas(SEIZE)
    p.wait_cas(ACK, 0.1)
    assert [p.forward_cycle(d) for d in (1, 2)] == [A1, A1]       # ani_after_digits = 0: never A-6
    last = h.tick
    sig, t_pulse = p.wait_signal(2.0)
    assert sig == A3 and secs(h, t_pulse - last) == pytest.approx(1.0, abs=0.1)   # mf_back_cycle
    assert secs(h, p.wait_silence() - t_pulse) == pytest.approx(0.1, abs=0.03)   # mf_pulse
    assert p.forward_cycle(1) == B_ACCEPT
    q = R2Peer(h, 41, forward=True)
    q.cas(SEIZE)
    q.wait_cas(ACK, 0.1)
    assert [q.forward_cycle(d) for d in (5, 6, 7, 8)] == [A1, A1, A1, A3]   # max_dnis = 4
    assert h.world.live[41].called == "5678" and h.world.live[40].number is None


@pytest.mark.parametrize("span,error", [
    ('signalling = "line"\n[board.span.r2]\nseize_ack = 1.0\n', "only a span with signalling = \"r2\""),
    ('[board.span.r2]\nseize_ack = 0\n', "key 'board\\[0\\].span\\[0\\].r2.seize_ack'"),
    ('[board.span.r2]\nanswer = 3\n', "answer"),
    ('framing = "ccs"\nsignalling = "r2"\n', "only a CAS span has line signalling"),
])
def test_span_signalling_errors(span, error):
    from hwsim.config import ConfigError
    with pytest.raises(ConfigError, match=error):
        config_from_text(E1.replace('count = 2', 'count = 2\n' + span), "e1.toml")


def test_caller_holds_after_a_clear_back_and_takes_a_reanswer(e1_cfg):
    """clear_back_hold: the host's clear-back does not end the call at once; a re-answer
    (0111 again) within the hold continues it; a second clear-back left alone makes the
    caller clear forward when the hold runs out."""
    sc = Scenario().caller(0.0, "e1site:6", "66", called="1", clear_back_hold=3.0, hangup_after=60.0)
    h = make(e1_cfg, sc)
    p = R2Peer(h, 6, forward=False)
    inbound_to_answer(p, 1, 2)
    h.run(1.0)
    p.cas(CLEAR_BACK)
    p.quiet_for(2.0)
    assert p.cas_events()[-1][1] == SEIZE                # still seized: held
    p.cas(ANSWER)                                        # re-answer
    h.run(5.0)
    assert p.cas_events()[-1][1] == SEIZE
    p.cas(CLEAR_BACK)
    t0 = h.tick
    t = p.wait_cas(CLEAR_FORWARD, 4.0)
    assert secs(h, t - t0) == pytest.approx(3.0, abs=0.05)
    p.cas(IDLE)
    p.step()
    (call,) = h.world.calls
    assert call.who_hung_up == "host" and any(n.startswith("re-answer") for n in call.notes)


def test_example_scenario_calls_in_and_out():
    """hwsim/scenarios/e1-r2.toml against the scripted host: its first caller arrives with
    ANI, DNIS and category; 10000 is busy, 99999 unallocated, 12345 answered."""
    import os

    import hwsim
    from hwsim.config import load_config
    from hwsim.scenario import load_scenario
    from hwsim.simtime import SimClock
    from hwsim.world import BoardWorld

    from worldkit import Host
    base = os.path.dirname(hwsim.__file__)
    cfg = load_config(os.path.join(base, "configs", "e1-site.toml")).boards[0]
    h = Host(BoardWorld(cfg, SimClock(160), load_scenario(os.path.join(base, "scenarios", "e1-r2.toml"))))
    p = R2Peer(h, 0, forward=False)
    inbound_to_answer(p, 5, 11)
    p.step()
    call = h.world.live[0]
    assert (call.number, call.called, call.category, call.answer is not None) == (
        "13800138000", "95588", "national_subscriber", True)
    for chan, dnis, want in ((100, "10000", B_BUSY), (101, "99999", B_UNALLOCATED), (102, "12345", B_ACCEPT)):
        q = R2Peer(h, chan, forward=True)
        assert outbound_register(q, dnis, "6001")[0] == want
    assert R2Peer(h, 102, forward=True).wait_cas(ANSWER, 5.0)
