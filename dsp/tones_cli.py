"""`voiceboard tones FILE [--zone cn] [--json]`: name the call-progress tones in a recording.

For integrators checking what a line plays ("is this the carrier's busy
tone, and does our detector hear it?"). Each channel of the file is a line;
the file is fed in 20 ms blocks, the way the media engine would.
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

BLOCK = 160


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="voiceboard tones",
                                description="Name the call-progress tones heard in a recording, "
                                            "per channel, with start/end seconds.")
    p.add_argument("file", help="recording (WAV or anything soundfile reads; any rate)")
    p.add_argument("--zone", default="cn", help="tone plan zone (cn, us, uk, eu; default cn)")
    p.add_argument("--plan", metavar="TOML", help="site tone plan file holding --zone")
    p.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    p.add_argument("--all", action="store_true", help="also list silence and unknown stretches")
    return p


def analyse(x: np.ndarray, plan, include_other: bool = False) -> list[dict]:
    """Tones in int16[nchan, n]: dicts chan/tone/start/end (seconds; end None = still on)."""
    from dsp.tones import RATE, CallProgressDetector
    det = CallProgressDetector(x.shape[0], plan)
    opened: dict[tuple[int, str, int], dict] = {}
    out: list[dict] = []
    n = x.shape[1]
    for b in range(0, n, BLOCK):
        for ev in det.rx(np.ascontiguousarray(x[:, b:b + BLOCK])):
            if ev.tone in ("silence", "unknown") and not include_other:
                continue
            key = (ev.chan, ev.tone, ev.start)
            if ev.end is None:
                rec = {"chan": ev.chan, "tone": ev.tone, "start": ev.start / RATE, "end": None}
                opened[key] = rec
                out.append(rec)
            elif key in opened:
                opened.pop(key)["end"] = ev.end / RATE
    out.sort(key=lambda r: (r["chan"], r["start"]))
    return out


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from dsp.audiofile import AudioFileError, read_audio
    from dsp.tomlconfig import ConfigError
    from dsp.tones import TonePlan
    try:
        plan = TonePlan.load(args.zone, args.plan)
    except ConfigError as exc:
        print(f"voiceboard tones: {exc}", file=sys.stderr)
        return 2
    try:
        x = read_audio(args.file)
    except AudioFileError as exc:
        print(f"voiceboard tones: {exc}", file=sys.stderr)
        return 1
    found = analyse(x, plan, include_other=args.all)
    if args.json:
        for rec in found:
            print(json.dumps(rec))
        return 0
    dur = x.shape[1] / 8000.0
    print(f"{args.file}: {x.shape[0]} channel(s), {dur:.2f} s, zone {plan.zone} ({plan.name})")
    if not found:
        print("no call-progress tones")
    for r in found:
        end = "(to the end)" if r["end"] is None else f"{r['end']:8.2f}"
        print(f"chan {r['chan']:2d}  {r['tone']:<22} {r['start']:8.2f} - {end}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
