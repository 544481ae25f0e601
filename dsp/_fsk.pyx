# cython: language_level=3
"""Batched 1200-baud FSK receiver (Bell 202 and V.23) with UART and message framing.

Why this shape: the receiver runs on every FXO channel between rings, so the
per-sample work is one nogil loop over samples (outer) and channels (inner),
and Python sees only finished messages. Both standards share a centre of
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
from libc.math cimport fabs

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
    NI = 13

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
                             uint8_t[:, ::1] msg, double[:, ::1] ds, int64_t[:, ::1] ist) noexcept nogil:
    cdef Py_ssize_t j, nb = ist[ch, I_MPOS]
    if nev < ev.shape[0]:
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


def fsk_rx(const int16_t[:, ::1] x, int64_t pos, float[:, ::1] fs, double[:, ::1] ds,
           int64_t[:, ::1] ist, uint8_t[:, ::1] msg, const uint8_t[::1] armed,
           const float[:, ::1] sos, const float[::1] lo_c, const float[::1] lo_s,
           float alpha, float cd_on, float cd_off, double min_idle, double max_gap,
           int64_t[:, ::1] ev, uint8_t[:, ::1] evb, double[::1] evm):
    """Receive n samples on every armed channel; returns the number of events written.

    ev[k] = (chan, kind, start, end, nbytes); evb[k, :nbytes] the message
    bytes; evm[k] the mean discriminator over the mark run before the
    message (tells Bell 202 from V.23). Positions are absolute sample
    counts (pos is the position of x[:, 0]).
    """
    cdef Py_ssize_t nchan = x.shape[0], n = x.shape[1], i, ch, j
    cdef Py_ssize_t nev = 0
    cdef float d, p, acc, prev
    cdef int lo, b
    cdef int64_t now
    cdef double spb = 8000.0 / 1200.0
    with nogil:
        for i in range(n):
            lo = <int>((pos + i) % LO_PERIOD)
            now = pos + i
            for ch in range(nchan):
                if not armed[ch]:
                    continue
                d = _frontend(x[ch, i] * (1.0 / 32768.0), lo_c[lo], lo_s[lo], fs, ch, sos, alpha, &p)
                fs[ch, F_BOX + ist[ch, I_BOXI]] = d
                ist[ch, I_BOXI] = (ist[ch, I_BOXI] + 1) % BOX
                acc = 0.0
                for j in range(BOX):
                    acc = acc + fs[ch, F_BOX + j]
                d = acc * (1.0 / BOX)
                prev = fs[ch, F_PREVD]
                fs[ch, F_PREVD] = d

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
                                    msg, ds, ist)
                    continue

                b = 1 if d < 0.0 else 0  # mark = below 1700 Hz
                if ist[ch, I_ST] == 0:
                    if b == 0:
                        # start bit: interpolate the zero crossing between the last two samples
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
                                        msg, ds, ist)
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
                            ist[ch, I_MSTART] = ist[ch, I_CSTART]
                            ds[ch, D_MSGM] = ds[ch, D_LSUM]
                            ist[ch, I_MSGMC] = ist[ch, I_LCNT]
                            msg[ch, 0] = <uint8_t>ist[ch, I_SHR]
                            ist[ch, I_MPOS] = 1
                        if ist[ch, I_INMSG] and ist[ch, I_MPOS] >= 2 and \
                                ist[ch, I_MPOS] == msg[ch, 1] + 3:
                            nev = _emit(ev, evb, evm, nev, ch, EV_MESSAGE, ist[ch, I_MSTART], now,
                                        msg, ds, ist)
                            ist[ch, I_CSTART] = now
                    elif ist[ch, I_INMSG]:
                        nev = _emit(ev, evb, evm, nev, ch, EV_FRAMING, ist[ch, I_MSTART], now,
                                    msg, ds, ist)
                        ist[ch, I_CSTART] = now
                    ist[ch, I_IDLE] = 0
                    continue
                ist[ch, I_BIT] += 1
    return nev
