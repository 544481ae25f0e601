"""dsp._capture.capture_block against a plain numpy reference."""
from __future__ import annotations

import numpy as np
import pytest

from dsp._capture import MONO, PAUSED, STEREO, capture_block


def reference(rx, tx, nslots, src_a, src_b, mode, width):
    nchan, n = rx.shape
    both = np.concatenate([rx, tx]).astype(np.int32)
    out = np.full((nslots, width), 12345, np.int16)   # untouched rows keep this

    def row(s):
        return both[s] if s >= 0 else np.zeros(n, np.int32)
    for k in range(nslots):
        m = mode[k]
        if m == 0:
            continue
        w = 2 * n if m & STEREO else n
        if m & PAUSED:
            out[k, :w] = 0
        elif m & STEREO:
            out[k, 0:2 * n:2] = row(src_a[k])
            out[k, 1:2 * n:2] = row(src_b[k])
        else:
            out[k, :n] = np.clip(row(src_a[k]) + row(src_b[k]), -32768, 32767)
    return out


@pytest.mark.parametrize("n", [80, 160, 320])
def test_matches_reference(n):
    rng = np.random.default_rng(n)
    nchan, nslots = 12, 9
    rx = rng.integers(-32768, 32768, (nchan, n), dtype=np.int16)
    tx = rng.integers(-32768, 32768, (nchan, n), dtype=np.int16)
    rx[0] = 30000        # saturates when mixed with tx[0]
    tx[0] = 30000
    src_a = rng.integers(-1, 2 * nchan, nslots).astype(np.int32)
    src_b = rng.integers(-1, 2 * nchan, nslots).astype(np.int32)
    src_a[0], src_b[0] = 0, nchan + 0
    mode = np.array([MONO, STEREO, 0, MONO | PAUSED, STEREO | PAUSED, MONO, STEREO, MONO, STEREO],
                    np.uint8)
    src_a[7] = -1                       # mono of one side only
    out = np.full((nslots, 2 * n), 12345, np.int16)
    capture_block(rx, tx, out, src_a, src_b, mode, nslots)
    ref = reference(rx, tx, nslots, src_a, src_b, mode, 2 * n)
    for k in range(nslots):
        w = 2 * n if mode[k] & STEREO or mode[k] == 0 else n
        np.testing.assert_array_equal(out[k, :w], ref[k, :w], err_msg=f"slot {k} mode {mode[k]}")
    assert (out[0, :n] == 32767).all()
    assert (out[2] == 12345).all()       # a free slot is not written


def test_only_first_nslots_are_written():
    rx = np.ones((2, 160), np.int16)
    tx = np.ones((2, 160), np.int16)
    out = np.zeros((4, 320), np.int16)
    mode = np.full(4, MONO, np.uint8)
    capture_block(rx, tx, out, np.zeros(4, np.int32), np.full(4, 2, np.int32), mode, 2)
    assert (out[:2, :160] == 2).all() and (out[2:] == 0).all()
