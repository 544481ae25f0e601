"""The arithmetic of the tools without a board: timing analysis, tone measurement."""
from __future__ import annotations

import math

import numpy as np
import pytest

from boarddrv.tools import loopback, timing

PERIOD = 160 / 8000


def test_analyze_perfect_clock():
    ticks = list(range(0, 251))
    times = [100.0 + t * PERIOD for t in ticks]
    rep = timing.analyze(ticks, times, 160, clock="realtime")
    assert rep.ticks == 250 and rep.missed_ticks == 0 and rep.late_ticks == 0
    assert len(rep.passes) == 5
    assert all(p == pytest.approx(100.0) for p in rep.passes)
    assert rep.cumulative == pytest.approx(100.0)
    assert rep.mean_interval_ms == pytest.approx(20.0)
    assert rep.worst_jitter_ms == pytest.approx(0.0, abs=1e-6)
    assert rep.x_realtime == pytest.approx(1.0)


def test_analyze_slow_clock_accuracy_like_dahdi_test():
    # every tick 0.1% long: each one-second pass reads 99.9 %
    ticks = list(range(0, 101))
    times = [t * PERIOD * 1.001 for t in ticks]
    rep = timing.analyze(ticks, times, 160)
    assert len(rep.passes) == 2
    assert rep.passes[0] == pytest.approx(99.9)
    assert rep.best == pytest.approx(99.9) and rep.worst == pytest.approx(99.9)
    assert rep.cumulative == pytest.approx(99.9)
    assert rep.mean_interval_ms == pytest.approx(20.02)


def test_analyze_jitter_late_and_missed():
    ticks = list(range(0, 60))
    times = [t * PERIOD for t in ticks]
    times[10] += 0.015          # 15 ms late: more than half a block -> late, jitter 15 ms
    times[30] += 0.005          # 5 ms late: jitter only
    del ticks[40], times[40]    # the host never saw tick 40
    rep = timing.analyze(ticks, times, 160)
    assert rep.late_ticks == 1
    assert rep.worst_jitter_ms == pytest.approx(15.0)
    assert rep.missed_ticks == 1
    assert rep.ticks == 59


def test_analyze_lockstep_measures_throughput_only():
    ticks = list(range(0, 1001))
    times = [t * 1e-4 for t in ticks]         # 10 000 ticks/s
    rep = timing.analyze(ticks, times, 160, clock="lockstep")
    assert rep.ticks_per_s == pytest.approx(10000.0)
    assert rep.x_realtime == pytest.approx(200.0)
    assert rep.passes == [] and rep.cumulative is None


def test_analyze_rejects_mismatched_input():
    with pytest.raises(ValueError, match="differ in length"):
        timing.analyze([1, 2], [0.0], 160)


def test_level_constant_matches_dsp_units():
    from dsp import units
    assert loopback.DBM0_REF_RMS == pytest.approx(units.DBM0_REF_RMS)


@pytest.mark.parametrize("freq,level", [(1004.0, -10.0), (450.0, -20.0), (3400.0, 0.0), (697.3, -30.0)])
def test_sine_and_measurement(freq, level):
    x = loopback.sine(freq, level, 8000)
    assert loopback.dbm0(x) == pytest.approx(level, abs=0.02)
    f, sinad = loopback.frequency(x)
    assert f == pytest.approx(freq, abs=0.05)
    assert sinad > 40


def test_sine_is_phase_continuous_across_blocks():
    whole = loopback.sine(1004, -10, 800)
    parts = np.concatenate([loopback.sine(1004, -10, 160, s) for s in range(0, 800, 160)])
    assert np.array_equal(whole, parts)


def test_sine_refuses_clipping_level():
    with pytest.raises(ValueError, match="clips"):
        loopback.sine(1000, 4.0, 10)


def test_sinad_drops_with_noise():
    rng = np.random.default_rng(1)
    x = loopback.sine(1004, -10, 8000).astype(np.float64) + rng.normal(0, 800, 8000)
    f, sinad = loopback.frequency(x)
    assert f == pytest.approx(1004, abs=0.5)
    assert 5 < sinad < 25


def test_measure_reports_silence_and_tolerances():
    m = loopback.measure(np.zeros(8000, np.int16), 1004, -10, None, 1.0, 2.0)
    assert m["problem"].startswith("nothing came back") and m["level_dbm0"] == -math.inf
    x = loopback.sine(1010, -12, 8000)
    m = loopback.measure(x, 1004, -10, 1, 1.0, 2.0)
    assert "level off by -2.00 dB" in m["problem"] and "frequency off by +6.00 Hz" in m["problem"]
    m = loopback.measure(loopback.sine(1004, -10.3, 8000), 1004, -10, 1, 1.0, 2.0)
    assert m["problem"] is None and m["freq_diff_hz"] == pytest.approx(0, abs=0.05)
