# cython: language_level=3
"""Per-sample kernels of dsp.r2mf: the batched MF R2 receiver and sender.

Receiver method (why it looks like this):

* Six Goertzel filters per channel run over sub-blocks of SUB = 33
  samples; each channel has its own filter coefficients, so forward-set
  and backward-set channels share one batch. At each sub-block end the
  filter state gives the sub-block's DFT value Z at each frequency; four
  consecutive sub-blocks, each rotated by the phase its delay implies, add
  up to the exact DFT of the last WIN = 132 samples (16.5 ms), a window
  sliding by 33 samples (4.125 ms).
* WIN = 132 puts the rectangular window's spectral nulls 60.6 Hz apart, so
  the set's other frequencies (120 Hz steps) fall near the second, fourth,
  ... null: a strong tone leaks little into its neighbours' bins.
* Windows two hops apart have DFT values at a bin that differ in phase by
  (omega + delta) * 2 SUB for a tone at omega + delta; removing
  omega * 2 SUB leaves the frequency error. (Two hops, not one: the other
  frequency's leakage into the bin, -20 dB for a pair 10 Hz off, bends
  the phase by the same amount either way, so the longer span halves the
  frequency error it causes.) A bin alone would pass a tone 40 Hz off (it
  loses only 7 dB there); the phase test holds the accepted error to the
  configured tolerance, and a single tone half-way between two
  frequencies (equal in both bins) fails it.
* A window is a "hit" for signal (lo, hi) when the two strongest bins are
  both above the level threshold, within the twist limit of each other,
  each beats the other four bins by `rel_peak`, hold `energy_ratio` of the
  window's energy, the window is stationary (the energies of its two
  halves within `stationarity` of each other: rejects windows partly in
  silence and much of speech), and both measured frequency errors are in tolerance.
  A signal starts after `onset_hits` consecutive hits and ends after
  `release_misses` consecutive windows without it.

Layout: state is float32 [tile, quantity, TILE channels], each tile's state
contiguous, the per-lane constants (a lane's set decides them) among it; a
tile is processed for the whole block while its state is hot in L1. Every
loop over a tile's lanes is written without branches (channels inner,
contiguous float32) so that the compiler vectorises the window verdict as
well as the filters; only the signal number lookup and the run-length state
machine go channel by channel. No validation here: dsp/r2mf.py checks shapes and dtypes.
"""
from libc.stdint cimport int16_t, int32_t, int64_t
from libc.math cimport lrint

cdef enum:
    SUB = 33            # samples per sub-block (the hop)
    NSUB = 4            # sub-blocks per window
    WIN = SUB * NSUB    # 132 samples
    NB = 6              # frequencies per set
    TILE = 32           # channels per tile
    CHUNK = 264         # samples transposed at a time (a multiple of SUB)

cdef enum:
    # float32 state rows of a tile
    S1 = 0              # 6 rows: Goertzel s[n-1]
    S2 = 6              # 6 rows: Goertzel s[n-2]
    COEF = 12           # 6 rows: 2 cos(w) of each lane's set
    ECUR = 18           # energy of the current sub-block
    ZH = 19             # 36 rows: older sub-blocks' Z, oldest first: [i][re 6, im 6]
    EH = 55             # 3 rows: older sub-blocks' energies, oldest first
    VP = 58             # 12 rows: previous window's V (re 6, im 6)
    VQ = 70             # 12 rows: the window's before that
    K_COS = 82          # 6 rows: cos(w) of each lane's set (constant)
    K_SIN = 88          # 6 rows: sin(w)
    K_ROT = 94          # 36 rows: exp(-j w SUB i), i = 1..3: [i - 1][re 6, im 6]
    K_TAN2 = 130        # 6 rows: tan^2 of the largest accepted phase step over two hops
    NQ = 136

cdef enum:
    # int64 state rows of a tile
    CAND = 0            # signal of the current run of identical windows (0: none)
    RUN = 1             # length of that run
    CSTART = 2          # window start of the run's first window
    ON = 3              # signal being reported as present (0: none)
    MISS = 4            # consecutive windows without ON
    ONSTART = 5         # start reported for ON
    LASTEND = 6         # end of the last window that saw ON
    NI = 7

