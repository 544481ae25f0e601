# cython: language_level=3
"""Per-sample kernels of dsp.dtmf: the batched DTMF receiver and generator.

Receiver method (why it looks like this):

* Eight Goertzel filters run over short sub-blocks of SUB = 34 samples.
  At each sub-block end the filter state gives the complex DFT value Z of
  the sub-block at each DTMF frequency. Three consecutive sub-blocks are
  combined (with the phase rotation a sub-block's delay implies) into the
  exact DFT of the last WIN = 102 samples: the classic 102-sample DTMF
  window, but sliding by 34 samples (4.25 ms) instead of jumping by 102.
  The fine hop is what separates a 40 ms tone (accept) from a 23 ms one
  (reject) and resolves a 40 ms pause between identical digits.
* Consecutive windows' DFT values at a bin differ in phase by
  (omega + delta) * SUB for a tone at omega + delta; removing omega * SUB
  leaves the frequency error delta. This is a frequency *measurement*, so
  Q.24's accept +-(1.5 % + 2 Hz) / reject +-3.5 % is a threshold on it
  rather than something the 78 Hz-wide bins could decide by level alone.
* A window is a "hit" for digit (row, col) when: both tones are above the
  level threshold; twist is within limits; each tone exceeds the other
  tones of its group by `rel_peak`; the two tones hold at least
  `energy_ratio` of the window's energy; the window is stationary (its
  three sub-block energies within `stationarity` of each other, which
  rejects windows half in silence and much of speech); and both measured
  frequency errors are within tolerance. A digit starts after `onset_hits`
  consecutive hits of the same digit and ends after `release_misses`
  consecutive windows without it.
* The onset also needs the run to be steady (_steady): the error phasors
  of the run's windows (the first left out) are summed, plain and weighted
  by place, in the int64 run state; the sum's angle is the mean frequency
  error (tighter tolerance than one window's), the weighted sum gives the
  error's drift across the run (a glide, a voice). Talk-off on thin lines
  is what these are for (docs/dsp-dtmf.md).

Layout: state is float32 [tile, quantity, TILE channels], each tile's state
contiguous (a [quantity, channel] layout puts rows a power-of-two apart and
thrashes L1 sets at 1,024 channels). A tile is processed for the whole
block (samples outer, channels inner: contiguous float32 lanes) while its
state is hot in L1.

Why some of it is C: the three SIMD loops (transpose, filters, window
verdict) are small C functions in ext/dtmf_kernel.c (declared in
ext/dtmf_kernel.h, linked into this extension by setup.py), because only C
can carry GCC's target_clones attribute: each is compiled twice (baseline
x86-64 SSE2 and x86-64-v3 AVX2/FMA) and picked at load time, so one wheel
runs at AVX2 speed where it can without -march flags. The per-channel
state machine and the Python-facing functions stay in Cython. No
validation here: dsp/dtmf.py checks shapes and dtypes.
"""
from cpython.long cimport PyLong_FromLongLong
from cpython.object cimport PyTypeObject
from cpython.ref cimport Py_INCREF
from cpython.tuple cimport PyTuple_SET_ITEM
from libc.stdint cimport int16_t, int32_t, int64_t, uint8_t
from libc.math cimport lrint

cdef extern from "dtmf_kernel.h":
    enum:
        VB_SUB, VB_NSUB, VB_WIN, VB_NB, VB_TILE, VB_CHUNK, VB_NQ
    ctypedef struct vb_dtmf_params:
        float coef[8]
        float cosw[8]
        float sinw[8]
        float r1re[8]
        float r1im[8]
        float r2re[8]
        float r2im[8]
        float tan2[8]
        float ucap[8]
        float min_power, normal_twist, reverse_twist, rel_peak, energy_ratio, stationarity
        int onset_hits, release_misses
        float run_ratio
        float comp[5]
        float harm_tan2
        int harm_mask
        float run_tan2[8]
        float drift_rad
    void vb_dtmf_transpose(const int16_t *x, Py_ssize_t rowstride, int ncur, int nch,
                           float *xt) noexcept nogil
    void vb_dtmf_goertzel(const float *xt, int seg, float *fs,
                          const vb_dtmf_params *q) noexcept nogil
    void vb_dtmf_window(float *fs, const vb_dtmf_params *q, int32_t *digit, float *ratio,
                        float *harm, float *err, float *pw_out) noexcept nogil

