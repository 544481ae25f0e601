"""Small measurement helpers for hwsim tests (frequency, on/off runs)."""
from __future__ import annotations

import numpy as np


def peak_freqs(x: np.ndarray, n: int = 1) -> list[float]:
    """The n strongest frequencies (Hz, 8 kHz audio), strongest first, 10 Hz apart at least."""
    x = np.asarray(x, np.float64)
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    freqs = np.fft.rfftfreq(len(x), 1 / 8000)
    out: list[float] = []
    for i in np.argsort(spec)[::-1]:
        if all(abs(freqs[i] - f) > 30 for f in out):
            out.append(float(freqs[i]))
        if len(out) == n:
            break
    return out


def on_runs(x: np.ndarray, frame: int = 80, thresh: float = 300.0) -> list[tuple[float, float]]:
    """(start s, length s) of the runs where the frame RMS is above thresh."""
    nf = len(x) // frame
    rms = np.sqrt(np.mean(x[:nf * frame].reshape(nf, frame).astype(np.float64) ** 2, axis=1))
    on = rms > thresh
    runs, start = [], None
    for i, v in enumerate(on):
        if v and start is None:
            start = i
        elif not v and start is not None:
            runs.append((start * frame / 8000, (i - start) * frame / 8000))
            start = None
    if start is not None:
        runs.append((start * frame / 8000, (nf - start) * frame / 8000))
    return runs
