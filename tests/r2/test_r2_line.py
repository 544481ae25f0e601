"""R2 line signalling of one channel, fed bits by hand: the Q.421/Q.422 sequences, China's CD bits."""
from __future__ import annotations

import dataclasses

import pytest

from voiceserver.r2.actions import Cause, LineEvent, LineEventKind, SetBits, StartTimer
from voiceserver.r2.line import Direction, LineSignalling, LineState
from voiceserver.r2.variants import load_variant

CN = load_variant("cn")
K = LineEventKind


def cn(release_control: str = "mutual", **timers: int) -> LineSignalling:
    v = load_variant("cn", {"line": {"release_control": release_control}, "timers": timers})
    line = LineSignalling(v)
    line.take()
    return line


def bits(actions: list) -> list[str]:
    return [a.abcd for a in actions if isinstance(a, SetBits)]


def events(actions: list) -> list[LineEvent]:
    return [a for a in actions if isinstance(a, LineEvent)]


def rx(line: LineSignalling, abcd: str, now: int) -> list:
    """Bits that hold through the persistence time."""
    line.rx_bits(abcd, now)
    line.timer("persistence", now + line.t.persistence)
    return line.take()


def test_china_bits_of_each_state_follow_the_table() -> None:
    """Idle 1011, seize 0011, seize ack 1111, answer 0111, clear-back 1111, clear-forward 1011."""
    out = cn()
    assert out.tx_ab + CN.line.cd == "1011"
    assert out.seize(0)
    assert bits(out.take()) == ["0011"]
    inc = cn()
    acts = rx(inc, "0011", 0)
    assert bits(acts) == ["1111"] and [e.kind for e in events(acts)] == [K.SEIZED]
    assert inc.state is LineState.SEIZE_ACKNOWLEDGED and inc.direction is Direction.INCOMING
    acts = rx(out, "1111", 10)
    assert [e.kind for e in events(acts)] == [K.SEIZE_ACKNOWLEDGED]
    assert inc.answer(100)
    assert bits(inc.take()) == ["0111"]
    assert [e.kind for e in events(rx(out, "0111", 110))] == [K.ANSWERED]
    inc.clear(200)
    assert bits(inc.take()) == ["1111"]                    # clear-back
    acts = rx(out, "1111", 210)                            # mutual: clear forward at once
    assert [e.kind for e in events(acts)] == [K.CLEAR_BACK] and bits(acts) == ["1011"]
    acts = rx(inc, "1011", 220)
    assert [e.kind for e in events(acts)] == [K.CLEAR_FORWARD, K.RELEASED] and bits(acts) == ["1011"]
    acts = rx(out, "1011", 230)
    assert [e.kind for e in events(acts)] == [K.RELEASED]
    out.timer("release_guard", 230 + out.t.persistence + out.t.release_guard)
    assert [e.kind for e in events(out.take())] == [K.IDLE] and out.state is LineState.IDLE


def test_itu_uses_cd_01() -> None:
    line = LineSignalling(load_variant("itu"))
    assert bits(line.take()) == ["1001"]
    line.seize(0)
    assert bits(line.take()) == ["0001"]


def test_a_glitch_shorter_than_the_persistence_time_is_not_a_signal() -> None:
    line = cn()
    line.rx_bits("0011", 0)                  # a seize that does not last
    line.rx_bits("1011", 5)
    line.timer("persistence", 20)            # stale: stopped
    assert line.state is LineState.IDLE and events(line.take()) == []
    line.rx_bits("0011", 30)
    line.rx_bits("0011", 35)                 # read again: still the same pending change
    line.timer("persistence", 50)
    assert line.state is LineState.SEIZE_ACKNOWLEDGED


def test_zero_persistence_acts_at_once() -> None:
    line = cn(persistence=0)
    line.rx_bits("0011", 0)
    assert line.state is LineState.SEIZE_ACKNOWLEDGED


def test_seize_ack_timeout_releases_with_its_cause() -> None:
    line = cn()
    line.seize(0)
    acts = line.take()
    assert StartTimer("seize_ack", CN.timers.seize_ack) in acts
    line.timer("seize_ack", 1999)            # early: not due
    assert line.state is LineState.SEIZED
    line.timer("seize_ack", 2000)
    evs = events(line.take())
    assert [(e.kind, e.cause) for e in evs] == [(K.FAILED, Cause.SEIZE_ACK_TIMEOUT),
                                               (K.RELEASED, Cause.SEIZE_ACK_TIMEOUT)]
    assert line.tx_ab == "10"


def test_clear_before_the_seize_ack_waits_for_it_then_clears_forward() -> None:
    line = cn()
    line.seize(0)
    line.clear(5)
    line.take()
    acts = rx(line, "1111", 10)
    assert bits(acts) == ["1011"] and line.state is LineState.CLEAR_FORWARD
    assert K.SEIZE_ACKNOWLEDGED not in [e.kind for e in events(acts)]
    assert [e.kind for e in events(rx(line, "1011", 40))] == [K.RELEASED]


