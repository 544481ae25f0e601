"""MF R2 interregister signals (ITU-T Q.441 code, Q.454 sender, Q.455 receiver), batched.

The register signalling of System R2 (China No.1 on E1 uses it): each
signal is two out of six frequencies, one set per direction:

    forward  (outgoing register -> incoming): 1380 1500 1620 1740 1860 1980 Hz
    backward (incoming register -> outgoing): 1140 1020  900  780  660  540 Hz

Signals 1..15 are the pairs in Q.441's order (f0 is the first frequency
of the list above): 1 = f0+f1, 2 = f0+f2, 3 = f1+f2, 4 = f0+f3, 5 = f1+f3,
6 = f2+f3, 7 = f0+f4, ... 10 = f3+f4, 11 = f0+f5, ... 15 = f4+f5.

    rx = R2MfReceiver(nchan, forward=True)        # or one bool per channel
    for ev in rx.rx(block):                       # block: int16[nchan, n], any n
        ...                                       # R2MfEvent(chan, signal, start, end)

An onset event has end=None; the release of the same signal repeats its
start and sets end. Positions are samples since the receiver was created
(all channels advance together, one rx call per tick).

    tx = R2MfGenerator(nchan, forward=False)      # -8 dBm0 per frequency
    tx.start(chan, 1)     # compelled cycle: on until stop(chan) ...
    tx.stop(chan)
    tx.pulse(chan, 3)     # ... or a 150 ms pulse (Q.442's pulsed A-3, A-4, ...)
    tx.tx(out)            # adds every sounding channel into int16[nchan, n]

The per-sample work is in dsp/_r2mf.pyx (GIL released); this module
validates, holds the state arrays and turns the kernel's event rows into
R2MfEvent objects, so Python work per call is O(events), not O(channels).
How the receiver decides, and the figures it meets, are in docs/dsp-r2mf.md.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from dsp import _r2mf
from dsp.checks import check_audio
from dsp.kernelevents import decided_rows, event_buffer
from dsp.units import dbm0_to_peak, dbm0_to_rms

RATE = 8000
FORWARD_HZ = (1380, 1500, 1620, 1740, 1860, 1980)
BACKWARD_HZ = (1140, 1020, 900, 780, 660, 540)
# Q.441's pairs (index into the set's frequency list) for signals 1..15
SIGNAL_PAIRS = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3), (0, 4), (1, 4), (2, 4), (3, 4),
                (0, 5), (1, 5), (2, 5), (3, 5), (4, 5))
# Q.454: each frequency is sent at -8 dBm0 (+-1 dB) on the international
# circuit; Q.455's receive range -35..-5 dBm0 is this level -27..+3 dB.
SEND_LEVEL_DBM0 = -8.0


def signal_hz(signal: int, forward: bool) -> tuple[int, int]:
    """The two frequencies of MF R2 signal 1..15 in the forward or backward set."""
    if not isinstance(signal, (int, np.integer)) or not (1 <= signal <= 15):
        raise ValueError(f"MF R2 signal must be 1..15, got {signal!r}")
    hz = FORWARD_HZ if forward else BACKWARD_HZ
    i, j = SIGNAL_PAIRS[int(signal) - 1]
    return hz[i], hz[j]


class R2MfEvent(NamedTuple):
    """A signal's onset (end is None) or release (end set), in samples."""
    chan: int
    signal: int
    start: int
    end: int | None


