"""cffi (ABI mode) wrapper of spandsp's tone generator (tone_gen): a peer for dsp.tones.

Separate from tests/dsp/spandsp.py (the shared harness, owned by the DTMF
work) so the tone tests own their declarations. spandsp's tone_gen plays
up to two frequencies with a cadence of up to two on/off pairs, which
covers the cn/eu/us/uk busy, ringback and congestion tones.
"""
from __future__ import annotations

import numpy as np
from cffi import FFI

import spandsp_lib

ffi = FFI()
ffi.cdef("""
typedef struct tone_gen_descriptor_s tone_gen_descriptor_t;
typedef struct tone_gen_state_s tone_gen_state_t;
tone_gen_descriptor_t *tone_gen_descriptor_init(tone_gen_descriptor_t *s, int f1, int l1,
                                                int f2, int l2, int d1, int d2, int d3,
                                                int d4, int repeat);
void tone_gen_descriptor_free(tone_gen_descriptor_t *s);
int tone_gen(tone_gen_state_t *s, int16_t amp[], int max_samples);
tone_gen_state_t *tone_gen_init(tone_gen_state_t *s, tone_gen_descriptor_t *t);
int tone_gen_free(tone_gen_state_t *s);
""")

lib, _LOAD_ERROR = spandsp_lib.load(ffi)


def require() -> None:
    if lib is None:
        raise spandsp_lib.missing(_LOAD_ERROR, "the tone peer tests")


def tone_gen(freqs: tuple[float, ...], level_dbm0: float, cadence: tuple[float, ...],
             seconds: float) -> np.ndarray:
    """int16[n]: spandsp's rendering of a (1-2 frequency, <= 2 on/off pairs) tone."""
    require()
    if not 1 <= len(freqs) <= 2 or len(cadence) > 4:
        raise ValueError("spandsp tone_gen: 1-2 frequencies and at most 2 on/off pairs")
    f1 = int(round(freqs[0]))
    f2 = int(round(freqs[1])) if len(freqs) > 1 else 0
    lvl = int(round(level_dbm0))
    ms = [int(round(d * 1000)) for d in cadence] + [0] * (4 - len(cadence))
    if not cadence:
        ms[0] = int(seconds * 1000) + 1000   # "continuous": one long on
    desc = lib.tone_gen_descriptor_init(ffi.NULL, f1, lvl, f2, lvl, ms[0], ms[1], ms[2], ms[3], 1)
    st = lib.tone_gen_init(ffi.NULL, desc)
    try:
        n = int(round(seconds * 8000))
        out = np.zeros(n, np.int16)
        lib.tone_gen(st, ffi.from_buffer("int16_t[]", out), n)
        return out
    finally:
        lib.tone_gen_free(st)
        lib.tone_gen_descriptor_free(desc)
