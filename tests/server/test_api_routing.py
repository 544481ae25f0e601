"""Routing a caller from outside, at the event level (the controller and the ACD link, no
hwsim): the API's route to one agent, and external routing (`[queues] external_routing`): the
route.request, a client's decision in time, too late, none, a caller who hangs up while the
decision is awaited, and a decision that cannot be carried out. The same on a real server
and a real client on the event stream: test_api_routing_e2e.py.

The card (test_controller.Card): a caller on trunk 0 presses 0 in the main menu for queue
`service` (top-down: wu on phone 4, then chen on phone 5; ring_timeout 6 s).
"""
from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest
from controllerkit import CONFIGS, Card

from boarddrv import EventKind
from voiceserver.core import media
from voiceserver.core.events import ServerEventKind as K
from voiceserver.core.runtime import Conflict
from voiceserver.ivr import flows

BY = "network API (acd)"
EXTERNAL = "\n[queues]\nexternal_routing = true\nrouting_deadline = 2\n"


@pytest.fixture
def external(prompt_library, tmp_path: Path) -> Card:
    cfg = tmp_path / "server.toml"
    cfg.write_text((CONFIGS / "server-acd.toml").read_text() + EXTERNAL)
    return Card(prompt_library, cfg)


def to_menu(card: Card) -> str:
    """A caller in the main menu (its prompt playing); its call id."""
    card.ring_in(0)
    card.prompt_done(0)                          # welcome
    return card.events(K.CALL_START)[0]["call_id"]


def press_queue(card: Card) -> str:
    call_id = to_menu(card)
    card.key(0, "0")
    return call_id


def rings(card: Card, phone: int) -> bool:
    return media.BoardControl(0, "ring", (phone, True)) in card.commands


def routed(card: Card, call_id: str, to: flows.Queue | flows.Transfer) -> dict:
    row, cmds = card.ctl.take_from_ivr(call_id, to, BY)
    card.take(cmds)
    return row


def to_agent(card: Card, call_id: str, agent: str, queue: str | None = None) -> dict:
    row, cmds = card.ctl.route_to_agent(call_id, agent, queue, BY)
    card.take(cmds)
    return row


def without(card: Card, agent: str) -> None:
    """Queue service without `agent` among its members."""
    q = card.ctl.acd.acd.queues["service"]
    q.spec = dataclasses.replace(q.spec, members=tuple(m for m in q.spec.members if m.agent != agent))


# -- external routing -----------------------------------------------------------------------
def test_a_caller_for_a_queue_waits_for_the_route_request_with_music(external):
    call_id = press_queue(external)
    req, = external.events(K.ROUTE_REQUEST)
    assert req["call_id"] == call_id and req["chan"] == 0 and req["queue"] == "service"
    assert req["deadline_ms"] == 2000 and req["deadline"].endswith("Z")
    assert req["ivr_path"] and req["ivr_path"][-1].startswith("queue")
    assert external.events(K.CALL_QUEUE)[0]["queue"] == "service"
    assert not external.events(K.ACD_JOINED) and not rings(external, 4)      # nobody rung yet
    assert any(isinstance(c, media.Play) and c.chan == 0 and c.loop for c in external.commands)
    assert external.ctl.acd.awaiting_route(call_id)


def test_a_decision_in_time_sends_the_caller_where_the_client_says(external):
    call_id = press_queue(external)
    external.run(1.0)
    assert routed(external, call_id, flows.Queue("service")) == {"call_id": call_id, "queue": "service"}
    decided, = external.events(K.ROUTE_DECIDED)
    assert decided["decided_by"] == "client" and decided["by"] == BY and decided["queue"] == "service"
    assert 900 <= decided["waited_ms"] <= 1100 and decided["reason"] is None
    assert external.events(K.ACD_JOINED)[0]["queue"] == "service" and rings(external, 4)
    external.run(3.0)                            # past the deadline: nothing more is decided
    assert len(external.events(K.ROUTE_DECIDED)) == 1
    with pytest.raises(Conflict, match="decided already"):
        routed(external, call_id, flows.Queue("service"))


def test_a_decision_for_an_agent_rings_that_agent_alone_and_it_answers(external):
    call_id = press_queue(external)
    assert to_agent(external, call_id, "chen") == {"call_id": call_id, "agent": "chen", "queue": "service"}
    decided, = external.events(K.ROUTE_DECIDED)
    assert decided["decided_by"] == "client" and decided["agent"] == "chen" and decided["queue"] == "service"
    decision, = external.events(K.ACD_DECISION)
    assert decision["strategy"] == "direct" and decision["chosen"] == ["chen"]
    assert rings(external, 5) and not rings(external, 4)       # top-down would have rung wu first
    external.board(EventKind.HOOK_OFF, 5)
    assert media.Bridge(0, 0, 5) in external.commands
    assert external.events(K.ACD_OUTCOME)[0]["agent"] == "chen"


