"""Agent states: transitions, reasons, misses, wrap-up, pending logout."""
from __future__ import annotations

import pytest

from voiceserver.acd.agents import Agent, AgentSpec, AgentState, AgentStateError


def agent(**kw) -> Agent:
    return Agent(AgentSpec("alice", phone=("hotline", 4), **kw), 0)


def test_a_call_cycle_with_wrapup() -> None:
    a = agent(wrapup_ms=10_000)
    a.offer("c1", 1_000)
    assert a.state is AgentState.RINGING and a.unavailable(1_000) == "busy: ringing for c1"
    a.answered("c1", 3_000)
    assert a.unavailable(4_000) == "busy: on call c1"
    a.ended("c1", 63_000)
    assert (a.calls, a.talk_ms, a.state) == (1, 60_000, AgentState.WRAP_UP)
    assert a.deadline == 73_000 and a.unavailable(70_000) == "wrap-up (3.0 s left)"
    assert a.tick(72_999) is False
    assert a.tick(73_000) is True and a.state is AgentState.READY
    assert a.idle_since == 63_000          # idle since the call ended


def test_misses_make_the_agent_not_ready() -> None:
    a = agent(max_misses=2)
    a.offer("c1", 0)
    assert a.ring_over("c1", 15_000, missed=True) is False and a.misses == 1
    a.offer("c2", 20_000)
    assert a.ring_over("c2", 35_000, missed=True) is True
    assert a.unavailable(35_000) == "not ready (missed 2 calls in a row)"
    a.set_ready(40_000)
    assert a.misses == 0 and a.state is AgentState.READY


def test_a_stopped_ring_is_not_a_miss_and_keeps_the_idle_clock() -> None:
    a = agent()
    a.offer("c1", 5_000)
    a.ring_over("c1", 6_000, missed=False)
    assert a.misses == 0 and a.idle_since == 0


def test_never_two_calls() -> None:
    a = agent()
    a.offer("c1", 0)
    with pytest.raises(AgentStateError):
        a.offer("c2", 1)
    a.answered("c1", 2)
    with pytest.raises(AgentStateError):
        a.offer("c2", 3)
    with pytest.raises(AgentStateError):
        a.answered("c2", 3)


def test_logout_and_not_ready_during_a_call_take_effect_after_it() -> None:
    a = agent()
    a.offer("c1", 0)
    a.answered("c1", 1)
    a.set_not_ready(2, "lunch")
    assert a.state is AgentState.ON_CALL
    a.ended("c1", 10)
    assert a.state is AgentState.NOT_READY and a.reason == "lunch"
    a.set_ready(11)
    a.offer("c2", 12)
    a.answered("c2", 13)
    a.logout(14)
    assert a.logout_pending and a.state is AgentState.ON_CALL
    a.ended("c2", 20)
    assert a.state is AgentState.LOGGED_OUT and a.unavailable(20) == "logged out"
    with pytest.raises(AgentStateError, match="log in first"):
        a.set_ready(21)
    a.login(22)
    assert a.state is AgentState.READY


def test_spec_checks() -> None:
    with pytest.raises(ValueError, match="exactly one of phone or number"):
        AgentSpec("x")
    with pytest.raises(ValueError, match="needs a trunk"):
        AgentSpec("x", number="123")
    assert Agent(AgentSpec("x", number="1", trunk="pstn", start="logged_out")).state \
        is AgentState.LOGGED_OUT