NQ_ROWS = NQ
NI_ROWS = NI
SUB_LEN = SUB
WIN_LEN = WIN
TILE_WIDTH = TILE

# signal number (1..15) of the frequency pair (lo, hi), lo < hi, by Q.441's
# order: 1 = f0+f1, 2 = f0+f2, 3 = f1+f2, 4 = f0+f3, ... 15 = f4+f5
cdef int PAIR_SIGNAL[36]   # [lo * 6 + hi]
PAIR_SIGNAL[:] = [
    0, 1, 2, 4, 7, 11,
    0, 0, 3, 5, 8, 12,
    0, 0, 0, 6, 9, 13,
    0, 0, 0, 0, 10, 14,
    0, 0, 0, 0, 0, 15,
    0, 0, 0, 0, 0, 0,
]


cdef void _transpose(const int16_t[:, ::1] x, Py_ssize_t c0, Py_ssize_t ncur, Py_ssize_t nl,
                     Py_ssize_t t0, Py_ssize_t nch, float *xt) noexcept nogil:
    """x[c0 + c, t0 + s] -> xt[s * TILE + c] float32; lanes ncur..nl-1 zero."""
    cdef Py_ssize_t c, s
    for c in range(ncur):
        for s in range(nch):
            xt[s * TILE + c] = <float>x[c0 + c, t0 + s]
    for c in range(ncur, nl):
        for s in range(nch):
            xt[s * TILE + c] = 0.0


cdef void _goertzel(const float *xt, Py_ssize_t seg, float *fs, Py_ssize_t nl) noexcept nogil:
    """Advance the 6 filters and the sub-block energy of a tile's first nl lanes over seg samples."""
    cdef float a1[TILE]
    cdef float a2[TILE]
    cdef float e[TILE]
    cdef const float *x0
    cdef float *s1
    cdef float *s2
    cdef const float *k
    cdef float v
    cdef Py_ssize_t b, s, c
    for c in range(nl):
        e[c] = fs[ECUR * TILE + c]
    for s in range(seg):
        x0 = xt + s * TILE
        for c in range(nl):
            e[c] = e[c] + x0[c] * x0[c]
    for c in range(nl):
        fs[ECUR * TILE + c] = e[c]
    for b in range(NB):
        s1 = fs + (S1 + b) * TILE
        s2 = fs + (S2 + b) * TILE
        k = fs + (COEF + b) * TILE
        for c in range(nl):
            a1[c] = s1[c]
            a2[c] = s2[c]
        for s in range(seg):
            x0 = xt + s * TILE
            for c in range(nl):
                v = (x0[c] - a2[c]) + k[c] * a1[c]
                a2[c] = a1[c]
                a1[c] = v
        for c in range(nl):
            s1[c] = a1[c]
            s2[c] = a2[c]


