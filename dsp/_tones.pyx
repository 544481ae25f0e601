# cython: language_level=3
"""Per-sample kernels of dsp.tones: tone synthesis, Goertzel frames, run-length segmentation.

All three loop samples (or frames) outer and channels inner over float32 /
int32 state arrays laid out [.., nchan], so the inner loop is a contiguous
stride over channels (SIMD-friendly) and one call serves every channel of a
board. No validation here: dsp/tones.py checks shapes and dtypes.
"""
from libc.math cimport sinf, lrintf

cdef double TWO_PI_D = 6.283185307179586


def tone_tx(short[:, ::1] out,
            int[::1] tone, int[::1] seg, int[::1] remain,
            double[:, ::1] phase, double[:, ::1] inc, float[:, ::1] amp,
            int[::1] seg_off, int[::1] seg_cnt, int[::1] seg_len) -> None:
    """Add each channel's cadenced tone into out[c, :].

    tone[c] < 0: channel silent. Segment s of tone t is seg_off[t] + s;
    even s is "on", odd is "off"; seg_len 0 means "forever" (continuous).
    phase/inc/amp are [ncomp, nchan] in cycles, cycles/sample and peak
    units; phases advance in on and off segments alike, so a tone stays
    phase-continuous across blocks and across its own cadence. Phases are
    float64: a float32 accumulator drifts by a few LSB per second (its
    rounding repeats with the tone's period, so the error is a bias).
    """
    cdef Py_ssize_t nchan = out.shape[0], n = out.shape[1], ncomp = phase.shape[0]
    cdef Py_ssize_t i, c, k
    cdef int t, s
    cdef float acc
    cdef double ph
    cdef long v
    with nogil:
        for i in range(n):
            for c in range(nchan):
                t = tone[c]
                if t < 0:
                    continue
                s = seg[c]
                if (s & 1) == 0:
                    acc = 0.0
                    for k in range(ncomp):
                        acc = acc + amp[k, c] * sinf(<float>(TWO_PI_D * phase[k, c]))
                    v = out[c, i] + lrintf(acc)
                    if v > 32767:
                        v = 32767
                    elif v < -32768:
                        v = -32768
                    out[c, i] = <short>v
                for k in range(ncomp):
                    ph = phase[k, c] + inc[k, c]
                    if ph >= 1.0:
                        ph = ph - 1.0
                    phase[k, c] = ph
                if remain[c] > 0:
                    remain[c] -= 1
                    if remain[c] == 0:
                        s = s + 1
                        if s >= seg_cnt[t]:
                            s = 0
                        seg[c] = s
                        remain[c] = seg_len[seg_off[t] + s]


def goertzel_frames(float[:, ::1] xt, float[::1] coef, float[::1] sinw,
                    float[:, ::1] s1, float[:, ::1] s2, float[::1] energy,
                    int pos, int frame_len, float[:, :, ::1] out) -> tuple:
    """Goertzel DFT values over consecutive frames of frame_len samples.

    xt is the block transposed, [n, nchan]; coef = 2 cos(w), sinw = sin(w)
    per frequency. State (s1, s2 [nfreq, nchan], energy [nchan], pos =
    samples already in the current frame) carries over between calls, so
    frames need not align with blocks. For every completed frame j:
    out[j, 2f] + i out[j, 2f+1] = s1 - s2 e^{-iw} = X_f(frame) e^{iw(N-1)}
    (the frame's DFT at f; the phase factor is the same every frame, so
    phase differences between frames are exact), and out[j, 2 nfreq, c] =
    frame energy sum(x^2). Returns (frames completed, new pos).
    """
    cdef Py_ssize_t n = xt.shape[0], nchan = xt.shape[1], nf = coef.shape[0]
    cdef Py_ssize_t i, c, f
    cdef int nfr = 0
    cdef float x, s0, a, b, cf
    with nogil:
        for i in range(n):
            for f in range(nf):
                cf = coef[f]
                for c in range(nchan):
                    s0 = xt[i, c] + cf * s1[f, c] - s2[f, c]
                    s2[f, c] = s1[f, c]
                    s1[f, c] = s0
            for c in range(nchan):
                x = xt[i, c]
                energy[c] = energy[c] + x * x
            pos += 1
            if pos == frame_len:
                for f in range(nf):
                    cf = coef[f]
                    for c in range(nchan):
                        a = s1[f, c]
                        b = s2[f, c]
                        out[nfr, 2 * f, c] = a - b * 0.5 * cf
                        out[nfr, 2 * f + 1, c] = b * sinw[f]
                        s1[f, c] = 0.0
                        s2[f, c] = 0.0
                for c in range(nchan):
                    out[nfr, 2 * nf, c] = energy[c]
                    energy[c] = 0.0
                nfr += 1
                pos = 0
    return nfr, pos


