"""G.711 kernels: bit-exact against spandsp and against an independent numpy model."""
from __future__ import annotations

import numpy as np
import pytest

from dsp import g711
from dsp.checks import AudioArrayError

ALL_LINEAR = np.arange(-32768, 32768, dtype=np.int32).astype(np.int16)
ALL_CODES = np.arange(256, dtype=np.uint8)


# ---- an independent, vectorised numpy model of the G.711 rules ----------

def _segment(mag: np.ndarray) -> np.ndarray:
    """Segment number: how many doublings of 256 the magnitude has passed."""
    seg = np.zeros(mag.shape, dtype=np.int64)
    for k in range(8):
        seg += mag >= (256 << k)
    return seg


def np_alaw_encode(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.int64)
    mag = np.where(x >= 0, x, -x - 1)
    seg = _segment(mag)
    shift = np.where(seg == 0, 4, seg + 3)
    code = (seg << 4) | ((mag >> shift) & 0x0F)
    return (code ^ np.where(x >= 0, 0xD5, 0x55)).astype(np.uint8)


def np_alaw_decode(c: np.ndarray) -> np.ndarray:
    a = c.astype(np.int64) ^ 0x55
    mant, seg = a & 0x0F, (a >> 4) & 7
    v = np.where(seg == 0, (mant << 4) + 8, ((mant << 4) + 0x108) << np.maximum(seg - 1, 0))
    return np.where(a & 0x80, v, -v).astype(np.int16)


def np_ulaw_encode(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.int64)
    mag = np.where(x >= 0, x + 0x84, 0x84 - x)
    seg = _segment(mag)
    code = np.where(seg >= 8, 0x7F, (np.minimum(seg, 7) << 4) | ((mag >> (np.minimum(seg, 7) + 3)) & 0x0F))
    return (code ^ np.where(x >= 0, 0xFF, 0x7F)).astype(np.uint8)


def np_ulaw_decode(c: np.ndarray) -> np.ndarray:
    u = (~c.astype(np.int64)) & 0xFF
    t = (((u & 0x0F) << 3) + 0x84) << ((u >> 4) & 7)
    return np.where(u & 0x80, 0x84 - t, t - 0x84).astype(np.int16)


# ---- against spandsp (the ITU reference behaviour) ----------------------

@pytest.mark.parametrize("law", ["alaw", "ulaw"])
def test_encode_all_65536_inputs_match_spandsp(spandsp, law):
    ours = getattr(g711, f"{law}_encode")(ALL_LINEAR)
    theirs = getattr(spandsp, f"{law}_encode")(ALL_LINEAR)
    bad = np.flatnonzero(ours != theirs)
    assert bad.size == 0, f"{law}: {bad.size} inputs differ, first {ALL_LINEAR[bad[:5]]}"


@pytest.mark.parametrize("law", ["alaw", "ulaw"])
def test_decode_all_256_codes_match_spandsp(spandsp, law):
    ours = getattr(g711, f"{law}_decode")(ALL_CODES)
    theirs = getattr(spandsp, f"{law}_decode")(ALL_CODES)
    assert np.array_equal(ours, theirs)


# ---- kernels against the numpy model ------------------------------------

@pytest.mark.parametrize("law,enc,dec", [("alaw", np_alaw_encode, np_alaw_decode),
                                         ("ulaw", np_ulaw_encode, np_ulaw_decode)])
def test_kernels_match_numpy_model(law, enc, dec):
    assert np.array_equal(getattr(g711, f"{law}_encode")(ALL_LINEAR), enc(ALL_LINEAR))
    assert np.array_equal(getattr(g711, f"{law}_decode")(ALL_CODES), dec(ALL_CODES))


def test_known_codes():
    # silence: A-law 0xD5 (the idle pattern on E1), mu-law 0xFF
    assert g711.alaw_encode(np.zeros(1, np.int16))[0] == 0xD5
    assert g711.ulaw_encode(np.zeros(1, np.int16))[0] == 0xFF
    # extremes
    assert g711.alaw_encode(np.array([32767, -32768], np.int16)).tolist() == [0xAA, 0x2A]
    assert g711.ulaw_encode(np.array([32767, -32768], np.int16)).tolist() == [0x80, 0x00]
    assert g711.alaw_decode(np.array([0xAA, 0x2A], np.uint8)).tolist() == [32256, -32256]
    assert g711.ulaw_decode(np.array([0x80, 0x00], np.uint8)).tolist() == [32124, -32124]


@pytest.mark.parametrize("law", ["alaw", "ulaw"])
def test_decode_then_encode_is_identity_on_codes(law):
    lin = getattr(g711, f"{law}_decode")(ALL_CODES)
    back = getattr(g711, f"{law}_encode")(lin)
    if law == "ulaw":  # 0x7F and 0xFF both decode to 0; 0 encodes as 0xFF
        assert np.array_equal(back[ALL_CODES != 0x7F], ALL_CODES[ALL_CODES != 0x7F])
        assert back[0x7F] == 0xFF
    else:
        assert np.array_equal(back, ALL_CODES)


@pytest.mark.parametrize("law", ["alaw", "ulaw"])
def test_encoding_is_monotonic_and_error_bounded(law):
    lin = getattr(g711, f"{law}_decode")(getattr(g711, f"{law}_encode")(ALL_LINEAR)).astype(np.int64)
    assert np.all(np.diff(lin) >= 0)
    err = np.abs(lin - ALL_LINEAR.astype(np.int64))
    # within half the largest step (1024 for A-law top segment, 1024 mu-law)
    assert err.max() <= 1024 + 8


@pytest.mark.parametrize("shape", [(), (0,), (7,), (3, 160), (2, 4, 5)])
def test_any_shape_and_layout(shape):
    rng = np.random.default_rng(1)
    x = rng.integers(-32768, 32768, size=shape, dtype=np.int16)
    for law in ("alaw", "ulaw"):
        c = getattr(g711, f"{law}_encode")(x)
        assert c.shape == x.shape and c.dtype == np.uint8
        d = getattr(g711, f"{law}_decode")(c)
        assert d.shape == x.shape and d.dtype == np.int16
    if len(shape) == 2:  # a non-contiguous view gives the same as its copy
        v = x[:, ::2]
        assert np.array_equal(g711.alaw_encode(v), g711.alaw_encode(v.copy()))


def test_out_parameter_is_filled_in_place():
    x = np.arange(-800, 800, dtype=np.int16).reshape(2, 800)
    out = np.empty(x.shape, np.uint8)
    res = g711.alaw_encode(x, out=out)
    assert res is out and np.array_equal(out, np_alaw_encode(x))
    lin = np.empty(x.shape, np.int16)
    assert g711.alaw_decode(out, out=lin) is lin


def test_clear_errors():
    with pytest.raises(AudioArrayError, match=r"alaw_encode: expected int16 \(any shape\), got float32\[4\]"):
        g711.alaw_encode(np.zeros(4, np.float32))
    with pytest.raises(AudioArrayError, match=r"ulaw_decode: expected uint8 \(any shape\), got int16"):
        g711.ulaw_decode(np.zeros(4, np.int16))
    with pytest.raises(AudioArrayError, match=r"alaw_encode out: expected uint8\[4\], got uint8\[5\]"):
        g711.alaw_encode(np.zeros(4, np.int16), out=np.zeros(5, np.uint8))
