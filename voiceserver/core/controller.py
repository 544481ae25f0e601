"""The call controller: board events in, media commands and bus events out, no I/O.

Like a websockets protocol object, `CallController` does no I/O of its own:
the server (`voiceserver.core.server.VoiceServer`) runs the engines, the
threads and the event loop around it, hands it each tick's events
(`handle`), and carries out the typed media commands it returns
(`voiceserver.core.media`) on the boards' engines. Inside it are the
channel state machines, the IVR calls, hold, transfer, flash, teardown,
voicemail and the call records; it drives the ACD through `AcdLink` and
recording through the `RecordingService` it is given (None: no recording),
and publishes what happens on the event bus it is given (an in-memory
journal; the server attaches the log). No threads, no asyncio, no sockets:
tests drive it event by event (tests/server/test_controller.py). Two parts are
base classes in modules of their own: the network API's call commands
(answer, bridge, originate, play, collect: `voiceserver.core.apicommands`)
and supervision, consultation and mute (`voiceserver.core.supervision`).

Time: the control plane's tick (`tick`) is the tick being handled; each board
also keeps its own (`BoardRuntime.tick`). `catch_up` brings both to the
engines' ticks for work between ticks (the API, a reload, a stop).
"""
from __future__ import annotations

import datetime as dt
import itertools
import logging
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, NoReturn

from boarddrv import Event, EventKind
from dsp.callerid import CallerIdEvent
from dsp.dtmf import DtmfEvent
from dsp.level import SpeechEvent
from dsp.mix import Segment
from dsp.r2mf import R2MfEvent
from dsp.tones import ToneEvent
from voiceserver.acd.link import AgentConflict
from voiceserver.config.server import ServerConfig
from voiceserver.core import channels as chanmod
from voiceserver.core.apicommands import ApiCommands, ApiPrompt, Join, Originate, item_name
from voiceserver.core.calltotals import CallTotals
from voiceserver.core.channels import Call, Channel, FxoTrunk, FxsPhone, State
from voiceserver.core.e1 import E1R2Trunk, MfListen, MfSend, SetCas
from voiceserver.core.engine import DtmfSent, PlayDone, Timer
from voiceserver.core.events import EventBus, ServerEventKind
from voiceserver.core.masking import MASK, SecretKeys, masked, pause_menus
from voiceserver.core.media import MediaCommand, MediaOutbox
from voiceserver.core.runtime import RATE, BoardRuntime, CallRecord, Conflict, Key, Leg
from voiceserver.core.supervision import Consult, Supervising, Supervision
from voiceserver.ivr import flows as ivrmod
from voiceserver.ivr import saynumber
from voiceserver.recording.rules import RecordingRules

log = logging.getLogger("voiceserver")

ALARM_NAMES = {1: "LOS", 2: "LOF", 4: "AIS", 8: "RAI"}
RECENT_RECORDS = 1000   # finished calls kept in memory (records); all of them: the call database


# Channel timers that notice the far end left (the ringing stopped: the caller gave up; an R2 line
# signal held long enough: cleared back or forward): a call they end was ended by that side.
FAR_END_TIMERS = (("ring_gone",), ("persistence",))
# The line states in which caller ID can come (the FSK demodulator runs only then).
CALLERID_STATES = frozenset({State.IDLE.value, State.RINGING.value})


