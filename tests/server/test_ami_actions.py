"""The AMI actions mapped to the API's call commands (Originate, Redirect, QueueAdd,
QueueRemove), with panoramisk (from PyPI) as the client against a book of calls; and the
ACD's run-time queue membership behind QueueAdd/QueueRemove. On the real server over hwsim:
test_ami_actions_e2e.py."""
from __future__ import annotations

import asyncio
from typing import Any

from amikit import GUARD, Feed

from voiceserver.acd.agents import AgentSpec
from voiceserver.acd.distributor import Acd, Event, Ring
from voiceserver.acd.queues import Member, QueueSpec
from voiceserver.api.ami import translate
from voiceserver.core.events import EventBus, ServerEventKind
from voiceserver.core.runtime import Conflict

from apikit import TOKENS

K = ServerEventKind


async def act(m: Any, action: dict[str, str]) -> Any:
    """One action's first answer: panoramisk waits for an OriginateResponse after an Originate's
    "successfully queued" and for more after a QueueAdd's "Added interface to queue", as it does
    with Asterisk (here the book answers no call: the end-to-end test has that)."""
    return await asyncio.wait_for(m.send_action(action, as_list=False), GUARD)


class Book:
    """apikit's CallBook with the commands these actions use: what was asked is kept."""

    def __init__(self, book: Any) -> None:
        self.book = book
        self.members: set[tuple[str, str]] = {("service", "1001")}
        book.originate = self.originate
        book.queue_member = self.queue_member

    def originate(self, trunk: str, number: str, then: dict[str, str], by: str) -> dict[str, Any]:
        if trunk != "pstn":
            raise LookupError(f"no trunk group {trunk!r} (groups: pstn)")
        if number == "999":
            raise Conflict("no free line in trunk group pstn")
        self.book.done.append(("originate", trunk, number, then, by))
        return {"call_id": "pbx1-1-000042", "trunk": trunk, "number": number, "line": "b:2", "then": then}

    def queue_member(self, agent: str, queue: str, join: bool, by: str, **more: int) -> dict[str, Any]:
        if queue != "service":
            raise LookupError(f"no queue {queue!r} (queues: service)")
        changed = ((queue, agent) in self.members) != join
        (self.members.add if join else self.members.discard)((queue, agent))
        self.book.done.append(("member", queue, agent, join, by, more))
        return {"agent": agent, "queue": queue, "member": join, "changed": changed}


def test_originate_maps_channel_context_and_exten_and_answers_the_new_call_id(tmp_path):
    async def main() -> tuple[list[Any], Feed]:
        async with Feed(tmp_path) as f:
            Book(f.book)
            m, _ = await f.login("acd", TOKENS["acd"])
            answers = [await act(m, {"Action": "Originate", "Channel": "DAHDI/pstn/13900001111", "Context": "ivr",
                                     "Exten": "survey", "Async": "true"}),
                       await act(m, {"Action": "Originate", "Channel": "Local/13900001111@pstn", "Context": "agent",
                                     "Exten": "1001"}),
                       await act(m, {"Action": "Originate", "Channel": "DAHDI/pstn/13900001111"}),
                       await act(m, {"Action": "Originate", "Channel": "DAHDI/pstn/999"}),
                       await act(m, {"Action": "Originate", "Channel": "DAHDI/nope/1"}),
                       await act(m, {"Action": "Originate", "Channel": "DAHDI/13900001111"}),
                       await act(m, {"Action": "Originate", "Channel": "DAHDI/pstn/1", "Context": "default",
                                     "Exten": "s"}),
                       await act(m, {"Action": "Originate", "Channel": "DAHDI/pstn/1", "Application": "Dial",
                                     "Data": "DAHDI/1"})]
        return answers, f
    answers, f = asyncio.run(main())
    ivr, agent, plain, busy, no_group, no_group_given, bad_context, application = answers
    assert ivr.success and ivr["Message"] == "Originate successfully queued" and ivr["Uniqueid"] == "pbx1-1-000042"
    assert agent.success and plain.success
    assert not busy.success and busy["Message"] == "no free line in trunk group pstn"
    assert not no_group.success and "no trunk group 'nope'" in no_group["Message"]
    assert not no_group_given.success and "DAHDI/<trunk group>/<number>" in no_group_given["Message"]
    assert not bad_context.success and "Context is one of ivr, agent, call" in bad_context["Message"]
    assert not application.success and application["Message"] == (
        "Originate: Application 'Dial' is not supported; supported: Playback (Data: prompt[&prompt...]: heard, "
        "then hung up), Queue (Data: the queue)")
    assert [d for d in f.book.done] == [
        ("originate", "pstn", "13900001111", {"ivr": "survey"}, "AMI (acd)"),
        ("originate", "pstn", "13900001111", {"agent": "1001"}, "AMI (acd)"),
        ("originate", "pstn", "13900001111", {}, "AMI (acd)")]
    audit = f.audit_lines()
    assert [(a["path"], a["status"]) for a in audit] == [
        ("/ami/Originate", 200), ("/ami/Originate", 200), ("/ami/Originate", 200), ("/ami/Originate", 409),
        ("/ami/Originate", 404)]
    assert audit[0]["detail"] == {"trunk": "pstn", "number": "13900001111", "then": {"ivr": "survey"}}


