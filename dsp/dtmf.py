"""DTMF reception (ITU-T Q.24) and generation (Q.23), batched over channels.

    det = DtmfDetector(nchan)
    for ev in det.rx(block):          # block: int16[nchan, n], any n
        ...                           # DtmfEvent(chan, digit, start, end)

An onset event has end=None; the release of the same digit repeats its
start and sets end. Positions are samples since the detector was created
(all channels advance together, one rx call per tick). Events come in the
order the receiver decided them (then by channel): per channel, a release
always precedes the next onset.

The per-sample work is in dsp/_dtmf.pyx (GIL released); this module
validates, holds the state arrays and turns the kernel's event rows into
DtmfEvent objects, so Python work per call is O(events), not O(channels).
How the receiver decides is described at the top of _dtmf.pyx and, with
measured figures, in docs/dsp-dtmf.md.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from dsp import _dtmf
from dsp.checks import check_audio
from dsp.kernelevents import decided_rows, event_buffer
from dsp.units import dbm0_to_peak, dbm0_to_rms

RATE = 8000
ROW_HZ = (697, 770, 852, 941)
COL_HZ = (1209, 1336, 1477, 1633)
DIGITS = "123A456B789C*0#D"  # index = row * 4 + col
_DIGIT_INDEX = {d: i for i, d in enumerate(DIGITS)}
_DIGIT_NAMES = tuple(DIGITS)

# Measured twist wanders: the strong tone's sidelobe beats with the weak
# tone in its bin (+-1.5 dB at 8 dB twist) and a tone 1.5 % + 2 Hz off
# nominal loses up to 1.7 dB. The decision threshold sits this far beyond
# the configured limit, which is the guaranteed one.
TWIST_MARGIN_DB = 3.0


class DtmfEvent(NamedTuple):
    """A digit's onset (end is None) or release (end set), in samples."""
    chan: int
    digit: str
    start: int
    end: int | None


@dataclass(frozen=True)
class DtmfRxParams:
    """Receiver thresholds. Defaults meet Q.24; see docs/dsp-dtmf.md.

    min_level_dbm0: weakest accepted tone (each of the pair).
    normal_twist_db: high-group tone this much weaker than low is accepted.
    reverse_twist_db: high-group tone this much stronger is accepted.
    rel_peak_db: each tone must beat the other tones of its group by this.
    energy_ratio: fraction of the window's energy the two tones must hold.
    run_energy_ratio: the same, averaged over the run of windows before an
        onset: averaging lets noise through (its share is steady) while a
        chord with harmonics, or speech, rarely stays that pure.
    stationarity: min/max sub-block energy within a window.
    freq_tol_pct, freq_tol_hz: accepted frequency error (tolerance =
        pct % of nominal + hz); Q.24 wants 1.5 % + 2 Hz accepted and 3.5 %
        rejected, the default sits between.
    onset_hits: consecutive 4.25 ms-spaced windows before a digit starts
        (5 -> about 25.5 ms of steady tone; 23 ms is rejected, 40 ms accepted).
    release_misses: consecutive windows without the digit before it ends
        (bridges dropouts of ~10 ms, splits on a 40 ms pause).
    harmonic_tol_hz: a pair whose high tone is within this of twice the low
        tone is one musical note with its octave harmonic, not a digit (only
        digits where that can happen within tolerance: 2, 6, C, ...; a Q.24
        pair stays >= 11 Hz away from the relation).
    run_freq_tol_pct, run_freq_tol_hz: the frequency error averaged over
        the run of windows before an onset must be within this (tighter
        than one window's freq_tol: averaging removes most of a window's
        measurement noise; Q.24's accept limit is 1.5 % + 2 Hz).
    drift_hz: over that run the measured frequency of each tone may change
        by at most this (the slope of the error across the run): a DTMF
        tone does not move, a voice, a whistle or a glide does.
    """
    min_level_dbm0: float = -42.0
    normal_twist_db: float = 8.0
    reverse_twist_db: float = 4.0
    rel_peak_db: float = 4.0
    energy_ratio: float = 0.7
    run_energy_ratio: float = 0.85
    stationarity: float = 0.4
    freq_tol_pct: float = 2.8
    freq_tol_hz: float = 1.0
    onset_hits: int = 5
    release_misses: int = 6
    harmonic_tol_hz: float = 8.0
    run_freq_tol_pct: float = 1.8
    run_freq_tol_hz: float = 2.0
    drift_hz: float = 12.0

    def validate(self) -> None:
        if not (-60.0 <= self.min_level_dbm0 <= 0.0):
            raise ValueError(f"min_level_dbm0 {self.min_level_dbm0} outside -60..0")
        for name in ("normal_twist_db", "reverse_twist_db"):
            v = getattr(self, name)
            if not (0.0 <= v <= 20.0):
                raise ValueError(f"{name} {v} outside 0..20 dB")
        if not (0.0 <= self.rel_peak_db <= 30.0):
            raise ValueError(f"rel_peak_db {self.rel_peak_db} outside 0..30")
        if not (0.0 < self.energy_ratio <= 1.0) or not (0.0 <= self.run_energy_ratio <= 1.0):
            raise ValueError(f"energy_ratio {self.energy_ratio} / run_energy_ratio "
                             f"{self.run_energy_ratio} outside 0..1")
        if not (0.0 <= self.stationarity <= 1.0):
            raise ValueError(f"stationarity {self.stationarity} outside 0..1")
        if not (0.0 < self.freq_tol_pct <= 6.0) or not (0.0 <= self.freq_tol_hz <= 20.0):
            raise ValueError("frequency tolerance outside (0, 6] % + 0..20 Hz")
        if not (1 <= self.onset_hits <= 50) or not (1 <= self.release_misses <= 50):
            raise ValueError("onset_hits and release_misses must be 1..50")
        if not (1.5 <= self.run_freq_tol_pct <= 6.0) or not (0.0 <= self.run_freq_tol_hz <= 20.0):
            raise ValueError("run frequency tolerance outside [1.5, 6] % + 0..20 Hz (Q.24 accepts 1.5 % + 2 Hz)")
        if not (4.0 <= self.drift_hz <= 100.0):
            raise ValueError(f"drift_hz {self.drift_hz} outside 4..100")
        if not (0.0 <= self.harmonic_tol_hz <= 10.0):
            raise ValueError(f"harmonic_tol_hz {self.harmonic_tol_hz} outside 0..10 (Q.24 pairs come within 11 Hz)")


