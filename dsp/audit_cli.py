"""`voiceboard audit PATH... --pci`: find recordings that hold card numbers keyed as DTMF.

PCI DSS forbids keeping card data in call recordings; an IVR that records
a caller keying their card number breaks it. This scans recordings (files
or directories, on every core, streamed: dsp.archive) with the DTMF
receiver and reports each DTMF sequence shaped like a payment card number:

- digits 0-9 on one channel with at most `--max-gap` seconds (default 3)
  between one digit's end and the next one's start; *, #, A-D end a sequence;
- 13 to 19 digits passing the Luhn check; a sequence longer than 19 digits
  counts when its first or its last 13..19 digits start like a card number
  (2-6) and pass (a card number run together with the expiry date and CVV).

Each finding names the file, channel and times; the number is printed
masked (first 6 and last 4 digits, as PCI DSS allows a display to show).
Exit status: 1 when any card number was found, 0 when none was (said on
stderr), 2 on a usage or input error with none found.
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

from dsp import archive
from dsp.archive import FileResult, Found
from dsp.dtmf_cli import DtmfAnalyser

RATE = 8000
CARD_MIN, CARD_MAX = 13, 19


def luhn_ok(digits: str) -> bool:
    """The Luhn (mod 10) check of payment card numbers."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def card_number(digits: str) -> tuple[int, int] | None:
    """(offset, length) of a card number in a digit sequence, or None.

    A sequence of 13..19 digits is judged whole. One longer than a card
    number can be (> 19) is judged by its longest passing prefix, else
    suffix, of 13..19 digits that starts like a card (2-6: Mastercard, Amex,
    JCB, Diners, Visa, Discover, UnionPay). Windows are not tried inside
    13..19-digit sequences: a tenth of any digits pass Luhn, so trying
    several windows would flag most long numbers (accounts, phones).
    """
    n = len(digits)
    if CARD_MIN <= n <= CARD_MAX:
        return (0, n) if luhn_ok(digits) else None
    if n < CARD_MIN:
        return None
    for length in range(CARD_MAX, CARD_MIN - 1, -1):
        if digits[0] in "23456" and luhn_ok(digits[:length]):
            return 0, length
        if digits[n - length] in "23456" and luhn_ok(digits[n - length:]):
            return n - length, length
    return None


def mask(number: str) -> str:
    """First 6 and last 4 digits shown, the rest '*'."""
    return number[:6] + "*" * (len(number) - 10) + number[-4:]


def sequences(digits: list[Found], max_gap: int) -> list[list[Found]]:
    """Runs of 0-9 digits on one channel, split at other keys and at gaps > max_gap samples."""
    runs: list[list[Found]] = []
    cur: list[Found] = []
    for f in sorted(digits, key=lambda f: f.start):
        prev_end = cur[-1].end if cur else None
        if not f.key.isdigit() or (prev_end is not None and f.start - prev_end > max_gap):
            if cur:
                runs.append(cur)
            cur = []
        if f.key.isdigit():
            cur.append(f)
    if cur:
        runs.append(cur)
    return runs


@dataclass
class PciAuditTool(archive.Tool):
    max_gap_s: float = 3.0
    name = "audit"
    nothing = "no card numbers keyed as DTMF"

    def analyser(self, nlanes: int) -> DtmfAnalyser:
        return DtmfAnalyser(nlanes, {})

    def rows(self, found: list[Found], result: FileResult) -> list[dict]:
        out = []
        for chan in sorted({f.lane for f in found}):
            digits = [f for f in found if f.lane == chan]
            for run in sequences(digits, int(self.max_gap_s * RATE)):
                text = "".join(f.key for f in run)
                hit = card_number(text)
                if hit is None:
                    continue
                off, length = hit
                first, last = run[off], run[off + length - 1]
                end = last.end if last.end is not None else result.samples
                out.append({"channel": chan, "start": round(first.start / RATE, 3),
                            "end": round(min(end, result.samples) / RATE, 3),
                            "digits": length, "masked": mask(text[off:off + length])})
        out.sort(key=lambda r: (r["start"], r["channel"]))
        return out

    def table_header(self) -> str:
        return f"{'channel':>7}  {'start s':>8}  {'end s':>8}  {'digits':>6}  card number (masked)"

    def table_row(self, r: dict) -> str:
        return (f"{r['channel']:>7}  {r['start']:>8.3f}  {r['end']:>8.3f}  {r['digits']:>6}  "
                f"{r['masked']}")

    def exit_status(self, found: int, errors: int) -> int:
        if found:
            return 1
        return archive.EXIT_ERROR if errors else 0


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="voiceboard audit",
        description="Find recordings holding DTMF sequences shaped like payment card numbers "
                    "(13-19 digits passing the Luhn check); numbers are printed masked.",
        epilog="exit status: 1 card numbers found, 0 none found (said on stderr), "
               "2 usage or input error (and none found)", formatter_class=archive.HelpFormatter)
    archive.add_arguments(ap)
    ap.add_argument("--pci", action="store_true", required=True,
                    help="look for card numbers keyed as DTMF (PCI DSS)")
    ap.add_argument("--max-gap", type=float, default=3.0, metavar="S",
                    help="longest pause between two digits of one number (default 3 s)")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = archive.parse(parser(), argv)
    if isinstance(args, int):
        return args
    if not 0.0 < args.max_gap <= 60.0:
        print(f"voiceboard audit: --max-gap {args.max_gap} outside (0, 60] s", file=sys.stderr)
        return archive.EXIT_ERROR
    return archive.main(PciAuditTool(max_gap_s=args.max_gap), args, "voiceboard audit")


if __name__ == "__main__":
    sys.exit(main())
