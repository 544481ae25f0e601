"""The AMI feed's queue views with panoramisk (from PyPI) as the client: the ACD's all-busy
state as a `UserEvent: QueueAllBusy`, and the `QueueSummary` action, both from a real ACD
(voiceserver.acd.distributor) whose rows the feed serves as the server's do."""
from __future__ import annotations

import asyncio
from typing import Any

from panoramisk import Manager

from voiceserver.acd.agents import AgentSpec
from voiceserver.acd.distributor import Acd
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
