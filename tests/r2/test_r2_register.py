"""R2 registers one at a time, fed MF signals by hand: the compelled sequences of Q.441 and China No.1."""
from __future__ import annotations

import pytest

from voiceserver.r2.actions import CallAccepted, CallFailed, CallOffered, Cause, MfStart, MfStop, ReadyToAnswer
from voiceserver.r2.register import IncomingRegister, OutgoingRegister, RegisterState, digit_signal
from voiceserver.r2.variants import load_variant

CN = load_variant("cn")
ITU = load_variant("itu")


def sent(actions: list) -> list[int]:
    return [a.signal for a in actions if isinstance(a, MfStart)]


def backward(reg: OutgoingRegister, signal: int, now: int) -> list[int]:
    """One compelled cycle seen from the outgoing register: the backward signal on, then off."""
    reg.take()                       # what came before (checked by the caller, or not)
    reg.mf_on(signal, now)
    assert not sent(reg.take()) and reg.tx == 0
    reg.mf_off(now + 30)
    return sent(reg.take())


def test_outgoing_china_sequence() -> None:
    """DNIS digit 1, A-6 category (KA), A-1 ANI digits to I-15, A-1 the rest of the DNIS, silence at the end,
    A-3 (a pulse after the far end's timeout) the category again, B-1 accepted with charge."""
    reg = OutgoingRegister(CN, dnis="5678", ani="123", category="national_subscriber")
    reg.start(0)
    assert sent(reg.take()) == [5]
    assert backward(reg, 6, 100) == [1]           # category: national subscriber
    assert backward(reg, 1, 200) == [1]           # ANI 1
    assert backward(reg, 1, 300) == [2]
    assert backward(reg, 1, 400) == [3]
    assert backward(reg, 1, 500) == [15]          # end of ANI
    assert backward(reg, 1, 600) == [6]           # DNIS goes on
    assert backward(reg, 1, 700) == [7]
    assert backward(reg, 1, 800) == [8]
    assert backward(reg, 1, 900) == []            # no more digits, no I-15 in China: silence
    assert reg.tx == 0
    assert backward(reg, 3, 3000) == [1]          # change to group B: the category (group II)
    reg.mf_on(1, 3100)
    reg.mf_off(3130)
    assert reg.take()[-1] == CallAccepted(charge=True, signal=1)
    assert reg.state is RegisterState.DONE


def test_outgoing_stops_its_signal_when_the_backward_one_starts() -> None:
    reg = OutgoingRegister(CN, dnis="1")
    reg.start(0)
    reg.take()
    reg.mf_on(6, 50)
    assert MfStop(True) in reg.take() and reg.tx == 0


@pytest.mark.parametrize(("signal", "cause"), [(2, Cause.BUSY), (4, Cause.CONGESTION), (5, Cause.UNALLOCATED),
                                              (8, Cause.OUT_OF_ORDER)])
def test_outgoing_china_group_b_failures(signal: int, cause: Cause) -> None:
    reg = OutgoingRegister(CN, dnis="1")
    reg.start(0)
    backward(reg, 3, 100)
    reg.mf_on(signal, 200)
    reg.mf_off(230)
    assert reg.take()[-1] == CallFailed(cause, signal)


def test_outgoing_china_b7_is_accept_without_charge() -> None:
    reg = OutgoingRegister(CN, dnis="1")
    reg.start(0)
    backward(reg, 3, 100)
    reg.mf_on(7, 200)
    reg.mf_off(230)
    assert reg.take()[-1] == CallAccepted(charge=False, signal=7)


def test_outgoing_group_a_congestion_and_repeat_requests() -> None:
    reg = OutgoingRegister(ITU, dnis="4567")
    reg.start(0)
    assert sent(reg.take()) == [4]
    assert backward(reg, 1, 100) == [5]
    assert backward(reg, 1, 200) == [6]
    assert backward(reg, 2, 300) == [5]           # the digit before the last one, then on from there
    assert backward(reg, 1, 400) == [6]
    assert backward(reg, 8, 500) == [4]           # three back
    reg.mf_on(4, 600)
    reg.mf_off(630)
    assert reg.take()[-1] == CallFailed(Cause.CONGESTION, 4)


