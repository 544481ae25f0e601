"""Channel state machines, without I/O.

A channel is fed what the card and the detectors saw (ring, hook, loop
current, tones, speech, digits, timers) and what the control plane wants
(answer, hang up, dial, ring an agent). It answers with actions in its
`outbox` (hook the line, start a timer, play a tone, publish an event) that
the server carries out. Tests drive it with method calls and read the
outbox; nothing here touches a board, a thread or a clock. Time is in ticks.

Timers cannot be cancelled on the engine's heap, so each carries the
channel's timer generation and a stale one is ignored.
"""
from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from voiceserver.core.events import ServerEventKind


class State(str, Enum):
    IDLE = "idle"
    RINGING = "ringing"        # inbound ring on a trunk, or we ring a phone
    OFFHOOK = "offhook"        # phone lifted, dial tone; trunk seized for outbound
    DIALING = "dialing"
    PROCEEDING = "proceeding"  # outbound: digits sent, waiting for ringback/answer
    CONNECTED = "connected"
    HANGUP = "hangup"          # on-hook guard time before the line is reused
    BLOCKED = "blocked"        # alarm, line cut, board lost


# What a channel asks of the card, the media engine and the bus: typed, so the
# server matches on the type (no string kinds through an if-chain).
@dataclass(frozen=True)
class Hook:
    state: str                   # "offhook" | "onhook"


@dataclass(frozen=True)
class Ring:
    on: bool


@dataclass(frozen=True)
class Tone:
    name: str | None             # a tone of the plan ("dial", "busy", ...); None stops it


@dataclass(frozen=True)
class SendDtmf:
    digits: str


@dataclass(frozen=True)
class StopPlay:
    pass


@dataclass(frozen=True)
class Timer:
    tick: int                    # when it expires, on the board's tick
    token: tuple[int | str, str]  # (generation, name), handed back to Channel.timer; E1 R2: ("r2", name)


@dataclass(frozen=True)
class Emit:
    kind: ServerEventKind
    data: dict[str, Any]


# E1 R2 trunks (voiceserver.core.e1) also ask for these:
@dataclass(frozen=True)
class SetCas:
    abcd: int                    # the ABCD bits to send (A is bit 3), boarddrv.Board.set_cas


@dataclass(frozen=True)
class MfListen:
    forward: bool | None         # listen for the forward (True) or backward MF set; None: stop


@dataclass(frozen=True)
class MfSend:
    signal: int                  # MF signal 1-15; 0 stops the tone
    forward: bool


Action = Hook | Ring | Tone | SendDtmf | StopPlay | Timer | Emit | SetCas | MfListen | MfSend


_call_ids = itertools.count(1)


def new_call_id(prefix: str = "c") -> str:
    """Ids for channels used on their own (tests); the server gives its channels
    `voiceserver.core.callids.CallIds.next`, ids that never repeat."""
    return f"{prefix}{next(_call_ids):06d}"


@dataclass
class Call:
    call_id: str
    chan: int
    direction: str                # inbound | outbound | internal
    caller: str | None = None
    called: str | None = None
    start_tick: int = 0
    answer_tick: int | None = None
    end_tick: int | None = None
    end_reason: str | None = None
    digits: str = ""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrunkTiming:
    """Timers for an FXO trunk, in milliseconds (configurable per line)."""
    answer_after_rings: int = 2      # caller ID (FSK) comes between ring 1 and 2; offered
                                     # at once when it has arrived, else at this ring
    ring_gone_ms: int = 6000         # no ring for this long: the caller gave up
    hangup_guard_ms: int = 600       # on-hook time before the line can be seized again
    dial_tone_wait_ms: int = 3000    # outbound: dial anyway if no dial tone by then
    proceed_timeout_ms: int = 60000  # outbound: no answer in this time -> give up
    answer_on_speech: bool = True    # outbound: voice energy counts as answer