def test_no_decision_by_the_deadline_sends_the_caller_to_its_queue(external):
    call_id = press_queue(external)
    external.run(1.8)                            # (the request went out at the key's start, 5 ticks ago)
    assert not external.events(K.ROUTE_DECIDED)
    external.run(0.2)
    decided, = external.events(K.ROUTE_DECIDED)
    assert decided["decided_by"] == "fallback" and decided["queue"] == "service" and decided["by"] is None
    assert decided["reason"] == "no decision within 2000 ms" and 2000 <= decided["waited_ms"] <= 2040
    assert external.events(K.ACD_JOINED)[0]["queue"] == "service" and rings(external, 4)
    # the client answers too late: a 409 saying what became of the call
    with pytest.raises(Conflict, match="decided already .decided by fallback: queue service"):
        routed(external, call_id, flows.Queue("service"))


def test_a_caller_who_hangs_up_while_waiting_is_cancelled_and_nothing_is_decided(external):
    call_id = press_queue(external)
    external.run(0.5)
    external.board(EventKind.LOOP_DROP, 0)
    external.run(3.0)
    cancelled, = external.events(K.ROUTE_CANCELLED)
    assert cancelled["call_id"] == call_id and "hung up" in cancelled["reason"]
    assert not external.events(K.ROUTE_DECIDED) and not external.events(K.ACD_JOINED)
    assert not external.ctl.acd.routes and not external.ctl.acd.callers and not external.ctl.legs
    with pytest.raises(Conflict, match="the caller hung up"):
        routed(external, call_id, flows.Queue("service"))


@pytest.mark.parametrize("choice, error", [
    (flows.Queue("nowhere"), "no queue 'nowhere'"),
    (flows.Transfer("13800138000", "nope"), "no trunk group 'nope'"),
])
def test_a_wrong_target_sends_the_caller_to_its_queue_and_says_so(external, choice, error):
    call_id = press_queue(external)
    with pytest.raises(LookupError, match=f"{error}.*: the caller went to queue service .the fallback."):
        routed(external, call_id, choice)
    external.feed()                # what the fallback did goes out with the next tick (an error answer)
    decided, = external.events(K.ROUTE_DECIDED)
    assert decided["decided_by"] == "fallback" and decided["queue"] == "service"
    assert decided["reason"].startswith(f"the client's choice failed: {error}")
    assert external.events(K.ACD_JOINED)[0]["queue"] == "service" and rings(external, 4)


@pytest.mark.parametrize("action, why", [("logout", "agent chen is not logged in"),
                                         ("not_ready", "agent chen is not ready")])
def test_an_agent_who_cannot_take_the_call_is_a_conflict_and_the_caller_goes_to_its_queue(external,
                                                                                         action, why):
    call_id = press_queue(external)
    external.ctl.agent_control("chen", action, BY)
    with pytest.raises(Conflict, match=f"{why}: the caller went to queue service"):
        to_agent(external, call_id, "chen")
    external.feed()
    assert external.events(K.ROUTE_DECIDED)[0]["decided_by"] == "fallback"
    assert external.events(K.ACD_JOINED)[0]["queue"] == "service"


def test_a_decision_to_transfer_dials_the_number_on_the_group(external):
    call_id = press_queue(external)
    row = routed(external, call_id, flows.Transfer("13800138000", "pstn"))
    assert row == {"call_id": call_id, "number": "13800138000", "trunk": "pstn"}
    decided, = external.events(K.ROUTE_DECIDED)
    assert decided["number"] == "13800138000" and decided["trunk"] == "pstn"
    assert not external.ctl.acd.knows(call_id) and not external.events(K.ACD_JOINED)
    external.run(5.0)
    assert external.events(K.CALL_DIALING)[0]["number"] == "13800138000", external.kinds()


def test_a_route_from_the_api_before_the_ivr_queues_the_caller_is_not_asked_again(external):
    call_id = to_menu(external)
    routed(external, call_id, flows.Queue("service"))
    assert not external.events(K.ROUTE_REQUEST)
    assert external.events(K.ACD_JOINED)[0]["queue"] == "service"


# -- route to an agent, without external routing -----------------------------------------------
def test_a_caller_in_the_ivr_routed_to_an_agent_rings_it_and_waits_in_its_queue(card):
    call_id = to_menu(card)
    assert to_agent(card, call_id, "chen") == {"call_id": call_id, "agent": "chen", "queue": "service"}
    assert card.sent(media.StopPlay, chan=0), "the menu's prompt stops"
    assert rings(card, 5) and not rings(card, 4)
    assert not card.ctl.records and card.ctl.legs[(0, 0)].path[-1] == f"routed:{BY}"
    card.run(5.0)
    assert not rings(card, 4)                   # the queue does not ring anyone else meanwhile
    card.run(1.5)                                # chen's 6 s ring is over: the queue as usual
    assert card.events(K.ACD_RING_TIMEOUT)[0]["agent"] == "chen"
    assert rings(card, 4)


