"""R2 register signalling (ITU-T Q.440-Q.442 compelled MF), outgoing and incoming, without I/O.

The compelled cycle, one signal each way at a time:

    outgoing (forward)            incoming (backward)
    starts a forward signal  -->  sees it start: decides, starts a backward signal
    sees it start: stops     <--
                             -->  sees the forward end: stops its own
    sees the backward end: acts on it (next forward signal, or outcome)

Forward signals: group I (digits 1-10, 10 is 0; end of DNIS, end of ANI,
ANI restricted) and group II (the calling party category). Backward:
group A (send next DNIS digit, digit n-1..n-3, category, next ANI digit,
change to group B, congestion), group B (the outcome: accept with or
without charge, busy, congestion, unallocated, out of order) and, in
Mexico, group C. The signal numbers of each meaning are the variant's
(variants.py).

Where a variant has no end-of-DNIS signal (China), the outgoing register
falls silent when it has no more digits; the incoming register's cycle
timer (``mf_back_cycle``) runs out, it takes the DNIS as complete and
sends its next request as a pulse (``mf_pulse`` ms), which the outgoing
register acts on when it ends.

Inputs are what an MF receiver reports (dsp.r2mf.R2MfReceiver: a signal
1-15 starts, then ends), timer expiries and the call layer's commands;
outputs (``take()``) are MfStart/MfStop, timers and events. Time in ms.
"""
from __future__ import annotations

from enum import Enum

from voiceserver.r2.actions import (
    Action,
    CallAccepted,
    CallFailed,
    CallOffered,
    Cause,
    MfStart,
    MfStop,
    Outbox,
    ReadyToAnswer,
)
from voiceserver.r2.variants import Variant

__all__ = ["OutgoingRegister", "IncomingRegister", "RegisterState", "digit_signal", "signal_digit"]


def digit_signal(digit: str) -> int:
    """Group I signal of a digit: 1-9, and 10 for 0."""
    if len(digit) != 1 or not digit.isdigit():
        raise ValueError(f"not a digit: {digit!r}")
    return 10 if digit == "0" else int(digit)


def signal_digit(signal: int) -> str:
    return "0" if signal == 10 else str(signal)


def _check_number(what: str, number: str) -> str:
    if any(c not in "0123456789" for c in number):
        raise ValueError(f"{what} must be digits 0-9, got {number!r}")
    return number


class RegisterState(str, Enum):
    IDLE = "idle"            # not started
    SIGNALLING = "signalling"
    OFFERED = "offered"      # incoming: waiting for accept() or reject()
    DONE = "done"            # an outcome was reported (or the setup failed)


class _Register:
    forward = True

    def __init__(self, variant: Variant) -> None:
        self.v = variant
        self.t = variant.timers
        self.box = Outbox()
        self.state = RegisterState.IDLE
        self.tx = 0              # the signal we send now (0: none)
        self.rx = 0              # the signal we receive now (0: none)
        self._now = 0

    def take(self) -> list[Action]:
        return self.box.take()

    def timer(self, name: str, now: int) -> None:
        self._clock(now)
        if self.box.due(name, now):
            getattr(self, f"_on_{name}")(now)

    def _clock(self, now: int) -> None:
        if now < self._now:
            raise ValueError(f"time went backwards: {now} < {self._now}")
        self._now = now

    def _tone(self, signal: int) -> None:
        if not 1 <= signal <= 15:
            raise ValueError(f"MF signal {signal} outside 1..15 (a 0 in the variant table?)")
        self.tx = signal
        self.box.do(MfStart(signal, self.forward))

    def _silence(self) -> None:
        if self.tx:
            self.tx = 0
            self.box.do(MfStop(self.forward))

    def _fail(self, cause: Cause, signal: int = 0, detail: str = "") -> None:
        self._silence()
        self.box.stop_all()
        self.state = RegisterState.DONE
        self.box.do(CallFailed(cause, signal, detail))

    def abort(self, now: int) -> None:
        """The line went down: stop sending, forget the call (no event)."""
        self._clock(now)
        self._silence()
        self.box.stop_all()
        self.state = RegisterState.DONE


