"""The network API's queue membership (POST /v1/agents/{agent}/queues/{queue}/join|leave, as
AMI's QueueAdd/QueueRemove) with a penalty and a tier, on a real socket, a real ACD behind it:
the penalty-0 member is rung before the penalty-5 one; bad bodies, roles and targets refused."""
from __future__ import annotations

from typing import Any

from voiceserver.acd.agents import AgentSpec
from voiceserver.acd.distributor import Acd, Ring
from voiceserver.acd.queues import Member, QueueSpec

from apikit import LiveApi


def acd_behind(api: LiveApi) -> Acd:
    """Queue service with no member yet; agents 1001, 1002, 1003 ready. The book's
    queue_member is the ACD's (as the server's: voiceserver.core.server)."""
    acd = Acd([AgentSpec(a, phone=("hb", 4 + i)) for i, a in enumerate(("1001", "1002", "1003"))],
              [QueueSpec("service", (), strategy="top-down", ring_timeout_ms=10_000)])

    def queue_member(agent: str, queue: str, join: bool, by: str, tier: int = 1, penalty: int = 0) -> dict[str, Any]:
        changed, _ = acd.member(queue, agent, join, 0, tier, penalty)
        return {"agent": agent, "queue": queue, "member": join, "changed": changed}
    api.book.queue_member = queue_member
    return acd


def test_join_with_a_penalty_and_a_tier_and_leave(tmp_path):
    with LiveApi(tmp_path) as api:
        acd = acd_behind(api)
        answers = {
            "1002 p5": api.request("POST", "/v1/agents/1002/queues/service/join", user="acd", body={"penalty": 5}),
            "1001 p0": api.request("POST", "/v1/agents/1001/queues/service/join", user="acd"),
            "1003 tier 2": api.request("POST", "/v1/agents/1003/queues/service/join", user="sup",
                                       body={"tier": 2, "penalty": 0}),
            "again": api.request("POST", "/v1/agents/1001/queues/service/join", user="acd"),
        }
        members = acd.queues["service"].spec.members
        out = acd.call_arrived("c1", "service", "139", t=1_000)
        first = [c.agent for c in out if isinstance(c, Ring)]
        out = acd.tick(11_000)                       # 1001 does not answer: 1002 (penalty 5); 1003's tier is shut
        second = [c.agent for c in out if isinstance(c, Ring)]
        leave = api.request("POST", "/v1/agents/1003/queues/service/leave", user="acd")
        leave_again = api.request("POST", "/v1/agents/1003/queues/service/leave", user="acd")
    assert answers["1002 p5"] == (200, {"agent": "1002", "queue": "service", "member": True, "changed": True})
    assert answers["1001 p0"][0] == 200 and answers["1003 tier 2"][0] == 200
    assert answers["again"] == (200, {"agent": "1001", "queue": "service", "member": True, "changed": False})
    assert members == (Member("1002", 1, 5), Member("1001", 1, 0), Member("1003", 2, 0))
    assert first == ["1001"] and second == ["1002"]
    assert leave[1]["changed"] is True and leave_again[1]["changed"] is False
    assert acd.queues["service"].spec.members == (Member("1002", 1, 5), Member("1001", 1, 0))


def test_bad_bodies_roles_and_targets_are_refused_and_audited(tmp_path):
    with LiveApi(tmp_path) as api:
        acd_behind(api)
        answers = {
            "negative": api.request("POST", "/v1/agents/1001/queues/service/join", body={"penalty": -1}),
            "text": api.request("POST", "/v1/agents/1001/queues/service/join", body={"penalty": "5"}),
            "tier 0": api.request("POST", "/v1/agents/1001/queues/service/join", body={"tier": 0}),
            "unknown field": api.request("POST", "/v1/agents/1001/queues/service/join", body={"prio": 1}),
            "leave with a body": api.request("POST", "/v1/agents/1001/queues/service/leave", body={"penalty": 1}),
            "no queue": api.request("POST", "/v1/agents/1001/queues/nope/join"),
            "no agent": api.request("POST", "/v1/agents/ghost/queues/service/join"),
            "monitor": api.request("POST", "/v1/agents/1001/queues/service/join", user="mon"),
            "another agent": api.request("POST", "/v1/agents/1002/queues/service/join", user="a1001"),
            "itself": api.request("POST", "/v1/agents/1001/queues/service/join", user="a1001", body={"penalty": 2}),
        }
        audit = api.audit.read_text()
    status = {k: v[0] for k, v in answers.items()}
    assert status == {"negative": 400, "text": 400, "tier 0": 400, "unknown field": 400, "leave with a body": 400,
                      "no queue": 404, "no agent": 404, "monitor": 403, "another agent": 403, "itself": 200}
    assert answers["negative"][1]["error"] == "penalty: a whole number 0 to 1000000"
    assert answers["tier 0"][1]["error"] == "tier: a whole number 1 to 99"
    assert "unknown field 'prio'" in answers["unknown field"][1]["error"]
    assert "no queue 'nope'" in answers["no queue"][1]["error"]
    assert '"detail": {"agent": "1001", "queue": "service", "member": true, "penalty": 2}' in audit
