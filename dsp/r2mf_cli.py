"""`voiceboard r2mf FILE [--json]`: list the MF R2 register signals in a recording.

Any file soundfile reads (WAV, FLAC, ...), any rate (resampled to 8 kHz);
each channel of the file is a line, listened to with both receivers
(forward set 1380-1980 Hz and backward set 540-1140 Hz), since a recording
of a trunk carries both directions. One output line per signal: a readable
table by default, or one JSON object per line with --json:

    {"channel": 0, "set": "forward", "signal": 5, "start": 1.23, "end": 1.31}

Exit status: 0 signals found, 1 none found (a line on stderr says so),
2 the file cannot be read or the arguments are wrong (naming the file).
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
    """Signals in a file: [{"channel", "set", "signal", "start", "end"}] in seconds, time order."""
    from dsp.audiofile import read_audio
    from dsp.r2mf import R2MfReceiver

    x = read_audio(path)
    nchan, n = x.shape
    # a little silence after the end so a signal running to the end is released
    x = np.concatenate([x, np.zeros((nchan, RATE // 10), np.int16)], axis=1)
    # rows 0..nchan-1 heard by forward receivers, nchan..2 nchan-1 by backward ones
    both = np.concatenate([x, x], axis=0)
    rx = R2MfReceiver(2 * nchan, forward=np.arange(2 * nchan) < nchan, **params)
    out = []
    for i in range(0, both.shape[1], BLOCK):
        for ev in rx.rx(np.ascontiguousarray(both[:, i:i + BLOCK])):
            if ev.end is not None:
                out.append({"channel": ev.chan % nchan,
                            "set": "forward" if ev.chan < nchan else "backward",
                            "signal": ev.signal,
                            "start": round(ev.start / RATE, 3),
                            "end": round(min(ev.end, n) / RATE, 3)})
    out.sort(key=lambda d: (d["start"], d["channel"], d["set"]))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="voiceboard r2mf",
        description="List the MF R2 register signals (forward and backward, ITU-T Q.441) in a recording.")
    ap.add_argument("file", help="WAV, FLAC or any format libsndfile reads; any sample rate")
    ap.add_argument("--json", action="store_true", help="one JSON object per signal and line")
    ap.add_argument("--min-level", type=float, default=None, metavar="DBM0",
                    help="weakest accepted frequency in dBm0 (default -38)")
    try:
        args = ap.parse_args(argv)
    except SystemExit as exc:  # argparse: --help exits 0, a usage error 2
        return int(exc.code or 0)

    from dsp.audiofile import AudioFileError

    if not os.path.exists(args.file):
        print(f"voiceboard r2mf: {args.file}: no such file", file=sys.stderr)
        return 2
    params = {} if args.min_level is None else {"min_level_dbm0": args.min_level}
    try:
        signals = detect_file(args.file, **params)
    except (AudioFileError, ValueError) as exc:
        msg = str(exc)
        print(f"voiceboard r2mf: {msg if args.file in msg else f'{args.file}: {msg}'}", file=sys.stderr)
        return 2
    try:
        if args.json:
            for d in signals:
                print(json.dumps(d))
        else:
            print(f"{'channel':>7}  {'set':>8}  {'signal':>6}  {'start s':>8}  {'end s':>8}")
            for d in signals:
                print(f"{d['channel']:>7}  {d['set']:>8}  {d['signal']:>6}  {d['start']:>8.3f}  {d['end']:>8.3f}")
        sys.stdout.flush()
    except BrokenPipeError:  # `voiceboard r2mf x.wav | head`: not an error
        sys.stdout = open(os.devnull, "w")
    if not signals:
        print(f"voiceboard r2mf: {args.file}: no MF R2 signals found", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