def test_double_seizure_holds_then_clears_and_reports_glare() -> None:
    line = cn()
    line.seize(0)
    line.take()
    acts = rx(line, "0011", 3)              # the far end seized too
    assert [(e.kind, e.cause) for e in events(acts)] == [(K.GLARE, Cause.GLARE)]
    assert line.state is LineState.GLARE and line.tx_ab == "00"   # seizure held
    hold = 3 + CN.timers.persistence + CN.timers.glare_hold
    line.timer("glare_hold", hold)
    assert bits(line.take()) == ["1011"]
    acts = rx(line, "1011", hold + 5)
    assert [(e.kind, e.cause) for e in events(acts)] == [(K.RELEASED, Cause.GLARE)]


def test_far_end_blocking_and_unblocking() -> None:
    line = cn()
    acts = rx(line, "1111", 0)
    assert [(e.kind, e.detail) for e in events(acts)] == [(K.BLOCKED, "remote")]
    assert not line.seize(30)
    acts = rx(line, "1011", 100)
    assert [(e.kind, e.detail) for e in events(acts)] == [(K.UNBLOCKED, "remote")]
    assert line.seize(200)


def test_local_block_sends_blocked_and_waits_for_the_call_to_end() -> None:
    line = cn()
    rx(line, "0011", 0)                      # a call in progress
    line.block(50)
    assert bits(line.take()) == [] and line.state is LineState.SEIZE_ACKNOWLEDGED
    acts = rx(line, "1011", 100)             # the caller gives up
    assert bits(acts) == ["1111"] and line.state is LineState.BLOCKED
    line.unblock(200)
    assert bits(line.take()) == ["1011"] and line.state is LineState.IDLE


def test_calling_party_control_holds_a_clear_back_until_the_timer() -> None:
    line = cn("calling", clear_back_hold=5000)
    line.seize(0)
    rx(line, "1111", 10)
    rx(line, "0111", 100)
    acts = rx(line, "1111", 1000)            # the called party hangs up
    assert [e.kind for e in events(acts)] == [K.CLEAR_BACK] and bits(acts) == []
    assert line.state is LineState.CLEAR_BACK
    acts = rx(line, "0111", 2000)            # ... and picks up again: the call goes on
    assert [(e.kind, e.detail) for e in events(acts)] == [(K.ANSWERED, "re-answer")]
    rx(line, "1111", 3000)
    line.timer("clear_back_hold", 3000 + CN.timers.persistence + 5000)
    assert bits(line.take()) == ["1011"] and line.state is LineState.CLEAR_FORWARD


def test_called_party_control_holds_a_clear_forward_at_the_incoming_end() -> None:
    line = cn("called", clear_forward_hold=4000)
    rx(line, "0011", 0)
    line.answer(100)
    line.take()
    acts = rx(line, "1011", 1000)            # the caller hangs up
    assert [e.kind for e in events(acts)] == [K.CLEAR_FORWARD] and bits(acts) == []
    assert line.state is LineState.CLEAR_FORWARD
    line.clear(1500)                         # the called party hangs up: released now
    acts = line.take()
    assert bits(acts) == ["1011"] and [e.kind for e in events(acts)] == [K.RELEASED]


def test_called_party_control_releases_when_the_hold_runs_out() -> None:
    line = cn("called", clear_forward_hold=4000)
    rx(line, "0011", 0)
    line.answer(100)
    rx(line, "1011", 1000)
    line.timer("clear_forward_hold", 1000 + CN.timers.persistence + 4000)
    assert [e.kind for e in events(line.take())] == [K.RELEASED]


def test_mutual_control_releases_on_either_clear() -> None:
    inc = cn("mutual")
    rx(inc, "0011", 0)
    inc.answer(100)
    inc.take()
    assert [e.kind for e in events(rx(inc, "1011", 500))] == [K.CLEAR_FORWARD, K.RELEASED]


def test_double_answer_sends_answer_clear_back_answer() -> None:
    line = cn()
    rx(line, "0011", 0)
    line.answer(100, double=True)
    assert bits(line.take()) == ["0111"]
    line.timer("double_answer", 100 + CN.timers.double_answer)
    assert bits(line.take()) == ["1111"]
    line.timer("double_answer", 100 + 2 * CN.timers.double_answer)
    assert bits(line.take()) == ["0111"]


def test_answer_timeout_clears_forward() -> None:
    line = cn()
    line.seize(0)
    rx(line, "1111", 10)
    line.await_answer(500)
    line.timer("answer", 500 + CN.timers.answer)
    acts = line.take()
    assert [(e.kind, e.cause) for e in events(acts)] == [(K.FAILED, Cause.NO_ANSWER)] and bits(acts) == ["1011"]


def test_time_going_backwards_is_a_caller_bug() -> None:
    line = cn()
    line.rx_bits("0011", 100)
    with pytest.raises(ValueError):
        line.rx_bits("1011", 50)


def test_commands_in_the_wrong_state_do_nothing() -> None:
    line = cn()
    assert not line.answer(0)                # no call
    line.seize(0)
    assert not line.seize(1) and not line.answer(2)
    assert dataclasses.replace(CN.line).abcd("10") == "1011"
