"""Member penalties in the ACD (Asterisk app_queue's penalty, AMI QueueAdd's Penalty): of the
members free for a call only the lowest penalty is offered it; a higher penalty only when no
lower one is free, or each was offered it in this round. At the event level (the Acd alone)."""
from __future__ import annotations

import pytest

from voiceserver.acd.agents import AgentSpec
from voiceserver.acd.distributor import Acd, Event, Ring
from voiceserver.acd.queues import Member, QueueSpec
from voiceserver.core.events import ServerEventKind

K = ServerEventKind


def rings(out: list) -> list[str]:
    return [c.agent for c in out if isinstance(c, Ring)]


def decisions(out: list) -> list[dict]:
    return [c.data for c in out if isinstance(c, Event) and c.kind == K.ACD_DECISION]


def acd_of(strategy: str, *members: Member) -> Acd:
    agents = [AgentSpec(m.agent, phone=("hb", 4 + i)) for i, m in enumerate(members)]
    return Acd(agents, [QueueSpec("q", tuple(members), strategy=strategy, ring_timeout_ms=10_000)])


def test_the_penalty_0_member_rings_before_the_penalty_5_one_listed_above_it():
    acd = acd_of("top-down", Member("senior", penalty=5), Member("junior"))
    out = acd.call_arrived("c1", "q", "100", t=0)
    assert rings(out) == ["junior"]
    decision, = decisions(out)
    assert decision["skipped"] == [{"agent": "senior", "why": "penalty 5: a member of penalty 0 is free (junior)"}]
    # while junior rings, senior is the free member of the lowest penalty left: next, if junior does not answer
    assert acd.why_not("c1", 1_000) == [{"agent": "junior", "why": "busy: ringing for c1"},
                                        {"agent": "senior", "why": "free: will be offered"}]
    # junior does not answer: the penalty-5 member is offered it (junior was, in this round)
    out = acd.tick(10_000)
    assert rings(out) == ["senior"]
    assert [e.data["agent"] for e in out if isinstance(e, Event) and e.kind == K.ACD_RING_TIMEOUT] == ["junior"]


def test_a_higher_penalty_member_is_rung_at_once_when_no_lower_one_is_free():
    acd = acd_of("longest-idle", Member("low"), Member("high", penalty=5))
    acd.call_arrived("c1", "q", "100", t=0)
    acd.ring_answered("low", "c1", 1_000)                   # low is on a call now
    out = acd.call_arrived("c2", "q", "101", t=2_000)
    assert rings(out) == ["high"]
    assert acd.queue_rows(2_000)[0]["members"] == [
        {"agent": "low", "tier": 1, "penalty": 0, "state": "on_call"},
        {"agent": "high", "tier": 1, "penalty": 5, "state": "ringing"}]


def test_ring_all_rings_only_the_lowest_penalty_present():
    acd = acd_of("ring-all", Member("a", penalty=1), Member("b", penalty=1), Member("c", penalty=2),
                 Member("d", penalty=3))
    assert sorted(rings(acd.call_arrived("c1", "q", "100", t=0))) == ["a", "b"]
    acd.ring_answered("a", "c1", 1_000)                     # b's ring for c1 stops; b free again
    assert rings(acd.call_arrived("c2", "q", "101", t=2_000)) == ["b"]
    acd.ring_answered("b", "c2", 3_000)
    assert rings(acd.call_arrived("c3", "q", "102", t=4_000)) == ["c"]     # penalty 1 all busy


def test_an_agent_added_with_a_penalty_waits_behind_the_free_members_of_lower_penalty():
    agents = [AgentSpec("a0", phone=("hb", 4)), AgentSpec("a1", phone=("hb", 5))]
    acd = Acd(agents, [QueueSpec("q", (Member("a0"),), strategy="longest-idle")])
    acd.not_ready("a0", 0)                                  # a1 has been idle longer than a0 will have
    changed, out = acd.member("q", "a1", True, 1_000, penalty=5)
    assert changed and acd.queues["q"].spec.members == (Member("a0"), Member("a1", 1, 5))
    assert rings(out) == []
    assert [c.data for c in out if isinstance(c, Event) and c.kind == ServerEventKind.ACD_MEMBER] == [
        {"agent": "a1", "queue": "q", "joined": True, "tier": 1, "penalty": 5}]
    acd.ready("a0", 2_000)
    assert rings(acd.call_arrived("c1", "q", "100", t=3_000)) == ["a0"]
    assert acd.member("q", "a0", False, 4_000)[0]
    with pytest.raises(ValueError, match="penalty 0 or more"):
        acd.member("q", "a0", True, 4_000, penalty=-1)


def test_without_penalties_nothing_changes():
    acd = acd_of("top-down", Member("x"), Member("y"))
    out = acd.call_arrived("c1", "q", "100", t=0)
    assert rings(out) == ["x"] and decisions(out)[0]["skipped"] == []
    assert [o["agent"] for o in decisions(out)[0]["order"]] == ["x", "y"]