def test_originate_application_playback_and_queue_map_onto_the_originates_then(tmp_path):
    async def main() -> tuple[list[Any], Feed]:
        async with Feed(tmp_path) as f:
            Book(f.book)
            m, _ = await f.login("acd", TOKENS["acd"])
            answers = [await act(m, {"Action": "Originate", "Channel": "DAHDI/pstn/13900001111",
                                     "Application": "Playback", "Data": "notice&goodbye"}),
                       await act(m, {"Action": "Originate", "Channel": "Local/13900001111@pstn",
                                     "Application": "queue", "Data": "service,t,,,60"}),
                       # as Asterisk: the Application runs, Context/Exten are not used
                       await act(m, {"Action": "Originate", "Channel": "DAHDI/pstn/1", "Application": "Playback",
                                     "Data": "notice", "Context": "ivr", "Exten": "main"}),
                       await act(m, {"Action": "Originate", "Channel": "DAHDI/pstn/1", "Application": "Queue"})]
        return answers, f
    answers, f = asyncio.run(main())
    play, queue, both, no_data = answers
    assert play.success and queue.success and both.success
    assert not no_data.success and no_data["Message"].startswith("Originate: Application Queue needs Data")
    assert [d[3] for d in f.book.done] == [{"play": "notice&goodbye"}, {"queue": "service"}, {"play": "notice"}]
    assert [a["detail"]["then"] for a in f.audit_lines()] == [
        {"play": "notice&goodbye"}, {"queue": "service"}, {"play": "notice"}]


def test_only_admin_supervisor_and_integration_may_originate_an_agent_may_redirect_its_own_call(tmp_path):
    async def main() -> tuple[dict[str, Any], Feed]:
        async with Feed(tmp_path) as f:
            Book(f.book)
            f.book.offer("pbx1-1-000001", "1001")
            f.book.offer("pbx1-1-000002", "1002")
            mon, _ = await f.login("mon", TOKENS["mon"])
            agent, _ = await f.login("a1001", TOKENS["a1001"])
            sup, _ = await f.login("sup", TOKENS["sup"])
            originate = {"Action": "Originate", "Channel": "DAHDI/pstn/1"}
            out = {"mon originate": await act(mon, originate), "agent originate": await act(agent, originate),
                   "sup originate": await act(sup, originate),
                   "mon redirect": await act(mon, {"Action": "Redirect", "Channel": "pbx1-1-000001",
                                                   "Context": "ivr", "Exten": "main"}),
                   "agent redirect other": await act(agent, {"Action": "Redirect", "Channel": "pbx1-1-000002",
                                                             "Context": "ivr", "Exten": "main"}),
                   "agent redirect own": await act(agent, {"Action": "Redirect", "Channel": "pbx1-1-000001",
                                                           "Context": "queue", "Exten": "service"}),
                   "agent adds itself": await act(agent, {"Action": "QueueAdd", "Queue": "service",
                                                          "Interface": "Agent/1001"}),
                   "agent adds another": await act(agent, {"Action": "QueueAdd", "Queue": "service",
                                                           "Interface": "1002"}),
                   "mon removes": await act(mon, {"Action": "QueueRemove", "Queue": "service", "Interface": "1001"})}
        return out, f
    out, f = asyncio.run(main())
    assert out["sup originate"].success and out["agent redirect own"].success
    for key in ("mon originate", "agent originate", "mon redirect", "agent redirect other", "agent adds another",
                "mon removes"):
        assert not out[key].success and "Permission denied" in out[key]["Message"], key
    assert "may not originate calls: it needs admin, supervisor or integration" in out["agent originate"]["Message"]
    # the agent may join a queue itself (as its own not-ready): already there, so a clear error
    assert not out["agent adds itself"].success and out["agent adds itself"]["Message"] == \
        "Unable to add interface: Already there"
    assert ("route", "pbx1-1-000001", "AMI (a1001)", "service") in f.book.done


