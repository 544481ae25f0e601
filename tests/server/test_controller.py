"""The call controller at the event level: board events in, media commands and bus events out.

No hwsim, no engine thread, no event loop: the test plays the card and the
engine. It hands the controller each tick's events, keeps the timers the
controller starts, finishes the prompts it plays when the test says so, and
looks at the typed media commands it returns and the events on its bus.
"""
from __future__ import annotations

import pytest
from controllerkit import CONFIGS, TPS, Card, to_agent

from boarddrv import EventKind
from voiceserver.core import media
from voiceserver.core.channels import State
from voiceserver.core.events import ServerEventKind


def test_an_ivr_caller_who_hangs_up_is_torn_down_and_recorded(card):
    card.ring_in(0)
    assert card.events(ServerEventKind.CALL_START)[0]["chan"] == 0
    assert card.sent(media.Play, chan=0), "the welcome prompt"
    card.board(EventKind.LOOP_DROP, 0)          # the caller hangs up mid-prompt
    card.run(2.0)
    end = card.events(ServerEventKind.CALL_END)
    assert len(end) == 1 and end[0]["chan"] == 0
    assert media.BoardControl(0, "hook", (0, "onhook")) in card.commands
    assert card.sent(media.StopPlay, chan=0)
    assert not card.ctl.legs and len(card.ctl.records) == 1
    rec = card.ctl.records[0]
    assert rec.chan == 0 and rec.answer is not None and rec.end >= rec.answer
    assert rec.ivr_path and card.ctl.totals.calls == 1


def test_queue_to_an_agent_then_hold_and_retrieve_by_flash(card):
    to_agent(card)
    n = len(card.commands)
    card.board(EventKind.FLASH, 5)               # hold: the caller hears music, the agent silence
    hold = card.commands[n:]
    assert media.Unbridge(0, 0) in hold
    assert any(isinstance(c, media.Play) and c.chan == 0 and c.loop for c in hold)
    assert card.events(ServerEventKind.CALL_HOLD)[0]["phone"] == 5
    n = len(card.commands)
    card.board(EventKind.FLASH, 5)               # retrieve: bridged again
    back = card.commands[n:]
    assert media.StopPlay(0, 0) in back and media.Bridge(0, 0, 5) in back
    assert card.events(ServerEventKind.CALL_UNHOLD)[0]["why"] == "flash"


def test_the_agent_hanging_up_ends_the_call_on_both_legs(card):
    to_agent(card)
    card.board(EventKind.HOOK_ON, 5)
    card.run(2.0)
    assert media.BoardControl(0, "hook", (0, "onhook")) in card.commands
    assert media.Unbridge(0, 0) in card.commands or media.Unbridge(0, 5) in card.commands
    ends = card.events(ServerEventKind.CALL_END)
    assert {e["chan"] for e in ends} >= {0}
    rec = [r for r in card.ctl.records if r.chan == 0]
    assert len(rec) == 1 and rec[0].agent == "chen"
    assert all(ch.state in (State.IDLE, State.HANGUP) for ch in card.rt.channels.values())


def test_a_held_caller_whose_agent_hangs_up_rings_the_agent_back(card):
    to_agent(card)
    card.board(EventKind.FLASH, 5)
    card.board(EventKind.HOOK_ON, 5)             # hung up with the caller on hold
    card.run(1.0)
    assert ServerEventKind.CALL_RECALL.value in card.kinds()
    assert card.sent(media.BoardControl, args=(5, True), method="ring")[-1:]   # phone 5 rings again
    card.board(EventKind.HOOK_OFF, 5)
    assert card.commands[-1] == media.Bridge(0, 0, 5) or media.Bridge(0, 0, 5) in card.commands[-4:]


def test_a_transfer_seizes_another_line_and_dials_the_number(card):
    card.ring_in(0)
    card.prompt_done(0)
    card.key(0, "8")                             # 8: transfer to 13800138000 over pstn
    card.run(3.0)                                # dial tone wait, then the digits
    seized = [c for c in card.sent(media.BoardControl, method="hook") if c.args[1] == "offhook"
              and c.args[0] != 0]
    assert seized, "an outbound line was seized"
    line = seized[0].args[0]
    assert card.sent(media.SendDtmf, chan=line)[0].digits == "13800138000"
    assert card.events(ServerEventKind.CALL_DIALING)[0]["number"] == "13800138000"


def test_a_lost_board_ends_its_calls_and_blocks_its_lines(card):
    to_agent(card)
    out = card.ctl.board_lost(card.rt, card.tick, "device gone")
    assert ServerEventKind.BOARD_LOST.value in card.kinds()
    assert all(ch.state is State.BLOCKED for ch in card.rt.channels.values())
    assert not card.ctl.legs and {r.reason for r in card.ctl.records} == {"board lost"}
    assert any(isinstance(c, media.BoardControl) for c in out)
    card.ctl.board_back(card.rt, card.tick + 100)
    assert all(ch.state is not State.BLOCKED for ch in card.rt.channels.values())


