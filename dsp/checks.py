"""The one check of the audio arrays handed to dsp's detectors, generators and codecs.

Every public entry point that takes samples (a detector's ``rx(block)``, a
generator's ``tx(out)``, the bank's ``add(samples)``, the G.711 codecs)
calls :func:`check_audio` first, so a wrong array always fails the same
way: an :class:`AudioArrayError` naming the function and what is wrong::

    DtmfDetector.rx: expected int16[2, n], got float64[2, 160]
    ToneGenerator.tx: expected int16[2, n], got int16[3, 160] (3 channels, expected 2)
    DtmfGenerator.tx: the output array is read-only

The kernels behind them (Cython, nogil) do no checking of their own.
"""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["AudioArrayError", "check_audio"]


class AudioArrayError(ValueError):
    """An audio array has the wrong type, dtype, shape, channel count or layout.

    A ValueError, so code that catches "bad input" in general still does.
    """


def _pattern(dtype: Any, shape: tuple[int | None, ...] | None) -> str:
    """int16[2, n], int16[nchan, n], int16[n], int16[160], or "int16 (any shape)"."""
    name = np.dtype(dtype).name
    if shape is None:
        return f"{name} (any shape)"
    dims = []
    for axis, size in enumerate(shape):
        if size is not None:
            dims.append(str(size))
        else:
            dims.append("n" if axis == len(shape) - 1 else "nchan")
    return f"{name}[{', '.join(dims)}]"


def check_audio(x: Any, where: str, *, shape: tuple[int | None, ...] | None,
                dtype: Any = np.int16, out: bool = False, contiguous: bool = False) -> np.ndarray:
    """``x`` as a numpy array of ``dtype`` and ``shape``, or AudioArrayError.

    where: the caller, e.g. "DtmfDetector.rx", as the message's prefix.
    shape: the expected shape, None for a free axis: ``(nchan, None)`` is a
        block int16[nchan, n], ``(None,)`` a mono signal, None any shape.
    out: x is an output buffer the caller writes into, so it must already
        be a writable numpy array (an input may be anything numpy.asarray
        takes and is returned converted).
    contiguous: x must be C-contiguous (for an output the kernel writes in
        place; an input is better made contiguous by the caller).
    """
    if out:
        if not isinstance(x, np.ndarray):
            raise AudioArrayError(f"{where}: expected a numpy array {_pattern(dtype, shape)}, "
                                  f"got {type(x).__name__}")
        a = x
    else:
        a = np.asarray(x)
    if a.dtype != dtype:
        raise _mismatch(a, where, dtype, shape)
    if shape is not None:
        if a.ndim != len(shape):
            raise _mismatch(a, where, dtype, shape)
        for axis, size in enumerate(shape):
            if size is not None and a.shape[axis] != size:
                why = (f"{a.shape[0]} channels, expected {size}" if len(shape) == 2 and axis == 0
                       else f"axis {axis} has {a.shape[axis]}, expected {size}")
                raise _mismatch(a, where, dtype, shape, why)
    if out and not a.flags.writeable:
        raise AudioArrayError(f"{where}: the output array is read-only")
    if contiguous and not a.flags.c_contiguous:
        raise AudioArrayError(f"{where}: expected a C-contiguous array {_pattern(dtype, shape)}, "
                              "got a strided view")
    return a


def _mismatch(a: np.ndarray, where: str, dtype: Any, shape: tuple[int | None, ...] | None,
              why: str = "") -> AudioArrayError:
    """The error for a wrong dtype or shape (built only when there is one: rx runs every tick)."""
    got = f"{a.dtype.name}{list(a.shape)}"
    return AudioArrayError(f"{where}: expected {_pattern(dtype, shape)}, got {got}"
                           + (f" ({why})" if why else ""))
