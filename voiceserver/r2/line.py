"""R2 line signalling of one E1 channel (ITU-T Q.421/Q.422, digital version), without I/O.

Each end sends two bits, A and B, in timeslot 16 (C and D are fixed by the
variant: 01 for ITU, 11 for China). The forward end (the one that seized)
and the backward end mean different things by the same bits:

    state                 forward sends   backward sends
    idle                  10              10
    seized                00              10
    seize acknowledged    00              11
    answered              00              01
    clear-back            00              11
    clear-forward         10              01 or 11
    released (idle again) 10              10
    blocked               10              11

A trunk is both-way: ``seize()`` makes this end forward (outgoing), a
seizure received makes it backward (incoming). Both seizing at once is a
double seizure (glare): each end holds its seizure for ``glare_hold`` ms,
then clears forward; the call layer retries elsewhere.

Received bits count only after they held for ``timers.persistence`` ms
(debounce; a slip or a bit error of one multiframe is not a signal).

Release control (``line.release_control``, per trunk group):
  mutual   either party's clear ends the call;
  calling  a clear-back is held (the called party may answer again) until
           the caller clears or ``clear_back_hold`` ms pass;
  called   a clear-forward is held at the incoming end until the called
           party clears or ``clear_forward_hold`` ms pass.

Time is milliseconds on the caller's clock. Timers come out as StartTimer
actions and go back in through ``timer(name, now)``.
"""
from __future__ import annotations

from enum import Enum

from voiceserver.r2.actions import Action, Cause, LineEvent, LineEventKind, Outbox, SetBits
from voiceserver.r2.variants import Variant

__all__ = ["LineState", "Direction", "LineSignalling"]


class LineState(str, Enum):
    IDLE = "idle"
    SEIZED = "seized"                          # outgoing: seize sent, no ack yet
    SEIZE_ACKNOWLEDGED = "seize-acknowledged"  # register signalling runs now
    ANSWERED = "answered"
    CLEAR_BACK = "clear-back"                  # the called party has cleared (sent or received)
    CLEAR_FORWARD = "clear-forward"            # the calling party has cleared (sent or received, held)
    GLARE = "glare"                            # double seizure: holding, then clearing
    RELEASED = "released"                      # release guard: no new seizure from us yet
    BLOCKED = "blocked"


class Direction(str, Enum):
    OUTGOING = "outgoing"    # we seized: forward end
    INCOMING = "incoming"    # they seized: backward end


