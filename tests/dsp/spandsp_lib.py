"""Loading libspandsp for the peer comparisons: one place for every cffi wrapper.

Each wrapper (G.711/DTMF, ADSI, tone_gen) declares what it uses on its own
FFI; they all load the library the same way, and a missing library is the
same clear message everywhere.
"""
from __future__ import annotations

import ctypes.util

from cffi import FFI

NAMES = ("libspandsp.so.2", ctypes.util.find_library("spandsp") or "libspandsp.so")


def load(ffi: FFI):
    """(lib, None) or (None, why it could not be loaded)."""
    error = None
    for name in NAMES:
        try:
            return ffi.dlopen(name), None
        except OSError as exc:
            error = f"cannot load libspandsp ({name}): {exc}"
    return None, error


def missing(error: str | None, what: str) -> RuntimeError:
    return RuntimeError(f"{error}; install libspandsp-dev (Debian) for {what}")
