/* The SIMD loops of the DTMF receiver; see dtmf_kernel.h and dsp/_dtmf.pyx. */
#include "dtmf_kernel.h"

#include <math.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* Each function below is compiled twice (baseline and x86-64-v3) and the
   copy for this CPU is picked at load time (GCC 12+ on x86-64). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && __GNUC__ >= 12
#define VB_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define VB_CLONES
#endif

/* int16 rows x[c][0..nch) of one tile -> xt[t][VB_TILE] float32; missing lanes zero.
   8x8 blocks go through SSE2 registers (three rounds of interleaves, then
   sign-extend and convert): a scalar transpose cost half as much as the filters. */
VB_CLONES void vb_dtmf_transpose(const int16_t *x, ptrdiff_t rowstride, int ncur,
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

/* One filter over seg samples of a tile; with e, the sub-block energy too.
   The states live in local arrays for the duration: nothing aliases, the
   channel loops vectorise, two samples per pass let the states swap roles.
   The energy rides in the first filter's channel loop: as a loop of its
   own, GCC unrolled the 32 channels and vectorised across samples with
   scalar gathers, which cost as much as four filters. */
static inline __attribute__((always_inline)) void goertzel_bin(
    const float *restrict xt, int seg, float k, float *restrict s1, float *restrict s2,
    float *restrict e)
{
    float a1[VB_TILE], a2[VB_TILE];
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
            if (e) {
                e[c] += x0[c] * x0[c];
                e[c] += x1[c] * x1[c];
            }
            a2[c] = (x0[c] - a2[c]) + k * a1[c];
            a1[c] = (x1[c] - a1[c]) + k * a2[c];
        }
    }
    if (s < seg) {
        const float *x0 = xt + s * VB_TILE;
        for (int c = 0; c < VB_TILE; c++) {
            if (e)
                e[c] += x0[c] * x0[c];
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

/* Advance the 8 filters and the sub-block energy of one tile over seg samples. */
VB_CLONES void vb_dtmf_goertzel(const float *restrict xt, int seg, float *restrict fs,
                                const vb_dtmf_params *restrict q)
{
    float e[VB_TILE];
    for (int c = 0; c < VB_TILE; c++)
        e[c] = fs[VB_ECUR * VB_TILE + c];
    goertzel_bin(xt, seg, q->coef[0], fs + VB_S1 * VB_TILE, fs + VB_S2 * VB_TILE, e);
    for (int c = 0; c < VB_TILE; c++)
        fs[VB_ECUR * VB_TILE + c] = e[c];
    for (int b = 1; b < VB_NB; b++)
        goertzel_bin(xt, seg, q->coef[b], fs + (VB_S1 + b) * VB_TILE, fs + (VB_S2 + b) * VB_TILE, NULL);
}

/* At a sub-block end: each channel's window verdict (digit 0..15, or -1).
   Rolls the history and resets the filters for the next sub-block.
   pw_out (may be NULL) receives the 8 tone powers [8][VB_TILE] (tests). */
VB_CLONES void vb_dtmf_window(float *restrict fs, const vb_dtmf_params *restrict q,
                              int32_t *restrict digit, float *restrict ratio,
                              float *restrict harm, float *restrict err,
                              float *restrict pw_out)
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
        /* the error phasors, the same scale: the run state averages them
           (mean frequency error) and weighs them by their place in the run
           (drift: a glide or a vibrato, not a steady tone) */
        err[c] = rcr * rs;
        err[VB_TILE + c] = rci * rs;
        err[2 * VB_TILE + c] = ccr * cs;
        err[3 * VB_TILE + c] = cci * cs;
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
