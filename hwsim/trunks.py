"""A caller arriving on an E1 CAS channel: China No.1 line signalling (sans-I/O).

The far exchange seizes the channel (forward 0011), the host acknowledges
(backward 1111), answers (0111), and either side clears: the caller with
clear-forward (1011, the host then returns to idle 1011), the host with
clear-back (1111 after answer; the caller then clears forward). This is
the far end of a span with `signalling = "line"`: no register phase (the
caller's number is only in the report). Spans with `signalling = "r2"`
(the default) have a full China No.1 exchange instead: hwsim.r2far.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from hwsim.calls import CallRecord
from hwsim.parties import Action, Party
from hwsim.ports import TrunkWorld

if TYPE_CHECKING:
    from hwsim.e1 import E1Span
    from hwsim.simtime import Timer

IDLE, SEIZE, SEIZE_ACK, ANSWER, CLEAR_BACK, CLEAR_FORWARD = 0b1011, 0b0011, 0b1111, 0b0111, 0b1111, 0b1011


class CasTrunk:
    """States: idle, seized (waiting for the host's acknowledge), alerting
    (acknowledged, waiting for answer), connected, clearing (caller cleared
    forward, waiting for the host's idle), cut (span alarm)."""

    def __init__(self, world: TrunkWorld, span: E1Span, chan: int) -> None:
        self.world = world
        self.span = span
        self.chan = chan
        self.state = "idle"
        self.host_offhook = False          # the interface _arrive checks (CAS has no hook)
        self.call: CallRecord | None = None
        self.party: Party | None = None
        self._timers: list[Timer] = []
        self._script: tuple[list[Action], float | None] = ([], None)
        self._dropped = False

    def _after(self, seconds: float, fn: Callable[[], None]) -> None:
        self._timers.append(self.world.timeline.after(self.world.clock.ticks(seconds), fn))

    def _cancel(self) -> None:
        for t in self._timers:
            t.cancel()
        self._timers.clear()

    # -- the scenario's side ---------------------------------------------------
    def offer(self, number: str | None, name: str | None, script: list[Action],
              hangup_after: float | None = None, give_up: float | None = None) -> CallRecord | None:
        if self.state != "idle":
            return None
        self.call = self.world.open_call(self.chan, "e1", "in", number=number, name=name)
        self._script = (script, hangup_after)
        self.state = "seized"
        self.span.far_cas(self.chan, SEIZE)
        if give_up is not None:
            self._after(give_up, self.caller_hangup)
        return self.call

    def caller_hangup(self) -> None:
        """The caller clears forward (from any state but idle)."""
        if self.state in ("idle", "clearing", "cut"):
            return
        self._cancel()
        if self.party is not None:
            self.party.stop()
            self.party = None
        w = self.world
        w.stop_audio(self.chan)
        call = self.call
        if call is not None and call.hangup is None:
            call.hangup = w.seconds
            call.who_hung_up = "caller" if call.answer is not None else "abandoned"
            w.unlisten(self.chan, call)
        self.span.far_cas(self.chan, CLEAR_FORWARD)
        self.state = "clearing"
        if int(self.span.cas_tx[self.chan - self.span.cfg.first_chan]) == IDLE and self.state == "clearing":
            self._idle()

    def cut(self) -> None:
        self._dropped = self.state != "idle"
        if self.call is not None and self.call.hangup is None:
            self.call.hangup = self.world.seconds
            self.call.who_hung_up = "fault"
            self.world.unlisten(self.chan, self.call)
        self._cancel()
        if self.party is not None:
            self.party.stop()
            self.party = None
        self.world.stop_audio(self.chan)
        if self.call is not None:
            self.world.close_call(self.call)
            self.call = None
        self.state = "cut"

    def restore(self) -> None:
        if self.state == "cut":
            self.state = "idle"
            if self._dropped:       # the call's bits go back to idle; others are left alone
                self.span.far_cas(self.chan, IDLE)

    def _idle(self) -> None:
        if self.call is not None:
            self.call.released = self.world.seconds
            self.world.close_call(self.call)
            self.call = None
        self.state = "idle"

    # -- the host's side -------------------------------------------------------
    def host_cas(self, abcd: int) -> None:
        w = self.world
        if self.state == "seized" and abcd == SEIZE_ACK:
            self.state = "alerting"
        elif self.state == "alerting" and abcd == ANSWER:
            self._cancel()                  # the give-up timer
            self.state = "connected"
            assert self.call is not None
            self.call.answer = w.seconds
            w.listen(self.chan)
            script, hangup_after = self._script
            self.party = w.party(self.chan, script, hangup_after, self.caller_hangup,
                                 flash=None, call=self.call)
            self.party.start()
        elif self.state == "connected" and abcd == CLEAR_BACK:
            if self.party is not None:
                self.party.stop()
                self.party = None
            w.stop_audio(self.chan)
            assert self.call is not None
            self.call.hangup = w.seconds
            self.call.who_hung_up = "host"
            w.unlisten(self.chan, self.call)
            self.span.far_cas(self.chan, CLEAR_FORWARD)
            self.state = "clearing"
        elif self.state == "clearing" and abcd == IDLE:
            self._idle()
        elif self.state in ("seized", "alerting") and abcd == IDLE and self.call is not None:
            # the host refused or released before answer (e.g. blocked): the caller gives up
            self._cancel()
            self.call.hangup = w.seconds
            self.call.who_hung_up = "host"
            self.span.far_cas(self.chan, CLEAR_FORWARD)
            self.state = "clearing"
            self._idle()