class Channel:
    """Shared machinery: state, outbox, timers, events."""

    kind = "channel"

    def __init__(self, chan: int, ticks_per_second: float) -> None:
        self.chan = chan
        self.tps = ticks_per_second
        self.state = State.IDLE
        self.call: Call | None = None
        self.outbox: list[Action] = []
        self._gen = 0
        self.alarm: str | None = None
        self.new_call_id: Callable[[], str] = new_call_id   # where call ids come from

    def ticks(self, ms: float) -> int:
        return max(1, int(round(ms * self.tps / 1000.0)))

    def hangup(self, tick: int, reason: str) -> None:
        """End the call on this channel (each kind of channel says how)."""
        raise NotImplementedError

    def take(self) -> list[Action]:
        out, self.outbox = self.outbox, []
        return out

    def _do(self, action: Action) -> None:
        self.outbox.append(action)

    def _event(self, kind: ServerEventKind, **data: Any) -> None:
        self._do(Emit(kind, data))

    def _set(self, state: State, reason: str = "") -> None:
        if state is self.state:
            return
        old, self.state = self.state, state
        self._event(ServerEventKind.CHANNEL_STATE, old=old.value, new=state.value, reason=reason)

    def _timer(self, tick: int, ms: float, name: str) -> None:
        self._do(Timer(tick + self.ticks(ms), (self._gen, name)))

    def _cancel_timers(self) -> None:
        self._gen += 1

    def timer(self, tick: int, token: tuple[int, str]) -> None:
        gen, name = token
        if gen == self._gen:
            getattr(self, f"_on_{name}")(tick)

    def _start_call(self, tick: int, direction: str, **kw: Any) -> Call:
        self.call = Call(self.new_call_id(), self.chan, direction, start_tick=tick, **kw)
        self._event(ServerEventKind.CALL_START, call_id=self.call.call_id, direction=direction,
                    caller=self.call.caller, called=self.call.called)
        return self.call

    def _end_call(self, tick: int, reason: str, **more: Any) -> None:
        """The call ends: call.end with `reason` (and `more` fields a kind of line adds)."""
        call = self.call
        if call is None:
            return
        call.end_tick = tick
        call.end_reason = reason
        self._event(ServerEventKind.CALL_END, call_id=call.call_id, reason=reason,
                    answered=call.answer_tick is not None, **more)
        self.call = None

    # Alarms apply to every kind of channel.
    def block(self, tick: int, why: str) -> None:
        self.alarm = why
        self._cancel_timers()
        if self.call is not None:
            self._do(StopPlay())
            self._end_call(tick, f"blocked: {why}")
        self._set(State.BLOCKED, why)

    def unblock(self, tick: int) -> None:
        if self.state is State.BLOCKED:
            self.alarm = None
            self._set(State.IDLE, "alarm cleared")


