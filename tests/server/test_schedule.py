"""Schedule edges: midnight, holidays, make-up workdays, timezones."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from voiceserver.ivr.schedule import Schedule, TimeRange, parse_days, parse_hhmm

SH = ZoneInfo("Asia/Shanghai")


def at(y, mo, d, h, mi=0, tz=SH):
    return dt.datetime(y, mo, d, h, mi, tzinfo=tz)


def sched(**kw):
    hours = kw.pop("hours", (TimeRange(parse_days("mon-fri"), parse_hhmm("09:00"), parse_hhmm("18:00")),
                             TimeRange(parse_days("sat"), parse_hhmm("09:00"), parse_hhmm("12:00"))))
    return Schedule(hours=hours, day_flow="day", night_flow="night", **kw)


def test_parse_days_and_times():
    assert parse_days("mon-fri") == {0, 1, 2, 3, 4}
    assert parse_days("fri-mon") == {4, 5, 6, 0}
    assert parse_days(["sat", "SUN"]) == {5, 6}
    assert parse_hhmm("24:00", allow_24=True) == 1440
    with pytest.raises(ValueError, match="unknown day 'mom'"):
        parse_days("mom-fri")
    with pytest.raises(ValueError, match="HH:MM"):
        parse_hhmm("9:00")
    with pytest.raises(ValueError, match="no such time"):
        parse_hhmm("24:00")


def test_weekday_boundaries_are_half_open():
    s = sched()
    # 2026-11-23 is a Monday
    assert s.flow_at(at(2026, 11, 23, 8, 59)) == "night"
    assert s.flow_at(at(2026, 11, 23, 9, 0)) == "day"
    assert s.flow_at(at(2026, 11, 23, 17, 59)) == "day"
    assert s.flow_at(at(2026, 11, 23, 18, 0)) == "night"
    assert s.flow_at(at(2026, 11, 28, 11, 0)) == "day"     # Saturday morning
    assert s.flow_at(at(2026, 11, 29, 11, 0)) == "night"   # Sunday


def test_range_crossing_midnight_belongs_to_its_start_day():
    s = sched(hours=(TimeRange(parse_days("fri"), parse_hhmm("22:00"), parse_hhmm("06:00")),),
              holidays=frozenset({dt.date(2026, 11, 28)}))
    assert s.is_open(at(2026, 11, 27, 23, 30))       # Friday night
    assert s.is_open(at(2026, 11, 28, 0, 0))         # midnight: still Friday's range
    assert s.is_open(at(2026, 11, 28, 5, 59))        # Saturday is a holiday, but the range is Friday's
    assert not s.is_open(at(2026, 11, 28, 6, 0))
    assert not s.is_open(at(2026, 11, 27, 21, 59))
    assert not s.is_open(at(2026, 11, 26, 23, 0))    # Thursday


def test_until_midnight():
    s = sched(hours=(TimeRange(parse_days("mon"), parse_hhmm("20:00"), parse_hhmm("24:00", allow_24=True)),))
    assert s.is_open(at(2026, 11, 23, 23, 59))
    assert not s.is_open(at(2026, 11, 24, 0, 0))


def test_holidays_and_makeup_workdays():
    # National Day 2026: Oct 1-7 off; Sat Oct 10 is a make-up workday.
    s = sched(holidays=frozenset(dt.date(2026, 10, d) for d in range(1, 8)),
              workdays=frozenset({dt.date(2026, 10, 10)}))
    assert s.flow_at(at(2026, 10, 1, 10)) == "night"      # Thursday, holiday
    assert s.flow_at(at(2026, 10, 8, 10)) == "day"
    assert s.flow_at(at(2026, 10, 10, 15)) == "day"       # Saturday worked with Monday's hours
    # a workday entry also beats a holiday entry for the same date
    s2 = sched(holidays=frozenset({dt.date(2026, 10, 10)}), workdays=frozenset({dt.date(2026, 10, 10)}))
    assert s2.is_open(at(2026, 10, 10, 10))


def test_decisions_in_schedule_timezone():
    s = sched()
    # 01:30 UTC Monday is 09:30 in Shanghai: open
    assert s.is_open(dt.datetime(2026, 11, 23, 1, 30, tzinfo=dt.UTC))
    # 23:30 UTC Sunday is 07:30 Monday in Shanghai: closed
    assert not s.is_open(dt.datetime(2026, 11, 22, 23, 30, tzinfo=dt.UTC))
    ny = sched(timezone="America/New_York")
    # 14:00 UTC Monday is 09:00 EST in New York
    assert ny.is_open(dt.datetime(2026, 11, 23, 14, 0, tzinfo=dt.UTC))
    assert not ny.is_open(dt.datetime(2026, 11, 23, 13, 59, tzinfo=dt.UTC))


def test_naive_datetime_rejected():
    with pytest.raises(ValueError, match="aware"):
        sched().is_open(dt.datetime(2026, 11, 23, 10))


def test_bad_timezone_rejected():
    with pytest.raises(KeyError):
        sched(timezone="Asia/Beijing")
