"""`voiceboard r2mf FILE [--json]`: JSON and table output, both sets, exit codes."""
from __future__ import annotations

import json

import numpy as np
import pytest

from boarddrv.cli import main as voiceboard
from dsp.audiofile import write_wav
from dsp.r2mf import r2mf_signal
from dsp.r2mf_cli import main

FWD = [1, 5, 10, 15, 3]
BWD = [1, 6, 3]


@pytest.fixture
def trunk_wav(tmp_path) -> str:
    """Two channels at 16 kHz: channel 0 forward signals from 0.5 s, channel 1 backward ones from 1.0 s."""
    from scipy.signal import resample_poly
    a = np.concatenate([np.zeros(4000, np.int16), r2mf_signal(FWD, forward=True, on_ms=80, off_ms=70)])
    b = np.concatenate([np.zeros(8000, np.int16), r2mf_signal(BWD, forward=False, level_dbm0=-20,
                                                               on_ms=150, off_ms=100)])
    n = max(len(a), len(b)) + 800
    x = np.zeros((2, n), np.int16)
    x[0, :len(a)] = a
    x[1, :len(b)] = b
    up = np.clip(resample_poly(x.astype(np.float64), 2, 1, axis=1), -32768, 32767).astype(np.int16)
    path = str(tmp_path / "trunk.wav")
    write_wav(path, up, rate=16000)
    return path


def test_json_lines(trunk_wav, capsys):
    assert main([trunk_wav, "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert set(rows[0]) == {"channel", "set", "signal", "start", "end"}
    fwd = [r for r in rows if r["channel"] == 0]
    bwd = [r for r in rows if r["channel"] == 1]
    assert [r["signal"] for r in fwd] == FWD and {r["set"] for r in fwd} == {"forward"}
    assert [r["signal"] for r in bwd] == BWD and {r["set"] for r in bwd} == {"backward"}
    for k, r in enumerate(fwd):  # signal k of channel 0 sounds from 0.5 + 0.15 k s for 80 ms
        assert abs(r["start"] - (0.5 + 0.15 * k)) < 0.01 and abs(r["end"] - (0.58 + 0.15 * k)) < 0.01
    for k, r in enumerate(bwd):
        assert abs(r["start"] - (1.0 + 0.25 * k)) < 0.01 and abs(r["end"] - (1.15 + 0.25 * k)) < 0.01
    starts = [r["start"] for r in rows]
    assert starts == sorted(starts)


def test_table_and_dispatch(trunk_wav, capsys):
    assert voiceboard(["r2mf", trunk_wav]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["channel", "set", "signal", "start", "s", "end", "s"]
    assert len(lines) == 1 + len(FWD) + len(BWD)
    chan, sset, sig, start, end = lines[1].split()
    assert (chan, sset, sig) == ("0", "forward", "1") and abs(float(start) - 0.5) < 0.01


def test_nothing_found(tmp_path, capsys):
    path = str(tmp_path / "quiet.wav")
    rng = np.random.default_rng(1)
    write_wav(path, rng.normal(0, 300, 16000).astype(np.int16))
    assert main([path, "--json"]) == 1
    out = capsys.readouterr()
    assert out.out == "" and "no MF R2 signals" in out.err and path in out.err


def test_input_errors(tmp_path, capsys):
    missing = str(tmp_path / "missing.wav")
    assert main([missing]) == 2
    assert missing in capsys.readouterr().err
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not audio at all")
    assert main([str(junk)]) == 2
    assert str(junk) in capsys.readouterr().err
    assert main([]) == 2