class FxoTrunk(Channel):
    """An analog line from the central office (or an E1 CAS trunk later).

    Far-end hang-up is whatever the line gives: loop-current drop, battery
    reversal, or on lines with no disconnect supervision only busy tone.

    Glare: both ends may seize an idle line at the same moment. We go
    off-hook to call out while the exchange starts ringing us; our off-hook
    then answers the exchange's caller, who hears silence where we wait for
    dial tone. A ring that starts while we are off-hook waiting for dial
    tone (or dialling without having heard one) is that collision: the
    outbound call ends with reason ``glare`` (the server retries it on
    another line of the group) and the line becomes an inbound call,
    offered at once (``call.glare`` then ``call.offer``); we are already
    off-hook, so answering it changes nothing on the line.
    """

    kind = "fxo"

    def __init__(self, chan: int, ticks_per_second: float, timing: TrunkTiming | None = None,
                 disconnect: frozenset[str] = frozenset({"loop-drop", "battery-reversal", "busy-tone"})) -> None:
        super().__init__(chan, ticks_per_second)
        self.t = timing or TrunkTiming()
        self.disconnect = disconnect
        self.rings = 0
        self._cid: tuple[str | None, str | None] = (None, None)
        self._pending_digits = ""
        self._voice_at: int | None = None   # outbound: last voice onset (VAD) while proceeding
        self._dial_tone = False             # outbound: the exchange gave us dial tone
        self._glared = False                # ringing inbound while we are off-hook (glare)

    def block(self, tick: int, why: str) -> None:
        """A blocked line (alarm, board lost or reset) forgets the caller ID and ring it
        heard: their call is gone with the line, and the next ring is another caller."""
        self._cid = (None, None)
        super().block(tick, why)

    # -- inbound -------------------------------------------------------
    def ring_start(self, tick: int) -> None:
        if self.state is State.HANGUP:
            # we are on-hook: the guard keeps us from seizing the line too soon, but a ring
            # is the exchange's next caller (it may come right after the last one let go)
            self._cancel_timers()
            self._set(State.IDLE, "ring during the hangup guard")
        if self.state is State.OFFHOOK or (self.state is State.DIALING and not self._dial_tone):
            self._glare(tick)
            return
        if self.state is State.IDLE:
            self.rings = 0
            self._glared = False
            self._set(State.RINGING, "ring")
            self._start_call(tick, "inbound", caller=self._cid[0])
        if self.state is not State.RINGING:
            return
        self.rings += 1
        self._cancel_timers()
        self._timer(tick, self.t.ring_gone_ms, "ring_gone")
        self._event(ServerEventKind.CALL_RING, call_id=self.call.call_id if self.call else None, count=self.rings)
        if self.rings >= self.t.answer_after_rings or self._cid[0] is not None:
            self._offer()

    def _offer(self) -> None:
        """The call may be answered now (sent once per ring or caller ID; the server decides)."""
        assert self.call is not None
        self._event(ServerEventKind.CALL_OFFER, call_id=self.call.call_id, caller=self.call.caller)

    def ring_stop(self, tick: int) -> None:
        pass  # the ring_gone timer (re-armed at each ring) decides that the caller gave up

    def caller_id(self, tick: int, number: str | None, name: str | None = None,
                  before_ring: bool = False) -> None:
        """FSK between rings, or DTMF (`before_ring`) before the first ring.

        Caller ID only comes with a call's first ring, so caller ID on a line
        that has been ringing for a while is a new call: the last caller gave
        up less than a ring cycle before the next one rang.
        """
        if self.state is State.RINGING and self.call is not None and (
                before_ring or self.rings > 1 or self.call.caller is not None):
            self._cancel_timers()
            self._end_call(tick, "abandoned while ringing")
            self._start_call(tick, "inbound", caller=number if before_ring else None)
            self.rings = 0 if before_ring else 1
            self._timer(tick, self.t.ring_gone_ms, "ring_gone")
        self._cid = (number, name)
        if self.call is not None and self.state is State.RINGING and not before_ring:
            self.call.caller = number
            self.call.data["caller_name"] = name
            self._event(ServerEventKind.CALL_CALLERID, call_id=self.call.call_id, caller=number, name=name)
            self._offer()  # no need to wait for the next ring

    def _glare(self, tick: int) -> None:
        """The exchange rang in on the line we just seized: it is theirs now."""
        out = self.call
        self._cancel_timers()
        self._end_call(tick, "glare: the line rang in as we seized it")
        self._glared = True        # still off-hook: the exchange's caller is on the line
        self._set(State.RINGING, "glare: inbound call on our seizure")
        self.rings = 1
        self._cid = (None, None)
        call = self._start_call(tick, "inbound")
        call.data["glare"] = True
        self._event(ServerEventKind.CALL_GLARE, call_id=call.call_id,
                    outbound=out.call_id if out is not None else None,
                    number=out.called if out is not None else None)
        self._timer(tick, self.t.ring_gone_ms, "ring_gone")
        self._offer()

    def _on_ring_gone(self, tick: int) -> None:
        if self.state is State.RINGING and self._glared:
            self.hangup(tick, "glare call not answered")     # we are off-hook: let go
            return
        if self.state is State.RINGING:
            self._cid = (None, None)
            self._end_call(tick, "abandoned while ringing")
            self._set(State.IDLE, "ringing stopped")

    def answer(self, tick: int) -> None:
        if self.state is not State.RINGING:
            raise RuntimeError(f"channel {self.chan}: cannot answer in state {self.state.value}")
        self._cancel_timers()
        self._do(Hook("offhook"))
        self._glared = False
        assert self.call is not None
        self.call.answer_tick = tick
        self._cid = (None, None)
        self._set(State.CONNECTED, "answered")
        self._event(ServerEventKind.CALL_ANSWER, call_id=self.call.call_id)

    # -- far end gone --------------------------------------------------
    def loop_drop(self, tick: int) -> None:
        self._far_end_gone(tick, "loop-drop", "far end hung up (loop current dropped)")

    def battery_reversal(self, tick: int) -> None:
        if self.state is State.PROCEEDING:
            self._answered_out(tick, "battery reversal")  # answer supervision on outbound
            return
        self._far_end_gone(tick, "battery-reversal", "far end hung up (battery reversal)")

    def tone(self, tick: int, name: str) -> None:
        """A call-progress tone the detector named on this line."""
        if self.state is State.OFFHOOK and name == "dial":
            self._dial_tone = True
            self._dial_now(tick)
        elif self.state is State.PROCEEDING:
            if name in ("busy", "congestion"):
                self.hangup(tick, f"outbound {name}")
            elif name == "ringback":
                self._voice_at = None
                self._event(ServerEventKind.CALL_RINGBACK, call_id=self.call.call_id if self.call else None)
            elif name == "unknown" and self.t.answer_on_speech:
                # Sound that is no call-progress tone: a voice answered. The VAD
                # alone cannot tell: a ringback burst starts like a voice, and
                # only its cadence (known after the burst) says it is ringback.
                recent = self._voice_at is not None and tick - self._voice_at <= self.ticks(1500)
                self._answered_out(tick, "voice")
                if recent:
                    assert self.call is not None and self._voice_at is not None
                    self.call.answer_tick = self._voice_at   # the voice started then
        elif self.state is State.CONNECTED and name in ("busy", "congestion"):
            self._far_end_gone(tick, "busy-tone", f"far end hung up ({name} tone)")

    def speech(self, tick: int) -> None:
        """Voice activity began (VAD). While proceeding it only dates a voice
        answer: the call-progress detector's "unknown" (energy that is not a
        tone) confirms it, see tone()."""
        if self.state is State.PROCEEDING:
            self._voice_at = tick

    def _far_end_gone(self, tick: int, how: str, reason: str) -> None:
        if how not in self.disconnect or self.state not in (State.CONNECTED, State.PROCEEDING):
            return
        self.hangup(tick, reason)

    def hangup(self, tick: int, reason: str) -> None:
        if self.state in (State.IDLE, State.HANGUP, State.BLOCKED):
            return
        self._cancel_timers()
        self._do(StopPlay())
        self._do(Tone(None))
        if self.state is not State.RINGING or self._glared:
            self._do(Hook("onhook"))
        self._glared = False
        self._end_call(tick, reason)
        self._set(State.HANGUP, reason)
        self._timer(tick, self.t.hangup_guard_ms, "guard_over")

    def _on_guard_over(self, tick: int) -> None:
        if self.state is State.HANGUP:
            self._set(State.IDLE, "line free")

    # -- outbound --------------------------------------------------------
    def dial(self, tick: int, number: str) -> Call:
        if self.state is not State.IDLE:
            raise RuntimeError(f"channel {self.chan}: busy ({self.state.value}), cannot dial")
        call = self._start_call(tick, "outbound", called=number)
        self._pending_digits = number
        self._voice_at = None
        self._dial_tone = False
        self._do(Hook("offhook"))
        self._set(State.OFFHOOK, "seized")
        self._timer(tick, self.t.dial_tone_wait_ms, "no_dial_tone")
        return call

    def _on_no_dial_tone(self, tick: int) -> None:
        if self.state is State.OFFHOOK:
            self._event(ServerEventKind.CALL_WARNING, call_id=self.call.call_id if self.call else None,
                        warning="no dial tone, dialling anyway")
            self._dial_now(tick)

    def _dial_now(self, tick: int) -> None:
        self._cancel_timers()
        self._set(State.DIALING, "dial tone")
        self._do(SendDtmf(self._pending_digits))
        self._event(ServerEventKind.CALL_DIALING, call_id=self.call.call_id if self.call else None,
                    number=self._pending_digits)

    def dtmf_sent(self, tick: int) -> None:
        if self.state is State.DIALING:
            self._set(State.PROCEEDING, "digits sent")
            self._timer(tick, self.t.proceed_timeout_ms, "no_answer")

    def _on_no_answer(self, tick: int) -> None:
        if self.state is State.PROCEEDING:
            self.hangup(tick, "outbound no answer")

    def _answered_out(self, tick: int, how: str) -> None:
        self._cancel_timers()
        assert self.call is not None
        self.call.answer_tick = tick
        self._set(State.CONNECTED, f"answered ({how})")
        self._event(ServerEventKind.CALL_ANSWER, call_id=self.call.call_id, how=how)


