"""Two R2 channels back to back (outgoing on one end, incoming on the other) through a simulated cable."""
from __future__ import annotations

import random

import pytest

from voiceserver.r2.actions import CallAccepted, CallFailed, CallOffered, Cause, LineEventKind, ReadyToAnswer
from voiceserver.r2.line import LineState
from voiceserver.r2.variants import VARIANTS, load_variant

from r2kit import Cable

K = LineEventKind
CN = load_variant("cn")


def settle(c: Cable, ms: int = 20000) -> None:
    c.run(until=c.now + ms)


def clear_from(c: Cable, end: str, at_ms: int = 500) -> None:
    side = c.a if end == "a" else c.b
    c.do(side, lambda now: side.ch.clear(now), c.now + at_ms)


def test_a_hundred_china_calls_carry_dnis_ani_and_category() -> None:
    rng = random.Random(12)
    c = Cable(CN)
    categories = ["national_subscriber", "national_priority_subscriber", "test_equipment",
                  "international_subscriber"]
    for n in range(100):
        dnis = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 12)))
        ani = "".join(rng.choice("0123456789") for _ in range(rng.randint(0, 11)))
        category = categories[n % len(categories)]
        c.clear_events()
        c.call(dnis, ani, category)
        settle(c)
        assert c.b.of(CallOffered) == [CallOffered(dnis, ani, category, False)], n
        assert c.a.of(CallAccepted) == [CallAccepted(charge=True, signal=1)]
        assert c.a.ch.state is LineState.ANSWERED and c.b.ch.state is LineState.ANSWERED
        if n % 2:
            clear_from(c, "a")
        else:                      # China: calling-party control; the caller clears after the clear-back
            clear_from(c, "b")
            clear_from(c, "a", 800)
        settle(c)
        assert c.idle(), (n, c.a.ch.state, c.b.ch.state)
        assert c.a.line(K.RELEASED) and c.b.line(K.RELEASED)


@pytest.mark.parametrize("variant", VARIANTS)
def test_each_variant_completes_calls(variant: str) -> None:
    v = load_variant(variant)
    c = Cable(v)
    for dnis, ani in (("1", ""), ("2468013579", "55501"), ("0", "0")):
        c.clear_events()
        c.call(dnis, ani)
        settle(c)
        # Mexico sends I-15 for both "no more ANI" and "restricted": no digit before it reads as restricted
        ambiguous = v.group_i.end_of_ani == v.group_i.ani_restricted and not ani
        assert c.b.of(CallOffered) == [CallOffered(dnis, ani, "national_subscriber", ambiguous)]
        assert c.a.line(K.ANSWERED)
        clear_from(c, "a")
        settle(c)
        assert c.idle()


@pytest.mark.parametrize(("cause", "signal"), [(Cause.BUSY, 2), (Cause.CONGESTION, 4), (Cause.UNALLOCATED, 5),
                                              (Cause.OUT_OF_ORDER, 8)])
def test_refused_calls_report_the_cause_and_free_the_line(cause: Cause, signal: int) -> None:
    c = Cable(CN, decide=lambda offer: ("reject", cause))
    c.call("12345", "678")
    settle(c)
    assert c.a.of(CallFailed) == [CallFailed(cause, signal)]
    assert not c.a.line(K.ANSWERED) and not c.b.of(ReadyToAnswer)
    assert c.idle()
    c.clear_events()
    c.decide = lambda offer: ("accept", False)         # the next call goes through, no charge
    c.call("12345")
    settle(c)
    assert c.a.of(CallAccepted) == [CallAccepted(charge=False, signal=7)]


def test_clear_back_first_and_clear_forward_first_event_orders() -> None:
    c = Cable(CN)
    c.call("123", "4")
    settle(c)
    clear_from(c, "b")                                  # the called party hangs up first
    c.run(until=c.now + 1000)
    assert c.a.ch.state is LineState.CLEAR_BACK         # calling-party control: held for the caller
    clear_from(c, "a", 0)
    settle(c)
    assert c.a.kinds()[-3:] == ["clear-back", "released", "idle"]
    assert c.b.kinds()[-3:] == ["clear-forward", "released", "idle"]
    c.clear_events()
    c.call("123", "4")
    settle(c)
    clear_from(c, "a")                                  # the caller hangs up first
    settle(c)
    assert "clear-back" not in c.a.kinds() and c.a.kinds()[-2:] == ["released", "idle"]
    assert c.b.kinds()[-3:] == ["clear-forward", "released", "idle"]


