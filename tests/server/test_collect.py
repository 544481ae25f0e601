"""DigitCollector: the termination matrix on a simulated millisecond clock."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voiceserver.ivr.collect import DTMF_DIGITS, CollectSpec, DigitCollector, Reason


def run(col: DigitCollector, events: list[tuple[int, str | None]]):
    """Drive a collector: (t, digit) feeds a digit, (t, None) ticks. First result wins."""
    for t, d in events:
        res = col.feed(d, t) if d is not None else col.tick(t)
        if res is not None:
            return res
    return None


def armed(spec: CollectSpec, t: int = 0) -> DigitCollector:
    col = DigitCollector(spec, t)
    assert col.prompt_done(t) is None
    return col


def test_max_digits_ends_on_the_digit():
    col = armed(CollectSpec(max_digits=3))
    res = run(col, [(100, "1"), (200, "2"), (300, "3")])
    assert (res.digits, res.reason, res.t, res.valid) == ("123", Reason.MAX_DIGITS, 300, True)


def test_terminator_not_included_and_reported():
    col = armed(CollectSpec(max_digits=8, terminators="#*"))
    res = run(col, [(10, "4"), (20, "2"), (30, "#")])
    assert (res.digits, res.reason, res.terminator) == ("42", Reason.TERMINATOR, "#")


def test_first_digit_timeout_fires_at_first_tick_at_or_after_deadline():
    col = armed(CollectSpec(first_timeout=5000), t=1000)
    assert col.deadline == 6000
    assert col.tick(5980) is None
    res = col.tick(6000)
    assert (res.digits, res.reason, res.t, res.valid) == ("", Reason.FIRST_TIMEOUT, 6000, False)
    assert res.timed_out


def test_inter_digit_timeout_restarts_on_each_digit():
    col = armed(CollectSpec(max_digits=8, inter_timeout=3000))
    assert run(col, [(1000, "1"), (3900, None), (3999, "2"), (6998, None)]) is None
    res = col.tick(6999)
    assert (res.digits, res.reason) == ("12", Reason.INTER_TIMEOUT)
    assert not res.timed_out


def test_total_timeout_beats_inter_digit():
    col = armed(CollectSpec(max_digits=20, inter_timeout=3000, total_timeout=5000))
    events = [(t, "5") for t in range(0, 5000, 1000)] + [(5000, None)]
    res = run(col, events)
    assert (res.digits, res.reason, res.t) == ("55555", Reason.TOTAL_TIMEOUT, 5000)


def test_zero_disables_timeouts():
    col = armed(CollectSpec(first_timeout=0, inter_timeout=0))
    assert col.deadline is None
    assert col.tick(10**9) is None


def test_valid_regex_and_min_digits_mark_validity_not_termination():
    spec = CollectSpec(max_digits=8, min_digits=6, terminators="#", valid=r"[1-9]\d*")
    res = run(armed(spec), [(1, "1"), (2, "2"), (3, "#")])
    assert res.reason is Reason.TERMINATOR and not res.valid
    res = run(armed(spec), [(1, d) for d in "0123456#"])
    assert res.digits == "0123456" and not res.valid
    res = run(armed(spec), [(1, d) for d in "123456#"])
    assert res.valid


def test_choices_end_early_on_unambiguous_match():
    spec = CollectSpec(max_digits=2, choices=("1", "2", "10"))
    assert run(armed(spec), [(1, "2")]).reason is Reason.MATCH
    col = armed(spec)
    assert col.feed("1", 1) is None          # "10" is still possible
    assert col.tick(3000) is None
    assert col.tick(3001).reason is Reason.INTER_TIMEOUT and col.result.digits == "1"
    res = run(armed(spec), [(1, "7")])
    assert res is None  # "7" is not a choice: waits for a second digit or timeout


def test_timers_wait_for_the_prompt():
    col = DigitCollector(CollectSpec(first_timeout=1000), start=0)
    assert col.deadline is None
    assert col.tick(50_000) is None          # long prompt: no timeout yet
    col.prompt_done(60_000)
    assert col.tick(60_999) is None
    assert col.tick(61_000).reason is Reason.FIRST_TIMEOUT


def test_barge_in_digit_flags_stop_and_arms_timers():
    col = DigitCollector(CollectSpec(max_digits=4, inter_timeout=2000), start=0)
    assert col.feed("9", 700) is None
    assert col.barged_in and col.armed_at == 700
    assert col.deadline == 2700
    # the prompt_done that follows the stop does not re-arm
    col.prompt_done(720)
    assert col.deadline == 2700


def test_no_barge_in_holds_result_until_prompt_ends():
    col = DigitCollector(CollectSpec(max_digits=1, barge_in=False), start=0)
    assert col.feed("3", 100) is None
    assert not col.barged_in
    assert col.tick(100_000) is None
    assert col.complete and not col.done
    assert col.feed("4", 100_100) is None     # not consumed: already complete
    res = col.prompt_done(120_000)
    assert (res.digits, res.reason, res.t) == ("3", Reason.MAX_DIGITS, 120_000)


def test_no_barge_in_partial_input_timers_start_at_prompt_end():
    col = DigitCollector(CollectSpec(max_digits=4, inter_timeout=3000, barge_in=False), start=0)
    col.feed("1", 100)
    col.prompt_done(9000)
    assert col.deadline == 12_000


def test_typeahead_is_consumed_and_rest_left_over():
    col = DigitCollector(CollectSpec(max_digits=1), start=500, typeahead="123")
    assert col.done and col.result.digits == "1" and col.result.t == 500
    assert col.leftover() == "23"
    col2 = DigitCollector(CollectSpec(max_digits=4, terminators="#"), start=0, typeahead="12")
    assert not col2.done and col2.digits == "12" and col2.leftover() == ""


def test_digits_after_done_are_ignored():
    col = armed(CollectSpec(max_digits=1))
    assert col.feed("1", 1).digits == "1"
    assert col.feed("2", 2) is None
    assert col.result.digits == "1"


def test_bad_inputs_are_clear_errors():
    with pytest.raises(ValueError, match="not a DTMF digit"):
        armed(CollectSpec()).feed("x", 0)
    with pytest.raises(ValueError, match="time went backwards"):
        col = armed(CollectSpec(max_digits=3), t=100)
        col.tick(50)
    with pytest.raises(ValueError, match="bad regular expression"):
        CollectSpec(valid="(")
    with pytest.raises(ValueError, match="not DTMF keys"):
        CollectSpec(terminators="x")
    with pytest.raises(ValueError, match="min_digits"):
        CollectSpec(max_digits=2, min_digits=3)


events = st.lists(st.tuples(st.integers(0, 400), st.sampled_from(list(DTMF_DIGITS) + [None])),
                  max_size=40)


@settings(max_examples=300, deadline=None)
@given(max_digits=st.integers(1, 6), term=st.sampled_from(["", "#", "*#"]),
       first=st.sampled_from([0, 500, 3000]), inter=st.sampled_from([0, 300, 2000]),
       total=st.sampled_from([0, 4000]), barge=st.booleans(), steps=events,
       prompt_end=st.integers(0, 3000))
def test_property_collector_invariants(max_digits, term, first, inter, total, barge, steps,
                                       prompt_end):
    spec = CollectSpec(max_digits=max_digits, min_digits=0, terminators=term, first_timeout=first,
                       inter_timeout=inter, total_timeout=total, barge_in=barge)
    col = DigitCollector(spec, 0)
    t, res, prompt_sent = 0, None, False
    for dt, d in steps:
        t += dt
        if not prompt_sent and t >= prompt_end:
            prompt_sent = True
            res = res or col.prompt_done(t)
        out = col.feed(d, t) if d is not None else col.tick(t)
        if out is not None:
            assert res is None, "a collector returns its result once"
            res = out
    if res is None:
        return
    assert len(res.digits) <= max_digits
    assert all(c not in term for c in res.digits)
    assert res.t <= t
    if res.reason is Reason.MAX_DIGITS:
        assert len(res.digits) == max_digits
    if res.reason is Reason.TERMINATOR:
        assert res.terminator in term
    if res.reason is Reason.FIRST_TIMEOUT:
        assert res.digits == "" and first
    assert col.result == res