class OutgoingRegister(_Register):
    """Sends the DNIS, category and ANI of one outgoing call; reports the far end's answer."""

    forward = True

    def __init__(self, variant: Variant, dnis: str, ani: str = "", category: str = "national_subscriber",
                 ani_restricted: bool = False) -> None:
        super().__init__(variant)
        if not dnis:
            raise ValueError("an outgoing call needs at least one DNIS digit")
        self.dnis = _check_number("DNIS", dnis)
        self.ani = _check_number("ANI", ani)
        self.category_signal = variant.group_ii.signal_of(category)
        self.ani_restricted = ani_restricted
        self.group = "A"            # the backward group we are answered in
        self._dnis_index = 0        # the DNIS digit sent last
        self._dnis_ended = False    # end of DNIS signal sent
        self._ani_index = 0
        self._ani_phase = False     # the category was asked for; ANI requests follow
        self._ani_done = False

    def start(self, now: int) -> None:
        """The line's seizure was acknowledged: send the first DNIS digit."""
        self._clock(now)
        self.state = RegisterState.SIGNALLING
        self._send(digit_signal(self.dnis[0]), now)

    def _send(self, signal: int, now: int) -> None:
        self._tone(signal)
        self.box.start("mf_fwd_safety", now, self.t.mf_fwd_safety)

    def _wait_silent(self, now: int) -> None:
        """Nothing to send: the incoming register will time out and tell us what next."""
        self.box.start("mf_fwd_safety", now, self.t.mf_fwd_safety)

    def mf_on(self, signal: int, now: int) -> None:
        """A backward signal started: compelled, we stop ours."""
        self._clock(now)
        if self.state is not RegisterState.SIGNALLING or signal == self.rx:
            return
        if self.rx:
            self._fail(Cause.PROTOCOL_ERROR, signal, f"backward {signal} began while {self.rx} was on")
            return
        self.rx = signal
        self._silence()

    def mf_off(self, now: int) -> None:
        """The backward signal ended: act on it."""
        self._clock(now)
        signal, self.rx = self.rx, 0
        if self.state is not RegisterState.SIGNALLING or not signal:
            return
        if self.group == "B":
            self._group_b(signal, now)
        elif self.group == "C":
            self._group_c(signal, now)
        else:
            self._group_a(signal, now)

    def _group_a(self, s: int, now: int) -> None:
        a = self.v.group_a
        if self._ani_phase and not self._ani_done and s == a.next_ani:
            self._send_ani(now)
        elif s == a.next_dnis:
            self._send_dnis(1, now)
        elif s in (a.dnis_minus_1, a.dnis_minus_2, a.dnis_minus_3) and s:
            back = (a.dnis_minus_1, a.dnis_minus_2, a.dnis_minus_3).index(s) + 1
            self._send_dnis(-back, now)
        elif a.all_dnis_again and s == a.all_dnis_again:
            self._dnis_index, self._dnis_ended = 0, False
            self._send_dnis(0, now)
        elif a.category and s == a.category:
            self._ani_phase = True
            self._send(self.category_signal, now)
        elif a.category_and_change_to_c and s == a.category_and_change_to_c:
            self._ani_phase = True
            self.group = "C"
            self._send(self.category_signal, now)
        elif s == a.change_to_b:
            self.group = "B"
            self._send(self.category_signal, now)
        elif a.address_complete_charge and s == a.address_complete_charge:
            self._accepted(s, charge=True)
        elif s == a.congestion:
            self._fail(Cause.CONGESTION, s)
        else:
            self._fail(Cause.PROTOCOL_ERROR, s, f"group A signal {s} means nothing here")

    def _group_c(self, s: int, now: int) -> None:
        c = self.v.group_c
        if s == c.next_ani:
            self._send_ani(now)
        elif s == c.change_to_b:
            self.group = "B"
            self._send(self.category_signal, now)
        elif s == c.next_dnis_change_to_a:
            self.group = "A"
            self._send_dnis(1, now)
        elif s == c.congestion:
            self._fail(Cause.CONGESTION, s)
        else:
            self._fail(Cause.PROTOCOL_ERROR, s, f"group C signal {s} means nothing here")

    def _group_b(self, s: int, now: int) -> None:
        b = self.v.group_b
        if s == b.accept_charge:
            self._accepted(s, charge=True)
        elif b.accept_no_charge and s == b.accept_no_charge:
            self._accepted(s, charge=False)
        elif b.special_info and s == b.special_info:
            self._accepted(s, charge=True, special_info=True)
        else:
            causes = ((b.busy, Cause.BUSY), (b.congestion, Cause.CONGESTION), (b.unallocated, Cause.UNALLOCATED),
                      (b.out_of_order, Cause.OUT_OF_ORDER), (b.number_changed, Cause.NUMBER_CHANGED))
            for signal, cause in causes:
                if signal and s == signal:
                    self._fail(cause, s)
                    return
            self._fail(Cause.PROTOCOL_ERROR, s, f"group B signal {s} means nothing in this variant")

    def _accepted(self, signal: int, charge: bool, special_info: bool = False) -> None:
        self.box.stop_all()
        self.state = RegisterState.DONE
        self.box.do(CallAccepted(charge, signal, special_info))

    def _send_dnis(self, step: int, now: int) -> None:
        if step < 0:
            self._dnis_index = max(0, self._dnis_index + step)
        else:
            self._dnis_index += step
        if self._dnis_index < len(self.dnis):
            self._send(digit_signal(self.dnis[self._dnis_index]), now)
        elif self.v.group_i.end_of_dnis and not self._dnis_ended:
            self._dnis_ended = True
            self._send(self.v.group_i.end_of_dnis, now)
        else:
            self._dnis_index = len(self.dnis)
            self._wait_silent(now)

    def _send_ani(self, now: int) -> None:
        i = self.v.group_i
        if self.ani_restricted and i.ani_restricted:
            self._ani_done = True
            self._send(i.ani_restricted, now)
        elif self._ani_index < len(self.ani) and not self.ani_restricted:
            self._send(digit_signal(self.ani[self._ani_index]), now)
            self._ani_index += 1
        elif i.end_of_ani:
            self._ani_done = True
            self._send(i.end_of_ani, now)
        else:
            self._ani_done = True
            self._wait_silent(now)

    def _on_mf_fwd_safety(self, now: int) -> None:
        self._fail(Cause.MF_TIMEOUT, detail="no backward signal")


