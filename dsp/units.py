"""Levels in dBm0 for 16-bit linear PCM.

G.711's digital milliwatt: a full-scale sine is +3.14 dBm0 (A-law) and
+3.17 dBm0 (mu-law). We use the A-law figure for both laws; the 0.03 dB
difference is below any tolerance we test.
"""
from __future__ import annotations

import math
from typing import overload

import numpy as np

FULL_SCALE_SINE_DBM0 = 3.14
# RMS of a 0 dBm0 sine in 16-bit linear units.
DBM0_REF_RMS = (32767.0 / math.sqrt(2.0)) * 10.0 ** (-FULL_SCALE_SINE_DBM0 / 20.0)


def dbm0_to_rms(dbm0: float) -> float:
    return DBM0_REF_RMS * 10.0 ** (dbm0 / 20.0)


def dbm0_to_peak(dbm0: float) -> float:
    """Peak amplitude of a sine at this level."""
    return dbm0_to_rms(dbm0) * math.sqrt(2.0)


@overload
def rms_to_dbm0(rms: float) -> float: ...
@overload
def rms_to_dbm0(rms: np.ndarray) -> np.ndarray: ...
def rms_to_dbm0(rms: float | np.ndarray) -> float | np.ndarray:
    """dBm0 of an RMS value; silence gives -inf, not an error."""
    with np.errstate(divide="ignore"):
        return 20.0 * np.log10(np.asarray(rms, dtype=np.float64) / DBM0_REF_RMS)


def signal_dbm0(x: np.ndarray, axis: int = -1) -> float | np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return rms_to_dbm0(np.sqrt(np.mean(x * x, axis=axis)))
