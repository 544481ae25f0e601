"""E1 trunks with R2 signalling (China No.1 and the other variants) in the voice server.

Two parts, one per side of the control plane / media split:

- `E1R2Trunk`, a channel state machine (sans-I/O, like `FxoTrunk`, which it
  extends so the controller, the ACD's hunt groups and the call records
  treat it as a trunk). It drives a `voiceserver.r2.channel.R2Channel`: the
  card's CAS bits (`cas`) and the MF signals the engine heard (`mf`) go in,
  and the machine's actions come out as channel actions: `SetCas` (the
  ABCD bits to send), `MfListen` / `MfSend` (the engine's MF receiver and
  generator), timers (the controller's timer mechanism: tokens
  ``("r2", name)``) and bus events. An incoming seizure runs the compelled
  cycle; once DNIS, ANI and category are in, the call is decided (`policy`:
  the trunk group's numbers), accepted, and offered to the controller like
  a ringing analog call; the controller's `answer` sends the answer bits.
  `dial` makes an outgoing call over the group (the ACD's hunt groups call
  it); the B signal's outcome becomes the hang-up reason.
- `R2Media`, the engine's MF receivers and generators: one receiver per
  frequency set over the board's channels, run in the tick only while a
  channel listens on that set (one kernel call each), events delivered
  only for listening channels; generators likewise. Python work per tick
  is O(events + channels sending a tone), not O(channels).

The signal trace (`call.signal` events: bits sent and received, MF signal
onsets each way, with their meaning) is what `voiceboard r2trace` shows.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from dsp.r2mf import R2MfEvent, R2MfGenerator, R2MfReceiver
from voiceserver.core.channels import FxoTrunk, MfListen, MfSend, SetCas, State, StopPlay, Timer, Tone
from voiceserver.core.events import ServerEventKind
from voiceserver.r2 import actions as r2a
from voiceserver.r2.channel import R2Channel
from voiceserver.r2.line import Direction
from voiceserver.r2.register import IncomingRegister, RegisterState
from voiceserver.r2.variants import Variant

__all__ = ["SetCas", "MfListen", "MfSend", "E1R2Trunk", "R2Media", "Decision", "group_policy", "OUTCOME_REASONS",
           "abcd_text", "line_meaning", "REGISTER_GIVE_UP"]


@dataclass(frozen=True)
class Decision:
    """What the trunk group's numbers say of an incoming call (its `policy`)."""
    accept: bool
    cause: r2a.Cause = r2a.Cause.NORMAL   # the B signal's meaning when refused
    charge: bool = True
    flow: str | None = None      # the IVR flow for this DNIS (None: the schedule's / default)
    stage: int = 1               # 2: two-stage dialling (the flow collects an extension)


def accept_all(dnis: str, ani: str, category: str) -> Decision:
    return Decision(True)


def group_policy(config: Callable[[], Any], group: Any) -> Callable[[str, str, str], Decision]:
    """The policy of a trunk group's channels: its numbers (voiceserver.config.r2.R2Group.decide)
    and the blacklist, in the config in force when a call comes (`config()`: a reload changes
    them for the next call)."""
    def policy(dnis: str, ani: str, category: str) -> Decision:
        cfg = config()
        current = next((g for g in cfg.r2 if g.name == group.name), group)
        accept, cause, charge, flow, stage = current.decide(dnis, ani, category, screen=cfg.caller_allowed)
        return Decision(accept, cause, charge, flow, stage)
    return policy


# the hang-up reason of an outgoing call the far end refused (AcdLink reads "outbound ...")
OUTCOME_REASONS: dict[r2a.Cause, str] = {
    r2a.Cause.BUSY: "outbound busy",
    r2a.Cause.CONGESTION: "outbound congestion",
    r2a.Cause.UNALLOCATED: "outbound unallocated number",
    r2a.Cause.OUT_OF_ORDER: "outbound line out of order",
    r2a.Cause.NUMBER_CHANGED: "outbound number changed",
    r2a.Cause.NO_ANSWER: "outbound no answer",
    r2a.Cause.SEIZE_ACK_TIMEOUT: "outbound no seize acknowledge",
    r2a.Cause.MF_TIMEOUT: "outbound register timeout",
    r2a.Cause.PROTOCOL_ERROR: "outbound protocol error",
    r2a.Cause.RELEASE_TIMEOUT: "outbound release timeout",
}


# the hang-up reason of an incoming call whose caller cleared forward during register signalling
REGISTER_GIVE_UP = "caller cleared forward: during register signalling"