cdef enum:
    # int64 state rows of a tile
    CAND = 0            # digit of the current run of identical windows (-1: no digit)
    RUN = 1             # length of that run
    CSTART = 2          # window start of the run's first window
    ON = 3              # digit being reported as present (-1: none)
    MISS = 4            # consecutive windows without ON
    ONSTART = 5         # start reported for ON
    LASTEND = 6         # end of the last window that saw ON
    RSUM = 7            # sum over the run of the windows' energy ratios, x 1e6
    HRE = 8             # sum over the run of the harmonic-relation phasor, x 1e6 (re)
    HIM = 9             # (im)
    E0 = 10             # 4 rows: sum over the run of the frequency-error phasors, x 1e6
                        #   (row re, row im, column re, column im)
    E1 = 14             # 4 rows: the same, each weighted by its place in the run (0, 1, ...)
    NI = 18

NQ_ROWS = VB_NQ
NI_ROWS = NI
SUB_LEN = VB_SUB
WIN_LEN = VB_WIN
TILE_WIDTH = VB_TILE


cdef vb_dtmf_params _params_from(const float[::1] p, const float[::1] bins) noexcept nogil:
    """Unpack the flat parameter vectors the wrapper builds (see dsp/dtmf.py)."""
    cdef vb_dtmf_params q
    cdef int b
    for b in range(8):
        q.coef[b] = bins[b]
        q.cosw[b] = bins[8 + b]
        q.sinw[b] = bins[16 + b]
        q.r1re[b] = bins[24 + b]
        q.r1im[b] = bins[32 + b]
        q.r2re[b] = bins[40 + b]
        q.r2im[b] = bins[48 + b]
        q.tan2[b] = bins[56 + b]
        q.ucap[b] = bins[64 + b]
    q.min_power = p[0]
    q.normal_twist = p[1]
    q.reverse_twist = p[2]
    q.rel_peak = p[3]
    q.energy_ratio = p[4]
    q.stationarity = p[5]
    q.onset_hits = <int>p[6]
    q.release_misses = <int>p[7]
    for b in range(5):
        q.comp[b] = p[8 + b]
    q.harm_tan2 = p[13]
    q.harm_mask = <int>p[14]
    q.run_ratio = p[15]
    for b in range(8):
        q.run_tan2[b] = bins[72 + b]
    q.drift_rad = p[16]
    return q


cdef inline bint _steady(const int64_t *st, Py_ssize_t istride, Py_ssize_t c, int k, int b,
                         const vb_dtmf_params *q) noexcept nogil:
    """The run's tone k (0 row, 2 column; bin b) held one frequency near its nominal one.

    Mean: the sum of the windows' error phasors points within run_tan2 of
    zero (the average frequency error is within the run tolerance, tighter
    than a single window's). Drift: the phasors weighted by their place
    in the run, less the mean place times the sum, projected across the
    mean, give sum((place - mid) x angle) x |S0| x |u| (|u| = |S0| / n, the
    phasors' size, near one x 1e6); divided by sum((place - mid)^2) that is
    the slope of the error angle per window, and over the run it must change
    by at most drift_rad. A DTMF tone does not move; a whistle, a glide or
    a voice does.
    """
    cdef double n = <double>(st[RUN * istride + c] - 1)  # windows in the sums
    cdef double s0r = <double>st[(E0 + k) * istride + c], s0i = <double>st[(E0 + k + 1) * istride + c]
    cdef double s1r = <double>st[(E1 + k) * istride + c], s1i = <double>st[(E1 + k + 1) * istride + c]
    cdef double mid = (n - 1.0) * 0.5, tr, ti, cross, spread, s0sq
    if s0r <= 0.0 or s0i * s0i > q.run_tan2[b] * s0r * s0r:
        return False
    tr = s1r - mid * s0r
    ti = s1i - mid * s0i
    cross = ti * s0r - tr * s0i
    spread = n * (n * n - 1.0) / 12.0
    s0sq = s0r * s0r + s0i * s0i
    # slope = cross n / (|S0|^2 spread); slope (n - 1) <= drift_rad, squared (no sqrt)
    return cross * cross * n * n * (n - 1.0) * (n - 1.0) <= \
        q.drift_rad * q.drift_rad * spread * spread * s0sq * s0sq


