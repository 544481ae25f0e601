"""The network API's play and collect at the event level (controllerkit's Card): a call taken
from the IVR hears prompts and said numbers, and types digits the IVR's collector takes."""
from __future__ import annotations

import pytest
from controllerkit import Card, to_agent

from voiceserver.core import media
from voiceserver.core.channels import State
from voiceserver.core.events import ServerEventKind as K
from voiceserver.core.masking import MASK
from voiceserver.core.runtime import Conflict
from voiceserver.ivr import saynumber
from voiceserver.ivr.collect import CollectSpec
from voiceserver.ivr.flows import Prompt, Queue, Say

BY = "network API (test)"


def answered(card: Card) -> str:
    """A caller on line 0, answered, hearing the IVR's welcome: its call id."""
    card.ring_in(0)
    assert card.playing.get(0) is not None
    return card.events(K.CALL_START)[0]["call_id"]


def test_play_says_a_number_in_place_of_the_ivr_prompt(card):
    call_id = answered(card)
    lang = card.ctl.cfg.prompts.default_lang
    row = card.apply(card.ctl.api_play(call_id, [Prompt("goodbye"), Say("number", "123.45")], True, None, BY))
    assert row["items"] == ["goodbye", "say_number(123.45)"]
    [welcome_done] = card.events(K.CALL_PLAY_DONE)
    assert welcome_done["how"] == "stopped"                      # the IVR's prompt stopped
    play = card.events(K.CALL_PLAY)[-1]
    assert play["items"] == ["goodbye", "say_number(123.45)"] and play["lang"] == lang
    sent = card.sent(media.Play, chan=0)[-1]
    assert len(sent.segments) == 1 + len(saynumber.say_number("123.45", lang))
    assert card.events(K.IVR_STEP)[-1]["step"] == "routed"       # the IVR flow was left
    card.prompt_done(0)
    assert card.events(K.CALL_PLAY_DONE)[-1]["how"] == "finished"
    card.run(30.0)                                               # under the API's control: it waits
    assert card.rt.channels[0].state is State.CONNECTED
    assert card.events(K.CALL_END) == []


def test_a_key_stops_a_barge_in_play_and_not_another(card):
    call_id = answered(card)
    card.apply(card.ctl.api_play(call_id, [Prompt("goodbye")], False, None, BY))
    card.key(0, "5")
    assert 0 in card.playing                                     # barge_in false: it plays on
    card.apply(card.ctl.api_play(call_id, [Prompt("welcome")], True, None, BY))
    assert card.events(K.CALL_PLAY_DONE)[-1]["items"] == ["goodbye"]   # replaced: stopped
    card.key(0, "5")
    assert 0 not in card.playing
    done = card.events(K.CALL_PLAY_DONE)[-1]
    assert (done["items"], done["how"]) == (["welcome"], "barge_in")


def test_a_missing_prompt_is_refused_before_anything_plays(card):
    call_id = answered(card)
    plays = len(card.sent(media.Play))
    with pytest.raises(ValueError, match="no_such_prompt"):
        card.ctl.api_play(call_id, [Prompt("goodbye"), Prompt("no_such_prompt")], True, None, BY)
    assert len(card.sent(media.Play)) == plays and card.ctl.media.take() == []
    assert card.events(K.CALL_PLAY_DONE) == []                   # the IVR's welcome plays on
    assert not card.ctl.legs[(0, 0)].ivr.done


def test_a_call_with_an_agent_cannot_be_played_to(card):
    to_agent(card)
    call_id = card.events(K.CALL_START)[0]["call_id"]
    with pytest.raises(Conflict):
        card.ctl.api_play(call_id, [Prompt("goodbye")], True, None, BY)
    with pytest.raises(LookupError):
        card.ctl.api_play("nope", [Prompt("goodbye")], True, None, BY)


def collect(card: Card, call_id: str, secret: bool = False, prompts: tuple[str, ...] = (), **spec: int | str) -> None:
    card.ctl.catch_up({0: card.tick})           # the engine's tick now, as the server's catch_up_clock
    card.apply(card.ctl.api_collect(call_id, CollectSpec(**spec), secret, [Prompt(p) for p in prompts], None, BY))


