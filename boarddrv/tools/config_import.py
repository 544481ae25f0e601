"""`voiceboard config import SYSTEM_CONF [CHAN_DAHDI_CONF]`: DAHDI's configuration as the project's TOML.

Reads /etc/dahdi/system.conf (spans, signalling per channel range, law,
tone zone) and optionally Asterisk's chan_dahdi.conf (MFC/R2 variant,
gains) and writes the `[[boards]]` TOML of boarddrv.config, then checks the
result loads. Everything that has no counterpart is listed on stderr with
its file and line number; the exit status is 1 if anything was left out.

DAHDI numbers channels across spans. With `--board URI` the layout comes
from the card (`dahdi://` on the machine, or a simulated board); without
it, the spans named by `span=` lines are taken as E1 spans 1..N of 31
channels from channel 1, and any channel after them as ports of one
analog span.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from typing import Any

from ._output import fail

PROG = "voiceboard config import"

# system.conf signalling -> ours (DAHDI names the far end's side: fxs* is an FXO port)
SIGNALLING = {"fxsks": "fxo_ks", "fxsls": "fxo_ls", "fxoks": "fxs_ks", "fxols": "fxs_ls",
              "cas": "e1_cas", "bchan": "bearer", "dchan": "dchan", "hardhdlc": "dchan"}
UNMAPPED_SIGNALLING = {"fxsgs": "ground start is not supported", "fxogs": "ground start is not supported",
                       "e&m": "E&M is not supported", "e&me1": "E&M on E1 is not supported",
                       "sf": "single frequency signalling is not supported",
                       "clear": "clear channels are not supported", "dacs": "DACS cross-connects are not supported",
                       "dacsrbs": "DACS cross-connects are not supported", "mtp2": "SS7 MTP2 is not supported",
                       "nethdlc": "HDLC network devices are not supported", "unused": None}
ZONES = ("cn", "us", "uk", "eu")
R2_VARIANTS = {"cn": "china"}   # every other mfcr2_variant is the ITU one


class Importer:
    def __init__(self, sizes: list[tuple[str, int]] | None) -> None:
        self.sizes = sizes              # [(kind, channels)] per span from a board, else None
        self.spans: dict[int, dict[str, Any]] = {}
        self.chans: dict[int, dict[str, Any]] = {}   # DAHDI channel -> {"sig", "line"}
        self.alaw: set[int] = set()
        self.zone: str | None = None
        self.variant: str | None = None
        self.gains: dict[int, tuple[float, float]] = {}
        self.report: list[str] = []

    def note(self, path: str, line: int, text: str) -> None:
        self.report.append(f"{path}:{line}: {text}")

    # -- system.conf -----------------------------------------------------------
    def read_system(self, path: str) -> None:
        with open(path, encoding="utf-8") as f:
            for n, raw in enumerate(f, 1):
                line = raw.split("#", 1)[0].strip()
                if not line:
                    continue
                if "=" not in line:
                    self.note(path, n, f"not key=value: {line!r}")
                    continue
                key, value = (x.strip() for x in line.split("=", 1))
                key = key.lower()
                try:
                    self._system_key(path, n, key, value)
                except ValueError as exc:
                    self.note(path, n, f"{key}={value}: {exc}")

    def _system_key(self, path: str, n: int, key: str, value: str) -> None:
        if key == "span":
            parts = [p.strip().lower() for p in value.split(",")]
            if len(parts) < 5:
                raise ValueError("expected span=N,timing,lbo,framing,coding[,crc4]")
            no, timing, lbo = int(parts[0]), int(parts[1]), int(parts[2])
            framing, coding, opts = parts[3], parts[4], parts[5:]
            if framing not in ("cas", "ccs") or coding not in ("hdb3", "ami"):
                raise ValueError(f"{framing}/{coding} is T1 framing or coding; "
                                 "only E1 (cas|ccs, hdb3|ami) is supported")
            for o in opts:
                if o not in ("crc4", "yellow"):
                    raise ValueError(f"unknown span option {o!r}")
            if "yellow" in opts:
                self.note(path, n, "span option 'yellow' (send yellow alarm) has no counterpart: ignored")
            self.spans[no] = {"timing": timing, "lbo": lbo, "framing": framing, "coding": coding,
                              "crc4": "crc4" in opts, "line": n}
        elif key in SIGNALLING or key in UNMAPPED_SIGNALLING:
            chans, _, idle = value.partition(":")
            nums = parse_ranges(chans)
            if key in UNMAPPED_SIGNALLING:
                why = UNMAPPED_SIGNALLING[key]
                if why:
                    self.note(path, n, f"{key}={value}: {why}; channels {chans} left out")
                return
            if key == "cas" and idle and len(idle) != 4:
                raise ValueError("CAS idle bits must be four binary digits (ABCD)")
            for c in nums:
                self.chans[c] = {"sig": SIGNALLING[key], "line": n}
        elif key == "alaw":
            self.alaw |= set(parse_ranges(value))
        elif key in ("loadzone", "defaultzone"):
            zone = value.strip().lower()
            if zone not in ZONES:
                self.note(path, n, f"{key}={value}: tone zone {zone!r} not among {', '.join(ZONES)}")
            elif key == "defaultzone" or self.zone is None:
                self.zone = zone
        elif key in ("echocanceller",):
            self.note(path, n, f"{key}={value}: echo cancellation is not part of the channel config")
        elif key in ("dynamic", "rxgain", "txgain", "56k", "deflaw"):
            self.note(path, n, f"{key}={value}: not supported")
        else:
            self.note(path, n, f"unknown keyword {key!r}")

    # -- chan_dahdi.conf -------------------------------------------------------
    def read_chan_dahdi(self, path: str) -> None:
        rx, tx, variant = 0.0, 0.0, None
        with open(path, encoding="utf-8") as f:
            for n, raw in enumerate(f, 1):
                line = raw.split(";", 1)[0].strip()
                if not line or line.startswith("["):
                    continue
                key, sep, value = line.partition("=>") if "=>" in line else line.partition("=")
                key, value = key.strip().lower(), value.strip()
                try:
                    if key == "mfcr2_variant":
                        variant = R2_VARIANTS.get(value.lower(), "itu")
                    elif key == "rxgain":
                        rx = float(value)
                    elif key == "txgain":
                        tx = float(value)
                    elif key == "channel":
                        for c in parse_ranges(value):
                            if rx or tx:
                                self.gains[c] = (rx, tx)
                            if variant:
                                self.variant = variant
                    else:
                        self.note(path, n, f"{key}: a voice server setting, not channel config: not imported")
                except ValueError as exc:
                    self.note(path, n, f"{key}={value}: {exc}")

    # -- layout and output -----------------------------------------------------
    def layout(self) -> list[dict[str, Any]]:
        """Spans with their DAHDI channel ranges: [{"kind", "first", "size", ...}]."""
        if self.sizes is not None:
            out, first = [], 1
            for i, (kind, size) in enumerate(self.sizes):
                span = dict(self.spans.get(i + 1, {}))
                out.append({"kind": kind, "first": first, "size": size, **span})
                first += size
            return out
        out, first = [], 1
        for no in sorted(self.spans):
            if no != len(out) + 1:
                raise ValueError(f"span={no}: without --board the E1 spans must be numbered 1, 2, ... "
                                 "in order")
            out.append({"kind": "e1", "first": first, "size": 31, **self.spans[no]})
            first += 31
        rest = [c for c in self.chans if c >= first]
        if rest:
            out.append({"kind": "analog", "first": first, "size": max(rest) - first + 1})
        return out

    def toml(self, uri: str, spans: list[dict[str, Any]]) -> str:
        law = "alaw" if self.alaw or any(s["kind"] == "e1" for s in spans) else "ulaw"
        out = [f"# Imported by `{PROG}`.", "", "[[boards]]", f'uri = "{uri}"', f'law = "{law}"']
        if self.zone:
            out.append(f'tone_zone = "{self.zone}"')
        groups: list[tuple[int, str, float, float, list[int]]] = []
        for i, s in enumerate(spans):
            out += ["", "[[boards.spans]]", f"span = {i}", f'kind = "{s["kind"]}"']
            if s["kind"] == "e1":
                out += [f'framing = "{s.get("framing", "cas")}"', f'coding = "{s.get("coding", "hdb3")}"',
                        f'crc4 = {"true" if s.get("crc4") else "false"}', f'timing = {s.get("timing", 0)}']
            else:
                out.append(f"ports = {s['size']}")
            members: dict[tuple[str, float, float], list[int]] = {}
            for c in range(s["first"], s["first"] + s["size"]):
                if c in self.chans:
                    g = self.gains.get(c, (0.0, 0.0))
                    members.setdefault((self.chans[c]["sig"], *g), []).append(c - s["first"] + 1)
            groups += [(i, sig, rx, tx, m) for (sig, rx, tx), m in members.items()]
        for span, sig, rx, tx, chans in groups:
            out += ["", "[[boards.channels]]", f"span = {span}", f'channels = "{format_ranges(chans)}"',
                    f'signalling = "{sig}"']
            if sig == "e1_cas" and self.variant:
                out.append(f'cas_variant = "{self.variant}"')
            if rx:
                out.append(f"rx_gain = {rx}")
            if tx:
                out.append(f"tx_gain = {tx}")
        return "\n".join(out) + "\n"


def parse_ranges(text: str) -> list[int]:
    nums: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        lo, _, hi = part.partition("-")
        a, b = int(lo), int(hi) if hi else int(lo)
        if a < 1 or b < a:
            raise ValueError(f"bad channel range {part!r}")
        nums += range(a, b + 1)
    return nums


def format_ranges(nums: list[int]) -> str:
    from boarddrv.config import format_ranges as fmt
    return fmt(sorted(nums))


def _board_sizes(uri: str) -> list[tuple[str, int]]:
    from boarddrv.board import open_board
    from boarddrv.dahdiconf import span_sizes
    with open_board(uri) as b:
        return [(str(getattr(s.kind, "name", s.kind)).lower(), n) for s, n in zip(b.spans, span_sizes(b), strict=True)]


def main(argv: list[str]) -> int:
    if not argv or argv[0] != "import":
        return fail("voiceboard config", "usage: voiceboard config import SYSTEM_CONF [CHAN_DAHDI_CONF] "
                                         "[--uri dahdi://] [--board URI] [-o FILE]", 2)
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    ap.add_argument("system_conf")
    ap.add_argument("chan_dahdi_conf", nargs="?")
    ap.add_argument("--uri", default="dahdi://", help="the board URI to write (default dahdi://)")
    ap.add_argument("--board", metavar="URI", help="take the span layout from this board")
    ap.add_argument("-o", "--output", help="write the TOML here (default: stdout)")
    args = ap.parse_args(argv[1:])
    try:
        imp = Importer(_board_sizes(args.board) if args.board else None)
        imp.read_system(args.system_conf)
        if args.chan_dahdi_conf:
            imp.read_chan_dahdi(args.chan_dahdi_conf)
        text = imp.toml(args.uri, imp.layout())
    except (OSError, ValueError) as exc:
        return fail(PROG, str(exc), 2)
    except Exception as exc:   # BoardError from --board
        return fail(PROG, str(exc), 1)
    from boarddrv.config import load
    from boarddrv.tomlconfig import ConfigError
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write(text)
    try:
        load(f.name)
    except ConfigError as exc:
        imp.report.append(f"the imported configuration does not load: {exc}")
    finally:
        os.unlink(f.name)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as out:
            out.write(text)
    else:
        sys.stdout.write(text)
    for line in imp.report:
        print(f"{PROG}: {line}", file=sys.stderr)
    return 1 if imp.report else 0
