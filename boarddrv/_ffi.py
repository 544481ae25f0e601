"""The compiled C library, loaded on first use so `import boarddrv` never needs it."""
from __future__ import annotations

from typing import Any

from .errors import BackendUnavailable

_lib: Any = None
_ffi: Any = None


def load() -> tuple[Any, Any]:
    """(ffi, lib) of boarddrv._vbcore; BackendUnavailable if it was never built."""
    global _lib, _ffi
    if _lib is None:
        try:
            from ._vbcore import ffi, lib  # type: ignore[import-not-found, import-untyped, unused-ignore]
        except ImportError as exc:
            raise BackendUnavailable(
                f"the native board library boarddrv._vbcore is not built ({exc}); "
                "run `python setup.py build_ext --inplace` (or `make build`)") from exc
        _ffi, _lib = ffi, lib
    return _ffi, _lib


def text(ffi: Any, buf: Any) -> str:
    raw: bytes = ffi.string(buf)
    return raw.decode("utf-8", "replace")