@dataclass(frozen=True)
class R2MfRxParams:
    """Receiver thresholds. Defaults meet Q.455; see docs/dsp-r2mf.md.

    min_level_dbm0: weakest accepted frequency (each of the pair); Q.455
        wants -35 dBm0 accepted.
    twist_db: the weaker frequency may be this much below the stronger
        (Q.455: 5 dB between adjacent, 7 dB between non-adjacent frequencies
        accepted; a pair 20 dB apart must not be recognised).
    rel_peak_db: each of the pair must beat the set's other four bins by this.
    energy_ratio: fraction of the window's energy the pair must hold.
    stationarity: min/max energy of the window's two halves.
    freq_tol_hz: largest frequency error accepted (Q.455: +-10 Hz must be).
    onset_hits: consecutive 4.125 ms-spaced windows before a signal starts.
    release_misses: consecutive windows without the signal before it ends
        (7 bridges the interruptions of up to 7 ms Q.455 says must not
        release, and keeps operate + release time under its 80 ms).
    """
    min_level_dbm0: float = -38.0
    twist_db: float = 12.0
    rel_peak_db: float = 8.0
    energy_ratio: float = 0.7
    stationarity: float = 0.7
    freq_tol_hz: float = 20.0
    onset_hits: int = 3
    release_misses: int = 7

    def validate(self) -> None:
        if not (-60.0 <= self.min_level_dbm0 <= 0.0):
            raise ValueError(f"min_level_dbm0 {self.min_level_dbm0} outside -60..0")
        if not (0.0 <= self.twist_db <= 30.0):
            raise ValueError(f"twist_db {self.twist_db} outside 0..30 dB")
        if not (0.0 <= self.rel_peak_db <= 30.0):
            raise ValueError(f"rel_peak_db {self.rel_peak_db} outside 0..30")
        if not (0.0 < self.energy_ratio <= 1.0) or not (0.0 <= self.stationarity <= 1.0):
            raise ValueError("energy_ratio and stationarity must be within 0..1")
        if not (0.0 < self.freq_tol_hz <= 28.0):
            raise ValueError(f"freq_tol_hz {self.freq_tol_hz} outside (0, 28] (the phase test's reach)")
        if not (1 <= self.onset_hits <= 50) or not (1 <= self.release_misses <= 50):
            raise ValueError("onset_hits and release_misses must be 1..50")


def _lane_constants(backward: np.ndarray, freq_tol_hz: float) -> np.ndarray:
    """float32[rows, lanes]: the kernel's per-lane constant rows, each lane by its set.

    Rows: 2 cos w (6), then cos w, sin w (6 each), exp(-j w SUB i) for
    i = 1..3 (re 6, im 6 each), tan^2 of the largest accepted phase step
    over two hops (6). The kernel's state keeps them at COEF and K_COS..
    """
    sub = _r2mf.SUB_LEN
    step = 2.0 * np.pi * freq_tol_hz * 2 * sub / RATE  # largest accepted phase step over two hops
    if step >= np.pi / 2:
        raise ValueError("frequency tolerance too wide for the receiver's hop")
    per_set = []
    for hz in (FORWARD_HZ, BACKWARD_HZ):
        w = 2.0 * np.pi * np.array(hz, dtype=np.float64) / RATE
        rows = [2.0 * np.cos(w), np.cos(w), np.sin(w)]
        for i in range(1, 4):
            r = np.exp(-1j * w * sub * i)
            rows += [r.real, r.imag]
        rows.append(np.full(6, np.tan(step) ** 2))
        per_set.append(np.concatenate(rows))
    table = np.stack(per_set)  # [set, rows]
    return table[backward.astype(np.intp)].T.astype(np.float32)


def _per_channel(forward: bool | Sequence[bool], nchan: int, where: str) -> np.ndarray:
    """bool[nchan] from one bool or one per channel."""
    if isinstance(forward, (bool, np.bool_)):
        return np.full(nchan, bool(forward))
    flags = np.asarray(forward)
    if flags.shape != (nchan,) or flags.dtype != np.bool_:
        raise ValueError(f"{where}: forward must be a bool or {nchan} bools, got {forward!r}")
    return flags.copy()


def _check_nchan(nchan: int) -> int:
    if not isinstance(nchan, (int, np.integer)) or isinstance(nchan, bool) or nchan < 1:
        raise ValueError(f"nchan must be a positive integer, got {nchan!r}")
    return int(nchan)


