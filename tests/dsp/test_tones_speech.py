"""No false call-progress tones over speech (espeak-ng, several voices) or synthetic music.

The voice server hangs up on busy tone: a false busy during a caller's
speech drops a live call, so this is the detector's most expensive error.
The speech is synthesised at test time into a temp dir (never committed).
Female voices are the hard case: a fundamental near 225 Hz puts its second
harmonic right on China's 450 Hz.
"""
from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from dsp import units
from dsp.audiofile import read_audio
from dsp.tones import RATE, CallProgressDetector, TonePlan

from tonesig import run_detector, segments, silence, synth, to_int16

TEXTS = {
    "en": "Hello, thank you for calling. All of our agents are busy at the moment. "
          "Please stay on the line, your call is important to us. Aaaah, hmmm, yes, "
          "the number you have dialled is not in service. Nine four five, one two three.",
    "cmn": "你好，欢迎致电。您拨打的电话正在通话中，请稍后再拨。请按一号键查询余额，按零号键转人工服务。",
    "de": "Guten Tag, bitte warten Sie. Der gewünschte Gesprächspartner ist zur Zeit nicht erreichbar.",
    "fr": "Bonjour, veuillez patienter. Votre correspondant est actuellement en ligne.",
}
# (language, espeak voice, pitch 0-99, words per minute)
VOICES = [("en", "en-us", 50, 160), ("en", "en-us+f3", 85, 170), ("en", "en-gb+f2", 99, 140),
          ("en", "en-us+m3", 20, 190), ("cmn", "cmn", 50, 150), ("cmn", "cmn+f4", 90, 150),
          ("de", "de+f1", 75, 160), ("fr", "fr", 40, 175)]


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> list[np.ndarray]:
    """One float64 signal per voice, each at -15 dBm0 while talking."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        pytest.fail("espeak-ng not installed (Debian package espeak-ng): the speech corpus "
                    "for the false-detection tests is generated with it")
    d = tmp_path_factory.mktemp("tts")
    out = []
    for i, (lang, voice, pitch, wpm) in enumerate(VOICES):
        path = d / f"v{i}.wav"
        subprocess.run([exe, "-v", voice, "-p", str(pitch), "-s", str(wpm), "-w", str(path),
                        TEXTS[lang]], check=True, capture_output=True)
        x = read_audio(str(path))[0].astype(np.float64)
        active = x[np.abs(x) > 0.01 * np.abs(x).max()]
        x *= units.dbm0_to_rms(-15.0) / np.sqrt(np.mean(active ** 2))
        out.append(x)
    return out


def music(seconds: float, seed: int, voices: int, harmonics: list[float]) -> np.ndarray:
    """Equal-tempered melodies (A4 = 440 Hz, so near 425/450 Hz) with ADSR and vibrato,
    note lengths from busy/congestion-like values on purpose."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    y = np.zeros(n)
    for _ in range(voices):
        pos = 0
        while pos < n:
            dur = rng.choice([0.25, 0.35, 0.5, 0.7, 1.0])
            gap = rng.choice([0.0, 0.05, 0.35])
            m = min(int(dur * RATE), n - pos)
            f0 = 440.0 * 2 ** (rng.integers(-12, 8) / 12)
            t = np.arange(m) / RATE
            vib = 1 + 0.004 * np.sin(2 * np.pi * 5.5 * t)
            ph = 2 * np.pi * f0 * np.cumsum(vib) / RATE
            note = sum(a * np.sin((h + 1) * ph) for h, a in enumerate(harmonics))
            env = np.minimum(1, t / 0.02) * np.exp(-t * rng.uniform(0.5, 3))
            y[pos:pos + m] += note * env
            pos += m + int(gap * RATE)
    return y * units.dbm0_to_rms(-15.0) / np.sqrt(np.mean(y ** 2))


def tone_events(x: np.ndarray, zone: str):
    ev = run_detector(CallProgressDetector(x.shape[0], TonePlan.load(zone)), x)
    return [e for e, _ in ev if e.tone not in ("silence", "unknown")]


@pytest.mark.parametrize("zone", ["cn", "us", "uk", "eu"])
@pytest.mark.parametrize("level", [-25.0, -15.0, -5.0])
def test_no_tone_named_over_speech(speech, zone, level):
    n = max(len(s) for s in speech)
    gain = 10 ** ((level + 15.0) / 20)
    x = to_int16(np.stack([np.pad(s * gain, (0, n - len(s))) for s in speech]))
    assert tone_events(x, zone) == []


@pytest.mark.parametrize("zone", ["cn", "us", "uk", "eu"])
def test_no_tone_named_over_music(zone):
    rich = [1.0, 0.7, 0.5, 0.35, 0.25]      # strings/brass-like
    soft = [1.0, 0.35, 0.15]                 # flute-like: most energy in the fundamental
    x = to_int16(np.stack([music(20.0, 1, 1, rich), music(20.0, 2, 3, rich),
                           music(20.0, 3, 1, soft), music(20.0, 4, 2, soft)]))
    assert tone_events(x, zone) == []


def test_busy_after_real_speech_within_the_deadline(speech):
    """The busy-disconnect case: the far end talks, hangs up, the exchange plays busy."""
    plan = TonePlan.load("cn")
    t = plan["busy"]
    chans, starts = [], []
    for s in speech:
        busy = synth(t.freqs, t.level_dbm0, segments(t.cadence, 3.0))
        chans.append(np.concatenate([s, silence(0.2), busy]))
        starts.append(len(s) + int(0.2 * RATE))
    n = max(len(c) for c in chans)
    x = to_int16(np.stack([np.pad(c, (0, n - len(c))) for c in chans]))
    ev = run_detector(CallProgressDetector(x.shape[0], plan), x)
    for c, b0 in enumerate(starts):
        got = [(e, at) for e, at in ev if e.chan == c and e.tone not in ("silence", "unknown")]
        assert [e.tone for e, _ in got if e.end is None] == ["busy"], (VOICES[c], got)
        e, at = got[0]
        assert abs(e.start - b0) <= 320 and at - b0 <= 2.1 * RATE
