"""DAHDI numbering and system.conf for a board (what dahdi_genconf writes for a card).

DAHDI numbers spans from 1 and channels from 1 across all spans; an E1
span has 31 channels (channel = timeslot, TS16 included), an analog span
one per port.  `voiceboard dahdi-run --configure` and the tests use
`system_conf()` to configure the emulator the way an integrator configures
a real card.
"""
from __future__ import annotations

from typing import Any

E1_CHANNELS = 31

# board channel type -> system.conf signalling (DAHDI names the far end's side)
SIGNALLING = {"FXO": "fxsks", "FXS": "fxoks", "E1_CAS": "cas", "E1_BEARER": "bchan", "E1_DCHAN": "dchan"}
CHINA_CAS_IDLE = "1011"


def _name(x: Any) -> str:
    return str(getattr(x, "name", x))


def span_sizes(board: Any) -> list[int]:
    """DAHDI channels per span of an open board."""
    return [E1_CHANNELS if _name(s.kind) == "e1" else s.nchan for s in board.spans]


def dahdi_channels(board: Any, first_chan: int = 1) -> list[int]:
    """DAHDI channel number of each board channel (the board's spans starting at first_chan)."""
    base, chan = [], first_chan
    for size in span_sizes(board):
        base.append(chan)
        chan += size
    return [base[c.span] + c.timeslot - 1 for c in board.channels]


def _ranges(nums: list[int]) -> str:
    out, start = [], None
    for i, n in enumerate(nums):
        if start is None:
            start = n
        if i + 1 == len(nums) or nums[i + 1] != n + 1:
            out.append(str(start) if start == n else f"{start}-{n}")
            start = None
    return ",".join(out)


def system_conf(boards: list[Any], zone: str = "cn") -> str:
    """/etc/dahdi/system.conf for these boards, their spans numbered in this order."""
    lines = [f"# system.conf for {', '.join(b.uri for b in boards)} (voiceboard dahdiconf)"]
    # one line per span and signalling, as dahdi_genconf writes (dahdi_cfg's lines are short)
    by_sig: dict[tuple[int, str], list[int]] = {}
    alaw: list[int] = []
    span_no, chan_no = 1, 1
    for board in boards:
        for s in board.spans:
            if _name(s.kind) == "e1":
                opts = [str(span_no), str(s.timing), "0", _name(s.framing).lower(), _name(s.coding).lower()]
                lines.append("span=" + ",".join(opts + (["crc4"] if s.crc4 else [])))
            span_no += 1
        numbers = dahdi_channels(board, chan_no)
        chan_no += sum(span_sizes(board))
        for c, n in zip(board.channels, numbers, strict=True):
            by_sig.setdefault((span_no - len(board.spans) + c.span, SIGNALLING[_name(c.type)]), []).append(n)
        if _name(board.info.law) == "alaw":
            alaw += numbers
    for (_, sig), nums in by_sig.items():
        value = _ranges(sorted(nums)) + (f":{CHINA_CAS_IDLE}" if sig == "cas" else "")
        lines.append(f"{sig}={value}")
    alaw.sort()
    for i in range(0, len(alaw), 31):
        lines.append(f"alaw={_ranges(alaw[i:i + 31])}")
    lines += [f"loadzone={zone}", f"defaultzone={zone}"]
    return "\n".join(lines) + "\n"