cdef void _window(float *fs, Py_ssize_t ncur, Py_ssize_t nl, const float *p, int32_t *sig,
                  float *trace) noexcept nogil:
    """At a sub-block end: the window verdict sig[c] (1..15 or 0) of lanes c < ncur.

    The vector loops run over nl >= ncur lanes (ncur rounded up to a whole
    vector); lanes beyond ncur hold silence.

    Rolls the sub-block history and resets the filters for the next one.
    trace (tests; may be NULL) receives the 6 bin powers [6][TILE].
    """
    cdef float pw[NB * TILE]
    cdef int32_t ok[NB * TILE]
    cdef int32_t lo[TILE]
    cdef int32_t hi[TILE]
    cdef int32_t hit[TILE]
    cdef Py_ssize_t c, b
    cdef float zr, zi, vr, vi, xr, xi, cr, ci, v, h1, h2
    cdef float bp, sp, tp
    cdef int32_t bi, si, bok, sok, okv, gtb, gsb
    cdef float norm = 2.0 / (<float>WIN * <float>WIN)
    cdef float *f
    for b in range(NB):
        for c in range(nl):
            f = fs + c
            zr = f[(S1 + b) * TILE] - f[(K_COS + b) * TILE] * f[(S2 + b) * TILE]
            zi = f[(K_SIN + b) * TILE] * f[(S2 + b) * TILE]
            # V = Z_oldest + r Z_1 + r^2 Z_2 + r^3 Z_new (r = exp(-j w SUB))
            vr = (f[(ZH + b) * TILE]
                  + f[(K_ROT + b) * TILE] * f[(ZH + 12 + b) * TILE]
                  - f[(K_ROT + 6 + b) * TILE] * f[(ZH + 18 + b) * TILE]
                  + f[(K_ROT + 12 + b) * TILE] * f[(ZH + 24 + b) * TILE]
                  - f[(K_ROT + 18 + b) * TILE] * f[(ZH + 30 + b) * TILE]
                  + f[(K_ROT + 24 + b) * TILE] * zr - f[(K_ROT + 30 + b) * TILE] * zi)
            vi = (f[(ZH + 6 + b) * TILE]
                  + f[(K_ROT + b) * TILE] * f[(ZH + 18 + b) * TILE]
                  + f[(K_ROT + 6 + b) * TILE] * f[(ZH + 12 + b) * TILE]
                  + f[(K_ROT + 12 + b) * TILE] * f[(ZH + 30 + b) * TILE]
                  + f[(K_ROT + 18 + b) * TILE] * f[(ZH + 24 + b) * TILE]
                  + f[(K_ROT + 24 + b) * TILE] * zi + f[(K_ROT + 30 + b) * TILE] * zr)
            pw[b * TILE + c] = (vr * vr + vi * vi) * norm
            # phase step over two hops, less w 2 SUB: arg(V conj(Vq) r^2)
            xr = vr * f[(VQ + b) * TILE] + vi * f[(VQ + 6 + b) * TILE]
            xi = vi * f[(VQ + b) * TILE] - vr * f[(VQ + 6 + b) * TILE]
            cr = xr * f[(K_ROT + 12 + b) * TILE] - xi * f[(K_ROT + 18 + b) * TILE]
            ci = xr * f[(K_ROT + 18 + b) * TILE] + xi * f[(K_ROT + 12 + b) * TILE]
            ok[b * TILE + c] = (cr > 0.0) & (ci * ci <= f[(K_TAN2 + b) * TILE] * cr * cr)
            f[(VQ + b) * TILE] = f[(VP + b) * TILE]
            f[(VQ + 6 + b) * TILE] = f[(VP + 6 + b) * TILE]
            f[(VP + b) * TILE] = vr
            f[(VP + 6 + b) * TILE] = vi
            f[(ZH + b) * TILE] = f[(ZH + 12 + b) * TILE]
            f[(ZH + 6 + b) * TILE] = f[(ZH + 18 + b) * TILE]
            f[(ZH + 12 + b) * TILE] = f[(ZH + 24 + b) * TILE]
            f[(ZH + 18 + b) * TILE] = f[(ZH + 30 + b) * TILE]
            f[(ZH + 24 + b) * TILE] = zr
            f[(ZH + 30 + b) * TILE] = zi
            f[(S1 + b) * TILE] = 0.0
            f[(S2 + b) * TILE] = 0.0
    for c in range(nl):
        # the strongest, second and third bins, branch-free
        bp = pw[c]
        sp = pw[TILE + c]
        gtb = sp > bp
        bi = gtb
        si = 1 - gtb
        bok = ok[TILE + c] if gtb else ok[c]
        sok = ok[c] if gtb else ok[TILE + c]
        v = bp
        bp = sp if gtb else bp
        sp = v if gtb else sp
        tp = 0.0
        for b in range(2, NB):
            v = pw[b * TILE + c]
            okv = ok[b * TILE + c]
            gtb = v > bp
            gsb = v > sp
            tp = sp if gsb else (v if v > tp else tp)
            si = bi if gtb else (<int32_t>b if gsb else si)
            sok = bok if gtb else (okv if gsb else sok)
            sp = bp if gtb else (v if gsb else sp)
            bi = <int32_t>b if gtb else bi
            bok = okv if gtb else bok
            bp = v if gtb else bp
        # the window's energy in halves of two sub-blocks (66 samples: whole
        # beat periods of any two frequencies of a set, 120 Hz x k apart, so
        # a steady pair gives equal halves; single sub-blocks would not)
        f = fs + c
        h1 = f[EH * TILE] + f[(EH + 1) * TILE]
        h2 = f[(EH + 2) * TILE] + f[ECUR * TILE]
        f[EH * TILE] = f[(EH + 1) * TILE]
        f[(EH + 1) * TILE] = f[(EH + 2) * TILE]
        f[(EH + 2) * TILE] = f[ECUR * TILE]
        f[ECUR * TILE] = 0.0
        # p: min_power, twist (ratio), rel_peak (ratio), energy_ratio, stationarity
        hit[c] = ((sp >= p[0]) & (bp <= sp * p[1]) & (tp * p[2] <= sp)
                  & ((bp + sp) * <float>WIN >= p[3] * (h1 + h2))
                  & (h1 >= p[4] * h2) & (h2 >= p[4] * h1) & bok & sok)
        lo[c] = bi if bi < si else si
        hi[c] = si if bi < si else bi
    for c in range(ncur):
        sig[c] = PAIR_SIGNAL[lo[c] * 6 + hi[c]] if hit[c] else 0
    if trace != NULL:
        for b in range(NB):
            for c in range(ncur):
                trace[b * TILE + c] = pw[b * TILE + c]