def _bin_table(tol_pct: float, tol_hz: float, run_pct: float, run_hz: float) -> np.ndarray:
    """Per-frequency constants for the kernel (layout: 8 blocks of 8)."""
    sub = _dtmf.SUB_LEN
    freqs = np.array(ROW_HZ + COL_HZ, dtype=np.float64)
    w = 2.0 * np.pi * freqs / RATE
    r1 = np.exp(-1j * w * sub)
    r2 = r1 * r1
    tol = freqs * tol_pct / 100.0 + tol_hz
    step = 2.0 * np.pi * tol * sub / RATE  # largest accepted phase step, < pi/2
    if np.any(step >= np.pi / 2):
        raise ValueError("frequency tolerance too wide for the receiver's hop")
    accept = 2.0 * np.pi * (freqs * 0.015 + 2.0) * sub / RATE  # Q.24's must-accept offset
    run_step = 2.0 * np.pi * (freqs * run_pct / 100.0 + run_hz) * sub / RATE
    if np.any(run_step >= np.pi / 2):
        raise ValueError("run frequency tolerance too wide for the receiver's hop")
    table = np.concatenate([2 * np.cos(w), np.cos(w), np.sin(w), r1.real, r1.imag,
                            r2.real, r2.imag, np.tan(step) ** 2, np.sin(accept) ** 2,
                            np.tan(run_step) ** 2])
    return table.astype(np.float32)


def _loss_compensation(tol_pct: float, tol_hz: float) -> np.ndarray:
    """Polynomial in u = sin^2(step) giving 1 / (window gain)^2 of a tone off its bin.

    A tone delta off the bin loses sinc^2(delta WIN / 2) of its power in the
    102-sample window; the phase step between windows (SUB apart) is
    delta SUB, so the loss is a function of the step the kernel measures.
    """
    sub, win = _dtmf.SUB_LEN, _dtmf.WIN_LEN
    top = 2.0 * np.pi * (max(COL_HZ) * tol_pct / 100.0 + tol_hz) * sub / RATE
    step = np.linspace(0.0, top, 400)
    gain = np.sinc(step * win / (2.0 * sub) / np.pi) ** 2
    coef = np.polyfit(np.sin(step) ** 2, 1.0 / gain, 4)[::-1]
    return coef


