"""A small cffi (ABI mode) harness over the system libspandsp, our DSP peer.

Tests and benchmarks compare our kernels with spandsp's on the same
signals; this module is the one place that knows how to reach the library.
ABI mode needs no compiler at test time: we only call exported functions
(spandsp 0.0.6 keeps the per-sample G.711 helpers `static inline`, so G.711
goes through the exported block calls `g711_encode`/`g711_decode`).

To extend: append prototypes to a `_CDEF_*` string (copied from
/usr/include/spandsp, with opaque `typedef struct ... xxx_t;` for state
types) and, if it helps, a thin wrapper class like `DtmfRx`; or, as the
ADSI and tone wrappers do, keep a sibling module with its own FFI that
loads the library through `spandsp_lib.load`. Import from tests as
`import spandsp` (tests/dsp is on sys.path) and from bench via
`sys.path.insert(0, "tests/dsp")`.

`available()` says whether the library could be loaded; `require()` raises
a clear error otherwise (the conftest fixture turns it into a test error
with the install hint: the comparisons are the point, a skip would hide
them).
"""
from __future__ import annotations

import numpy as np
from cffi import FFI

import spandsp_lib

_CDEF_COMMON = """
typedef void (*tone_report_func_t)(void *user_data, int code, int level, int delay);
typedef void (*digits_rx_callback_t)(void *user_data, const char *digits, int len);
"""

_CDEF_G711 = """
enum { G711_ALAW = 0, G711_ULAW = 1 };
typedef struct g711_state_s g711_state_t;
g711_state_t *g711_init(g711_state_t *s, int mode);
int g711_free(g711_state_t *s);
int g711_decode(g711_state_t *s, int16_t amp[], const uint8_t g711_data[], int g711_bytes);
int g711_encode(g711_state_t *s, uint8_t g711_data[], const int16_t amp[], int len);
uint8_t alaw_to_ulaw(uint8_t alaw);
uint8_t ulaw_to_alaw(uint8_t ulaw);
"""

_CDEF_DTMF = """
typedef struct dtmf_tx_state_s dtmf_tx_state_t;
typedef struct dtmf_rx_state_s dtmf_rx_state_t;
int dtmf_tx(dtmf_tx_state_t *s, int16_t amp[], int max_samples);
int dtmf_tx_put(dtmf_tx_state_t *s, const char *digits, int len);
void dtmf_tx_set_level(dtmf_tx_state_t *s, int level, int twist);
void dtmf_tx_set_timing(dtmf_tx_state_t *s, int on_time, int off_time);
dtmf_tx_state_t *dtmf_tx_init(dtmf_tx_state_t *s);
int dtmf_tx_free(dtmf_tx_state_t *s);
void dtmf_rx_set_realtime_callback(dtmf_rx_state_t *s, tone_report_func_t callback, void *user_data);
void dtmf_rx_parms(dtmf_rx_state_t *s, int filter_dialtone, int twist, int reverse_twist, int threshold);
int dtmf_rx(dtmf_rx_state_t *s, const int16_t amp[], int samples);
int dtmf_rx_status(dtmf_rx_state_t *s);
size_t dtmf_rx_get(dtmf_rx_state_t *s, char *digits, int max);
dtmf_rx_state_t *dtmf_rx_init(dtmf_rx_state_t *s, digits_rx_callback_t callback, void *user_data);
int dtmf_rx_free(dtmf_rx_state_t *s);
"""

_CDEF_R2MF = """
typedef struct r2_mf_tx_state_s r2_mf_tx_state_t;
typedef struct r2_mf_rx_state_s r2_mf_rx_state_t;
int r2_mf_tx(r2_mf_tx_state_t *s, int16_t amp[], int samples);
int r2_mf_tx_put(r2_mf_tx_state_t *s, char digit);
r2_mf_tx_state_t *r2_mf_tx_init(r2_mf_tx_state_t *s, int fwd);
int r2_mf_tx_free(r2_mf_tx_state_t *s);
int r2_mf_rx(r2_mf_rx_state_t *s, const int16_t amp[], int samples);
int r2_mf_rx_get(r2_mf_rx_state_t *s);
r2_mf_rx_state_t *r2_mf_rx_init(r2_mf_rx_state_t *s, int fwd, tone_report_func_t callback, void *user_data);
int r2_mf_rx_free(r2_mf_rx_state_t *s);
"""

ffi = FFI()
ffi.cdef(_CDEF_COMMON + _CDEF_G711 + _CDEF_DTMF + _CDEF_R2MF)

lib, _LOAD_ERROR = spandsp_lib.load(ffi)  # the one loader every peer wrapper shares


def available() -> bool:
    return lib is not None


def require() -> None:
    if lib is None:
        raise spandsp_lib.missing(_LOAD_ERROR, "the G.711 and DTMF peer comparisons")


# ---------------------------------------------------------------- G.711

