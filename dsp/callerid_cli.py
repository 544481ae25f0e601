"""`voiceboard cid FILE [--json]`: list the caller IDs (FSK or DTMF) in a recording.

The file is read at 8 kHz (dsp.audiofile) and fed to CallerIdDetector in
20 ms blocks, exactly as the media engine would, so what this prints is what
a line would have reported. Each file channel is a line (stereo: two lines).

Output: one line per caller ID found; `--json` prints one JSON object per
line instead. Garbled caller ID messages (bad checksum, cut short) are
warnings on stderr. Exit status: 0 if at least one caller ID was found,
1 if none, 2 on a usage or file error.
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from dsp.audiofile import RATE, AudioFileError, read_audio
from dsp.callerid import ABSENCE_REASONS, CallerIdDetector, CallerIdEvent

BLOCK = 160
# Silence fed after the end of the file: closes a DTMF frame waiting for its
# end code (1 s timeout) and lets the FSK carrier detector drop.
FLUSH = RATE + RATE // 4


def describe(e: CallerIdEvent) -> str:
    """The human-readable line for one caller ID."""
    c = e.callerid
    assert c is not None
    parts = [f"chan {e.chan}", f"{e.start / RATE:8.3f}s", f"{e.format:4s}", f"{e.standard:7s}"]
    if c.number is not None:
        parts.append(f"number {c.number}")
    elif c.number_absence is not None:
        parts.append(f"number {ABSENCE_REASONS[c.number_absence]} ({c.number_absence})")
    if c.name is not None:
        parts.append(f"name {json.dumps(c.name, ensure_ascii=False)}")
    elif c.name_absence is not None:
        parts.append(f"name {ABSENCE_REASONS[c.name_absence]} ({c.name_absence})")
    if c.when is not None:
        w = c.when
        parts.append(f"date {w.month:02d}-{w.day:02d} {w.hour:02d}:{w.minute:02d}")
    return "  ".join(parts)


def as_json(e: CallerIdEvent) -> str:
    c = e.callerid
    assert c is not None
    w = c.when
    return json.dumps({
        "chan": e.chan, "time": round(e.start / RATE, 4), "end": round(e.end / RATE, 4),
        "format": e.format, "standard": e.standard, "number": c.number, "name": c.name,
        "number_absence": c.number_absence, "name_absence": c.name_absence,
        "datetime": None if w is None else {"month": w.month, "day": w.day, "hour": w.hour,
                                            "minute": w.minute},
    }, ensure_ascii=False)


def scan(x: np.ndarray, standard: str = "any", dtmf: bool = True,
         min_level_dbm0: float = -48.0) -> list[CallerIdEvent]:
    """Every caller ID event (found or garbled) in int16[nchan, n]."""
    det = CallerIdDetector(x.shape[0], standard=standard, min_level_dbm0=min_level_dbm0, dtmf=dtmf)
    x = np.concatenate([x, np.zeros((x.shape[0], FLUSH), np.int16)], axis=1)
    events: list[CallerIdEvent] = []
    for i in range(0, x.shape[1], BLOCK):
        events.extend(det.rx(x[:, i:i + BLOCK]))
    events.sort(key=lambda e: (e.start, e.chan))
    return events


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="voiceboard cid",
                                 description="Decode caller ID (FSK Bell 202 / V.23, SDMF / MDMF, "
                                             "or DTMF) in a recording; one line per channel's caller ID.")
    ap.add_argument("file", help="recording (WAV or anything libsndfile reads; any rate)")
    ap.add_argument("--json", action="store_true", help="one JSON object per line")
    ap.add_argument("--standard", choices=["any", "bell202", "v23"], default="any",
                    help="FSK standard to accept (default: both)")
    ap.add_argument("--no-dtmf", action="store_true", help="do not look for DTMF caller ID")
    ap.add_argument("--min-level", type=float, default=-48.0, metavar="DBM0",
                    help="FSK carrier detect level in dBm0 (default -48)")
    try:
        args = ap.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    try:
        x = read_audio(args.file)
    except AudioFileError as exc:
        print(f"voiceboard cid: {exc}", file=sys.stderr)
        return 2
    found = 0
    for e in scan(x, args.standard, not args.no_dtmf, args.min_level):
        if e.callerid is None:
            print(f"voiceboard cid: {args.file}: chan {e.chan} at {e.start / RATE:.3f}s: "
                  f"garbled {e.format} caller ID ({e.error})", file=sys.stderr)
            continue
        found += 1
        print(as_json(e) if args.json else describe(e))
    return 0 if found else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
