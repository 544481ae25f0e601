# cython: language_level=3
"""Batched 1200-baud FSK receiver (Bell 202 and V.23) with UART and message framing.

Why this shape: the receiver runs on every FXO channel between rings, so the
work is one nogil pass per block, in chunks of CHUNK samples: the front end
runs channels inner over the armed channels (vectorised, fsk_front_chunk),
then each channel's UART over the chunk, skipped where there is no carrier
and none can start; Python sees only finished messages. Both standards share a centre of
1700 Hz (Bell 202 1200/2200, V.23 1300/2100), so one discriminator receives
either: mix to baseband at 1700 Hz, low-pass I/Q (two biquads), take the
normalised phase step Im(z[n] conj(z[n-1])) / |z[n]|^2 (level independent,
negative for mark), smooth it over 5 samples, and slice at zero.

The UART hunts for a mark->space edge (start bit), places the edge between
samples by linear interpolation of the discriminator, and samples each bit
at its centre (20/3 samples per bit). A message opens at the first
character after at least `min_idle` samples of mark with carrier (so the
channel seizure's 0x55 characters are received, to stay in step, but never
taken as message bytes); its second byte gives the length; the message is
complete after type + length + body + checksum. Checksum and meaning are
checked in Python (dsp.callerid), once per message.

The Python wrapper (dsp.callerid.CallerIdDetector) validates shapes and
owns the state arrays; nothing here allocates or raises.
"""
from libc.stdint cimport int16_t, int64_t, uint8_t
from libc.math cimport cos, fabs, nextafterf, sin, M_PI
from libc.stdlib cimport malloc, free

# float state columns
cdef enum:
    F_BQ = 0        # 2 sections x (I, Q) x 2 states = 8
    F_PI = 8        # previous I
    F_PQ = 9        # previous Q
    F_POW = 10      # smoothed |z|^2
    F_PREVD = 11    # previous smoothed discriminator
    F_BOX = 12      # boxcar history, BOX entries
    BOX = 5
    NF = 17
# double state columns
cdef enum:
    D_BT = 0        # samples to the next bit centre
    D_MSUM = 1      # discriminator sum over the current mark run
    D_LSUM = 2      # ... over the mark run before the last start bit
    D_MSGM = 3      # ... over the mark run before the current message
    ND = 4
# int state columns
cdef enum:
    I_CD = 0        # carrier detected
    I_ST = 1        # UART: 0 hunting, 1 in character
    I_BIT = 2       # bit index in character (0 start, 1..8 data, 9 stop)
    I_SHR = 3       # data shift register
    I_IDLE = 4      # samples of mark since the last character (with carrier)
    I_INMSG = 5     # in a message
    I_MPOS = 6      # bytes in the message buffer
    I_MSTART = 7    # sample position where this message's carrier began
    I_CSTART = 8    # sample position where carrier (or the last message) began
    I_MCNT = 9      # samples in D_MSUM
    I_LCNT = 10     # samples in D_LSUM
    I_MSGMC = 11    # samples in D_MSGM
    I_BOXI = 12     # boxcar write index
    I_SZN = 13      # seizure window: carrier samples summed since carrier came on
    I_SZLAST = 14   # end (exclusive) of the last window that looked like a channel seizure
    I_SZSTART = 15  # ... as it was at the last start bit
    I_SZMSG = 16    # ... as it was at this message's first start bit
    NI = 17

    MSG_MAX = 258   # type + length + 255 body + checksum

# event kinds
cdef enum:
    EV_MESSAGE = 1      # complete (type, length, body, checksum)
    EV_CARRIER_LOST = 2  # carrier dropped inside a message
    EV_FRAMING = 3      # stop bit was space inside a message
    EV_GAP = 4          # too long a mark gap inside a message

STATE_SHAPE = (NF, ND, NI)
MESSAGE_MAX = MSG_MAX
BOX_LEN = BOX
EVENT_MESSAGE = EV_MESSAGE
EVENT_CARRIER_LOST = EV_CARRIER_LOST
EVENT_FRAMING = EV_FRAMING
EVENT_GAP = EV_GAP

