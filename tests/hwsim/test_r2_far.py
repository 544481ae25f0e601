"""hwsim's China No.1 exchange on E1 channels (hwsim.r2far), against a scripted host.

The host here is a test double (r2peer.R2Peer) that sends the exact China
No.1 sequences, signal by signal, and checks what the exchange sends back
and when: line bits as CAS events, MF R2 signals in the audio.
"""
from __future__ import annotations

import pytest

from hwsim.config import config_from_text
from hwsim.parties import Action
from hwsim.scenario import Scenario

from r2peer import R2Peer
from worldkit import E1, make

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