def test_glare_both_ends_lose_their_call_then_a_retry_succeeds() -> None:
    c = Cable(CN)
    c.call("111")
    c.do(c.b, lambda now: c.b.ch.call(now, "222"))     # the far end seizes at the same moment
    settle(c)
    assert c.a.line(K.GLARE) and c.b.line(K.GLARE)
    assert not c.a.of(CallOffered) and not c.b.of(CallOffered)
    assert c.idle()
    c.clear_events()
    c.call("111")
    settle(c)
    assert c.b.of(CallOffered)[0].dnis == "111"


@pytest.mark.parametrize("control", ["mutual", "calling", "called"])
def test_release_control_modes(control: str) -> None:
    v = load_variant("cn", {"line": {"release_control": control},
                            "timers": {"clear_back_hold": 3000, "clear_forward_hold": 3000}})
    # the called party hangs up first
    c = Cable(v)
    c.call("123")
    settle(c)
    t0 = c.now
    clear_from(c, "b", 100)
    c.run(until=t0 + 1000)
    if control == "calling":       # held for the caller
        assert c.a.ch.state is LineState.CLEAR_BACK and c.b.ch.state is LineState.CLEAR_BACK
        c.run(until=t0 + 5000)     # the hold runs out: cleared forward
    assert c.idle(), (c.a.ch.state, c.b.ch.state)
    # the caller hangs up first
    c.clear_events()
    c.call("123")
    settle(c)
    t0 = c.now
    clear_from(c, "a", 100)
    c.run(until=t0 + 1000)
    if control == "called":        # held for the called party
        assert c.b.ch.state is LineState.CLEAR_FORWARD and c.a.ch.state is LineState.CLEAR_FORWARD
        clear_from(c, "b", 100)    # the called party hangs up
        c.run(until=c.now + 1000)
    assert c.idle(), (c.a.ch.state, c.b.ch.state)


def test_calling_party_control_allows_the_called_party_to_answer_again() -> None:
    v = load_variant("cn", {"line": {"release_control": "calling"}})
    c = Cable(v)
    c.call("123")
    settle(c)
    clear_from(c, "b", 100)
    c.run(until=c.now + 1000)
    c.do(c.b, lambda now: c.b.ch.answer(now))           # picks up again
    c.run(until=c.now + 1000)
    assert c.a.ch.state is LineState.ANSWERED and c.a.line(K.ANSWERED)[-1].detail == "re-answer"


def test_double_answer_under_mutual_control_clears_the_call() -> None:
    """Double answer (answer, clear-back, answer) refuses a collect call: a mutual-control
    outgoing end takes the clear-back as the end of the call."""
    v = load_variant("cn", {"line": {"double_answer": True, "release_control": "mutual"}})
    c = Cable(v)
    c.call("123")
    settle(c)
    assert c.a.line(K.CLEAR_BACK) and c.idle()


def test_caller_abandons_during_register_signalling() -> None:
    c = Cable(CN, decide_ms=1000)
    c.call("12345678")
    c.run(until=300)                                    # MF under way
    clear_from(c, "a", 0)
    settle(c)
    assert c.idle() and not c.b.of(ReadyToAnswer)
    assert c.b.kinds()[-3:] == ["clear-forward", "released", "idle"]


def test_no_answer_times_out_at_the_outgoing_end() -> None:
    c = Cable(load_variant("cn", {"timers": {"answer": 5000}}), answer_ms=None)
    c.call("1")
    settle(c, 30000)
    assert [e.cause for e in c.a.line(K.FAILED)] == [Cause.NO_ANSWER]
    assert c.idle()


def test_an_answer_that_overtakes_the_last_mf_cycle_still_completes_the_call() -> None:
    """The incoming end answers right after accepting: the answer bits reach the outgoing end before
    the B signal ends there. Both the accept and the answer are reported, in that order or not."""
    c = Cable(CN, answer_ms=None)
    c.call("1234", "99")
    t = 0
    while not c.b.of(CallOffered):
        t += 1
        c.run(until=t)
        assert t < 20000
    c.do(c.b, lambda now: c.b.ch.answer(now), c.now + 12)   # the accept goes out at +10
    settle(c)
    assert c.a.of(CallAccepted) == [CallAccepted(charge=True, signal=1)]
    assert c.a.ch.state is LineState.ANSWERED and c.b.ch.state is LineState.ANSWERED
    assert not c.a.line(K.FAILED) and not c.b.line(K.FAILED)
    t_answer = next(t for t, a in c.a.events if a == c.a.line(K.ANSWERED)[0])
    t_accept = next(t for t, a in c.a.events if isinstance(a, CallAccepted))
    assert t_answer < t_accept                         # the case this test is about
