/* C test of the DTMF receiver kernel (ext/dtmf_kernel.c), the SIMD loops
 * under dsp/_dtmf.pyx: the int16 -> float transpose at odd shapes (channel
 * and sample counts that are not multiples of 8, rows with padding), the
 * window verdict for every digit, silence, a lone tone, a tone below the
 * level threshold, pairs near and too far off frequency, a digit that stops, and
 * the same signal fed in odd-sized pieces giving the same verdicts.
 * Buffers are allocated to their exact size so that ASan sees any overrun.
 * Build and run: make ctest (ASan + UBSan). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtmf_kernel.h"

static int failures;

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                          \
        }                                                                        \
    } while (0)

#define RATE 8000.0
#define PI 3.14159265358979323846
#define MAXWIN 64

static const double ROW_HZ[4] = { 697.0, 770.0, 852.0, 941.0 };
static const double COL_HZ[4] = { 1209.0, 1336.0, 1477.0, 1633.0 };

/* Power (mean square) of a sine at this level, and its peak: dsp/units.py. */
static double dbm0_rms(double dbm0)
{
    return 32767.0 / sqrt(2.0) * pow(10.0, (dbm0 - 3.14) / 20.0);
}

/* The receiver's defaults as dsp/dtmf.py builds them (DtmfRxParams()), but
   with no loss compensation (comp = 1): the test tones sit on their bins. */
static vb_dtmf_params default_params(void)
{
    vb_dtmf_params q;
    memset(&q, 0, sizeof q);
    for (int b = 0; b < VB_NB; b++) {
        double f = b < 4 ? ROW_HZ[b] : COL_HZ[b - 4];
        double w = 2.0 * PI * f / RATE;
        double step = 2.0 * PI * (f * 2.8 / 100.0 + 1.0) * VB_SUB / RATE;
        double accept = 2.0 * PI * (f * 0.015 + 2.0) * VB_SUB / RATE;
        q.coef[b] = (float) (2.0 * cos(w));
        q.cosw[b] = (float) cos(w);
        q.sinw[b] = (float) sin(w);
        q.r1re[b] = (float) cos(w * VB_SUB);     /* exp(-j w SUB) */
        q.r1im[b] = (float) -sin(w * VB_SUB);
        q.r2re[b] = (float) cos(2.0 * w * VB_SUB);
        q.r2im[b] = (float) -sin(2.0 * w * VB_SUB);
        q.tan2[b] = (float) (tan(step) * tan(step));
        q.ucap[b] = (float) (sin(accept) * sin(accept));
    }
    double rms = dbm0_rms(-42.0);
    q.min_power = (float) (rms * rms);
    q.normal_twist = (float) pow(10.0, (8.0 + 3.0) / 10.0);
    q.reverse_twist = (float) pow(10.0, (4.0 + 3.0) / 10.0);
    q.rel_peak = (float) pow(10.0, 4.0 / 10.0);
    q.energy_ratio = 0.7f;
    q.stationarity = 0.4f;
    q.onset_hits = 5;
    q.release_misses = 6;
    q.run_ratio = 0.85f;
    q.comp[0] = 1.0f;
    q.harm_tan2 = (float) pow(tan(2.0 * PI * 8.0 * VB_SUB / RATE), 2.0);
    q.harm_mask = 0;
    return q;
}

/* Samples [from, to) of one channel: digit d (or none: d < 0) at dbm0 per
   tone, frequencies scaled by (1 + offset), starting at a channel's phase. */
static void put_digit(int16_t *row, int from, int to, int d, double dbm0, double offset,
                      double phase)
{
    double a = dbm0_rms(dbm0) * sqrt(2.0);
    for (int i = from; i < to; i++) {
        double v = 0.0;
        if (d >= 0) {
            double fl = ROW_HZ[d >> 2] * (1.0 + offset), fh = COL_HZ[d & 3] * (1.0 + offset);
            v = a * sin(2.0 * PI * fl * i / RATE + phase) + a * sin(2.0 * PI * fh * i / RATE + 2.0 * phase);
        }
        row[i] = (int16_t) lrint(v);
    }
}