def test_redirect_to_a_menu_or_a_queue_and_queue_add_remove(tmp_path):
    async def main() -> tuple[list[Any], Feed]:
        async with Feed(tmp_path) as f:
            book = Book(f.book)
            f.book.offer("pbx1-1-000003", "1001")
            m, _ = await f.login("acd", TOKENS["acd"])
            answers = [await act(m, {"Action": "Redirect", "Channel": "DAHDI/b-1", "Context": "ivr", "Exten": "main"}),
                       await act(m, {"Action": "Redirect", "Channel": "pbx1-1-000003", "Context": "queue",
                                     "Exten": "service"}),
                       await act(m, {"Action": "Redirect", "Channel": "pbx1-1-000003", "Context": "default",
                                     "Exten": "100"}),
                       await act(m, {"Action": "Redirect", "Channel": "nope", "Context": "ivr", "Exten": "main"}),
                       await act(m, {"Action": "QueueAdd", "Queue": "service", "Interface": "1002", "Penalty": "0"}),
                       await act(m, {"Action": "QueueRemove", "Queue": "service", "Interface": "1001"}),
                       await act(m, {"Action": "QueueRemove", "Queue": "service", "Interface": "1001"}),
                       await act(m, {"Action": "QueueAdd", "Queue": "nope", "Interface": "1001"}),
                       await act(m, {"Action": "QueueAdd", "Queue": "service"})]
            return answers, f, book
    answers, f, book = asyncio.run(main())
    to_menu, to_queue, bad_context, no_call, add, remove, again, no_queue, no_agent = answers
    assert to_menu.success and to_queue.success and to_menu["Message"] == "Redirect successful"
    assert not bad_context.success and "Context ivr" in bad_context["Message"]
    assert not no_call.success and no_call["Message"] == "no call 'nope' in progress"
    assert add.success and add["Message"] == "Added interface to queue"
    assert remove.success and remove["Message"] == "Removed interface from queue"
    assert not again.success and again["Message"] == "Unable to remove interface: Not there"
    assert not no_queue.success and "no queue 'nope'" in no_queue["Message"]
    assert not no_agent.success and "needs Queue and Interface" in no_agent["Message"]
    assert book.members == {("service", "1002")}
    assert [d for d in f.book.done if d[0] in ("ivr", "route")] == [
        ("ivr", "pbx1-1-000003", "AMI (acd)", "main"), ("route", "pbx1-1-000003", "AMI (acd)", "service")]
    assert [(a["path"], a["status"]) for a in f.audit_lines()] == [
        ("/ami/Redirect", 200), ("/ami/Redirect", 200), ("/ami/Redirect", 404), ("/ami/QueueAdd", 200),
        ("/ami/QueueRemove", 200), ("/ami/QueueRemove", 409), ("/ami/QueueAdd", 404)]


