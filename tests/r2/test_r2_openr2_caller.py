"""The incoming register against OpenR2's China caller, signal by signal (no processes).

OpenR2 1.3.3 (Debian's libopenr2) as a China caller answers A-1 with the next
DNIS digit even after it sent the category (its group A handler tries the
DNIS requests first, and China uses A-1 for both), so it never sends its ANI;
with no digit left it falls silent and waits for our timeout. The end-to-end
run is tests/r2/test_openr2_interop.py; docs/r2.md, "Interop with OpenR2".
"""
from __future__ import annotations

from voiceserver.r2.actions import CallFailed, CallOffered, MfStart, MfStop
from voiceserver.r2.register import IncomingRegister
from voiceserver.r2.variants import load_variant

CN = load_variant("cn")
ASK_AFTER_DNIS = load_variant("cn", override={"register": {"ani_after_dnis_digits": 0}})


def sent(actions: list) -> list[int]:
    return [a.signal for a in actions if isinstance(a, MfStart)]


def forward(reg: IncomingRegister, signal: int, now: int) -> list[int]:
    """A forward signal on, then off: the backward signals it got."""
    reg.mf_on(signal, now)
    acts = reg.take()
    reg.mf_off(now + 30)
    return sent(acts + reg.take())


def silence(reg: IncomingRegister, since: int) -> list:
    """The forward end stays silent until our MF cycle timer runs out."""
    reg.timer("mf_cycle", since + CN.timers.mf_back_cycle)
    return reg.take()


def test_openr2_china_caller_with_the_category_asked_after_the_dnis() -> None:
    """DNIS 95566 on A-1s; silence: the DNIS is complete, A-6; the category; A-1 gets silence
    (OpenR2 has no DNIS left and sends no ANI): the ANI is over, A-3; the category; offered."""
    reg = IncomingRegister(ASK_AFTER_DNIS)
    reg.start(0)
    reg.take()
    for i, digit in enumerate((9, 5, 5, 6, 6)):
        assert forward(reg, digit, 100 + 100 * i) == [1]
    assert sent(silence(reg, 530)) == [6]               # end of DNIS by timeout: A-6 (a pulse)
    reg.timer("mf_pulse", 530 + CN.timers.mf_back_cycle + CN.timers.mf_pulse)
    assert MfStop(False) in reg.take()
    assert forward(reg, 1, 3000) == [1]                 # II-1; A-1: the next ANI digit, please
    acts = silence(reg, 3030)                           # OpenR2: "No more DNIS ... waiting for timeout"
    assert not any(isinstance(a, CallFailed) for a in acts)
    assert sent(acts) == [3]                            # the ANI is over: A-3, change to group B
    reg.mf_on(1, 6000)                                  # the category again (group II)
    assert [a for a in reg.take() if isinstance(a, CallOffered)] == [
        CallOffered("95566", "", "national_subscriber", False)]


def test_an_exchange_that_goes_silent_in_its_ani_is_no_longer_a_failure() -> None:
    """The China sequence with A-6 after the first digit: silence where an ANI digit or I-15
    was due ends the ANI (as OpenR2's own incoming side takes it), then the DNIS goes on."""
    reg = IncomingRegister(CN)
    reg.start(0)
    reg.take()
    assert forward(reg, 9, 100) == [6]
    assert forward(reg, 1, 200) == [1]                  # category; A-1: ANI
    assert forward(reg, 8, 300) == [1]                  # one ANI digit, then silence
    acts = silence(reg, 330)
    assert not any(isinstance(a, CallFailed) for a in acts)
    assert sent(acts) == [1]                            # the next DNIS digit