# what the bits we send mean, by the line state that sent them
TX_MEANING = {"seized": "seize", "seize-acknowledged": "seize acknowledge", "answered": "answer",
              "clear-back": "clear-back", "clear-forward": "clear-forward", "released": "idle (released)",
              "idle": "idle", "blocked": "blocked", "glare": "seize (glare)"}


def abcd_text(abcd: int) -> str:
    return format(abcd & 0xF, "04b")


def line_meaning(v: Variant, ab: str, forward: bool) -> str:
    """What two A/B bits mean, sent by the forward (seizing) end or the backward end."""
    b = v.line
    if forward:
        if ab == b.seize:
            return "seize"
        if ab == b.idle:
            return "idle / clear-forward"
    else:
        names = [("idle", b.idle), ("seize-ack / clear-back / blocked", b.seize_ack),
                 ("answer", b.answer), ("forced release", b.forced_release)]
        for name, bits in names:
            if ab == bits:
                return name
    return "?"


def _mf_meaning(v: Variant, signal: int, forward: bool, group: str) -> str:
    """The meaning of an MF signal in the group the register was in."""
    if forward:
        if group == "II":
            return f"II-{signal} category {v.group_ii.name_of(signal)}"
        named = {v.group_i.end_of_dnis: "end of DNIS", v.group_i.end_of_ani: "end of ANI",
                 v.group_i.ani_restricted: "ANI restricted"}
        named.pop(0, None)
        if signal in named:
            return f"I-{signal} {named[signal]}"
        return f"I-{signal} digit {0 if signal == 10 else signal}" if signal <= 10 else f"I-{signal}"
    table = {"A": v.group_a, "B": v.group_b, "C": v.group_c}.get(group)
    if table is None:
        return f"{group}-{signal}"
    names = [n for n, s in vars(table).items() if s == signal]
    return f"{group}-{signal} {' / '.join(n.replace('_', ' ') for n in names) or '?'}"


