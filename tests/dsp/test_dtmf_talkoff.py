"""Talk-off: speech and music with no DTMF in them must not produce digits.

Two sets; our detector and spandsp's run on the same audio and the test
prints false digits per hour side by side, per category and overall:

- >= 30 minutes of espeak-ng speech in ten languages and several
  voices/speeds/pitches, synthesised music, the repo's own prompts and
  music on hold: we must not be worse than spandsp, per category and
  overall.
- The thin-line set, about 3 hours: real recorded speech (a woman and a
  man, from Debian's asterisk-core-sounds packages) and real hold music,
  through lines that cut everything below 700-900 Hz; thin speech,
  pitch-shifted voices, two talkers at once, speech over hold music,
  whistled glides. Overall we must report at most half of spandsp's false
  digits (docs/dsp-dtmf.md, "Talk-off").

Both corpora are built once and cached (tests/dsp/conftest.py).
"""
from __future__ import annotations

import numpy as np

from dsp.dtmf import DtmfDetector

NCHAN = 32  # the corpus is cut into channels: the batched path, and fast


def as_channels(x: np.ndarray) -> np.ndarray:
    n = len(x) // NCHAN
    return np.ascontiguousarray(x[: n * NCHAN].reshape(NCHAN, n))


def ours_false_digits(x: np.ndarray) -> list[str]:
    blk = as_channels(x)
    det = DtmfDetector(NCHAN)
    found = []
    for i in range(0, blk.shape[1], 160):
        found += [e.digit for e in det.rx(blk[:, i:i + 160]) if e.end is None]
    found += [e.digit for e in det.rx(np.zeros((NCHAN, 800), np.int16)) if e.end is None]
    return found


def spandsp_false_digits(spandsp, x: np.ndarray) -> list[str]:
    blk = as_channels(x)
    with spandsp.DtmfRx(NCHAN) as rx:
        for i in range(0, blk.shape[1], 8000):
            rx.rx(blk[:, i:i + 8000])
        rx.rx(np.zeros((NCHAN, 800), np.int16))
        return [d for _, d, _, _ in rx.events]


def test_talkoff_not_worse_than_spandsp(spandsp, talkoff_corpus, record_property, capsys):
    total_minutes = sum(len(x) for x in talkoff_corpus.values()) / 8000 / 60
    assert total_minutes >= 30.0, f"corpus only {total_minutes:.1f} min"
    lines, ours_all, theirs_all = [], 0, 0
    for name, x in talkoff_corpus.items():
        if len(x) < NCHAN * 8000:
            continue
        hours = len(x) / 8000 / 3600
        ours = ours_false_digits(x)
        theirs = spandsp_false_digits(spandsp, x)
        ours_all += len(ours)
        theirs_all += len(theirs)
        lines.append(f"{name:>10}: {hours * 60:5.1f} min  ours {len(ours):3d} ({len(ours) / hours:6.1f}/h) "
                     f"{''.join(ours)!r}  spandsp {len(theirs):3d} ({len(theirs) / hours:6.1f}/h) "
                     f"{''.join(theirs)!r}")
        record_property(f"talkoff_{name}", {"minutes": hours * 60, "ours": len(ours),
                                            "spandsp": len(theirs)})
        assert len(ours) <= len(theirs), lines[-1]
    hours = total_minutes / 60
    lines.append(f"{'all':>10}: {total_minutes:5.1f} min  ours {ours_all / hours:.1f}/h  "
                 f"spandsp {theirs_all / hours:.1f}/h")
    with capsys.disabled():
        print("\nDTMF talk-off (false digits):\n" + "\n".join(lines))
    assert ours_all <= theirs_all


def test_thin_line_talkoff_at_most_half_of_spandsp(spandsp, thin_line_corpus, record_property, capsys):
    total_minutes = sum(len(x) for x in thin_line_corpus.values()) / 8000 / 60
    assert total_minutes >= 150.0, f"thin-line set only {total_minutes:.1f} min"
    lines, ours_all, theirs_all = [], 0, 0
    for name, x in thin_line_corpus.items():
        hours = len(x) / 8000 / 3600
        ours = ours_false_digits(x)
        theirs = spandsp_false_digits(spandsp, x)
        ours_all += len(ours)
        theirs_all += len(theirs)
        lines.append(f"{name:>17}: {hours * 60:5.1f} min  ours {len(ours):3d} ({len(ours) / hours:6.1f}/h) "
                     f"{''.join(ours)!r}  spandsp {len(theirs):3d} ({len(theirs) / hours:6.1f}/h) "
                     f"{''.join(theirs)!r}")
        record_property(f"thin_talkoff_{name}", {"minutes": hours * 60, "ours": len(ours),
                                                 "spandsp": len(theirs)})
    hours = total_minutes / 60
    lines.append(f"{'all':>17}: {total_minutes:5.1f} min  ours {ours_all:3d} ({ours_all / hours:6.1f}/h)  "
                 f"spandsp {theirs_all:3d} ({theirs_all / hours:6.1f}/h)")
    with capsys.disabled():
        print("\nDTMF talk-off on thin lines (false digits):\n" + "\n".join(lines))
    assert theirs_all >= 10, "the set should trouble spandsp too, or it measures nothing"
    assert 2 * ours_all <= theirs_all, lines[-1]


def _pair_with_moving_column(row_hz: float, col_hz: float, col_track: np.ndarray, rng) -> np.ndarray:
    """int16: 50 ms silence, a -10/-10 dBm0 pair whose column tone follows col_track (Hz per sample), 100 ms."""
    from dsp.units import dbm0_to_peak
    n = len(col_track)
    t = np.arange(n)
    low = np.sin(2 * np.pi * row_hz / 8000 * t + rng.uniform(0, 6.3))
    high = np.sin(np.cumsum(2 * np.pi * col_track / 8000) + rng.uniform(0, 6.3))
    x = dbm0_to_peak(-10.0) * (low + high)
    return np.concatenate([np.zeros(400), x, np.zeros(800)]).round().astype(np.int16)


def test_gliding_tones_inside_the_tolerance_are_not_digits():
    """A column tone gliding by 5 % in 50 ms (up or down, always inside one window's
    tolerance; a whistle's glide) is almost never a digit; held steady, the same pair always
    is. Without the drift check (drift_hz at its maximum) every glide is taken as a digit."""
    from dtmfkit import ours_batch

    from dsp.dtmf import COL_HZ, DIGITS, ROW_HZ
    rng = np.random.default_rng(2)
    n = 400  # 50 ms
    ramp = 2 * np.arange(n) / n - 1
    steady, glides = [], []
    for fr in ROW_HZ:
        for fc in COL_HZ:
            steady.append(_pair_with_moving_column(fr, fc, np.full(n, float(fc)), rng))
            glides.append(_pair_with_moving_column(fr, fc, fc * (1 + 0.025 * ramp), rng))
            glides.append(_pair_with_moving_column(fr, fc, fc * (1 - 0.025 * ramp), rng))
    assert ours_batch(steady) == list(DIGITS)
    caught = sum(d == "" for d in ours_batch(glides))
    assert caught >= 26, f"only {caught} of 32 glides rejected"
    assert sum(d != "" for d in ours_batch(glides, drift_hz=100.0)) == 32