def _g711(mode: int, fn: str, src: np.ndarray, out_dtype) -> np.ndarray:
    require()
    state = lib.g711_init(ffi.NULL, mode)
    try:
        src = np.ascontiguousarray(src)
        out = np.empty(src.shape, dtype=out_dtype)
        n = src.size
        if fn == "encode":
            lib.g711_encode(state, ffi.from_buffer("uint8_t[]", out),
                            ffi.from_buffer("int16_t[]", src), n)
        else:
            lib.g711_decode(state, ffi.from_buffer("int16_t[]", out),
                            ffi.from_buffer("uint8_t[]", src), n)
        return out
    finally:
        lib.g711_free(state)


def alaw_encode(x: np.ndarray) -> np.ndarray:
    return _g711(0, "encode", np.asarray(x, dtype=np.int16), np.uint8)


def alaw_decode(c: np.ndarray) -> np.ndarray:
    return _g711(0, "decode", np.asarray(c, dtype=np.uint8), np.int16)


def ulaw_encode(x: np.ndarray) -> np.ndarray:
    return _g711(1, "encode", np.asarray(x, dtype=np.int16), np.uint8)


def ulaw_decode(c: np.ndarray) -> np.ndarray:
    return _g711(1, "decode", np.asarray(c, dtype=np.uint8), np.int16)


# ---------------------------------------------------------------- DTMF

def dtmf_generate(digits: str, level_dbm0: int = -10, twist_db: int = 0,
                  on_ms: int = 50, off_ms: int = 55, lead_ms: int = 0,
                  tail_ms: int = 100) -> np.ndarray:
    """spandsp's own DTMF generator: int16[n] of `digits`.

    `level_dbm0` is the low-group tone level, `twist_db` how much *louder*
    the high-group tone is (spandsp's convention for dtmf_tx_set_level;
    negative for a weaker high tone). Measured: level -10 gives -10.9 dBm0.
    """
    require()
    s = lib.dtmf_tx_init(ffi.NULL)
    try:
        lib.dtmf_tx_set_level(s, int(level_dbm0), int(twist_db))
        lib.dtmf_tx_set_timing(s, int(on_ms), int(off_ms))
        parts = [np.zeros(lead_ms * 8, np.int16)]
        # the generator's queue holds MAX_DTMF_DIGITS; feed in chunks
        for i in range(0, len(digits), 64):
            lib.dtmf_tx_put(s, digits[i:i + 64].encode(), -1)
            buf = np.zeros(8000, np.int16)
            while True:
                got = lib.dtmf_tx(s, ffi.from_buffer("int16_t[]", buf), len(buf))
                if got <= 0:
                    break
                parts.append(buf[:got].copy())
        parts.append(np.zeros(tail_ms * 8, np.int16))
        return np.concatenate(parts)
    finally:
        lib.dtmf_tx_free(s)


class DtmfRx:
    """One spandsp dtmf_rx per channel; events with onset/release positions.

    Positions are sample counts since init at the resolution of the chunks
    fed to rx() (spandsp reports state changes from inside dtmf_rx without a
    sample offset); feed small chunks when timing matters.
    """

    def __init__(self, nchan: int = 1, normal_twist_db: int = -1,
                 reverse_twist_db: int = -1, threshold_dbm0: int = -99,
                 filter_dialtone: int = -1, realtime: bool = True) -> None:
        require()
        self.nchan = nchan
        self.pos = 0
        self.events: list[tuple[int, str, int, int | None]] = []  # chan, digit, start, end
        self._open: dict[int, int] = {}
        self._states = []
        self._handles = []
        self._cb = ffi.callback("void(void *, int, int, int)", self._on_tone) if realtime else None
        for ch in range(nchan):
            st = lib.dtmf_rx_init(ffi.NULL, ffi.NULL, ffi.NULL)
            lib.dtmf_rx_parms(st, filter_dialtone, normal_twist_db, reverse_twist_db, threshold_dbm0)
            if realtime:
                h = ffi.new_handle((self, ch))
                self._handles.append(h)
                lib.dtmf_rx_set_realtime_callback(st, self._cb, h)
            self._states.append(st)

    @staticmethod
    def _on_tone(user_data, code, level, delay) -> None:
        try:
            self, ch = ffi.from_handle(user_data)
            if code:
                self._open[ch] = len(self.events)
                self.events.append((ch, chr(code), self.pos, None))
            elif ch in self._open:
                i = self._open.pop(ch)
                c, d, start, _ = self.events[i]
                self.events[i] = (c, d, start, self.pos)
        except Exception:  # never let a Python exception cross into C
            pass

    def rx(self, block: np.ndarray) -> None:
        """Feed int16[nchan, n] (or int16[n] for one channel)."""
        block = np.ascontiguousarray(block, dtype=np.int16)
        if block.ndim == 1:
            block = block[None, :]
        n = block.shape[1]
        self.pos += n  # callbacks fire inside the call: report its end
        for ch, st in enumerate(self._states):
            lib.dtmf_rx(st, ffi.from_buffer("int16_t[]", block[ch]), n)

    def digits(self, chan: int = 0) -> str:
        """Digits collected by spandsp's own buffer (non-realtime path)."""
        buf = ffi.new("char[]", 256)
        out = []
        while True:
            got = lib.dtmf_rx_get(self._states[chan], buf, 255)
            if not got:
                break
            out.append(ffi.string(buf, got).decode())
        return "".join(out)

    def close(self) -> None:
        for st in self._states:
            lib.dtmf_rx_free(st)
        self._states = []

    def __enter__(self) -> DtmfRx:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def dtmf_detect(x: np.ndarray, chunk: int = 40, **parms) -> str:
    """Digits spandsp's receiver reports for a 1-D int16 signal."""
    with DtmfRx(1, **parms) as rx:
        x = np.asarray(x, dtype=np.int16)
        for i in range(0, len(x), chunk):
            rx.rx(x[i:i + chunk])
        return "".join(d for _, d, _, _ in rx.events)


