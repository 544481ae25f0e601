"""`voiceboard dtmf PATH... [--json]`: list the DTMF digits in recordings.

Files or directories (recursively, `--glob`), any format soundfile reads
(WAV, FLAC, ...), any rate (resampled to 8 kHz); each channel of a file is
a line. One output line per digit: a readable table by default, or one
JSON object per line with --json:

    {"file": "call.wav", "channel": 0, "digit": "5", "start": 1.23, "end": 1.31}

The files are streamed and run on every core by dsp.archive (which
describes the exit status: 0 digits found, 1 none, 2 usage or file error).
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field

from dsp import archive
from dsp.archive import FileResult, Found

RATE = 8000


class DtmfAnalyser:
    """DtmfDetector over a file's lanes; digits as Found(key=digit)."""

    def __init__(self, nlanes: int, params: dict) -> None:
        from dsp.dtmf import DtmfDetector
        self.det = DtmfDetector(nlanes, **params)
        self.found: list[Found] = []

    def rx(self, block) -> None:
        for ev in self.det.rx(block):
            if ev.end is not None:
                self.found.append(Found(ev.chan, ev.start, ev.end, ev.digit))

    def finish(self) -> list[Found]:
        import numpy as np
        # a little silence after the end so a digit running to the end is released
        self.rx(np.zeros((self.det.nchan, RATE // 10), np.int16))
        return self.found


@dataclass
class DtmfTool(archive.Tool):
    params: dict = field(default_factory=dict)
    name = "dtmf"
    nothing = "no DTMF digits"

    def analyser(self, nlanes: int) -> DtmfAnalyser:
        return DtmfAnalyser(nlanes, self.params)

    def rows(self, found: list[Found], result: FileResult) -> list[dict]:
        n = result.samples
        out = [{"channel": f.lane, "digit": f.key, "start": round(f.start / RATE, 3),
                "end": round(min(f.end if f.end is not None else n, n) / RATE, 3)} for f in found]
        out.sort(key=lambda d: (d["start"], d["channel"]))
        return out

    def json_row(self, d: dict) -> str:
        # what json.dumps gives (floats by repr, a digit needs no escaping), 4x faster:
        # an archive run prints a line per digit
        return (f'{{"channel": {d["channel"]}, "digit": "{d["digit"]}", '
                f'"start": {d["start"]!r}, "end": {d["end"]!r}}}')

    def table_header(self) -> str:
        return f"{'channel':>7}  {'digit':>5}  {'start s':>8}  {'end s':>8}"

    def table_row(self, d: dict) -> str:
        return f"{d['channel']:>7}  {d['digit']:>5}  {d['start']:>8.3f}  {d['end']:>8.3f}"


def detect_file(path: str, split: bool = True, **params) -> list[dict]:
    """Digits in a file: [{"channel", "digit", "start", "end"}] in seconds, time order."""
    from dsp.audiofile import AudioFileError
    r = archive.scan_file(DtmfTool(params), path, split)
    if r.error:
        raise AudioFileError(f"{path}: {r.error}")
    return r.rows


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="voiceboard dtmf",
        description="List the DTMF digits in recordings (ITU-T Q.24 receiver).",
        epilog=archive.EXIT_STATUS_HELP, formatter_class=archive.HelpFormatter)
    archive.add_arguments(ap)
    ap.add_argument("--min-level", type=float, default=None, metavar="DBM0",
                    help="weakest accepted tone in dBm0 (default -42)")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = archive.parse(parser(), argv)
    if isinstance(args, int):
        return args
    params = {} if args.min_level is None else {"min_level_dbm0": args.min_level}
    if args.min_level is not None and not -60.0 <= args.min_level <= 0.0:
        print(f"voiceboard dtmf: --min-level {args.min_level} outside -60..0", file=sys.stderr)
        return archive.EXIT_ERROR
    return archive.main(DtmfTool(params), args, "voiceboard dtmf")


if __name__ == "__main__":
    sys.exit(main())
