"""`voiceboard dtmf FILE [--json]`: list the DTMF digits in a recording.

Any file soundfile reads (WAV, FLAC, ...), any rate (resampled to 8 kHz);
each channel of the file is a line. One output line per digit: a readable
table by default, or one JSON object per line with --json:

    {"channel": 0, "digit": "5", "start": 1.23, "end": 1.31}

Exit status: 0 (digits or none), 1 unreadable file, 2 usage error.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

RATE = 8000
BLOCK = 8000  # files go in one-second blocks: results do not depend on the block size


def detect_file(path: str, **params) -> list[dict]:
    """Digits in a file: [{"channel", "digit", "start", "end"}] in seconds, time order."""
    from dsp.audiofile import read_audio
    from dsp.dtmf import DtmfDetector

    x = read_audio(path)
    nchan, n = x.shape
    # a little silence after the end so a digit running to the end is released
    x = np.concatenate([x, np.zeros((nchan, RATE // 10), np.int16)], axis=1)
    det = DtmfDetector(nchan, **params)
    out = []
    for i in range(0, x.shape[1], BLOCK):
        for ev in det.rx(np.ascontiguousarray(x[:, i:i + BLOCK])):
            if ev.end is not None:
                out.append({"channel": ev.chan, "digit": ev.digit,
                            "start": round(ev.start / RATE, 3),
                            "end": round(min(ev.end, n) / RATE, 3)})
    out.sort(key=lambda d: (d["start"], d["channel"]))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="voiceboard dtmf",
        description="List the DTMF digits in a recording (ITU-T Q.24 receiver).")
    ap.add_argument("file", help="WAV, FLAC or any format libsndfile reads; any sample rate")
    ap.add_argument("--json", action="store_true", help="one JSON object per digit and line")
    ap.add_argument("--min-level", type=float, default=None, metavar="DBM0",
                    help="weakest accepted tone in dBm0 (default -42)")
    args = ap.parse_args(argv)

    from dsp.audiofile import AudioFileError

    if not os.path.exists(args.file):
        print(f"voiceboard dtmf: {args.file}: no such file", file=sys.stderr)
        return 1
    params = {} if args.min_level is None else {"min_level_dbm0": args.min_level}
    try:
        digits = detect_file(args.file, **params)
    except AudioFileError as exc:
        print(f"voiceboard dtmf: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"voiceboard dtmf: {exc}", file=sys.stderr)
        return 2
    try:
        if args.json:
            for d in digits:
                print(json.dumps(d, ensure_ascii=False))
            return 0
        print(f"{'channel':>7}  {'digit':>5}  {'start s':>8}  {'end s':>8}")
        for d in digits:
            print(f"{d['channel']:>7}  {d['digit']:>5}  {d['start']:>8.3f}  {d['end']:>8.3f}")
        if not digits:
            print("(no digits)")
        sys.stdout.flush()
    except BrokenPipeError:  # `voiceboard dtmf x.wav | head`: not an error
        sys.stdout = open(os.devnull, "w")
    return 0


if __name__ == "__main__":
    sys.exit(main())