class E1R2Trunk(FxoTrunk):
    """An E1 channel with R2 line and register signalling; see the module docstring."""

    kind = "e1"

    def __init__(self, chan: int, ticks_per_second: float, variant: Variant, *, group: str = "",
                 ani: str = "", category: str = "national_subscriber",
                 answer_alarm_ms: int = 20_000, trace: bool = True,
                 policy: Callable[[str, str, str], Decision] = accept_all) -> None:
        super().__init__(chan, ticks_per_second)
        self.variant = variant
        self.group = group
        self.ani = ani                    # the ANI our outgoing calls send
        self.category = category          # the calling party category they send
        self.answer_alarm_ms = answer_alarm_ms
        self.trace = trace
        self.policy = policy
        self.r2 = R2Channel(variant, 0)
        self._listening: bool | None = None
        self._sending = 0
        self._last_ms = 0
        self._pending_trace: list[dict[str, Any]] = []
        self._bwd_group: str | None = None  # the register's backward group before its last input
        self._ringback = False              # our ringback plays: the answer is held (hold_answer)
        self._busy = False                  # our busy tone plays: a held call refused, until the line is free
        self.tx_abcd = 0b1011               # what the server's start left on the line (linestate)
        self._take_r2(0)                    # the variant's idle bits, where they differ

    # -- time ---------------------------------------------------------------
    def ms(self, tick: int) -> int:
        """The R2 machines' clock (ms) at `tick`; never goes back."""
        self._last_ms = max(self._last_ms, int(round(tick * 1000.0 / self.tps)))
        return self._last_ms

    # -- inputs from the card and the engine ---------------------------------
    def cas(self, tick: int, abcd: int) -> None:
        """The far end's ABCD bits changed (a CAS event)."""
        bits = abcd_text(abcd)
        now = self.ms(tick)
        self._trace("rx", bits, line_meaning(self.variant, bits[:2], self._far_is_forward()))
        self.r2.rx_bits(bits, now)
        self._run(tick, now)

    def mf(self, tick: int, signal: int, on: bool) -> None:
        """The engine's MF receiver heard a signal start (on) or end on this channel.
        (The trace keeps onsets only: an end is implied by the next signal.)"""
        reg = self.r2.register
        now = self.ms(tick)
        if on and reg is not None:
            forward = isinstance(reg, IncomingRegister)
            self._trace("rx", f"MF {signal}", _mf_meaning(self.variant, signal, forward, self._group(reg, forward)))
        self._bwd_group = getattr(reg, "group", None)
        self.r2.mf(signal, on, now)
        self._run(tick, now)

    def timer(self, tick: int, token: tuple[Any, str]) -> None:
        if token[0] == "r2":
            now = self.ms(tick)
            self._bwd_group = getattr(self.r2.register, "group", None)
            self.r2.timer(token[1], now)
            self._run(tick, now)
        else:
            super().timer(tick, token)

    # tones, speech and loop signals are an analog line's supervision; R2 has its own
    def tone(self, tick: int, name: str) -> None:
        pass

    def speech(self, tick: int) -> None:
        pass

    def loop_drop(self, tick: int) -> None:
        pass

    def battery_reversal(self, tick: int) -> None:
        pass

    def ring_start(self, tick: int) -> None:
        pass

    def caller_id(self, tick: int, number: str | None, name: str | None = None,
                  before_ring: bool = False) -> None:
        pass

    # -- commands of the control plane ----------------------------------------
    def hold_answer(self, tick: int) -> None:
        """The server holds back the answer of an offered call ([channels] answer_api): the
        register has accepted it (B-1 / B-7: the subscriber is free), so the caller hears our
        ringback tone, as from a terminating exchange whose subscriber's phone rings, until
        `answer` or the far exchange's answer timer (it clears forward)."""
        if self.state is not State.RINGING or self.call is None:
            raise RuntimeError(f"channel {self.chan}: no offered call to hold in state {self.state.value}")
        self._ringback = True
        self._do(Tone("ringback"))

    def answer(self, tick: int) -> None:
        """The server answers an offered call: the answer bits go out (the ringback of a held
        answer stops)."""
        if self.state is not State.RINGING or self.call is None:
            raise RuntimeError(f"channel {self.chan}: cannot answer in state {self.state.value}")
        if self._ringback:
            self._ringback = False
            self._do(Tone(None))
        now = self.ms(tick)
        self.r2.answer(now)
        self._run(tick, now)
        self._cancel_timers()
        self.call.answer_tick = tick
        self._set(State.CONNECTED, "answered")
        self._event(ServerEventKind.CALL_ANSWER, call_id=self.call.call_id)

    def hangup(self, tick: int, reason: str) -> None:
        if self.call is None:
            return
        held = self._ringback and self.call.answer_tick is None
        now = self.ms(tick)
        self._do_stop_media()
        if held:
            # A call held for the API's answer and refused: China No.1's clear-back bits are its
            # seize-acknowledge bits, so the caller's exchange sees no change on the line. The
            # caller hears busy instead of our ringback, as from an exchange whose subscriber
            # cannot take the call, until the exchange clears forward (its caller hangs up, or
            # its answer timer runs out).
            self._busy = True
            self._do(Tone("busy"))
        self._end_call(tick, reason)
        self.r2.clear(now)
        self._set(State.HANGUP, reason)
        self._run(tick, now)

    def dial(self, tick: int, number: str):  # noqa: ANN201 - a Call, as FxoTrunk.dial
        """Seize the line and send `number` as DNIS (with our ANI and category)."""
        if self.state is not State.IDLE:
            raise RuntimeError(f"channel {self.chan}: busy ({self.state.value}), cannot dial")
        now = self.ms(tick)
        seized = self.r2.call(now, dnis=number, ani=self.ani, category=self.category)
        call = self._start_call(tick, "outbound", called=number)
        call.data.update(dnis=number, ani=self.ani or None, category=self.category)
        if not seized:     # the far end's seizure is on its way (bits still debouncing): glare
            self._end_call(tick, "glare: the far end was seizing the line")
            return call
        self._set(State.OFFHOOK, "seized")
        self._event(ServerEventKind.CALL_DIALING, call_id=call.call_id, number=number)
        self._run(tick, now)
        return call

    def block(self, tick: int, why: str) -> None:
        """A span alarm (or a lost board): the call ends, the line starts afresh blocked."""
        self._do_stop_media()
        super().block(tick, why)
        now = self.ms(tick)
        self.r2 = R2Channel(self.variant, now)     # whatever the line was doing is gone
        self.r2.take()                             # (its idle bits: blocked bits go out instead)
        self.r2.block(now)
        self._run(tick, now)
        self._pending_trace = []                   # signals of no call: not the next call's

    def unblock(self, tick: int) -> None:
        if self.state is not State.BLOCKED:
            return
        now = self.ms(tick)
        self.r2.unblock(now)
        self._run(tick, now)
        self._pending_trace = []
        super().unblock(tick)

    # -- the R2 machine's actions -----------------------------------------------
    def _take_r2(self, tick: int) -> None:
        for a in self.r2.take():
            match a:
                case r2a.SetBits(abcd):
                    value = int(abcd, 2)
                    if value != self.tx_abcd:
                        self.tx_abcd = value
                        self._do(SetCas(value))
                        self._trace("tx", abcd, TX_MEANING.get(self.r2.line.state.value) or line_meaning(
                            self.variant, abcd[:2], not self._far_is_forward()))
                case r2a.StartTimer(name, at):
                    self._do_timer(tick, at, name)
                case r2a.MfStart(signal, forward):
                    self._sending = signal
                    self._do(MfSend(signal, forward))
                    reg = self.r2.register
                    group = self._group(reg, forward) if forward or not self._bwd_group else self._bwd_group
                    self._trace("tx", f"MF {signal}", _mf_meaning(self.variant, signal, forward, group))
                case r2a.MfStop(forward):
                    if self._sending:
                        self._sending = 0
                        self._do(MfSend(0, forward))
                case r2a.LineEvent():
                    self._line_event(tick, a)
                case r2a.CallOffered():
                    self._offered(tick, a)
                case r2a.ReadyToAnswer():
                    self._ready(tick)
                case r2a.CallAccepted(charge, signal, _):
                    if self.call is not None:
                        self.call.data["outcome"] = f"accepted{'' if charge else ' without charge'}"
                        self._set(State.PROCEEDING, f"accepted (B-{signal})")
                        self._event(ServerEventKind.CALL_RINGBACK, call_id=self.call.call_id)
                case r2a.CallFailed(cause, signal, _):
                    self._failed(tick, cause, signal)
                case _:
                    pass   # StopTimer: a stopped timer's expiry is ignored by the machine

    def _run(self, tick: int, now: int) -> None:
        """Carry out what the machine asked (looping: our reactions make it act again)."""
        for _ in range(100):
            if not self.r2.box.actions:
                break
            self._take_r2(tick)
        self._listen()

    def _do_timer(self, tick: int, at_ms: int, name: str) -> None:
        at = max(tick + 1, -(-int(at_ms * self.tps) // 1000))
        self._do(Timer(at, ("r2", name)))

    def _listen(self) -> None:
        reg = self.r2.register
        want: bool | None = None
        if reg is not None and reg.state in (RegisterState.SIGNALLING, RegisterState.OFFERED):
            want = isinstance(reg, IncomingRegister)   # incoming hears the forward set
        if want != self._listening:
            self._listening = want
            self._do(MfListen(want))

    def _do_stop_media(self) -> None:
        """The call is over: its prompt and tone stop (a caller who clears forward while the IVR
        speaks must not leave the prompt playing into the next call's MF signals), and the MF
        sender and receiver."""
        self._ringback = self._busy = False
        self._do(StopPlay())
        self._do(Tone(None))
        if self._sending:
            self._sending = 0
            self._do(MfSend(0, self.r2.line.direction is Direction.OUTGOING))
        if self._listening is not None:
            self._listening = None
            self._do(MfListen(None))

    # -- events of the line and the register ----------------------------------------
    def _line_event(self, tick: int, ev: r2a.LineEvent) -> None:
        K = r2a.LineEventKind
        call = self.call
        if ev.kind is K.SEIZED:
            self._cancel_timers()      # none of the last call's (its answer alarm) may reach this one
            call = self._start_call(tick, "inbound")
            self._set(State.RINGING, "seized")
            self._timer(tick, self.answer_alarm_ms, "answer_alarm")
        elif ev.kind is K.SEIZE_ACKNOWLEDGED:
            self._set(State.DIALING, "seize acknowledged")
        elif ev.kind is K.ANSWERED and call is not None:
            if call.answer_tick is None:
                self._answered_out(tick, "answer signal")
            else:
                self._set(State.CONNECTED, "answered again")
        elif ev.kind is K.CLEAR_BACK and call is not None:
            if self.variant.line.release_control != "calling":
                self._far_end_cleared(tick, "far end cleared back")
            else:   # held for the caller: the called party may answer again
                self._set(State.PROCEEDING, "far end cleared back: held (calling-party control)")
        elif ev.kind is K.CLEAR_FORWARD and call is not None:
            if self._gave_up_in_register(call):
                self._far_end_cleared(tick, REGISTER_GIVE_UP)
            elif self.variant.line.release_control != "called" or call.answer_tick is None:
                self._far_end_cleared(tick, "caller cleared forward")
        elif ev.kind is K.GLARE:
            if call is not None:
                self._do_stop_media()
                self._end_call(tick, "glare: the far end seized the line as we did")
            self._set(State.HANGUP, "glare")
        elif ev.kind is K.RELEASED:
            self._stop_busy()
            if call is not None:
                cause = ev.cause.value if ev.cause else "normal"
                self._do_stop_media()
                self._end_call(tick, call.data.get("failed") or f"released ({cause})")
            if self.state is not State.BLOCKED:
                self._set(State.HANGUP, "released")
        elif ev.kind is K.IDLE:
            self._pending_trace = []
            self._stop_busy()
            if self.state is State.HANGUP:
                self._set(State.IDLE, "line free")
        elif ev.kind is K.BLOCKED and ev.detail != "local":
            self._pending_trace = []
            self._set(State.BLOCKED, "blocked by the far end")
        elif ev.kind is K.UNBLOCKED and ev.detail != "local" and self.alarm is None:
            self._pending_trace = []
            self._set(State.IDLE, "unblocked by the far end")
        elif ev.kind is K.FAILED and call is not None:
            self._failed(tick, ev.cause or r2a.Cause.PROTOCOL_ERROR, 0)

    def _stop_busy(self) -> None:
        if self._busy:
            self._busy = False
            self._do(Tone(None))

    def _far_end_cleared(self, tick: int, reason: str) -> None:
        self._do_stop_media()
        if self.call is not None:
            reason = self.call.data.get("failed") or reason
        self._end_call(tick, reason)
        self.r2.clear(self.ms(tick))   # mutual: clear our side too (a no-op where the line did)
        self._set(State.HANGUP, reason)

    def _end_call(self, tick: int, reason: str, **more: Any) -> None:
        """As every channel's; a call whose caller gave up during register signalling had no
        call.offer, so its call.end carries what the register received."""
        call = self.call
        if call is not None and reason == REGISTER_GIVE_UP:
            more = {"dnis": call.data.get("dnis"), "ani": call.data.get("ani"),
                    "category": call.data.get("category"), **more}
        super()._end_call(tick, reason, **more)

    def _gave_up_in_register(self, call: Any) -> bool:
        """A caller who cleared forward before the register offered the call: what it had sent
        so far (DNIS and ANI digits, the category if it came) goes on the call, for its record
        and its call.end event."""
        reg = self.r2.ended_register
        if call.direction != "inbound" or "dnis" in call.data or not isinstance(reg, IncomingRegister):
            return False
        call.called = reg.dnis or None
        call.caller = reg.ani or None
        call.data.update(dnis=reg.dnis or None, ani=reg.ani or None,
                         category=self.variant.group_ii.name_of(reg.category) if reg.category else None)
        return True

    def _offered(self, tick: int, ev: r2a.CallOffered) -> None:
        call = self.call
        if call is None:
            return
        call.caller = ev.ani or None
        call.called = ev.dnis
        call.data.update(dnis=ev.dnis, ani=ev.ani or None, category=ev.category,
                         ani_restricted=ev.ani_restricted)
        decision = self.policy(ev.dnis, ev.ani, ev.category)
        now = self.ms(tick)
        if not decision.accept:
            call.data["failed"] = f"refused: {decision.cause.value}"
            self.r2.reject(now, decision.cause)
            return
        call.data["flow"] = decision.flow
        call.data["stage"] = decision.stage
        self.r2.accept(now, charge=decision.charge)

    def _ready(self, tick: int) -> None:
        """The accept cycle is over: the call rings for the controller, which answers."""
        call = self.call
        if call is None:
            return
        self._event(ServerEventKind.CALL_OFFER, call_id=call.call_id, caller=call.caller,
                    dnis=call.data.get("dnis"), ani=call.data.get("ani"),
                    category=call.data.get("category"))

    def _failed(self, tick: int, cause: r2a.Cause, signal: int) -> None:
        call = self.call
        if call is None:
            return
        if call.direction == "outbound":
            reason = OUTCOME_REASONS.get(cause, f"outbound {cause.value}")
            if signal:       # the backward signal that said so, in its group (A-4, B-2 ...)
                reason += f" ({getattr(self.r2.register, 'group', 'B')}-{signal})"
        else:
            reason = f"call setup failed: {cause.value}"
        call.data["failed"] = reason
        self._do_stop_media()
        self._end_call(tick, reason)
        if self.r2.line.direction is Direction.INCOMING:
            self.r2.clear(self.ms(tick))
        self._set(State.HANGUP, reason)

    def _on_answer_alarm(self, tick: int) -> None:
        call = self.call
        if call is not None and call.answer_tick is None:
            self._event(ServerEventKind.CALL_ANSWER_ALARM, call_id=call.call_id,
                        waited_ms=int((tick - call.start_tick) * 1000 / self.tps),
                        limit_ms=self.answer_alarm_ms)

    # -- the trace -------------------------------------------------------------------
    def _far_is_forward(self) -> bool:
        """The far end seized (or is seizing: no direction yet) this call."""
        return self.r2.line.direction is not Direction.OUTGOING

    @staticmethod
    def _group(reg: Any, forward: bool) -> str:
        """The group a signal belongs to, from the register's progress: forward I or II
        (the category), backward A, B or C."""
        if reg is None:
            return "I" if forward else "A"
        if not forward:
            return str(getattr(reg, "group", "A"))
        if isinstance(reg, IncomingRegister):
            expect = getattr(reg, "_expect", None)
            return "II" if expect is not None and expect.value in ("category", "category-b") else "I"
        if reg.group == "B" or (getattr(reg, "_ani_phase", False) and not getattr(reg, "_ani_index", 0)
                                and not getattr(reg, "_ani_done", False)):
            return "II"
        return "I"

    def _trace(self, direction: str, signal: str, meaning: str) -> None:
        """One signal of the exchange (a call.signal event). Signals before the call exists
        (the seizure itself) wait for its id: a call's trace starts with its seizure."""
        if not self.trace:
            return
        entry = {"dir": direction, "signal": signal, "meaning": meaning, "ms": self._last_ms}
        if self.call is None:
            self._pending_trace = self._pending_trace[-7:] + [entry]
            return
        self._event(ServerEventKind.CALL_SIGNAL, call_id=self.call.call_id, **entry)

    def _start_call(self, tick: int, direction: str, **kw: Any):  # noqa: ANN202 - a Call
        call = super()._start_call(tick, direction, **kw)
        pending, self._pending_trace = self._pending_trace, []
        for entry in pending:
            self._event(ServerEventKind.CALL_SIGNAL, call_id=call.call_id, **entry)
        return call


class R2Media:
    """The MF receivers and generators of one board's engine (see the module docstring)."""

    def __init__(self, nchan: int, level_dbm0: float = -8.0) -> None:
        self.nchan = nchan
        self.rx_sets = {True: R2MfReceiver(nchan, forward=True), False: R2MfReceiver(nchan, forward=False)}
        self.tx_sets = {True: R2MfGenerator(nchan, forward=True, level_dbm0=level_dbm0),
                        False: R2MfGenerator(nchan, forward=False, level_dbm0=level_dbm0)}
        self.listening: dict[int, bool] = {}          # chan -> the set it listens on
        self._count = {True: 0, False: 0}
        self._heard: set[int] = set()                  # an onset was delivered: its end will be
        self.sending: dict[int, bool] = {}            # chan -> the set of the tone it sends

    def listen(self, chan: int, forward: bool | None) -> None:
        old = self.listening.pop(chan, None)
        if old is not None:
            self._count[old] -= 1
        self._heard.discard(chan)
        if forward is not None:
            self.listening[chan] = forward
            self._count[forward] += 1

    def send(self, chan: int, signal: int, forward: bool) -> None:
        old = self.sending.pop(chan, None)
        if old is not None:
            self.tx_sets[old].stop(chan)
        if signal:
            self.tx_sets[forward].start(chan, signal)
            self.sending[chan] = forward

    def rx(self, block: np.ndarray) -> list[R2MfEvent]:
        """The MF signals heard this tick on the listening channels (one kernel call per set in use)."""
        out: list[R2MfEvent] = []
        for forward, receiver in self.rx_sets.items():
            if not self._count[forward]:
                continue
            for ev in receiver.rx(block):
                if self.listening.get(ev.chan) is not forward:
                    continue
                if ev.end is None:
                    self._heard.add(ev.chan)
                elif ev.chan not in self._heard:
                    continue            # the end of a signal that began before we listened
                else:
                    self._heard.discard(ev.chan)
                out.append(ev)
        return out

    def tx(self, out: np.ndarray) -> None:
        """Add the tones being sent into this tick's tx."""
        if not self.sending:
            return
        for forward, gen in self.tx_sets.items():
            if forward in self.sending.values():
                gen.tx(out)
