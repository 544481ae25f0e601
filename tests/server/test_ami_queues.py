"""The AMI feed's queues with panoramisk (from PyPI) as the client, against a real ACD
(voiceserver.acd.distributor) whose rows the feed serves as the server's do: the all-busy
state as a `UserEvent: QueueAllBusy`, the `QueueSummary` action, and QueueAdd's `Penalty`
(the penalty-0 member rings before the penalty-5 one; QueueStatus reports each Penalty)."""
from __future__ import annotations

import asyncio
from typing import Any

from panoramisk import Manager

from voiceserver.acd.agents import AgentSpec
from voiceserver.acd.distributor import Acd, Event, Ring
from voiceserver.acd.queues import Member, QueueSpec
from voiceserver.api.ami import AmiFeed, translate
from voiceserver.core.events import EventBus, ServerEventKind

from apikit import until

K = ServerEventKind
TOKEN = "ami-secret-for-the-queue-test"
GUARD = 30.0      # seconds: a guard against a wedged socket, never a timing check


def service_acd() -> Acd:
    """Queue service (a0, a1) and queue sales (a2): everyone logged in and ready at t=0."""
    agents = [AgentSpec(f"a{i}", phone=("hb", 4 + i)) for i in range(3)]
    return Acd(agents, [QueueSpec("service", (Member("a0"), Member("a1")), strategy="top-down"),
                        QueueSpec("sales", (Member("a2"),))])


def publish_all_busy(bus: EventBus, acd: Acd, t: int) -> None:
    """What the ACD link (voiceserver.acd.link) does after each step of the ACD."""
    for change in acd.all_busy_changes(t):
        bus.publish(t, K.ACD_ALL_BUSY, **change)


async def logged_in(feed: AmiFeed) -> tuple[Manager, list[dict[str, str]]]:
    got: list[dict[str, str]] = []
    m = Manager(host="127.0.0.1", port=feed.port, username="wallboard", secret=TOKEN, ping_delay=3600,
                reconnect_timeout=3600)
    m.register_event("*", lambda _m, ev: got.append(dict(ev)))
    await asyncio.wait_for(m.connect(), GUARD)
    await until(lambda: any(e.get("Event") == "FullyBooted" for e in got), "the login")
    return m, got


def test_all_busy_reaches_panoramisk_as_a_queue_all_busy_user_event():
    bus = EventBus(server_id="pbx1")
    acd = service_acd()

    async def main() -> list[dict[str, str]]:
        feed = await AmiFeed(bus, host="127.0.0.1", port=0, token=TOKEN).start()
        m, got = await logged_in(feed)
        acd.not_ready("a0", 1_000)
        publish_all_busy(bus, acd, 1_000)                       # a1 is still free: no change
        acd.call_arrived("c1", "service", "13911110000", t=2_000)   # a1 rings: nobody free
        publish_all_busy(bus, acd, 2_000)
        acd.call_arrived("c2", "service", "13911110001", t=3_000)   # waits: still busy, no event
        publish_all_busy(bus, acd, 3_000)
        acd.ready("a0", 4_000)                                  # a0 is rung for c2 at once: no change
        publish_all_busy(bus, acd, 4_000)
        acd.caller_left("c2", 5_000)                            # a0 free again: not busy
        publish_all_busy(bus, acd, 5_000)
        await until(lambda: sum(e.get("Event") == "UserEvent" for e in got) >= 2, "two user events")
        m.close()
        await feed.close()
        return [e for e in got if e.get("Event") == "UserEvent"]
    events = asyncio.run(main())
    assert [(e["UserEvent"], e["Queue"], e["Busy"], e["Waiting"]) for e in events] == [
        ("QueueAllBusy", "service", "1", "1"), ("QueueAllBusy", "service", "0", "1")]
    assert events[0]["Privilege"] == "user,all" and int(events[0]["Seq"]) < int(events[1]["Seq"])


def test_all_busy_translates_without_a_channel():
    bus = EventBus(server_id="pbx1")
    msg, = translate(bus.publish(7, K.ACD_ALL_BUSY, queue="sales", busy=False, waiting=0))
    assert msg == {"Event": "UserEvent", "Privilege": "user,all", "UserEvent": "QueueAllBusy", "Queue": "sales",
                   "Busy": "0", "Waiting": "0", "Seq": "1", "CallID": ""}


