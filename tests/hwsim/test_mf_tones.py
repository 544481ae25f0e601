"""hwsim's own MF R2 tones (hwsim.r2mf): every signal both ways, what is not a signal."""
from __future__ import annotations

import numpy as np
import pytest

from hwsim.r2mf import BACKWARD, FORWARD, LOOP, MfDetector, mf_tone

from sigtools import peak_freqs


@pytest.mark.parametrize("forward", [True, False])
def test_each_signal_is_its_q441_pair_and_is_detected_in_its_own_set_only(forward):
    freqs = FORWARD if forward else BACKWARD
    pairs = [(0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3), (0, 4), (1, 4), (2, 4), (3, 4),
             (0, 5), (1, 5), (2, 5), (3, 5), (4, 5)]          # Q.441 table 5
    own, other = MfDetector(forward), MfDetector(not forward)
    for n, (a, b) in enumerate(pairs, start=1):
        x = np.tile(mf_tone(n, forward), 8)
        assert sorted(peak_freqs(x, 2)) == [pytest.approx(min(freqs[a], freqs[b]), abs=3),
                                            pytest.approx(max(freqs[a], freqs[b]), abs=3)]
        assert set(own.frames(x[None, :]).ravel().tolist()) == {n}
        assert not other.frames(x[None, :]).any()


def test_the_tone_loops_without_a_seam_and_has_its_level():
    x = mf_tone(15, True)
    assert len(x) == LOOP
    looped = np.tile(x, 2).astype(np.float64)
    fresh = mf_tone(15, True, 2 * LOOP).astype(np.float64)
    assert np.max(np.abs(looped - fresh)) <= 1.0
    rms_each = np.sqrt(np.mean(fresh ** 2) / 2)
    from dsp.units import dbm0_to_rms
    assert 20 * np.log10(rms_each / dbm0_to_rms(0.0)) == pytest.approx(-11.0, abs=0.2)


def test_not_signals_noise_one_tone_dtmf_weak_and_twisted():
    rng = np.random.default_rng(3)
    det = MfDetector(True)
    t = np.arange(800) / 8000
    one = (3000 * np.sin(2 * np.pi * 1500 * t)).astype(np.int16)
    dtmf = (2000 * (np.sin(2 * np.pi * 697 * t) + np.sin(2 * np.pi * 1209 * t))).astype(np.int16)
    noise = rng.normal(0, 3000, 800).astype(np.int16)
    weak = (mf_tone(5, True, 800, level_dbm0=-40.0))
    twisted = (1000 * np.sin(2 * np.pi * 1380 * t) + 4000 * np.sin(2 * np.pi * 1500 * t)).astype(np.int16)
    near = (2000 * np.sin(2 * np.pi * 1380 * t) + 2000 * np.sin(2 * np.pi * 1560 * t)).astype(np.int16)
    for x in (one, dtmf, noise, weak, twisted, near):
        assert not det.frames(x[None, :]).any()
    ok = (1700 * np.sin(2 * np.pi * 1380 * t) + 3000 * np.sin(2 * np.pi * 1500 * t)).astype(np.int16)
    assert set(det.frames(ok[None, :]).ravel().tolist()) == {1}        # 5 dB of twist is still a signal


def test_start_and_end_need_two_frames_each_and_channels_are_apart():
    det = MfDetector(False)
    x = np.zeros((2, 1600), np.int16)
    x[0, 160:960] = mf_tone(6, False, 800)
    x[1, 400:480] = mf_tone(2, False, 80)                # one 10 ms frame: a glitch
    changes = []
    for k in range(10):
        changes += [(k, ch, s) for ch, s in det.feed([4, 9], x[:, k * 160:(k + 1) * 160])]
    assert changes == [(1, 4, 6), (6, 4, 0)]