# ---------------------------------------------------------------- MF R2 (Q.441)

# spandsp names signals 1..15 by a character: 1-9, '0' for 10, then B-F.
R2MF_CODES = "1234567890BCDEF"


def r2mf_code(signal: int) -> bytes:
    """spandsp's character for MF R2 signal 1..15."""
    return R2MF_CODES[signal - 1].encode()


def r2mf_signal(code: int) -> int:
    """MF R2 signal number 1..15 of a spandsp character code (0: none)."""
    return R2MF_CODES.index(chr(code)) + 1 if code else 0


def r2mf_generate(signals: list[int], forward: bool = True, on_ms: int = 100,
                  off_ms: int = 100, lead_ms: int = 0) -> np.ndarray:
    """spandsp's own MF R2 sender: int16[n], each signal on_ms then off_ms of silence.

    r2_mf_tx sends a signal until told otherwise (the compelled cycle);
    measured level: -11.0 dBm0 per frequency.
    """
    require()
    s = lib.r2_mf_tx_init(ffi.NULL, 1 if forward else 0)
    try:
        parts = [np.zeros(lead_ms * 8, np.int16)]
        for sig in signals:
            for code, ms in ((r2mf_code(sig), on_ms), (b"\0", off_ms)):
                lib.r2_mf_tx_put(s, code)
                buf = np.zeros(ms * 8, np.int16)
                if len(buf):
                    lib.r2_mf_tx(s, ffi.from_buffer("int16_t[]", buf), len(buf))
                parts.append(buf)
        return np.concatenate(parts)
    finally:
        lib.r2_mf_tx_free(s)


class R2MfRx:
    """One spandsp r2_mf_rx per channel; events (chan, signal 1..15, start, end).

    spandsp reports every change of its 133-sample block verdict through the
    callback (no persistence check of its own), so an event here is one run
    of equal verdicts; positions are at the resolution of the chunks fed to
    rx() (feed <= 133 samples when timing matters).
    """

    def __init__(self, nchan: int = 1, forward: bool = True) -> None:
        require()
        self.nchan = nchan
        self.pos = 0
        self.events: list[tuple[int, int, int, int | None]] = []
        self._open: dict[int, int] = {}
        self._states = []
        self._handles = []
        self._cb = ffi.callback("void(void *, int, int, int)", self._on_tone)
        for ch in range(nchan):
            h = ffi.new_handle((self, ch))
            self._handles.append(h)
            self._states.append(lib.r2_mf_rx_init(ffi.NULL, 1 if forward else 0, self._cb, h))

    @staticmethod
    def _on_tone(user_data, code, level, delay) -> None:
        try:
            self, ch = ffi.from_handle(user_data)
            if ch in self._open:  # any change ends the signal that was on
                i = self._open.pop(ch)
                c, sig, start, _ = self.events[i]
                self.events[i] = (c, sig, start, self.pos)
            if code:
                self._open[ch] = len(self.events)
                self.events.append((ch, r2mf_signal(code), self.pos, None))
        except Exception:  # never let a Python exception cross into C
            pass

    def rx(self, block: np.ndarray) -> None:
        """Feed int16[nchan, n] (or int16[n] for one channel)."""
        block = np.ascontiguousarray(block, dtype=np.int16)
        if block.ndim == 1:
            block = block[None, :]
        n = block.shape[1]
        self.pos += n
        for ch, st in enumerate(self._states):
            lib.r2_mf_rx(st, ffi.from_buffer("int16_t[]", block[ch]), n)

    def current(self, chan: int = 0) -> int:
        """The signal spandsp's receiver has on now (r2_mf_rx_get), 0 for none."""
        return r2mf_signal(lib.r2_mf_rx_get(self._states[chan]))

    def close(self) -> None:
        for st in self._states:
            lib.r2_mf_rx_free(st)
        self._states = []

    def __enter__(self) -> R2MfRx:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def r2mf_detect(x: np.ndarray, forward: bool = True, chunk: int = 133) -> list[int]:
    """The MF R2 signals spandsp's receiver reports for a 1-D int16 signal, in order."""
    with R2MfRx(1, forward) as rx:
        x = np.asarray(x, dtype=np.int16)
        for i in range(0, len(x), chunk):
            rx.rx(x[i:i + chunk])
        return [sig for _, sig, _, _ in rx.events]
