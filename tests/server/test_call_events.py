"""The event kinds issue 13 added, at the event level (the Card harness of test_controller):
call.digit with its duration, call.end's side, ivr.step, ivr.input, call.play_done."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from controllerkit import CONFIGS, Card, to_agent

from boarddrv import EventKind
from dsp.dtmf import DtmfEvent
from voiceserver.core import media
from voiceserver.core.engine import DtmfSent
from voiceserver.core.events import EventLog
from voiceserver.core.events import ServerEventKind as K
from voiceserver.core.masking import MASK

ACCOUNT = "31415926"


@pytest.fixture
def secret_card(prompt_library, tmp_path: Path) -> Card:
    """server-acd.toml with the account menu's input secret."""
    text = (CONFIGS / "server-acd.toml").read_text()
    old = 'input = { store = "account", then = '
    assert old in text
    cfg = tmp_path / "server-secret.toml"
    cfg.write_text(text.replace(old, 'input = { store = "account", secret = true, then = '))
    return Card(prompt_library, cfg)


def to_account_menu(card: Card) -> None:
    card.ring_in(0)
    card.prompt_done(0)                          # welcome
    card.key(0, "1")                             # the account menu: enter_account plays
    assert card.playing.get(0) is not None


# -- call.digit: one event per digit, at its end, with its duration ------------------------
def test_a_digit_is_published_once_at_its_end_with_its_duration_and_onset(card):
    card.ring_in(0)
    card.prompt_done(0)
    card.tick += 1
    onset = card.tick
    card.feed(DtmfEvent(0, "8", onset * 160, None))
    assert card.events(K.CALL_DIGIT) == []             # not yet: its duration is not known
    assert ("key", "8") in [(e["step"], e["detail"]) for e in card.events(K.IVR_STEP)]   # acted on at once
    card.tick += 6
    card.feed(DtmfEvent(0, "8", onset * 160, onset * 160 + 760))   # 95 ms of tone
    [ev] = card.events(K.CALL_DIGIT)
    assert (ev["digit"], ev["masked"], ev["duration_ms"], ev["onset_tick"], ev["tick"]) == \
        ("8", False, 95, onset, card.tick)


def test_a_digit_sounding_when_the_call_ends_has_no_duration_and_comes_before_call_end(card):
    to_account_menu(card)
    card.tick += 1
    card.feed(DtmfEvent(0, "3", card.tick * 160, None))
    card.board(EventKind.LOOP_DROP, 0)           # the caller hangs up with the key still down
    kinds = card.kinds()
    assert kinds.index("call.digit") < kinds.index("call.end")
    assert card.events(K.CALL_DIGIT)[-1]["duration_ms"] is None


def test_secret_digits_stay_masked_at_their_end(secret_card):
    card = secret_card
    to_account_menu(card)
    for d in ACCOUNT:
        card.key(0, d)
    digits = card.events(K.CALL_DIGIT)
    assert [e["digit"] for e in digits] == ["1"] + [MASK] * 8
    assert all(e["masked"] for e in digits[1:]) and all(e["duration_ms"] == 100 for e in digits)


# -- call.end's side --------------------------------------------------------------------------
def test_the_caller_hanging_up_is_side_caller(card):
    card.ring_in(0)
    card.board(EventKind.LOOP_DROP, 0)
    [end] = card.events(K.CALL_END)
    assert end["side"] == "caller"


def test_a_caller_who_stops_ringing_is_side_caller(card):
    card.board(EventKind.RING_START, 0)
    card.run(1.0)
    card.board(EventKind.RING_STOP, 0)
    card.run(10.0)                               # no second ring: abandoned while ringing
    [end] = card.events(K.CALL_END)
    assert (end["answered"], end["side"]) == (False, "caller")


def test_the_ivr_hanging_up_is_side_server(card):
    to_account_menu(card)
    card.prompt_done(0)
    for d in ACCOUNT + "#":
        card.key(0, d)
    card.prompt_done(0)                          # goodbye: the IVR hangs up
    [end] = card.events(K.CALL_END)
    assert (end["reason"], end["side"]) == ("ivr: hangup action", "server")


