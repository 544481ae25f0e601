"""Read recordings for the DSP tools: any format soundfile reads, any rate.

Everything in dsp runs at 8 kHz on int16[nchan, n]; a file's channels become
lines (channel 0 = first channel of the file).
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np

RATE = 8000


class AudioFileError(Exception):
    """A recording that cannot be read; the message names the file."""


def read_audio(path: str) -> np.ndarray:
    """int16[nchan, n] at 8000 Hz."""
    import soundfile as sf
    try:
        data, rate = sf.read(path, dtype="float64", always_2d=True)
    except (RuntimeError, sf.LibsndfileError, OSError) as exc:
        raise AudioFileError(f"{path}: cannot read audio: {exc}") from None
    x = data.T  # [nchan, n]
    if rate != RATE:
        from scipy.signal import resample_poly
        ratio = Fraction(RATE, int(rate)).limit_denominator(1000)
        x = resample_poly(x, ratio.numerator, ratio.denominator, axis=1)
    return np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int16)


def write_wav(path: str, x: np.ndarray, rate: int = RATE, subtype: str = "PCM_16") -> None:
    """Write int16[nchan, n] (or int16[n]) as WAV; subtype 'ALAW' for A-law."""
    import soundfile as sf
    x = np.asarray(x)
    data = x.T if x.ndim == 2 else x
    sf.write(path, data, rate, subtype=subtype, format="WAV")
