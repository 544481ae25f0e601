/* The SIMD loops of the DTMF receiver (dsp/_dtmf.pyx): sub-block Goertzel
 * filters over a tile of VB_TILE channels and the per-window verdict.
 *
 * Why C and not Cython: each function is built twice with GCC's
 * target_clones (baseline x86-64 SSE2 and x86-64-v3 AVX2/FMA) and the
 * better one is picked at load time, so one wheel runs at AVX2 speed where
 * it can without -march flags. The method is described at the top of
 * dsp/_dtmf.pyx; the parameters are built by dsp/dtmf.py.
 *
 * Layout of a tile's float state: VB_NQ rows of VB_TILE channels
 * (fs[row * VB_TILE + channel]), rows as in the enum below.
 * No validation here: dsp/dtmf.py checks shapes and dtypes.
 */
#ifndef VB_DTMF_KERNEL_H
#define VB_DTMF_KERNEL_H

#include <stddef.h>
#include <stdint.h>

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
    float comp[5];   /* power loss of an off-frequency tone: polynomial in u = sin^2(step) */
    float harm_tan2; /* tan^2 of the phase tolerance of the "high = 2 x low" test */
    int harm_mask;   /* digits (bit = row * 4 + col) where that test applies */
    float run_tan2[8]; /* tan^2 of the largest accepted mean phase step over a run (onset) */
    float drift_rad;   /* largest accepted change of the phase step across a run (onset) */
} vb_dtmf_params;

/* Not exported from the extension module that links this file in. */
#if defined(__GNUC__)
#define VB_DTMF_INTERNAL __attribute__((visibility("hidden")))
#else
#define VB_DTMF_INTERNAL
#endif

/* int16 rows x[c * rowstride + s] (c < ncur <= VB_TILE, s < nch <= VB_CHUNK)
   -> xt[s * VB_TILE + c] float32; lanes ncur..VB_TILE-1 are zeroed. */
VB_DTMF_INTERNAL void vb_dtmf_transpose(const int16_t *x, ptrdiff_t rowstride, int ncur,
                                        int nch, float *restrict xt);

/* Advance the 8 filters and the sub-block energy of one tile (fs) over
   seg samples of xt (layout as vb_dtmf_transpose writes it). */
VB_DTMF_INTERNAL void vb_dtmf_goertzel(const float *restrict xt, int seg, float *restrict fs,
                                       const vb_dtmf_params *restrict q);

/* At a sub-block end: each channel's window verdict digit[c] (row * 4 + col,
   or -1), the window's tone energy ratio ratio[c], the harmonic-relation
   phasor harm[c] (re) / harm[VB_TILE + c] (im) and the frequency-error
   phasors of the strongest row and column tone, err[k * VB_TILE + c] for
   k = row re, row im, column re, column im (each near unit size). Rolls the
   history and resets the filters for the next sub-block. pw_out (may be
   NULL) receives the 8 tone powers [8][VB_TILE] (tests). */
VB_DTMF_INTERNAL void vb_dtmf_window(float *restrict fs, const vb_dtmf_params *restrict q,
                                     int32_t *restrict digit, float *restrict ratio,
                                     float *restrict harm, float *restrict err,
                                     float *restrict pw_out);

#endif
