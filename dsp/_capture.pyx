# cython: language_level=3
"""Recording capture: gather every recorded channel of a tick in one call (GIL released).

Why one kernel: the media tick must do O(1) Python work for recording however
many calls are recorded, so all recording slots are described by index
arrays (set when a recording starts, pauses or is retargeted, not per tick)
and this kernel walks them. The writer thread reads the rows later; the
tick never touches a file.

Source index convention: `0 <= s < nchan` is rx row `s` (what the line
sends us: the caller on a trunk), `nchan <= s < 2*nchan` is tx row
`s - nchan` (what we send the line: prompts, tones, the bridged agent),
`-1` is silence.

Slot modes: MONO (1) writes `sat(a + b)` into out[slot, :n]; STEREO (2)
interleaves a (left) and b (right) into out[slot, :2n]; the PAUSED flag (4)
writes silence of the same width (a pause is a marked gap of silence in the
file); 0 = free slot, untouched.
"""
from libc.stdint cimport int16_t, int32_t, uint8_t
from libc.string cimport memset

cdef enum:
    _MONO = 1
    _STEREO = 2
    _PAUSED = 4

MONO = _MONO
STEREO = _STEREO
PAUSED = _PAUSED


cdef inline int16_t _sat16(int v) noexcept nogil:
    if v > 32767:
        return 32767
    if v < -32768:
        return -32768
    return <int16_t>v


cdef inline const int16_t *_row(const int16_t[:, ::1] rx, const int16_t[:, ::1] tx,
                                int32_t s, int32_t nchan) noexcept nogil:
    if s < 0:
        return NULL
    if s < nchan:
        return &rx[s, 0]
    return &tx[s - nchan, 0]


def capture_block(const int16_t[:, ::1] rx, const int16_t[:, ::1] tx, int16_t[:, ::1] out,
                  const int32_t[::1] src_a, const int32_t[::1] src_b,
                  const uint8_t[::1] mode, Py_ssize_t nslots) -> None:
    """out[k] = the recorded audio of slot k for this tick, for k < nslots.

    Shapes are checked by the caller (voiceserver.recording.recorder) once per
    configuration: rx, tx int16[nchan, n]; out int16[>= nslots, >= 2n];
    src_a, src_b int32 and mode uint8 of length >= nslots; indices in range.
    """
    cdef Py_ssize_t n = rx.shape[1], k, i
    cdef int32_t nchan = <int32_t>rx.shape[0]
    cdef uint8_t m
    cdef const int16_t *a
    cdef const int16_t *b
    cdef int16_t *o
    with nogil:
        for k in range(nslots):
            m = mode[k]
            if m == 0:
                continue
            o = &out[k, 0]
            if m & _PAUSED:
                memset(o, 0, (2 * n if m & _STEREO else n) * sizeof(int16_t))
                continue
            a = _row(rx, tx, src_a[k], nchan)
            b = _row(rx, tx, src_b[k], nchan)
            if m & _STEREO:
                for i in range(n):
                    o[2 * i] = a[i] if a != NULL else 0
                    o[2 * i + 1] = b[i] if b != NULL else 0
            elif a != NULL and b != NULL:
                for i in range(n):
                    o[i] = _sat16(<int>a[i] + <int>b[i])
            elif a != NULL:
                for i in range(n):
                    o[i] = a[i]
            elif b != NULL:
                for i in range(n):
                    o[i] = b[i]
            else:
                memset(o, 0, n * sizeof(int16_t))