def test_member_changes_and_originate_results_are_ami_events():
    bus = EventBus(server_id="pbx1")
    added = bus.publish(1, K.ACD_MEMBER, agent="1002", queue="service", joined=True, why="AMI (acd)",
                        tier=1, penalty=5)
    removed = bus.publish(1, K.ACD_MEMBER, agent="1002", queue="service", joined=False, why="AMI (acd)")
    assert [(m["Event"], m["Queue"], m["Interface"], m.get("Penalty"))
            for m in translate(added) + translate(removed)] == [
        ("QueueMemberAdded", "service", "1002", "5"), ("QueueMemberRemoved", "service", "1002", None)]
    common = {"trunk": "pstn", "number": "139", "line": "b:2", "then": {}, "why": "x", "board": "b"}
    dialing = bus.publish(2, K.CALL_ORIGINATE, chan=2, call_id="c9", state="dialing", **common)
    answered = bus.publish(3, K.CALL_ORIGINATE, chan=2, call_id="c9", state="answered", **common)
    busy = bus.publish(4, K.CALL_ORIGINATE, chan=2, call_id="c10", state="failed", cause="busy",
                       reason="outbound busy", **common)
    assert translate(dialing) == []
    ok, = translate(answered)
    assert (ok["Event"], ok["Response"], ok["Reason"], ok["Uniqueid"], ok["Channel"]) == (
        "OriginateResponse", "Success", "4", "c9", "DAHDI/b-2")
    failed, = translate(busy)
    assert (failed["Response"], failed["Reason"], failed["Cause-txt"]) == ("Failure", "5", "outbound busy")


# ---------------------------------------------------------------- the ACD: members at run time
def test_an_agent_added_to_a_queue_is_rung_at_once_for_a_waiting_caller_and_a_removed_one_is_not():
    agents = [AgentSpec("a0", phone=("hb", 4)), AgentSpec("a1", phone=("hb", 5))]
    acd = Acd(agents, [QueueSpec("q", (Member("a0"),), strategy="top-down")])
    acd.not_ready("a0", 0)
    out = acd.call_arrived("c1", "q", "100", t=0)
    assert not [c for c in out if isinstance(c, Ring)]          # a1 is no member: nobody to ring
    changed, out = acd.member("q", "a1", True, 1_000)
    assert changed and [c.agent for c in out if isinstance(c, Ring)] == ["a1"]
    assert [c.data for c in out if isinstance(c, Event) and c.kind == "acd.member"] == [
        {"agent": "a1", "queue": "q", "joined": True, "tier": 1, "penalty": 0}]
    assert acd.queues["q"].positions == {"a0": 0, "a1": 1}
    assert acd.agent_rows()[1]["queues"] == ["q"]
    assert acd.member("q", "a1", True, 1_000) == (False, [])
    changed, out = acd.member("q", "a0", False, 2_000)
    assert changed and acd.queues["q"].spec.members == (Member("a1"),)
    acd.ready("a0", 3_000)
    assert "c1" not in {c.call for c in acd.ready("a0", 3_000) if isinstance(c, Ring)}


def test_member_of_an_unknown_queue_or_agent_is_a_lookup_error():
    import pytest
    acd = Acd([AgentSpec("a0", phone=("hb", 4))], [QueueSpec("q", (Member("a0"),))])
    with pytest.raises(LookupError, match="no queue 'x'"):
        acd.member("x", "a0", True, 0)
    with pytest.raises(LookupError, match="no agent 'ghost'"):
        acd.member("q", "ghost", True, 0)


def test_an_agents_state_is_asterisks_device_state_number_in_queue_member_status():
    """Wallboards read QueueMemberStatus' Status as Asterisk's device state (AST_DEVICE_*): 1 not
    in use, 2 in use, 5 unavailable, 6 ringing; not ready is Paused on a free device."""
    bus = EventBus(server_id="pbx1")
    got = {}
    for state in ("ready", "not_ready", "ringing", "on_call", "wrap_up", "logged_out"):
        ev = bus.publish(1, K.AGENT_STATE, agent="1001", state=state, action="x", by="test")
        msg, = translate(ev)
        got[state] = (msg["Event"], msg["Status"], msg["Paused"], msg["StateName"])
    assert got == {"ready": ("QueueMemberStatus", "1", "0", "ready"),
                   "not_ready": ("QueueMemberStatus", "1", "1", "not_ready"),
                   "ringing": ("QueueMemberStatus", "6", "0", "ringing"),
                   "on_call": ("QueueMemberStatus", "2", "0", "on_call"),
                   "wrap_up": ("QueueMemberStatus", "1", "0", "wrap_up"),
                   "logged_out": ("QueueMemberStatus", "5", "0", "logged_out")}
