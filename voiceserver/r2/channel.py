"""One R2 trunk channel: the line signalling and, during call setup, a register.

This is the piece a server drives per E1 channel: it wires the register to
the line (a seizure acknowledged starts the outgoing register, a seizure
received starts the incoming one; an accept arms the answer timer, a
failed setup clears the line, a release stops the register) so the call
layer sees one stream of actions and events::

    ch = R2Channel(load_variant("cn"))
    ch.call(now, dnis="12345", ani="8675309")   # or wait for LineEvent(SEIZED)
    ch.rx_bits("1111", now)                     # from timeslot 16
    ch.mf(signal, on=True, now=now)             # from dsp.r2mf.R2MfReceiver
    ch.timer(name, now)                         # a StartTimer it asked for fired
    for action in ch.take(): ...                # SetBits, MfStart/MfStop, timers, events

Timer names of the line and the register never collide, so one timer
queue per channel serves both.
"""
from __future__ import annotations

from voiceserver.r2.actions import Action, CallAccepted, CallFailed, Cause, LineEvent, LineEventKind, Outbox
from voiceserver.r2.line import Direction, LineSignalling, LineState
from voiceserver.r2.register import IncomingRegister, OutgoingRegister
from voiceserver.r2.variants import Variant

__all__ = ["R2Channel"]


class R2Channel:
    """Line plus register of one channel; see the module docstring."""

    def __init__(self, variant: Variant, now: int = 0) -> None:
        self.v = variant
        self.line = LineSignalling(variant, now)
        self.register: OutgoingRegister | IncomingRegister | None = None
        # the register a release or clear-forward cut short, kept for what it had received
        # (the digits of a caller who gave up during register signalling go on the call record)
        self.ended_register: OutgoingRegister | IncomingRegister | None = None
        self._call: tuple[str, str, str, bool] | None = None   # outgoing call waiting for the seize ack
        self.box = Outbox()
        self._pump(now)

    # -- inputs -------------------------------------------------------------
    def call(self, now: int, dnis: str, ani: str = "", category: str = "national_subscriber",
             ani_restricted: bool = False) -> bool:
        """Seize the line for an outgoing call; False if it is not free."""
        OutgoingRegister(self.v, dnis, ani, category, ani_restricted)   # check the arguments now
        if not self.line.seize(now):
            return False
        self._call = (dnis, ani, category, ani_restricted)
        self._pump(now)
        return True

    def rx_bits(self, abcd: str, now: int) -> None:
        self.line.rx_bits(abcd, now)
        self._pump(now)

    def mf(self, signal: int, on: bool, now: int) -> None:
        """An MF signal started (on) or ended, as the receiver reported it."""
        reg = self.register
        if reg is not None:
            if on:
                reg.mf_on(signal, now)
            else:
                reg.mf_off(now)
        self._pump(now)

    def timer(self, name: str, now: int) -> None:
        if name in self.line.box.timers:
            self.line.timer(name, now)
        elif self.register is not None and name in self.register.box.timers:
            self.register.timer(name, now)
        self._pump(now)

    def accept(self, now: int, charge: bool = True) -> None:
        if isinstance(self.register, IncomingRegister):
            self.register.accept(now, charge)
        self._pump(now)

    def reject(self, now: int, cause: Cause) -> None:
        if isinstance(self.register, IncomingRegister):
            self.register.reject(now, cause)
        self._pump(now)

    def answer(self, now: int, double: bool | None = None) -> bool:
        ok = self.line.answer(now, double)
        self._pump(now)
        return ok

    def clear(self, now: int) -> None:
        self.line.clear(now)
        self._pump(now)

    def block(self, now: int) -> None:
        self.line.block(now)
        self._pump(now)

    def unblock(self, now: int) -> None:
        self.line.unblock(now)
        self._pump(now)

    # -- outputs ------------------------------------------------------------
    def take(self) -> list[Action]:
        return self.box.take()

    @property
    def state(self) -> LineState:
        return self.line.state

    def _pump(self, now: int) -> None:
        """Move what line and register produced to our outbox, reacting to what links them."""
        while True:
            actions = self.line.take()
            if self.register is not None:
                actions += self.register.take()
            if not actions:
                return
            for a in actions:
                self.box.do(a)
                if isinstance(a, LineEvent):
                    self._line_event(a, now)
                elif isinstance(a, CallAccepted):
                    self.line.await_answer(now)
                elif isinstance(a, CallFailed) and self.line.direction is Direction.OUTGOING:
                    self.line.clear(now)

    def _line_event(self, ev: LineEvent, now: int) -> None:
        if ev.kind is LineEventKind.SEIZE_ACKNOWLEDGED and self._call is not None:
            dnis, ani, category, restricted = self._call
            self._call = None
            self.register = OutgoingRegister(self.v, dnis, ani, category, restricted)
            self.register.start(now)
        elif ev.kind is LineEventKind.SEIZED:
            self.register = IncomingRegister(self.v)
            self.ended_register = None
            self.register.start(now)
        elif ev.kind in (LineEventKind.RELEASED, LineEventKind.GLARE, LineEventKind.CLEAR_FORWARD):
            self._call = None
            if self.register is not None:
                self.register.abort(now)
                self.box.actions.extend(self.register.take())
                self.ended_register = self.register
                self.register = None
