"""`voiceboard cid FILE [--json]` on WAV files (mono, stereo, A-law, other rates)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from boarddrv.cli import main as voiceboard
from dsp.audiofile import write_wav
from dsp.callerid import CallerId, callerid_audio, encode_message, fsk_encode_bytes
from dsp.callerid_cli import main as cid_main


def stereo(a: np.ndarray, b: np.ndarray, lead=(1000, 4000)) -> np.ndarray:
    n = max(len(a) + lead[0], len(b) + lead[1]) + 2000
    x = np.zeros((2, n), np.int16)
    x[0, lead[0]:lead[0] + len(a)] = a
    x[1, lead[1]:lead[1] + len(b)] = b
    return x


@pytest.fixture
def stereo_wav(tmp_path):
    path = str(tmp_path / "two-lines.wav")
    fsk = callerid_audio("13912345678", "Zhang San", (11, 23, 9, 5), standard="bell202")
    pytest.importorskip("dsp.dtmf", reason="dsp.dtmf not built")
    dtmf = callerid_audio("5551234", standard="dtmf")
    write_wav(path, stereo(fsk, dtmf))
    return path


def test_text_output_one_line_per_channel(stereo_wav, capsys):
    assert cid_main([stereo_wav]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2
    assert out[0].startswith("chan 0") and "mdmf" in out[0] and "bell202" in out[0]
    assert "number 13912345678" in out[0] and 'name "Zhang San"' in out[0] and "date 11-23 09:05" in out[0]
    assert "0.125s" in out[0]  # starts 1000 samples in
    assert out[1].startswith("chan 1") and "dtmf" in out[1] and "number 5551234" in out[1]


def test_json_output_through_the_dispatcher(stereo_wav, capsys):
    assert voiceboard(["cid", stereo_wav, "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["chan"], r["format"], r["number"]) for r in rows] == [(0, "mdmf", "13912345678"),
                                                                    (1, "dtmf", "5551234")]
    assert rows[0]["name"] == "Zhang San" and rows[0]["standard"] == "bell202"
    assert rows[0]["datetime"] == {"month": 11, "day": 23, "hour": 9, "minute": 5}
    assert rows[0]["time"] == pytest.approx(1000 / 8000, abs=0.01)
    assert rows[1]["datetime"] is None


def test_alaw_at_16khz_mono(tmp_path, capsys):
    """Any file libsndfile reads, at any rate: here A-law resampled from 16 kHz."""
    from scipy.signal import resample_poly
    a = callerid_audio(None, standard="v23", format="sdmf", when=(2, 29, 12, 0))
    x = np.concatenate([np.zeros(800), a, np.zeros(2000)])
    up = np.clip(resample_poly(x, 2, 1), -32768, 32767).astype(np.int16)
    path = str(tmp_path / "sdmf.wav")
    write_wav(path, up, rate=16000, subtype="ALAW")
    assert cid_main([path, "--json"]) == 0
    (row,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert row["format"] == "sdmf" and row["standard"] == "v23" and row["number_absence"] == "P"


def test_garbled_message_warns_and_nothing_found(tmp_path, capsys):
    msg = bytearray(encode_message(CallerId(number="123")))
    msg[-1] ^= 0xFF
    path = str(tmp_path / "bad.wav")
    write_wav(path, np.concatenate([np.zeros(400, np.int16), fsk_encode_bytes(bytes(msg))]))
    assert cid_main([path]) == 1
    cap = capsys.readouterr()
    assert cap.out == ""
    assert "chan 0" in cap.err and "garbled mdmf caller ID (bad checksum" in cap.err


def test_errors(tmp_path, capsys):
    assert cid_main([str(tmp_path / "missing.wav")]) == 2
    assert "missing.wav: no such file" in capsys.readouterr().err  # the message all three tools give
    (tmp_path / "junk.wav").write_bytes(b"not audio")
    assert cid_main([str(tmp_path / "junk.wav")]) == 2
    assert "junk.wav" in capsys.readouterr().err
    assert cid_main([]) == 2
    assert cid_main(["x.wav", "--standard", "v21"]) == 2
