"""`voiceboard audit --pci`: card numbers keyed as DTMF, found, masked, with file and times."""
from __future__ import annotations

import json

import numpy as np
import pytest

from boarddrv.cli import main as voiceboard
from dsp.archive import Found
from dsp.audiofile import write_wav
from dsp.audit_cli import card_number, luhn_ok, main, mask, sequences
from dsp.dtmf import dtmf_signal

VISA = "4111111111111111"        # passes Luhn
UNIONPAY = "6222021234567890123"  # 19 digits, made to pass below
AMEX = "378282246310005"         # 15 digits, passes


def _fix_luhn(body: str) -> str:
    """body + the check digit that makes it pass."""
    return body + next(str(d) for d in range(10) if luhn_ok(body + str(d)))


def test_luhn():
    assert luhn_ok(VISA) and luhn_ok(AMEX) and luhn_ok("79927398713")
    assert not luhn_ok("4111111111111112") and not luhn_ok("79927398710")
    assert luhn_ok(_fix_luhn(UNIONPAY[:-1]))


def test_what_counts_as_a_card_number():
    up = _fix_luhn(UNIONPAY[:-1])
    assert card_number(VISA) == (0, 16)
    assert card_number(up) == (0, 19)
    assert card_number("4111111111111112") is None          # fails Luhn: no window tried inside
    assert card_number("411111111111") is None              # 12 digits
    assert card_number(VISA + "1227" + "123") == (0, 16)    # number, expiry, CVV run together
    assert card_number("12345" + up) == (5, 19)             # account digits, then the card
    assert card_number("1" * 25) is None                    # starts like no card
    assert mask(VISA) == "411111******1111" and mask(AMEX) == "378282*****0005"


def test_sequences_split_at_other_keys_and_long_pauses():
    def f(key, start, end):
        return Found(0, start, end, key)
    digits = [f("1", 0, 800), f("2", 1600, 2400), f("#", 3200, 4000), f("3", 4800, 5600),
              f("4", 6400, 7200), f("5", 7200 + 3 * 8000 + 1, 7200 + 3 * 8000 + 800)]
    runs = sequences(digits, 3 * 8000)
    assert ["".join(d.key for d in r) for r in runs] == ["12", "34", "5"]


def _call(path, *parts, gap_s=5.0):
    """A recording of DTMF strings (80 ms tones, 120 ms apart) with gap_s of quiet between them."""
    rng = np.random.default_rng(0)
    chunks = [np.zeros(4000)]
    for p in parts:
        chunks += [dtmf_signal(p, on_ms=80, off_ms=120).astype(np.float64), np.zeros(int(gap_s * 8000))]
    x = np.concatenate(chunks) + rng.normal(0, 30, sum(len(c) for c in chunks))
    write_wav(str(path), np.clip(x, -32768, 32767).astype(np.int16)[None])


def test_finds_masks_and_exits_1(tmp_path, capsys):
    (tmp_path / "day").mkdir()
    _call(tmp_path / "day" / "card.wav", "1", VISA + "#", "0125")
    _call(tmp_path / "day" / "clean.wav", "1", "4111111111111112", "13800138000")
    _call(tmp_path / "day" / "amex.wav", AMEX)
    assert main([str(tmp_path / "day"), "--pci", "--json", "-j", "1"]) == 1
    out = capsys.readouterr().out
    assert VISA not in out and AMEX not in out                  # never the number in clear
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(r["file"].rsplit("/", 1)[1], r["masked"], r["digits"]) for r in rows] == [
        ("amex.wav", "378282*****0005", 15), ("card.wav", "411111******1111", 16)]
    card = rows[1]
    # "1" at 0.5 s, then 5 s of quiet: the number starts at 0.5 + 0.08 + 0.12 + 5 s
    assert card["start"] == pytest.approx(5.7, abs=0.01)
    assert card["end"] == pytest.approx(5.7 + 15 * 0.2 + 0.08, abs=0.01)


def test_clean_archive_exits_0_and_says_so(tmp_path, capsys):
    _call(tmp_path / "a.wav", "1", "4111111111111112")
    assert voiceboard(["audit", str(tmp_path), "--pci"]) == 0
    cap = capsys.readouterr()
    assert cap.out == "" and "no card numbers keyed as DTMF (1 file" in cap.err


def test_errors_and_usage(tmp_path, capsys):
    _call(tmp_path / "card.wav", VISA)
    (tmp_path / "bad.wav").write_bytes(b"RIFF junk")
    assert main([str(tmp_path), "--pci"]) == 1                  # a finding wins over an error
    assert "bad.wav: cannot read audio" in capsys.readouterr().err
    assert main([str(tmp_path / "bad.wav"), "--pci"]) == 2      # nothing found, an error
    assert main([str(tmp_path)]) == 2                           # which audit? --pci is required
    assert "--pci" in capsys.readouterr().err
