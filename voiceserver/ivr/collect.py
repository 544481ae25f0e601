"""DTMF digit collection: when is a caller's input complete?

This is the termination logic of Dialogic's ``dx_getdig`` (DV_TPT: max
digits, terminating digit, first-digit / inter-digit / total timeouts) and
of FreeSWITCH's ``play_and_get_digits`` (valid-input regex, digits typed
during the prompt count), with no I/O and no clock of its own. The owner
(the IVR interpreter for a call) feeds it digits and ticks stamped with the
simulated clock, so a test can run a 30-second timeout in microseconds.

Timeline of one collection::

    DigitCollector(spec, now)      prompt playing; digits are kept (type-ahead)
      .feed(d, t)                  a digit; with spec.barge_in the owner is told
                                   to stop the prompt (``barged_in`` turns True)
      .prompt_done(t)              timers start here (first-digit, total), or at
                                   the barge-in digit
      .tick(t)                     timeouts fire at the first tick at/after them
    -> CollectResult(digits, reason, valid, terminator, t)

Times are integers in milliseconds of the server's simulated clock (the
media engine advances it by one block per tick). A digit or tick with a time
earlier than one already seen is a caller bug and raises ValueError: a
collector that silently accepted time going backwards would hide engine bugs
as random timeouts.

Digits that arrive after the collection finished are not consumed (``feed``
returns None and ignores them): the owner keeps them in the call's
type-ahead buffer and hands them to the next collector
(``DigitCollector(spec, now, typeahead=...)``); ``leftover()`` says which
of the type-ahead digits a collection did not use.
"""
from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

__all__ = ["DTMF_DIGITS", "Reason", "CollectSpec", "CollectResult", "DigitCollector"]

DTMF_DIGITS = "0123456789*#ABCD"


class Reason(str, enum.Enum):
    """Why a collection ended (Dialogic's TM_* termination reasons)."""

    MAX_DIGITS = "max_digits"        # spec.max_digits collected
    TERMINATOR = "terminator"        # a terminator key (not included in digits)
    MATCH = "match"                  # digits equal a choice no other choice extends
    FIRST_TIMEOUT = "first_timeout"  # no digit at all within first_timeout after the prompt
    INTER_TIMEOUT = "inter_timeout"  # silence between digits longer than inter_timeout
    TOTAL_TIMEOUT = "total_timeout"  # the whole collection took longer than total_timeout