cdef inline Py_ssize_t _decide_tile(int64_t *st, Py_ssize_t istride, Py_ssize_t c0,
                                    Py_ssize_t ncur, const int32_t *digit,
                                    const float *ratio, const float *harm, const float *err,
                                    int64_t wend,
                                    const vb_dtmf_params *q, int64_t[:, ::1] ev,
                                    Py_ssize_t nev) noexcept nogil:
    """Per-channel run-length state machine.

    Appends events (chan, digit, start, end or -1, decided at) in the order
    they happen: for one channel a release always comes before the onset
    that follows it.
    """
    cdef Py_ssize_t c, k
    cdef int64_t d, on, place, u
    cdef double hre, him
    for c in range(ncur):
        d = digit[c]
        on = st[ON * istride + c]
        if d == on:
            # silence goes on, or the digit on holds: no run to count (the
            # run statistics only decide onsets, and the digit on cannot
            # start again before a release has changed the candidate)
            st[CAND * istride + c] = d
            if d >= 0:
                st[MISS * istride + c] = 0
                st[LASTEND * istride + c] = wend
            continue
        if d != st[CAND * istride + c]:
            st[CAND * istride + c] = d
            if d >= 0:
                st[RUN * istride + c] = 1
                st[RSUM * istride + c] = <int64_t>(ratio[c] * 1e6)
                st[HRE * istride + c] = <int64_t>(harm[c] * 1e6)
                st[HIM * istride + c] = <int64_t>(harm[VB_TILE + c] * 1e6)
                for k in range(4):  # the first window's error compares it with one before the run
                    st[(E0 + k) * istride + c] = 0
                    st[(E1 + k) * istride + c] = 0
                st[CSTART * istride + c] = wend - VB_WIN if wend > VB_WIN else 0
        elif d >= 0:
            place = st[RUN * istride + c] - 1  # 0 for the run's second window
            st[RUN * istride + c] += 1
            st[RSUM * istride + c] += <int64_t>(ratio[c] * 1e6)
            st[HRE * istride + c] += <int64_t>(harm[c] * 1e6)
            st[HIM * istride + c] += <int64_t>(harm[VB_TILE + c] * 1e6)
            for k in range(4):
                u = <int64_t>(err[k * VB_TILE + c] * 1e6)
                st[(E0 + k) * istride + c] += u
                st[(E1 + k) * istride + c] += place * u
        if on >= 0:
            st[MISS * istride + c] += 1
            if st[MISS * istride + c] < q.release_misses:
                continue
            if nev < ev.shape[0]:  # the wrapper sizes ev for the worst case; never skip silently
                ev[nev, 0] = c0 + c
                ev[nev, 1] = on
                ev[nev, 2] = st[ONSTART * istride + c]
                ev[nev, 3] = st[LASTEND * istride + c]
                ev[nev, 4] = wend
            nev += 1
            st[ON * istride + c] = -1
        if d < 0 or st[RUN * istride + c] < q.onset_hits or \
                st[RSUM * istride + c] < <int64_t>(q.run_ratio * 1e6) * st[RUN * istride + c]:
            continue
        if (q.harm_mask >> d) & 1:  # the run's average says "one note and its octave"
            hre = <double>st[HRE * istride + c]
            him = <double>st[HIM * istride + c]
            if hre > 0.0 and him * him <= q.harm_tan2 * hre * hre:
                continue
        if not (_steady(st, istride, c, 0, d >> 2, q) and _steady(st, istride, c, 2, 4 + (d & 3), q)):
            continue
        st[ON * istride + c] = d
        st[MISS * istride + c] = 0
        st[ONSTART * istride + c] = st[CSTART * istride + c]
        st[LASTEND * istride + c] = wend
        if nev < ev.shape[0]:
            ev[nev, 0] = c0 + c
            ev[nev, 1] = d
            ev[nev, 2] = st[CSTART * istride + c]
            ev[nev, 3] = -1
            ev[nev, 4] = wend
        nev += 1

    return nev