/* Run the kernel over x[c * rowstride + i] (c < ncur, i < n), transposing
   `chunk` samples at a time as dsp/_dtmf.pyx does. Each window's verdicts go
   to verdict[w][VB_TILE], its ratios to ratio[w][VB_TILE] and its tone powers
   to power[w][VB_NB][VB_TILE]. Returns the number of windows. */
static int run_kernel(const int16_t *x, ptrdiff_t rowstride, int ncur, int n, int chunk,
                      const vb_dtmf_params *q, int32_t *verdict, float *ratio, float *power)
{
    float *fs = calloc(VB_NQ * VB_TILE, sizeof *fs);
    float *xt = malloc((size_t) chunk * VB_TILE * sizeof *xt);
    int32_t digit[VB_TILE];
    float r[VB_TILE], harm[2 * VB_TILE], err[4 * VB_TILE];
    int pos = 0, nwin = 0;
    for (int t0 = 0; t0 < n; t0 += chunk) {
        int nch = n - t0 < chunk ? n - t0 : chunk;
        vb_dtmf_transpose(x + t0, rowstride, ncur, nch, xt);
        for (int t = 0; t < nch;) {
            int seg = VB_SUB - pos < nch - t ? VB_SUB - pos : nch - t;
            vb_dtmf_goertzel(xt + t * VB_TILE, seg, fs, q);
            t += seg;
            pos += seg;
            if (pos == VB_SUB) {
                pos = 0;
                if (nwin >= MAXWIN) {
                    fprintf(stderr, "run_kernel: more than %d windows\n", MAXWIN);
                    exit(2);
                }
                vb_dtmf_window(fs, q, digit, r, harm, err, power + (size_t) nwin * VB_NB * VB_TILE);
                memcpy(verdict + nwin * VB_TILE, digit, sizeof digit);
                memcpy(ratio + nwin * VB_TILE, r, sizeof r);
                nwin++;
            }
        }
    }
    free(xt);
    free(fs);
    return nwin;
}

static int32_t verdicts[MAXWIN * VB_TILE], verdicts2[MAXWIN * VB_TILE];
static float ratios[MAXWIN * VB_TILE], ratios2[MAXWIN * VB_TILE];
static float powers[MAXWIN * VB_NB * VB_TILE], powers2[MAXWIN * VB_NB * VB_TILE];

/* The transpose at shapes that take every path: full 8x8 SSE2 blocks, the
   samples and channels left over, rows longer than the samples read. */
static void test_transpose(void)
{
    static const int shapes[][3] = {   /* ncur, nch, rowstride */
        { 32, 256, 256 }, { 32, 256, 300 }, { 19, 13, 21 }, { 8, 8, 8 }, { 1, 1, 1 },
        { 7, 9, 9 }, { 9, 17, 30 }, { 31, 255, 257 }, { 16, 7, 7 },
    };
    unsigned seed = 12345u;
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        int ncur = shapes[k][0], nch = shapes[k][1], stride = shapes[k][2];
        size_t nx = (size_t) (ncur - 1) * stride + nch;   /* the last row ends where it is read */
        int16_t *x = malloc(nx * sizeof *x);
        float *xt = malloc((size_t) nch * VB_TILE * sizeof *xt);
        for (size_t i = 0; i < nx; i++) {
            seed = seed * 1103515245u + 12345u;
            x[i] = (int16_t) (seed >> 16);
        }
        x[0] = -32768;
        x[nx - 1] = 32767;
        for (int i = 0; i < nch * VB_TILE; i++)
            xt[i] = 12345.0f;              /* must be overwritten everywhere */
        vb_dtmf_transpose(x, stride, ncur, nch, xt);
        int bad = 0;
        for (int s = 0; s < nch; s++)
            for (int c = 0; c < VB_TILE; c++) {
                float want = c < ncur ? (float) x[(size_t) c * stride + s] : 0.0f;
                bad += xt[s * VB_TILE + c] != want;
            }
        if (bad)
            fprintf(stderr, "transpose ncur=%d nch=%d stride=%d: %d wrong\n", ncur, nch, stride, bad);
        CHECK(bad == 0);
        free(xt);
        free(x);
    }
}