def test_a_caller_waiting_in_a_queue_can_be_offered_to_an_agent_of_another_queue(card):
    without(card, "chen")
    card.ctl.agent_control("wu", "not_ready", BY)
    call_id = press_queue(card)
    card.run(1.0)
    assert card.ctl.acd.acd.calls[call_id].state == "waiting" and not rings(card, 5)
    assert to_agent(card, call_id, "chen") == {"call_id": call_id, "agent": "chen", "queue": "service"}
    assert rings(card, 5) and card.events(K.ACD_DECISION)[-1]["chosen"] == ["chen"]
    with pytest.raises(Conflict, match="agent chen is busy: being rung for a call"):
        to_agent(card, call_id, "chen")
    card.ctl.agent_control("wu", "ready", BY)
    assert not rings(card, 4)                           # chen alone is rung for it
    with pytest.raises(Conflict, match="is ringing .agents: chen.: only a waiting call"):
        to_agent(card, call_id, "wu")
    card.board(EventKind.HOOK_OFF, 5)
    assert media.Bridge(0, 0, 5) in card.commands


@pytest.mark.parametrize("agent, error, status", [
    ("nobody", "no agent 'nobody'", LookupError),
    ("chen", "agent chen is busy: on a call", Conflict),
])
def test_an_unknown_or_busy_agent_is_refused_and_the_caller_stays_in_the_ivr(card, agent, error, status):
    first = to_menu(card)
    routed(card, first, flows.Queue("service"))
    card.run(7.0)
    card.board(EventKind.HOOK_OFF, 5)                  # chen takes the first caller
    card.ring_in(1)
    card.prompt_done(1)
    second = [e["call_id"] for e in card.events(K.CALL_START) if e["chan"] == 1][0]
    with pytest.raises(status, match=error):
        to_agent(card, second, agent)
    assert not card.ctl.acd.knows(second) and card.ctl.legs[(0, 1)].ivr is not None
    assert not card.ctl.legs[(0, 1)].ivr.done


def test_an_agent_in_no_queue_needs_the_queue_named(card):
    call_id = to_menu(card)
    without(card, "chen")
    with pytest.raises(Conflict, match="chen is a member of no queue"):
        to_agent(card, call_id, "chen")
    assert to_agent(card, call_id, "chen", "service")["queue"] == "service"
    assert rings(card, 5)


# -- the example ACD answers a route.request ----------------------------------------------------
class Posts:
    """The example's HTTP session: each POST noted, answered 200 (or `status`)."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.sent: list[tuple[str, dict]] = []

    def post(self, url: str, json: dict) -> Any:
        self.sent.append((url, json))
        session = self

        class Answer:
            status = session.status

            async def __aenter__(self) -> Any:
                return self

            async def __aexit__(self, *exc: object) -> None:
                return None

            async def json(self) -> dict:
                return {} if session.status == 200 else {"error": "too late"}
        return Answer()


@pytest.mark.parametrize("route_to, body, line", [
    ("1001", {"agent": "1001"}, "DECIDE call=c-7 agent=1001 -> 200"),
    (None, {"queue": "service"}, "DECIDE call=c-7 queue=service -> 200"),
])
def test_the_example_acd_answers_a_route_request(capsys, route_to, body, line):
    from voiceserver.examples.acd import KINDS, Acd
    assert K.ROUTE_REQUEST in KINDS
    posts = Posts()
    acd = Acd(posts, "http://127.0.0.1:8750", "service", route_to)   # type: ignore[arg-type]
    asyncio.run(acd.handle({"kind": "route.request", "call_id": "c-7", "queue": "service", "seq": 5}))
    assert posts.sent == [("http://127.0.0.1:8750/v1/calls/c-7/route", body)]
    assert capsys.readouterr().out == line + "\n"


# -- the settings -------------------------------------------------------------------------------
@pytest.mark.parametrize("extra, error", [
    ("routing_deadline = 0", "routing_deadline"),
    ("routing_deadline = 61", "routing_deadline"),
    ('external_routing = "yes"', "external_routing"),
])
def test_external_routing_settings_are_checked(prompt_library, tmp_path, extra, error):
    from boarddrv.tomlconfig import ConfigError
    from voiceserver.config.server import load_config
    cfg = tmp_path / "server.toml"
    cfg.write_text((CONFIGS / "server-acd.toml").read_text() + f"\n[queues]\n{extra}\n")
    with pytest.raises(ConfigError, match=error):
        load_config(cfg, library=prompt_library)


def test_external_routing_is_off_unless_asked(prompt_library, tmp_path):
    from voiceserver.config.server import load_config
    cfg = tmp_path / "server.toml"
    cfg.write_text((CONFIGS / "server-acd.toml").read_text() + EXTERNAL.replace("= 2", "= 0.5"))
    on = load_config(cfg, library=prompt_library).acd
    off = load_config(CONFIGS / "server-acd.toml", library=prompt_library).acd
    assert (on.external_routing, on.routing_deadline_ms) == (True, 500)
    assert (off.external_routing, off.routing_deadline_ms) == (False, 2000)
