"""MF R2 tones for the simulated exchange: two of six frequencies (ITU-T Q.441).

hwsim's own generator and detector, written apart from the host's (dsp's
R2 MF code), so that the simulated far end checks the host instead of
agreeing with it by construction. Signals are numbered 1-15; signal n is
the pair of frequencies `PAIRS[n - 1]` (indices into the set, lowest
index = the Q.441 f0): forward signals use 1380-1980 Hz, backward
1140-540 Hz, 120 Hz apart.

The detector is a plain DFT at the six frequencies of a set over 10 ms
frames (80 samples), batched over every channel that listens: one matrix
product per tick. A frame holds a signal when two frequencies carry most
of its energy, within 7.8 dB of each other (80-sample frames leak
between frequencies 120 Hz apart), the third is 10 dB below the
second and the level is above -35 dBm0; a signal starts after two equal
frames and ends after two frames without it (20 ms), as a receiver's
persistence check does.
"""
from __future__ import annotations

import numpy as np

from dsp.units import dbm0_to_rms

RATE = 8000
FORWARD = (1380.0, 1500.0, 1620.0, 1740.0, 1860.0, 1980.0)
BACKWARD = (1140.0, 1020.0, 900.0, 780.0, 660.0, 540.0)
PAIRS = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3), (0, 4), (1, 4), (2, 4), (3, 4),
         (0, 5), (1, 5), (2, 5), (3, 5), (4, 5))
FRAME = 80                      # 10 ms
LOOP = 400                      # 50 ms: every R2 frequency has whole cycles in it (all are multiples of 20 Hz)
LEVEL_DBM0 = -11.0              # per frequency, as OpenR2 sends them
MIN_LEVEL_DBM0 = -35.0          # both frequencies together, below this: no signal
PERSIST = 2                     # frames a change must hold


def _signal_of_pair() -> dict[tuple[int, int], int]:
    return {pair: n + 1 for n, pair in enumerate(PAIRS)}


SIGNAL_OF_PAIR = _signal_of_pair()
_PAIR_TABLE = np.zeros((6, 6), np.int64)      # [low index, high index] -> signal
for (_a, _b), _sig in SIGNAL_OF_PAIR.items():
    _PAIR_TABLE[_a, _b] = _sig


def mf_tone(signal: int, forward: bool, samples: int = LOOP, level_dbm0: float = LEVEL_DBM0) -> np.ndarray:
    """int16 samples of MF R2 signal 1-15 of the forward or backward set.

    The default length (50 ms) loops without a seam: play it looped for a
    compelled signal, or give `samples` for a pulse."""
    if not 1 <= signal <= 15:
        raise ValueError(f"MF R2 signals are 1-15, got {signal}")
    freqs = FORWARD if forward else BACKWARD
    a, b = PAIRS[signal - 1]
    amp = dbm0_to_rms(level_dbm0) * np.sqrt(2.0)
    t = np.arange(samples) / RATE
    x = amp * (np.sin(2 * np.pi * freqs[a] * t) + np.sin(2 * np.pi * freqs[b] * t))
    return np.round(x).astype(np.int16)


class MfDetector:
    """Signals of one frequency set on many channels; feed it each tick's audio.

    `feed(chans, audio)` takes the channels that listen and their samples
    (int16[n, block], block a multiple of 80) and returns the changes
    `(chan, signal)`, signal 0 for the end of one. State is per channel,
    kept until `forget(chan)`."""

    def __init__(self, forward: bool) -> None:
        freqs = np.array(FORWARD if forward else BACKWARD)
        t = np.arange(FRAME) / RATE
        w = 2 * np.pi * freqs[None, :] * t[:, None]
        self._basis = np.concatenate([np.cos(w), np.sin(w)], axis=1)      # [80, 12]
        self._min_energy = (dbm0_to_rms(MIN_LEVEL_DBM0) ** 2) * FRAME
        self.current: dict[int, int] = {}       # chan -> signal on (0: none)
        self._cand: dict[int, tuple[int, int]] = {}   # chan -> (candidate, frames seen)

    def frames(self, audio: np.ndarray) -> np.ndarray:
        """The signal in each 10 ms frame: int[n, frames], 0 where none."""
        n, samples = audio.shape
        nf = samples // FRAME
        x = audio[:, :nf * FRAME].reshape(n * nf, FRAME).astype(np.float64)
        proj = x @ self._basis                                  # [n*nf, 12]
        power = (proj[:, :6] ** 2 + proj[:, 6:] ** 2) * (2.0 / FRAME)   # energy of each tone
        energy = np.einsum("ij,ij->i", x, x)
        order = np.argsort(power, axis=1)[:, ::-1]
        rows = np.arange(len(x))
        p1, p2, p3 = (power[rows, order[:, k]] for k in range(3))
        ok = ((energy > self._min_energy) & (p1 + p2 > 0.6 * energy)
              & (p2 > p1 / 6.0) & (p3 < p2 / 10.0))
        lo = np.minimum(order[:, 0], order[:, 1])
        hi = np.maximum(order[:, 0], order[:, 1])
        found = np.where(ok, _PAIR_TABLE[lo, hi], 0)
        return found.reshape(n, nf)

    def feed(self, chans: list[int], audio: np.ndarray) -> list[tuple[int, int]]:
        if not chans:
            return []
        changes: list[tuple[int, int]] = []
        frames = self.frames(audio)
        on = np.fromiter((self.current.get(c, 0) for c in chans), np.int64, len(chans))
        # only channels whose frames differ from what they had (or that were changing) need Python
        busy = np.flatnonzero((frames != on[:, None]).any(axis=1)).tolist()
        if self._cand:
            busy = sorted(set(busy) | {i for i, c in enumerate(chans) if c in self._cand})
        for i in busy:
            chan = chans[i]
            for sig in frames[i].tolist():
                cur = self.current.get(chan, 0)
                if sig == cur:
                    self._cand.pop(chan, None)
                    continue
                cand, seen = self._cand.get(chan, (sig, 0))
                seen = seen + 1 if cand == sig else 1
                if seen >= PERSIST:
                    self._cand.pop(chan, None)
                    if cur and sig:         # a direct change: the old one ends first
                        changes.append((chan, 0))
                    self.current[chan] = sig
                    changes.append((chan, sig))
                else:
                    self._cand[chan] = (sig, seen)
        return changes

    def forget(self, chan: int) -> None:
        self.current.pop(chan, None)
        self._cand.pop(chan, None)
