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

Layout: state is float32 [tile, quantity, TILE channels], each tile's state
contiguous (a [quantity, channel] layout puts rows a power-of-two apart and
thrashes L1 sets at 1,024 channels). A tile is processed for the whole
block (samples outer, channels inner: contiguous float32 lanes) while its
state is hot in L1.

Why some of it is C: the three SIMD loops (transpose, filters, window
verdict) are small C functions in the verbatim block below, because only C
can carry GCC's target_clones attribute: each is compiled twice (baseline
x86-64 SSE2 and x86-64-v3 AVX2/FMA) and picked at load time, so one wheel
runs at AVX2 speed where it can without -march flags. The per-channel
state machine and the Python-facing functions stay in Cython. No
validation here: dsp/dtmf.py checks shapes and dtypes.
"""
from libc.stdint cimport int16_t, int32_t, int64_t, uint8_t
from libc.math cimport lrint

cdef extern from *:
    """
    #include <math.h>
    #include <stddef.h>
    #include <stdint.h>
    #if defined(__SSE2__)
    #include <emmintrin.h>
    #endif

    enum {
        VB_SUB = 34, VB_NSUB = 3, VB_WIN = 102, VB_NB = 8, VB_TILE = 32, VB_CHUNK = 256,
        /* float state rows of a tile */
        VB_S1 = 0,    /* 8 rows: Goertzel s[n-1] */
        VB_S2 = 8,    /* 8 rows: Goertzel s[n-2] */
        VB_ECUR = 16, /* energy of the current sub-block */
        VB_ZH = 17,   /* 32 rows: older sub-blocks' Z: oldest re, oldest im, middle re, middle im */
        VB_EH = 49,   /* 2 rows: older sub-blocks' energies (oldest first) */
        VB_VP = 51,   /* 16 rows: previous window's V (re 8, im 8) */
        VB_NQ = 67
    };

    typedef struct {
        float coef[8];   /* 2 cos(w) */
        float cosw[8];
        float sinw[8];
        float r1re[8];   /* r = exp(-j w SUB) */
        float r1im[8];
        float r2re[8];   /* r^2 */
        float r2im[8];
        float tan2[8];   /* tan^2 of the largest accepted phase step */
        float ucap[8];   /* sin^2 of the step at Q.24's accept limit: compensation stops there */
        float min_power, normal_twist, reverse_twist, rel_peak, energy_ratio, stationarity;
        int onset_hits, release_misses;
        float run_ratio; /* mean energy ratio a run of hits needs before onset */
        float comp[5];   /* power loss of an off-frequency tone: polynomial in 1 - cos(step) */
        float harm_tan2; /* tan^2 of the phase tolerance of the "high = 2 x low" test */
        int harm_mask;   /* digits (bit = row * 4 + col) where that test applies */
    } vb_dtmf_params;

    #if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && __GNUC__ >= 12
    #define VB_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
    #else
    #define VB_CLONES
    #endif

    /* int16 rows x[c][0..nch) of one tile -> xt[t][VB_TILE] float32; missing lanes zero.
       8x8 blocks go through SSE2 registers (three rounds of interleaves, then
       sign-extend and convert): a scalar transpose cost half as much as the filters. */
    VB_CLONES static void vb_dtmf_transpose(const int16_t *x, ptrdiff_t rowstride, int ncur,
                                            int nch, float *restrict xt)
    {
        int c8 = 0, s8 = 0;
    #if defined(__SSE2__)
        for (c8 = 0; c8 + 8 <= ncur; c8 += 8) {
            const int16_t *r = x + c8 * rowstride;
            for (s8 = 0; s8 + 8 <= nch; s8 += 8) {
                __m128i a0 = _mm_loadu_si128((const __m128i *) (r + 0 * rowstride + s8));
                __m128i a1 = _mm_loadu_si128((const __m128i *) (r + 1 * rowstride + s8));
                __m128i a2 = _mm_loadu_si128((const __m128i *) (r + 2 * rowstride + s8));
                __m128i a3 = _mm_loadu_si128((const __m128i *) (r + 3 * rowstride + s8));
                __m128i a4 = _mm_loadu_si128((const __m128i *) (r + 4 * rowstride + s8));
                __m128i a5 = _mm_loadu_si128((const __m128i *) (r + 5 * rowstride + s8));
                __m128i a6 = _mm_loadu_si128((const __m128i *) (r + 6 * rowstride + s8));
                __m128i a7 = _mm_loadu_si128((const __m128i *) (r + 7 * rowstride + s8));
                __m128i t0 = _mm_unpacklo_epi16(a0, a1), t1 = _mm_unpackhi_epi16(a0, a1);
                __m128i t2 = _mm_unpacklo_epi16(a2, a3), t3 = _mm_unpackhi_epi16(a2, a3);
                __m128i t4 = _mm_unpacklo_epi16(a4, a5), t5 = _mm_unpackhi_epi16(a4, a5);
                __m128i t6 = _mm_unpacklo_epi16(a6, a7), t7 = _mm_unpackhi_epi16(a6, a7);
                __m128i u0 = _mm_unpacklo_epi32(t0, t2), u1 = _mm_unpackhi_epi32(t0, t2);
                __m128i u2 = _mm_unpacklo_epi32(t1, t3), u3 = _mm_unpackhi_epi32(t1, t3);
                __m128i u4 = _mm_unpacklo_epi32(t4, t6), u5 = _mm_unpackhi_epi32(t4, t6);
                __m128i u6 = _mm_unpacklo_epi32(t5, t7), u7 = _mm_unpackhi_epi32(t5, t7);
                __m128i v[8];
                v[0] = _mm_unpacklo_epi64(u0, u4); v[1] = _mm_unpackhi_epi64(u0, u4);
                v[2] = _mm_unpacklo_epi64(u1, u5); v[3] = _mm_unpackhi_epi64(u1, u5);
                v[4] = _mm_unpacklo_epi64(u2, u6); v[5] = _mm_unpackhi_epi64(u2, u6);
                v[6] = _mm_unpacklo_epi64(u3, u7); v[7] = _mm_unpackhi_epi64(u3, u7);
                for (int k = 0; k < 8; k++) {  /* v[k]: sample s8+k of channels c8..c8+7 */
                    float *o = xt + (s8 + k) * VB_TILE + c8;
                    __m128i lo = _mm_srai_epi32(_mm_unpacklo_epi16(v[k], v[k]), 16);
                    __m128i hi = _mm_srai_epi32(_mm_unpackhi_epi16(v[k], v[k]), 16);
                    _mm_storeu_ps(o, _mm_cvtepi32_ps(lo));
                    _mm_storeu_ps(o + 4, _mm_cvtepi32_ps(hi));
                }
            }
            for (int c = c8; c < c8 + 8; c++)       /* samples left over */
                for (int s = s8; s < nch; s++)
                    xt[s * VB_TILE + c] = (float) x[c * rowstride + s];
        }
    #endif
        for (int c = c8; c < ncur; c++) {           /* channels left over (or no SSE2) */
            const int16_t *row = x + c * rowstride;
            for (int s = 0; s < nch; s++)
                xt[s * VB_TILE + c] = (float) row[s];
        }
        for (int c = ncur; c < VB_TILE; c++)
            for (int s = 0; s < nch; s++)
                xt[s * VB_TILE + c] = 0.0f;
    }

    /* Advance the 8 filters and the sub-block energy of one tile over seg samples.
       The states live in local arrays for the duration: nothing aliases, the
       channel loops vectorise, two samples per pass let the states swap roles. */
    VB_CLONES static void vb_dtmf_goertzel(const float *restrict xt, int seg, float *restrict fs,
                                           const vb_dtmf_params *restrict q)
    {
        float a1[VB_TILE], a2[VB_TILE], e[VB_TILE];
        for (int c = 0; c < VB_TILE; c++)
            e[c] = fs[VB_ECUR * VB_TILE + c];
        for (int s = 0; s < seg; s++)
            for (int c = 0; c < VB_TILE; c++)
                e[c] += xt[s * VB_TILE + c] * xt[s * VB_TILE + c];
        for (int c = 0; c < VB_TILE; c++)
            fs[VB_ECUR * VB_TILE + c] = e[c];
        for (int b = 0; b < VB_NB; b++) {
            const float k = q->coef[b];
            float *s1 = fs + (VB_S1 + b) * VB_TILE, *s2 = fs + (VB_S2 + b) * VB_TILE;
            for (int c = 0; c < VB_TILE; c++) {
                a1[c] = s1[c];
                a2[c] = s2[c];
            }
            int s = 0;
            for (; s + 1 < seg; s += 2) {
                const float *x0 = xt + s * VB_TILE, *x1 = x0 + VB_TILE;
                /* written (x - s2) + k s1 so that only the multiply-add sits on
                   the sample-to-sample dependency chain (contracted to one FMA) */
                for (int c = 0; c < VB_TILE; c++) {
                    a2[c] = (x0[c] - a2[c]) + k * a1[c];
                    a1[c] = (x1[c] - a1[c]) + k * a2[c];
                }
            }
            if (s < seg) {
                const float *x0 = xt + s * VB_TILE;
                for (int c = 0; c < VB_TILE; c++) {
                    float v = (x0[c] - a2[c]) + k * a1[c];
                    a2[c] = a1[c];
                    a1[c] = v;
                }
            }
            for (int c = 0; c < VB_TILE; c++) {
                s1[c] = a1[c];
                s2[c] = a2[c];
            }
        }
    }

    /* At a sub-block end: each channel's window verdict (digit 0..15, or -1).
       Rolls the history and resets the filters for the next sub-block.
       pw_out (may be NULL) receives the 8 tone powers [8][VB_TILE] (tests). */
    VB_CLONES static void vb_dtmf_window(float *restrict fs, const vb_dtmf_params *restrict q,
                                         int32_t *restrict digit, float *restrict ratio,
                                         float *restrict harm, float *restrict pw_out)
    {
        float pw[VB_NB][VB_TILE];
        int32_t ok[VB_NB][VB_TILE];
        float gre[VB_NB][VB_TILE], gim[VB_NB][VB_TILE];  /* V conj(Vp): phase advance */
        float cre[VB_NB][VB_TILE], cim[VB_NB][VB_TILE];  /* the same less w SUB: the error */
        float etot[VB_TILE], emin[VB_TILE], emax[VB_TILE];
        const float norm = 2.0f / ((float) VB_WIN * (float) VB_WIN);
        for (int b = 0; b < VB_NB; b++) {
            float *s1 = fs + (VB_S1 + b) * VB_TILE, *s2 = fs + (VB_S2 + b) * VB_TILE;
            float *z0r = fs + (VB_ZH + b) * VB_TILE, *z0i = fs + (VB_ZH + 8 + b) * VB_TILE;
            float *z1r = fs + (VB_ZH + 16 + b) * VB_TILE, *z1i = fs + (VB_ZH + 24 + b) * VB_TILE;
            float *vpr = fs + (VB_VP + b) * VB_TILE, *vpi = fs + (VB_VP + 8 + b) * VB_TILE;
            const float cw = q->cosw[b], sw = q->sinw[b];
            const float r1r = q->r1re[b], r1i = q->r1im[b], r2r = q->r2re[b], r2i = q->r2im[b];
            const float tan2 = q->tan2[b];
            for (int c = 0; c < VB_TILE; c++) {
                /* Z of the sub-block just finished: s1 - exp(-jw) s2 */
                float zr = s1[c] - cw * s2[c], zi = sw * s2[c];
                /* V = Z_oldest + r Z_middle + r^2 Z_new: the window's DFT (up to a constant phase) */
                float vr = z0r[c] + r1r * z1r[c] - r1i * z1i[c] + r2r * zr - r2i * zi;
                float vi = z0i[c] + r1r * z1i[c] + r1i * z1r[c] + r2r * zi + r2i * zr;
                pw[b][c] = (vr * vr + vi * vi) * norm;
                /* phase step since the previous window less w SUB: arg(V conj(Vp) r) */
                float xr = vr * vpr[c] + vi * vpi[c], xi = vi * vpr[c] - vr * vpi[c];
                float cr = xr * r1r - xi * r1i, ci = xr * r1i + xi * r1r;
                ok[b][c] = (cr > 0.0f) & (ci * ci <= tan2 * cr * cr);
                gre[b][c] = xr;
                gim[b][c] = xi;
                cre[b][c] = cr;
                cim[b][c] = ci;
                vpr[c] = vr;
                vpi[c] = vi;
                z0r[c] = z1r[c];
                z0i[c] = z1i[c];
                z1r[c] = zr;
                z1i[c] = zi;
                s1[c] = 0.0f;
                s2[c] = 0.0f;
            }
        }
        {
            float *ec = fs + VB_ECUR * VB_TILE, *e0 = fs + VB_EH * VB_TILE, *e1 = fs + (VB_EH + 1) * VB_TILE;
            for (int c = 0; c < VB_TILE; c++) {
                float a = e0[c], m = e1[c], n = ec[c];
                etot[c] = a + m + n;
                float lo = a < m ? a : m, hi = a < m ? m : a;  /* not fminf: NaN rules */
                emin[c] = lo < n ? lo : n;                       /* keep it from vectorising */
                emax[c] = hi < n ? n : hi;
                e0[c] = m;
                e1[c] = n;
                ec[c] = 0.0f;
            }
        }
        for (int c = 0; c < VB_TILE; c++) {
            float rp = pw[0][c], r2 = 0.0f, cp = pw[4][c], c2 = 0.0f;
            float rgr = gre[0][c], rgi = gim[0][c], rcr = cre[0][c], rci = cim[0][c];
            float cgr = gre[4][c], cgi = gim[4][c], ccr = cre[4][c], cci = cim[4][c];
            int32_t rb = 0, cb = 0, rok = ok[0][c], cok = ok[4][c];
            for (int b = 1; b < 4; b++) {
                float v = pw[b][c];
                int32_t gt = v > rp;
                r2 = gt ? rp : (v > r2 ? v : r2);
                rb = gt ? b : rb;
                rok = gt ? ok[b][c] : rok;
                rgr = gt ? gre[b][c] : rgr;
                rgi = gt ? gim[b][c] : rgi;
                rcr = gt ? cre[b][c] : rcr;
                rci = gt ? cim[b][c] : rci;
                rp = gt ? v : rp;
            }
            for (int b = 5; b < 8; b++) {
                float v = pw[b][c];
                int32_t gt = v > cp;
                c2 = gt ? cp : (v > c2 ? v : c2);
                cb = gt ? b - 4 : cb;
                cok = gt ? ok[b][c] : cok;
                cgr = gt ? gre[b][c] : cgr;
                cgi = gt ? gim[b][c] : cgi;
                ccr = gt ? cre[b][c] : ccr;
                cci = gt ? cim[b][c] : cci;
                cp = gt ? v : cp;
            }
            /* second-guess the rows' "second best" before compensation, then
               undo the window's loss for a tone off its bin: the measured
               phase step gives the offset, the offset gives the loss */
            int32_t peaks = (rp >= r2 * q->rel_peak) & (cp >= c2 * q->rel_peak);
            float ur = rci * rci / (rcr * rcr + rci * rci + 1e-30f);  /* sin^2 of the step: */
            float uc = cci * cci / (ccr * ccr + cci * cci + 1e-30f);  /* no sqrt, no errno branch */
            /* give back the loss only up to Q.24's accept limit: a tone further
               off (a musical note near a DTMF frequency) keeps the rest of its loss */
            ur = ur < q->ucap[rb] ? ur : q->ucap[rb];
            uc = uc < q->ucap[4 + cb] ? uc : q->ucap[4 + cb];
            float rpn = rp, cpn = cp;
            rp *= q->comp[0] + ur * (q->comp[1] + ur * (q->comp[2] + ur * (q->comp[3] + ur * q->comp[4])));
            cp *= q->comp[0] + uc * (q->comp[1] + uc * (q->comp[2] + uc * (q->comp[3] + uc * q->comp[4])));
            /* a tone and its own second harmonic (one note of music) is not a
               digit: then the high tone's phase advance is twice the low one's.
               The phasor of (high advance - 2 x low advance) goes to the run
               state, which tests its average at onset (one window's is too
               noisy to test tightly). Each advance V conj(Vp) is scaled by
               1 / |V|^2 (known from the power) so the product stays near unit
               size and cannot overflow float. */
            float rs = norm / (rpn + norm), cs = norm / (cpn + norm);
            rgr *= rs; rgi *= rs; cgr *= cs; cgi *= cs;
            float l2r = rgr * rgr - rgi * rgi, l2i = 2.0f * rgr * rgi;
            harm[c] = cgr * l2r + cgi * l2i;
            harm[VB_TILE + c] = cgi * l2r - cgr * l2i;
            int32_t hit = rok & cok & peaks
                & (rp >= q->min_power) & (cp >= q->min_power)
                & (rp <= cp * q->normal_twist) & (cp <= rp * q->reverse_twist)
                & ((rp + cp) * (float) VB_WIN >= q->energy_ratio * etot[c])
                & (emin[c] >= q->stationarity * emax[c]);
            digit[c] = hit ? rb * 4 + cb : -1;
            ratio[c] = (rp + cp) * (float) VB_WIN / (etot[c] + 1e-30f);
        }
        if (pw_out)
            for (int b = 0; b < VB_NB; b++)
                for (int c = 0; c < VB_TILE; c++)
                    pw_out[b * VB_TILE + c] = pw[b][c];
    }
    """
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
    void vb_dtmf_transpose(const int16_t *x, Py_ssize_t rowstride, int ncur, int nch,
                           float *xt) noexcept nogil
    void vb_dtmf_goertzel(const float *xt, int seg, float *fs,
                          const vb_dtmf_params *q) noexcept nogil
    void vb_dtmf_window(float *fs, const vb_dtmf_params *q, int32_t *digit, float *ratio,
                        float *harm, float *pw_out) noexcept nogil

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
    NI = 10

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
    return q


cdef inline Py_ssize_t _decide_tile(int64_t *st, Py_ssize_t istride, Py_ssize_t c0,
                                    Py_ssize_t ncur, const int32_t *digit,
                                    const float *ratio, const float *harm, int64_t wend,
                                    const vb_dtmf_params *q, int64_t[:, ::1] ev,
                                    Py_ssize_t nev) noexcept nogil:
    """Per-channel run-length state machine.

    Appends events (chan, digit, start, end or -1, decided at) in the order
    they happen: for one channel a release always comes before the onset
    that follows it.
    """
    cdef Py_ssize_t c
    cdef int64_t d, on
    cdef double hre, him
    for c in range(ncur):
        d = digit[c]
        if d == st[CAND * istride + c]:
            st[RUN * istride + c] += 1
            st[RSUM * istride + c] += <int64_t>(ratio[c] * 1e6)
            st[HRE * istride + c] += <int64_t>(harm[c] * 1e6)
            st[HIM * istride + c] += <int64_t>(harm[VB_TILE + c] * 1e6)
        else:
            st[CAND * istride + c] = d
            st[RUN * istride + c] = 1
            st[RSUM * istride + c] = <int64_t>(ratio[c] * 1e6)
            st[HRE * istride + c] = <int64_t>(harm[c] * 1e6)
            st[HIM * istride + c] = <int64_t>(harm[VB_TILE + c] * 1e6)
            st[CSTART * istride + c] = wend - VB_WIN if wend > VB_WIN else 0
        on = st[ON * istride + c]
        if on >= 0:
            if d == on:
                st[MISS * istride + c] = 0
                st[LASTEND * istride + c] = wend
                continue
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
                        vb_dtmf_window(&fstate[c0 // VB_TILE, 0, 0], &q, digit, ratio, harm, pwp)
                        nev = _decide_tile(&istate[c0 // VB_TILE, 0, 0], VB_TILE, c0, ncur,
                                           digit, ratio, harm, total, &q, events, nev)
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
