"""The AMI feed's users, roles and call-centre actions, with panoramisk (from PyPI) as the client.

The users are the network API's, one of each role (apikit.USERS); the backend is apikit's
CallBook (a book of calls and agents that refuses what the server refuses). Each action is
checked against the role as the same HTTP command is, and the state-changing ones, and the
refusals, are lines of the audit log.
"""
from __future__ import annotations

import asyncio
import json
from typing import Any

from amikit import Feed, act

from voiceserver.core.events import ServerEventKind

from apikit import TOKENS, USERS, until

K = ServerEventKind


def test_each_user_logs_in_with_its_own_name_and_token(tmp_path):
    async def main() -> dict[str, bool]:
        out = {}
        async with Feed(tmp_path) as f:
            for label, name, token in [("acd", "acd", TOKENS["acd"]), ("mon", "mon", TOKENS["mon"]),
                                       ("agent", "a1001", TOKENS["a1001"]),
                                       ("admin any name", "whoever", TOKENS["admin"]),
                                       ("another's name", "acd", TOKENS["mon"]),
                                       ("wrong token", "acd", "guess"), ("no token", "acd", "")]:
                m, _ = await f.login(name, token)
                out[label] = bool(m.authenticated)
                m.close()
        return out
    assert asyncio.run(main()) == {"acd": True, "mon": True, "agent": True, "admin any name": True,
                                   "another's name": False, "wrong token": False, "no token": False}


def test_an_integration_hangs_up_a_call_and_pauses_an_agent_with_audit_lines(tmp_path):
    async def main() -> tuple[list[Any], Feed]:
        async with Feed(tmp_path) as f:
            f.book.offer("pbx1-1-000007", "1001")
            f.book.states["1002"] = "ready"
            m, _ = await f.login("acd", TOKENS["acd"])
            answers = [await act(m, {"Action": "QueuePause", "Interface": "1002", "Paused": "true",
                                     "Reason": "lunch"}),
                       await act(m, {"Action": "QueuePause", "Interface": "1002", "Paused": "false"}),
                       await act(m, {"Action": "QueuePause", "Interface": "1001", "Paused": "false"}),  # logged out
                       await act(m, {"Action": "QueuePause", "Interface": "1002"}),                  # no Paused
                       await act(m, {"Action": "Hangup", "Channel": "DAHDI/b-1"}),
                       await act(m, {"Action": "Hangup", "Channel": "DAHDI/b-1"}),                   # gone now
                       await act(m, {"Action": "Originate", "Channel": "DAHDI/b-2", "Exten": "100"})]
        return answers, f
    answers, f = asyncio.run(main())
    pause, ready, logged_out, malformed, hangup, gone, originate = answers
    assert pause.success and pause["Message"] == "Interface 1002 paused"
    assert ready.success
    assert not logged_out.success and "logged out" in logged_out["Message"]
    assert not malformed.success and "Paused" in malformed["Message"]
    assert hangup.success and hangup["Message"] == "Channel Hungup"
    assert not gone.success and gone["Message"] == "no call 'DAHDI/b-1' in progress"
    assert not originate.success and "Originate" in originate["Message"]
    assert f.book.done == [("agent", "1002", "not_ready", "AMI (acd)", "lunch"),
                           ("agent", "1002", "ready", "AMI (acd)", ""),
                           ("hangup", "pbx1-1-000007", "hung up by AMI (acd)")]
    assert [(a["api_user"], a["role"], a["path"], a["status"], a["result"]) for a in f.audit_lines()] == [
        ("acd", "integration", "/ami/QueuePause", 200, "done"),
        ("acd", "integration", "/ami/QueuePause", 200, "done"),
        ("acd", "integration", "/ami/QueuePause", 409, "failed"),
        ("acd", "integration", "/ami/Hangup", 200, "done"),
        ("acd", "integration", "/ami/Hangup", 404, "failed")]
    assert f.audit_lines()[0]["detail"] == {"agent": "1002", "paused": True, "reason": "lunch"}


