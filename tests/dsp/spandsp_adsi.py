"""cffi (ABI mode) wrapper of spandsp's ADSI transmitter and receiver: our caller ID peer.

Separate from tests/dsp/spandsp.py (the shared harness) so the caller ID
tests own their declarations. spandsp's adsi_tx builds the whole line
signal (seizure, mark, bytes, checksum) for CLASS (Bell 202), CLIP (V.23,
ETSI) and CLIP-DTMF; adsi_rx decodes it and hands each message to a
callback. The state types are opaque here: spandsp allocates them
(init with NULL) and we free them.
"""
from __future__ import annotations

import numpy as np
from cffi import FFI

import spandsp_lib

ffi = FFI()
ffi.cdef("""
typedef void (*put_msg_func_t)(void *user_data, const uint8_t *msg, int len);
typedef struct adsi_tx_state_s adsi_tx_state_t;
typedef struct adsi_rx_state_s adsi_rx_state_t;
enum { ADSI_STANDARD_NONE = 0, ADSI_STANDARD_CLASS = 1, ADSI_STANDARD_CLIP = 2,
       ADSI_STANDARD_ACLIP = 3, ADSI_STANDARD_JCLIP = 4, ADSI_STANDARD_CLIP_DTMF = 5,
       ADSI_STANDARD_TDD = 6 };
adsi_rx_state_t *adsi_rx_init(adsi_rx_state_t *s, int standard, put_msg_func_t put_msg, void *user_data);
int adsi_rx_free(adsi_rx_state_t *s);
int adsi_rx(adsi_rx_state_t *s, const int16_t amp[], int len);
adsi_tx_state_t *adsi_tx_init(adsi_tx_state_t *s, int standard);
int adsi_tx_free(adsi_tx_state_t *s);
void adsi_tx_set_preamble(adsi_tx_state_t *s, int preamble_len, int preamble_ones_len,
                          int postamble_ones_len, int stop_bits);
int adsi_tx(adsi_tx_state_t *s, int16_t amp[], int max_len);
int adsi_tx_put_message(adsi_tx_state_t *s, const uint8_t *msg, int len);
int adsi_add_field(adsi_tx_state_t *s, uint8_t *msg, int len, uint8_t field_type,
                   uint8_t const *field_body, int field_len);
""")

STANDARDS = {"class": 1, "clip": 2, "clip_dtmf": 5}

lib, _LOAD_ERROR = spandsp_lib.load(ffi)


def require() -> None:
    if lib is None:
        raise spandsp_lib.missing(_LOAD_ERROR, "the ADSI peer tests")


class AdsiTx:
    """spandsp's ADSI transmitter for one standard ('class', 'clip', 'clip_dtmf')."""

    def __init__(self, standard: str) -> None:
        require()
        self._s = lib.adsi_tx_init(ffi.NULL, STANDARDS[standard])
        if self._s == ffi.NULL:
            raise RuntimeError(f"adsi_tx_init({standard}) failed")
        self._s = ffi.gc(self._s, lib.adsi_tx_free)

    def build(self, mtype: int, fields: list[tuple[int, bytes]]) -> bytes:
        """A message assembled by spandsp's adsi_add_field (header, then fields).

        For SDMF (type < 0x80) pass one field with type 0: spandsp appends the
        body as is. For CLIP-DTMF the fields are (start code, digits).
        """
        buf = ffi.new("uint8_t[]", 256)
        n = lib.adsi_add_field(self._s, buf, 0, mtype, ffi.NULL, 0)
        for ftype, body in fields:
            n = lib.adsi_add_field(self._s, buf, n, ftype, body, len(body))
            if n < 0:
                raise RuntimeError("adsi_add_field failed")
        return bytes(ffi.buffer(buf, n))

    def set_preamble(self, seizure_bits: int, mark_bits: int, postamble_bits: int, stop_bits: int) -> None:
        lib.adsi_tx_set_preamble(self._s, seizure_bits, mark_bits, postamble_bits, stop_bits)

    def send(self, msg: bytes, max_samples: int = 8000 * 4) -> np.ndarray:
        """Line audio for one message (spandsp adds the checksum), int16[n]."""
        if lib.adsi_tx_put_message(self._s, msg, len(msg)) <= 0:
            raise RuntimeError(f"adsi_tx_put_message refused {msg.hex()}")
        out = np.zeros(max_samples, np.int16)
        n = lib.adsi_tx(self._s, ffi.cast("int16_t *", out.ctypes.data), max_samples)
        return out[:n].copy()


class AdsiRx:
    """spandsp's ADSI receiver; `messages` collects what its callback delivered."""

    def __init__(self, standard: str) -> None:
        require()
        self.messages: list[bytes] = []
        # The callback must not let a Python exception cross into C: onerror
        # swallows and records it instead.
        self.errors: list[str] = []

        def onerror(exc_type, exc, tb) -> None:
            self.errors.append(f"{exc_type.__name__}: {exc}")

        @ffi.callback("void(void *, const uint8_t *, int)", onerror=onerror)
        def put_msg(user_data, msg, length) -> None:
            if length > 0:
                self.messages.append(bytes(ffi.buffer(msg, length)))

        self._cb = put_msg  # keep the callback alive as long as the receiver
        self._s = lib.adsi_rx_init(ffi.NULL, STANDARDS[standard], put_msg, ffi.NULL)
        if self._s == ffi.NULL:
            raise RuntimeError(f"adsi_rx_init({standard}) failed")
        self._s = ffi.gc(self._s, lib.adsi_rx_free)

    def rx(self, samples: np.ndarray) -> list[bytes]:
        x = np.ascontiguousarray(samples, dtype=np.int16)
        lib.adsi_rx(self._s, ffi.cast("int16_t *", x.ctypes.data), len(x))
        return self.messages