class FxsPhone(Channel):
    """An extension or agent phone on an FXS port: we supply dial tone and ring it."""

    kind = "fxs"

    def __init__(self, chan: int, ticks_per_second: float, ring_on_ms: int = 1000,
                 ring_off_ms: int = 4000, interdigit_ms: int = 4000) -> None:
        super().__init__(chan, ticks_per_second)
        self.ring_on_ms, self.ring_off_ms = ring_on_ms, ring_off_ms
        self.interdigit_ms = interdigit_ms
        self.dialed = ""
        self._ringing_now = False
        self.on_hold = False        # the server holds this phone's caller (hook flash)
        self.recalling = False      # hung up with the caller on hold: ringing it back
        self.recall_ms = 30_000     # an unanswered hold recall ends the call after this

    def hook_off(self, tick: int) -> None:
        if self.state is State.RINGING:
            self._cancel_timers()
            self._do(Ring(False))
            assert self.call is not None
            # The Call is the caller's (shared with the trunk): its answer_tick is
            # when the line was answered; the agent's answer is kept apart.
            self.call.data.setdefault("agent_answer_tick", tick)
            recall = self.recalling
            self.recalling = False
            self._set(State.CONNECTED, "answered")
            self._event(ServerEventKind.CALL_ANSWER, call_id=self.call.call_id, recall=recall)
        elif self.state is State.IDLE:
            self.dialed = ""
            self._start_call(tick, "internal")
            self._set(State.OFFHOOK, "lifted")
            self._do(Tone("dial"))

    def hook_on(self, tick: int) -> None:
        if self.state in (State.IDLE, State.BLOCKED):
            return
        if self.on_hold and self.state is State.CONNECTED and self.call is not None:
            self._recall(tick)
            return
        self.on_hold = self.recalling = False
        self._cancel_timers()
        self._do(Tone(None))
        self._do(StopPlay())
        self._end_call(tick, "phone hung up")
        self._set(State.IDLE, "hung up")

    def found_offhook(self, tick: int) -> None:
        """The phone was lifted when the server opened the board (a crash or a lost board
        ended the call it was on): busy tone until it is hung up, then idle."""
        if self.state is State.IDLE:
            self._do(Tone("busy"))
            self._set(State.HANGUP, "off-hook when the board was opened")
    def flash(self, tick: int) -> None:
        if self.call is not None:
            self._event(ServerEventKind.CALL_FLASH, call_id=self.call.call_id)

    def hold(self, on: bool) -> None:
        """The server put this phone's caller on hold (or took it off): a hang-up
        while on hold rings the phone back (recall) instead of ending the call."""
        self.on_hold = on

    def _recall(self, tick: int) -> None:
        """Hung up with the caller on hold: ring the phone again (the common PBX
        "hold recall"); answering picks the held caller up again."""
        assert self.call is not None
        self._cancel_timers()
        self._do(Tone(None))
        self._do(StopPlay())
        self.recalling = True
        self._start_ringing(tick, "hold recall")
        self._timer(tick, self.recall_ms, "recall_over")
        self._event(ServerEventKind.CALL_RECALL, call_id=self.call.call_id)

    def _on_recall_over(self, tick: int) -> None:
        if self.state is State.RINGING and self.recalling and self.call is not None:
            self._event(ServerEventKind.CALL_RECALL_TIMEOUT, call_id=self.call.call_id)

    def feature(self, tick: int, code: str, ok: bool) -> None:
        """A feature code was dialled: confirmation tone (stutter dial tone) or,
        refused, congestion tone, until the phone is hung up."""
        if self.state is not State.DIALING:
            return
        self._cancel_timers()
        self._end_call(tick, f"feature code {code}")
        self._do(Tone("stutter_dial" if ok else "congestion"))
        self._set(State.HANGUP, f"feature code {code} {'done' if ok else 'refused'}")

    def digit(self, tick: int, d: str) -> None:
        if self.state is State.OFFHOOK:
            self._do(Tone(None))
            self._set(State.DIALING, "first digit")
        if self.state is State.DIALING:
            self.dialed += d
            self._cancel_timers()
            self._timer(tick, self.interdigit_ms, "dial_done")

    def _on_dial_done(self, tick: int) -> None:
        if self.state is State.DIALING and self.call is not None:
            self.call.called = self.dialed
            self._event(ServerEventKind.CALL_DIALED, call_id=self.call.call_id, number=self.dialed)

    def ring(self, tick: int, call: Call) -> None:
        """Ring the phone for a call (cadence: on/off by timers, the card only applies voltage)."""
        if self.state is not State.IDLE:
            raise RuntimeError(f"channel {self.chan}: phone busy ({self.state.value})")
        self.call = call
        self._start_ringing(tick, "ringing")

    def _start_ringing(self, tick: int, why: str) -> None:
        self._set(State.RINGING, why)
        self._ringing_now = True
        self._do(Ring(True))
        self._timer(tick, self.ring_on_ms, "ring_toggle")

    def _on_ring_toggle(self, tick: int) -> None:
        if self.state is not State.RINGING:
            return
        self._ringing_now = not self._ringing_now
        self._do(Ring(self._ringing_now))
        self._timer(tick, self.ring_on_ms if self._ringing_now else self.ring_off_ms, "ring_toggle")

    def stop_ringing(self, tick: int, reason: str) -> None:
        if self.state is State.RINGING:
            self._cancel_timers()
            self._do(Ring(False))
            self.call = None
            self.on_hold = self.recalling = False
            self._set(State.IDLE, reason)

    def hangup(self, tick: int, reason: str) -> None:
        """The other side left: play busy tone until the phone is hung up."""
        if self.state in (State.CONNECTED, State.DIALING, State.OFFHOOK):
            self.on_hold = self.recalling = False
            self._do(StopPlay())
            self._end_call(tick, reason)
            self._do(Tone("busy"))
            self._set(State.HANGUP, reason)
