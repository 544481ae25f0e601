"""`voiceboard tones FILE`: names tones per channel from a WAV; errors go to stderr with exit codes."""
from __future__ import annotations

import json

import numpy as np
import pytest

from boarddrv.cli import main as voiceboard
from dsp.audiofile import write_wav
from dsp.tones import RATE, ToneGenerator, TonePlan
from dsp.tones_cli import main


@pytest.fixture
def wav(tmp_path) -> str:
    """Channel 0: busy from 1 s to 5 s; channel 1: ringback from 0.5 s to the end (9 s)."""
    plan = TonePlan.load("cn")
    x = np.zeros((2, 9 * RATE), np.int16)
    g = ToneGenerator(2, plan)
    g.play(0, "busy")
    g.tx(x[:, RATE:5 * RATE])          # channel 1 silent: only channel 0 plays here
    g.stop(0)
    g.play(1, "ringback")
    g.tx(x[:, RATE // 2:])
    path = tmp_path / "line.wav"
    write_wav(str(path), x)
    return str(path)


def test_json_lines_name_each_channels_tones(wav, capsys):
    assert main([wav, "--zone", "cn", "--json"]) == 0
    recs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["chan"], r["tone"]) for r in recs] == [(0, "busy"), (1, "ringback")]
    busy, ring = recs
    assert busy["start"] == pytest.approx(1.0, abs=0.04)
    assert busy["end"] == pytest.approx(4.85, abs=0.04)      # last 0.35 s burst ends at 4.85 s
    assert ring["start"] == pytest.approx(0.5, abs=0.04) and ring["end"] is None


def test_table_through_the_voiceboard_dispatcher(wav, capsys):
    assert voiceboard(["tones", wav]) == 0
    out = capsys.readouterr().out
    assert "zone cn" in out and "2 channel(s), 9.00 s" in out
    assert "chan  0  busy" in out and "chan  1  ringback" in out and "(to the end)" in out


def test_all_lists_silence_and_unknown(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x = np.concatenate([np.zeros(6 * RATE), rng.standard_normal(RATE) * 2000]).astype(np.int16)
    path = tmp_path / "quiet.wav"
    write_wav(str(path), x)
    assert main([str(path), "--json", "--all"]) == 0
    recs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["tone"] for r in recs] == ["silence", "unknown"]
    assert recs[0]["end"] == pytest.approx(6.0, abs=0.04)
    assert main([str(path)]) == 1  # exit status 1: nothing found, said on stderr
    cap = capsys.readouterr()
    assert "1 channel(s), 7.00 s" in cap.out and "no call-progress tones" in cap.err


def test_site_plan_file(wav, tmp_path, capsys):
    site = tmp_path / "site.toml"
    site.write_text('[acme]\nbase = "cn"\n[acme.tones]\nbusy = { freqs = [450], cadence = [0.35, 0.35] }\n')
    assert main([wav, "--zone", "acme", "--plan", str(site), "--json"]) == 0
    assert '"busy"' in capsys.readouterr().out


def test_bad_site_plan_is_reported_with_file_line_and_key(tmp_path, capsys):
    site = tmp_path / "site.toml"
    site.write_text('[acme]\nbase = "cn"\n[acme.tones]\nbusy = { freqs = [450], cadence = [0.35] }\n')
    (tmp_path / "x.wav").write_bytes(b"")
    assert main([str(tmp_path / "x.wav"), "--zone", "acme", "--plan", str(site)]) == 2
    err = capsys.readouterr().err
    assert err == (f"voiceboard tones: {site}:4: key 'acme.tones.busy.cadence': "
                   "expected on/off pairs (an even count), got 1 values\n")


def test_errors_go_to_stderr_with_nonzero_exit(tmp_path, capsys):
    # exit status 2 for input errors (was 1 before the tools shared one convention)
    assert main([str(tmp_path / "missing.wav")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("voiceboard tones: ") and "missing.wav" in err
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF nonsense")
    assert main([str(bad)]) == 2
    assert "cannot read audio" in capsys.readouterr().err
    (tmp_path / "x.wav").write_bytes(b"")
    assert main([str(tmp_path / "x.wav"), "--zone", "mars"]) == 2
    assert "no such tone zone" in capsys.readouterr().err
    assert main([]) == 2
