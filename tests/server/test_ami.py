"""The AMI-compatible feed with panoramisk (an Asterisk Manager client from PyPI) as the client.

The bus is the server's own; the test publishes what a call through the
IVR to an agent publishes and checks what panoramisk hands its callbacks.
"""
from __future__ import annotations

import asyncio
from typing import Any

import pytest
from panoramisk import Manager

from voiceserver.api.ami import AmiFeed, translate
from voiceserver.core.events import EventBus, ServerEventKind

from apikit import until

K = ServerEventKind
TOKEN = "ami-secret-for-the-test"
GUARD = 30.0      # seconds: a guard against a wedged socket, never a timing check


async def feed_and_manager(secret: str = TOKEN, status=None) -> tuple[EventBus, AmiFeed, Manager, list[Any]]:
    bus = EventBus(server_id="pbx1")
    feed = await AmiFeed(bus, host="127.0.0.1", port=0, token=TOKEN, status=status).start()
    got: list[Any] = []
    manager = Manager(host="127.0.0.1", port=feed.port, username="acd", secret=secret,
                      ping_delay=3600, reconnect_timeout=3600)
    manager.register_event("*", lambda _m, ev: got.append(ev))
    await manager.connect()
    return bus, feed, manager, got


def a_call(bus: EventBus) -> None:
    """What a call through the IVR to agent 1012 publishes (the fields as docs/events.md)."""
    p = bus.publish
    p(1, K.CALL_START, chan=2, call_id="pbx1-3-000118", board="hotline", direction="inbound", caller=None,
      called=None)
    p(2, K.CALL_CALLERID, chan=2, call_id="pbx1-3-000118", board="hotline", caller="13911110000", name="CHEN")
    p(3, K.CALL_ANSWER, chan=2, call_id="pbx1-3-000118", board="hotline", how="server", recall=False)
    p(4, K.CALL_DIGIT, chan=2, call_id="pbx1-3-000118", digit="1", masked=False, duration_ms=120, onset_tick=3)
    p(5, K.CALL_DIGIT, chan=2, call_id="pbx1-3-000118", digit="•", masked=True, duration_ms=None, onset_tick=4)
    p(6, K.ACD_JOINED, call_id="pbx1-3-000118", queue="service", caller="13911110000", priority=0, position=1)
    p(7, K.ACD_DECISION, call_id="pbx1-3-000118", queue="service", chosen=["1012"])
    p(8, K.CALL_BRIDGE, chan=2, call_id="pbx1-3-000118", board="hotline", trunk=2, line=5, agent="1012")
    p(9, K.ACD_CALL_ENDED, call_id="pbx1-3-000118", agent="1012", talk_ms=63_400, agent_state="ready")
    p(9, K.ACD_OUTCOME, call_id="pbx1-3-000118", outcome="answered", queue="service", agent="1012")
    p(9, K.CALL_END, chan=2, call_id="pbx1-3-000118", board="hotline", reason="caller hung up", answered=True,
      side="caller")
    p(10, K.SPAN_ALARM, board="e1site", span=1, alarm="red", set=True)