class R2MfReceiver:
    """MF R2 receiver for nchan channels, each on the forward or backward set.

    Keyword arguments are the fields of R2MfRxParams.
    """

    def __init__(self, nchan: int, forward: bool | Sequence[bool] = True, **params) -> None:
        self.nchan = _check_nchan(nchan)
        self.forward = _per_channel(forward, self.nchan, "R2MfReceiver")
        try:
            self.params = R2MfRxParams(**params)
        except TypeError as exc:
            raise TypeError(f"R2MfReceiver: {exc}") from None
        self.params.validate()
        p = self.params
        tile = _r2mf.TILE_WIDTH
        ntile = -(-self.nchan // tile)
        self._f = np.zeros((ntile, _r2mf.NQ_ROWS, tile), dtype=np.float32)
        self._i = np.zeros((ntile, _r2mf.NI_ROWS, tile), dtype=np.int64)
        backward = np.zeros(ntile * tile, dtype=bool)
        backward[:self.nchan] = ~self.forward
        lanes = _lane_constants(backward, p.freq_tol_hz).reshape(-1, ntile, tile).transpose(1, 0, 2)
        self._f[:, 12:18] = lanes[:, :6]     # COEF: 2 cos w, used by the filters
        self._f[:, 82:136] = lanes[:, 6:]    # K_COS .. K_TAN2, used by the window verdict
        self._clock = np.zeros(2, dtype=np.int64)
        self._params = np.array([
            dbm0_to_rms(p.min_level_dbm0) ** 2,
            10.0 ** (p.twist_db / 10.0),
            10.0 ** (p.rel_peak_db / 10.0),
            p.energy_ratio,
            p.stationarity,
            p.onset_hits,
            p.release_misses,
        ], dtype=np.float64)
        self._events = np.zeros((0, 5), dtype=np.int64)

    @property
    def position(self) -> int:
        """Samples received per channel since init."""
        return int(self._clock[0])

    def rx(self, block: np.ndarray) -> list[R2MfEvent]:
        """Feed int16[nchan, n]; return the onsets and releases it completed."""
        x = check_audio(block, "R2MfReceiver.rx", shape=(self.nchan, None))
        n = x.shape[1]
        if n == 0:
            return []
        x = np.ascontiguousarray(x)
        self._events = event_buffer(self._events, self.nchan, int(self._clock[1]), n, _r2mf.SUB_LEN,
                                    self.params.release_misses)
        nev = _r2mf.r2mf_rx(x, self._f, self._i, self._clock, self._params, self._events)
        if nev == 0:
            return []
        rows = decided_rows(self._events, nev, self.nchan, "R2MfReceiver")
        new = tuple.__new__  # cheapest NamedTuple construction
        return [new(R2MfEvent, (c, s, st, None if e < 0 else e)) for c, s, st, e, _ in rows.tolist()]


def signals_of(events: list[R2MfEvent], chan: int | None = None) -> list[int]:
    """The signal numbers of the onsets in a list of events (helper for callers/tests)."""
    return [e.signal for e in events if e.end is None and (chan is None or e.chan == chan)]


class R2MfGenerator:
    """MF R2 sender for nchan channels, each on the forward or backward set.

    level_dbm0: per frequency (Q.454: -8 dBm0 nominal; some national
    networks send lower, e.g. -11.5). Frequencies are exact (integer Hz
    from a one-second sine table, no phase accumulation error); both start
    and stop together on a sample.
    """

    PULSE_MS = 150.0  # Q.442's pulsed backward signals: 150 +- 30 ms

    def __init__(self, nchan: int, forward: bool | Sequence[bool] = True,
                 level_dbm0: float = SEND_LEVEL_DBM0) -> None:
        self.nchan = _check_nchan(nchan)
        self.forward = _per_channel(forward, self.nchan, "R2MfGenerator")
        self._amp = np.zeros(self.nchan, dtype=np.float64)
        self.set_level(level_dbm0)
        self._state = np.zeros((_r2mf.GEN_ROWS, self.nchan), dtype=np.int32)
        self._signal = np.zeros(self.nchan, dtype=np.int32)
        self._sine = np.sin(2.0 * np.pi * np.arange(RATE) / RATE)

    def set_level(self, level_dbm0: float, chan: int | None = None) -> None:
        """Level per frequency in dBm0, for one channel or all."""
        level = float(level_dbm0)
        if not (-60.0 <= level <= 0.0):
            raise ValueError(f"MF R2 level {level} dBm0 outside -60..0")
        if 2 * dbm0_to_peak(level) > 32767:
            raise ValueError(f"level {level} dBm0: the pair's peak would clip 16-bit PCM")
        if chan is None:
            self._amp[:] = dbm0_to_peak(level)
        else:
            self._amp[self._check_chan(chan)] = dbm0_to_peak(level)

    def _check_chan(self, chan: int) -> int:
        if not isinstance(chan, (int, np.integer)) or not (0 <= chan < self.nchan):
            raise ValueError(f"channel {chan!r} out of range 0..{self.nchan - 1}")
        return int(chan)

    def _begin(self, chan: int, signal: int, samples: int) -> None:
        chan = self._check_chan(chan)
        f1, f2 = signal_hz(signal, bool(self.forward[chan]))
        if self._state[0, chan] == 0 or self._signal[chan] != signal:
            self._state[2, chan] = 0  # a new signal starts at phase 0; the same one continues
        self._state[0, chan] = f1
        self._state[1, chan] = f2
        self._state[3, chan] = samples
        self._signal[chan] = signal

    def start(self, chan: int, signal: int) -> None:
        """Send signal 1..15 on a channel until stop() (the compelled cycle)."""
        self._begin(chan, signal, -1)

    def pulse(self, chan: int, signal: int, ms: float = PULSE_MS) -> None:
        """Send signal 1..15 on a channel for ms milliseconds, then stop by itself."""
        if not (1.0 <= ms <= 60000.0):
            raise ValueError(f"pulse length {ms} ms outside 1..60000")
        self._begin(chan, signal, int(round(ms * RATE / 1000)))

    def stop(self, chan: int) -> None:
        """Stop the channel's signal at once."""
        chan = self._check_chan(chan)
        self._state[:, chan] = 0

    def sending(self, chan: int) -> int:
        """The signal the channel is sending now, 0 for none."""
        chan = self._check_chan(chan)
        return int(self._signal[chan]) if self._state[0, chan] else 0

    def tx(self, out: np.ndarray) -> None:
        """Add the next n samples of every sounding channel into out (int16[nchan, n])."""
        check_audio(out, "R2MfGenerator.tx", shape=(self.nchan, None), out=True, contiguous=True)
        if out.shape[1] == 0:
            return
        _r2mf.r2mf_tx(out, self._state, self._sine, self._amp)


def r2mf_signal(signals: Sequence[int], forward: bool = True, level_dbm0: float = SEND_LEVEL_DBM0,
                on_ms: float = 100, off_ms: float = 100) -> np.ndarray:
    """One channel's int16 signal: each of `signals` for on_ms, then off_ms of silence."""
    gen = R2MfGenerator(1, forward=forward, level_dbm0=level_dbm0)
    on, off = int(round(on_ms * RATE / 1000)), int(round(off_ms * RATE / 1000))
    out = np.zeros((1, len(signals) * (on + off)), dtype=np.int16)
    for k, sig in enumerate(signals):
        gen.pulse(0, sig, on_ms)
        gen.tx(out[:, k * (on + off):k * (on + off) + on])
    return out[0]


__all__ = ["R2MfReceiver", "R2MfGenerator", "R2MfEvent", "R2MfRxParams", "FORWARD_HZ", "BACKWARD_HZ",
           "SIGNAL_PAIRS", "SEND_LEVEL_DBM0", "signal_hz", "signals_of", "r2mf_signal"]
