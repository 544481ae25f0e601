"""The event rows a batched detector kernel writes (DTMF, MF R2): sized, checked, ordered.

A kernel runs over all channels of a block, tile by tile, and writes one row
per onset or release: (channel, symbol, start, end or -1, decision sample).
The caller hands it a buffer big enough for the worst case and reads the
rows back in the order the decisions were made.
"""
from __future__ import annotations

import numpy as np


def event_buffer(buf: np.ndarray, nchan: int, pending: int, n: int, hop: int, release_misses: int) -> np.ndarray:
    """`buf`, or a bigger one, with room for every row a block of `n` samples can make.

    Worst case per channel: an onset needs the previous symbol released, which takes
    `release_misses` windows, so at most hops // release_misses + 1 onsets, as many
    releases, plus one release of a symbol already on (`pending`: samples the kernel
    holds from the last block; `hop`: samples per window step)."""
    hops = (pending + n) // hop
    need = nchan * (2 * (hops // release_misses + 1) + 1)
    return buf if buf.shape[0] >= need else np.empty((need, 5), dtype=np.int64)


def decided_rows(buf: np.ndarray, nev: int, nchan: int, owner: str) -> np.ndarray:
    """The kernel's `nev` rows in decision order (time, then channel; a release before the
    next onset). More rows than the buffer holds means the bound above is wrong: a bug."""
    if nev > buf.shape[0]:
        raise RuntimeError(f"{owner}: {nev} events overflowed a buffer of {buf.shape[0]}")
    rows = buf[:nev]
    if nev > 1:
        key = rows[:, 4] * nchan + rows[:, 0]
        rows = rows[np.argsort(key, kind="stable")]
    return rows