def test_a_call_reaches_panoramisk_as_asterisk_names_it():
    async def main() -> list[dict[str, str]]:
        bus, feed, manager, got = await feed_and_manager()
        await until(lambda: any(e.event == "FullyBooted" for e in got), "the login")
        a_call(bus)
        await until(lambda: any(e.event == "Alarm" for e in got), "the last event")
        manager.close()
        await feed.close()
        return [dict(e) for e in got if e.event != "FullyBooted"]
    got = asyncio.run(main())
    names = [e["Event"] for e in got]
    assert names == ["Newchannel", "NewCallerid", "Newstate", "DTMFBegin", "DTMFEnd", "DTMFBegin", "DTMFEnd",
                     "QueueCallerJoin", "AgentCalled", "BridgeEnter", "AgentConnect", "AgentComplete",
                     "QueueCallerLeave", "Hangup", "Alarm"]
    new, cid, up = got[0], got[1], got[2]
    assert (new["Channel"], new["Uniqueid"], new["ChannelState"]) == ("DAHDI/hotline-2", "pbx1-3-000118", "4")
    assert (cid["CallerIDNum"], cid["CallerIDName"]) == ("13911110000", "CHEN")   # the screen pop
    assert up["ChannelStateDesc"] == "Up"
    assert [e["Digit"] for e in got if e["Event"] == "DTMFEnd"] == ["1", "•"]      # masked stays masked
    assert [e.get("DurationMs") for e in got if e["Event"] == "DTMFEnd"] == ["120", None]   # none: cut short
    join = got[7]
    assert (join["Queue"], join["Position"], join["CallerIDNum"]) == ("service", "1", "13911110000")
    assert got[8]["Interface"] == "1012" and got[10]["Interface"] == "1012"
    assert got[11]["TalkTime"] == "63"
    assert (got[13]["Cause"], got[13]["Cause-txt"]) == ("16", "caller hung up")
    assert (got[14]["Span"], got[14]["Alarm"]) == ("1", "red")
    assert [int(e["Seq"]) for e in got] == sorted(int(e["Seq"]) for e in got)


def test_actions_ping_queue_status_unknown_and_logoff():
    status = {"queues": [{"name": "service", "waiting": 2, "answered": 7, "abandoned": 1}],
              "agents": [{"agent": "1012", "state": "not_ready"}, {"agent": "1013", "state": "ready"}]}

    async def main() -> tuple[Any, Any, Any, Any]:
        bus, feed, manager, got = await feed_and_manager(status=lambda: status)
        await until(lambda: any(e.event == "FullyBooted" for e in got), "the login")
        ping = await asyncio.wait_for(manager.send_action({"Action": "Ping"}), GUARD)
        queues = await asyncio.wait_for(manager.send_action({"Action": "QueueStatus"}), GUARD)
        unknown = await asyncio.wait_for(manager.send_action({"Action": "Originate", "Channel": "x"}), GUARD)
        bye = await asyncio.wait_for(manager.send_action({"Action": "Logoff"}), GUARD)
        manager.close()
        await feed.close()
        return ping, queues, unknown, bye
    ping, queues, unknown, bye = asyncio.run(main())
    assert ping.success and ping["Ping"] == "Pong"
    items = {m.get("Event"): dict(m) for m in queues}
    assert items["QueueParams"]["Calls"] == "2" and items["QueueStatusComplete"]["ListItems"] == "3"
    assert [m["Paused"] for m in queues if m.get("Event") == "QueueMember"] == ["1", "0"]
    assert not unknown.success and "Originate" in unknown["Message"]
    assert bye["Response"] == "Goodbye"


def test_a_wrong_secret_gets_no_events_and_is_disconnected():
    async def main() -> tuple[bool, list[Any], int]:
        bus, feed, manager, got = await feed_and_manager(secret="guess")
        await until(lambda: manager.authenticated_future is None, "the login's answer")
        a_call(bus)
        await asyncio.sleep(0.1)
        clients = len(feed.clients)
        manager.close()
        await feed.close()
        return manager.authenticated, got, clients
    authenticated, got, clients = asyncio.run(main())
    assert authenticated is False and got == [] and clients == 0


@pytest.mark.parametrize("kind", [k for k in ServerEventKind])
def test_every_kind_translates_without_error(kind):
    """Kinds AMI has no name for give nothing; none raises on an event with no fields."""
    bus = EventBus()
    out = translate(bus.publish(1, kind))
    assert all(m["Event"] and m["Seq"] == "1" for m in out)


def test_a_call_a_span_alarm_ended_hangs_up_with_cause_38():
    bus = EventBus()
    ev = bus.publish(1, K.CALL_END, chan=2, call_id="c1", board="e1site", reason="blocked: red", answered=True,
                     side="network")
    assert [(m["Event"], m["Cause"]) for m in translate(ev)] == [("Hangup", "38")]
    ev = bus.publish(2, K.CALL_END, chan=2, call_id="c2", board="e1site", reason="ivr: hangup action",
                     answered=True, side="server")
    assert [(m["Event"], m["Cause"]) for m in translate(ev)] == [("Hangup", "16")]