def test_queue_summary_serves_the_queue_rows_as_asterisk_names_them():
    bus = EventBus(server_id="pbx1")
    acd = service_acd()
    acd.logout("a2", 0)
    acd.call_arrived("c1", "service", "139", t=1_000)           # a0 rings, answers at 5 s
    acd.ring_answered("a0", "c1", 5_000)
    acd.call_ended("a0", "c1", 65_000)                          # talked 60 s
    acd.not_ready("a1", 66_000)
    acd.call_arrived("c2", "service", "138", t=70_000)          # a0 rings (ring-one): no one else is free
    acd.call_arrived("c3", "service", "137", t=72_000)          # waits
    t = 80_000
    status = {"queues": acd.queue_rows(t), "agents": acd.agent_rows(t)}

    async def main() -> tuple[Any, Any, Any]:
        feed = await AmiFeed(bus, host="127.0.0.1", port=0, token=TOKEN, status=lambda: status).start()
        m, _ = await logged_in(feed)
        every = await asyncio.wait_for(m.send_action({"Action": "QueueSummary"}), GUARD)
        one = await asyncio.wait_for(m.send_action({"Action": "QueueSummary", "Queue": "sales"}), GUARD)
        none = await asyncio.wait_for(m.send_action({"Action": "QueueSummary", "Queue": "nope"}), GUARD)
        m.close()
        await feed.close()
        return every, one, none
    every, one, none = asyncio.run(main())
    rows = {m["Queue"]: dict(m) for m in every if m.get("Event") == "QueueSummary"}
    service = rows["service"]
    assert (service["LoggedIn"], service["Available"], service["Callers"]) == ("2", "0", "2")
    # HoldTime: c1 waited 4 s for a0; TalkTime: its 60 s; LongestHoldTime: c2, 10 s so far
    assert (service["HoldTime"], service["TalkTime"], service["LongestHoldTime"]) == ("4", "60", "10")
    fields = ("LoggedIn", "Available", "Callers", "HoldTime", "TalkTime", "LongestHoldTime")
    assert [rows["sales"][f] for f in fields] == ["0"] * 6
    assert every[-1]["Event"] == "QueueSummaryComplete" and every[-1]["ListItems"] == "2"
    assert [m["Queue"] for m in one if m.get("Event") == "QueueSummary"] == ["sales"]
    assert [m.get("Event") for m in none] == [None, "QueueSummaryComplete"] and none[-1]["ListItems"] == "0"


class AcdBackend:
    """The ACD behind the feed as the server puts it (its queue_member and views), its events
    on the bus as the ACD link publishes them."""

    def __init__(self, bus: EventBus, acd: Acd) -> None:
        self.bus, self.acd, self.t = bus, acd, 0

    def queue_member(self, agent: str, queue: str, join: bool, by: str, tier: int = 1,
                     penalty: int = 0) -> dict[str, Any]:
        changed, out = self.acd.member(queue, agent, join, self.t, tier, penalty)
        for cmd in out:
            if isinstance(cmd, Event):
                self.bus.publish(self.t, cmd.kind, **cmd.data, why=by)
        return {"agent": agent, "queue": queue, "member": join, "changed": changed}

    def views(self) -> dict[str, Any]:
        return {"queues": lambda: self.acd.queue_rows(self.t), "agents": lambda: self.acd.agent_rows(self.t)}


def test_queue_add_penalty_the_penalty_0_member_rings_first_and_queue_status_reports_penalty(tmp_path):
    bus = EventBus(server_id="pbx1")
    agents = [AgentSpec(name, phone=("hb", 4 + i)) for i, name in enumerate(("boss", "senior", "junior"))]
    acd = Acd(agents, [QueueSpec("service", (Member("boss"),), strategy="top-down", ring_timeout_ms=10_000)])
    acd.not_ready("boss", 0)
    backend = AcdBackend(bus, acd)

    async def main() -> tuple[list[Any], list[Any], Any]:
        feed = await AmiFeed(bus, host="127.0.0.1", port=0, token=TOKEN, backend=backend,
                             audit_log=str(tmp_path / "audit.jsonl")).start()
        m, _ = await logged_in(feed)

        async def add(agent: str, penalty: str) -> Any:
            return await asyncio.wait_for(m.send_action({"Action": "QueueAdd", "Queue": "service", "Interface":
                                                         f"Agent/{agent}", "Penalty": penalty}, as_list=False), GUARD)
        answers = [await add("senior", "5"), await add("junior", "0"), await add("boss", "x")]
        status = await asyncio.wait_for(m.send_action({"Action": "QueueStatus"}), GUARD)
        m.close()
        await feed.close()
        return answers, status, feed
    answers, status, _ = asyncio.run(main())
    senior, junior, bad = answers
    assert senior.success and junior.success
    assert not bad.success and bad["Message"] == "QueueAdd: Penalty is a whole number 0 to 1000000, not 'x'"
    assert acd.queues["service"].spec.members == (Member("boss"), Member("senior", 1, 5), Member("junior", 1, 0))
    members = [(e["Queue"], e["Name"], e["Penalty"], e["Status"], e["Paused"], e["StateName"])
               for e in status if e.get("Event") == "QueueMember"]
    assert members == [("service", "boss", "0", "1", "1", "not_ready"), ("service", "senior", "5", "1", "0", "ready"),
                       ("service", "junior", "0", "1", "0", "ready")]
    # a caller: top-down would ring senior (listed first); its penalty 5 waits behind junior's 0
    out = acd.call_arrived("c1", "service", "139", t=1_000)
    assert [c.agent for c in out if isinstance(c, Ring)] == ["junior"]
    out = acd.tick(11_000)                                   # junior does not answer: senior next
    assert [c.agent for c in out if isinstance(c, Ring)] == ["senior"]
