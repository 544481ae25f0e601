"""Prompt playback and mixing for all channels of a tick.

Every prompt lives in one append-only int16 `AudioBank`, so one kernel call
plays the next block for every channel that is playing; Python only runs
when a segment ends (queue the next one), so its work per tick is
O(segments ended), not O(channels).
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from dsp import _mix
from dsp.checks import check_audio


@dataclass(frozen=True)
class Segment:
    """A span of the bank: what a playlist is made of."""
    offset: int
    length: int

    @property
    def seconds(self) -> float:
        return self.length / 8000.0


class AudioBank:
    """Append-only store of 8 kHz int16 audio; a Segment stays valid forever."""

    def __init__(self, capacity: int = 1 << 20) -> None:
        self._data = np.zeros(capacity, dtype=np.int16)
        self._used = 0
        self._names: dict[str, Segment] = {}

    def add(self, samples: np.ndarray, name: str | None = None) -> Segment:
        samples = check_audio(samples, "AudioBank.add", shape=(None,))
        need = self._used + len(samples)
        if need > len(self._data):
            grown = np.zeros(max(need, 2 * len(self._data)), dtype=np.int16)
            grown[:self._used] = self._data[:self._used]
            self._data = grown
        self._data[self._used:need] = samples
        seg = Segment(self._used, len(samples))
        self._used = need
        if name is not None:
            self._names[name] = seg
        return seg

    def __getitem__(self, name: str) -> Segment:
        return self._names[name]

    def __contains__(self, name: str) -> bool:
        return name in self._names

    def samples(self, seg: Segment) -> np.ndarray:
        return self._data[seg.offset:seg.offset + seg.length]

    @property
    def array(self) -> np.ndarray:
        return self._data


class Player:
    """Per-channel playlists over one AudioBank (spandsp-style state object).

    `tx(out)` writes (or, with mix=True, adds) the next block of every
    playing channel into out and returns the channels whose playlist ended
    in this block. A looping playlist (music on hold) never ends.
    """

    def __init__(self, nchan: int, bank: AudioBank) -> None:
        self.nchan = nchan
        self.bank = bank
        self._pos = np.zeros(nchan, dtype=np.int64)
        self._end = np.zeros(nchan, dtype=np.int64)
        self._gain = np.ones(nchan, dtype=np.float32)
        self._active = np.zeros(nchan, dtype=np.uint8)
        self._mix = np.zeros(nchan, dtype=np.uint8)
        self._finished = np.zeros(nchan, dtype=np.int32)
        self._queues: list[deque[Segment]] = [deque() for _ in range(nchan)]
        self._loop: list[list[Segment] | None] = [None] * nchan

    def _check(self, chan: int) -> None:
        if not 0 <= chan < self.nchan:
            raise IndexError(f"channel {chan} out of range 0..{self.nchan - 1}")

    def play(self, chan: int, segments: list[Segment], *, gain_db: float = 0.0,
             mix: bool = False, loop: bool = False) -> None:
        """Replace whatever the channel plays with this playlist."""
        self._check(chan)
        segs = [s for s in segments if s.length > 0]
        self._queues[chan] = deque(segs)
        self._loop[chan] = list(segs) if loop and segs else None
        self._gain[chan] = 10.0 ** (gain_db / 20.0)
        self._mix[chan] = 1 if mix else 0
        self._next(chan)

    def stop(self, chan: int) -> bool:
        """Stop at once; True if something was playing."""
        self._check(chan)
        was = bool(self._active[chan]) or bool(self._queues[chan])
        self._active[chan] = 0
        self._queues[chan].clear()
        self._loop[chan] = None
        return was

    def busy(self, chan: int) -> bool:
        return bool(self._active[chan]) or bool(self._queues[chan])

    def _next(self, chan: int) -> bool:
        q = self._queues[chan]
        loop = self._loop[chan]
        if not q and loop:
            q.extend(loop)
        if not q:
            self._active[chan] = 0
            return False
        seg = q.popleft()
        self._pos[chan] = seg.offset
        self._end[chan] = seg.offset + seg.length
        self._active[chan] = 1
        return True

    def tx(self, out: np.ndarray) -> list[int]:
        check_audio(out, "Player.tx", shape=(self.nchan, None), out=True, contiguous=True)
        done: list[int] = []
        nfin = _mix.play_block(out, self.bank.array, self._pos, self._end, self._gain,
                               self._active, self._mix, self._finished)
        for chan in self._finished[:nfin].tolist():
            # A playlist's next segment starts on the next tick: a gap of at
            # most one block between segments, inaudible between words.
            if not self._next(chan):
                done.append(chan)
        return done


def add_rows(out: np.ndarray, src: np.ndarray, dst_rows: np.ndarray, src_rows: np.ndarray) -> None:
    """out[dst_rows[k]] += src[src_rows[k]], saturating: in-engine bridges."""
    _mix.add_rows(out, src, np.ascontiguousarray(dst_rows, dtype=np.int32),
                  np.ascontiguousarray(src_rows, dtype=np.int32))
