"""Synthesise the default music on hold: a gentle, seamlessly looping piece.

Our own music (no third-party recording): a slow chord progression in
C major played by a soft pad, with a quiet arpeggio over it. Everything is
rendered into a circular buffer (note tails that run past the end are added
back at the start), so the file loops without a click or a gap: a caller
on hold for ten minutes hears no seam.

Frequencies stay inside the telephone band: the bass line (F2..E3) is
played by its harmonics only, without the fundamental, which a phone line
would cut anyway (the ear still hears the bass note); nothing is above
3.2 kHz. The level is the voice server's music-on-hold level.

Run: ``python prompts/make_moh.py [OUT.wav]`` (make_prompts.py also runs it).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

RATE = 8000
BEAT = 0.625                # s per beat (96 bpm): 8 chords x 4 beats = 20 s
BEATS_PER_CHORD = 4
# Chords as MIDI note numbers (bass, then the pad voicing around middle C).
PROGRESSION: list[tuple[int, tuple[int, ...]]] = [
    (48, (60, 64, 67, 71)),     # Cmaj7
    (45, (60, 64, 67, 69)),     # Am7
    (41, (60, 65, 69, 72)),     # Fmaj7 (add C)
    (43, (59, 62, 67, 74)),     # G (add 9)
    (48, (60, 64, 67, 72)),     # C
    (52, (59, 64, 67, 71)),     # Em7
    (41, (57, 60, 65, 69)),     # F
    (43, (59, 62, 65, 67)),     # G7 -> back to Cmaj7 at the loop
]
ARPEGGIO = (0, 1, 2, 3, 2, 1, 2, 3)   # indices into the voicing, one per half beat


def midi_hz(note: int) -> float:
    return 440.0 * 2.0 ** ((note - 69) / 12.0)


def _tone(freq: float, n: int, harmonics: tuple[float, ...]) -> np.ndarray:
    t = np.arange(n) / RATE
    out = np.zeros(n)
    for k, amp in enumerate(harmonics, start=1):
        if k * freq < 3200.0:
            out += amp * np.sin(2 * np.pi * k * freq * t)
    return out


def _add_circular(buf: np.ndarray, start: int, sig: np.ndarray) -> None:
    """Add ``sig`` at ``start``, wrapping what runs past the end to the start."""
    idx = (start + np.arange(sig.size)) % buf.size
    np.add.at(buf, idx, sig)


def _pad_env(n_hold: int, attack: float, release: float) -> np.ndarray:
    a = int(attack * RATE)
    r = int(release * RATE)
    env = np.ones(n_hold + r)
    env[:a] = 0.5 - 0.5 * np.cos(np.pi * np.arange(a) / a)          # raised-cosine attack
    env[n_hold:] = 0.5 + 0.5 * np.cos(np.pi * np.arange(r) / r)     # and release
    return env


def _pluck_env(n: int, attack: float, tau: float) -> np.ndarray:
    t = np.arange(n) / RATE
    env = np.exp(-t / tau)
    a = int(attack * RATE)
    env[:a] *= np.arange(a) / a
    return env


def synthesise() -> np.ndarray:
    """The whole loop as float64 samples at 8 kHz (unscaled)."""
    chord_len = int(round(BEAT * BEATS_PER_CHORD * RATE))
    buf = np.zeros(chord_len * len(PROGRESSION))
    half = int(round(BEAT / 2 * RATE))
    pad_env = _pad_env(chord_len, attack=0.8, release=1.2)
    pluck_len = int(1.6 * RATE)
    pluck_env = _pluck_env(pluck_len, attack=0.008, tau=0.45)
    for i, (bass, voicing) in enumerate(PROGRESSION):
        start = i * chord_len
        for note in voicing:
            _add_circular(buf, start, 0.16 * pad_env * _tone(midi_hz(note), pad_env.size,
                                                               (1.0, 0.25, 0.08)))
        _add_circular(buf, start, 0.22 * pad_env * _tone(midi_hz(bass), pad_env.size,
                                                          (0.0, 0.8, 0.6, 0.3)))
        for k, v in enumerate(ARPEGGIO):
            note = voicing[v] + 12
            accent = 1.0 if k % 4 == 0 else 0.7
            _add_circular(buf, start + k * half,
                          0.12 * accent * pluck_env * _tone(midi_hz(note), pluck_len,
                                                            (1.0, 0.15, 0.05)))
    return buf


def make(out: Path, level_dbm0: float | None = None) -> Path:
    """Write the loop to ``out`` as 8 kHz A-law WAV at the music-on-hold level."""
    from dsp.audiofile import write_wav
    from voiceserver.ivr.prompts import DEFAULT_MOH_LEVEL_DBM0, normalise

    level = DEFAULT_MOH_LEVEL_DBM0 if level_dbm0 is None else level_dbm0
    audio, _ = normalise(synthesise() * 10000.0, level, measure="rms")
    out.parent.mkdir(parents=True, exist_ok=True)
    write_wav(str(out), audio, subtype="ALAW")
    return out


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "moh" / "default.wav"
    print(make(target))
