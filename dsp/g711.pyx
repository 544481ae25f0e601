# cython: language_level=3
"""G.711 A-law and mu-law: batch encode/decode over arrays of any shape.

Why tables: a 256-entry decode table and a 64 Ki-entry encode table (64 KiB,
L2-resident) turn each sample into one load, which beats computing the
segment per sample and vectorises nothing worse. The tables are built once
at import from the G.711 segment rules (functions `_alaw_code` etc. below),
so the rules stay readable and testable, and the kernels stay trivial.

Conventions (the ITU-T G.711/G.191 reference behaviour, which spandsp
follows): 16-bit linear in and out; A-law codes carry the even-bit
inversion (XOR 0x55); mu-law codes are complemented; A-law encodes a
negative input x from its one's complement (-x - 1); mu-law adds the 0x84
bias and saturates at the top segment.
"""
import numpy as np
cimport numpy as cnp
from libc.stdint cimport int16_t, uint8_t, uint16_t

from dsp.checks import check_audio

cnp.import_array()

__all__ = ["alaw_encode", "alaw_decode", "ulaw_encode", "ulaw_decode"]


def _alaw_code(int x) -> int:
    """A-law code of one 16-bit linear sample (the rule the table holds)."""
    cdef int mask, mag, seg
    if x >= 0:
        mask = 0xD5          # sign bit set for positive, then even-bit inversion
        mag = x
    else:
        mask = 0x55
        mag = -x - 1
    seg = 0
    while seg < 8 and mag >= (256 << seg):
        seg += 1
    if seg >= 8:             # cannot happen for 16-bit input; kept for clarity
        return 0x7F ^ mask
    if seg == 0:
        return ((mag >> 4) & 0x0F) ^ mask
    return ((seg << 4) | ((mag >> (seg + 3)) & 0x0F)) ^ mask


def _alaw_value(int code) -> int:
    """Linear value of one A-law code: the middle of its quantisation step."""
    cdef int a = code ^ 0x55
    cdef int mant = a & 0x0F
    cdef int seg = (a >> 4) & 0x07
    cdef int v
    if seg == 0:
        v = (mant << 4) + 8
    else:
        v = ((mant << 4) + 0x108) << (seg - 1)
    return v if (a & 0x80) else -v


def _ulaw_code(int x) -> int:
    """mu-law code of one 16-bit linear sample."""
    cdef int mask, mag, seg
    if x >= 0:
        mask = 0xFF
        mag = x + 0x84
    else:
        mask = 0x7F
        mag = 0x84 - x
    seg = 0
    while seg < 8 and mag >= (256 << seg):
        seg += 1
    if seg >= 8:             # beyond the top segment: saturate
        return 0x7F ^ mask
    return ((seg << 4) | ((mag >> (seg + 3)) & 0x0F)) ^ mask


def _ulaw_value(int code) -> int:
    """Linear value of one mu-law code."""
    cdef int u = (~code) & 0xFF
    cdef int t = (((u & 0x0F) << 3) + 0x84) << ((u >> 4) & 0x07)
    return (0x84 - t) if (u & 0x80) else (t - 0x84)


def _encode_table(rule) -> np.ndarray:
    # index = the int16 sample's bit pattern as uint16
    xs = np.arange(65536, dtype=np.uint16).view(np.int16)
    return np.array([rule(int(x)) for x in xs], dtype=np.uint8)


def _decode_table(rule) -> np.ndarray:
    return np.array([rule(c) for c in range(256)], dtype=np.int16)


cdef uint8_t[::1] _ALAW_ENC = _encode_table(_alaw_code)
cdef uint8_t[::1] _ULAW_ENC = _encode_table(_ulaw_code)
cdef int16_t[::1] _ALAW_DEC = _decode_table(_alaw_value)
cdef int16_t[::1] _ULAW_DEC = _decode_table(_ulaw_value)


cdef void _encode_kernel(const int16_t[::1] x, uint8_t[::1] out,
                         const uint8_t[::1] table) noexcept nogil:
    cdef Py_ssize_t i, n = x.shape[0]
    cdef const uint8_t *t = &table[0]
    for i in range(n):
        out[i] = t[<uint16_t>x[i]]


cdef void _decode_kernel(const uint8_t[::1] c, int16_t[::1] out,
                         const int16_t[::1] table) noexcept nogil:
    cdef Py_ssize_t i, n = c.shape[0]
    cdef const int16_t *t = &table[0]
    for i in range(n):
        out[i] = t[c[i]]


def _prepare(x, dtype, name: str, out, out_dtype):
    """(flat contiguous input, output array of the input's shape)."""
    a = check_audio(x, name, dtype=dtype, shape=None)
    shape = a.shape
    flat = np.ascontiguousarray(a).reshape(-1)
    if out is None:
        out = np.empty(shape, dtype=out_dtype)
    else:
        check_audio(out, f"{name} out", dtype=out_dtype, shape=shape, out=True, contiguous=True)
    return flat, out


def _encode(x, out, const uint8_t[::1] table, name):
    a, out = _prepare(x, np.int16, name, out, np.uint8)
    cdef const int16_t[::1] src
    cdef uint8_t[::1] dst
    if a.size:
        src = a
        dst = out.reshape(-1)
        with nogil:
            _encode_kernel(src, dst, table)
    return out


def _decode(c, out, const int16_t[::1] table, name):
    a, out = _prepare(c, np.uint8, name, out, np.int16)
    cdef const uint8_t[::1] src
    cdef int16_t[::1] dst
    if a.size:
        src = a
        dst = out.reshape(-1)
        with nogil:
            _decode_kernel(src, dst, table)
    return out


def alaw_encode(x, out=None) -> np.ndarray:
    """int16 linear (any shape) -> uint8 A-law codes of the same shape.

    `out` (optional) receives the result, so the media engine can reuse one
    buffer per tick instead of allocating.
    """
    return _encode(x, out, _ALAW_ENC, "alaw_encode")


def ulaw_encode(x, out=None) -> np.ndarray:
    """int16 linear (any shape) -> uint8 mu-law codes of the same shape."""
    return _encode(x, out, _ULAW_ENC, "ulaw_encode")


def alaw_decode(c, out=None) -> np.ndarray:
    """uint8 A-law codes (any shape) -> int16 linear of the same shape."""
    return _decode(c, out, _ALAW_DEC, "alaw_decode")


def ulaw_decode(c, out=None) -> np.ndarray:
    """uint8 mu-law codes (any shape) -> int16 linear of the same shape."""
    return _decode(c, out, _ULAW_DEC, "ulaw_decode")
