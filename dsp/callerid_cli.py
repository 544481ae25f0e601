"""`voiceboard cid PATH... [--json]`: list the caller IDs (FSK or DTMF) in recordings.

Files or directories (recursively, `--glob`); each file is streamed at
8 kHz (dsp.audiofile) into CallerIdDetector in blocks, as the media engine
would, so what this prints is what a line would have reported. Each file
channel is a line (stereo: two lines).

Output: one line per caller ID found; `--json` prints one JSON object per
line instead, naming the file. An FSK message counts only after a plausible
preamble (channel seizure and mark: `--no-seizure` drops that need, e.g.
for GR-30 type 2 call waiting), so hours of noise or speech give nothing.
Garbled caller ID messages (bad checksum, cut short) are warnings on
stderr. Exit status (dsp.archive): 0 caller ID found, 1 none, 2 usage or
file error.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dsp import archive
from dsp.archive import FileResult, Found

if TYPE_CHECKING:
    from dsp.callerid import CallerIdEvent

RATE = 8000
# Silence fed after the end of the file: closes a DTMF frame waiting for its
# end code (1 s timeout) and lets the FSK carrier detector drop.
FLUSH = RATE + RATE // 4


def describe(e: CallerIdEvent) -> str:
    """The human-readable line for one caller ID."""
    return describe_row(as_dict(e))


def describe_row(d: dict) -> str:
    """The human-readable line for one caller ID's JSON object."""
    from dsp.callerid import ABSENCE_REASONS
    parts = [f"chan {d['chan']}", f"{d['time']:8.3f}s", f"{d['format']:4s}", f"{d['standard']:7s}"]
    if d["number"] is not None:
        parts.append(f"number {d['number']}")
    elif d["number_absence"] is not None:
        parts.append(f"number {ABSENCE_REASONS[d['number_absence']]} ({d['number_absence']})")
    if d["name"] is not None:
        parts.append(f"name {json.dumps(d['name'], ensure_ascii=False)}")
    elif d["name_absence"] is not None:
        parts.append(f"name {ABSENCE_REASONS[d['name_absence']]} ({d['name_absence']})")
    if d["datetime"] is not None:
        w = d["datetime"]
        parts.append(f"date {w['month']:02d}-{w['day']:02d} {w['hour']:02d}:{w['minute']:02d}")
    return "  ".join(parts)


def as_dict(e: CallerIdEvent) -> dict:
    """The JSON object of one caller ID (without "file")."""
    c = e.callerid
    assert c is not None
    w = c.when
    return {
        "chan": e.chan, "time": round(e.start / RATE, 4), "end": round(e.end / RATE, 4),
        "format": e.format, "standard": e.standard, "number": c.number, "name": c.name,
        "number_absence": c.number_absence, "name_absence": c.name_absence,
        "datetime": None if w is None else {"month": w.month, "day": w.day, "hour": w.hour,
                                            "minute": w.minute},
    }


def as_json(e: CallerIdEvent) -> str:
    return json.dumps(as_dict(e), ensure_ascii=False)


class CidAnalyser:
    """CallerIdDetector over a file's lanes; each caller ID (or garbled one) a Found."""

    def __init__(self, nlanes: int, tool: CidTool) -> None:
        from dsp.callerid import CallerIdDetector
        self.det = CallerIdDetector(nlanes, standard=tool.standard, min_level_dbm0=tool.min_level,
                                    dtmf=tool.dtmf, require_seizure=tool.require_seizure)
        self.found: list[Found] = []

    def rx(self, block) -> None:
        for e in self.det.rx(block):
            self.found.append(Found(e.chan, e.start, e.end, e.format, e))

    def finish(self) -> list[Found]:
        import numpy as np
        self.rx(np.zeros((self.det.nchan, FLUSH), np.int16))
        return self.found


@dataclass
class CidTool(archive.Tool):
    standard: str = "any"
    dtmf: bool = True
    min_level: float = -48.0
    require_seizure: bool = True
    name = "cid"
    nothing = "no caller ID"
    anchor = "end"   # a message is placed by its end: its start is the carrier onset
    warmup_s = 4.0   # >= the longest message from carrier onset (seizure + mark + 258 bytes)
    tail_s = 4.0

    def analyser(self, nlanes: int) -> CidAnalyser:
        return CidAnalyser(nlanes, self)

    def rows(self, found: list[Found], result: FileResult) -> list[dict]:
        events = sorted((f.data._replace(chan=f.lane, start=f.start, end=f.end) for f in found),
                        key=lambda e: (e.start, e.chan))
        rows = []
        for e in events:
            if e.callerid is None:
                result.warnings.append(f"chan {e.chan} at {e.start / RATE:.3f}s: "
                                       f"garbled {e.format} caller ID ({e.error})")
                continue
            rows.append(as_dict(e))
        return rows

    def table_row(self, row: dict) -> str:
        return describe_row(row)


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="voiceboard cid",
                                 description="Decode caller ID (FSK Bell 202 / V.23, SDMF / MDMF, "
                                             "or DTMF) in recordings; one line per channel's caller ID.",
                                 epilog=archive.EXIT_STATUS_HELP, formatter_class=archive.HelpFormatter)
    archive.add_arguments(ap)
    ap.add_argument("--standard", choices=["any", "bell202", "v23"], default="any",
                    help="FSK standard to accept (default: both)")
    ap.add_argument("--no-dtmf", action="store_true", help="do not look for DTMF caller ID")
    ap.add_argument("--no-seizure", action="store_true",
                    help="accept FSK messages without a channel seizure before them "
                         "(GR-30 type 2); more false alarms from noise")
    ap.add_argument("--min-level", type=float, default=-48.0, metavar="DBM0",
                    help="FSK carrier detect level in dBm0 (default -48)")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = archive.parse(parser(), argv)
    if isinstance(args, int):
        return args
    tool = CidTool(standard=args.standard, dtmf=not args.no_dtmf, min_level=args.min_level,
                   require_seizure=not args.no_seizure)
    return archive.main(tool, args, "voiceboard cid")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