cdef enum:
    LO_PERIOD = 80  # 1700/8000 = 17/80: the local oscillator repeats every 80 samples
LO_LEN = LO_PERIOD

cdef enum:
    SZ_PERIOD = 40  # 600/8000 = 3/40: the channel seizure's 600 Hz repeats every 40 samples
    SZ_SUMS = 3     # seizure state: the window's sums (600 Hz re, im; |d|), then its terms
SEIZURE_SUMS = SZ_SUMS
cdef double SZ_COS[SZ_PERIOD]
cdef double SZ_SIN[SZ_PERIOD]
for _k in range(SZ_PERIOD):
    SZ_COS[_k] = cos(2.0 * M_PI * 600.0 * _k / 8000.0)
    SZ_SIN[_k] = -sin(2.0 * M_PI * 600.0 * _k / 8000.0)


cdef inline float _frontend(float xs, float c, float s, float[:, ::1] fs, Py_ssize_t ch,
                            const float[:, ::1] sos, float alpha, float* power) noexcept nogil:
    """One sample of one channel: mix, low-pass, discriminate, smooth. Returns d."""
    cdef float i_ = xs * c
    cdef float q_ = xs * s
    cdef float y
    cdef Py_ssize_t k, b
    for k in range(2):
        b = F_BQ + 4 * k
        y = sos[k, 0] * i_ + fs[ch, b]
        fs[ch, b] = sos[k, 1] * i_ - sos[k, 4] * y + fs[ch, b + 1]
        fs[ch, b + 1] = sos[k, 2] * i_ - sos[k, 5] * y
        i_ = y
        y = sos[k, 0] * q_ + fs[ch, b + 2]
        fs[ch, b + 2] = sos[k, 1] * q_ - sos[k, 4] * y + fs[ch, b + 3]
        fs[ch, b + 3] = sos[k, 2] * q_ - sos[k, 5] * y
        q_ = y
    cdef float p = i_ * i_ + q_ * q_
    cdef float d = (q_ * fs[ch, F_PI] - i_ * fs[ch, F_PQ]) / (p + 1e-30)
    fs[ch, F_PI] = i_
    fs[ch, F_PQ] = q_
    fs[ch, F_POW] += alpha * (p - fs[ch, F_POW])
    power[0] = fs[ch, F_POW]
    return d


def fsk_frontend(const int16_t[:, ::1] x, int64_t pos, float[:, ::1] fs, int64_t[:, ::1] ist,
                 const float[:, ::1] sos, const float[::1] lo_c, const float[::1] lo_s,
                 float alpha, float[:, ::1] d_out, float[:, ::1] p_out):
    """The receiver's front end alone (smoothed discriminator and power per sample).

    Exposed so the tests can hold it against a numpy reference and drive a
    Python UART with exactly the values the kernel slices.
    """
    cdef Py_ssize_t nchan = x.shape[0], n = x.shape[1], i, ch, j
    cdef float d, p, acc
    cdef int lo
    with nogil:
        for i in range(n):
            lo = <int>((pos + i) % LO_PERIOD)
            for ch in range(nchan):
                d = _frontend(x[ch, i] * (1.0 / 32768.0), lo_c[lo], lo_s[lo], fs, ch, sos, alpha, &p)
                fs[ch, F_BOX + ist[ch, I_BOXI]] = d
                ist[ch, I_BOXI] = (ist[ch, I_BOXI] + 1) % BOX
                acc = 0.0
                for j in range(BOX):
                    acc = acc + fs[ch, F_BOX + j]
                d_out[ch, i] = acc * (1.0 / BOX)
                p_out[ch, i] = p