class LineSignalling:
    """One channel's line signalling; see the module docstring."""

    def __init__(self, variant: Variant, now: int = 0) -> None:
        self.v = variant
        self.bits = variant.line
        self.t = variant.timers
        self.state = LineState.IDLE
        self.direction: Direction | None = None
        self.rx_ab = self.bits.idle          # A and B as debounced
        self._pending_ab: str | None = None   # A and B waiting out the persistence time
        self.tx_ab = self.bits.idle
        self.blocked_locally = False
        self.blocked_remotely = False
        self._clear_pending = False           # clear asked for before the seize ack came
        self._glare_cleared = False           # glare: we have sent our clear forward
        self.box = Outbox()
        self._now = now
        self._send(self.bits.idle)

    # -- plumbing -----------------------------------------------------------
    def take(self) -> list[Action]:
        return self.box.take()

    @property
    def busy(self) -> bool:
        """A call (or its release) holds the line."""
        return self.state not in (LineState.IDLE, LineState.BLOCKED)

    def _send(self, ab: str) -> None:
        self.tx_ab = ab
        self.box.do(SetBits(self.bits.abcd(ab)))

    def _event(self, kind: LineEventKind, cause: Cause | None = None, detail: str = "") -> None:
        self.box.do(LineEvent(kind, cause, detail))

    def _clock(self, now: int) -> None:
        if now < self._now:
            raise ValueError(f"time went backwards: {now} < {self._now}")
        self._now = now

    # -- inputs: bits and timers -------------------------------------------
    def rx_bits(self, abcd: str, now: int) -> None:
        """The four bits received from the far end changed (or were read again)."""
        self._clock(now)
        if len(abcd) != 4 or set(abcd) - {"0", "1"}:
            raise ValueError(f"expected four bits like '1011', got {abcd!r}")
        ab = abcd[:2]
        if ab == self.rx_ab:
            self._pending_ab = None     # back to what we had: the change was a glitch
            self.box.stop("persistence")
            return
        if self.t.persistence == 0:
            self._handle(ab, now)
            return
        if ab != self._pending_ab:
            self._pending_ab = ab
            self.box.start("persistence", now, self.t.persistence)

    def timer(self, name: str, now: int) -> None:
        """A timer this machine started has fired (stale ones are ignored)."""
        self._clock(now)
        if not self.box.due(name, now):
            return
        getattr(self, f"_on_{name}")(now)

    def _on_persistence(self, now: int) -> None:
        ab, self._pending_ab = self._pending_ab, None
        if ab is not None and ab != self.rx_ab:
            self._handle(ab, now)

    # -- inputs: commands ---------------------------------------------------
    def seize(self, now: int) -> bool:
        """Start an outgoing call; False if the line cannot be seized now."""
        self._clock(now)
        if self.state is not LineState.IDLE or self.blocked_locally or self.blocked_remotely \
                or self.rx_ab != self.bits.idle or self._pending_ab is not None:
            return False
        self.direction = Direction.OUTGOING
        self._clear_pending = False
        self._send(self.bits.seize)
        self.state = LineState.SEIZED
        self.box.start("seize_ack", now, self.t.seize_ack)
        return True

    def await_answer(self, now: int) -> None:
        """Outgoing: the register says the call was accepted; answer must come in time."""
        self._clock(now)
        if self.direction is Direction.OUTGOING and self.state is LineState.SEIZE_ACKNOWLEDGED:
            self.box.start("answer", now, self.t.answer)

    def answer(self, now: int, double: bool | None = None) -> bool:
        """Incoming: the called party answered (or answered again after a clear-back).

        `double` (default: the variant's line.double_answer) sends answer,
        clear-back, answer: a caller that must not be charged (a collect
        call on a line that refuses them) is cleared by it.
        """
        self._clock(now)
        if self.direction is not Direction.INCOMING or self.state not in (
                LineState.SEIZE_ACKNOWLEDGED, LineState.CLEAR_BACK):
            return False
        self._send(self.bits.answer)
        self.state = LineState.ANSWERED
        if self.bits.double_answer if double is None else double:
            self.box.start("double_answer", now, self.t.double_answer)
        return True

    def _on_double_answer(self, now: int) -> None:
        if self.state is not LineState.ANSWERED:
            return
        if self.tx_ab == self.bits.answer:
            self._send(self.bits.clear_back)
            self.box.start("double_answer", now, self.t.double_answer)
        else:
            self._send(self.bits.answer)

    def clear(self, now: int) -> None:
        """Our party hung up (or the call setup failed): clear the call from this end."""
        self._clock(now)
        self.box.stop("double_answer")
        if self.direction is Direction.OUTGOING:
            if self.state is LineState.SEIZED:
                self._clear_pending = True       # clear forward once the seizure is acknowledged
            elif self.state in (LineState.SEIZE_ACKNOWLEDGED, LineState.ANSWERED, LineState.CLEAR_BACK):
                self._clear_forward(now)
        elif self.direction is Direction.INCOMING:
            if self.state in (LineState.SEIZE_ACKNOWLEDGED, LineState.ANSWERED):
                self._send(self.bits.clear_back)
                self.state = LineState.CLEAR_BACK
            elif self.state is LineState.CLEAR_FORWARD:
                self._release(now, Cause.NORMAL)

    def block(self, now: int) -> None:
        """Block the line for incoming calls (at once if idle, else when the call is over)."""
        self._clock(now)
        self.blocked_locally = True
        if self.state in (LineState.IDLE, LineState.RELEASED, LineState.BLOCKED):
            self.box.stop("release_guard")
            self._send(self.bits.blocked)
            if self.state is not LineState.BLOCKED:
                self.state = LineState.BLOCKED
                self._event(LineEventKind.BLOCKED, detail="local")

    def unblock(self, now: int) -> None:
        self._clock(now)
        if not self.blocked_locally:
            return
        self.blocked_locally = False
        if self.state is LineState.BLOCKED:
            self._send(self.bits.idle)
            if not self.blocked_remotely:
                self.state = LineState.IDLE
                self._event(LineEventKind.UNBLOCKED, detail="local")

    # -- the protocol -------------------------------------------------------
    def _handle(self, ab: str, now: int) -> None:
        self.rx_ab = ab
        b = self.bits
        s = self.state
        if s in (LineState.IDLE, LineState.RELEASED):
            if ab == b.seize and not self.blocked_locally:
                self._incoming_seizure(now)
            elif ab == b.blocked:
                self.blocked_remotely = True
                self.box.stop("release_guard")
                self.state = LineState.BLOCKED
                self._event(LineEventKind.BLOCKED, detail="remote")
            elif ab != b.idle:
                self._event(LineEventKind.FAILED, Cause.PROTOCOL_ERROR, f"bits {ab} while idle")
        elif s is LineState.BLOCKED:
            if ab == b.idle and self.blocked_remotely:
                self.blocked_remotely = False
                if not self.blocked_locally:
                    self.state = LineState.IDLE
                    self._event(LineEventKind.UNBLOCKED, detail="remote")
            elif ab == b.blocked:
                self.blocked_remotely = True
        elif self.direction is Direction.OUTGOING:
            self._outgoing(ab, now)
        else:
            self._incoming(ab, now)

    def _incoming_seizure(self, now: int) -> None:
        self.box.stop("release_guard")
        self.direction = Direction.INCOMING
        self._send(self.bits.seize_ack)
        self.state = LineState.SEIZE_ACKNOWLEDGED
        self._event(LineEventKind.SEIZED)

    def _outgoing(self, ab: str, now: int) -> None:
        b, s = self.bits, self.state
        if s is LineState.SEIZED:
            if ab == b.seize_ack:
                self.box.stop("seize_ack")
                self.state = LineState.SEIZE_ACKNOWLEDGED
                if self._clear_pending:
                    self._clear_forward(now)
                else:
                    self._event(LineEventKind.SEIZE_ACKNOWLEDGED)
            elif ab == b.seize:
                # Q.421 double seizure: keep the seizure a little, then clear forward
                self.box.stop("seize_ack")
                self.state = LineState.GLARE
                self._glare_cleared = False
                self.box.start("glare_hold", now, self.t.glare_hold)
                self._event(LineEventKind.GLARE, Cause.GLARE)
            else:
                self._protocol_error(ab, now)
        elif s is LineState.SEIZE_ACKNOWLEDGED:
            if ab == b.answer:
                self.box.stop("answer")
                self.state = LineState.ANSWERED
                self._event(LineEventKind.ANSWERED)
            elif ab == b.forced_release:
                self._far_cleared_back(now, Cause.FORCED_RELEASE)
            elif ab == b.idle:
                self._protocol_error(ab, now)
        elif s is LineState.ANSWERED:
            if ab == b.clear_back:
                self._far_cleared_back(now, Cause.NORMAL)
            elif ab == b.forced_release:
                self._far_cleared_back(now, Cause.FORCED_RELEASE)
            else:
                self._protocol_error(ab, now)
        elif s is LineState.CLEAR_BACK:
            if ab == b.answer:   # answered again within the hold time
                self.box.stop("clear_back_hold")
                self.state = LineState.ANSWERED
                self._event(LineEventKind.ANSWERED, detail="re-answer")
            elif ab == b.idle:
                self._protocol_error(ab, now)
        elif s is LineState.CLEAR_FORWARD:
            if ab == b.idle:
                self._release(now, Cause.NORMAL)
        elif s is LineState.GLARE:
            if ab == b.idle and self._glare_cleared:
                self._release(now, Cause.GLARE)

    def _far_cleared_back(self, now: int, cause: Cause) -> None:
        self.box.stop("answer")
        self._event(LineEventKind.CLEAR_BACK, cause)
        if self.bits.release_control == "calling" and cause is Cause.NORMAL:
            self.state = LineState.CLEAR_BACK
            self.box.start("clear_back_hold", now, self.t.clear_back_hold)
        else:
            self._clear_forward(now)

    def _on_clear_back_hold(self, now: int) -> None:
        if self.state is LineState.CLEAR_BACK:
            self._clear_forward(now)

    def _on_glare_hold(self, now: int) -> None:
        if self.state is not LineState.GLARE:
            return
        self._send(self.bits.clear_forward)
        self._glare_cleared = True
        if self.rx_ab == self.bits.idle:
            self._release(now, Cause.GLARE)
        else:
            self.box.start("release_wait", now, self.t.release_wait)

    def _incoming(self, ab: str, now: int) -> None:
        b, s = self.bits, self.state
        if ab != b.clear_forward:
            if s is not LineState.CLEAR_FORWARD:
                self._protocol_error(ab, now)
            return
        if s in (LineState.SEIZE_ACKNOWLEDGED, LineState.CLEAR_BACK):
            self.box.stop("double_answer")
            self._event(LineEventKind.CLEAR_FORWARD)
            self._release(now, Cause.NORMAL)
        elif s is LineState.ANSWERED:
            self.box.stop("double_answer")
            self._event(LineEventKind.CLEAR_FORWARD)
            if self.bits.release_control == "called":
                self.state = LineState.CLEAR_FORWARD
                self.box.start("clear_forward_hold", now, self.t.clear_forward_hold)
            else:
                self._release(now, Cause.NORMAL)

    def _on_clear_forward_hold(self, now: int) -> None:
        if self.state is LineState.CLEAR_FORWARD and self.direction is Direction.INCOMING:
            self._release(now, Cause.NORMAL)

    def _clear_forward(self, now: int) -> None:
        self.box.stop("answer")
        self.box.stop("clear_back_hold")
        self._send(self.bits.clear_forward)
        self.state = LineState.CLEAR_FORWARD
        wait = self.t.release_wait
        if self.bits.release_control == "called":   # the far end may hold the call for its party
            wait = max(wait, self.t.clear_forward_hold + self.t.release_wait)
        self.box.start("release_wait", now, wait)

    def _on_release_wait(self, now: int) -> None:
        if self.state in (LineState.CLEAR_FORWARD, LineState.GLARE):
            self._release(now, Cause.RELEASE_TIMEOUT)

    def _on_seize_ack(self, now: int) -> None:
        if self.state is not LineState.SEIZED:
            return
        self._event(LineEventKind.FAILED, Cause.SEIZE_ACK_TIMEOUT)
        self._send(self.bits.clear_forward)
        self._release(now, Cause.SEIZE_ACK_TIMEOUT)

    def _on_answer(self, now: int) -> None:
        if self.state is LineState.SEIZE_ACKNOWLEDGED:
            self._event(LineEventKind.FAILED, Cause.NO_ANSWER)
            self._clear_forward(now)

    def _protocol_error(self, ab: str, now: int) -> None:
        self._event(LineEventKind.FAILED, Cause.PROTOCOL_ERROR, f"bits {ab} in state {self.state.value}")

    def _release(self, now: int, cause: Cause) -> None:
        """The call is over: back to idle bits, then the release guard before we seize again."""
        for name in ("seize_ack", "answer", "clear_back_hold", "clear_forward_hold", "release_wait",
                     "glare_hold", "double_answer"):
            self.box.stop(name)
        self._send(self.bits.blocked if self.blocked_locally else self.bits.idle)
        self.direction = None
        self._clear_pending = False
        self._event(LineEventKind.RELEASED, cause)
        if self.blocked_locally:
            self.state = LineState.BLOCKED
            self._event(LineEventKind.BLOCKED, detail="local")
        else:
            self.state = LineState.RELEASED
            self.box.start("release_guard", now, self.t.release_guard)

    def _on_release_guard(self, now: int) -> None:
        if self.state is LineState.RELEASED:
            self.state = LineState.IDLE
            self._event(LineEventKind.IDLE)