def test_a_caller_leaves_a_voicemail_and_hangs_up(prompt_library):
    card = Card(prompt_library, CONFIGS / "server-recording.toml")    # key 9: mailbox "sales"
    card.ring_in(0)
    card.prompt_done(0)                          # welcome
    card.key(0, "9")
    assert card.sent(media.Play, chan=0)[-1].token == ("acd", card.events(ServerEventKind.CALL_START)[0]["call_id"])
    card.prompt_done(0)                          # the mailbox greeting: then the beep and the recording
    start = card.events(ServerEventKind.VOICEMAIL_RECORD_START)
    assert len(start) == 1 and start[0]["mailbox"] == "sales"
    assert start[0]["stored"] is False           # no recording service given: said plainly
    assert media.SetTone(0, 0, "record_warning") in card.commands
    card.run(15.0)                               # the caller says nothing
    stop = card.events(ServerEventKind.VOICEMAIL_RECORD_STOP)
    assert len(stop) == 1 and stop[0]["reason"] == "silence"
    saved = card.events(ServerEventKind.ACD_VOICEMAIL_SAVED)
    assert len(saved) == 1 and saved[0]["reason"] == "silence"
    assert card.events(ServerEventKind.ACD_OUTCOME)[-1]["outcome"] == "voicemail"
    card.prompt_done(0)                          # "message saved": then the line is hung up
    card.run(3.0)
    assert len(card.events(ServerEventKind.CALL_END)) == 1 and not card.ctl.legs
    assert media.BoardControl(0, "hook", (0, "onhook")) in card.commands
    assert card.rt.channels[0].state is State.IDLE and card.ctl.records[-1].chan == 0


def test_a_hang_up_from_outside_ends_the_caller_and_the_agent_leg(card):
    """CallController.hang_up (the API's POST /v1/calls/ID/hangup): the trunk goes on-hook with
    the reason given, the agent's phone leg ends with it; an unknown id is a LookupError."""
    to_agent(card)
    call_id = card.events(ServerEventKind.CALL_START)[0]["call_id"]
    with pytest.raises(LookupError, match="no call 'nope'"):
        card.ctl.hang_up("nope", "x")
    out = card.ctl.hang_up(call_id, "fraud check")
    card.commands += out
    assert media.BoardControl(0, "hook", (0, "onhook")) in out
    assert media.Unbridge(0, 0) in out                 # the agent is no longer bridged to the line
    card.run(2.0)
    end = [e for e in card.events(ServerEventKind.CALL_END) if e["call_id"] == call_id]
    assert end and end[0]["reason"] == "fraud check"
    assert card.rt.channels[5].state is not State.CONNECTED
    assert not any(leg.call.call_id == call_id for leg in card.ctl.legs.values())


def test_typed_digits_do_not_arm_an_ivr_timer_each_and_the_inter_digit_timeout_still_ends_the_input(card):
    """Each digit moves the IVR's deadline later. A timer is armed only for an earlier
    deadline (the first digit's 3 s inter-digit timeout, before the 8 s first-digit one);
    one that fires early is armed again for the deadline then. Six digits over ~3 s arm
    two timers, not six, and the entry still ends 3 s after the last digit, not before."""
    card.ring_in(0)
    card.prompt_done(0)                          # welcome
    card.key(0, "1")                             # the account menu
    card.prompt_done(0)                          # enter_account: the 8 s first-digit timer
    ivr_timers = lambda: [c for c in card.sent(media.StartTimer, chan=0) if c.token[0] == "ivr"]  # noqa: E731
    before = len(ivr_timers())
    for d in "123456":                           # six digits (min_digits), 0.4 s apart, then silence
        card.key(0, d)
        card.run(0.4)
    onset = card.tick - int(0.4 * TPS) - 5      # the last digit's start (Card.key: 5 ticks long)
    assert len(ivr_timers()) - before == 2
    goodbye = lambda: [e for e in card.events(ServerEventKind.CALL_PLAY) if e["items"] == ["goodbye"]]  # noqa: E731
    card.run((onset + 3 * TPS - 1 - card.tick) / TPS)   # a tick before the inter-digit timeout
    assert not goodbye()
    card.run(1 / TPS)
    assert len(goodbye()) == 1


def test_the_events_of_one_tick_share_its_time_and_the_next_tick_reads_the_clock_again(card):
    """A ring that starts a call gives channel.state, call.start and call.ring in one tick:
    the bus reads the clock once for them, and the time goes on between ticks."""
    reads = iter(f"2026-12-03T07:40:{s:02d}.000Z" for s in range(60))
    card.bus._clock = lambda: next(reads)
    card.board(EventKind.RING_START, 0)
    first = [e for e in card.bus.journal if e.tick == card.tick]
    assert {e.kind.value for e in first} >= {"channel.state", "call.start", "call.ring"}
    assert {e.time for e in first} == {"2026-12-03T07:40:00.000Z"}
    card.board(EventKind.RING_STOP, 0)
    card.run(6.5)                                # the ringing stopped for good: the caller gave up
    later = [e for e in card.bus.journal if e.kind is ServerEventKind.CALL_END]
    assert len(later) == 1 and later[0].time > "2026-12-03T07:40:00.000Z"
    assert card.bus.publish(card.tick, ServerEventKind.CALL_END).time > later[0].time   # between ticks: live
