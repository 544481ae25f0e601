"""The timers an R2 machine asked for, kept for its driver.

A driver feeds every action list through ``note()`` and, as its clock
advances, hands back what ``due(now)`` returns to the machine's
``timer(name, now)``. Restarting a timer replaces its deadline; a stop
removes it. The machines also ignore expiries they no longer expect, so a
driver with a coarser queue of its own is fine too.
"""
from __future__ import annotations

from collections.abc import Iterable

from voiceserver.r2.actions import Action, StartTimer, StopTimer

__all__ = ["TimerQueue"]


class TimerQueue:
    def __init__(self) -> None:
        self.deadlines: dict[str, int] = {}

    def note(self, actions: Iterable[Action]) -> None:
        for a in actions:
            if isinstance(a, StartTimer):
                self.deadlines[a.name] = a.at
            elif isinstance(a, StopTimer):
                self.deadlines.pop(a.name, None)

    def next_deadline(self) -> int | None:
        return min(self.deadlines.values(), default=None)

    def due(self, now: int) -> list[str]:
        """Names of the timers due at `now`, earliest first (removed from the queue)."""
        names = sorted((at, name) for name, at in self.deadlines.items() if at <= now)
        for _, name in names:
            del self.deadlines[name]
        return [name for _, name in names]
