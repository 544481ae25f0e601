"""Crash-safe WAV writing: headers every reader accepts, repair from the file length."""
from __future__ import annotations

import os
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf

from dsp import g711
from voiceserver.recording import wavfile as wavwriter
from voiceserver.recording.wavfile import WavError, WavFile, read_header, repair

HAVE_SOXI = shutil.which("soxi") is not None


def soxi(path, flag):
    return subprocess.run(["soxi", flag, str(path)], capture_output=True, text=True, check=True).stdout.strip()


def tone(n, f=440.0, amp=8000.0):
    return (amp * np.sin(2 * np.pi * f * np.arange(n) / 8000)).astype(np.int16)


@pytest.mark.parametrize("fmt,channels", [("pcm16", 1), ("pcm16", 2), ("alaw", 1), ("alaw", 2)])
def test_written_file_reads_in_soundfile_and_sox(tmp_path, fmt, channels):
    x = np.stack([tone(8001), tone(8001, 1000.0)])[:channels].T.copy()   # odd length: A-law mono pads
    path = tmp_path / "a.wav"
    w = WavFile(path, fmt=fmt, channels=channels)
    data = g711.alaw_encode(x) if fmt == "alaw" else x
    w.write(data[:4000])
    w.update_header()
    w.write(data[4000:])
    w.close()
    got, rate = sf.read(path, dtype="int16", always_2d=True)
    assert rate == 8000 and got.shape == (8001, channels)
    want = g711.alaw_decode(data) if fmt == "alaw" else x
    np.testing.assert_array_equal(got, want.reshape(8001, channels))
    assert read_header(path).frames == 8001
    assert os.path.getsize(path) % 2 == 0            # RIFF chunks are word-aligned
    if HAVE_SOXI:
        assert soxi(path, "-s") == "8001"
        assert soxi(path, "-c") == str(channels)
        assert soxi(path, "-e") == ("A-law" if fmt == "alaw" else "Signed Integer PCM")


@pytest.mark.parametrize("fmt", ["pcm16", "alaw"])
def test_repair_sets_sizes_from_length_and_drops_torn_frame(tmp_path, fmt):
    part = tmp_path / "b.wav.part"
    w = WavFile(part, fmt=fmt, channels=2)
    x = np.stack([tone(1600), tone(1600, 1000.0)]).T.copy()
    data = g711.alaw_encode(x) if fmt == "alaw" else x
    w.write(data[:800])
    w.update_header()                 # header says 800 frames
    w.write(data[800:])
    w.abort()                         # "killed": sizes stale
    with open(part, "ab") as f:
        f.write(b"\x01")              # a torn last frame
    assert read_header(part).frames == 800
    info = repair(part)
    assert info.frames == 1600
    with open(part, "rb") as f:
        got, _ = sf.read(f, dtype="int16")
    want = g711.alaw_decode(data) if fmt == "alaw" else x
    np.testing.assert_array_equal(got, want)


def test_header_only_part_repairs_to_zero_frames(tmp_path):
    part = tmp_path / "c.wav.part"
    WavFile(part, fmt="pcm16", channels=1).abort()
    assert repair(part).frames == 0


def test_bad_input_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown WAV format 'mp3'"):
        WavFile(tmp_path / "x.wav", fmt="mp3", channels=1)
    with pytest.raises(ValueError, match="channels must be 1 or 2"):
        WavFile(tmp_path / "x.wav", fmt="pcm16", channels=3)
    assert not (tmp_path / "x.wav").exists()
    w = WavFile(tmp_path / "y.wav", fmt="pcm16", channels=2)
    with pytest.raises(ValueError, match="not a whole number of 4-byte frames"):
        w.write(b"\0" * 6)
    w.close()
    with pytest.raises(FileExistsError):              # never overwrite a recording
        WavFile(tmp_path / "y.wav", fmt="pcm16", channels=2)
    (tmp_path / "z.wav").write_bytes(b"not a wav at all" * 4)
    with pytest.raises(WavError, match="z.wav: not a RIFF/WAVE"):
        repair(tmp_path / "z.wav")
    with pytest.raises(WavError, match="cannot read"):
        read_header(tmp_path / "missing.wav")


def test_header_lengths_are_fixed():
    assert wavwriter.header_len("pcm16") == 44
    assert wavwriter.header_len("alaw") == 58
