"""Simulated time: ticks of one host block, a wall-clock origin, timers.

Everything in hwsim happens at a tick. Seconds from configs and scenarios
become ticks here (rounded from the start of the thing being timed, so a
cadence does not drift), and `Timeline` runs callbacks when their tick
comes: work per tick is O(timers due), never O(channels).
"""
from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

RATE = 8000
DEFAULT_START = datetime(2026, 1, 5, 9, 0, 0, tzinfo=timezone(timedelta(hours=8)))


@dataclass(frozen=True)
class SimClock:
    """Tick <-> seconds <-> simulated wall clock for one block size."""
    block: int
    start: datetime = DEFAULT_START

    def __post_init__(self) -> None:
        if self.block not in (80, 160, 320):
            raise ValueError(f"block must be 80, 160 or 320 samples, got {self.block}")

    @property
    def tick_seconds(self) -> float:
        return self.block / RATE

    def ticks(self, seconds: float) -> int:
        """Whole ticks nearest to `seconds` (never negative)."""
        return max(0, int(round(seconds * RATE / self.block)))

    def seconds(self, tick: int) -> float:
        return tick * self.block / RATE

    def wallclock(self, tick: int) -> datetime:
        """The simulated date and time at `tick` (for schedules in the host)."""
        return self.start + timedelta(seconds=self.seconds(tick))


class Timer:
    """A scheduled callback; `cancel()` makes it a no-op."""
    __slots__ = ("tick", "fn", "cancelled")

    def __init__(self, tick: int, fn: Callable[[], object]) -> None:
        self.tick = tick
        self.fn = fn
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Timeline:
    """A heap of timers; `run(now)` fires every timer due at or before now."""

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, Timer]] = []
        self._seq = itertools.count()
        self.now = 0

    def at(self, tick: int, fn: Callable[[], object]) -> Timer:
        """Run fn at `tick` (a past tick means the next run); what fn returns is ignored."""
        t = Timer(max(tick, self.now), fn)
        heapq.heappush(self._heap, (t.tick, next(self._seq), t))
        return t

    def after(self, ticks: int, fn: Callable[[], object]) -> Timer:
        return self.at(self.now + ticks, fn)

    def run(self, now: int) -> int:
        """Advance to `now` and fire what is due (in tick, then insertion order)."""
        self.now = now
        fired = 0
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, _, t = heapq.heappop(heap)
            if not t.cancelled:
                t.fn()
                fired += 1
        return fired

    def next_tick(self) -> int | None:
        """Tick of the earliest live timer, or None."""
        while self._heap and self._heap[0][2].cancelled:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    def __len__(self) -> int:
        return sum(1 for _, _, t in self._heap if not t.cancelled)
