"""A collection of the network API that something else ends before its own termination
condition (controllerkit's Card): the client waiting for its result still gets one ivr.input,
with the digits typed so far and reason `replaced` (the next command took the line: another
collect, a play, an ivr jump, a route, a transfer) or `hangup` (the call ended: either side,
or the API's hangup), masked as a finished one would be."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from controllerkit import Card

from boarddrv import EventKind
from voiceserver.core.events import ServerEventKind as K
from voiceserver.core.masking import MASK
from voiceserver.ivr.collect import CollectSpec
from voiceserver.ivr.flows import Prompt, Queue, Transfer

BY = "network API (test)"


def collecting(card: Card, typed: str, secret: bool = False, prompts: tuple[str, ...] = ()) -> str:
    """A caller on line 0, answered, taken by the API to collect up to 8 digits ending with #,
    who typed `typed` so far: its call id."""
    card.ring_in(0)
    call_id = card.events(K.CALL_START)[0]["call_id"]
    card.ctl.catch_up({0: card.tick})
    card.apply(card.ctl.api_collect(call_id, CollectSpec(max_digits=8, terminators="#", first_timeout=10_000,
                                                         inter_timeout=10_000),
                                    secret, [Prompt(p) for p in prompts], None, BY))
    for d in typed:
        card.key(0, d)
    return call_id


REPLACING: dict[str, Callable[[Card, str], Any]] = {
    "collect": lambda card, cid: card.ctl.api_collect(cid, CollectSpec(max_digits=2), False, [], None, BY),
    "play": lambda card, cid: card.ctl.api_play(cid, [Prompt("goodbye")], True, None, BY),
    "ivr menu": lambda card, cid: card.ctl.ivr_jump(cid, "account", None, BY),
    "route to a queue": lambda card, cid: card.ctl.take_from_ivr(cid, Queue("service"), BY),
    "route to an agent": lambda card, cid: card.ctl.route_to_agent(cid, "chen", None, BY),
    "transfer": lambda card, cid: card.ctl.take_from_ivr(cid, Transfer("13900001111", "pstn"), BY),
}


@pytest.mark.parametrize("command", list(REPLACING))
def test_a_next_command_ends_a_running_collect_with_the_digits_so_far(card, command):
    call_id = collecting(card, "12")
    assert card.events(K.IVR_INPUT) == []
    card.apply(REPLACING[command](card, call_id))
    [got] = card.events(K.IVR_INPUT)
    assert (got["call_id"], got["menu"], got["value"], got["masked"], got["reason"]) == \
        (call_id, "api", "12", False, "replaced")
    if command == "collect":                     # the new collection runs and ends on its own
        card.key(0, "3")
        card.key(0, "4")
        assert [(e["value"], e["reason"]) for e in card.events(K.IVR_INPUT)] == \
            [("12", "replaced"), ("34", "max_digits")]
    else:
        card.run(20.0)
        assert len(card.events(K.IVR_INPUT)) == 1    # once: the old collector's timers are dead


def test_a_replaced_collect_whose_prompt_plays_stops_it_first_then_says_the_input(card):
    call_id = collecting(card, "", prompts=("enter_account",))
    card.apply(card.ctl.api_play(call_id, [Prompt("goodbye")], True, None, BY))
    kinds = [k for k in card.kinds() if k in ("call.play_done", "ivr.input", "call.play")]
    assert kinds[-3:] == ["call.play_done", "ivr.input", "call.play"]
    done = card.events(K.CALL_PLAY_DONE)[-1]
    assert (done["items"], done["how"]) == (["enter_account"], "stopped")
    [got] = card.events(K.IVR_INPUT)
    assert (got["value"], got["reason"]) == ("", "replaced")


def test_a_replaced_secret_collect_is_masked(card):
    call_id = collecting(card, "246", secret=True)
    card.apply(card.ctl.api_play(call_id, [Prompt("goodbye")], True, None, BY))
    [got] = card.events(K.IVR_INPUT)
    assert (got["value"], got["masked"], got["reason"]) == (MASK * 3, True, "replaced")


def test_a_finished_collect_is_not_said_again_by_the_next_command(card):
    call_id = collecting(card, "12#")
    [got] = card.events(K.IVR_INPUT)
    assert got["reason"] == "terminator"
    card.apply(card.ctl.api_play(call_id, [Prompt("goodbye")], True, None, BY))
    assert len(card.events(K.IVR_INPUT)) == 1


def test_the_caller_hanging_up_mid_collect_gives_the_digits_so_far_before_call_end(card):
    call_id = collecting(card, "55")
    card.board(EventKind.LOOP_DROP, 0)
    card.run(2.0)
    [got] = card.events(K.IVR_INPUT)
    assert (got["call_id"], got["value"], got["masked"], got["reason"]) == (call_id, "55", False, "hangup")
    assert card.kinds().index("ivr.input") < card.kinds().index("call.end")
    assert card.events(K.CALL_END)[0]["side"] == "caller"
    assert (0, 0) not in card.ctl.api_prompts
    card.run(20.0)
    assert len(card.events(K.IVR_INPUT)) == 1        # once: its timers found nothing to end


def test_a_hang_up_while_the_collects_prompt_plays_says_the_prompt_then_the_input(card):
    collecting(card, "", prompts=("enter_account",))
    card.board(EventKind.LOOP_DROP, 0)
    card.run(2.0)
    kinds = [k for k in card.kinds() if k in ("call.play_done", "ivr.input", "call.end")]
    assert kinds[-3:] == ["call.play_done", "ivr.input", "call.end"]
    assert card.events(K.CALL_PLAY_DONE)[-1]["how"] == "hangup"
    [got] = card.events(K.IVR_INPUT)
    assert (got["value"], got["reason"]) == ("", "hangup")


def test_the_apis_hangup_mid_collect_gives_the_digits_so_far_masked_when_secret(card):
    call_id = collecting(card, "9", secret=True)
    card.take(card.ctl.hang_up(call_id, "hung up by the API"))
    card.run(2.0)
    [got] = card.events(K.IVR_INPUT)
    assert (got["value"], got["masked"], got["reason"]) == (MASK, True, "hangup")
    assert card.kinds().index("ivr.input") < card.kinds().index("call.end")
