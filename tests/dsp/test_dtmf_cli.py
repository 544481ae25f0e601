"""`voiceboard dtmf FILE [--json]`: table and JSON output, errors, multimon-ng cross-check."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from dsp.audiofile import write_wav
from dsp.dtmf import dtmf_signal
from dsp.dtmf_cli import main

DIGITS = "0123456789*#ABCD"


@pytest.fixture
def stereo_wav(tmp_path) -> str:
    """Two channels at 44.1 kHz: channel 0 all 16 digits, channel 1 '95#' later."""
    from scipy.signal import resample_poly
    a = np.concatenate([np.zeros(4000, np.int16), dtmf_signal(DIGITS, on_ms=70, off_ms=80)])
    b = np.concatenate([np.zeros(12000, np.int16), dtmf_signal("95#", level_dbm0=(-20, -22))])
    n = max(len(a), len(b)) + 800
    x = np.zeros((2, n), np.int16)
    x[0, :len(a)] = a
    x[1, :len(b)] = b
    up = np.clip(resample_poly(x.astype(np.float64), 441, 80, axis=1), -32768, 32767).astype(np.int16)
    path = str(tmp_path / "two.wav")
    write_wav(path, up, rate=44100)
    return path


def test_json_lines(stereo_wav, capsys):
    assert main([stereo_wav, "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    ch0 = [r for r in rows if r["channel"] == 0]
    ch1 = [r for r in rows if r["channel"] == 1]
    assert "".join(r["digit"] for r in ch0) == DIGITS
    assert "".join(r["digit"] for r in ch1) == "95#"
    assert set(rows[0]) == {"file", "channel", "digit", "start", "end"}
    assert rows[0]["file"] == stereo_wav
    # digit k of channel 0 sounds from 0.5 + 0.15 k s for 70 ms
    for k, r in enumerate(ch0):
        assert abs(r["start"] - (0.5 + 0.15 * k)) < 0.01
        assert abs(r["end"] - (0.57 + 0.15 * k)) < 0.01
    assert abs(ch1[0]["start"] - 1.5) < 0.01
    starts = [r["start"] for r in rows]
    assert starts == sorted(starts)


def test_table(stereo_wav, capsys):
    assert main([stereo_wav]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["channel", "digit", "start", "s", "end", "s"]
    assert len(lines) == 1 + 16 + 3
    chan, digit, start, end = lines[1].split()
    assert (chan, digit) == ("0", "0")
    assert abs(float(start) - 0.5) < 0.01 and abs(float(end) - 0.57) < 0.01


def test_flac_and_no_digits(tmp_path, capsys):
    import soundfile as sf
    path = str(tmp_path / "quiet.flac")
    rng = np.random.default_rng(0)
    sf.write(path, (rng.normal(0, 0.01, 16000)).astype(np.float32), 16000)
    assert main([path]) == 1  # exit status 1: nothing found, said on stderr
    cap = capsys.readouterr()
    assert cap.out == "" and "no DTMF digits (1 file" in cap.err


def test_errors_go_to_stderr(tmp_path, capsys):
    # exit status 2 for input errors (was 1 before the tools shared one convention)
    assert main([str(tmp_path / "missing.wav")]) == 2
    err = capsys.readouterr()
    assert "missing.wav: no such file" in err.err and err.out == ""
    bad = tmp_path / "bad.wav"
    bad.write_text("not audio")
    assert main([str(bad)]) == 2
    err = capsys.readouterr()
    assert "bad.wav: cannot read audio" in err.err and err.out == ""
    assert main([]) == 2


def test_voiceboard_command(stereo_wav):
    exe = os.path.join(os.path.dirname(sys.executable), "voiceboard")
    cmd = [exe] if os.path.exists(exe) else [sys.executable, "-m", "boarddrv.cli"]
    res = subprocess.run(cmd + ["dtmf", stereo_wav, "--json"], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr
    assert len(res.stdout.splitlines()) == 19
    res = subprocess.run(cmd + ["dtmf", stereo_wav + ".nope"], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 2 and "no such file" in res.stderr


@pytest.mark.skipif(shutil.which("multimon-ng") is None or shutil.which("sox") is None,
                    reason="multimon-ng and sox are needed for the cross-check")
def test_agrees_with_multimon_ng(tmp_path, capsys):
    """Same file, multimon-ng's DTMF decoder (22050 Hz raw s16 via sox): same digits."""
    x = np.concatenate([np.zeros(4000, np.int16),
                        dtmf_signal("8675309*#" + DIGITS, level_dbm0=(-12, -14), on_ms=60, off_ms=90)])
    wav = str(tmp_path / "x.wav")
    raw = str(tmp_path / "x.raw")
    write_wav(wav, x[None])
    subprocess.run(["sox", wav, "-t", "raw", "-r", "22050", "-e", "signed", "-b", "16", "-c", "1", raw],
                   check=True, capture_output=True, timeout=60)
    mm = subprocess.run(["multimon-ng", "-q", "-c", "-a", "DTMF", "-t", "raw", raw],
                        capture_output=True, text=True, timeout=60)
    theirs = "".join(line.split(":")[1].strip() for line in mm.stdout.splitlines()
                     if line.startswith("DTMF:"))
    assert main([wav, "--json"]) == 0
    ours = "".join(json.loads(line)["digit"] for line in capsys.readouterr().out.splitlines())
    assert ours == "8675309*#" + DIGITS
    assert theirs == ours
