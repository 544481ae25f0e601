"""What the far ends hear: the host's audio kept per call.

The far end listens so that a test can check which prompt a caller heard.
Audio lands in a preallocated store of fixed-size chunks; each tick ONE
fancy-indexed assignment copies the block of every listening channel into
its call's current chunk, and one vectorised energy test notes which of
them the host was sounding on (for "press 1 after the prompt ends").
Python runs only when a call starts, stops or fills a chunk.
"""
from __future__ import annotations

import numpy as np

from dsp.units import dbm0_to_rms

CHUNK = 80000        # 10 s at 8 kHz; a multiple of every block size (80/160/320)
SOUND_RMS = dbm0_to_rms(-45.0)   # host audio above this counts as "not silent"


class Capture:
    """Per-channel recorders over one chunk store (spandsp-style state object)."""

    def __init__(self, nchan: int, block: int, chunks: int = 16) -> None:
        if CHUNK % block:
            raise ValueError(f"block {block} does not divide the capture chunk {CHUNK}")
        self.nchan = nchan
        self.block = block
        self._store = np.zeros((chunks, CHUNK), np.int16)
        self._rows = self._store.reshape(chunks, CHUNK // block, block)   # a block-row view
        self._free = list(range(chunks - 1, -1, -1))
        self._chunks: dict[int, list[int]] = {}    # chan -> chunk ids of its call
        self._cur = np.full(nchan, -1, np.int64)    # chan -> current chunk id
        self._off = np.zeros(nchan, np.int64)       # chan -> samples used in current chunk
        self.last_sound = np.full(nchan, -1, np.int64)   # chan -> last tick with host sound
        self._active = np.zeros(0, np.int64)
        self._loud_energy = int(SOUND_RMS * SOUND_RMS * block)

    # -- per call (O(1) Python) ------------------------------------------------
    def start(self, chan: int, tick: int) -> None:
        """Begin keeping what the host sends on chan (a new call)."""
        if chan in self._chunks:
            self.stop(chan)
        self._chunks[chan] = [self._take()]
        self._cur[chan] = self._chunks[chan][0]
        self._off[chan] = 0
        self.last_sound[chan] = tick
        self._reindex()

    def stop(self, chan: int) -> np.ndarray:
        """End the call's recording; returns its audio (a copy) and frees the chunks."""
        ids = self._chunks.pop(chan, None)
        if ids is None:
            return np.zeros(0, np.int16)
        used = (len(ids) - 1) * CHUNK + int(self._off[chan])
        audio = self._store[ids].reshape(-1)[:used].copy()
        self._free.extend(reversed(ids))
        self._cur[chan] = -1
        self._reindex()
        return audio

    def peek(self, chan: int) -> np.ndarray:
        """The call's audio so far (a copy), without stopping."""
        ids = self._chunks.get(chan)
        if ids is None:
            return np.zeros(0, np.int16)
        return self._store[ids].reshape(-1)[:self.samples(chan)].copy()

    def listening(self, chan: int) -> bool:
        return chan in self._chunks

    def samples(self, chan: int) -> int:
        ids = self._chunks.get(chan)
        return 0 if ids is None else (len(ids) - 1) * CHUNK + int(self._off[chan])

    def _take(self) -> int:
        if not self._free:
            old = self._store
            n = len(old)
            self._store = np.zeros((2 * n, CHUNK), np.int16)
            self._store[:n] = old
            self._rows = self._store.reshape(2 * n, CHUNK // self.block, self.block)
            self._free = list(range(2 * n - 1, n - 1, -1))
        return self._free.pop()

    def _reindex(self) -> None:
        self._active = np.fromiter(sorted(self._chunks), np.int64, len(self._chunks))

    # -- per tick (vectorised) -------------------------------------------------
    def step(self, heard: np.ndarray, tick: int) -> None:
        """Append this tick's block of every listening channel.

        `heard` is int16[nchan, block]: what the far ends hear this tick."""
        chans = self._active
        if not len(chans):
            return
        # Chunks that are full get a successor first (rare: once per 10 s per call).
        full = chans[self._off[chans] >= CHUNK]
        for c in full.tolist():
            nid = self._take()
            self._chunks[c].append(nid)
            self._cur[c] = nid
            self._off[c] = 0
        off = self._off[chans]
        block = heard[chans]
        # whole block rows: blocks never straddle a chunk (CHUNK % block == 0)
        self._rows[self._cur[chans], off // self.block] = block
        self._off[chans] = off + self.block
        energy = np.einsum("ij,ij->i", block, block, dtype=np.int64)
        loud = energy > self._loud_energy
        self.last_sound[chans[loud]] = tick