/* One tile: every digit, and signals that are not digits. */
static void test_verdicts(void)
{
    enum { N = VB_SUB * 12 };
    vb_dtmf_params q = default_params();
    int16_t *x = calloc((size_t) VB_TILE * N, sizeof *x);
    for (int c = 0; c < 16; c++)                      /* 0..15: digit c at -10 dBm0 */
        put_digit(x + c * N, 0, N, c, -10.0, 0.0, 0.37 * c);
    /* 16..19: silence (zeros) */
    for (int c = 20; c < 24; c++) {                   /* 20..23: a row tone alone */
        double a = dbm0_rms(-10.0) * sqrt(2.0);
        for (int i = 0; i < N; i++)
            x[c * N + i] = (int16_t) lrint(a * sin(2.0 * PI * ROW_HZ[c - 20] * i / RATE));
    }
    for (int c = 24; c < 28; c++)                     /* 24..27: a digit at -50 dBm0 */
        put_digit(x + c * N, 0, N, c - 24, -50.0, 0.0, 0.0);
    for (int c = 28; c < 32; c++)                     /* 28..31: a digit 5 % off frequency */
        put_digit(x + c * N, 0, N, 5 * (c - 28), -10.0, 0.05, 0.0);
    int nwin = run_kernel(x, N, VB_TILE, N, VB_CHUNK, &q, verdicts, ratios, powers);
    CHECK(nwin == 12);
    for (int w = 0; w < nwin; w++)
        for (int c = 0; c < VB_TILE; c++) {
            int32_t got = verdicts[w * VB_TILE + c];
            /* no verdict before the window is full and has a previous window to
               measure the frequency against (the first two) */
            int32_t want = (c < 16 && w >= 3) ? c : -1;
            if (w == 2 && c < 16)
                continue;
            if (got != want)
                fprintf(stderr, "window %d channel %d: digit %d, expected %d\n", w, c, got, want);
            CHECK(got == want);
            CHECK(isfinite(ratios[w * VB_TILE + c]));
        }
    /* the tone powers are the tones' mean squares (within the other tone's leakage) */
    double p10 = dbm0_rms(-10.0) * dbm0_rms(-10.0);
    for (int c = 0; c < 16; c++) {
        const float *pw = powers + (size_t) 6 * VB_NB * VB_TILE;
        float row = pw[(c >> 2) * VB_TILE + c], col = pw[(4 + (c & 3)) * VB_TILE + c];
        CHECK(fabs(row / p10 - 1.0) < 0.2);
        CHECK(fabs(col / p10 - 1.0) < 0.2);
        CHECK(ratios[6 * VB_TILE + c] > 0.9f);
    }
    for (int c = 16; c < 20; c++) {                   /* silence: no power, ratio 0 */
        for (int b = 0; b < VB_NB; b++)
            CHECK(powers[(size_t) 6 * VB_NB * VB_TILE + b * VB_TILE + c] == 0.0f);
        CHECK(ratios[6 * VB_TILE + c] == 0.0f);
    }
    free(x);
}

/* The frequency measurement on its own (energy and level tests loosened):
   a pair 1 % off is a digit, 4 % off is not (Q.24: accept 1.5 % + 2 Hz,
   reject 3.5 %). */