class CallController(ApiCommands, Supervising):
    def __init__(self, cfg: ServerConfig, boards: list[BoardRuntime], bus: EventBus,
                 segment: Callable[[str, str], Segment], segments: Mapping[tuple[str, str], Segment],
                 *, recording: Any = None, recent_records: int = RECENT_RECORDS) -> None:
        self.cfg = cfg                     # the server swaps it on a reload: new calls take the new one
        self.boards = boards               # shared with the server, which opens and reopens them
        self.bus = bus
        self.segment = segment             # a prompt's audio in the engines' bank
        self.segments = segments
        self.recording = recording         # RecordingService, or None
        self.acd: Any = None               # AcdLink, once the server has built it on this controller
        self.media = MediaOutbox()
        self.legs: dict[Key, Leg] = {}
        self.supervisions: dict[Key, Supervision] = {}   # by the supervisor's phone
        self.consults: dict[Key, Consult] = {}           # by the consulted phone
        self.mutes: dict[str, set[str]] = {}             # call id -> its muted parties (caller, agent)
        self.joins: dict[Key, Join] = {}                 # two calls bridged (the API's bridge), both ways
        self.originates: dict[Key, Originate] = {}       # outbound calls of the API, by their trunk
        self.originate_rings: dict[Key, Key] = {}        # an agent's phone rung for one -> its trunk
        self.awaiting: dict[Key, ivrmod.IvrCall] = {}    # answer = "api": ringing calls and their IVR
        self.api_prompts: dict[Key, ApiPrompt] = {}      # calls under the API's control: its play/collect
        self._api_play_ids = itertools.count(1 << 30)    # API plays' tokens (the IVR's count from 1 per call)
        self._mute_pairs: dict[str, tuple[Key, Key]] = {}   # call id -> the (caller, agent) its mutes are of
        # A digit's call.digit waits for the tone's end (its duration): the digit as shown, by channel
        self._digits_on: dict[Key, tuple[str, str, bool, int]] = {}   # (call id, shown, masked, onset tick)
        self._playing: dict[Key, tuple[int, list[str]]] = {}   # an IVR prompt list playing: (its id, items)
        self._stop_how = "stopped"         # call.play_done's `how` for an IVR StopPlay (barge_in: a digit's)
        # finished calls: the most recent in memory, sums of all (every one: the call database)
        self.records: deque[CallRecord] = deque(maxlen=recent_records)
        self.totals = CallTotals()
        self.tick = 0
        self.stopping = False              # the server is stopping: events are no longer acted on
        self._handlers: dict[type, Callable[[BoardRuntime, int, Any], int | None]] = {
            Event: self._board_event, Timer: self._timer, DtmfEvent: self._dtmf, ToneEvent: self._tone,
            SpeechEvent: self._speech, CallerIdEvent: self._callerid, DtmfSent: self._dtmf_sent,
            PlayDone: self._play_done, R2MfEvent: self._r2mf}
        self._ivr_handlers: dict[type, Callable[..., None]] = {
            ivrmod.Play: self._ivr_play, ivrmod.StopPlay: self._ivr_stop_play, ivrmod.Log: self._ivr_log,
            ivrmod.Hangup: self._ivr_hangup, ivrmod.Queue: self._ivr_queue, ivrmod.Voicemail: self._ivr_voicemail,
            ivrmod.Transfer: self._transfer, ivrmod.Input: self._ivr_input}

    def catch_up(self, ticks: Mapping[int, int]) -> None:
        """The engines' ticks now (board index -> tick), for work between ticks: on an idle
        line the last handled tick is seconds old. The control plane's tick follows the
        first board's, as before any board had its own clock."""
        for index, t in ticks.items():
            rt = self.boards[index]
            rt.tick = max(rt.tick, t)
        if 0 in ticks:
            self.tick = max(self.tick, ticks[0])

    def board_lost(self, rt: BoardRuntime, tick: int, error: str) -> list[MediaCommand]:
        """A board is gone: its calls end ("board lost") and its lines block. The others go on."""
        self.bus.publish(tick, ServerEventKind.BOARD_LOST, board=rt.name, error=error, alarm=True,
                         calls=sum(1 for k in self.legs if k[0] == rt.index))
        self._end_calls("board lost", rt, "network")
        for ch in rt.channels.values():
            ch.block(tick, "board lost")
            self._ended_by(ch, "network")
            self.carry_out(rt, tick, ch)
        if self.acd is not None:     # its engine may have held the ACD's timer
            self.acd.rearm(tick)
        return self.media.take()

    def board_back(self, rt: BoardRuntime, tick: int) -> list[MediaCommand]:
        """A lost board is open again: its lines are unblocked."""
        rt.tick = max(rt.tick, tick)
        for ch in rt.channels.values():
            ch.unblock(tick)
            self.carry_out(rt, tick, ch)
        if self.acd is not None:     # the ACD's timer goes to the first board that is up
            self.acd.rearm(tick)
        return self.media.take()

    def agent_control(self, agent: str, action: str, by: str,
                      reason: str | None = None) -> tuple[dict[str, Any], list[MediaCommand]]:
        """Log an agent in/out or set it ready/not ready between ticks (call `catch_up` first)."""
        row = self.acd.agent_control(self.tick, agent, action, by, reason)
        for r in self.boards:   # rings, bridges and tones the change caused
            self.settle(r, self.tick, set(r.channels))
        return row, self.media.take()

    def queue_member(self, agent: str, queue: str, join: bool, by: str, tier: int = 1,
                     penalty: int = 0) -> tuple[dict[str, Any], list[MediaCommand]]:
        """An agent joins (at `tier`, with `penalty`) or leaves a queue between ticks (call
        `catch_up` first); a caller waiting may ring the agent that joined at once."""
        row = self.acd.queue_member(self.tick, agent, queue, join, by, tier, penalty)
        for r in self.boards:   # the rings it caused
            self.settle(r, self.tick, set(r.channels))
        return row, self.media.take()

    def now_ms(self, rt: BoardRuntime) -> int:
        return rt.ms_at(self.tick)

    def wallclock(self, rt: BoardRuntime) -> dt.datetime:
        return rt.clock_start + dt.timedelta(milliseconds=self.now_ms(rt))

    def time_at(self, rt: BoardRuntime, tick: int) -> dt.datetime:
        """The date and time of `tick` on board `rt` (call records, file names, rules)."""
        return rt.clock_start + dt.timedelta(milliseconds=tick * rt.ms_per_tick)

    # -- events from the engine ---------------------------------------------
    def handle(self, index: int, tick: int, events: list[Any]) -> list[MediaCommand]:
        rt = self.boards[index]
        if self.stopping:   # the calls were ended: nothing more is acted on
            events = []
        self.tick = max(self.tick, tick) if self.stopping else tick
        rt.tick = max(rt.tick, tick)
        touched: set[int] = set()
        self.bus.hold_time()
        try:
            for ev in events:
                chan = self._dispatch(rt, tick, ev)
                if chan is not None:
                    touched.add(chan)
            self.settle(rt, tick, touched)
        finally:
            self.bus.release_time()
        return self.media.take()

    def _dispatch(self, rt: BoardRuntime, tick: int, ev: Any) -> int | None:
        """One engine event to its handler, by type (a table, not a chain of isinstance):
        the channel it touched, whose actions are then carried out, or None."""
        handler = self._handlers.get(type(ev))
        if handler is None:
            handler = self._handler_for(type(ev))
        chan = handler(rt, tick, ev)
        if chan is not None:
            ch = rt.channels.get(chan)
            if ch is not None and ch.outbox:   # a call this event ended: who ended it
                if ev.__class__ is not Timer or (isinstance(ev.token, tuple) and ev.token[1:] in FAR_END_TIMERS):
                    self._ended_by(ch, self._far_side(rt, ch))
                else:
                    self._ended_by(ch, "server")     # a timeout of the server's (no answer, alarms)
        return chan

    def _far_side(self, rt: BoardRuntime, ch: Channel) -> str:
        """Who is at the other end of `ch`: an agent's (or supervisor's) phone, else the trunk's
        caller, or the far end of an outbound call."""
        if isinstance(ch, FxsPhone):
            return "agent"
        leg = self.legs.get((rt.index, ch.chan))
        return "far_end" if leg is not None and leg.call.direction == "outbound" else "caller"

    @staticmethod
    def _ended_by(ch: Channel, side: str) -> None:
        """Say who started the teardown of a call `ch` ended just now (its call.end still in the
        outbox): `side` of call.end, set where the teardown starts; the first to say it wins."""
        for act in ch.outbox:
            if act.__class__ is chanmod.Emit and act.kind == ServerEventKind.CALL_END:
                act.data.setdefault("side", side)

    def _handler_for(self, kind: type) -> Callable[[BoardRuntime, int, Any], int | None]:
        """The handler of a subclass of a known event type (cached), or one that ignores it."""
        for base in kind.__mro__[1:]:
            if base in self._handlers:
                self._handlers[kind] = self._handlers[base]
                return self._handlers[kind]
        self._handlers[kind] = self._ignored
        return self._ignored

    @staticmethod
    def _ignored(rt: BoardRuntime, tick: int, ev: Any) -> int | None:
        return None

    def _timer(self, rt: BoardRuntime, tick: int, ev: Timer) -> int | None:
        token = ev.token
        if token == ("acd",):
            self.acd.timer(tick)
            return None
        if token == ("beep_off",):
            self.media.tone(rt.index, ev.chan, None)
            return None
        if isinstance(token, tuple) and token[:1] in (("rec",), ("calls",)):
            if self.recording is not None:   # a recording's pause deadline; the call rows' last_seen
                self.recording.timer(rt, tick, token)
            return None
        ch = rt.channels.get(ev.chan)
        if ch is None:
            return None
        if token and token[0] == "api_answer":
            self._answer_fallback(rt, tick, ch, token[1])
        elif token and token[0] == "ivr":
            leg = self.legs.get((rt.index, ch.chan))
            if leg is not None and leg.ivr is not None and leg.ivr_timer == token[1]:
                leg.ivr_timer = None
                self._ivr_commands(rt, tick, ch, leg, leg.ivr.tick(self.now_ms(rt)))
        elif token and token[0] == "api_collect":
            self._api_timer(rt, tick, ch, token[1])
        else:
            ch.timer(tick, token)
        return ch.chan

    def _r2mf(self, rt: BoardRuntime, tick: int, ev: R2MfEvent) -> int | None:
        ch = rt.channels.get(ev.chan)
        if ch is None:
            return None
        if isinstance(ch, E1R2Trunk):
            ch.mf(tick, ev.signal, ev.end is None)
        return ch.chan

    def _dtmf(self, rt: BoardRuntime, tick: int, ev: DtmfEvent) -> int | None:
        ch = rt.channels.get(ev.chan)
        if ch is None:
            return None
        if ev.end is None:
            self._digit(rt, tick, ch, ev.digit)
            return ch.chan
        on = self._digits_on.pop((rt.index, ch.chan), None)
        if on is not None:
            self._publish_digit(tick, ch.chan, on, (ev.end - ev.start) * 1000 // RATE)
        if self.recording is not None:   # a pause's end waits for the tone to stop
            self.recording.digit_end(rt, tick, ch.chan, self.legs.get((rt.index, ch.chan)))
        return ch.chan

    def _publish_digit(self, tick: int, chan: int, on: tuple[str, str, bool, int], duration_ms: int | None) -> None:
        """call.digit, once per digit at its tone's end (the IVR and the ACD had it at the onset)."""
        call_id, shown, secret, onset = on
        self.bus.publish(tick, ServerEventKind.CALL_DIGIT, chan=chan, call_id=call_id, digit=shown,
                         masked=secret, duration_ms=duration_ms, onset_tick=onset)

    def _tone(self, rt: BoardRuntime, tick: int, ev: ToneEvent) -> int | None:
        ch = rt.channels.get(ev.chan)
        if ch is None:
            return None
        if ev.end is None and isinstance(ch, FxoTrunk):
            ch.tone(tick, ev.tone)
        return ch.chan

    def _speech(self, rt: BoardRuntime, tick: int, ev: SpeechEvent) -> int | None:
        ch = rt.channels.get(ev.chan)
        if ch is None:
            return None
        if ev.end is None and isinstance(ch, FxoTrunk):
            ch.speech(tick)
        leg = self.legs.get((rt.index, ch.chan))
        if leg is not None and self.acd.knows(leg.call.call_id):
            self.acd.speech(tick, leg.call.call_id, ev.end is None)
        return ch.chan

    def _callerid(self, rt: BoardRuntime, tick: int, ev: CallerIdEvent) -> int | None:
        ch = rt.channels.get(ev.chan)
        if ch is None:
            return None
        if isinstance(ch, FxoTrunk) and ev.callerid is not None:
            ch.caller_id(tick, ev.callerid.number, ev.callerid.name, before_ring=ev.standard == "dtmf")
        return ch.chan

    def _dtmf_sent(self, rt: BoardRuntime, tick: int, ev: DtmfSent) -> int | None:
        ch = rt.channels.get(ev.chan)
        if ch is None:
            return None
        if isinstance(ch, FxoTrunk):
            ch.dtmf_sent(tick)
        return ch.chan

    def _play_done(self, rt: BoardRuntime, tick: int, ev: PlayDone) -> int | None:
        ch = rt.channels.get(ev.chan)
        if ch is None:
            return None
        if isinstance(ev.token, tuple):
            if ev.token[0] == "acd":
                self.acd.play_done(tick, ev.token[1])
            return ch.chan
        key = (rt.index, ch.chan)
        if self._playing.get(key, (None,))[0] == ev.token:
            self._play_done_event(tick, ch.chan, self.legs[key].call.call_id if key in self.legs else None,
                                  key, "finished")
        leg = self.legs.get(key)
        if leg is not None and leg.ivr is not None and ev.token == leg.play_id:
            leg.play_id = None
            self._ivr_commands(rt, tick, ch, leg, leg.ivr.prompt_done(ev.token, self.now_ms(rt)))
        if key in self.api_prompts:
            self._api_prompt_done(rt, tick, ch, ev.token)
        return ch.chan

    def _board_event(self, rt: BoardRuntime, tick: int, ev: Event) -> int | None:
        kind = ev.kind
        if kind in (EventKind.ALARM_SET, EventKind.ALARM_CLEAR):
            name = ALARM_NAMES.get(ev.value, str(ev.value))
            self.bus.publish(tick, ServerEventKind.SPAN_ALARM, board=rt.name, span=ev.span, alarm=name,
                             set=kind is EventKind.ALARM_SET)
            bits = rt.span_alarms.get(ev.span, 0)
            rt.span_alarms[ev.span] = bits | ev.value if kind is EventKind.ALARM_SET else bits & ~ev.value
            for chan in rt.span_chans.get(ev.span, ()):
                ch = rt.channels.get(chan)
                if ch is None:
                    continue
                if kind is EventKind.ALARM_SET:
                    ch.block(tick, name)          # its call ends "blocked: NAME" (record, row)
                    self._ended_by(ch, "network")
                    self.settle(rt, tick, {ch.chan})
                    self._leg_gone(rt, tick, ch, f"blocked: {name}", "network")   # a leg without a call of its own
                elif not rt.span_alarms[ev.span]:
                    ch.unblock(tick)
                self.carry_out(rt, tick, ch)
            return None
        if kind is EventKind.BOARD_LOST:   # the engine stops next: _board_lost says it
            return None
        if kind is EventKind.EVENTS_LOST:
            self.bus.publish(tick, ServerEventKind.BOARD_EVENTS_LOST, board=rt.name, count=ev.value)
            return None
        ch = rt.channels.get(ev.chan)
        if ch is None:
            return None
        if isinstance(ch, E1R2Trunk):
            if kind is EventKind.CAS:
                ch.cas(tick, ev.value)
        elif isinstance(ch, FxoTrunk):
            if kind is EventKind.RING_START:
                ch.ring_start(tick)
            elif kind is EventKind.RING_STOP:
                ch.ring_stop(tick)
            elif kind is EventKind.LOOP_DROP:
                ch.loop_drop(tick)
            elif kind is EventKind.BATTERY_REVERSAL:
                ch.battery_reversal(tick)
        elif isinstance(ch, FxsPhone):
            if kind is EventKind.HOOK_OFF:
                ch.hook_off(tick)
            elif kind is EventKind.HOOK_ON:
                ch.hook_on(tick)
            elif kind is EventKind.FLASH:
                ch.flash(tick)
        return ch.chan

    def _digit(self, rt: BoardRuntime, tick: int, ch: Channel, digit: str) -> None:
        leg = self.legs.get((rt.index, ch.chan))
        if leg is not None:
            secret = self._secret_key(rt, leg, digit)
            shown = MASK if secret else digit       # the cleartext goes to the IVR/ACD only
            leg.digits += shown
            key = (rt.index, ch.chan)
            before = self._digits_on.get(key)
            if before is not None:           # its end never came (events lost): no duration
                self._publish_digit(tick, ch.chan, before, None)
            self._digits_on[key] = (leg.call.call_id, shown, secret, tick)
            if self.recording is not None:   # [[pause_dtmf]] key sequences
                self.recording.digit(rt, tick, ch.chan, leg, digit, secret=secret)
            if leg.ivr is not None and not leg.ivr.done:
                self._stop_how = "barge_in"      # a prompt this digit stops was barged in on
                try:
                    self._ivr_commands(rt, tick, ch, leg, leg.ivr.digit(digit, self.now_ms(rt)))
                finally:
                    self._stop_how = "stopped"
            elif key in self.api_prompts:
                self._api_digit(rt, tick, ch, digit)
            elif self.acd.knows(leg.call.call_id):
                self.acd.digit(tick, leg.call.call_id, digit)
        if isinstance(ch, FxsPhone):
            ch.digit(tick, digit)
            action = self.acd.features.get(ch.dialed) if ch.state is State.DIALING else None
            if action is not None:
                self._feature(rt, tick, ch, action)

    def _pause_rules(self) -> RecordingRules | None:
        """The recording rules in force (None: none): their pauses make input secret."""
        return self.recording.rules if self.recording is not None else None

    def _secret_key(self, rt: BoardRuntime, leg: Leg, digit: str) -> bool:
        """Must this key leave the server masked? (voiceserver.core.masking says when.)

        The call's SecretKeys live in ``call.data``: the caller's and the
        agent's legs share the call, and a [[pause_dtmf]] spans both sides.
        """
        keys = leg.call.data.get("secret_keys")
        if keys is None:
            keys = leg.call.data["secret_keys"] = SecretKeys(self._pause_rules())
        ivr_secret = leg.ivr is not None and leg.ivr.secret_input
        if self.api_prompts:
            api = next((p for k, p in self.api_prompts.items() if self.legs.get(k) is leg), None)
            ivr_secret = ivr_secret or (api is not None and api.secret and api.collector is not None)
        return keys.key(digit, self.now_ms(rt), ivr_secret=ivr_secret)

    def _feature(self, rt: BoardRuntime, tick: int, ch: FxsPhone, action: str) -> None:
        """A feature code dialled on an agent's phone: the agent's state changes at once."""
        code = ch.dialed
        agent = self.acd.agent_at((rt.index, ch.chan))
        ok = agent is not None
        if agent is not None:
            try:
                self.acd.agent_control(tick, agent, action, by=f"phone {rt.name}:{ch.chan} ({code})")
            except LookupError:
                ok = False
            except AgentConflict as exc:   # ready/not ready while logged out
                ok = False
                log.info("feature code %s on %s:%d refused: %s", code, rt.name, ch.chan, exc)
        else:
            self.bus.publish(tick, ServerEventKind.AGENT_STATE_REFUSED, chan=ch.chan, board=rt.name,
                             action=action, why="no agent at this phone")
        ch.feature(tick, code, ok)

    # -- actions of the channel state machines --------------------------------
    def carry_out(self, rt: BoardRuntime, tick: int, ch: Channel) -> set[int]:
        """Do what `ch`'s state machine asked for; the channels that touched (to do theirs).
        Called some fifty times a call, mostly with nothing to do."""
        more: set[int] = set()
        if not ch.outbox:
            return more
        for act in ch.take():
            match act:     # the class patterns are tried in order: the commonest (Emit) first
                case chanmod.Emit(kind, data):
                    if kind == ServerEventKind.CALL_END:
                        self._call_ending(rt, tick, ch, data)
                    self.bus.publish(tick, kind, chan=ch.chan, board=rt.name, **data)
                    more |= self._on_channel_event(rt, tick, ch, kind, data)
                case chanmod.Timer(when, token):
                    self.media.call_at(rt.index, when, ch.chan, token)
                case chanmod.Hook(state):
                    self.media.board_call(rt.index, "hook", ch.chan, state)
                case chanmod.Ring(on):
                    self.media.board_call(rt.index, "ring", ch.chan, bool(on))
                case chanmod.Tone(name):
                    self.media.tone(rt.index, ch.chan, name)
                case chanmod.SendDtmf(digits):
                    self.media.send_dtmf(rt.index, ch.chan, digits)
                case chanmod.StopPlay():
                    self.media.stop_play(rt.index, ch.chan)
                case SetCas(abcd):
                    self.media.board_call(rt.index, "set_cas", ch.chan, abcd)
                case MfListen(forward):
                    self.media.mf_listen(rt.index, ch.chan, forward)
                case MfSend(signal, forward):
                    self.media.mf_send(rt.index, ch.chan, signal, forward)
        return more

    def _call_ending(self, rt: BoardRuntime, tick: int, ch: Channel, data: dict[str, Any]) -> None:
        """What a call's end closes, said before its call.end: a digit whose tone was still on
        (no duration), the IVR prompts playing (how: hangup). A teardown no one claimed
        (`_ended_by`) was the server's: the ACD's and the controller's own hang-ups."""
        data.setdefault("side", "server")
        key = (rt.index, ch.chan)
        on = self._digits_on.pop(key, None)
        if on is not None:
            self._publish_digit(tick, ch.chan, on, None)
        if key in self._playing:
            self._play_done_event(tick, ch.chan, data.get("call_id"), key, "hangup")
        if key in self.api_prompts:
            self._api_call_ending(tick, key)

    def _play_done_event(self, tick: int, chan: int, call_id: str | None, key: Key, how: str) -> None:
        """call.play_done for the IVR prompt list playing on `key`: how it ended."""
        _, items = self._playing.pop(key)
        self.bus.publish(tick, ServerEventKind.CALL_PLAY_DONE, chan=chan, call_id=call_id, items=items, how=how)

    def _on_channel_event(self, rt: BoardRuntime, tick: int, ch: Channel, kind: str,
                          data: dict[str, Any]) -> set[int]:
        key = (rt.index, ch.chan)
        if kind == ServerEventKind.CHANNEL_STATE:    # the commonest: none of the call cases below
            if ch.chan in rt.callerid_chans:
                # The FSK demodulator is the engine's dearest detector: run it only
                # where caller ID can come (idle: DTMF before the first ring; ringing).
                listen = data.get("new") in CALLERID_STATES
                if listen != (data.get("old") in CALLERID_STATES):
                    self.media.arm_callerid(rt.index, ch.chan, listen)
            self.acd.line_state(tick, key, ch.state)
            return set()
        if kind == ServerEventKind.CALL_START and isinstance(ch, FxoTrunk) and ch.call is not None:
            self.legs.setdefault(key, Leg(ch.call))  # every trunk call gets a record
            if self.recording is not None:   # its row in SQLite, from the start
                self.recording.call_started(rt, tick, ch.chan, ch.call)
            return set()
        if kind == ServerEventKind.CALL_OFFER and isinstance(ch, FxoTrunk) and ch.call is not None:
            call = ch.call
            leg = self.legs.setdefault(key, Leg(call))
            if self.recording is not None:   # a call that rang across a crash: the same caller?
                self.recording.offered(rt, tick, ch.chan, call)
            if leg.ivr is not None or "rejected" in leg.path or key in self.awaiting:
                return set()  # offered again at the next ring: already decided
            ivr = self.cfg.new_call(call.caller, call.called or "", self.wallclock(rt),
                                    flow=call.data.get("flow"))   # E1 R2: the flow of its DNIS
            if ivr is None:
                leg.path.append("rejected")
                leg.rejected = self._rejected_by(call.caller)
                self.bus.publish(tick, ServerEventKind.CALL_REJECTED, chan=ch.chan, call_id=call.call_id,
                                 caller=call.caller, reason="blacklist")
                return set()
            if (rt.name, ch.chan) in self.cfg.channels.answer_api:   # answer = "api": it rings on
                return self._await_answer(rt, tick, ch, leg, ivr)
            return self._answer_offered(rt, tick, ch, leg, ivr)
        if kind == ServerEventKind.CALL_FLASH and isinstance(ch, FxsPhone):
            return self._flash(rt, tick, ch)
        if kind == ServerEventKind.CALL_ANSWER and isinstance(ch, FxsPhone) and data.get("recall"):
            return self._hold(rt, tick, ch, False, "recall answered")
        if kind == ServerEventKind.CALL_RECALL_TIMEOUT and isinstance(ch, FxsPhone):
            phone_leg = self.legs.get(key)
            if phone_leg is not None and phone_leg.partner is not None:
                caller = rt.channels[phone_leg.partner[1]]
                caller.hangup(tick, "held call not picked up after hold recall")
                return {caller.chan}
            return set()
        if kind == ServerEventKind.CALL_ANSWER and key in self.supervisions:
            return self._supervisor_joined(rt, tick, self.supervisions[key])
        if kind == ServerEventKind.CALL_ANSWER and key in self.consults:
            return self._consult_joined(rt, tick, key, self.consults[key])
        if kind == ServerEventKind.CALL_ANSWER and (key in self.originates or key in self.originate_rings):
            return self._originate_answered(rt, tick, key)
        if kind == ServerEventKind.CALL_ANSWER and self.acd.answered(tick, key):
            return set()
        if kind == ServerEventKind.CALL_ANSWER and isinstance(ch, FxoTrunk) and key in self.legs:
            return self._transfer_answered(rt, tick, ch)
        if kind == ServerEventKind.CALL_END:
            return self._leg_gone(rt, tick, ch, data.get("reason", ""), data.get("side", "server"))
        return set()

    # -- IVR commands ---------------------------------------------------------
    def _ivr_commands(self, rt: BoardRuntime, tick: int, ch: Channel, leg: Leg,
                      cmds: list[ivrmod.Command]) -> None:
        if self.recording is not None and cmds:   # pauses, IVR branches and queues for the rules
            self.recording.ivr_commands(rt, tick, leg, cmds)
        for cmd in cmds:
            run = self._ivr_handlers.get(type(cmd))
            if run is not None:    # Collect and ClearDigits need nothing here: the interpreter
                run(rt, tick, ch, leg, cmd)  # runs its own collector and type-ahead buffer
        # One IVR timer per leg, armed again only for an earlier deadline. Each digit moves
        # the inter-digit timeout later: the timer armed for the first one stays, and when it
        # fires early (an IVR tick before its deadline changes nothing) it is armed again
        # for the deadline then. A timer a new one replaced is ignored when it fires.
        deadline = leg.ivr.deadline if leg.ivr is not None else None
        if deadline is not None:
            at = max(rt.tick_at(deadline), tick + 1)
            if leg.ivr_timer is None or at < leg.ivr_timer:
                leg.ivr_timer = at
                self.media.call_at(rt.index, at, ch.chan, ("ivr", at))
        if ch.outbox:
            self.carry_out(rt, tick, ch)
        if self.recording is not None and cmds:   # the path and queue change only by a command
            self.recording.progress(rt, tick, leg)

    def _ivr_play(self, rt: BoardRuntime, tick: int, ch: Channel, leg: Leg, cmd: ivrmod.Play) -> None:
        segs = self._play_segments(cmd)
        leg.play_id = cmd.id
        leg.prompts += len(cmd.items)
        self.media.play(rt.index, ch.chan, segs, token=cmd.id)
        items = [item_name(i) for i in cmd.items]
        key = (rt.index, ch.chan)
        if key in self._playing:             # a new list in place of one still playing
            self._play_done_event(tick, ch.chan, leg.call.call_id, key, "stopped")
        self._playing[key] = (cmd.id, items)
        self.bus.publish(tick, ServerEventKind.CALL_PLAY, chan=ch.chan, call_id=leg.call.call_id,
                         items=items, lang=cmd.lang)

    def _ivr_stop_play(self, rt: BoardRuntime, tick: int, ch: Channel, leg: Leg, cmd: ivrmod.StopPlay) -> None:
        if leg.play_id == cmd.id:
            leg.play_id = None
            self.media.stop_play(rt.index, ch.chan)
            key = (rt.index, ch.chan)
            if self._playing.get(key, (None,))[0] == cmd.id:
                self._play_done_event(tick, ch.chan, leg.call.call_id, key, self._stop_how)

    def _ivr_log(self, rt: BoardRuntime, tick: int, ch: Channel, leg: Leg, cmd: ivrmod.Log) -> None:
        leg.path.append(f"{cmd.step.what}:{cmd.step.detail}" if cmd.step.detail else cmd.step.what)
        if cmd.step.what != "input":         # an input's step is its ivr.input (how it ended too)
            self.bus.publish(tick, ServerEventKind.IVR_STEP, chan=ch.chan, call_id=leg.call.call_id,
                             step=cmd.step.what, detail=cmd.step.detail)

    def _ivr_input(self, rt: BoardRuntime, tick: int, ch: Channel, leg: Leg, cmd: ivrmod.Input) -> None:
        """ivr.input: masked as the input's call.digit events were (a secret or pause menu, said by
        the IVR; or a [[pause_dtmf]] sequence that covered one of its keys)."""
        value, secret = cmd.value, cmd.masked
        if not secret and MASK in leg.digits[-len(value) - 1:]:
            value, secret = masked(value), True
        self.bus.publish(tick, ServerEventKind.IVR_INPUT, chan=ch.chan, call_id=leg.call.call_id,
                         menu=cmd.menu, store=cmd.store, value=value, masked=secret, reason=cmd.reason)

    def _ivr_hangup(self, rt: BoardRuntime, tick: int, ch: Channel, leg: Leg, cmd: ivrmod.Hangup) -> None:
        ch.hangup(tick, f"ivr: {cmd.reason}")

    def _ivr_queue(self, rt: BoardRuntime, tick: int, ch: Channel, leg: Leg, cmd: ivrmod.Queue) -> None:
        self.bus.publish(tick, ServerEventKind.CALL_QUEUE, chan=ch.chan, call_id=leg.call.call_id, queue=cmd.name)
        self.acd.queue(rt, tick, ch.chan, leg, cmd.name, self._lang(leg))

    def _ivr_voicemail(self, rt: BoardRuntime, tick: int, ch: Channel, leg: Leg, cmd: ivrmod.Voicemail) -> None:
        self.acd.voicemail(rt, tick, ch.chan, leg, cmd.mailbox, self._lang(leg))

    def _play_segments(self, cmd: ivrmod.Play) -> list[Segment]:
        segs: list[Segment] = []
        for item in cmd.items:
            lang = item.lang or cmd.lang
            if isinstance(item, ivrmod.Prompt):
                segs.append(self.segment(item.name, lang))
            else:
                fn = getattr(saynumber, f"say_{item.kind}")
                segs += [self.segment(n, lang) for n in fn(item.value, lang)]
        return segs

    # -- helpers for the ACD link ------------------------------------------
    def _lang(self, leg: Leg) -> str:
        return leg.ivr.lang if leg.ivr is not None else self.cfg.prompts.default_lang

    def new_leg(self, call: Call, partner: tuple[int, int] | None = None) -> Leg:
        return Leg(call, partner=partner)

    def settle(self, rt: BoardRuntime, tick: int, chans: set[int]) -> None:
        """Carry out the outboxes of `chans` and of every channel that touches (carrying out
        actions can touch other channels: an agent rung for a caller) until all are empty."""
        touched = set(chans)
        channels = rt.channels
        while touched:
            ch = channels.get(touched.pop())
            if ch is not None and ch.outbox:
                touched |= self.carry_out(rt, tick, ch)

    def moh_segment(self, name: str = "default") -> Segment | None:
        return self.segments.get(("moh", name)) or self.segments.get(("moh", "default"))

    def play_moh(self, rt: BoardRuntime, chan: int, music: str = "default", token: Any = None) -> None:
        """Music on hold to `chan`, looped, 6 dB under the prompts (queue, hold, a transfer ringing)."""
        seg = self.moh_segment(music)
        if seg is not None:
            self.media.play(rt.index, chan, [seg], loop=True, gain_db=-6.0, token=token)

    def connect(self, tick: int, caller: tuple[int, int], line: tuple[int, int], agent: str | None) -> None:
        """Bridge a waiting caller with the agent (or number) that answered."""
        leg = self.legs.get(caller)
        if caller[0] != line[0]:
            self.bus.publish(tick, ServerEventKind.CALL_BRIDGE_FAILED, chan=caller[1],
                             call_id=leg.call.call_id if leg else None,
                             reason="caller and agent are on different boards")
            return
        rt = self.boards[caller[0]]
        self.media.stop_play(rt.index, caller[1])
        self.media.bridge(rt.index, caller[1], line[1])
        if leg is not None:
            leg.partner = line
            leg.agent = agent or f"{rt.name}:{line[1]}"
        if self.recording is not None:   # the agent's line goes on the right of the file
            self.recording.bridged(rt, tick, caller[1], line[1], leg.agent if leg else agent)
        other = self.legs.get(line)
        if other is not None:
            other.partner = caller
        self.bus.publish(tick, ServerEventKind.CALL_BRIDGE, chan=caller[1], call_id=leg.call.call_id if leg else None,
                         agent=agent, line=line[1])

    def voicemail_record(self, tick: int, key: tuple[int, int], call_id: str, mailbox: str,
                         max_ms: int) -> None:
        """Record the caller's message (with [storage]: a mono file in the mailbox's folder)."""
        info: dict[str, Any] = {"stored": False}   # no storage: the event says so plainly
        if self.recording is not None:
            info = self.recording.voicemail_record(self.boards[key[0]], tick, key, call_id,
                                                   mailbox, max_ms)
        self.bus.publish(tick, ServerEventKind.VOICEMAIL_RECORD_START, chan=key[1], call_id=call_id,
                         mailbox=mailbox, max_ms=max_ms, **info)

    def voicemail_stop(self, tick: int, key: tuple[int, int], call_id: str, mailbox: str,
                       reason: str) -> None:
        if self.recording is not None and self.recording.voicemail_stop(
                self.boards[key[0]], tick, key, call_id, mailbox, reason):
            return   # voicemail.record_stop follows once stored (stored, path, message_id)
        self.bus.publish(tick, ServerEventKind.VOICEMAIL_RECORD_STOP, chan=key[1], call_id=call_id,
                         mailbox=mailbox, reason=reason, stored=False)

    # -- hold (hook flash on an agent's phone) ------------------------------
    def _flash(self, rt: BoardRuntime, tick: int, phone: FxsPhone) -> set[int]:
        leg = self.legs.get((rt.index, phone.chan))
        if leg is None or leg.partner is None or phone.state is not State.CONNECTED:
            return set()       # a flash with nobody bridged: nothing to hold
        return self._hold(rt, tick, phone, not phone.on_hold, "flash")

    def _hold(self, rt: BoardRuntime, tick: int, phone: FxsPhone, on: bool, why: str) -> set[int]:
        """Put the caller bridged with `phone` on hold (music) or take it off (bridged again).

        While held the agent hears silence (no consultation dialling yet); the
        recording keeps going: the caller left, the music on the right."""
        leg = self.legs.get((rt.index, phone.chan))
        if leg is None or leg.partner is None:
            return set()
        cchan = leg.partner[1]
        caller_leg = self.legs.get(leg.partner)
        call_id = leg.call.call_id
        phone.hold(on)
        if on:
            self.media.unbridge(rt.index, cchan)
            self.play_moh(rt, cchan, token=("hold",))
            if self.recording is not None:   # the right side: what the caller hears (music)
                self.recording.leg_gone(rt, tick, phone.chan)
        else:
            self.media.stop_play(rt.index, cchan)
            self._rejoin(rt, call_id, cchan, phone.chan)     # as muted as before the hold
            if self.recording is not None:   # the agent on the right again, same file
                self.recording.bridged(rt, tick, cchan, phone.chan,
                                       caller_leg.agent if caller_leg else None)
        kind = ServerEventKind.CALL_HOLD if on else ServerEventKind.CALL_UNHOLD
        self.bus.publish(tick, kind, chan=cchan, call_id=call_id,
                         phone=phone.chan, agent=caller_leg.agent if caller_leg else None, why=why)
        return {phone.chan}

    def hold_call(self, call_id: str, on: bool, by: str) -> tuple[dict[str, Any], list[MediaCommand]]:
        """Hold (or retrieve) a call's caller from outside a tick (the API), as the agent's
        flash does. LookupError: no such call; Conflict: no agent phone is talking on it."""
        found = False
        for rt in self.boards:
            for chan, ch in rt.channels.items():
                leg = self.legs.get((rt.index, chan))
                if leg is None or leg.call.call_id != call_id:
                    continue
                found = True
                if isinstance(ch, FxsPhone) and leg.partner is not None and ch.state is State.CONNECTED:
                    tick = max(self.tick, rt.tick)
                    changed = ch.on_hold != on
                    if changed:
                        self.settle(rt, tick, self._hold(rt, tick, ch, on, by))
                    return ({"call_id": call_id, "held": ch.on_hold, "changed": changed, "phone": chan},
                            self.media.take())
        if not found:
            raise LookupError(f"no call {call_id!r} in progress")
        raise Conflict(f"call {call_id} has no agent phone talking to the caller: nothing to "
                       f"{'hold' if on else 'retrieve'}")

    def take_from_ivr(self, call_id: str, to: ivrmod.Queue | ivrmod.Transfer,
                      by: str) -> tuple[dict[str, Any], list[MediaCommand]]:
        """Take a caller out of the IVR into a queue, or transfer it blind to a number on a trunk
        group, from outside a tick (the API), as the IVR's queue and transfer actions would.
        LookupError: no such call, queue or trunk group; Conflict: the call is not in the IVR.
        A caller waiting for a route decision (route.request) goes there at once."""
        if self.acd.awaiting_route(call_id):
            return self._route_answered(call_id, to, by)
        outcome = self.acd.route_outcome(call_id)
        if outcome is not None:
            raise Conflict(f"call {call_id} is not in the IVR: its route was decided already ({outcome})")
        acd = self.acd.acd
        if isinstance(to, ivrmod.Queue) and to.name not in acd.queues and to.name not in acd.entries:
            raise LookupError(f"no queue {to.name!r} (queues: {', '.join(sorted(acd.queues))})")
        if isinstance(to, ivrmod.Transfer) and to.trunk not in self.cfg.channels.outbound:
            raise LookupError(f"no trunk group {to.trunk!r} (groups: {', '.join(sorted(self.cfg.channels.outbound))})")
        rt, ch, leg, ivr = self._caller_in_ivr(call_id, "routed")
        tick = max(self.tick, rt.tick)
        if isinstance(to, ivrmod.Queue):
            self.acd.decided[call_id] = None    # decided here: no route.request for it
        self._api_release(rt, tick, (rt.index, ch.chan))   # under the API's control: its play or collect ends
        left = ivr.leave(rt.ms_at(tick), by) if not ivr.done else []
        self._ivr_commands(rt, tick, ch, leg, [*left, to])
        row: dict[str, Any] = ({"call_id": call_id, "queue": to.name} if isinstance(to, ivrmod.Queue)
                               else {"call_id": call_id, "number": to.number, "trunk": to.trunk})
        return row, self.media.take()

    def _route_answered(self, call_id: str, to: ivrmod.Queue | ivrmod.Transfer,
                        by: str) -> tuple[dict[str, Any], list[MediaCommand]]:
        """A client's answer to a route.request: the caller to a queue or a number. A choice
        that cannot be carried out (no such queue or trunk group) sends the caller to the
        queue the IVR named (the fallback) and is a LookupError saying so."""
        link = self.acd
        rt = self.boards[link.routes[call_id].key[0]]
        tick = max(self.tick, rt.tick)
        try:
            if isinstance(to, ivrmod.Queue):
                if to.name not in link.acd.queues and to.name not in link.acd.entries:
                    raise LookupError(f"no queue {to.name!r} (queues: {', '.join(sorted(link.acd.queues))})")
                link.route_to_queue(tick, call_id, to.name, by)
                return {"call_id": call_id, "queue": to.name}, self.media.take()
            if to.trunk not in self.cfg.channels.outbound:
                raise LookupError(f"no trunk group {to.trunk!r} (groups: "
                                  f"{', '.join(sorted(self.cfg.channels.outbound))})")
        except LookupError as exc:
            self._route_failed(tick, call_id, exc)
        key = link.route_elsewhere(tick, call_id, by, number=to.number, trunk=to.trunk)
        ch = rt.channels[key[1]]
        self._transfer(rt, tick, ch, self.legs[key], to)
        self.carry_out(rt, tick, ch)
        return {"call_id": call_id, "number": to.number, "trunk": to.trunk}, self.media.take()

    def _route_failed(self, tick: int, call_id: str, exc: Exception) -> NoReturn:
        """A client's route decision cannot be carried out: the fallback queue, and the same
        error (with where the caller went) for the client."""
        why = str(exc).strip("'\"")
        queue = self.acd.route_fallback(tick, call_id, f"the client's choice failed: {why}")
        raise type(exc)(f"{why}: the caller went to queue {queue} (the fallback)") from None

    def route_to_agent(self, call_id: str, agent: str, queue: str | None,
                       by: str) -> tuple[dict[str, Any], list[MediaCommand]]:
        """Ring one agent for a caller from outside a tick (the API's route {"agent"}). A caller
        in the IVR leaves it for `queue` (default: the first queue the agent is a member of),
        the queue it waits in if the agent does not answer; a caller waiting in a queue stays
        in it; one waiting for a route decision waits in `queue` or the queue the IVR named.
        LookupError: no such call, agent or queue; Conflict: the agent cannot be rung now (not
        logged in, not ready, busy) or the call is not waiting (ringing, connected)."""
        link = self.acd
        if link.awaiting_route(call_id):
            rt = self.boards[link.routes[call_id].key[0]]
            tick = max(self.tick, rt.tick)
            try:
                row = link.offer_agent(tick, call_id, agent, queue, by)
            except (LookupError, Conflict) as exc:
                self._route_failed(tick, call_id, exc)
            return row, self.media.take()
        if link.knows(call_id):
            rt = self.boards[link.callers[call_id][0]]
            return link.offer_agent(max(self.tick, rt.tick), call_id, agent, by=by), self.media.take()
        rt, ch, leg, ivr = self._caller_in_ivr(call_id, "routed")
        link.check_offer(agent)
        home = queue or link.home_queue(agent)
        if home not in link.acd.queues and home not in link.acd.entries:
            raise LookupError(f"no queue {home!r} (queues: {', '.join(sorted(link.acd.queues))})")
        tick = max(self.tick, rt.tick)
        link.decided[call_id] = agent          # the IVR's queue action below rings the agent
        self._api_release(rt, tick, (rt.index, ch.chan))   # under the API's control: its play or collect ends
        left = ivr.leave(rt.ms_at(tick), by) if not ivr.done else []
        self._ivr_commands(rt, tick, ch, leg, [*left, ivrmod.Queue(home)])
        return {"call_id": call_id, "agent": agent, "queue": home}, self.media.take()

    def _caller_in_ivr(self, call_id: str, doing: str) -> tuple[BoardRuntime, FxoTrunk, Leg, ivrmod.IvrCall]:
        """The trunk, leg and IVR of a caller in the IVR now, or under the API's control (its
        play or collect: its IVR is done). LookupError: no such call; Conflict: it has left the
        IVR (queued, with an agent or transferred)."""
        for rt in self.boards:
            for chan, ch in rt.channels.items():
                leg = self.legs.get((rt.index, chan))
                if leg is None or leg.call.call_id != call_id or not isinstance(ch, FxoTrunk):
                    continue
                api = (rt.index, chan) in self.api_prompts
                if (not api and (leg.ivr is None or leg.ivr.done)) or self.acd.knows(call_id):
                    raise Conflict(f"call {call_id} is not in the IVR (queued, with an agent or "
                                   f"transferred): it cannot be {doing} now")
                if api and leg.ivr is None:    # an originated call: no IVR ran, none to leave
                    leg.ivr = ivrmod.IvrCall(self.cfg.ivr, start=ivrmod.HangupAction())
                    leg.ivr.done = True
                assert leg.ivr is not None
                return rt, ch, leg, leg.ivr
        raise LookupError(f"no call {call_id!r} in progress")

    def ivr_jump(self, call_id: str, menu: str | None, action: str | None,
                 by: str) -> tuple[dict[str, Any], list[MediaCommand]]:
        """Send a caller in the IVR to one of its menus (prompts, then digits collected as the
        menu says) or named actions (a play, a queue...) from outside a tick (the API).
        LookupError: no such call, menu or action; Conflict: the call is not in the IVR."""
        ivr = self.cfg.ivr
        if menu is not None and menu not in ivr.menus:
            raise LookupError(f"no menu {menu!r} (menus: {', '.join(sorted(ivr.menus))})")
        if action is not None and action not in ivr.actions:
            raise LookupError(f"no action {action!r} (actions: {', '.join(sorted(ivr.actions))})")
        to: ivrmod.Action = ivrmod.SubmenuAction(menu) if menu is not None else ivrmod.RefAction(str(action))
        rt, ch, leg, call_ivr = self._caller_in_ivr(call_id, "sent to a menu")
        tick = max(self.tick, rt.tick)
        self._api_release(rt, tick, (rt.index, ch.chan))   # under the API's control: its play or collect ends
        if call_ivr.done:   # under the API's control (play, collect): the IVR starts again there
            leg.ivr = call_ivr = ivrmod.IvrCall(self.cfg.ivr, start=to, lang=call_ivr.lang)
            call_ivr.secret_menus |= pause_menus(self._pause_rules())
            cmds = call_ivr.call_started(leg.call.caller or "", leg.call.called or "", rt.ms_at(tick))
        else:
            cmds = call_ivr.jump(to, rt.ms_at(tick), by)
        self._ivr_commands(rt, tick, ch, leg, cmds)
        return {"call_id": call_id, "menu": menu, "action": action}, self.media.take()

    def _transfer(self, rt: BoardRuntime, tick: int, ch: Channel, leg: Leg, cmd: ivrmod.Transfer) -> None:
        # The group's hunt ([queues] trunk_hunt) picks the line; on glare the
        # ACD link retries on another line of the group (voiceserver.acd.link).
        if self.acd.transfer(tick, (rt.index, ch.chan), leg, cmd.number, cmd.trunk):
            self.play_moh(rt, ch.chan)
            return
        self.bus.publish(tick, ServerEventKind.CALL_TRANSFER_FAILED, chan=ch.chan, call_id=leg.call.call_id,
                         trunk=cmd.trunk, reason="no free line in the group")
        ch.hangup(tick, f"transfer failed: no free line in {cmd.trunk}")

    def _transfer_answered(self, rt: BoardRuntime, tick: int, trunk: FxoTrunk) -> set[int]:
        leg = self.legs.get((rt.index, trunk.chan))
        if leg is None or leg.partner is None or "transfer_of" not in leg.call.data:
            return set()   # only the transfer's own outbound leg (not its caller) answers it
        _, cchan = leg.partner
        self.media.stop_play(rt.index, cchan)
        self.media.bridge(rt.index, cchan, trunk.chan)
        if self.recording is not None:   # the callee on the right: the same file goes on
            self.recording.bridged(rt, tick, cchan, trunk.chan, None)
        self.bus.publish(tick, ServerEventKind.CALL_BRIDGE, chan=cchan, call_id=leg.call.call_id, trunk=trunk.chan)
        return set()

    def _leg_gone(self, rt: BoardRuntime, tick: int, ch: Channel, reason: str = "", side: str = "server") -> set[int]:
        """A call ended on `ch`: record it, and end what it was bridged to (`side` ended it, and so
        the legs that end with it)."""
        key = (rt.index, ch.chan)
        leg = self.legs.pop(key, None)
        self.api_prompts.pop(key, None)
        if leg is None:
            return set()
        touched = self._supervision_leg_gone(rt, tick, key, reason) if self.supervisions else set()
        if self.consults:
            touched |= self._consult_leg_gone(rt, tick, key)
        if self.joins or self.originates or self.originate_rings or self.mutes or self.awaiting:
            touched |= self._api_leg_gone(rt, tick, key, leg, reason)
        if leg.ivr is not None and not leg.ivr.done:
            for cmd in leg.ivr.hangup(self.now_ms(rt)):
                if isinstance(cmd, ivrmod.Log):
                    leg.path.append(cmd.step.what)
        self.media.unbridge(rt.index, ch.chan)
        if self.recording is not None:   # was on the right of a recording: the trunk's tx again
            self.recording.leg_gone(rt, tick, ch.chan)
        if isinstance(ch, FxoTrunk):  # agent phone legs belong to the trunk's call
            self._record(rt, ch, leg, reason)
        self.acd.leg_ended(tick, key, reason)
        if leg.partner is not None:
            _, pchan = leg.partner
            other = rt.channels.get(pchan)
            pleg = self.legs.get((rt.index, pchan))
            if pleg is not None:
                pleg.partner = None
            if isinstance(other, FxsPhone):
                if other.state is State.RINGING and other.recalling:
                    # the held caller left while the phone rang back: the agent's
                    # leg ends here (the ACD hears it from the caller's side)
                    self.legs.pop((rt.index, pchan), None)
                    self.acd.rings.pop((rt.index, pchan), None)
                    other.stop_ringing(tick, "held caller hung up")
                    self._ended_by(other, side)
                elif other.state is State.RINGING:
                    self.legs.pop((rt.index, pchan), None)
                    other.stop_ringing(tick, "caller hung up")
                    self._ended_by(other, side)
                else:
                    other.hangup(tick, "caller hung up")
                    self._ended_by(other, side)
                touched.add(pchan)
            elif isinstance(other, FxoTrunk):
                other.hangup(tick, "other party hung up")
                self._ended_by(other, side)
                touched.add(pchan)
        return touched

    def _record(self, rt: BoardRuntime, ch: Channel, leg: Leg, reason: str) -> None:
        call = leg.call

        def at(t: int | None) -> dt.datetime | None:
            return None if t is None else self.time_at(rt, t)
        rec = CallRecord(
            call.call_id, rt.name, ch.chan, call.direction, call.caller, call.called,
            call.data.get("first_ring") or self.time_at(rt, call.start_tick),   # rang before a crash
            at(call.answer_tick), self.time_at(rt, call.end_tick or self.tick),
            leg.rejected or reason or call.end_reason or "", leg.path, leg.digits, leg.prompts,
            leg.agent, at(call.data.get("agent_answer_tick")),
            dnis=call.data.get("dnis"), ani=call.data.get("ani"), category=call.data.get("category"))
        self.records.append(rec)
        self.totals.add(rec)
        if self.recording is not None:   # keep/discard the recording; the call row in SQLite
            self.recording.call_ended(rt, rec, call.end_tick or self.tick)

    def _rejected_by(self, caller: str | None) -> str:
        """The record's reason for a call the blacklist rejected: which entry."""
        entry = self.cfg.blacklist.match(caller)
        if entry is None:   # new_call refused it for another reason
            return "rejected"
        where = f", {entry.where}" if entry.where else ""
        note = f": {entry.note}" if entry.note else ""
        return f"rejected by blacklist: entry {entry.number} ({entry.match.value} match{where}){note}"

    def end_all_calls(self, reason: str, rt: BoardRuntime | None = None) -> list[MediaCommand]:
        """End every call (of one board, or of all) with `reason`: records, rows, hang-ups.

        Trunks first: ending a trunk's call ends the agent phone legs bridged or ringing for it.
        Each board's calls end at its own tick (`BoardRuntime.tick`: see `catch_up`).
        """
        self._end_calls(reason, rt)
        return self.media.take()

    def hang_up(self, call_id: str, reason: str) -> list[MediaCommand]:
        """End one call (from outside: the API): its trunk hangs up, its agent legs follow.
        LookupError when no call in progress has that id."""
        found = [(index, chan) for (index, chan), leg in self.legs.items() if leg.call.call_id == call_id]
        found.sort(key=lambda key: not isinstance(self.boards[key[0]].channels.get(key[1]), FxoTrunk))
        for index, chan in found:        # the caller's trunk first
            rt = self.boards[index]
            ch = rt.channels.get(chan)
            if ch is None:
                continue
            tick = max(self.tick, rt.tick)
            ch.hangup(tick, reason)
            self.settle(rt, tick, {chan})
            return self.media.take()
        raise LookupError(f"no call {call_id!r} in progress")

    def _end_calls(self, reason: str, rt: BoardRuntime | None, side: str = "server") -> None:
        for r in ([rt] if rt is not None else self.boards):
            tick = max(self.tick, r.tick)
            chans = sorted(r.channels.items(), key=lambda c: isinstance(c[1], FxsPhone))
            for _, ch in chans:
                if isinstance(ch, FxsPhone) and ch.state is State.RINGING:
                    ch.stop_ringing(tick, reason)
                else:
                    ch.hangup(tick, reason)
                    self._ended_by(ch, side)
                self.settle(r, tick, {ch.chan})

    # -- views -------------------------------------------------------------
    def channel_rows(self) -> list[dict[str, Any]]:
        rows = []
        for rt in self.boards:
            for chan, ch in sorted(rt.channels.items()):
                leg = self.legs.get((rt.index, chan))
                rows.append({
                    "board": rt.name, "chan": chan, "kind": ch.kind, "state": ch.state.value,
                    "call_id": leg.call.call_id if leg else None,
                    "caller": leg.call.caller if leg else None,
                    "menu": (leg.path[-1] if leg and leg.path else ""),
                    "digits": leg.digits if leg else "",
                })
        return rows
