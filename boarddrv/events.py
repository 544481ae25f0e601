"""Event, command and channel-type vocabulary shared by host and device.

The numbers are the C library's (ext/vb.h); tests/board/test_cdef.py checks
they agree, so this module needs no native code and imports anywhere.
"""
from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple


class ChannelType(IntEnum):
    """What a port on the card is: FXO faces an exchange line, FXS feeds a phone."""
    FXO = 1
    FXS = 2
    E1_CAS = 3
    E1_BEARER = 4
    E1_DCHAN = 5


class EventKind(IntEnum):
    """Card -> host signalling (see docs/internals.md for who sends which)."""
    HOOK_OFF = 1
    HOOK_ON = 2
    FLASH = 3
    RING_START = 4
    RING_STOP = 5
    LOOP_DROP = 6
    LOOP_RESTORE = 7
    BATTERY_REVERSAL = 8
    CAS = 9
    ALARM_SET = 10
    ALARM_CLEAR = 11
    BOARD_LOST = 12
    EVENTS_LOST = 13


class CommandKind(IntEnum):
    """Host -> card control, as the device sees it."""
    HOOK = 1
    RING = 2
    CAS = 3
    XCONNECT = 4
    LOOPBACK = 5
    START = 6
    STOP = 7


class Event(NamedTuple):
    """chan is -1 for span and board events; span is the channel's or the alarm's span."""
    tick: int
    kind: EventKind
    chan: int
    span: int
    value: int


class Command(NamedTuple):
    """A control call from the host; chan -1 for START/STOP (value = block for START)."""
    tick: int
    kind: CommandKind
    chan: int
    value: int


#: E1 alarm bits (Event.value of ALARM_SET/ALARM_CLEAR, span_status()["alarms"] names).
ALARMS: dict[str, int] = {"LOS": 1, "LOF": 2, "AIS": 4, "RAI": 8}

#: Span counter names (E1 CRC-4, E-bit, FAS errors, bipolar violations, slips), C order (VB_SCNT_*).
SPAN_COUNTERS: tuple[str, ...] = ("crc4", "ebit", "fas", "bpv", "slips")

#: Channel counter names, in the C library's order (VB_CCNT_*).
CHAN_COUNTERS: tuple[str, ...] = ("events", "commands", "hook_changes", "rings", "cas_changes")

HOOK_STATES: dict[str, int] = {"onhook": 0, "offhook": 1, "flash": 2}

SPAN_KINDS: dict[str, int] = {"analog": 1, "e1": 2}
FRAMINGS: dict[str, int] = {"none": 0, "cas": 1, "ccs": 2}
CODINGS: dict[str, int] = {"none": 0, "hdb3": 1, "ami": 2}
LAWS: dict[str, int] = {"alaw": 1, "ulaw": 2}
CLOCKS: dict[str, int] = {"lockstep": 1, "realtime": 2}


def name_of(table: dict[str, int], value: int) -> str:
    """Reverse lookup in one of the tables above."""
    for k, v in table.items():
        if v == value:
            return k
    return f"?{value}"


def alarm_names(bits: int) -> set[str]:
    return {name for name, bit in ALARMS.items() if bits & bit}


def alarm_bits(alarms: int | set[str] | frozenset[str] | list[str] | tuple[str, ...]) -> int:
    """An alarm bitmask from an int or from names like {"LOS", "AIS"}."""
    if isinstance(alarms, int):
        return alarms
    bits = 0
    for name in alarms:
        try:
            bits |= ALARMS[str(name).upper()]
        except KeyError:
            raise ValueError(f"unknown alarm {name!r}: expected one of {', '.join(ALARMS)}") from None
    return bits