class _Expect(str, Enum):
    DNIS = "dnis"
    CATEGORY = "category"          # asked for with group A (or C): ANI follows
    ANI = "ani"
    CATEGORY_B = "category-b"      # asked for with change to group B: the offer follows
    FINISH = "finish"              # a group B signal is on; done when the forward signal ends


class IncomingRegister(_Register):
    """Collects DNIS, ANI and category of one incoming call, then sends the call layer's outcome."""

    forward = False

    def __init__(self, variant: Variant) -> None:
        super().__init__(variant)
        self.dnis = ""
        self.ani = ""
        self.category = 0
        self.ani_restricted = False
        self.group = "A"            # the backward group we are answering in
        self._expect = _Expect.DNIS
        self._dnis_complete = False
        self._category_done = False
        self._accepted_charge: bool | None = None
        self._pulsing = False

    def start(self, now: int) -> None:
        """The line acknowledged the seizure: wait for the first digit."""
        self._clock(now)
        self.state = RegisterState.SIGNALLING
        self.box.start("mf_cycle", now, self.t.mf_back_cycle)

    def mf_on(self, signal: int, now: int) -> None:
        """A forward signal started: answer it with the next request."""
        self._clock(now)
        if self.state not in (RegisterState.SIGNALLING, RegisterState.OFFERED) or signal == self.rx:
            return
        if self.rx:
            self._fail(Cause.PROTOCOL_ERROR, signal, f"forward {signal} began while {self.rx} was on")
            return
        self.rx = signal
        self.box.stop("mf_cycle")
        if self._pulsing:          # the forward end did not wait for our pulse to end
            self.box.stop("mf_pulse")
            self._pulsing = False
            self._silence()
        reply = self._receive(signal)
        if reply:
            self._tone(reply)
            self.box.start("mf_cycle", now, self.t.mf_back_cycle)

    def mf_off(self, now: int) -> None:
        """The forward signal ended: end ours; wait for the next one (or finish)."""
        self._clock(now)
        if not self.rx:
            return
        self.rx = 0
        if self.state is not RegisterState.SIGNALLING:
            return
        self._silence()
        self.box.stop("mf_cycle")
        if self._expect is _Expect.FINISH:
            self._finish(now)
        else:
            self.box.start("mf_cycle", now, self.t.mf_back_cycle)

    # -- decisions ----------------------------------------------------------
    def _receive(self, s: int) -> int:
        """The reply (backward signal) to forward signal s; 0 for none (an offer, or a failure)."""
        i = self.v.group_i
        if self._expect is _Expect.DNIS:
            if 1 <= s <= 10:
                if len(self.dnis) < self.v.register.max_dnis:
                    self.dnis += signal_digit(s)
                if len(self.dnis) >= self.v.register.max_dnis:
                    self._dnis_complete = True
                return self._next_request()
            if i.end_of_dnis and s == i.end_of_dnis:
                self._dnis_complete = True
                return self._next_request()
        elif self._expect is _Expect.CATEGORY:
            self.category = s
            self._category_done = True
            self._expect = _Expect.ANI
            return self._next_ani_request()
        elif self._expect is _Expect.ANI:
            if 1 <= s <= 10:
                if len(self.ani) < self.v.register.max_ani:
                    self.ani += signal_digit(s)
                return self._next_ani_request()
            # (where one signal means both, as in Mexico: restricted if no digit came)
            if i.ani_restricted and s == i.ani_restricted and (s != i.end_of_ani or not self.ani):
                self.ani_restricted = True
                return self._after_ani()
            if i.end_of_ani and s == i.end_of_ani:
                return self._after_ani()
        elif self._expect is _Expect.CATEGORY_B:
            self.category = s
            self._category_done = True
            self._offer()
            return 0
        self._fail(Cause.PROTOCOL_ERROR, s, f"forward signal {s} while expecting {self._expect.value}")
        return 0

    def _next_ani_request(self) -> int:
        if self.group == "C":
            return self.v.group_c.next_ani
        return self.v.group_a.next_ani

    def _after_ani(self) -> int:
        self._expect = _Expect.DNIS
        return self._next_request()

    def _next_request(self) -> int:
        a, c, r = self.v.group_a, self.v.group_c, self.v.register
        wants_ani = r.max_ani > 0 and not self._category_done
        if wants_ani and (self._dnis_complete or (r.ani_after_dnis_digits and
                                                  len(self.dnis) >= r.ani_after_dnis_digits)):
            self._expect = _Expect.CATEGORY
            if a.category:
                return a.category
            self.group = "C"
            return a.category_and_change_to_c
        if self._dnis_complete:
            self._expect = _Expect.CATEGORY_B
            if self.group == "C" and c.change_to_b:
                return c.change_to_b
            self.group = "B"
            return a.change_to_b
        self._expect = _Expect.DNIS
        if self.group == "C":
            self.group = "A"
            return c.next_dnis_change_to_a
        return a.next_dnis

    def _offer(self) -> None:
        self.state = RegisterState.OFFERED
        self.group = "B"
        self.box.start("offer", self._now, self.t.offer)
        self.box.do(CallOffered(self.dnis, self.ani, self.v.group_ii.name_of(self.category), self.ani_restricted))

    def _on_mf_cycle(self, now: int) -> None:
        if self.state is not RegisterState.SIGNALLING:
            return
        if self.tx or self.rx:
            self._fail(Cause.MF_TIMEOUT, detail="compelled cycle not completed")
            return
        if self._expect is _Expect.DNIS and self.dnis and self.v.register.dnis_end == "timeout":
            self._dnis_complete = True          # no more digits: the end of DNIS by timeout
            self._pulse(self._next_request(), now)
        elif self._expect is _Expect.ANI and (not self.v.group_i.end_of_ani
                                              or self.v.register.dnis_end == "timeout"):
            # ANI ended by silence: where the variant has no end-of-ANI signal, and where the
            # DNIS too ends by timeout, as OpenR2 takes it (its China caller answers A-1 after
            # the category with DNIS digits and, having none left, falls silent)
            self._pulse(self._after_ani(), now)
        else:
            self._fail(Cause.MF_TIMEOUT, detail=f"no forward signal (expecting {self._expect.value})")

    def _pulse(self, signal: int, now: int) -> None:
        self._tone(signal)
        self._pulsing = True
        self.box.start("mf_pulse", now, self.t.mf_pulse)

    def _on_mf_pulse(self, now: int) -> None:
        self._pulsing = False
        self._silence()
        if self.state is RegisterState.SIGNALLING:
            self.box.start("mf_cycle", now, self.t.mf_back_cycle)

    # -- the call layer's decision ------------------------------------------
    def accept(self, now: int, charge: bool = True) -> None:
        """Accept the offered call (group B: with or without charge)."""
        self._clock(now)
        if self.state is not RegisterState.OFFERED:
            raise RuntimeError(f"accept() in register state {self.state.value}")
        b = self.v.group_b
        signal = b.accept_charge if charge or not b.accept_no_charge else b.accept_no_charge
        self._accepted_charge = charge
        self._decide(signal, now)

    def reject(self, now: int, cause: Cause) -> None:
        """Refuse the call: a group B signal once offered, group A congestion before."""
        self._clock(now)
        if self.state is RegisterState.OFFERED:
            b = self.v.group_b
            by_cause = {Cause.BUSY: b.busy, Cause.CONGESTION: b.congestion, Cause.UNALLOCATED: b.unallocated,
                        Cause.OUT_OF_ORDER: b.out_of_order, Cause.NUMBER_CHANGED: b.number_changed}
            signal = by_cause.get(cause, 0) or b.congestion
            self._decide(signal, now)
        elif self.state is RegisterState.SIGNALLING:
            self.box.stop_all()
            self._expect = _Expect.FINISH
            self._silence()
            if self.rx:
                self._tone(self.v.group_a.congestion)
                self.box.start("mf_cycle", now, self.t.mf_back_cycle)
            else:
                self._pulse(self.v.group_a.congestion, now)
                self.state = RegisterState.DONE

    def _decide(self, signal: int, now: int) -> None:
        self.box.stop("offer")
        self.state = RegisterState.SIGNALLING
        self._expect = _Expect.FINISH
        if self.rx:              # compelled: the category is still on
            self._tone(signal)
            self.box.start("mf_cycle", now, self.t.mf_back_cycle)
        else:                    # it went away meanwhile: a pulse
            self._pulse(signal, now)
            self._finish(now)

    def _on_offer(self, now: int) -> None:
        if self.state is RegisterState.OFFERED:
            self.reject(now, Cause.CONGESTION)
            self.box.do(CallFailed(Cause.MF_TIMEOUT, detail="the call layer did not accept or reject in time"))

    def _finish(self, now: int) -> None:
        self.box.stop("mf_cycle")
        self.state = RegisterState.DONE
        if self._accepted_charge is not None:
            self.box.start("answer_delay", now, self.t.answer_delay)

    def _on_answer_delay(self, now: int) -> None:
        if self._accepted_charge is not None:
            self.box.do(ReadyToAnswer(self._accepted_charge))
