"""An originated call's `then` {"play": "P1&P2"} (AMI Originate Application Playback) and
{"queue": Q} (Application Queue) at the event level: the controller with controllerkit's Card.
The called party hears the prompts and is hung up; or it joins the queue and an agent rings."""
from __future__ import annotations

import pytest
from controllerkit import Card

from boarddrv import EventKind
from voiceserver.core import media
from voiceserver.core.channels import State
from voiceserver.core.engine import DtmfSent
from voiceserver.core.events import ServerEventKind as K

BY = "AMI (acd)"


def answered(card: Card, row: dict) -> int:
    """The originated call's line, dialled (no dial tone: after 3 s) and answered (battery reversal)."""
    chan = int(row["line"].split(":")[1])
    card.run(3.5)
    card.tick += 1
    card.feed(DtmfSent(chan))
    card.board(EventKind.BATTERY_REVERSAL, chan)
    assert card.rt.channels[chan].state is State.CONNECTED
    return chan


def test_then_play_plays_the_prompts_in_order_then_hangs_up(card):
    row = card.apply(card.ctl.originate("pstn", "13900001111", {"play": "welcome&goodbye"}, BY))
    assert row["then"] == {"play": "welcome&goodbye"}
    chan = answered(card, row)
    play, = [e for e in card.events(K.CALL_PLAY) if e["call_id"] == row["call_id"]]
    assert play["items"] == ["welcome", "goodbye"]
    card.key(chan, "5")                                  # no barge-in: Playback is not Background
    assert not [e for e in card.events(K.CALL_END) if e["call_id"] == row["call_id"]]
    card.prompt_done(chan)
    card.run(2.0)
    end, = [e for e in card.events(K.CALL_END) if e["call_id"] == row["call_id"]]
    assert end["answered"] is True and end["side"] == "server"
    assert [e["state"] for e in card.events(K.CALL_ORIGINATE)] == ["dialing", "answered"]
    assert card.rt.channels[chan].state in (State.HANGUP, State.IDLE)


def test_then_queue_joins_the_queue_and_its_first_agent_rings(card):
    row = card.apply(card.ctl.originate("pstn", "13900001111", {"queue": "service"}, BY))
    chan = answered(card, row)
    joined, = card.events(K.ACD_JOINED)
    assert joined["call_id"] == row["call_id"] and joined["queue"] == "service"
    decision, = card.events(K.ACD_DECISION)
    assert decision["call_id"] == row["call_id"] and decision["chosen"] == ["wu"]
    assert media.BoardControl(0, "ring", (4, True)) in card.commands      # wu's phone
    assert not card.events(K.ROUTE_REQUEST)
    card.board(EventKind.HOOK_OFF, 4)
    bridge, = [e for e in card.events(K.CALL_BRIDGE) if e["call_id"] == row["call_id"]]
    assert bridge["agent"] == "wu" and media.Bridge(0, chan, 4) in card.commands


def test_then_play_and_queue_refuse_what_does_not_exist_before_dialling(card):
    with pytest.raises(LookupError, match="no prompt 'nope'"):
        card.ctl.originate("pstn", "1", {"play": "welcome&nope"}, BY)
    with pytest.raises(LookupError, match="play: no prompt named"):
        card.ctl.originate("pstn", "1", {"play": "&"}, BY)
    with pytest.raises(LookupError, match="no queue 'nope'"):
        card.ctl.originate("pstn", "1", {"queue": "nope"}, BY)
    with pytest.raises(LookupError, match=r"no originate target 'x' \(ivr, agent, call, play, queue\)"):
        card.ctl.originate("pstn", "1", {"x": "y"}, BY)
    assert not card.events(K.CALL_ORIGINATE) and not card.ctl.originates
