"""Business hours, holidays and night service: which IVR flow runs now.

A hotline in China is open by weekday and time range, closed on public
holidays, and open on the make-up working days (调休) that move a weekend
into the week around a holiday. So the schedule has three inputs: weekly
hours, a holiday date list, and a workday date list that overrides both the
weekday and the holiday list (a make-up Sunday is worked with the hours of
``workday_as``, Monday by default).

Decisions are made in the schedule's own timezone (zoneinfo, default
Asia/Shanghai) whatever the server's, and only from aware datetimes: the
server passes its simulated wall clock, never ``datetime.now()`` from in
here, so tests choose the instant.

A range may cross midnight (``22:00``-``06:00``): its hours belong to the
day it starts on, so Friday 22:00-06:00 covers early Saturday even if
Saturday is a holiday. ``24:00`` is allowed as an end.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

__all__ = ["DAY_NAMES", "TimeRange", "Schedule", "parse_days", "parse_hhmm"]

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_hhmm(text: str, *, allow_24: bool = False) -> int:
    """'09:30' -> minutes since midnight (570). ValueError names the problem."""
    parts = text.split(":")
    if len(parts) != 2 or not all(p.isdigit() and len(p) == 2 for p in parts):
        raise ValueError(f"expected a time as HH:MM, got {text!r}")
    h, m = int(parts[0]), int(parts[1])
    if (h, m) == (24, 0) and allow_24:
        return 24 * 60
    if h > 23 or m > 59:
        raise ValueError(f"no such time of day: {text!r}")
    return h * 60 + m


def parse_days(spec: str | list[str]) -> frozenset[int]:
    """'mon-fri', 'sat,sun', ['mon', 'wed'] or 'fri-mon' -> weekday numbers (Monday 0)."""
    items = spec if isinstance(spec, list) else [s for s in spec.split(",")]
    out: set[int] = set()
    for item in items:
        item = item.strip().lower()
        ends = item.split("-")
        for e in ends:
            if e not in DAY_NAMES:
                raise ValueError(f"unknown day {e!r} (days are {', '.join(DAY_NAMES)})")
        if len(ends) == 1:
            out.add(DAY_NAMES.index(ends[0]))
        elif len(ends) == 2:
            a, b = DAY_NAMES.index(ends[0]), DAY_NAMES.index(ends[1])
            out.update((a + k) % 7 for k in range((b - a) % 7 + 1))
        else:
            raise ValueError(f"bad day range {item!r} (write e.g. 'mon-fri')")
    return frozenset(out)


@dataclass(frozen=True)
class TimeRange:
    """Open on `days` from `start` to `end` (minutes since midnight; end > 24:00 never)."""

    days: frozenset[int]
    start: int
    end: int

    @property
    def wraps(self) -> bool:
        return self.end <= self.start


@dataclass(frozen=True)
class Schedule:
    """Weekly hours + holidays + make-up workdays in one timezone; see module docstring."""

    hours: tuple[TimeRange, ...]
    day_flow: str
    night_flow: str
    timezone: str = "Asia/Shanghai"
    holidays: frozenset[dt.date] = frozenset()
    workdays: frozenset[dt.date] = frozenset()
    workday_as: int = 0  # weekday whose hours a make-up workday uses

    def __post_init__(self) -> None:
        ZoneInfo(self.timezone)  # ZoneInfoNotFoundError (a KeyError) for a bad name

    def _weekday(self, day: dt.date) -> int | None:
        """The weekday whose hours apply on `day`, or None if closed all day."""
        if day in self.workdays:
            return self.workday_as
        if day in self.holidays:
            return None
        return day.weekday()

    def is_open(self, when: dt.datetime) -> bool:
        """True if `when` (an aware datetime) falls in business hours."""
        if when.tzinfo is None or when.utcoffset() is None:
            raise ValueError("schedule needs an aware datetime (with tzinfo), got a naive one")
        local = when.astimezone(ZoneInfo(self.timezone))
        today, minute = local.date(), local.hour * 60 + local.minute
        wd = self._weekday(today)
        yd = self._weekday(today - dt.timedelta(days=1))
        for r in self.hours:
            if wd is not None and wd in r.days:
                if r.wraps and minute >= r.start:
                    return True
                if not r.wraps and r.start <= minute < r.end:
                    return True
            if yd is not None and yd in r.days and r.wraps and minute < r.end:
                return True
        return False

    def flow_at(self, when: dt.datetime) -> str:
        """The flow that answers a call at `when`: day_flow when open, else night_flow."""
        return self.day_flow if self.is_open(when) else self.night_flow