def dtmf_rx(const int16_t[:, ::1] x, float[:, :, ::1] fstate, int64_t[:, :, ::1] istate,
            int64_t[::1] clock, const float[::1] params, const float[::1] bins,
            int64_t[:, ::1] events, float[:, :, ::1] trace=None) -> int:
    """Run the receiver over x[nchan, n]; returns the number of event rows written.

    clock[0] = samples since init, clock[1] = position inside the current
    sub-block (shared by all channels: they advance in lockstep). events
    should have room for every event of the call (see DtmfDetector.rx for the
    bound); rows beyond it are counted but not written, and the caller
    treats a count above its size as an error.
    trace (tests only), if given as float32[hops, 9, nchan_padded], gets the
    8 tone powers and the window verdict (digit or -1) of every window.
    """
    cdef Py_ssize_t nchan = x.shape[0], n = x.shape[1]
    cdef vb_dtmf_params q = _params_from(params, bins)
    cdef float xt[VB_CHUNK * VB_TILE]
    cdef float pw[8 * VB_TILE]
    cdef int32_t digit[VB_TILE]
    cdef float ratio[VB_TILE]
    cdef float harm[2 * VB_TILE]
    cdef float err[4 * VB_TILE]
    cdef Py_ssize_t c0, c, b, ncur, t, seg, t0, nch, hop, nev = 0
    cdef int64_t total0 = clock[0], total
    cdef int64_t pos0 = clock[1], pos
    cdef bint tracing = trace is not None
    cdef float *pwp = pw if tracing else NULL
    with nogil:
        c0 = 0
        while c0 < nchan:
            ncur = min(VB_TILE, nchan - c0)
            pos = pos0
            total = total0
            hop = 0
            t0 = 0
            while t0 < n:
                nch = min(VB_CHUNK, n - t0)
                vb_dtmf_transpose(&x[c0, t0], x.shape[1], <int>ncur, <int>nch, xt)
                t = 0
                while t < nch:
                    seg = min(VB_SUB - pos, nch - t)
                    vb_dtmf_goertzel(&xt[t * VB_TILE], <int>seg, &fstate[c0 // VB_TILE, 0, 0], &q)
                    t += seg
                    pos += seg
                    total += seg
                    if pos == VB_SUB:
                        pos = 0
                        vb_dtmf_window(&fstate[c0 // VB_TILE, 0, 0], &q, digit, ratio, harm, err, pwp)
                        nev = _decide_tile(&istate[c0 // VB_TILE, 0, 0], VB_TILE, c0, ncur,
                                           digit, ratio, harm, err, total, &q, events, nev)
                        if tracing:
                            for b in range(8):
                                for c in range(VB_TILE):
                                    trace[hop, b, c0 + c] = pw[b * VB_TILE + c]
                            for c in range(VB_TILE):
                                trace[hop, 8, c0 + c] = digit[c]
                            hop += 1
                t0 += nch
            c0 += VB_TILE
        clock[0] = total0 + n
        clock[1] = (pos0 + n) % VB_SUB
    return nev


cdef extern from *:
    """
    /* tuple.__new__(cls, items)'s first step: an instance of the tuple subclass with n empty slots */
    static PyObject *vb_alloc_tuple(PyTypeObject *tp, Py_ssize_t n) { return tp->tp_alloc(tp, n); }
    """
    object _alloc_tuple "vb_alloc_tuple"(PyTypeObject *tp, Py_ssize_t n)


def event_tuples(const int64_t[:, ::1] rows, type cls, tuple names) -> list:
    """[cls(chan, names[digit], start, end or None)] for each row (chan, digit, start, end, _).

    cls is a 4-field tuple subclass (DtmfEvent). Built as tuple.__new__(cls,
    ...) builds it (the type's tp_alloc, then the items), without a Python
    loop and the row lists it reads: with dense DTMF on 1,024 channels that
    was a fifth of the receiver's time.
    """
    if not issubclass(cls, tuple) or len(names) != 16:
        raise TypeError("event_tuples: cls must be a tuple subclass and names the 16 digits")
    cdef Py_ssize_t i, n = rows.shape[0]
    cdef PyTypeObject *tp = <PyTypeObject *>cls
    cdef list out = [None] * n
    cdef object ev, item
    cdef int64_t end
    for i in range(n):
        ev = _alloc_tuple(tp, 4)
        item = PyLong_FromLongLong(rows[i, 0])
        Py_INCREF(item)
        PyTuple_SET_ITEM(ev, 0, item)
        item = names[rows[i, 1] & 15]
        Py_INCREF(item)
        PyTuple_SET_ITEM(ev, 1, item)
        item = PyLong_FromLongLong(rows[i, 2])
        Py_INCREF(item)
        PyTuple_SET_ITEM(ev, 2, item)
        end = rows[i, 3]
        item = None if end < 0 else PyLong_FromLongLong(end)
        Py_INCREF(item)
        PyTuple_SET_ITEM(ev, 3, item)
        out[i] = ev
    return out


# ------------------------------------------------------------------ generator

cdef enum:
    GQ_HEAD = 0         # int32 generator state rows: queue head
    GQ_LEN = 1          # queued digits
    G_DIGIT = 2         # digit sounding or in its gap (-1: idle)
    G_STAGE = 3         # 0 idle, 1 tone, 2 gap
    G_N = 4             # samples into the stage
    G_ROWS = 5

GEN_ROWS = G_ROWS


def dtmf_tx(int16_t[:, ::1] out, int32_t[:, ::1] gstate, const uint8_t[:, ::1] queue,
            const double[::1] sine, const int32_t[::1] row_hz, const int32_t[::1] col_hz,
            double amp_low, double amp_high, int32_t on_samples, int32_t off_samples) -> None:
    """Add each busy channel's queued digits into out[c, :] (saturating).

    sine is one second of sin(2 pi k / 8000), k = 0..7999: with integer
    frequencies, index (f * n) mod 8000 gives the exact frequency with no
    phase drift. queue[c] is a ring of digit indices (0..15).
    """
    cdef Py_ssize_t nchan = out.shape[0], n = out.shape[1], qcap = queue.shape[1]
    cdef Py_ssize_t c, i
    cdef int32_t d, stage, k, fl, fh
    cdef long v
    with nogil:
        for c in range(nchan):
            if gstate[G_STAGE, c] == 0 and gstate[GQ_LEN, c] == 0:
                continue
            for i in range(n):
                stage = gstate[G_STAGE, c]
                if stage == 0:
                    if gstate[GQ_LEN, c] == 0:
                        break
                    gstate[G_DIGIT, c] = queue[c, gstate[GQ_HEAD, c]]
                    gstate[GQ_HEAD, c] = (gstate[GQ_HEAD, c] + 1) % qcap
                    gstate[GQ_LEN, c] -= 1
                    gstate[G_STAGE, c] = 1
                    gstate[G_N, c] = 0
                    stage = 1
                k = gstate[G_N, c]
                if stage == 1:
                    d = gstate[G_DIGIT, c]
                    fl = row_hz[d >> 2]
                    fh = col_hz[d & 3]
                    v = out[c, i] + lrint(amp_low * sine[(<int64_t>fl * k) % 8000]
                                          + amp_high * sine[(<int64_t>fh * k) % 8000])
                    out[c, i] = <int16_t>(32767 if v > 32767 else (-32768 if v < -32768 else v))
                k = k + 1
                if stage == 1 and k >= on_samples:
                    gstate[G_STAGE, c] = 2
                    k = 0
                elif stage == 2 and k >= off_samples:
                    gstate[G_STAGE, c] = 0
                    gstate[G_DIGIT, c] = -1
                    k = 0
                gstate[G_N, c] = k