def test_outgoing_restricted_ani_sends_i12() -> None:
    reg = OutgoingRegister(CN, dnis="1", ani="999", ani_restricted=True)
    reg.start(0)
    backward(reg, 6, 100)
    assert backward(reg, 1, 200) == [12]


def test_outgoing_itu_ends_the_dnis_with_i15() -> None:
    reg = OutgoingRegister(ITU, dnis="12")
    reg.start(0)
    backward(reg, 1, 100)
    assert backward(reg, 1, 200) == [15]


def test_outgoing_times_out_without_backward_signals() -> None:
    reg = OutgoingRegister(CN, dnis="1")
    reg.start(0)
    reg.take()
    reg.timer("mf_fwd_safety", CN.timers.mf_fwd_safety)
    assert reg.take()[-1] == CallFailed(Cause.MF_TIMEOUT, 0, "no backward signal")


def test_outgoing_arguments_are_checked() -> None:
    with pytest.raises(ValueError):
        OutgoingRegister(CN, dnis="")
    with pytest.raises(ValueError):
        OutgoingRegister(CN, dnis="12a")
    with pytest.raises(ValueError):
        OutgoingRegister(CN, dnis="1", category="pay_phone")   # China's table has no signal for it
    assert digit_signal("0") == 10


# -- incoming ---------------------------------------------------------------------------------------
def forward(reg: IncomingRegister, signal: int, now: int) -> list:
    """A forward signal on: the incoming register's reply; then off."""
    reg.mf_on(signal, now)
    acts = reg.take()
    reg.mf_off(now + 30)
    return acts + reg.take()


def test_incoming_china_sequence_with_end_of_dnis_by_timeout() -> None:
    reg = IncomingRegister(CN)
    reg.start(0)
    reg.take()
    assert sent(forward(reg, 5, 100)) == [6]           # first digit: ask for the category
    assert sent(forward(reg, 1, 200)) == [1]           # category II-1: ask for ANI digits
    assert sent(forward(reg, 8, 300)) == [1]
    assert sent(forward(reg, 10, 400)) == [1]
    assert sent(forward(reg, 15, 500)) == [1]          # end of ANI: back to the DNIS
    assert sent(forward(reg, 6, 600)) == [1]
    assert sent(forward(reg, 7, 700)) == [1]
    reg.timer("mf_cycle", 730 + CN.timers.mf_back_cycle)   # silence: the DNIS is complete
    acts = reg.take()
    assert sent(acts) == [3]                           # A-3 as a pulse
    reg.timer("mf_pulse", 730 + CN.timers.mf_back_cycle + CN.timers.mf_pulse)
    assert MfStop(False) in reg.take()
    reg.mf_on(1, 3000)                                 # the category, group II
    assert [a for a in reg.take() if isinstance(a, CallOffered)] == [
        CallOffered("567", "80", "national_subscriber", False)]
    reg.accept(3050, charge=True)
    assert sent(reg.take()) == [1]                     # B-1
    reg.mf_off(3080)
    assert MfStop(False) in reg.take()
    reg.timer("answer_delay", 3080 + CN.timers.answer_delay)
    assert reg.take() == [ReadyToAnswer(True)]


def test_incoming_itu_sequence_with_i15() -> None:
    reg = IncomingRegister(ITU)
    reg.start(0)
    assert sent(forward(reg, 2, 100)) == [5]           # category
    assert sent(forward(reg, 1, 200)) == [5]           # A-5 again: ANI
    assert sent(forward(reg, 15, 300)) == [1]          # no ANI; DNIS on
    assert sent(forward(reg, 3, 400)) == [1]
    assert sent(forward(reg, 15, 500)) == [3]          # I-15: DNIS complete, A-3
    reg.mf_on(1, 600)
    offer = reg.take()[-1]
    assert offer == CallOffered("23", "", "national_subscriber", False)
    reg.reject(610, Cause.BUSY)
    assert sent(reg.take()) == [3]                     # ITU B-3: subscriber busy


