"""Test signals for the tone tests, synthesised here independently of dsp.tones.

Why separate from ToneGenerator: a detector test fed only by our own
generator would share its mistakes. These helpers build cadenced tones
sample by sample in numpy, with per-segment jitter and random phases.
"""
from __future__ import annotations

import numpy as np

from dsp import units

RATE = 8000


def segments(cadence: tuple[float, ...], seconds: float, jitter: float = 0.0,
             rng: np.random.Generator | None = None) -> list[float]:
    """On/off durations (starting with on) covering `seconds`; each scaled by 1±jitter."""
    if not cadence:
        return [seconds]
    rng = rng or np.random.default_rng(0)
    out, total, i = [], 0.0, 0
    while total < seconds:
        d = cadence[i % len(cadence)] * (1.0 + (rng.uniform(-jitter, jitter) if jitter else 0.0))
        d = min(d, seconds - total)
        out.append(d)
        total += d
        i += 1
    return out


def synth(freqs: tuple[float, ...], level_dbm0: float, durations: list[float],
          rng: np.random.Generator | None = None) -> np.ndarray:
    """float64[n]: on/off segments (on first), each frequency at level_dbm0, random phases."""
    rng = rng or np.random.default_rng(1)
    peak = units.dbm0_to_peak(level_dbm0)
    parts = []
    for k, d in enumerate(durations):
        n = int(round(d * RATE))
        if k % 2 == 0:
            t = np.arange(n) / RATE
            seg = sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi)) for f in freqs) * peak
        else:
            seg = np.zeros(n)
        parts.append(seg)
    return np.concatenate(parts) if parts else np.zeros(0)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(round(seconds * RATE)))


def noise(seconds: float, level_dbm0: float, rng: np.random.Generator) -> np.ndarray:
    return rng.standard_normal(int(round(seconds * RATE))) * units.dbm0_to_rms(level_dbm0)


def to_int16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def run_detector(det, x: np.ndarray, block: int = 160) -> list[tuple[object, int]]:
    """Feed int16[nchan, n] in blocks; [(event, sample position at the end of its block)]."""
    out = []
    for b in range(0, x.shape[1], block):
        chunk = np.ascontiguousarray(x[:, b:b + block])
        for ev in det.rx(chunk):
            out.append((ev, b + chunk.shape[1]))
    return out
