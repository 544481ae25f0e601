# cython: language_level=3
"""Per-sample kernel of dsp.level: frame energies and the VAD state machine.

Samples outer, channels inner, state arrays [nchan]; validation is in
dsp/level.py.
"""


def vad_block(float[:, ::1] xt, double[::1] acc, int pos, int frame_len,
              double[::1] floor, int[::1] speech, int[::1] run, int[::1] quiet,
              long long[::1] last_loud, long long frame0,
              double ratio, double abs_min, double down, double up_quiet, double up_speech,
              int attack, int hangover, long long[:, ::1] ev) -> tuple:
    """Energy VAD over frames of frame_len samples; see VoiceActivityDetector.

    xt is the block transposed [n, nchan]. Per completed frame (mean square
    e) and channel:
      loud = e > floor * ratio and e > abs_min
      quiet state: `attack` loud frames in a row start speech, backdated to
                   the first of them -> event (chan, 1, start frame)
      speech: `hangover` non-loud frames in a row stop it -> event
              (chan, 0, frame after the last loud frame)
      floor: e < floor -> floor += down * (e - floor) (follows noise down
             fast); else floor *= up_quiet (up_speech in speech), never above e
             (a slow rise, so steady noise becomes the floor, speech does not).
    floor < 0 means "not yet set": the first frame sets it (dsp.level
    starts from a configured floor instead).
    Returns (events written, frames completed, new pos).
    """
    cdef Py_ssize_t n = xt.shape[0], nchan = xt.shape[1]
    cdef Py_ssize_t i, c
    cdef int nev = 0, nfr = 0
    cdef long long fr
    cdef double e, f, x
    cdef bint loud
    with nogil:
        for i in range(n):
            for c in range(nchan):
                x = xt[i, c]
                acc[c] = acc[c] + x * x
            pos += 1
            if pos < frame_len:
                continue
            pos = 0
            fr = frame0 + nfr
            nfr += 1
            for c in range(nchan):
                e = acc[c] / frame_len
                acc[c] = 0.0
                f = floor[c]
                if f < 0.0:
                    f = e if e > abs_min else abs_min
                loud = e > f * ratio and e > abs_min
                if speech[c] == 0:
                    if loud:
                        run[c] += 1
                        if run[c] >= attack:
                            speech[c] = 1
                            quiet[c] = 0
                            last_loud[c] = fr
                            ev[nev, 0] = c
                            ev[nev, 1] = 1
                            ev[nev, 2] = fr - run[c] + 1
                            nev += 1
                    else:
                        run[c] = 0
                else:
                    if loud:
                        quiet[c] = 0
                        last_loud[c] = fr
                    else:
                        quiet[c] += 1
                        if quiet[c] >= hangover:
                            speech[c] = 0
                            run[c] = 0
                            ev[nev, 0] = c
                            ev[nev, 1] = 0
                            ev[nev, 2] = last_loud[c] + 1
                            nev += 1
                if e < f:
                    f = f + down * (e - f)
                else:
                    f = f * (up_speech if speech[c] else up_quiet)
                    if f > e:
                        f = e
                if f < abs_min * 0.01:
                    f = abs_min * 0.01
                floor[c] = f
    return nev, nfr, pos
