"""The API's call commands at the event level (the controller, no hwsim): mute and unmute, two
calls bridged and separated, originate on a trunk group with each `then`, and how an
originated call that fails is told (its cause). The card and engine are controllerkit's
`Card`; the engines' rows these commands set are checked as the media commands they return.
What each party hears on a real server: test_api_calls_e2e.py."""
from __future__ import annotations

import pytest
from controllerkit import CONFIGS, Card, to_agent

from boarddrv import EventKind
from dsp.tones import ToneEvent
from voiceserver.core import media
from voiceserver.core.apicommands import originate_cause
from voiceserver.core.channels import State
from voiceserver.core.engine import DtmfSent
from voiceserver.core.events import ServerEventKind as K
from voiceserver.core.runtime import Conflict

BY = "network API (acd)"


def call_on(card: Card, chan: int) -> str:
    return card.ctl.legs[(0, chan)].call.call_id


# ---------------------------------------------------------------- mute
def test_mute_the_agent_then_the_caller_in_the_engines_rows_and_unmute_bridges_again(card):
    to_agent(card)                               # caller on 0, agent chen on phone 5
    cid = call_on(card, 0)
    row = card.apply(card.ctl.mute(cid, "agent", True, BY))
    assert row == {"call_id": cid, "party": "agent", "muted": True, "changed": True, "muted_parties": ["agent"]}
    assert card.commands[-1] == media.Mix(0, ((0, ()), (5, (0,))))      # the caller hears nobody
    again = card.apply(card.ctl.mute(cid, "agent", True, BY))
    assert again["changed"] is False
    card.apply(card.ctl.mute(cid, "caller", True, BY))
    assert card.commands[-1] == media.Mix(0, ((0, ()), (5, ())))
    card.apply(card.ctl.mute(cid, "agent", False, BY))
    assert card.commands[-1] == media.Mix(0, ((0, (5,)), (5, ())))      # the agent does not hear the caller
    card.apply(card.ctl.mute(cid, "caller", False, BY))
    assert card.commands[-1] == media.Bridge(0, 0, 5)                     # nobody muted: a plain bridge
    events = card.events(K.CALL_MUTE)
    assert [(e["party"], e["muted"]) for e in events] == [("agent", True), ("caller", True), ("agent", False),
                                                          ("caller", False)]
    assert events[0]["agent"] == "chen" and events[0]["phone"] == 5 and events[0]["why"] == BY
    assert not card.ctl.mutes


def test_a_muted_call_stays_muted_across_hold_and_the_mute_ends_with_the_call(card):
    to_agent(card)
    cid = call_on(card, 0)
    card.apply(card.ctl.mute(cid, "agent", True, BY))
    card.board(EventKind.FLASH, 5)               # hold
    with pytest.raises(Conflict, match="on hold"):
        card.ctl.mute(cid, "caller", True, BY)
    n = len(card.commands)
    card.board(EventKind.FLASH, 5)               # retrieve: the rows again, not a bridge
    back = card.commands[n:]
    assert media.Mix(0, ((0, ()), (5, (0,)))) in back and media.Bridge(0, 0, 5) not in back
    card.board(EventKind.HOOK_ON, 5)
    card.run(2.0)
    assert not card.ctl.mutes and not card.ctl._mute_pairs


def test_mute_needs_an_agent_call_and_a_known_party(card):
    card.ring_in(0)
    cid = call_on(card, 0)
    with pytest.raises(Conflict, match="not connected to an agent"):
        card.ctl.mute(cid, "agent", True, BY)
    with pytest.raises(LookupError, match="no call 'nope'"):
        card.ctl.mute("nope", "agent", True, BY)
    with pytest.raises(LookupError, match="no party 'boss'"):
        card.ctl.mute(cid, "boss", True, BY)


# ---------------------------------------------------------------- bridge two calls
def test_two_callers_in_the_ivr_bridged_hear_each_other_and_each_keeps_its_ivr(card):
    card.ring_in(0)
    card.ring_in(1)
    a, b = call_on(card, 0), call_on(card, 1)
    row = card.apply(card.ctl.bridge_calls(a, b, BY))
    assert row == {"call_id": a, "other": b, "state": "joined"}
    assert card.commands[-1] == media.Mix(0, ((0, (1,)), (1, (0,))))
    joins = card.events(K.CALL_JOIN)
    assert [(e["call_id"], e["other"], e["other_chan"], e["state"]) for e in joins] == [
        (a, b, 1, "joined"), (b, a, 0, "joined")]
    with pytest.raises(Conflict, match="bridged with call"):
        card.ctl.bridge_calls(b, a, BY)
    card.prompt_done(0)                          # a's IVR goes on: the main menu's greeting
    assert card.ctl.legs[(0, 0)].ivr is not None and not card.ctl.legs[(0, 0)].ivr.done
    row = card.apply(card.ctl.unbridge_calls(b, BY))
    assert row == {"call_id": b, "other": a, "state": "separated"}
    assert card.commands[-1] == media.Mix(0, ((1, ()), (0, ())))
    assert [e["state"] for e in card.events(K.CALL_JOIN)][2:] == ["separated", "separated"]
    with pytest.raises(Conflict, match="not bridged"):
        card.ctl.unbridge_calls(a, BY)
    assert {k[1] for k in card.ctl.legs} == {0, 1}            # both calls go on


