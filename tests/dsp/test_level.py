"""dsp.level: the meter reads dBm0 per channel; the VAD kernel follows its documented
rules (numpy reference) and finds speech in noise without calling steady noise speech."""
from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from dsp import _level, units
from dsp.audiofile import read_audio
from dsp.checks import AudioArrayError
from dsp.level import DBM0_REF, LevelMeter, SpeechEvent, VoiceActivityDetector, block_dbm0

RATE = 8000


def sine(f: float, dbm0: float, seconds: float) -> np.ndarray:
    t = np.arange(int(round(seconds * RATE))) / RATE
    return units.dbm0_to_peak(dbm0) * np.sin(2 * np.pi * f * t)


def i16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


# ---------------------------------------------------------------- meter

def test_dbm0_reference_is_the_shared_constant():
    assert DBM0_REF == units.DBM0_REF_RMS


def test_meter_reads_each_channel_in_dbm0():
    levels = [0.0, -10.0, -23.0, -40.0]
    x = i16(np.stack([sine(1004, lv, 0.02) for lv in levels] + [np.zeros(160)]))
    m = LevelMeter(5)
    got = m.rx(x)
    np.testing.assert_allclose(got[:4], levels, atol=0.05)
    assert got[4] == -np.inf                       # silence is -inf, not an error
    m.rx(i16(np.stack([sine(1004, -30, 0.02)] * 5)))
    np.testing.assert_allclose(m.peak_dbm0[:4], np.maximum(levels, -30), atol=0.05)
    np.testing.assert_allclose(m.level_dbm0, -30, atol=0.05)
    m.reset()
    assert np.all(m.peak_dbm0 == -np.inf)


def test_block_dbm0_matches_units():
    x = i16(np.random.default_rng(0).standard_normal((3, 400)) * 1000)
    np.testing.assert_allclose(block_dbm0(x), [units.signal_dbm0(r) for r in x])


def test_meter_errors():
    m = LevelMeter(2)
    with pytest.raises(AudioArrayError, match=r"LevelMeter.rx: expected int16\[2, n\], got float64"):
        m.rx(np.zeros((2, 160)))
    with pytest.raises(AudioArrayError, match="3 channels, expected 2"):
        m.rx(np.zeros((3, 160), np.int16))


# ---------------------------------------------------------------- VAD kernel

def vad_reference(x: np.ndarray, floor0: list[float], frame_len: int, ratio: float,
                  abs_min: float, down: float, up_quiet: float, up_speech: float, attack: int,
                  hangover: int):
    """The kernel's rules, one channel at a time, in plain Python over numpy frame energies."""
    nchan, n = x.shape
    nfr = n // frame_len
    e_all = (x[:, :nfr * frame_len].astype(np.float64).reshape(nchan, nfr, frame_len) ** 2).mean(axis=2)
    events = []
    for c in range(nchan):
        floor, speech, run, quiet, last = floor0[c], False, 0, 0, 0
        for j in range(nfr):
            e = e_all[c, j]
            if floor < 0:
                floor = max(e, abs_min)
            loud = e > floor * ratio and e > abs_min
            if not speech:
                if loud:
                    run += 1
                    if run >= attack:
                        speech, quiet, last = True, 0, j
                        events.append((j, c, 1, j - run + 1))
                else:
                    run = 0
            else:
                if loud:
                    quiet, last = 0, j
                else:
                    quiet += 1
                    if quiet >= hangover:
                        speech, run = False, 0
                        events.append((j, c, 0, last + 1))
            if e < floor:
                floor += down * (e - floor)
            else:
                floor = min(floor * (up_speech if speech else up_quiet), e)
            floor = max(floor, abs_min * 0.01)
    return [e[1:] for e in sorted(events)]


def test_vad_kernel_matches_reference():
    rng = np.random.default_rng(1)
    n = 8000 * 6
    x = rng.standard_normal((3, n)) * units.dbm0_to_rms(-55)
    for c in range(3):   # noise bursts at random places, lengths and levels
        for _ in range(6):
            a = int(rng.integers(0, n - 4000))
            b = a + int(rng.integers(200, 4000))
            x[c, a:b] += rng.standard_normal(b - a) * units.dbm0_to_rms(rng.uniform(-40, -10))
    x = i16(x)
    args = dict(frame_len=80, ratio=10 ** 0.9, abs_min=units.dbm0_to_rms(-50) ** 2, down=0.5,
                up_quiet=10 ** (3.0 * 0.01 / 10), up_speech=10 ** (0.3 * 0.01 / 10),
                attack=3, hangover=40)
    st = dict(acc=np.zeros(3), floor=np.array([-1.0, args["abs_min"], 1e3]),
              speech=np.zeros(3, np.int32),
              run=np.zeros(3, np.int32), quiet=np.zeros(3, np.int32), last=np.zeros(3, np.int64))
    got, pos, frames = [], 0, 0
    for a in range(0, n, 333):
        blk = np.ascontiguousarray(x[:, a:a + 333].T, dtype=np.float32)
        ev = np.zeros((64, 3), np.int64)
        nev, nfr, pos = _level.vad_block(blk, st["acc"], pos, 80, st["floor"], st["speech"],
                                         st["run"], st["quiet"], st["last"], frames,
                                         args["ratio"], args["abs_min"], args["down"],
                                         args["up_quiet"], args["up_speech"], args["attack"],
                                         args["hangover"], ev)
        frames += nfr
        got += [tuple(int(v) for v in e) for e in ev[:nev]]
    ref = vad_reference(x, [-1.0, args["abs_min"], 1e3], **args)
    assert got == ref and len(ref) >= 6