cdef Py_ssize_t _decide_tile(int64_t *st, Py_ssize_t c0, Py_ssize_t ncur, const int32_t *sig,
                             int64_t wend, int64_t onset_hits, int64_t release_misses,
                             int64_t[:, ::1] ev, Py_ssize_t nev) noexcept nogil:
    """Per-channel run-length state machine.

    Appends events (chan, signal, start, end or -1, decided at) in the order
    they happen: for one channel a release always comes before the onset
    that follows it.
    """
    cdef Py_ssize_t c
    cdef int64_t d, on
    for c in range(ncur):
        d = sig[c]
        if d == st[CAND * TILE + c]:
            st[RUN * TILE + c] += 1
        else:
            st[CAND * TILE + c] = d
            st[RUN * TILE + c] = 1
            st[CSTART * TILE + c] = wend - WIN if wend > WIN else 0
        on = st[ON * TILE + c]
        if on > 0:
            if d == on:
                st[MISS * TILE + c] = 0
                st[LASTEND * TILE + c] = wend
                continue
            st[MISS * TILE + c] += 1
            if st[MISS * TILE + c] < release_misses:
                continue
            if nev < ev.shape[0]:  # the wrapper sizes ev for the worst case; never skip silently
                ev[nev, 0] = c0 + c
                ev[nev, 1] = on
                ev[nev, 2] = st[ONSTART * TILE + c]
                ev[nev, 3] = st[LASTEND * TILE + c]
                ev[nev, 4] = wend
            nev += 1
            st[ON * TILE + c] = 0
        if d == 0 or st[RUN * TILE + c] < onset_hits:
            continue
        st[ON * TILE + c] = d
        st[MISS * TILE + c] = 0
        st[ONSTART * TILE + c] = st[CSTART * TILE + c]
        st[LASTEND * TILE + c] = wend
        if nev < ev.shape[0]:
            ev[nev, 0] = c0 + c
            ev[nev, 1] = d
            ev[nev, 2] = st[CSTART * TILE + c]
            ev[nev, 3] = -1
            ev[nev, 4] = wend
        nev += 1
    return nev