def test_a_hang_up_separates_bridged_calls_and_the_other_goes_on(card):
    card.ring_in(0)
    card.ring_in(1)
    a, b = call_on(card, 0), call_on(card, 1)
    card.apply(card.ctl.bridge_calls(a, b, BY))
    card.board(EventKind.LOOP_DROP, 0)
    card.run(1.0)
    assert [e["state"] for e in card.events(K.CALL_JOIN)][2:] == ["ended", "ended"]
    assert media.Unbridge(0, 0) in card.commands
    assert (0, 1) in card.ctl.legs and card.rt.channels[1].state is State.CONNECTED
    assert not card.ctl.joins


def test_bridge_refuses_itself_an_agent_call_and_an_unknown_call(card):
    card.ring_in(1)
    to_agent(card)
    with pytest.raises(Conflict, match="with itself"):
        card.ctl.bridge_calls(call_on(card, 1), call_on(card, 1), BY)
    with pytest.raises(Conflict, match="queued or talking to an agent"):
        card.ctl.bridge_calls(call_on(card, 1), call_on(card, 0), BY)
    with pytest.raises(LookupError, match="no call 'nope'"):
        card.ctl.bridge_calls(call_on(card, 1), "nope", BY)


# ---------------------------------------------------------------- originate
def dial_out(card: Card, row: dict) -> int:
    """The originated call's line: dial tone never comes (dialled after 3 s), digits sent."""
    chan = int(row["line"].split(":")[1])
    card.run(3.5)
    card.tick += 1
    card.feed(DtmfSent(chan))
    assert card.rt.channels[chan].state is State.PROCEEDING
    return chan


def answer_out(card: Card, chan: int) -> None:
    card.board(EventKind.BATTERY_REVERSAL, chan)       # answer supervision
    assert card.rt.channels[chan].state is State.CONNECTED


def test_originate_then_ivr_dials_and_the_answered_party_is_in_that_menu(card):
    row = card.apply(card.ctl.originate("pstn", "13900001111", {"ivr": "account"}, BY))
    assert row["trunk"] == "pstn" and row["number"] == "13900001111" and row["then"] == {"ivr": "account"}
    assert row["line"] == "hotline:0"                  # the group's hunt: the first free line
    chan = dial_out(card, row)
    assert card.sent(media.SendDtmf, chan=chan)[0].digits == "13900001111"
    answer_out(card, chan)
    leg = card.ctl.legs[(0, chan)]
    assert leg.call.call_id == row["call_id"] and leg.call.direction == "outbound"
    assert leg.ivr is not None and card.sent(media.Play, chan=chan), "the menu's greeting"
    play = card.events(K.CALL_PLAY)[-1]
    assert play["call_id"] == row["call_id"] and play["items"] == ["enter_account"]
    states = [e["state"] for e in card.events(K.CALL_ORIGINATE)]
    assert states == ["dialing", "answered"]
    card.key(chan, "1")                                 # its digits go to its IVR
    assert card.ctl.legs[(0, chan)].digits == "1"


def test_originate_busy_fails_with_its_cause_in_the_event_and_the_call_record(card):
    row = card.apply(card.ctl.originate("pstn", "13900001111", {}, BY))
    chan = dial_out(card, row)
    card.tick += 1
    card.feed(ToneEvent(chan, "busy", card.tick * 160, None))
    card.run(1.0)
    failed = card.events(K.CALL_ORIGINATE)[-1]
    assert failed["state"] == "failed" and failed["cause"] == "busy" and failed["reason"] == "outbound busy"
    rec = card.ctl.records[-1]
    assert rec.call_id == row["call_id"] and rec.direction == "outbound" and rec.reason == "outbound busy"
    assert rec.answer is None and not card.ctl.originates


def test_originate_no_answer_is_the_trunks_timer(card):
    row = card.apply(card.ctl.originate("pstn", "13900001111", {}, BY))
    dial_out(card, row)
    card.run(61.0)
    failed = card.events(K.CALL_ORIGINATE)[-1]
    assert failed["cause"] == "no-answer" and card.ctl.records[-1].reason == "outbound no answer"


