# cython: language_level=3
"""Playback and mixing kernels over all channels of a tick (GIL released)."""
from libc.stdint cimport int16_t, int32_t, int64_t, uint8_t


cdef inline int16_t _sat16(float v) noexcept nogil:
    if v > 32767.0:
        return 32767
    if v < -32768.0:
        return -32768
    return <int16_t>v


def play_block(int16_t[:, ::1] out, const int16_t[::1] bank,
               int64_t[::1] pos, const int64_t[::1] end,
               const float[::1] gain, uint8_t[::1] active,
               const uint8_t[::1] mix, int32_t[::1] finished) -> int:
    """Copy (or mix) each active channel's next block of bank[pos:end] into out.

    A channel whose segment runs out mid-block gets silence for the rest of
    the block and is listed in `finished` (returns how many). Python then
    queues the next segment: work there is O(segments ended), not O(channels).
    """
    cdef Py_ssize_t nchan = out.shape[0], n = out.shape[1]
    cdef Py_ssize_t c, i, take
    cdef int nfin = 0
    cdef float g
    cdef int64_t p
    with nogil:
        for c in range(nchan):
            if not active[c]:
                continue
            p = pos[c]
            take = end[c] - p
            if take > n:
                take = n
            if take < 0:
                take = 0
            g = gain[c]
            if mix[c]:
                for i in range(take):
                    out[c, i] = _sat16(<float>out[c, i] + g * <float>bank[p + i])
            else:
                for i in range(take):
                    out[c, i] = _sat16(g * <float>bank[p + i])
                for i in range(take, n):
                    out[c, i] = 0
            pos[c] = p + take
            if pos[c] >= end[c]:
                active[c] = 0
                finished[nfin] = <int32_t>c
                nfin += 1
    return nfin


def add_rows(int16_t[:, ::1] out, const int16_t[:, ::1] src,
             const int32_t[::1] dst_rows, const int32_t[::1] src_rows) -> None:
    """out[dst_rows[k]] += src[src_rows[k]] with saturation (bridges, conferences)."""
    cdef Py_ssize_t k, i, n = out.shape[1], npairs = dst_rows.shape[0]
    cdef int32_t d, s
    with nogil:
        for k in range(npairs):
            d = dst_rows[k]
            s = src_rows[k]
            for i in range(n):
                out[d, i] = _sat16(<float>out[d, i] + <float>src[s, i])