@dataclass(frozen=True)
class CollectSpec:
    """What ends a collection. Timeouts in ms; 0 disables a timeout.

    ``valid`` (a regex, full match) and ``choices`` (exact strings) decide
    ``CollectResult.valid``; they do not end a collection by themselves,
    except that with ``choices`` a collection ends early (Reason.MATCH) as
    soon as the digits equal a choice that no longer choice starts with, so
    a one-key menu answers on the key, not after the inter-digit timeout.
    """

    max_digits: int = 1
    min_digits: int = 1
    terminators: str = ""
    first_timeout: int = 5000
    inter_timeout: int = 3000
    total_timeout: int = 0
    valid: str | None = None
    choices: tuple[str, ...] = ()
    barge_in: bool = True

    def __post_init__(self) -> None:
        if self.max_digits < 1:
            raise ValueError(f"max_digits must be at least 1, got {self.max_digits}")
        if not 0 <= self.min_digits <= self.max_digits:
            raise ValueError(f"min_digits must be between 0 and max_digits ({self.max_digits}), "
                             f"got {self.min_digits}")
        bad = [c for c in self.terminators if c not in DTMF_DIGITS]
        if bad:
            raise ValueError(f"terminators: {''.join(bad)!r} are not DTMF keys ({DTMF_DIGITS})")
        for name in ("first_timeout", "inter_timeout", "total_timeout"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0 ms, got {getattr(self, name)}")
        if self.valid is not None:
            try:
                re.compile(self.valid)
            except re.error as exc:
                raise ValueError(f"valid: bad regular expression {self.valid!r}: {exc}") from None
        for c in self.choices:
            if not c or any(d not in DTMF_DIGITS for d in c):
                raise ValueError(f"choice {c!r} is not a string of DTMF keys")

    def accepts(self, digits: str) -> bool:
        """True if `digits` is valid input under min_digits, valid and choices."""
        if len(digits) < self.min_digits:
            return False
        if self.choices and digits not in self.choices:
            return False
        if self.valid is not None and re.fullmatch(self.valid, digits) is None:
            return False
        return True


@dataclass(frozen=True)
class CollectResult:
    """A finished collection. ``valid`` is ``spec.accepts(digits)``."""

    digits: str
    reason: Reason
    valid: bool
    t: int
    terminator: str | None = None

    @property
    def timed_out(self) -> bool:
        """No usable input arrived before a timer fired (the 'no input' case of a menu)."""
        return self.reason is Reason.FIRST_TIMEOUT or (
            self.digits == "" and self.reason in (Reason.INTER_TIMEOUT, Reason.TOTAL_TIMEOUT))


@dataclass
class DigitCollector:
    """One collection under a CollectSpec; see the module docstring for the timeline.

    ``start`` is when the collection (and its prompt) began; ``typeahead``
    are digits the caller typed before it (kept in the call's buffer), fed
    in order as if typed at ``start``.
    """

    spec: CollectSpec
    start: int
    typeahead: str = ""
    digits: str = field(default="", init=False)
    result: CollectResult | None = field(default=None, init=False)
    barged_in: bool = field(default=False, init=False)
    armed_at: int | None = field(default=None, init=False)
    _last_digit_t: int | None = field(default=None, init=False)
    _now: int = field(default=0, init=False)
    _pending: CollectResult | None = field(default=None, init=False)
    _consumed: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self._now = self.start
        for d in self.typeahead:
            if self.result is not None or self._pending is not None:
                break  # the rest stays with the owner: see leftover()
            self.feed(d, self.start)
            self._consumed += 1

    # -- inputs -------------------------------------------------------------

    def feed(self, digit: str, t: int) -> CollectResult | None:
        """A DTMF digit at time t. Returns the result if this digit ends the collection.

        After the collection has ended this returns None and consumes nothing:
        the digit belongs to whatever the call does next (type-ahead).
        """
        if len(digit) != 1 or digit not in DTMF_DIGITS:
            raise ValueError(f"not a DTMF digit: {digit!r}")
        self._advance(t)
        if self.result is not None or self._pending is not None:
            return None
        if self.armed_at is None and self.spec.barge_in:
            # A digit during a prompt that allows barge-in stops the prompt and
            # starts the timers, as if the prompt had ended here.
            self.barged_in = True
            self.armed_at = t
        self._last_digit_t = t
        if digit in self.spec.terminators:
            return self._finish(Reason.TERMINATOR, t, terminator=digit)
        self.digits += digit
        if len(self.digits) >= self.spec.max_digits:
            return self._finish(Reason.MAX_DIGITS, t)
        if self.spec.choices and self.digits in self.spec.choices and not any(
                c != self.digits and c.startswith(self.digits) for c in self.spec.choices):
            return self._finish(Reason.MATCH, t)
        return None

    def prompt_done(self, t: int) -> CollectResult | None:
        """The prompt finished (or there was none): start the timers.

        Returns a result that was held back while a non-barge-in prompt played.
        """
        self._advance(t)
        if self.result is not None:
            return None
        if self.armed_at is None:
            self.armed_at = t
        if self._pending is not None:
            # Input completed during a prompt that may not be interrupted:
            # it is delivered when the prompt ends.
            pending, self._pending = self._pending, None
            self.result = CollectResult(pending.digits, pending.reason, pending.valid, t,
                                        pending.terminator)
            return self.result
        return None

    def tick(self, t: int) -> CollectResult | None:
        """Time has advanced to t; returns the result if a timeout fired."""
        self._advance(t)
        if self.result is not None or self._pending is not None or self.armed_at is None:
            return None
        deadline, reason = self._deadline()
        if deadline is not None and t >= deadline:
            return self._finish(reason, t)
        return None

    # -- queries ------------------------------------------------------------
    @property
    def done(self) -> bool:
        return self.result is not None

    @property
    def complete(self) -> bool:
        """Input is complete (maybe held until the prompt ends): further digits are not taken."""
        return self.result is not None or self._pending is not None

    @property
    def deadline(self) -> int | None:
        """The earliest time a tick can end this collection (None: no timer running).

        The engine needs no tick before this; ticking every block is also fine.
        """
        if self.result is not None or self._pending is not None or self.armed_at is None:
            return None
        return self._deadline()[0]

    def leftover(self) -> str:
        """Type-ahead digits given at construction that this collection did not use."""
        return self.typeahead[self._consumed:]

    # -- internals ----------------------------------------------------------
    def _deadline(self) -> tuple[int | None, Reason]:
        assert self.armed_at is not None
        cands: list[tuple[int, Reason]] = []
        s = self.spec
        if s.total_timeout:
            cands.append((self.armed_at + s.total_timeout, Reason.TOTAL_TIMEOUT))
        if self.digits:
            if s.inter_timeout:
                # Digits typed during the prompt: the inter-digit timer runs from
                # when the caller could first hear that we are waiting.
                last = max(self._last_digit_t or self.armed_at, self.armed_at)
                cands.append((last + s.inter_timeout, Reason.INTER_TIMEOUT))
        elif s.first_timeout:
            cands.append((self.armed_at + s.first_timeout, Reason.FIRST_TIMEOUT))
        if not cands:
            return None, Reason.TOTAL_TIMEOUT
        return min(cands, key=lambda c: c[0])

    def _advance(self, t: int) -> None:
        if t < self._now:
            raise ValueError(f"time went backwards: {t} < {self._now}")
        self._now = t

    def _finish(self, reason: Reason, t: int, terminator: str | None = None) -> CollectResult | None:
        res = CollectResult(self.digits, reason, self.spec.accepts(self.digits), t, terminator)
        if self.armed_at is None:
            # Still inside a prompt that may not be interrupted: hold the result.
            self._pending = res
            return None
        self.result = res
        return res
