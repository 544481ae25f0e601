"""E1 signalling names and bits: alarms, error counters, the idle ABCD.

Shared by the span model (hwsim.e1) and the scenario reader (hwsim.scenario
checks a fault's alarm and counter names), so neither imports the other.
"""
from __future__ import annotations

ALARMS = {"LOS": 1, "LOF": 2, "AIS": 4, "RAI": 8}
ALARM_ALIASES = {"RED": "LOF", "BLUE": "AIS", "YELLOW": "RAI"}
COUNTERS = ("crc4", "ebit", "fas", "bpv", "slips")
SIGNAL_LOST = ALARMS["LOS"] | ALARMS["LOF"] | ALARMS["AIS"]
IDLE_ABCD = 0b1011   # China No.1 idle (C and D fixed at 1)


def alarm_bit(name: str) -> int:
    """'LOS' | 'LOF' | 'RED' | 'AIS' | 'BLUE' | 'RAI' | 'YELLOW' -> bit."""
    key = ALARM_ALIASES.get(name.upper(), name.upper())
    if key not in ALARMS:
        raise ValueError(f"unknown alarm {name!r} (known: LOS, LOF/RED, AIS/BLUE, RAI/YELLOW)")
    return ALARMS[key]