def test_incoming_restricted_ani_and_max_dnis() -> None:
    v = load_variant("cn", {"register": {"max_dnis": 3}})
    reg = IncomingRegister(v)
    reg.start(0)
    forward(reg, 1, 100)
    forward(reg, 1, 200)                               # category
    assert sent(forward(reg, 12, 300)) == [1]          # I-12: restricted
    forward(reg, 2, 400)
    assert sent(forward(reg, 3, 500)) == [3]           # third digit: max_dnis reached, A-3 at once
    reg.mf_on(1, 600)
    assert reg.take()[-1] == CallOffered("123", "", "national_subscriber", True)


def test_incoming_times_out_when_no_digit_comes() -> None:
    reg = IncomingRegister(CN)
    reg.start(0)
    reg.take()
    reg.timer("mf_cycle", CN.timers.mf_back_cycle)
    assert isinstance(reg.take()[-1], CallFailed)


def test_incoming_fails_when_the_forward_signal_does_not_end() -> None:
    reg = IncomingRegister(CN)
    reg.start(0)
    reg.mf_on(5, 100)
    reg.take()
    reg.timer("mf_cycle", 100 + CN.timers.mf_back_cycle)
    acts = reg.take()
    assert MfStop(False) in acts and acts[-1] == CallFailed(Cause.MF_TIMEOUT, 0, "compelled cycle not completed")


def test_incoming_offer_not_decided_in_time_is_rejected_with_congestion() -> None:
    reg = IncomingRegister(load_variant("cn", {"register": {"max_dnis": 1, "max_ani": 0}}))
    reg.start(0)
    assert sent(forward(reg, 5, 100)) == [3]
    reg.mf_on(1, 200)
    reg.take()
    reg.timer("offer", 200 + CN.timers.offer)
    acts = reg.take()
    assert sent(acts) == [4] and isinstance(acts[-1], CallFailed)


def test_accept_outside_an_offer_is_a_caller_bug() -> None:
    reg = IncomingRegister(CN)
    with pytest.raises(RuntimeError):
        reg.accept(0)


def test_mexico_asks_for_the_category_with_a6_and_the_ani_in_group_c() -> None:
    """Mexico: DNIS first (end by timeout), then A-6 (category, change to group C), C-1 per ANI digit,
    C-3 change to group B."""
    mx = load_variant("mx")
    out = OutgoingRegister(mx, dnis="12", ani="34")
    inc = IncomingRegister(mx)
    out.start(0)
    inc.start(0)
    assert sent(out.take()) == [1]
    assert sent(forward(inc, 1, 100)) == [1]          # next digit
    assert backward(out, 1, 130) == [2]
    assert sent(forward(inc, 2, 200)) == [1]
    assert backward(out, 1, 230) == []                # no more DNIS: silence
    inc.timer("mf_cycle", 230 + mx.timers.mf_back_cycle)
    assert sent(inc.take()) == [6]                    # pulsed A-6
    assert backward(out, 6, 2300) == [1] and out.group == "C"
    assert sent(forward(inc, 1, 2400)) == [1]         # category; C-1: first ANI digit
    assert backward(out, 1, 2430) == [3]
    assert sent(forward(inc, 3, 2500)) == [1]
    assert backward(out, 1, 2530) == [4]
    assert sent(forward(inc, 4, 2600)) == [1]
    assert backward(out, 1, 2630) == [15]             # end of ANI
    assert sent(forward(inc, 15, 2700)) == [3]        # C-3: change to group B
    assert backward(out, 3, 2730) == [1]              # the category, group II
    inc.mf_on(1, 2800)
    assert [a for a in inc.take() if isinstance(a, CallOffered)] == [
        CallOffered("12", "34", "national_subscriber", False)]
