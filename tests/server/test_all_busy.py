"""The all-busy indication at the event level (controllerkit's Card): queue "service" has the
members wu (phone 4) and chen (phone 5), both logged in and ready at the start."""
from __future__ import annotations

from controllerkit import Card, to_agent

from boarddrv import EventKind
from voiceserver.core.events import ServerEventKind as K

BY = "network API (test)"


def busy_events(card: Card) -> list[tuple[str, bool, int]]:
    return [(e["queue"], e["busy"], e["waiting"]) for e in card.events(K.ACD_ALL_BUSY)]


def service_row(card: Card) -> dict:
    return next(r for r in card.ctl.acd.acd.queue_rows() if r["name"] == "service")


def control(card: Card, agent: str, action: str) -> None:
    card.tick += 1
    card.ctl.acd.agent_control(card.tick, agent, action, BY)


def test_all_busy_is_set_when_no_member_is_free_and_cleared_when_one_is(card):
    assert service_row(card)["all_busy"] is False
    control(card, "wu", "not_ready")
    assert busy_events(card) == []                       # chen is still free
    control(card, "chen", "not_ready")
    assert busy_events(card) == [("service", True, 0)]
    assert service_row(card)["all_busy"] is True
    control(card, "wu", "not_ready")                     # no change: no second event
    assert len(busy_events(card)) == 1
    control(card, "chen", "ready")
    assert busy_events(card)[-1] == ("service", False, 0)
    assert service_row(card)["all_busy"] is False


def test_a_queue_nobody_is_logged_in_to_is_not_all_busy(card):
    control(card, "wu", "not_ready")
    control(card, "chen", "not_ready")
    control(card, "wu", "logout")
    assert busy_events(card)[-1][1] is True              # chen, logged in, is not ready
    control(card, "chen", "logout")
    assert busy_events(card)[-1] == ("service", False, 0)   # unstaffed, not busy
    assert service_row(card)["all_busy"] is False


def test_an_agent_on_a_call_counts_as_busy(card):
    to_agent(card)               # wu misses the ring (not ready after it), chen is rung and answers
    agents = card.ctl.acd.acd.agents
    assert (agents["wu"].state.value, agents["chen"].state.value) == ("not_ready", "on_call")
    # set once, when wu went not ready while chen rang: the caller still waiting then
    assert busy_events(card) == [("service", True, 1)]
    card.ring_in(1)                                      # a second caller, to the queue
    card.prompt_done(1)
    card.key(1, "0")
    assert service_row(card)["waiting"] == 1 and service_row(card)["all_busy"] is True
    control(card, "wu", "ready")                         # free, and rung for the caller at once:
    assert busy_events(card) == [("service", True, 1)]   # no free moment is published
    assert agents["wu"].state.value == "ringing"
    card.board(EventKind.HOOK_ON, 5)                     # chen hangs up: 5 s of wrap-up, still busy
    assert agents["chen"].state.value == "wrap_up" and len(busy_events(card)) == 1
    card.run(6.0)      # wrap-up over: chen is free while wu rings; wu misses it, and chen is rung
    assert (agents["wu"].state.value, agents["chen"].state.value) == ("not_ready", "ringing")
    assert busy_events(card) == [("service", True, 1), ("service", False, 1), ("service", True, 1)]
    assert service_row(card)["all_busy"] is True
