"""The carrier's exchange at the far end of an E1 channel: China No.1 (sans-I/O).

One `R2Trunk` per E1 CAS channel of a span whose `signalling` is "r2". It
speaks China No.1 both ways, with hwsim's own MF R2 tones (hwsim.r2mf),
independently of the host's implementation:

- line signalling in the ABCD bits (C and D fixed at 1): idle 1011; forward
  seize 0011 and clear-forward 1011; backward seize-acknowledge 1111,
  answer 0111, clear-back 1111, blocked 1111 (while idle);
- the compelled MF R2 register cycle (ITU-T Q.440-Q.442, China meanings):
  forward group I (digits, I-15 end of ANI, I-12 ANI restricted) and
  group II (calling party category); backward group A (A-1 next digit,
  A-2/A-7/A-8 digit n-1/n-2/n-3, A-3 change to group B, A-4 congestion,
  A-6 send the category and ANI) and group B (B-1 accept with charge, B-7
  without, B-2 busy, B-4 congestion, B-5 unallocated, B-8 out of order).

As the calling side (a scenario caller): seize, wait for the acknowledge,
send the DNIS digit by digit as the host asks, the category and ANI when
it sends A-6, fall silent at the end of the DNIS (China: the host's
timeout ends it, with A-3 as a pulse), the category again in group II,
then act on the B signal: wait for answer or clear forward.

As the called side (the host seized): acknowledge, answer each forward
signal (A-6 after the first DNIS digit for category and ANI, A-1 for the
rest), end the DNIS by timeout with an A-3 pulse, give the B signal the
scenario's plan for the number asks for, answer after its delay or not.

The world feeds it the host's ABCD bits (`host_cas`), the MF signals its
detector heard from the host (`mf`: a signal number when one starts, 0
when it ends) and runs its timers; it plays tones and sets bits through
the world and its span.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from hwsim.calls import CallRecord
from hwsim.e1signals import B_RESULTS, B_SIGNAL, R2Timers, category_name, category_signal
from hwsim.parties import Action, Party
from hwsim.ports import R2World
from hwsim.r2mf import RATE, mf_tone
from hwsim.scenario import OutboundPlan

if TYPE_CHECKING:
    from hwsim.e1 import E1Span
    from hwsim.simtime import Timer

IDLE, SEIZE, SEIZE_ACK, ANSWER, CLEAR_BACK, CLEAR_FORWARD, BLOCKED = (
    0b1011, 0b0011, 0b1111, 0b0111, 0b1111, 0b1011, 0b1111)

# group A (backward, during the address)
A_NEXT, A_N_MINUS_1, A_GROUP_B, A_CONGESTION, A_CATEGORY, A_N_MINUS_2, A_N_MINUS_3 = 1, 2, 3, 4, 6, 7, 8
# group I (forward)
I_END_OF_ANI, I_ANI_RESTRICTED = 15, 12
def digit_signal(digit: str) -> int:
    """'1'-'9' -> 1-9, '0' -> 10."""
    return 10 if digit == "0" else int(digit)


def signal_digit(signal: int) -> str:
    return "0" if signal == 10 else str(signal)


class R2Trunk:
    """States: idle, blocked (the far end blocked it), cut (span alarm);
    the far end calling: seized, register, accepted, connected, clearing;
    the host calling: incoming (register), ringing, connected, clear-back,
    rejected (a B failure, waiting for the host's clear-forward)."""

    def __init__(self, world: R2World, span: E1Span, chan: int, timers: R2Timers | None = None) -> None:
        self.world = world
        self.span = span
        self.chan = chan
        self.t = timers or R2Timers()
        self.state = "idle"
        self.direction: str | None = None   # "in": the far end called; "out": the host did
        self.call: CallRecord | None = None
        self.party: Party | None = None
        self._timers: list[Timer] = []
        self._cycle: Timer | None = None
        self._script: tuple[list[Action], float | None] = ([], None)
        self._dropped = False
        self._before_cut = "idle"
        self._block_after = False
        self._seize_timer: Timer | None = None
        self._hold_timer: Timer | None = None
        self.clear_back_hold = 0.0    # the caller keeps the call this long after a clear-back
        # calling-side register
        self.dnis = ""
        self.ani: str | None = None
        self.category = 1
        self._dnis_pos = 0
        self._ani_pos = 0
        self._ani_mode = False
        self._group = "A"
        self._tone = 0                # our MF signal playing (0: none)
        self._heard = 0               # the host's MF signal on (0: none)
        # called-side register
        self._stage = "dnis"          # dnis | category-for-ani | ani | category-for-b | done
        self._digits: list[str] = []
        self._ani_digits: list[str] = []
        self._ani_asked = False
        self._answer: OutboundPlan | None = None

    # ------------------------------------------------------------------ helpers
    @property
    def host_bits(self) -> int:
        return int(self.span.cas_tx[self.chan - self.span.cfg.first_chan])

    @property
    def host_offhook(self) -> bool:
        """The host's bits are not idle (it seized, answered or blocked): no caller can seize it."""
        return self.host_bits != IDLE

    def _after(self, seconds: float, fn: Callable[[], None]) -> Timer:
        t = self.world.timeline.after(self.world.clock.ticks(seconds), fn)
        self._timers.append(t)
        return t

    def _cancel(self) -> None:
        for t in self._timers:
            t.cancel()
        self._timers.clear()
        self._cycle = None

    def _log(self, direction: str, what: str) -> None:
        if self.call is not None:
            self.call.r2.append({"at": self.world.seconds, "dir": direction, "signal": what})

    def _bits(self, abcd: int, meaning: str) -> None:
        self._log("tx", f"ABCD {abcd:04b} {meaning}")
        self.span.far_cas(self.chan, abcd)

    def _send_mf(self, signal: int, group: str, pulse: bool = False) -> None:
        """Start our MF signal (compelled: until the host answers it), or a pulse."""
        forward = self.direction == "in"
        self._log("tx", f"MF {group}-{signal}" + (" pulse" if pulse else ""))
        if pulse:
            n = int(round(self.t.mf_pulse * RATE))
            self.world.play(self.chan, self.world.clip(mf_tone(signal, forward, n),
                                                       f"r2:{forward}:{signal}:{n}"))
            self._tone = 0
        else:
            self.world.play(self.chan, self.world.clip(mf_tone(signal, forward), f"r2:{forward}:{signal}"),
                            loop=True)
            self._tone = signal

    def _stop_mf(self) -> None:
        if self._tone:
            self.world.stop_audio(self.chan)
            self._tone = 0

    def _cycle_timer(self, seconds: float, fn: Callable[[], None]) -> None:
        if self._cycle is not None:
            self._cycle.cancel()
        self._cycle = self._after(seconds, fn)

    def _stop_register(self) -> None:
        self._stop_mf()
        if self._cycle is not None:
            self._cycle.cancel()
            self._cycle = None
        self.world.mf_unlisten(self.chan)
        self._heard = 0

    def _end_party(self) -> None:
        if self.party is not None:
            self.party.stop()
            self.party = None

    def _hangup(self, who: str, result: str | None = None) -> None:
        call = self.call
        if call is not None and call.hangup is None:
            call.hangup = self.world.seconds
            call.who_hung_up = who
            if result is not None:
                call.result = result
            self.world.unlisten(self.chan, call)

    def _release(self) -> None:
        """Both ends idle: the call record closes."""
        self._cancel()
        self._stop_register()
        self._end_party()
        self.world.stop_audio(self.chan)
        if self.call is not None:
            if self.call.hangup is None:
                self._hangup("host")
            self.call.released = self.world.seconds
            self.world.close_call(self.call)
            self.call = None
        self.state = "idle"
        self.direction = None
        if self._block_after:
            self._block_after = False
            self.block()

    # ---------------------------------------------------------------- the scenario's side
    def offer(self, number: str | None, name: str | None, script: list[Action],
              hangup_after: float | None = None, give_up: float | None = None, *,
              called: str | None = None, category: str | int | None = None,
              clear_back_hold: float = 0.0) -> CallRecord | None:
        """A caller behind the exchange calls the host: ANI `number`, DNIS `called`.
        `clear_back_hold`: after the host clears back, the caller waits this long for a
        re-answer before it clears forward (calling-party release control)."""
        if self.state != "idle" or self.host_bits != IDLE:
            return None
        self.direction = "in"
        self.dnis = called or ""
        self.ani = number
        self.category = category_signal(category)
        self._dnis_pos = self._ani_pos = 0
        self._ani_mode = False
        self._group = "A"
        self.call = self.world.open_call(self.chan, "e1", "in", number=number, name=name,
                                         called=called, category=category_name(self.category))
        self._script = (script, hangup_after)
        self.clear_back_hold = clear_back_hold
        self.state = "seized"
        self._bits(SEIZE, "seize")
        self._seize_timer = self._after(self.t.seize_ack, self._no_seize_ack)
        if give_up is not None:
            self._after(give_up, self.caller_hangup)
        return self.call

    def caller_hangup(self) -> None:
        """The far party hangs up: clear forward (calling) or clear back (called)."""
        if self.direction == "out":
            if self.state == "connected":
                self._end_party()
                self.world.stop_audio(self.chan)
                self._hangup("caller")
                self._bits(CLEAR_BACK, "clear-back")
                self.state = "clear-back"
            return
        if self.state not in ("seized", "register", "accepted", "connected", "held"):
            return
        who = {"connected": "caller", "held": "host"}.get(self.state, "abandoned")
        self._clear_forward(who)

    def _clear_forward(self, who: str, result: str | None = None) -> None:
        self._cancel()
        self._stop_register()
        self._end_party()
        self.world.stop_audio(self.chan)
        self._hangup(who, result)
        self._bits(CLEAR_FORWARD, "clear-forward")
        self.state = "clearing"
        if self.host_bits == IDLE:
            self._release()

    def _no_seize_ack(self) -> None:
        if self.state == "seized":
            assert self.call is not None
            self.call.notes.append(f"no seize acknowledge within {self.t.seize_ack} s")
            self._clear_forward("abandoned", "no-seize-ack")

    def block(self) -> None:
        """The exchange blocks the channel (backward 1111 while idle); after the call if one is up."""
        if self.state == "idle":
            self.state = "blocked"
            self.span.far_cas(self.chan, BLOCKED)
        elif self.state != "blocked":
            self._block_after = True

    def unblock(self) -> None:
        self._block_after = False
        if self.state == "blocked":
            self.state = "idle"
            self.span.far_cas(self.chan, IDLE)

    def cut(self) -> None:
        """The span lost its signal: the call drops."""
        self._dropped = self.state not in ("idle", "blocked", "cut")
        if self.call is not None:
            self._hangup("fault")
        self._cancel()
        self._stop_register()
        self._end_party()
        self.world.stop_audio(self.chan)
        if self.call is not None:
            self.call.notes.append("the span lost its signal")
            self.world.close_call(self.call)
            self.call = None
        self.direction = None
        if self.state != "cut":
            self._before_cut = "blocked" if self.state == "blocked" else "idle"
        self.state = "cut"

    def restore(self) -> None:
        if self.state != "cut":
            return
        self.state = self._before_cut
        if self._dropped:        # the call's bits go back to idle; others are left alone
            self.span.far_cas(self.chan, IDLE)
        if self.state == "idle" and self.host_bits == SEIZE:
            self._incoming()

    # ---------------------------------------------------------------- the host's bits
    def host_cas(self, abcd: int) -> None:
        if self.state == "cut":
            return                              # no signalling reaches the far end
        if self.call is not None:
            self._log("rx", f"ABCD {abcd:04b}")
        if self.direction == "in":
            self._host_cas_calling(abcd)
        elif self.direction == "out":
            self._host_cas_called(abcd)
        elif self.state == "idle" and abcd == SEIZE:
            self._incoming()
        # idle/blocked and anything else (the host's own blocking 1111): nothing to do

    def _host_cas_calling(self, abcd: int) -> None:
        """The far end called: the host is the backward end."""
        s = self.state
        if s == "seized" and abcd == SEIZE_ACK:
            if self._seize_timer is not None:
                self._seize_timer.cancel()
            self.state = "register"
            self.world.mf_listen(self.chan, forward=False)
            self._send_dnis_digit()
        elif s == "seized" and abcd == SEIZE:
            self._glare()
        elif s in ("register", "accepted") and abcd == ANSWER:
            if s == "register" and self._heard:      # its B signal ended with the answer
                got, self._heard = self._heard, 0
                self._act(got)
            if self.state == "register":
                assert self.call is not None
                self.call.notes.append("the host answered before the register signalling ended")
            if self.state in ("register", "accepted"):
                self._connected()
        elif s == "connected" and abcd == CLEAR_BACK:
            if self.clear_back_hold <= 0:           # the caller clears forward at once
                self._clear_forward("host")
                return
            assert self.call is not None           # the caller holds on, waiting for a re-answer
            self.call.notes.append(f"clear-back at {self.world.seconds}: the caller holds "
                                   f"{self.clear_back_hold} s")
            self.state = "held"
            self._hold_timer = self._after(self.clear_back_hold, lambda: self._clear_forward("host"))
        elif s == "held" and abcd == ANSWER:
            assert self.call is not None
            self.call.notes.append(f"re-answer at {self.world.seconds}")
            if self._hold_timer is not None:
                self._hold_timer.cancel()
            self.state = "connected"
        elif s == "held" and abcd == IDLE:
            self._clear_forward("host")
        elif s == "clearing" and abcd == IDLE:
            self._release()
        elif s in ("seized", "register", "accepted") and abcd == IDLE and self.call is not None:
            # the host let go before answer: the exchange clears forward
            self._clear_forward("host", self.call.result or "released")

    def _glare(self) -> None:
        """Both ends seized: hold ours glare_hold s, then yield to the host's call."""
        assert self.call is not None
        self.call.glare = True
        self.call.notes.append("glare: the host seized the channel too; the exchange yields")
        self._cancel()
        self._hangup("blocked", "glare")
        self.state = "glare"                 # the host's bits are ignored until we yield
        self._after(self.t.glare_hold, self._glare_yield)

    def _glare_yield(self) -> None:
        self._bits(IDLE, "idle (yield after glare)")
        self._release()
        # idle long enough for the host's debounce, then take its call
        self._after(self.t.glare_hold, self._take_host_seizure)

    def _take_host_seizure(self) -> None:
        if self.state == "idle" and self.host_bits == SEIZE:
            self._incoming()

    def _connected(self) -> None:
        w = self.world
        self._cancel()
        self._stop_register()
        self.state = "connected"
        assert self.call is not None
        self.call.answer = w.seconds
        w.listen(self.chan)
        if self.direction == "in" or self._answer is None:
            script, hangup_after = self._script
        else:
            script, hangup_after = self._answer.script, self._answer.hangup_after
        self.party = w.party(self.chan, script, hangup_after, self.caller_hangup, flash=None, call=self.call)
        self.party.start()

    # ---------------------------------------------------------------- MF from the host
    def mf(self, signal: int) -> None:
        """The host's MF signal started (1-15) or ended (0)."""
        if self.call is None:
            return
        if self.direction == "in":
            self._mf_calling(signal)
        else:
            self._mf_called(signal)

    # -- the far end calling: we are the outgoing register ----------------------
    def _mf_calling(self, signal: int) -> None:
        if self.state != "register":
            return
        if signal:
            self._log("rx", f"MF {self._group}-{signal}")
            self._heard = signal
            self._stop_mf()                      # compelled: the backward signal stops ours
            self._cycle_timer(self.t.mf_fwd_safety, self._mf_timeout)
            return
        got, self._heard = self._heard, 0
        if got:
            self._act(got)

    def _mf_timeout(self) -> None:
        if self.state in ("register", "incoming"):
            assert self.call is not None
            self.call.notes.append("MF R2: no answer to a signal in time")
            if self.direction == "in":
                self._clear_forward("host", "mf-timeout")
            else:
                self._stop_register()
                self._hangup("host", "mf-timeout")
                self.state = "rejected"        # wait for the host's clear-forward

    def _send_dnis_digit(self) -> None:
        if self._dnis_pos < len(self.dnis):
            self._send_mf(digit_signal(self.dnis[self._dnis_pos]), "I")
            self._dnis_pos += 1
        # no more digits: silence; the host's timeout ends the DNIS (China)
        self._cycle_timer(self.t.mf_fwd_safety, self._mf_timeout)

    def _act(self, signal: int) -> None:
        """Act on a backward signal at its end."""
        if self._group == "A":
            if signal == A_NEXT:
                if self._ani_mode:
                    if self.ani is None:
                        self._send_mf(I_ANI_RESTRICTED, "I")
                        self._ani_mode = False
                    elif self._ani_pos < len(self.ani):
                        self._send_mf(digit_signal(self.ani[self._ani_pos]), "I")
                        self._ani_pos += 1
                    else:
                        self._send_mf(I_END_OF_ANI, "I")
                        self._ani_mode = False
                    self._cycle_timer(self.t.mf_fwd_safety, self._mf_timeout)
                else:
                    self._send_dnis_digit()
            elif signal in (A_N_MINUS_1, A_N_MINUS_2, A_N_MINUS_3):
                back = {A_N_MINUS_1: 2, A_N_MINUS_2: 3, A_N_MINUS_3: 4}[signal]
                self._dnis_pos = max(0, self._dnis_pos - back)
                self._send_dnis_digit()
            elif signal == A_CATEGORY:
                self._ani_mode = True
                self._send_mf(self.category, "II")
                self._cycle_timer(self.t.mf_fwd_safety, self._mf_timeout)
            elif signal == A_GROUP_B:
                self._group = "B"
                self._send_mf(self.category, "II")
                self._cycle_timer(self.t.mf_fwd_safety, self._mf_timeout)
            elif signal == A_CONGESTION:
                self._clear_forward("host", "congestion")
            else:
                assert self.call is not None
                self.call.notes.append(f"MF R2: A-{signal} has no meaning in China No.1")
                self._clear_forward("host", f"A-{signal}")
            return
        result = B_RESULTS.get(signal, f"B-{signal}")
        assert self.call is not None
        self.call.result = result
        if signal in (1, 7):
            self._stop_register()
            self.state = "accepted"          # the host answers with 0111 (give_up still runs)
        else:
            self._clear_forward("host", result)

    # -- the host calling: we are the incoming register -------------------------
    def _incoming(self) -> None:
        """The host seized the idle channel: acknowledge and collect its address."""
        w = self.world
        self.direction = "out"
        self.call = w.open_call(self.chan, "e1", "out")
        self._log("rx", "ABCD 0011 seize")
        self.state = "incoming"
        self._stage = "dnis"
        self._digits, self._ani_digits = [], []
        self._ani_asked = False
        self._answer = None
        self._bits(SEIZE_ACK, "seize-acknowledge")
        w.mf_listen(self.chan, forward=True)
        self._cycle_timer(self.t.mf_back_cycle, self._mf_timeout)

    def _host_cas_called(self, abcd: int) -> None:
        """The host called: it is the forward end; 1011 is its clear-forward."""
        if abcd != CLEAR_FORWARD or self.state in ("idle", "blocked"):
            return
        call = self.call
        if call is not None and call.hangup is None:
            self._hangup("host", call.result or "released")
        self._bits(IDLE, "idle (release)")
        self._release()

    def _mf_called(self, signal: int) -> None:
        if self.state != "incoming":
            return
        if signal:
            group = "II" if self._stage in ("category-for-ani", "category-for-b") else "I"
            self._log("rx", f"MF {group}-{signal}")
            self._heard = signal
            reply, group = self._decide(signal)
            self._send_mf(reply, group)
            self._cycle_timer(self.t.mf_back_cycle, self._mf_timeout)   # the host must stop its signal
            return
        if not self._heard:
            return
        self._heard = 0
        self._stop_mf()
        if self._stage == "done":
            self._outcome()
        else:
            self._cycle_timer(self.t.mf_back_cycle, self._silence)

    def _decide(self, signal: int) -> tuple[int, str]:
        """The backward signal that answers a forward one."""
        call = self.call
        assert call is not None
        if self._stage == "dnis":
            if 1 <= signal <= 10:
                self._digits.append(signal_digit(signal))
                call.called = "".join(self._digits)
                if not self._ani_asked and 0 < self.t.ani_after_digits <= len(self._digits):
                    self._ani_asked = True
                    self._stage = "category-for-ani"
                    return A_CATEGORY, "A"
                if len(self._digits) >= self.t.max_dnis:
                    self._stage = "category-for-b"
                    return A_GROUP_B, "A"
                return A_NEXT, "A"
            call.notes.append(f"MF R2: I-{signal} in the DNIS taken as its end")
            self._stage = "category-for-b"
            return A_GROUP_B, "A"
        if self._stage == "category-for-ani":
            call.category = category_name(signal)
            self._stage = "ani"
            return A_NEXT, "A"
        if self._stage == "ani":
            if 1 <= signal <= 10:
                self._ani_digits.append(signal_digit(signal))
                call.number = "".join(self._ani_digits)
            else:
                if signal == I_ANI_RESTRICTED:
                    call.ani_restricted = True
                elif signal != I_END_OF_ANI:
                    call.notes.append(f"MF R2: I-{signal} in the ANI taken as its end")
                self._stage = "dnis"
            return A_NEXT, "A"
        # category-for-b: the category again (group II), then the outcome
        if call.category is None:
            call.category = category_name(signal)
        self._answer = self.world.e1_answer(self.chan, call.called or "")
        self._stage = "done"
        ans = self._answer
        call.result = ans.result
        if ans.result in B_SIGNAL:
            return B_SIGNAL[ans.result], "B"
        return (1 if ans.charge else 7), "B"

    def _silence(self) -> None:
        """No forward signal for mf_back_cycle: the DNIS is complete (China); ask for group B."""
        if self.state != "incoming":
            return
        if self._stage == "dnis" and self._digits:
            self._stage = "category-for-b"
            self._send_mf(A_GROUP_B, "A", pulse=True)
            self._cycle_timer(self.t.mf_back_cycle + self.t.mf_pulse, self._mf_timeout)
        else:
            self._mf_timeout()

    def _outcome(self) -> None:
        """The B signal was seen and the host stopped its category: answer or refuse."""
        ans = self._answer
        assert ans is not None
        self._stop_register()
        if ans.result in B_SIGNAL:
            self.state = "rejected"            # the host clears forward; then idle
            return
        self.state = "ringing"
        if ans.result == "answer":
            self._after(max(ans.ring, self.t.answer_delay), self._far_answer)

    def _far_answer(self) -> None:
        if self.state != "ringing":
            return
        self._bits(ANSWER, "answer")
        self._connected()
