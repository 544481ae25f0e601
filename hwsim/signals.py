"""The signals the simulated world makes, as finished int16 clips.

The world puts clips in its audio bank and loops or plays them, so it only
needs each rendered once, by dsp's generators: call-progress tones from
dsp.tones (the zone's plan), DTMF from dsp.dtmf (Q.23, -9/-11 dBm0),
caller ID from dsp.callerid.
"""
from __future__ import annotations

import numpy as np

RATE = 8000


def tone(name: str, zone: str = "cn") -> np.ndarray:
    """One period of a call-progress tone of `zone` (dsp.tones plan), to be looped.

    Rendered once by dsp's ToneGenerator; a continuous tone is given as one
    second (450 Hz has whole cycles in it, so the loop joins cleanly)."""
    from dsp.tones import ToneGenerator
    plan = _plan(zone)
    t = plan[name]
    seconds = 1.0 if t.continuous else t.period
    gen = ToneGenerator(1, plan)
    gen.play(0, name)
    out = np.zeros((1, int(round(seconds * RATE))), np.int16)
    gen.tx(out)
    return out[0]


_PLANS: dict[str, object] = {}


def _plan(zone: str):
    from dsp.tones import TonePlan
    if zone not in _PLANS:
        _PLANS[zone] = TonePlan.load(zone)
    return _PLANS[zone]


def dtmf(digits: str, on_ms: int = 100, off_ms: int = 100,
         level_dbm0: tuple[float, float] = (-9.0, -11.0)) -> np.ndarray:
    """DTMF for a digit string (dsp.dtmf's Q.23 generator): on_ms tone, off_ms gap each."""
    from dsp.dtmf import dtmf_signal
    return dtmf_signal(digits.upper(), level_dbm0=level_dbm0, on_ms=on_ms, off_ms=off_ms)


def callerid_fsk(number: str | None, name: str | None, when: tuple[int, int, int, int]) -> np.ndarray:
    """FSK caller ID (Bell 202, MDMF) for the slot between the first and second ring."""
    from dsp.callerid import callerid_audio
    return np.asarray(callerid_audio(number, name, when), dtype=np.int16)


def callerid_dtmf(number: str | None, name: str | None, when: tuple[int, int, int, int]) -> np.ndarray:
    """DTMF caller ID (A<number>C) as sent before the first ring on Chinese lines."""
    from dsp.callerid import callerid_audio
    return np.asarray(callerid_audio(number, name, when, standard="dtmf"), dtype=np.int16)


def default_callerid_audio(kind: str):
    """The caller-ID hook for a line's `callerid` setting ("fsk", "dtmf", "none").

    A hook is `(number, name, when=(month, day, hour, minute)) -> int16[n]`,
    the signature of dsp.callerid.callerid_audio."""
    return {"fsk": callerid_fsk, "dtmf": callerid_dtmf}.get(kind)