def test_the_agent_hanging_up_is_side_agent_on_both_legs(card):
    to_agent(card)
    card.board(EventKind.HOOK_ON, 5)
    card.run(2.0)
    ends = {e["chan"]: e["side"] for e in card.events(K.CALL_END)}
    assert ends == {5: "agent", 0: "agent"}       # the caller's leg ended because the agent left


def test_the_caller_hanging_up_ends_the_agent_leg_with_side_caller(card):
    to_agent(card)
    card.board(EventKind.LOOP_DROP, 0)
    card.run(2.0)
    ends = {e["chan"]: e["side"] for e in card.events(K.CALL_END)}
    assert ends == {0: "caller", 5: "caller"}


def test_a_hang_up_by_the_api_is_side_server(card):
    to_agent(card)
    call_id = card.events(K.CALL_START)[0]["call_id"]
    card.take(card.ctl.hang_up(call_id, "fraud check"))
    assert {e["chan"]: e["side"] for e in card.events(K.CALL_END)} == {0: "server", 5: "server"}


def test_a_lost_board_and_a_span_alarm_are_side_network(card):
    to_agent(card)
    card.take(card.ctl.board_lost(card.rt, card.tick, "device gone"))
    assert {e["side"] for e in card.events(K.CALL_END)} == {"network"}


def test_an_outbound_call_the_far_end_hangs_up_is_side_far_end(card):
    card.ring_in(0)
    card.prompt_done(0)
    card.key(0, "8")                             # transfer to 13800138000 over pstn
    card.run(3.0)
    line = next(c.args[0] for c in card.sent(media.BoardControl, method="hook")
                if c.args[1] == "offhook" and c.args[0] != 0)
    card.tick += 1
    card.feed(DtmfSent(line))                    # dialled: the call proceeds
    card.board(EventKind.LOOP_DROP, line)        # the far end of the outbound leg hangs up
    card.run(1.0)
    ends = {e["chan"]: e["side"] for e in card.events(K.CALL_END)}
    assert ends.get(line) == "far_end"


# -- ivr.step, ivr.input ----------------------------------------------------------------------
def test_ivr_steps_are_the_path_the_call_record_keeps(card):
    to_account_menu(card)
    steps = [(e["step"], e["detail"]) for e in card.events(K.IVR_STEP)]
    assert steps == [("flow", "main"), ("play", "welcome"), ("menu", "main"), ("key", "1"), ("menu", "account")]
    leg = card.ctl.legs[(0, 0)]
    assert [f"{s}:{d}" if d else s for s, d in steps] == leg.path[-len(steps):]


@pytest.mark.parametrize(("keys", "reason"), [("3141592#", "terminator"), (ACCOUNT, "max_digits"),
                                              ("1234567", "inter_timeout")])
def test_an_input_says_what_was_stored_and_how_the_input_ended(card, keys, reason):
    to_account_menu(card)
    card.prompt_done(0)
    for d in keys:
        card.key(0, d)
    card.run(4.0)                                # past the 3 s inter-digit timeout
    [inp] = card.events(K.IVR_INPUT)
    stored = keys.rstrip("#")
    assert (inp["menu"], inp["store"], inp["value"], inp["masked"], inp["reason"]) == \
        ("account", "account", stored, False, reason)
    assert "input" not in [e["step"] for e in card.events(K.IVR_STEP)]   # the input is its own event