def segment_frames(int[:, ::1] cls, float[:, ::1] energy, long long frame0,
                   int[::1] cur, long long[::1] cur_start,
                   int[::1] cand, long long[::1] cand_start, int[::1] cand_len,
                   unsigned char[::1] milestone_done,
                   double[::1] run_e, int[::1] run_n, double[::1] cand_e,
                   int debounce, int[::1] milestone, int class_base,
                   long long[:, ::1] ev, double[:, ::1] ev_e) -> int:
    """Run-length segmentation of per-frame classes, with debounce, milestones and run energy.

    cls and energy are [nframes, nchan]; frame j has global index frame0 + j.
    A new class replaces cur[c] once it has held `debounce` consecutive
    frames; its run is backdated to its first frame. Frames that were
    candidates but never became a run stay in the run they fell in, so each
    frame's energy is counted in exactly one run (run_e/run_n: sum and count
    of the current run; cand_e: the pending candidate frames' sum).
    Events go to ev[k] = (chan, class, run start frame, kind): kind 0 = the
    class changed (the previous run ended at that frame; ev_e[k] = (its
    energy sum, its frame count)), kind 1 = the current run has lasted
    milestone[class + class_base] frames (once per run; 0 = never).
    Returns the number of events written; ev must hold 2 * nframes * nchan.
    """
    cdef Py_ssize_t nfr = cls.shape[0], nchan = cls.shape[1]
    cdef Py_ssize_t j, c
    cdef int k, m
    cdef long long fr
    cdef double e
    cdef int nev = 0
    with nogil:
        for j in range(nfr):
            fr = frame0 + j
            for c in range(nchan):
                k = cls[j, c]
                e = energy[j, c]
                if k == cur[c]:
                    run_e[c] += cand_e[c] + e
                    run_n[c] += cand_len[c] + 1
                    cand_e[c] = 0.0
                    cand_len[c] = 0
                else:
                    if cand_len[c] > 0 and k == cand[c]:
                        cand_len[c] += 1
                        cand_e[c] += e
                    else:
                        run_e[c] += cand_e[c]
                        run_n[c] += cand_len[c]
                        cand[c] = k
                        cand_start[c] = fr
                        cand_len[c] = 1
                        cand_e[c] = e
                    if cand_len[c] >= debounce:
                        ev[nev, 0] = c
                        ev[nev, 1] = k
                        ev[nev, 2] = cand_start[c]
                        ev[nev, 3] = 0
                        ev_e[nev, 0] = run_e[c]
                        ev_e[nev, 1] = run_n[c]
                        nev += 1
                        cur[c] = k
                        cur_start[c] = cand_start[c]
                        run_e[c] = cand_e[c]
                        run_n[c] = cand_len[c]
                        cand_e[c] = 0.0
                        cand_len[c] = 0
                        milestone_done[c] = 0
                if milestone_done[c] == 0:
                    m = milestone[cur[c] + class_base]
                    if m > 0 and fr + 1 - cur_start[c] >= m:
                        milestone_done[c] = 1
                        ev[nev, 0] = c
                        ev[nev, 1] = cur[c]
                        ev[nev, 2] = cur_start[c]
                        ev[nev, 3] = 1
                        ev_e[nev, 0] = 0.0
                        ev_e[nev, 1] = 0.0
                        nev += 1
    return nev