def r2mf_rx(const int16_t[:, ::1] x, float[:, :, ::1] fstate, int64_t[:, :, ::1] istate,
            int64_t[::1] clock, const double[::1] params, int64_t[:, ::1] events,
            float[:, :, ::1] trace=None) -> int:
    """Run the receiver over x[nchan, n]; returns the number of event rows written.

    clock[0] = samples since init, clock[1] = position inside the current
    sub-block (shared by all channels: they advance in lockstep).
    params = (min_power, twist, rel_peak, energy_ratio, stationarity,
    onset_hits, release_misses). events should have room for every event of
    the call (see R2MfReceiver.rx for the bound); rows beyond it are counted
    but not written, and the caller treats a count above its size as an error.
    trace (tests only), if given as float32[hops, 7, nchan_padded], gets the
    6 bin powers and the window verdict (signal or 0) of every window.
    """
    cdef Py_ssize_t nchan = x.shape[0], n = x.shape[1]
    cdef float xt[CHUNK * TILE]
    cdef float pw[NB * TILE]  # bin powers of the last window (trace only)
    cdef int32_t sig[TILE]
    cdef float p[5]
    cdef Py_ssize_t c0, c, b, ncur, nl, t, seg, t0, nch, hop, tile, nev = 0
    cdef int64_t total0 = clock[0], total
    cdef int64_t pos0 = clock[1], pos
    cdef int64_t onset_hits = <int64_t>params[5], release_misses = <int64_t>params[6]
    cdef bint tracing = trace is not None
    cdef float *pwp = pw if tracing else NULL
    for b in range(5):
        p[b] = <float>params[b]
    with nogil:
        c0 = 0
        while c0 < nchan:
            tile = c0 // TILE
            ncur = min(<Py_ssize_t>TILE, nchan - c0)
            nl = min(<Py_ssize_t>TILE, (ncur + 7) & ~7)  # lanes worked: whole 8-float vectors
            pos = pos0
            total = total0
            hop = 0
            t0 = 0
            while t0 < n:
                nch = min(<Py_ssize_t>CHUNK, n - t0)
                _transpose(x, c0, ncur, nl, t0, nch, xt)
                t = 0
                while t < nch:
                    seg = min(<Py_ssize_t>(SUB - pos), nch - t)
                    _goertzel(&xt[t * TILE], seg, &fstate[tile, 0, 0], nl)
                    t += seg
                    pos += seg
                    total += seg
                    if pos == SUB:
                        pos = 0
                        _window(&fstate[tile, 0, 0], ncur, nl, p, sig, pwp)
                        nev = _decide_tile(&istate[tile, 0, 0], c0, ncur, sig, total,
                                           onset_hits, release_misses, events, nev)
                        if tracing:
                            for b in range(NB):
                                for c in range(ncur):
                                    trace[hop, b, c0 + c] = pw[b * TILE + c]
                            for c in range(ncur):
                                trace[hop, NB, c0 + c] = sig[c]
                            hop += 1
                t0 += nch
            c0 += TILE
        clock[0] = total0 + n
        clock[1] = (pos0 + n) % SUB
    return nev


# ------------------------------------------------------------------ sender

cdef enum:
    G_F1 = 0            # int32 sender state rows: first frequency in Hz (0: silent)
    G_F2 = 1            # second frequency in Hz
    G_K = 2             # sample index into the tone, mod 8000
    G_REMAIN = 3        # samples left of a pulse (-1: until stopped)
    G_ROWS = 4

GEN_ROWS = G_ROWS


def r2mf_tx(int16_t[:, ::1] out, int32_t[:, ::1] gstate, const double[::1] sine,
            const double[::1] amp) -> None:
    """Add each sounding channel's two frequencies into out[c, :] (saturating).

    sine is one second of sin(2 pi k / 8000), k = 0..7999: with integer
    frequencies, index (f * k) mod 8000 gives the exact frequency with no
    phase drift. amp[c] is the peak amplitude of each frequency on channel c.
    """
    cdef Py_ssize_t nchan = out.shape[0], n = out.shape[1]
    cdef Py_ssize_t c, i, stop
    cdef int64_t f1, f2, k, remain
    cdef long v
    cdef double a
    with nogil:
        for c in range(nchan):
            f1 = gstate[G_F1, c]
            if f1 == 0:
                continue
            f2 = gstate[G_F2, c]
            k = gstate[G_K, c]
            remain = gstate[G_REMAIN, c]
            a = amp[c]
            stop = n if remain < 0 or remain >= n else remain
            for i in range(stop):
                v = out[c, i] + lrint(a * (sine[(f1 * k) % 8000] + sine[(f2 * k) % 8000]))
                out[c, i] = <int16_t>(32767 if v > 32767 else (-32768 if v < -32768 else v))
                k = k + 1
                if k == 8000:
                    k = 0
            gstate[G_K, c] = <int32_t>k
            if remain >= 0:
                remain -= stop
                gstate[G_REMAIN, c] = <int32_t>remain
                if remain == 0:
                    gstate[G_F1, c] = 0
                    gstate[G_F2, c] = 0
                    gstate[G_K, c] = 0