def test_a_secret_account_number_never_leaves_in_cleartext_in_any_event_or_the_event_log(secret_card):
    card = secret_card
    log = io.StringIO()
    card.bus.subscribe(EventLog(log))
    to_account_menu(card)
    for d in ACCOUNT[:7] + "#":                  # barges in on enter_account; # ends it
        card.key(0, d)
    card.prompt_done(0)                          # goodbye
    card.run(2.0)
    [inp] = card.events(K.IVR_INPUT)
    assert (inp["value"], inp["masked"], inp["reason"]) == (MASK * 7, True, "terminator")
    assert card.events(K.CALL_END), "the call went the whole way"
    every = [json.dumps(e.as_dict(), ensure_ascii=False) for e in card.bus.journal]
    for text in every + [log.getvalue()]:
        assert ACCOUNT[:7] not in text and ACCOUNT[:3] not in text and ACCOUNT[4:7] not in text
    assert [e["digit"] for e in card.events(K.CALL_DIGIT)] == ["1"] + [MASK] * 8   # 7 keys and the '#'
    steps = card.events(K.IVR_STEP)
    assert [e["detail"] for e in steps if e["step"] == "key"] == ["1"]              # the main menu's key
    assert not [e for e in steps if e["step"] != "key" and any(k in e["detail"] for k in ACCOUNT[:7])]


# -- call.play_done ---------------------------------------------------------------------------
def test_a_prompt_played_to_the_end_is_finished(card):
    card.ring_in(0)
    card.prompt_done(0)                          # welcome
    [done] = card.events(K.CALL_PLAY_DONE)
    assert (done["items"], done["how"]) == (["welcome"], "finished")
    assert done["items"] == card.events(K.CALL_PLAY)[0]["items"]


def test_a_digit_barging_in_on_a_prompt_is_barge_in(card):
    to_account_menu(card)
    card.key(0, "3")                             # during enter_account
    done = card.events(K.CALL_PLAY_DONE)
    assert [(d["items"], d["how"]) for d in done][-1] == (["enter_account"], "barge_in")


def test_the_caller_hanging_up_mid_prompt_is_hangup_before_call_end(card):
    card.ring_in(0)
    card.board(EventKind.LOOP_DROP, 0)           # during welcome
    [done] = card.events(K.CALL_PLAY_DONE)
    assert done["how"] == "hangup"
    kinds = card.kinds()
    assert kinds.index("call.play_done") < kinds.index("call.end")


def test_a_prompt_the_network_api_stops_is_stopped(card):
    to_account_menu(card)
    call_id = card.events(K.CALL_START)[0]["call_id"]
    card.apply(card.ctl.ivr_jump(call_id, "main", None, "network API (test)"))   # from outside a tick
    done = card.events(K.CALL_PLAY_DONE)[-1]
    assert (done["items"], done["how"]) == (["enter_account"], "stopped")
    assert card.events(K.IVR_STEP)[-2:] == [dict(card.events(K.IVR_STEP)[-2], step="jump"),
                                           dict(card.events(K.IVR_STEP)[-1], step="menu", detail="main")]


def test_each_play_has_one_play_done_over_a_whole_call(card):
    to_account_menu(card)
    card.prompt_done(0)
    for d in ACCOUNT + "#":
        card.key(0, d)
    card.prompt_done(0)                          # goodbye
    card.run(2.0)
    plays, dones = card.events(K.CALL_PLAY), card.events(K.CALL_PLAY_DONE)
    assert [p["items"] for p in plays] == [d["items"] for d in dones]
    assert [d["how"] for d in dones] == ["finished", "barge_in", "finished", "finished"]   # "1" in main


def test_an_input_a_pause_dtmf_sequence_covered_is_masked_as_its_digits_were(card, monkeypatch):
    """The account menu is not secret, but the caller starts a [[pause_dtmf]] sequence (*9)
    first: the keys after it leave masked in call.digit, and so the stored value in ivr.input."""
    from voiceserver.recording.rules import loads_rules
    rules = loads_rules('[[pause_dtmf]]\nname = "card"\nstart = "*9"\nstop = "#"\nmax_digits = 6\n'
                        'timeout_seconds = 10\n', "r.toml")
    monkeypatch.setattr(card.ctl, "_pause_rules", lambda: rules)
    to_account_menu(card)
    card.prompt_done(0)
    for d in "*9123456":
        card.key(0, d)
    card.run(4.0)
    assert [e["masked"] for e in card.events(K.CALL_DIGIT)][-6:] == [True] * 6
    [inp] = card.events(K.IVR_INPUT)
    assert (inp["value"], inp["masked"]) == (MASK * 8, True)