cdef inline Py_ssize_t _emit(int64_t[:, ::1] ev, uint8_t[:, ::1] evb, double[::1] evm,
                             Py_ssize_t nev, Py_ssize_t ch, int kind, int64_t start, int64_t end,
                             uint8_t[:, ::1] msg, double[:, ::1] ds, int64_t[:, ::1] ist,
                             int64_t* evs) noexcept nogil:
    cdef Py_ssize_t j, nb = ist[ch, I_MPOS]
    if nev < ev.shape[0]:
        if evs != NULL:
            evs[nev] = ist[ch, I_SZMSG]
        ev[nev, 0] = ch
        ev[nev, 1] = kind
        ev[nev, 2] = start
        ev[nev, 3] = end
        ev[nev, 4] = nb
        for j in range(nb):
            evb[nev, j] = msg[ch, j]
        evm[nev] = ds[ch, D_MSGM] / ist[ch, I_MSGMC] if ist[ch, I_MSGMC] > 0 else 0.0
        nev += 1
    ist[ch, I_INMSG] = 0
    ist[ch, I_MPOS] = 0
    return nev



cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    /* One sample on every channel (the inner, vectorised loop of fsk_front_chunk). */
    static inline void fsk_front_sample(Py_ssize_t nchan, const float *__restrict xs, float c, float s,
                                        const float *__restrict k, float alpha,
                                        float *__restrict zi0, float *__restrict zi1,
                                        float *__restrict zq0, float *__restrict zq1,
                                        float *__restrict wi0, float *__restrict wi1,
                                        float *__restrict wq0, float *__restrict wq1,
                                        float *__restrict pw, float *__restrict io,
                                        float *__restrict qo, float *__restrict po,
                                        float *__restrict pmax)
    {
        const float b0 = k[0], b1 = k[1], b2 = k[2], a1 = k[4], a2 = k[5];
        const float c0 = k[6], c1 = k[7], c2 = k[8], e1 = k[10], e2 = k[11];
        for (Py_ssize_t ch = 0; ch < nchan; ch++) {
            float i_ = xs[ch] * c, q_ = xs[ch] * s, y, p, w;
            y = b0 * i_ + zi0[ch];
            zi0[ch] = b1 * i_ - a1 * y + zi1[ch];
            zi1[ch] = b2 * i_ - a2 * y;
            i_ = y;
            y = b0 * q_ + zq0[ch];
            zq0[ch] = b1 * q_ - a1 * y + zq1[ch];
            zq1[ch] = b2 * q_ - a2 * y;
            q_ = y;
            y = c0 * i_ + wi0[ch];
            wi0[ch] = c1 * i_ - e1 * y + wi1[ch];
            wi1[ch] = c2 * i_ - e2 * y;
            i_ = y;
            y = c0 * q_ + wq0[ch];
            wq0[ch] = c1 * q_ - e1 * y + wq1[ch];
            wq1[ch] = c2 * q_ - e2 * y;
            q_ = y;
            p = i_ * i_ + q_ * q_;
            w = pw[ch] + alpha * (p - pw[ch]);
            pw[ch] = w;
            io[ch] = i_;
            qo[ch] = q_;
            po[ch] = w;
            pmax[ch] = w > pmax[ch] ? w : pmax[ch];
        }
    }

    /* Front end of m samples on every channel, channels inner (vectorised): mix to
       baseband, two biquads on I and Q, smoothed power; the same float operations in
       the same order as _frontend, so the same values (no FMA: the AVX2 clone does
       not enable it). State is structure-of-arrays, st[k * nchan + ch]: k = 0..7
       biquads (as F_BQ), 8 I, 9 Q, 10 power. Writes I, Q and the smoothed power per
       sample ([i * nchan + ch]) and the largest smoothed power per channel. */
    #if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && __GNUC__ >= 12
    __attribute__((target_clones("avx2", "default")))
    #endif
    static void fsk_front_chunk(Py_ssize_t nchan, Py_ssize_t m, const float *xt,
                                const float *lc, const float *ls, const float *sos, float alpha,
                                float *st, float *iout, float *qout, float *pout, float *pmax)
    {
        for (Py_ssize_t i = 0; i < m; i++)
            fsk_front_sample(nchan, xt + i * nchan, lc[i], ls[i], sos, alpha,
                             st, st + nchan, st + 2 * nchan, st + 3 * nchan,
                             st + 4 * nchan, st + 5 * nchan, st + 6 * nchan, st + 7 * nchan,
                             st + 10 * nchan, iout + i * nchan, qout + i * nchan, pout + i * nchan, pmax);
        if (m > 0) {
            memcpy(st + 8 * nchan, iout + (m - 1) * nchan, sizeof(float) * (size_t)nchan);
            memcpy(st + 9 * nchan, qout + (m - 1) * nchan, sizeof(float) * (size_t)nchan);
        }
    }

    /* m samples of channels lane[j0..nlane) of x (int16, rows rowstride apart) to
       xt[i * nlane + j], scaled to +-1 (exactly x * (1.0 / 32768.0): a power of two). */
    static void fsk_transpose_scalar(const int16_t *x, Py_ssize_t rowstride, const Py_ssize_t *lane,
                                     Py_ssize_t j0, Py_ssize_t nlane, Py_ssize_t m, float *__restrict xt)
    {
        for (Py_ssize_t j = j0; j < nlane; j++) {
            const int16_t *__restrict row = x + lane[j] * rowstride;
            for (Py_ssize_t i = 0; i < m; i++)
                xt[i * nlane + j] = (float)row[i] * (1.0f / 32768.0f);
        }
    }

    #if defined(__GNUC__) && defined(__x86_64__)
    #include <immintrin.h>
    #define FSK_HAVE_AVX2_TRANSPOSE 1
    /* The same, 8 lanes x 8 samples at a time: a strided store per sample was a
       sixth of a whole `voiceboard cid` run; an 8 x 8 register transpose makes
       every store a contiguous row of 8 lanes. Same values (int16 -> float is exact). */
    __attribute__((target("avx2")))
    static void fsk_transpose_avx2(const int16_t *x, Py_ssize_t rowstride, const Py_ssize_t *lane,
                                   Py_ssize_t nlane, Py_ssize_t m, float *__restrict xt)
    {
        const __m256 scale = _mm256_set1_ps(1.0f / 32768.0f);
        Py_ssize_t j = 0;
        for (; j + 8 <= nlane; j += 8) {
            const int16_t *r[8];
            for (int k = 0; k < 8; k++)
                r[k] = x + lane[j + k] * rowstride;
            Py_ssize_t i = 0;
            for (; i + 8 <= m; i += 8) {
    #define FSK_ROW(k) _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi16_epi32( \
                _mm_loadu_si128((const __m128i *)(r[k] + i)))), scale)
                __m256 a0 = FSK_ROW(0), a1 = FSK_ROW(1), a2 = FSK_ROW(2), a3 = FSK_ROW(3);
                __m256 a4 = FSK_ROW(4), a5 = FSK_ROW(5), a6 = FSK_ROW(6), a7 = FSK_ROW(7);
    #undef FSK_ROW
                __m256 t0 = _mm256_unpacklo_ps(a0, a1), t1 = _mm256_unpackhi_ps(a0, a1);
                __m256 t2 = _mm256_unpacklo_ps(a2, a3), t3 = _mm256_unpackhi_ps(a2, a3);
                __m256 t4 = _mm256_unpacklo_ps(a4, a5), t5 = _mm256_unpackhi_ps(a4, a5);
                __m256 t6 = _mm256_unpacklo_ps(a6, a7), t7 = _mm256_unpackhi_ps(a6, a7);
                __m256 u0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
                __m256 u1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
                __m256 u2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
                __m256 u3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
                __m256 u4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
                __m256 u5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
                __m256 u6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
                __m256 u7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
                float *o = xt + i * nlane + j;
                _mm256_storeu_ps(o, _mm256_permute2f128_ps(u0, u4, 0x20));
                _mm256_storeu_ps(o + nlane, _mm256_permute2f128_ps(u1, u5, 0x20));
                _mm256_storeu_ps(o + 2 * nlane, _mm256_permute2f128_ps(u2, u6, 0x20));
                _mm256_storeu_ps(o + 3 * nlane, _mm256_permute2f128_ps(u3, u7, 0x20));
                _mm256_storeu_ps(o + 4 * nlane, _mm256_permute2f128_ps(u0, u4, 0x31));
                _mm256_storeu_ps(o + 5 * nlane, _mm256_permute2f128_ps(u1, u5, 0x31));
                _mm256_storeu_ps(o + 6 * nlane, _mm256_permute2f128_ps(u2, u6, 0x31));
                _mm256_storeu_ps(o + 7 * nlane, _mm256_permute2f128_ps(u3, u7, 0x31));
            }
            for (; i < m; i++)
                for (int k = 0; k < 8; k++)
                    xt[i * nlane + j + k] = (float)r[k][i] * (1.0f / 32768.0f);
        }
        fsk_transpose_scalar(x, rowstride, lane, j, nlane, m, xt);
    }
    #endif

    static void fsk_transpose(const int16_t *x, Py_ssize_t rowstride, const Py_ssize_t *lane,
                              Py_ssize_t nlane, Py_ssize_t m, float *xt)
    {
    #ifdef FSK_HAVE_AVX2_TRANSPOSE
        if (__builtin_cpu_supports("avx2")) {
            fsk_transpose_avx2(x, rowstride, lane, nlane, m, xt);
            return;
        }
    #endif
        fsk_transpose_scalar(x, rowstride, lane, 0, nlane, m, xt);
    }
    """
    void fsk_transpose(const int16_t* x, Py_ssize_t rowstride, const Py_ssize_t* lane,
                       Py_ssize_t nlane, Py_ssize_t m, float* xt) noexcept nogil
    void fsk_front_chunk(Py_ssize_t nchan, Py_ssize_t m, const float* xt, const float* lc,
                         const float* ls, const float* sos, float alpha, float* st,
                         float* iout, float* qout, float* pout, float* pmax) noexcept nogil


cdef enum:
    CHUNK = 64      # samples per front-end pass (scratch stays in cache)
    SOA = 11        # struct-of-arrays state rows: 8 biquad, I, Q, power
    SOA_I = 8
    SOA_Q = 9
    SOA_POW = 10


cdef inline float _disc(float i_, float q_, float pi_, float pq_) noexcept nogil:
    """Normalised phase step, exactly as _frontend computes it."""
    cdef float p = i_ * i_ + q_ * q_
    cdef float d = (q_ * pi_ - i_ * pq_) / (p + 1e-30)
    return d


cdef inline float _box(float[:, ::1] fs, int64_t[:, ::1] ist, Py_ssize_t ch, float d) noexcept nogil:
    """Push raw d into the boxcar ring; the smoothed value, summed in slot order as before."""
    cdef Py_ssize_t j
    cdef float acc = 0.0
    cdef int64_t k = ist[ch, I_BOXI]
    fs[ch, F_BOX + k] = d
    ist[ch, I_BOXI] = k + 1 if k + 1 < BOX else 0  # (no int64 modulo per sample)
    for j in range(BOX):
        acc = acc + fs[ch, F_BOX + j]
    return acc * (1.0 / BOX)


def fsk_rx(const int16_t[:, ::1] x, int64_t pos, float[:, ::1] fs, double[:, ::1] ds,
           int64_t[:, ::1] ist, uint8_t[:, ::1] msg, const uint8_t[::1] armed,
           const float[:, ::1] sos, const float[::1] lo_c, const float[::1] lo_s,
           float alpha, float cd_on, float cd_off, double min_idle, double max_gap,
           int64_t[:, ::1] ev, uint8_t[:, ::1] evb, double[::1] evm,
           double[:, ::1] sz=None, int64_t[::1] evs=None, double seiz_score=0.5):
    """Receive n samples on every armed channel; returns the number of events written.

    ev[k] = (chan, kind, start, end, nbytes); evb[k, :nbytes] the message
    bytes; evm[k] the mean discriminator over the mark run before the
    message (tells Bell 202 from V.23). Positions are absolute sample
    counts (pos is the position of x[:, 0]).

    With `sz` (float64[nchan, SEIZURE_SUMS + 3 * window]) the kernel also
    looks for a channel seizure while there is carrier: over a sliding
    window of `window` samples, the share of the smoothed discriminator at
    600 Hz (alternating bits at 1200 baud), |sum d e^-jwt| / sum |d|; a
    window at `seiz_score` or more, with carrier throughout, is a seizure.
    evs[k] is then the end (exclusive sample position) of the last such
    window before the message's first start bit, 0 when none.
    """
    cdef Py_ssize_t nchan = x.shape[0], n = x.shape[1], i, ch, k, c0, m, j0, j, na = 0
    cdef Py_ssize_t nev = 0
    cdef float d = 0.0, p, prev, pi_, pq_
    cdef int lo, b
    cdef int64_t now
    cdef double spb = 8000.0 / 1200.0
    cdef float lc[CHUNK]
    cdef float ls[CHUNK]
    cdef double szc[CHUNK]
    cdef double szs[CHUNK]
    # seizure window: its length, and the terms of its sums (re, im, |d|) as a ring
    cdef bint track = sz is not None
    cdef Py_ssize_t win = (sz.shape[1] - SZ_SUMS) // 3 if track else 0, r, q
    cdef double tr, ti, ta, zr = 0.0, zi = 0.0, za = 0.0, score2 = seiz_score * seiz_score
    cdef double* zp = NULL
    cdef int64_t szn = 0
    # a chunk whose power stays at or below this goes without the per-sample loop
    cdef float skip_below = cd_on
    cdef int64_t* evs_p = &evs[0] if evs is not None and evs.shape[0] > 0 else NULL
    if track and (win < 1 or sz.shape[0] != nchan or evs_p == NULL or evs.shape[0] < ev.shape[0]):
        raise ValueError("seizure state: float64[nchan, 3 + 3 * window] and evs as long as ev")
    if track:
        skip_below = <float>nextafterf(cd_off, -1.0)  # every sample at cd_off or more is seen
    for ch in range(nchan):
        na += armed[ch] != 0
    if na == 0 or n == 0:
        return 0
    # the armed channels are the lanes of the front end (a disarmed channel costs nothing)
    cdef Py_ssize_t* act = <Py_ssize_t*>malloc(sizeof(Py_ssize_t) * na)
    # scratch: SoA state, then per chunk the samples, I, Q, power (sample-major), then
    # the largest power and the I/Q before the chunk, per lane
    cdef float* st = <float*>malloc(sizeof(float) * na * (SOA + 4 * CHUNK + 3))
    if st == NULL or act == NULL:
        free(st)
        free(act)
        raise MemoryError()
    cdef float* xt = st + SOA * na
    cdef float* iq = xt + CHUNK * na
    cdef float* qq = iq + CHUNK * na
    cdef float* pp = qq + CHUNK * na
    cdef float* pmax = pp + CHUNK * na
    cdef float* pi0 = pmax + na
    cdef float* pq0 = pi0 + na
    with nogil:
        j = 0
        for ch in range(nchan):
            if armed[ch]:
                act[j] = ch
                j += 1
        for j in range(na):
            ch = act[j]
            for k in range(8):
                st[k * na + j] = fs[ch, F_BQ + k]
            st[SOA_I * na + j] = fs[ch, F_PI]
            st[SOA_Q * na + j] = fs[ch, F_PQ]
            st[SOA_POW * na + j] = fs[ch, F_POW]
        c0 = 0
        while c0 < n:
            m = n - c0 if n - c0 < CHUNK else CHUNK
            for i in range(m):
                lo = <int>((pos + c0 + i) % LO_PERIOD)
                lc[i] = lo_c[lo]
                ls[i] = lo_s[lo]
            if track:
                for i in range(m):
                    lo = <int>((pos + c0 + i) % SZ_PERIOD)
                    szc[i] = SZ_COS[lo]
                    szs[i] = SZ_SIN[lo]
            fsk_transpose(&x[0, c0], n, act, na, m, xt)
            for j in range(na):
                pi0[j] = st[SOA_I * na + j]
                pq0[j] = st[SOA_Q * na + j]
                pmax[j] = -1.0
            fsk_front_chunk(na, m, xt, lc, ls, &sos[0, 0], alpha, st, iq, qq, pp, pmax)

            for j in range(na):
                ch = act[j]
                if not ist[ch, I_CD] and pmax[j] <= skip_below:
                    # No carrier and none coming in this chunk: the per-sample loop would
                    # only push the boxcar; push its last BOX values and keep the last d.
                    # (Tracking a seizure, the loop also counts samples at cd_off or more.)
                    j0 = m - BOX if m > BOX else 0
                    ist[ch, I_BOXI] = (ist[ch, I_BOXI] + j0) % BOX
                    for i in range(j0, m):
                        if i == 0:
                            pi_, pq_ = pi0[j], pq0[j]
                        else:
                            pi_, pq_ = iq[(i - 1) * na + j], qq[(i - 1) * na + j]
                        d = _box(fs, ist, ch, _disc(iq[i * na + j], qq[i * na + j], pi_, pq_))
                    fs[ch, F_PREVD] = d
                    ist[ch, I_SZN] = 0
                    continue
                if track:  # the seizure window's sums and count live in registers over the chunk
                    zp = &sz[ch, 0]
                    zr = zp[0]
                    zi = zp[1]
                    za = zp[2]
                    szn = ist[ch, I_SZN]
                for i in range(m):
                    now = pos + c0 + i
                    if i == 0:
                        pi_, pq_ = pi0[j], pq0[j]
                    else:
                        pi_, pq_ = iq[(i - 1) * na + j], qq[(i - 1) * na + j]
                    d = _box(fs, ist, ch, _disc(iq[i * na + j], qq[i * na + j], pi_, pq_))
                    p = pp[i * na + j]
                    prev = fs[ch, F_PREVD]
                    fs[ch, F_PREVD] = d
                    if track and p < cd_off:
                        szn = 0  # a seizure window needs carrier throughout
                    elif track:
                        # slide the seizure window by one sample (sums updated, re-summed
                        # from the ring once per window so that rounding cannot drift)
                        tr = d * szc[i]
                        ti = d * szs[i]
                        ta = fabs(d)
                        r = SZ_SUMS + 3 * (szn if szn < win else szn - win)
                        if szn >= win:  # (one add per sum on the loop-carried chain)
                            zr += tr - zp[r]
                            zi += ti - zp[r + 1]
                            za += ta - zp[r + 2]
                        elif szn == 0:
                            zr = tr
                            zi = ti
                            za = ta
                        else:
                            zr += tr
                            zi += ti
                            za += ta
                        zp[r] = tr
                        zp[r + 1] = ti
                        zp[r + 2] = ta
                        # the count runs win..2 win - 1 once the window is full (slot = count - win)
                        szn = szn + 1 if szn + 1 < 2 * win else win
                        if szn >= win:
                            if r == SZ_SUMS + 3 * (win - 1):
                                zr = 0.0
                                zi = 0.0
                                za = 0.0
                                for q in range(SZ_SUMS, SZ_SUMS + 3 * win, 3):
                                    zr = zr + zp[q]
                                    zi = zi + zp[q + 1]
                                    za = za + zp[q + 2]
                            if za > 0.0 and zr * zr + zi * zi >= score2 * za * za:
                                ist[ch, I_SZLAST] = now + 1

                    # carrier detect with hysteresis
                    if not ist[ch, I_CD]:
                        if p <= cd_on:
                            continue
                        ist[ch, I_CD] = 1
                        ist[ch, I_ST] = 0
                        ist[ch, I_IDLE] = 0
                        ist[ch, I_INMSG] = 0
                        ist[ch, I_MPOS] = 0
                        ist[ch, I_CSTART] = now
                        ds[ch, D_MSUM] = 0.0
                        ist[ch, I_MCNT] = 0
                        continue  # no valid previous discriminator value yet
                    elif p < cd_off:
                        ist[ch, I_CD] = 0
                        if ist[ch, I_INMSG]:
                            nev = _emit(ev, evb, evm, nev, ch, EV_CARRIER_LOST, ist[ch, I_MSTART], now,
                                        msg, ds, ist, evs_p)
                        continue

                    b = 1 if d < 0.0 else 0  # mark = below 1700 Hz
                    if ist[ch, I_ST] == 0:
                        if b == 0:
                            # start bit: interpolate the zero crossing between the last two samples
                            ist[ch, I_SZSTART] = ist[ch, I_SZLAST]
                            ist[ch, I_ST] = 1
                            ist[ch, I_BIT] = 0
                            ist[ch, I_SHR] = 0
                            if prev < 0.0 and d != prev:
                                ds[ch, D_BT] = spb * 0.5 - d / (d - prev)
                            else:
                                ds[ch, D_BT] = spb * 0.5 - 0.5
                            ds[ch, D_LSUM] = ds[ch, D_MSUM]
                            ist[ch, I_LCNT] = ist[ch, I_MCNT]
                            ds[ch, D_MSUM] = 0.0
                            ist[ch, I_MCNT] = 0
                        else:
                            ist[ch, I_IDLE] += 1
                            ds[ch, D_MSUM] += d
                            ist[ch, I_MCNT] += 1
                            if ist[ch, I_INMSG] and ist[ch, I_IDLE] > max_gap:
                                nev = _emit(ev, evb, evm, nev, ch, EV_GAP, ist[ch, I_MSTART], now,
                                            msg, ds, ist, evs_p)
                                ist[ch, I_CSTART] = now
                        continue

                    ds[ch, D_BT] -= 1.0
                    if ds[ch, D_BT] >= 0.5:
                        continue
                    ds[ch, D_BT] += spb
                    if ist[ch, I_BIT] == 0:
                        if b != 0:  # false start: back to hunting
                            ist[ch, I_ST] = 0
                            continue
                    elif ist[ch, I_BIT] <= 8:
                        ist[ch, I_SHR] |= b << (ist[ch, I_BIT] - 1)
                    else:  # stop bit
                        ist[ch, I_ST] = 0
                        if b == 1:
                            if ist[ch, I_INMSG]:
                                msg[ch, ist[ch, I_MPOS]] = <uint8_t>ist[ch, I_SHR]
                                ist[ch, I_MPOS] += 1
                            elif ist[ch, I_IDLE] >= min_idle:
                                ist[ch, I_INMSG] = 1
                                ist[ch, I_SZMSG] = ist[ch, I_SZSTART]
                                ist[ch, I_MSTART] = ist[ch, I_CSTART]
                                ds[ch, D_MSGM] = ds[ch, D_LSUM]
                                ist[ch, I_MSGMC] = ist[ch, I_LCNT]
                                msg[ch, 0] = <uint8_t>ist[ch, I_SHR]
                                ist[ch, I_MPOS] = 1
                            if ist[ch, I_INMSG] and ist[ch, I_MPOS] >= 2 and \
                                    ist[ch, I_MPOS] == msg[ch, 1] + 3:
                                nev = _emit(ev, evb, evm, nev, ch, EV_MESSAGE, ist[ch, I_MSTART], now,
                                            msg, ds, ist, evs_p)
                                ist[ch, I_CSTART] = now
                        elif ist[ch, I_INMSG]:
                            nev = _emit(ev, evb, evm, nev, ch, EV_FRAMING, ist[ch, I_MSTART], now,
                                        msg, ds, ist, evs_p)
                            ist[ch, I_CSTART] = now
                        ist[ch, I_IDLE] = 0
                        continue
                    ist[ch, I_BIT] += 1
                if track:
                    zp[0] = zr
                    zp[1] = zi
                    zp[2] = za
                    ist[ch, I_SZN] = szn
            c0 += m
        for j in range(na):
            ch = act[j]
            for k in range(8):
                fs[ch, F_BQ + k] = st[k * na + j]
            fs[ch, F_PI] = st[SOA_I * na + j]
            fs[ch, F_PQ] = st[SOA_Q * na + j]
            fs[ch, F_POW] = st[SOA_POW * na + j]
    free(st)
    free(act)
    return nev
