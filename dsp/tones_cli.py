"""`voiceboard tones PATH... [--zone cn] [--json]`: name the call-progress tones in recordings.

For integrators checking what a line plays ("is this the carrier's busy
tone, and does our detector hear it?") and for QA over archives. Each
channel of a file is a line; files are streamed in blocks, the way the
media engine hears a line, and a long channel runs as overlapping segments
side by side, stitched to an unsegmented run's times (dsp.archive). Exit
status (dsp.archive): 0 tones found, 1 none, 2 usage, plan or file error.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Any

from dsp import archive
from dsp.archive import FileResult, Found

RATE = 8000
# CallProgressDetector's defaults that bound how late it names a tone or reports its end
REL_TOL = 0.2
ABS_TOL_S = 0.05
SILENCE_S = 5.0


class TonesAnalyser:
    """CallProgressDetector over a file's channels; each tone a Found (end None: on at the end)."""

    def __init__(self, nlanes: int, plan: Any, include_other: bool) -> None:
        from dsp.tones import CallProgressDetector
        self.det = CallProgressDetector(nlanes, plan)
        self.include_other = include_other
        self.opened: dict[tuple[int, str, int], Found] = {}
        self.found: list[Found] = []

    def rx(self, block) -> None:
        for ev in self.det.rx(block):
            if ev.tone in ("silence", "unknown") and not self.include_other:
                continue
            key = (ev.chan, ev.tone, ev.start)
            if ev.end is None:
                f = Found(ev.chan, ev.start, None, ev.tone)
                self.opened[key] = f
                self.found.append(f)
            elif key in self.opened:
                self.opened.pop(key).end = ev.end

    def finish(self) -> list[Found]:
        return self.found


def analyse(x, plan, include_other: bool = False) -> list[dict]:
    """Tones in int16[nchan, n]: dicts chan/tone/start/end (seconds; end None = still on)."""
    an = TonesAnalyser(x.shape[0], plan, include_other)
    for b in range(0, x.shape[1], 1600):
        an.rx(x[:, b:b + 1600])
    return _rows(an.finish())


def _rows(found: list[Found]) -> list[dict]:
    out = [{"chan": f.lane, "tone": f.key, "start": f.start / RATE,
            "end": None if f.end is None else f.end / RATE} for f in found]
    out.sort(key=lambda r: (r["chan"], r["start"]))
    return out


@dataclass
class TonesTool(archive.Tool):
    plan: Any = None
    include_other: bool = False
    name = "tones"
    nothing = "no call-progress tones"
    batch_files = False  # a tone on at the end of a file must stay "(to the end)"

    def __post_init__(self) -> None:
        """Segments of a long channel: margins from the plan, cadences span seconds.

        A segment reads `warmup_s` before its range (to be in step with an
        unsegmented run: a tone under way is named there) and `tail_s` after it
        (to name a tone that starts near its end: cn record warning, 10.4 s a
        period, may take a period and more); the detector reports a tone's end
        up to one longest "off" late, so an end that close to a cut may still
        be on there (`open_margin_s`).
        """
        if self.plan is None:
            return
        tones = [t for t in self.plan.tones.values() if t.detect]
        period = max((t.period for t in tones), default=0.0)
        longest_on = max((d for t in tones for d in t.cadence[0::2]), default=0.0)
        longest_off = max((d for t in tones for d in t.cadence[1::2]), default=0.0)
        detect_s = max(2.5 * period, 1.2 * longest_on + 1.0, SILENCE_S) + 2.0
        self.open_margin_s = longest_off * (1.0 + REL_TOL) + ABS_TOL_S + 0.1
        self.tail_s = detect_s
        self.warmup_s = detect_s + self.open_margin_s

    def analyser(self, nlanes: int) -> TonesAnalyser:
        return TonesAnalyser(nlanes, self.plan, self.include_other)

    def rows(self, found: list[Found], result: FileResult) -> list[dict]:
        return _rows(found)

    def file_line(self, r: FileResult) -> str:
        return (f"{r.path}: {r.channels} channel(s), {r.samples / RATE:.2f} s, "
                f"zone {self.plan.zone} ({self.plan.name})")

    def table_row(self, r: dict) -> str:
        end = "(to the end)" if r["end"] is None else f"{r['end']:8.2f}"
        return f"chan {r['chan']:2d}  {r['tone']:<22} {r['start']:8.2f} - {end}"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="voiceboard tones",
                                description="Name the call-progress tones heard in recordings, "
                                            "per channel, with start/end seconds.",
                                epilog=archive.EXIT_STATUS_HELP, formatter_class=archive.HelpFormatter)
    archive.add_arguments(p)
    p.add_argument("--zone", default="cn", help="tone plan zone (cn, us, uk, eu; default cn)")
    p.add_argument("--plan", metavar="TOML", help="site tone plan file holding --zone")
    p.add_argument("--all", action="store_true", help="also list silence and unknown stretches")
    return p


def main(argv: list[str] | None = None) -> int:
    args = archive.parse(_parser(), argv)
    if isinstance(args, int):
        return args
    from dsp.tomlconfig import ConfigError
    from dsp.tones import TonePlan
    try:
        plan = TonePlan.load(args.zone, args.plan)
    except ConfigError as exc:
        print(f"voiceboard tones: {exc}", file=sys.stderr)
        return archive.EXIT_ERROR
    return archive.main(TonesTool(plan=plan, include_other=args.all), args, "voiceboard tones")


if __name__ == "__main__":
    sys.exit(main())
