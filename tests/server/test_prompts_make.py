"""The authoring scripts: trimming, levelling, and that the committed files are theirs.

make_prompts.py is run for a few prompts into a temporary folder (needs
espeak-ng and sox, as the README says) and compared with the committed
files, so a catalogue edit without a regeneration is caught.
"""
from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dsp.units import dbm0_to_rms
from prompts import PROMPTS_DIR, load_catalogue, make_moh, make_prompts
from voiceserver.ivr.prompts import active_level_dbm0

RATE = 8000


def tone(seconds: float, dbm0: float = -20.0, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return dbm0_to_rms(dbm0) * math.sqrt(2) * np.sin(2 * np.pi * freq * t)


def test_trim_cuts_the_ends_and_shortens_long_pauses():
    x = np.r_[np.zeros(4000), tone(0.3), np.zeros(8000), tone(0.3), np.zeros(2400)]
    y = make_prompts.trim(x)
    loud = np.flatnonzero(np.abs(y) > 1.0)
    assert loud[0] / RATE == pytest.approx(make_prompts.LEAD_KEEP, abs=0.011)
    assert (y.size - 1 - loud[-1]) / RATE == pytest.approx(make_prompts.TAIL_KEEP, abs=0.011)
    # the 1 s pause became MAX_PAUSE
    gaps = np.diff(loud)
    assert gaps.max() / RATE == pytest.approx(make_prompts.MAX_PAUSE, abs=0.011)
    # a short pause is kept as it was: only the 5 ms end fades change anything
    x2 = np.r_[tone(0.3), np.zeros(800), tone(0.3)]
    y2 = make_prompts.trim(x2)
    assert y2.size == x2.size and np.array_equal(y2[40:-40], x2[40:-40])
    assert y[0] == 0.0 and y[-1] == 0.0                  # faded: no click at either end


def test_level_to_hits_the_target_and_limits_peaks_softly():
    x = np.r_[tone(0.5, -40.0), tone(0.01, -5.0, 1000.0), tone(0.5, -40.0)]
    y = make_prompts.level_to(x, -16.0)
    assert y.dtype == np.int16
    assert active_level_dbm0(y) == pytest.approx(-16.0, abs=0.15)
    assert np.max(np.abs(y.astype(int))) <= make_prompts.LIMIT_CEIL


@pytest.mark.skipif(shutil.which("espeak-ng") is None or shutil.which("sox") is None,
                    reason="espeak-ng and sox are needed to author prompts")
def test_regenerating_gives_the_committed_prompts(tmp_path: Path):
    names = ["welcome", "n2", "yuan"]
    assert make_prompts.main(["--out", str(tmp_path), "--only", *names, "--no-moh"]) == 0
    cat = load_catalogue()
    for lang in cat.languages:
        for name in names:
            new, rate = sf.read(str(tmp_path / lang / f"{name}.wav"), dtype="int16")
            old, _ = sf.read(str(PROMPTS_DIR / lang / f"{name}.wav"), dtype="int16")
            assert rate == RATE
            assert abs(active_level_dbm0(new) - cat.level_dbm0) < 0.5
            # same synthesiser version: identical; another version: same length within 10 %
            assert abs(new.size - old.size) <= 0.1 * old.size, f"{lang}/{name}: regenerate the set"


def test_music_on_hold_is_what_make_moh_synthesises(tmp_path: Path):
    out = make_moh.make(tmp_path / "moh.wav")
    new, _ = sf.read(str(out), dtype="int16")
    old, _ = sf.read(str(PROMPTS_DIR / "moh" / "default.wav"), dtype="int16")
    assert new.size == old.size
    assert np.mean(new != old) < 0.001                   # float rounding may flip a rare sample