def test_originate_then_agent_rings_its_phone_and_bridges_it_once_answered(card):
    row = card.apply(card.ctl.originate("pstn", "13900001111", {"agent": "chen"}, BY))
    chan = dial_out(card, row)
    answer_out(card, chan)
    assert media.BoardControl(0, "ring", (5, True)) in card.commands
    assert any(isinstance(c, media.Play) and c.chan == chan and c.loop for c in card.commands)   # music
    card.board(EventKind.HOOK_OFF, 5)
    assert media.Bridge(0, chan, 5) in card.commands
    assert [e["state"] for e in card.events(K.CALL_ORIGINATE)] == ["dialing", "answered", "connected"]
    cid = row["call_id"]
    card.apply(card.ctl.mute(cid, "agent", True, BY))        # an agent call like any: mute works
    assert card.commands[-1] == media.Mix(0, ((chan, ()), (5, (chan,))))
    card.board(EventKind.HOOK_ON, 5)                          # the agent hangs up: the call ends
    card.run(2.0)
    assert card.ctl.records[-1].call_id == cid and card.ctl.records[-1].agent == "chen"
    assert card.rt.channels[chan].state in (State.HANGUP, State.IDLE)


def test_originate_then_call_bridges_with_a_caller_and_ends_with_it(card):
    card.ring_in(0)
    caller = call_on(card, 0)
    row = card.apply(card.ctl.originate("pstn", "13900001111", {"call": caller}, BY))
    assert row["line"] == "hotline:1"
    chan = dial_out(card, row)
    answer_out(card, chan)
    assert card.commands[-1] == media.Mix(0, ((0, (chan,)), (chan, (0,))))
    assert [e["state"] for e in card.events(K.CALL_JOIN)] == ["joined", "joined"]
    card.board(EventKind.LOOP_DROP, 0)                        # the caller hangs up
    card.run(1.0)
    out = [r for r in card.ctl.records if r.call_id == row["call_id"]]
    assert out and out[0].reason == f"the call it was bridged with ({caller}) ended"


def test_originate_refuses_unknown_targets_and_409_when_no_line_is_free(card):
    with pytest.raises(LookupError, match="no trunk group 'nope'"):
        card.ctl.originate("nope", "1", {}, BY)
    with pytest.raises(LookupError, match="no menu 'x'"):
        card.ctl.originate("pstn", "1", {"ivr": "x"}, BY)
    with pytest.raises(LookupError, match="no supervisor 'ghost'"):
        card.ctl.originate("pstn", "1", {"agent": "ghost"}, BY)
    with pytest.raises(LookupError, match="no call 'nope'"):
        card.ctl.originate("pstn", "1", {"call": "nope"}, BY)
    lines = [card.apply(card.ctl.originate("pstn", f"1{n}", {}, BY))["line"] for n in range(4)]
    assert lines == [f"hotline:{n}" for n in range(4)]
    with pytest.raises(Conflict, match="no free line in trunk group pstn"):
        card.ctl.originate("pstn", "15", {}, BY)


@pytest.mark.parametrize("reason, cause", [
    ("outbound busy", "busy"), ("outbound no answer", "no-answer"), ("outbound congestion", "congestion"),
    ("outbound unallocated number (B-5)", "unallocated-number"), ("glare: the far end seized the line", "glare"),
    ("blocked: LOS", "blocked"), ("hung up by the API", "cancelled"), ("", "failed")])
def test_originate_cause_of_each_end_reason(reason, cause):
    assert originate_cause(reason) == cause


# ---------------------------------------------------------------- answer = "api"
def api_answer_card(prompt_library, tmp_path, fallback: float = 30.0) -> Card:
    """server-acd.toml with line 0 answered by the API ([channels] answer_api)."""
    text = (CONFIGS / "server-acd.toml").read_text().replace(
        'agents = "hotline:4-7"\n',
        f'agents = "hotline:4-7"\nanswer_api = "hotline:0"\nanswer_api_fallback = {fallback}\n')
    path = tmp_path / "server.toml"
    path.write_text(text)
    return Card(prompt_library, path)


def ring(card: Card, chan: int, times: int) -> None:
    """`times` rings of the exchange's cadence (1 s on, 4 s off)."""
    for _ in range(times):
        card.board(EventKind.RING_START, chan)
        card.run(1.0)
        card.board(EventKind.RING_STOP, chan)
        card.run(4.0)


