"""Random cable delays, numbers, decisions and clear orders (hypothesis): every call ends as decided, both ends idle."""
from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from voiceserver.r2.actions import CallAccepted, CallFailed, CallOffered, Cause, LineEvent, LineEventKind
from voiceserver.r2.variants import RELEASE_CONTROLS, VARIANTS, load_variant

from r2kit import Cable

DECISIONS = [("accept", True), ("accept", False), ("reject", Cause.BUSY), ("reject", Cause.CONGESTION),
             ("reject", Cause.UNALLOCATED)]


def jittered(seed: int, bits_max: int, mf_max: int):
    rng = random.Random(seed)

    def delay(kind: str) -> int:
        if kind == "bits":
            return rng.randint(0, bits_max)
        return rng.randint(15, mf_max)     # an MF receiver needs ~20 ms to decide either way
    return delay


@settings(max_examples=200, deadline=None)
@given(variant=st.sampled_from(VARIANTS), seed=st.integers(0, 2**32 - 1),
       bits_max=st.integers(0, 30), mf_max=st.integers(15, 70),
       dnis=st.text("0123456789", min_size=1, max_size=15), ani=st.text("0123456789", max_size=12),
       decision=st.sampled_from(DECISIONS), caller_clears_first=st.booleans(),
       control=st.sampled_from(RELEASE_CONTROLS))
def test_random_timing_and_numbers(variant: str, seed: int, bits_max: int, mf_max: int, dnis: str, ani: str,
                                   decision: tuple[str, object], caller_clears_first: bool, control: str) -> None:
    v = load_variant(variant, {"line": {"release_control": control}})
    c = Cable(v, delays=jittered(seed, bits_max, mf_max), decide=lambda offer: decision)
    c.call(dnis, ani)
    c.run(until=30000)
    offers = c.b.of(CallOffered)
    assert len(offers) == 1
    expect_ani = ani[:v.register.max_ani]
    assert offers[0].dnis == dnis[:v.register.max_dnis] and offers[0].ani == expect_ani
    if decision[0] == "accept":
        accepted = c.a.of(CallAccepted)
        assert len(accepted) == 1 and accepted[0].charge is decision[1]
        assert c.a.line(LineEventKind.ANSWERED)
        first, second = (c.a, c.b) if caller_clears_first else (c.b, c.a)
        t0 = c.now
        c.do(first, lambda now: first.ch.clear(now), c.now + 100)
        # the other party hangs up a second later (what a held call waits for)
        c.do(second, lambda now: second.ch.clear(now), c.now + 1100)
        c.run(until=c.now + 10000)
        held = {"calling": not caller_clears_first, "called": caller_clears_first}.get(control, False)
        assert bool(c.a.line(LineEventKind.CLEAR_BACK)) is (not caller_clears_first)
        # held: the line is released only after the other party's clear; else before it
        released_at = [t for end in (c.a, c.b) for t, a in end.events
                       if isinstance(a, LineEvent) and a.kind is LineEventKind.RELEASED]
        assert len(released_at) == 2
        assert all((t >= t0 + 1100) is held for t in released_at), (control, caller_clears_first, released_at)
    else:
        failed = c.a.of(CallFailed)
        b = v.group_b
        order = [(Cause.BUSY, b.busy), (Cause.CONGESTION, b.congestion), (Cause.UNALLOCATED, b.unallocated)]
        signal = dict(order)[decision[1]]          # type: ignore[index]
        expect = next(cause for cause, s in order if s == signal)   # Mexico: B-2 is busy and unallocated
        assert len(failed) == 1 and failed[0].cause is expect and failed[0].signal == signal
    assert c.idle(), (c.a.ch.state, c.b.ch.state, c.a.kinds(), c.b.kinds())