def test_a_monitor_may_only_read_and_an_agent_only_its_own(tmp_path):
    async def main() -> tuple[dict[str, Any], Feed]:
        async with Feed(tmp_path) as f:
            f.book.offer("pbx1-1-000001", "1001")
            f.book.offer("pbx1-1-000002", "1002")
            f.book.states.update({"1001": "ready", "1002": "ready"})
            mon, _ = await f.login("mon", TOKENS["mon"])
            agent, _ = await f.login("a1001", TOKENS["a1001"])
            out = {
                "mon ping": await act(mon, {"Action": "Ping"}),
                "mon channels": await act(mon, {"Action": "CoreShowChannels"}),
                "mon hangup": await act(mon, {"Action": "Hangup", "Channel": "pbx1-1-000001"}),
                "mon pause": await act(mon, {"Action": "QueuePause", "Interface": "1001", "Paused": "true"}),
                "agent channels": await act(agent, {"Action": "CoreShowChannels"}),
                "agent queues": await act(agent, {"Action": "QueueStatus"}),
                "agent pause other": await act(agent, {"Action": "QueuePause", "Interface": "1002", "Paused": "true"}),
                "agent hangup other": await act(agent, {"Action": "Hangup", "Channel": "pbx1-1-000002"}),
                "agent pause own": await act(agent, {"Action": "QueuePause", "Interface": "1001", "Paused": "true",
                                                     "Reason": "break"}),
                "agent hangup own": await act(agent, {"Action": "Hangup", "Channel": "pbx1-1-000001"}),
            }
        return out, f
    out, f = asyncio.run(main())
    assert out["mon ping"].success
    channels = [m for m in out["mon channels"] if m.get("Event") == "CoreShowChannel"]
    assert [(c["Channel"], c["Uniqueid"]) for c in channels] == [("DAHDI/b-1", "pbx1-1-000001"),
                                                                  ("DAHDI/b-1", "pbx1-1-000002")]
    for key in ("mon hangup", "mon pause", "agent channels", "agent pause other", "agent hangup other"):
        assert not out[key].success and "Permission denied" in out[key]["Message"], key
    assert "role monitor, which may not control calls" in out["mon hangup"]["Message"]
    assert "may change only its own agent '1001'" in out["agent pause other"]["Message"]
    members = [m["Name"] for m in out["agent queues"] if m.get("Event") == "QueueMember"]
    assert members == ["1001"]                              # an agent sees itself
    assert out["agent pause own"].success and out["agent hangup own"].success
    assert [(a["api_user"], a["path"], a["status"], a["result"]) for a in f.audit_lines()] == [
        ("mon", "/ami/Hangup", 403, "refused"), ("mon", "/ami/QueuePause", 403, "refused"),
        ("a1001", "/ami/CoreShowChannels", 403, "refused"), ("a1001", "/ami/QueuePause", 403, "refused"),
        ("a1001", "/ami/Hangup", 403, "refused"), ("a1001", "/ami/QueuePause", 200, "done"),
        ("a1001", "/ami/Hangup", 200, "done")]
    assert f.book.done == [("agent", "1001", "not_ready", "AMI (a1001)", "break"),
                           ("hangup", "pbx1-1-000001", "hung up by AMI (a1001)")]


def test_an_agent_user_gets_only_its_own_events(tmp_path):
    async def main() -> tuple[list[dict[str, str]], list[dict[str, str]]]:
        async with Feed(tmp_path) as f:
            _, mine = await f.login("a1001", TOKENS["a1001"])
            _, every = await f.login("acd", TOKENS["acd"])
            await until(lambda: any(e["Event"] == "FullyBooted" for e in mine + every) and
                        sum(e["Event"] == "FullyBooted" for e in mine + every) == 2, "both logins")
            f.book.offer("pbx1-1-000001", "1001")
            f.book.offer("pbx1-1-000002", "1002")
            f.bus.publish(1, K.CALL_END, chan=1, call_id="pbx1-1-000002", board="b", reason="x", answered=True)
            f.bus.publish(1, K.CALL_END, chan=1, call_id="pbx1-1-000001", board="b", reason="x", answered=True)
            await until(lambda: sum(e["Event"] == "Hangup" for e in every) == 2, "the hang-ups")
            await until(lambda: any(e["Event"] == "Hangup" for e in mine), "the agent's hang-up")
        return mine, every
    mine, every = asyncio.run(main())
    assert {e["Uniqueid"] for e in every if "Uniqueid" in e} == {"pbx1-1-000001", "pbx1-1-000002"}
    # call 1 is the agent's from its offer (AgentCalled) on; call 2 never is
    assert {e["Uniqueid"] for e in mine if "Uniqueid" in e} == {"pbx1-1-000001"}
    assert [e["Event"] for e in mine if e.get("Uniqueid")] == ["AgentCalled", "Hangup"]


def test_a_reload_disconnects_a_removed_user_and_lets_a_new_one_log_in(tmp_path):
    """AmiFeed.reload_users (what the server's config reload calls): the removed monitor is
    told why (Shutdown) and cut off; the integration goes on getting events; a user the
    new config adds logs in; the removed one cannot log in again."""
    from voiceserver.api.roles import ApiUser, Role, token_digest
    new_token = "new-ami-token-" + "z" * 30

    async def main() -> dict[str, Any]:
        async with Feed(tmp_path) as f:
            mon, mon_got = await f.login("mon", TOKENS["mon"])
            acd, acd_got = await f.login("acd", TOKENS["acd"])
            users = (*(u for u in USERS if u.name != "mon"), ApiUser("new", Role.MONITOR, token_digest(new_token)))
            done = f.feed.reload_users(users)
            await until(lambda: any(e.get("Event") == "Shutdown" for e in mon_got), "the removed user's Shutdown")
            f.bus.publish(0, K.SPAN_ALARM, board="b", span=1, alarm="LOS", set=True)
            await until(lambda: any(e.get("Event") == "Alarm" or "LOS" in json.dumps(e) for e in acd_got),
                        "the alarm at the integration")
            new, _ = await f.login("new", new_token)
            again, _ = await f.login("mon", TOKENS["mon"])
            shutdown = next(e for e in mon_got if e.get("Event") == "Shutdown")
            return {"done": done, "reason": shutdown.get("Reason"), "new": bool(new.authenticated),
                    "again": bool(again.authenticated)}
    out = asyncio.run(main())
    assert out == {"done": {"clients_closed": 1}, "reason": "user mon: removed or changed by a config reload",
                   "new": True, "again": False}