def test_a_call_on_an_answer_api_line_rings_until_the_api_answers_it(prompt_library, tmp_path):
    card = api_answer_card(prompt_library, tmp_path)
    ring(card, 0, 3)
    assert card.rt.channels[0].state is State.RINGING
    assert media.BoardControl(0, "hook", (0, "offhook")) not in card.commands and not card.sent(media.Play, chan=0)
    waiting, = card.events(K.CALL_API_ANSWER)
    cid = waiting["call_id"]
    assert waiting["state"] == "waiting" and waiting["fallback_ms"] == 30_000
    row = card.apply(card.ctl.answer_call(cid, BY))
    assert row == {"call_id": cid, "answered": True}
    assert media.BoardControl(0, "hook", (0, "offhook")) in card.commands
    assert card.rt.channels[0].state is State.CONNECTED and card.sent(media.Play, chan=0), "its IVR's welcome"
    assert [(e["state"], e.get("why")) for e in card.events(K.CALL_API_ANSWER)] == [
        ("waiting", None), ("answered", BY)]
    with pytest.raises(Conflict, match="not waiting for an answer"):
        card.ctl.answer_call(cid, BY)
    card.run(40.0)                                     # the fallback timer is stale now: nothing more
    assert len(card.events(K.CALL_API_ANSWER)) == 2 and len(card.events(K.CALL_ANSWER)) == 1


def test_not_answered_by_the_api_in_time_the_ivr_answers_and_other_lines_answer_at_once(prompt_library, tmp_path):
    card = api_answer_card(prompt_library, tmp_path, fallback=8.0)
    ring(card, 1, 2)                                   # line 1: as ever
    assert card.rt.channels[1].state is State.CONNECTED
    ring(card, 0, 3)                                   # offered at ring 2 (5 s), 8 s of waiting
    assert card.rt.channels[0].state is State.CONNECTED
    fallback = card.events(K.CALL_API_ANSWER)[-1]
    assert fallback["state"] == "fallback" and card.sent(media.Play, chan=0)
    assert card.events(K.CALL_ANSWER)[-1]["chan"] == 0


def test_a_caller_who_gives_up_while_waiting_is_gone_for_the_api(prompt_library, tmp_path):
    card = api_answer_card(prompt_library, tmp_path)
    ring(card, 0, 2)
    cid = card.events(K.CALL_API_ANSWER)[0]["call_id"]
    card.run(10.0)                                     # no more rings: abandoned while ringing
    assert card.events(K.CALL_END)[-1]["reason"] == "abandoned while ringing"
    assert not card.ctl.awaiting
    with pytest.raises(LookupError, match="no call"):
        card.ctl.answer_call(cid, BY)


def test_answer_api_lines_must_be_inbound(prompt_library, tmp_path):
    from voiceserver.config.server import ConfigError, load_config
    text = (CONFIGS / "server-acd.toml").read_text().replace(
        'agents = "hotline:4-7"\n', 'agents = "hotline:4-7"\nanswer_api = "hotline:5"\n')
    path = tmp_path / "server.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="channels.answer_api.*not an inbound line"):
        load_config(path, library=prompt_library)


# ---------------------------------------------------------------- originate on an E1 R2 group
def test_originate_on_an_e1_r2_group_runs_the_register_signalling_and_then_its_menu(prompt_library):
    from r2farkit import FarIncoming, Harness, r2_accept_script
    h = Harness(prompt_library)
    dnis = "13800138000"
    for chan in range(1, 5):
        h.far[chan] = FarIncoming(chan, r2_accept_script(dnis, "01062345678"), answer=True)
    row, commands = h.ctl.originate("ct", dnis, {"ivr": "ext"}, BY)
    h.apply(commands)
    assert row["line"] == "e1:1"
    h.run(10, until=lambda: len(h.events(K.CALL_ORIGINATE)) >= 2)
    assert [e["state"] for e in h.events(K.CALL_ORIGINATE)] == ["dialing", "answered"]
    assert h.far[1].state == "answered"
    play = h.events(K.CALL_PLAY)[-1]
    assert play["call_id"] == row["call_id"] and play["items"] == ["enter_account"]


def test_an_e1_originate_refused_with_a_b_signal_fails_with_its_cause(prompt_library):
    from r2farkit import FarIncoming, Harness
    h = Harness(prompt_library)
    for chan in range(1, 5):
        h.far[chan] = FarIncoming(chan, [(1, 3), (1, 2)], answer=False)      # A-3, then B-2 busy
    row, commands = h.ctl.originate("ct", "13800138000", {}, BY)
    h.apply(commands)
    h.run(10, until=lambda: len(h.events(K.CALL_ORIGINATE)) >= 2)
    failed = h.events(K.CALL_ORIGINATE)[-1]
    assert (failed["state"], failed["cause"], failed["reason"]) == ("failed", "busy", "outbound busy (B-2)")
    h.run(0.5)
    rec = [r for r in h.ctl.records if r.call_id == row["call_id"]][0]
    assert rec.reason.startswith("outbound busy (B-2)") and rec.direction == "outbound"
