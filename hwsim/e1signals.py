"""E1 signalling names and bits: alarms, error counters, the idle ABCD, China No.1 outcomes and categories.

Shared by the span model (hwsim.e1), the exchange (hwsim.r2far) and the
scenario reader (hwsim.scenario checks a fault's alarm and counter names, an
outbound plan's result, a caller's category), so none imports the other.
"""
from __future__ import annotations

from dataclasses import dataclass

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


# group B (backward, the outcome) and what hwsim calls each
B_RESULTS = {1: "answer", 7: "answer-free", 2: "busy", 4: "congestion", 5: "unallocated", 8: "out-of-order"}
B_SIGNAL = {"busy": 2, "congestion": 4, "unallocated": 5, "out-of-order": 8}
# group II (forward): calling party categories
CATEGORIES = {"national_subscriber": 1, "national_priority_subscriber": 2, "test_equipment": 3,
              "international_subscriber": 7, "international_priority_subscriber": 9}
CATEGORY_NAMES = {v: k for k, v in CATEGORIES.items()}


def category_signal(category: str | int | None) -> int:
    """A category name (CATEGORIES) or a group II signal 1-15 -> the signal."""
    if category is None:
        return CATEGORIES["national_subscriber"]
    if isinstance(category, int) and not isinstance(category, bool):
        if not 1 <= category <= 15:
            raise ValueError(f"a category signal is 1-15, got {category}")
        return category
    if category in CATEGORIES:
        return CATEGORIES[category]
    raise ValueError(f"unknown calling party category {category!r} "
                     f"(known: {', '.join(CATEGORIES)}, or a group II signal 1-15)")


def category_name(signal: int) -> str:
    return CATEGORY_NAMES.get(signal, f"II-{signal}")


@dataclass(frozen=True)
class R2Timers:
    """The far end's timers in seconds (China No.1 defaults, as OpenR2 has them)."""
    seize_ack: float = 2.0        # calling: the host must acknowledge a seizure
    mf_back_cycle: float = 2.0    # called: each half of a cycle; silence after a digit ends the DNIS
    mf_fwd_safety: float = 10.0   # calling: wait for any backward signal
    mf_pulse: float = 0.15        # called: length of a pulsed backward signal (A-3 after the DNIS)
    answer_delay: float = 0.15    # called: from the end of the B signal to the answer bits, at least
    glare_hold: float = 0.15      # both ends seized: the exchange holds its seizure, then yields
    max_dnis: int = 20            # called: digits that end the DNIS at once
    ani_after_digits: int = 1     # called: ask for category and ANI after this many digits; 0 never
