"""Queue order (priority, then arrival), eligibility reasons, announcements timing."""
from __future__ import annotations

import pytest

from voiceserver.acd.agents import Agent, AgentSpec
from voiceserver.acd.queues import Member, Queue, QueueSpec, Target, WaitingCall


def call(cid: str, prio: int, seq: int, t: int = 0) -> WaitingCall:
    return WaitingCall(cid, "q", None, prio, t, t, seq)


def test_priority_then_first_come_first_served() -> None:
    q = Queue(QueueSpec("q", (Member("a"),)))
    for cid, p, s in [("x1", 0, 1), ("x2", 0, 2), ("v1", 5, 3), ("x3", 0, 4), ("v2", 5, 5),
                      ("top", 9, 6)]:
        q.add(call(cid, p, s))
    assert [c.call_id for c in q.calls] == ["top", "v1", "v2", "x1", "x2", "x3"]
    assert q.position(q.calls[3]) == 4


def test_vip_priority() -> None:
    q = Queue(QueueSpec("q", (Member("a"),), priority=1, vip=frozenset({"1065120000"}),
                        vip_priority=7))
    assert q.priority_for("1065120000", None) == 7
    assert q.priority_for("1065120001", None) == 1
    assert q.priority_for("1065120000", 9) == 9


def test_eligibility_reasons() -> None:
    specs = [AgentSpec("ok", phone=("b", 1), skills={"en": 4}),
             AgentSpec("low", phone=("b", 2), skills={"en": 1}),
             AgentSpec("out", phone=("b", 3), start="logged_out", skills={"en": 5}),
             AgentSpec("t2", phone=("b", 4), skills={"en": 9})]
    agents = {s.name: Agent(s, 0) for s in specs}
    q = Queue(QueueSpec("q", (Member("ok"), Member("low"), Member("out"), Member("t2", 2),
                              Member("ghost")), skill="en", min_skill=2, tier_wait_ms=10_000))
    e = q.eligible(call("c", 0, 1), agents, 4_000)
    assert [c.agent.name for c in e.candidates] == ["ok"] and e.candidates[0].skill == 4
    assert dict(e.skipped) == {
        "low": "lacks skill en>=2 (has 1)", "out": "logged out",
        "t2": "tier 2 not open yet (opens at 10.0 s, waited 4.0 s)", "ghost": "no such agent"}
    e = q.eligible(call("c", 0, 1), agents, 10_000)
    assert [c.agent.name for c in e.candidates] == ["ok", "t2"]


def test_announcement_times_and_expected_wait() -> None:
    q = Queue(QueueSpec("q", (Member("a"),), announce_first_ms=20_000, announce_every_ms=60_000))
    assert q.first_announce(1_000) == 21_000 and q.next_announce(21_000) == 81_000
    assert q.expected_wait_ms(3, 2) is None          # no call handled yet
    q.handled(120_000)
    q.handled(40_000)                                # 3/4 * 120 + 1/4 * 40 = 100 s
    assert q.aht_ms == pytest.approx(100_000)
    assert q.expected_wait_ms(3, 2) == 150_000
    assert Queue(QueueSpec("q", (Member("a"),))).first_announce(0) is None


def test_spec_checks() -> None:
    with pytest.raises(ValueError, match="listed twice"):
        QueueSpec("q", (Member("a"), Member("a")))
    with pytest.raises(ValueError, match="unknown strategy"):
        QueueSpec("q", (Member("a"),), strategy="nope")
    with pytest.raises(ValueError, match="needs the number and a trunk"):
        Target("number", number="1")
    assert Target("number", number="1", trunk="pstn").describe() == "number 1 via pstn"