# ---------------------------------------------------------------- VAD behaviour

def run_vad(vad: VoiceActivityDetector, x: np.ndarray, block: int = 160) -> list[SpeechEvent]:
    out = []
    for b in range(0, x.shape[1], block):
        out += vad.rx(np.ascontiguousarray(x[:, b:b + block]))
    return out


def test_bursts_in_noise_are_found_with_their_positions():
    rng = np.random.default_rng(2)
    n = 8 * RATE
    x = rng.standard_normal(n) * units.dbm0_to_rms(-45)
    bursts = [(1.0, 1.8), (3.0, 4.5), (6.0, 6.3)]
    for a, b in bursts:
        ia, ib = int(a * RATE), int(b * RATE)
        x[ia:ib] += sine(300, -20, b - a) * (1 + 0.5 * np.sin(np.linspace(0, 20, ib - ia)))
    vad = VoiceActivityDetector(1)
    ev = run_vad(vad, i16(x[None, :]))
    starts = [e for e in ev if e.end is None]
    stops = [e for e in ev if e.end is not None]
    assert len(starts) == len(stops) == 3
    for (a, b), s, e in zip(bursts, starts, stops, strict=False):
        assert abs(s.start - a * RATE) <= 160 and s.start == e.start
        assert abs(e.end - b * RATE) <= 160
    assert vad.noise_floor_dbm0()[0] == pytest.approx(-45, abs=3)


def test_steady_noise_is_learnt_and_not_speech():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 12 * RATE)) * units.dbm0_to_rms(-30)
    x[1] *= 0.1                                               # -50 dBm0 on channel 1
    vad = VoiceActivityDetector(3)
    ev = run_vad(vad, i16(x))
    # loud noise from the first sample: one stretch while the floor climbs
    # (-50 -> -39 dBm0 at 3 dB/s), then never again
    for c, want in ((0, [True, False]), (1, []), (2, [True, False])):
        assert [e.end is None for e in ev if e.chan == c] == want
    assert all(e.end is None or e.end <= 5 * RATE for e in ev)
    np.testing.assert_allclose(vad.noise_floor_dbm0(), [-30, -50, -30], atol=3)
    assert not vad.speaking().any()
    # told the line's noise level, there is no false stretch at all
    assert run_vad(VoiceActivityDetector(1, initial_floor_dbm0=-30), i16(x[:1])) == []


def test_hangover_bridges_gaps_between_words():
    rng = np.random.default_rng(4)
    words = [sine(250, -20, 0.3), np.zeros(int(0.2 * RATE)), sine(250, -20, 0.3),
             np.zeros(RATE)]
    x = np.concatenate(words) + rng.standard_normal(int(1.8 * RATE)) * units.dbm0_to_rms(-60)
    ev = run_vad(VoiceActivityDetector(1, hangover_ms=400), i16(x[None, :]))
    assert [e.end is None for e in ev] == [True, False]           # one utterance
    ev = run_vad(VoiceActivityDetector(1, hangover_ms=100), i16(x[None, :]))
    assert [e.end is None for e in ev] == [True, False, True, False]


def test_channels_are_independent():
    rng = np.random.default_rng(5)
    one = np.concatenate([np.zeros(RATE), sine(400, -15, 1.0), np.zeros(RATE)])
    x = np.stack([one, np.zeros_like(one), np.roll(one, RATE // 2)])
    x += rng.standard_normal(x.shape) * units.dbm0_to_rms(-60)
    ev = run_vad(VoiceActivityDetector(3), i16(x))
    assert {e.chan for e in ev} == {0, 2}
    s0 = [e.start for e in ev if e.chan == 0 and e.end is None][0]
    s2 = [e.start for e in ev if e.chan == 2 and e.end is None][0]
    assert s2 - s0 == RATE // 2


def test_tts_speech_is_found_and_its_pauses_end_it(tmp_path):
    exe = shutil.which("espeak-ng")
    if exe is None:
        pytest.fail("espeak-ng not installed (Debian package espeak-ng)")
    p = tmp_path / "s.wav"
    subprocess.run([exe, "-v", "en-us", "-w", str(p), "Please leave a message after the tone."],
                   check=True, capture_output=True)
    s = read_audio(str(p))[0].astype(np.float64)
    s *= units.dbm0_to_rms(-18) / np.sqrt(np.mean(s[np.abs(s) > 100] ** 2))
    rng = np.random.default_rng(6)
    x = np.concatenate([np.zeros(RATE), s, np.zeros(2 * RATE)])
    x += rng.standard_normal(len(x)) * units.dbm0_to_rms(-55)
    ev = run_vad(VoiceActivityDetector(1), i16(x[None, :]))
    starts = [e for e in ev if e.end is None]
    stops = [e for e in ev if e.end is not None]
    assert starts and stops and len(starts) == len(stops)
    loud = np.nonzero(np.abs(s) > 0.05 * np.abs(s).max())[0]
    assert abs(starts[0].start - (RATE + loud[0])) <= 400
    assert abs(stops[-1].end - (RATE + loud[-1])) <= 800


def test_vad_errors():
    with pytest.raises(ValueError, match="frame_ms"):
        VoiceActivityDetector(1, frame_ms=1)
    with pytest.raises(ValueError, match="nchan"):
        VoiceActivityDetector(0)
    with pytest.raises(AudioArrayError, match=r"VoiceActivityDetector.rx: expected int16\[1, n\]"):
        VoiceActivityDetector(1).rx(np.zeros((1, 10)))