def _harmonic_mask(tol_pct: float, tol_hz: float) -> int:
    """Digits whose high tone could be the low tone's second harmonic within tolerance."""
    mask = 0
    for r, fr in enumerate(ROW_HZ):
        for c, fc in enumerate(COL_HZ):
            reach = (fr * 2 + fc) * tol_pct / 100.0 + 3 * tol_hz
            if abs(fc - 2 * fr) <= reach:
                mask |= 1 << (r * 4 + c)
    return mask


class DtmfDetector:
    """Q.24 DTMF receiver for nchan channels (one state per channel set).

    Keyword arguments are the fields of DtmfRxParams.
    """

    def __init__(self, nchan: int, **params) -> None:
        if not isinstance(nchan, (int, np.integer)) or nchan < 1:
            raise ValueError(f"nchan must be a positive integer, got {nchan!r}")
        try:
            self.params = DtmfRxParams(**params)
        except TypeError as exc:
            raise TypeError(f"DtmfDetector: {exc}") from None
        self.params.validate()
        p = self.params
        self.nchan = int(nchan)
        tile = _dtmf.TILE_WIDTH
        ntile = -(-self.nchan // tile)
        self._f = np.zeros((ntile, _dtmf.NQ_ROWS, tile), dtype=np.float32)
        self._i = np.zeros((ntile, _dtmf.NI_ROWS, tile), dtype=np.int64)
        self._i[:, 0] = -1  # no candidate
        self._i[:, 3] = -1  # no digit on
        self._clock = np.zeros(2, dtype=np.int64)
        self._bins = _bin_table(p.freq_tol_pct, p.freq_tol_hz, p.run_freq_tol_pct, p.run_freq_tol_hz)
        self._params = np.array([
            dbm0_to_rms(p.min_level_dbm0) ** 2,
            10.0 ** ((p.normal_twist_db + TWIST_MARGIN_DB) / 10.0),
            10.0 ** ((p.reverse_twist_db + TWIST_MARGIN_DB) / 10.0),
            10.0 ** (p.rel_peak_db / 10.0),
            p.energy_ratio,
            p.stationarity,
            p.onset_hits,
            p.release_misses,
            *_loss_compensation(p.freq_tol_pct, p.freq_tol_hz),
            np.tan(2.0 * np.pi * p.harmonic_tol_hz * _dtmf.SUB_LEN / RATE) ** 2,
            _harmonic_mask(p.freq_tol_pct, p.freq_tol_hz),
            p.run_energy_ratio,
            2.0 * np.pi * p.drift_hz * _dtmf.SUB_LEN / RATE,
        ], dtype=np.float32)
        self._events = np.zeros((0, 5), dtype=np.int64)

    @property
    def position(self) -> int:
        """Samples received per channel since init."""
        return int(self._clock[0])

    def rx(self, block: np.ndarray) -> list[DtmfEvent]:
        """Feed int16[nchan, n]; return the onsets and releases it completed."""
        x = check_audio(block, "DtmfDetector.rx", shape=(self.nchan, None))
        n = x.shape[1]
        if n == 0:
            return []
        x = np.ascontiguousarray(x)
        self._events = event_buffer(self._events, self.nchan, int(self._clock[1]), n, _dtmf.SUB_LEN,
                                    self.params.release_misses)
        nev = _dtmf.dtmf_rx(x, self._f, self._i, self._clock, self._params, self._bins,
                            self._events)
        if nev == 0:
            return []
        rows = decided_rows(self._events, nev, self.nchan, "DtmfDetector")
        return _dtmf.event_tuples(np.ascontiguousarray(rows), DtmfEvent, _DIGIT_NAMES)


def digits_of(events: list[DtmfEvent]) -> str:
    """The digit string of the onsets in a list of events (helper for callers/tests)."""
    return "".join(e.digit for e in events if e.end is None)


class DtmfGenerator:
    """Q.23 DTMF sender for nchan channels.

    level_dbm0: (low group, high group) per tone; the China plan's default
    is -9/-11 dBm0 (2 dB of pre-emphasis on the high tone, i.e. twist).
    on_ms/off_ms: tone and gap per digit. Frequencies are exact (integer Hz
    from a one-second sine table, no phase accumulation error).
    """

    QUEUE = 256

    def __init__(self, nchan: int, level_dbm0: tuple[float, float] = (-9.0, -11.0),
                 on_ms: float = 100, off_ms: float = 100) -> None:
        if not isinstance(nchan, (int, np.integer)) or nchan < 1:
            raise ValueError(f"nchan must be a positive integer, got {nchan!r}")
        low, high = (float(v) for v in level_dbm0)
        for v in (low, high):
            if not (-60.0 <= v <= 0.0):
                raise ValueError(f"DTMF tone level {v} dBm0 outside -60..0")
        if dbm0_to_peak(low) + dbm0_to_peak(high) > 32767:
            raise ValueError(f"levels {low}/{high} dBm0: the pair's peak would clip 16-bit PCM")
        if not (10 <= on_ms <= 10000) or not (10 <= off_ms <= 10000):
            raise ValueError("on_ms and off_ms must be 10..10000")
        self.nchan = int(nchan)
        self.level_dbm0 = (low, high)
        self.on_samples = int(round(on_ms * RATE / 1000))
        self.off_samples = int(round(off_ms * RATE / 1000))
        self._amp = (dbm0_to_peak(low), dbm0_to_peak(high))
        self._state = np.zeros((_dtmf.GEN_ROWS, self.nchan), dtype=np.int32)
        self._state[2] = -1
        self._queue = np.zeros((self.nchan, self.QUEUE), dtype=np.uint8)
        self._sine = np.sin(2.0 * np.pi * np.arange(RATE) / RATE)
        self._row = np.array(ROW_HZ, dtype=np.int32)
        self._col = np.array(COL_HZ, dtype=np.int32)

    def _check_chan(self, chan: int) -> int:
        if not isinstance(chan, (int, np.integer)) or not (0 <= chan < self.nchan):
            raise ValueError(f"channel {chan!r} out of range 0..{self.nchan - 1}")
        return int(chan)

    def send(self, chan: int, digits: str) -> None:
        """Queue digits (0-9 * # A-D) on a channel; they play on following tx calls."""
        chan = self._check_chan(chan)
        idx = []
        for ch in digits:
            i = _DIGIT_INDEX.get(ch.upper())
            if i is None:
                raise ValueError(f"not a DTMF digit: {ch!r} in {digits!r}")
            idx.append(i)
        head, length = int(self._state[0, chan]), int(self._state[1, chan])
        if length + len(idx) > self.QUEUE:
            raise ValueError(f"channel {chan}: DTMF queue full ({length} queued, max {self.QUEUE})")
        for k, i in enumerate(idx):
            self._queue[chan, (head + length + k) % self.QUEUE] = i
        self._state[1, chan] = length + len(idx)

    def busy(self, chan: int) -> bool:
        """True while the channel has digits queued or sounding (or in a gap)."""
        chan = self._check_chan(chan)
        return bool(self._state[3, chan] != 0 or self._state[1, chan] > 0)

    def clear(self, chan: int) -> None:
        """Drop queued digits and stop the current one at once."""
        chan = self._check_chan(chan)
        self._state[:, chan] = (0, 0, -1, 0, 0)

    def tx(self, out: np.ndarray) -> None:
        """Add the next n samples of every busy channel into out (int16[nchan, n])."""
        check_audio(out, "DtmfGenerator.tx", shape=(self.nchan, None), out=True, contiguous=True)
        if out.shape[1] == 0:
            return
        _dtmf.dtmf_tx(out, self._state, self._queue, self._sine, self._row, self._col,
                      self._amp[0], self._amp[1], self.on_samples, self.off_samples)


def dtmf_signal(digits: str, level_dbm0: tuple[float, float] = (-9.0, -11.0),
                on_ms: float = 100, off_ms: float = 100) -> np.ndarray:
    """One channel's int16 signal of `digits` (the generator, run to the end)."""
    gen = DtmfGenerator(1, level_dbm0=level_dbm0, on_ms=on_ms, off_ms=off_ms)
    gen.send(0, digits)
    n = len(digits) * (gen.on_samples + gen.off_samples)
    out = np.zeros((1, n), dtype=np.int16)
    gen.tx(out)
    return out[0]


__all__ = ["DtmfDetector", "DtmfGenerator", "DtmfEvent", "DtmfRxParams", "DIGITS",
           "ROW_HZ", "COL_HZ", "digits_of", "dtmf_signal"]
