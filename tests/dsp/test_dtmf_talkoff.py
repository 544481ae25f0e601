"""Talk-off: speech and music with no DTMF in them must not produce digits.

>= 30 minutes of audio (espeak-ng speech in ten languages and several
voices/speeds/pitches, synthesised music, the repo's own prompts and music
on hold); our detector and spandsp's run on the same audio; we report false
digits per hour next to spandsp's and must not be worse, per category and
overall. The corpus is built once and cached (tests/dsp/conftest.py).
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
