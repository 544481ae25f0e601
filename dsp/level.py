"""Levels and voice activity, per channel, for a whole board per call.

Why: recording rules stop on silence, voicemail trims it, and an outbound
call is "answered" when a voice replaces ringback on a line that gives no
answer signal. The meter reports dBm0 (the unit of telephony levels, see
dsp.units); the VAD is energy-based with an adaptive noise floor so a
noisy line does not count as talking, and with hangover so the gaps
between words do not split speech into pieces.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from dsp import units
from dsp.checks import check_audio

RATE = 8000
#: RMS of a 0 dBm0 sine in 16-bit linear units (see dsp.units).
DBM0_REF = units.DBM0_REF_RMS

__all__ = ["DBM0_REF", "LevelMeter", "VoiceActivityDetector", "SpeechEvent", "block_dbm0"]


def block_dbm0(block: np.ndarray) -> np.ndarray:
    """dBm0 of each row of int16[nchan, n] (RMS over the row); silence is -inf."""
    x = block.astype(np.float64)
    ms = np.einsum("ij,ij->i", x, x) / max(block.shape[1], 1)
    return units.rms_to_dbm0(np.sqrt(ms))


class LevelMeter:
    """Per-block RMS level in dBm0 of every channel, plus a running peak.

    rx(block) returns float64[nchan] (the block's level); `peak_dbm0` holds
    the loudest block level seen per channel since reset().
    """

    def __init__(self, nchan: int) -> None:
        if nchan < 1:
            raise ValueError(f"nchan must be >= 1, got {nchan}")
        self.nchan = nchan
        self.level_dbm0 = np.full(nchan, -np.inf)
        self.peak_dbm0 = np.full(nchan, -np.inf)

    def rx(self, block: np.ndarray) -> np.ndarray:
        block = check_audio(block, "LevelMeter.rx", shape=(self.nchan, None))
        if block.shape[1] == 0:
            return self.level_dbm0.copy()
        self.level_dbm0 = block_dbm0(block)
        np.maximum(self.peak_dbm0, self.level_dbm0, out=self.peak_dbm0)
        return self.level_dbm0.copy()

    def reset(self) -> None:
        self.level_dbm0[:] = -np.inf
        self.peak_dbm0[:] = -np.inf


class SpeechEvent(NamedTuple):
    """Speech on a channel: end is None at onset, set (a later event) at the stop.

    Positions are samples per channel since the detector was made; start
    is backdated to the first loud frame, end is just after the last one
    (the hangover is not counted as speech).
    """
    chan: int
    start: int
    end: int | None


class VoiceActivityDetector:
    """Energy VAD with an adaptive noise floor and hangover, batched over channels.

    A frame is loud when its energy is `threshold_db` above the channel's
    noise floor and above `min_level_dbm0`. `attack_ms` of loud frames in a
    row start speech; `hangover_ms` of quiet frames end it. The floor falls
    quickly to quieter frames (the pauses between words find it) and rises
    `rise_db_per_s`, so steady noise is learnt and speech 20-30 dB above
    the noise is not. The floor starts at `initial_floor_dbm0` (default
    `min_level_dbm0`), not at the first frame: a greeting that starts at
    once must not become the floor. The price: a line with loud steady
    noise from the start gives one false speech stretch while the floor
    climbs (about (noise - initial - threshold) / rise seconds); pass the
    line's noise level if it is known.
    """

    def __init__(self, nchan: int, *, frame_ms: float = 10.0, threshold_db: float = 9.0,
                 min_level_dbm0: float = -50.0, attack_ms: float = 30.0,
                 hangover_ms: float = 400.0, rise_db_per_s: float = 3.0,
                 initial_floor_dbm0: float | None = None) -> None:
        if nchan < 1:
            raise ValueError(f"nchan must be >= 1, got {nchan}")
        self.nchan = nchan
        self.frame_len = int(round(frame_ms * RATE / 1000.0))
        if not 40 <= self.frame_len <= 800:
            raise ValueError(f"frame_ms {frame_ms} outside 5..100 ms")
        if threshold_db <= 0 or attack_ms <= 0 or hangover_ms <= 0 or rise_db_per_s <= 0:
            raise ValueError("threshold_db, attack_ms, hangover_ms and rise_db_per_s must be > 0")
        fs = self.frame_len / RATE
        self._ratio = 10.0 ** (threshold_db / 10.0)
        self._abs_min = units.dbm0_to_rms(min_level_dbm0) ** 2
        self._down = 0.5
        self._up_quiet = 10.0 ** (rise_db_per_s * fs / 10.0)
        self._up_speech = self._up_quiet
        self._attack = max(1, int(round(attack_ms / 1000.0 / fs)))
        self._hangover = max(1, int(round(hangover_ms / 1000.0 / fs)))
        self._acc = np.zeros(nchan, np.float64)
        self._pos = 0
        self._frames = 0
        init = min_level_dbm0 if initial_floor_dbm0 is None else initial_floor_dbm0
        self._floor = np.full(nchan, units.dbm0_to_rms(init) ** 2)
        self._speech = np.zeros(nchan, np.int32)
        self._run = np.zeros(nchan, np.int32)
        self._quiet = np.zeros(nchan, np.int32)
        self._last = np.zeros(nchan, np.int64)
        self._start = np.zeros(nchan, np.int64)

    def rx(self, block: np.ndarray) -> list[SpeechEvent]:
        """Feed int16[nchan, n]; returns speech onset/stop events (usually none)."""
        block = check_audio(block, "VoiceActivityDetector.rx", shape=(self.nchan, None))
        n = block.shape[1]
        if n == 0:
            return []
        from dsp import _level
        xt = np.ascontiguousarray(block.T, dtype=np.float32)
        cap = 2 * ((self._pos + n) // self.frame_len + 1) * self.nchan
        ev = np.empty((cap, 3), np.int64)
        nev, nfr, self._pos = _level.vad_block(
            xt, self._acc, self._pos, self.frame_len, self._floor, self._speech, self._run,
            self._quiet, self._last, self._frames, self._ratio, self._abs_min, self._down,
            self._up_quiet, self._up_speech, self._attack, self._hangover, ev)
        self._frames += nfr
        out: list[SpeechEvent] = []
        fl = self.frame_len
        for c, kind, fr in ev[:nev].tolist():
            if kind == 1:
                self._start[c] = fr
                out.append(SpeechEvent(c, fr * fl, None))
            else:
                out.append(SpeechEvent(c, int(self._start[c]) * fl, fr * fl))
        return out

    def speaking(self) -> np.ndarray:
        """bool[nchan]: which channels are in speech now."""
        return self._speech.astype(bool)

    def noise_floor_dbm0(self) -> np.ndarray:
        """float64[nchan]: the learnt noise floor."""
        return units.rms_to_dbm0(np.sqrt(self._floor))