def test_collect_ends_on_the_terminator_after_the_prompt_barged_in(card):
    call_id = answered(card)
    collect(card, call_id, prompts=("enter_account",), max_digits=8, terminators="#")
    assert card.events(K.CALL_PLAY)[-1]["items"] == ["enter_account"]
    for d in "123#":
        card.key(0, d)
    assert card.events(K.CALL_PLAY_DONE)[-1]["how"] == "barge_in"
    [got] = card.events(K.IVR_INPUT)
    assert (got["menu"], got["value"], got["reason"], got["masked"]) == ("api", "123", "terminator", False)


def test_collect_ends_at_max_digits(card):
    call_id = answered(card)
    collect(card, call_id, max_digits=4)
    for d in "98765":
        card.key(0, d)
    [got] = card.events(K.IVR_INPUT)
    assert (got["value"], got["reason"]) == ("9876", "max_digits")


def test_collect_first_timeout_counts_from_the_prompts_end(card):
    call_id = answered(card)
    collect(card, call_id, prompts=("goodbye",), max_digits=4, first_timeout=2000)
    card.run(10.0)
    assert card.events(K.IVR_INPUT) == []                        # the prompt plays on: no timer yet
    card.prompt_done(0)
    card.run(1.5)
    assert card.events(K.IVR_INPUT) == []
    card.run(1.0)
    [got] = card.events(K.IVR_INPUT)
    assert (got["value"], got["reason"]) == ("", "first_timeout")


def test_collect_inter_timeout(card):
    call_id = answered(card)
    collect(card, call_id, max_digits=8, inter_timeout=3000)
    card.key(0, "4")
    card.key(0, "2")
    card.run(2.5)
    assert card.events(K.IVR_INPUT) == []
    card.run(1.0)
    [got] = card.events(K.IVR_INPUT)
    assert (got["value"], got["reason"]) == ("42", "inter_timeout")


def test_collect_total_timeout(card):
    call_id = answered(card)
    collect(card, call_id, max_digits=8, inter_timeout=3000, total_timeout=5000)
    for _ in range(4):                          # keys at 0, 2.1, 4.3 s; the 4th (6.4 s) comes too late
        card.key(0, "7")
        card.run(2.0)
    [got] = card.events(K.IVR_INPUT)
    assert (got["value"], got["reason"]) == ("777", "total_timeout")


def test_a_secret_collect_is_masked_in_every_event(card):
    call_id = answered(card)
    collect(card, call_id, secret=True, max_digits=6, terminators="#")
    for d in "2468#":
        card.key(0, d)
    [got] = card.events(K.IVR_INPUT)
    assert got["masked"] and got["value"] == MASK * 4 and got["reason"] == "terminator"
    digits = card.events(K.CALL_DIGIT)
    assert digits and all(d["digit"] == MASK for d in digits)


def test_after_the_api_the_ivr_and_a_route_take_the_call_again(card):
    call_id = answered(card)
    card.apply(card.ctl.api_play(call_id, [Prompt("goodbye")], True, None, BY))
    card.apply(card.ctl.ivr_jump(call_id, "account", None, BY))
    assert card.events(K.CALL_PLAY_DONE)[-1]["items"] == ["goodbye"]   # the API's prompt stopped
    assert card.events(K.CALL_PLAY)[-1]["items"] == ["enter_account"]
    assert (0, 0) not in card.ctl.api_prompts
    collect(card, call_id, max_digits=2)
    card.apply(card.ctl.take_from_ivr(call_id, Queue("service"), BY))
    assert card.events(K.CALL_QUEUE)[-1]["queue"] == "service"
    assert (0, 0) not in card.ctl.api_prompts


def test_a_route_to_an_agent_refused_leaves_the_apis_play_playing(card):
    call_id = answered(card)
    card.apply(card.ctl.api_play(call_id, [Prompt("goodbye")], True, None, BY))
    with pytest.raises(LookupError):
        card.ctl.route_to_agent(call_id, "nobody", None, BY)
    assert 0 in card.playing and (0, 0) in card.ctl.api_prompts
    card.apply(card.ctl.route_to_agent(call_id, "chen", None, BY))
    assert card.events(K.CALL_PLAY_DONE)[-1]["how"] == "stopped"
    assert card.events(K.CALL_QUEUE)[-1]["queue"] == "service"
    assert (0, 0) not in card.ctl.api_prompts