static void test_frequency_tolerance(void)
{
    enum { N = VB_SUB * 10 };
    static const double offsets[] = { 0.0, 0.01, -0.01, 0.04, -0.04, 0.06 };
    enum { NCH = sizeof offsets / sizeof offsets[0] };
    vb_dtmf_params q = default_params();
    q.energy_ratio = 0.3f;
    q.rel_peak = 1.0f;
    int16_t *x = calloc((size_t) NCH * N, sizeof *x);
    for (int c = 0; c < NCH; c++)
        put_digit(x + c * N, 0, N, 6, -10.0, offsets[c], 0.3 * c);   /* 'B' */
    int nwin = run_kernel(x, N, NCH, N, VB_CHUNK, &q, verdicts, ratios, powers);
    CHECK(nwin == 10);
    for (int w = 3; w < nwin; w++)
        for (int c = 0; c < NCH; c++) {
            int32_t want = fabs(offsets[c]) < 0.02 ? 6 : -1;
            if (verdicts[w * VB_TILE + c] != want)
                fprintf(stderr, "window %d, %+.0f %% off: digit %d, expected %d\n", w,
                        100.0 * offsets[c], verdicts[w * VB_TILE + c], want);
            CHECK(verdicts[w * VB_TILE + c] == want);
        }
    free(x);
}

/* A digit that stops: hits while the window is all tone, none from the
   first window that reaches into the silence. */
static void test_digit_then_silence(void)
{
    enum { TONE = VB_SUB * 8, N = VB_SUB * 16 };
    vb_dtmf_params q = default_params();
    int16_t *x = calloc(N, sizeof *x);
    put_digit(x, 0, TONE, 13, -20.0, 0.0, 1.0);       /* '0' */
    int nwin = run_kernel(x, N, 1, N, VB_CHUNK, &q, verdicts, ratios, powers);
    CHECK(nwin == 16);
    for (int w = 3; w < nwin; w++) {
        int32_t want = w < 8 ? 13 : -1;
        CHECK(verdicts[w * VB_TILE] == want);
        for (int c = 1; c < VB_TILE; c++)             /* lanes past ncur stay silent */
            CHECK(verdicts[w * VB_TILE + c] == -1);
    }
    free(x);
}

/* 19 channels (not a multiple of 8), padded rows, a length that ends inside
   a sub-block: feeding it in pieces of 256, 13, 7 and 1 samples gives the
   same verdicts, and powers equal up to rounding. */
static void test_odd_pieces(void)
{
    enum { NCUR = 19, N = VB_SUB * 10 + 7, STRIDE = N + 5 };
    vb_dtmf_params q = default_params();
    int16_t *x = calloc((size_t) (NCUR - 1) * STRIDE + N, sizeof *x);
    for (int c = 0; c < NCUR; c++) {
        put_digit(x + c * STRIDE, 0, N, c % 16, -15.0, 0.0, 0.5 * c);
        if (c >= 16)                                  /* three with a gap in the middle */
            memset(x + c * STRIDE + 150, 0, 60 * sizeof *x);
    }
    int nwin = run_kernel(x, STRIDE, NCUR, N, VB_CHUNK, &q, verdicts, ratios, powers);
    CHECK(nwin == 10);
    for (int c = 0; c < 16; c++)
        CHECK(verdicts[5 * VB_TILE + c] == c);
    static const int pieces[] = { 13, 7, 1 };
    for (size_t k = 0; k < sizeof pieces / sizeof pieces[0]; k++) {
        int nwin2 = run_kernel(x, STRIDE, NCUR, N, pieces[k], &q, verdicts2, ratios2, powers2);
        CHECK(nwin2 == nwin);
        CHECK(memcmp(verdicts, verdicts2, sizeof(int32_t) * nwin * VB_TILE) == 0);
        int far = 0;
        for (int i = 0; i < nwin * VB_NB * VB_TILE; i++)
            far += fabsf(powers2[i] - powers[i]) > 1e-4f * (fabsf(powers[i]) + 1.0f);
        if (far)
            fprintf(stderr, "pieces of %d: %d powers differ\n", pieces[k], far);
        CHECK(far == 0);
    }
    free(x);
}

int main(void)
{
    test_transpose();
    test_verdicts();
    test_frequency_tolerance();
    test_digit_then_silence();
    test_odd_pieces();
    if (failures) {
        fprintf(stderr, "test_dtmf_kernel: %d check(s) failed\n", failures);
        return 1;
    }
    printf("test_dtmf_kernel: ok\n");
    return 0;
}
