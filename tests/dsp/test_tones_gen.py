"""ToneGenerator: every tone of every plan measured — frequency (FFT), level (dBm0), cadence to the sample."""
from __future__ import annotations

import numpy as np
import pytest

from dsp import units
from dsp.checks import AudioArrayError
from dsp.tones import RATE, ToneGenerator, TonePlan, builtin_zones

ALL_TONES = [(z, t) for z in builtin_zones() for t in TonePlan.load(z).tones]


def render(plan: TonePlan, tone: str, seconds: float, block: int = 160, nchan: int = 1,
           chan: int = 0) -> np.ndarray:
    g = ToneGenerator(nchan, plan)
    g.play(chan, tone)
    n = int(round(seconds * RATE))
    out = np.zeros((nchan, n), np.int16)
    for b in range(0, n, block):
        blk = np.zeros((nchan, min(block, n - b)), np.int16)
        g.tx(blk)
        out[:, b:b + blk.shape[1]] = blk
    return out


def boundaries(cadence: tuple[float, ...], n: int) -> list[tuple[int, int, bool]]:
    """(start, end, on) sample ranges of the cadence over n samples."""
    if not cadence:
        return [(0, n, True)]
    lens = [max(1, round(d * RATE)) for d in cadence]
    out, pos, k = [], 0, 0
    while pos < n:
        end = min(n, pos + lens[k % len(lens)])
        out.append((pos, end, k % 2 == 0))
        pos, k = end, k + 1
    return out


def spectral_peaks(x: np.ndarray, k: int) -> list[float]:
    """The k strongest peak frequencies (Hz, ~0.5 Hz grid) of x."""
    w = np.hanning(len(x))
    nfft = 1 << int(np.ceil(np.log2(len(x) * 16)))
    mag = np.abs(np.fft.rfft(x * w, nfft))
    freqs = np.fft.rfftfreq(nfft, 1.0 / RATE)
    peaks = []
    m = mag.copy()
    guard = int(3 * RATE / len(x) * nfft / RATE) + 1  # ~3 bins of the segment's resolution
    for _ in range(k):
        i = int(np.argmax(m))
        peaks.append(float(freqs[i]))
        m[max(0, i - guard):i + guard] = 0
    return sorted(peaks)


@pytest.mark.parametrize("zone, tone", ALL_TONES)
def test_every_tone_frequency_level_and_cadence(zone, tone):
    plan = TonePlan.load(zone)
    t = plan[tone]
    seconds = 2.0 if t.continuous else min(2 * t.period + 0.05, 25.0)
    x = render(plan, tone, seconds)[0]
    segs = boundaries(t.cadence, len(x))
    ons = [(a, b) for a, b, on in segs if on]
    # cadence to the sample: off segments are exactly silent, on segments
    # carry signal right up to both edges
    for a, b, on in segs:
        if on:
            assert np.any(x[a:a + 3]) and np.any(x[b - 3:b]), (a, b)
        else:
            assert not np.any(x[a:b]), (a, b)
    # frequency: the longest full on-segment's spectral peaks
    a, b = max(ons, key=lambda ab: ab[1] - ab[0])
    seg = x[a:b].astype(np.float64)
    peaks = spectral_peaks(seg, len(t.freqs))
    tol = max(1.0, 0.6 * RATE / (b - a))      # grid/resolution-limited for short bursts
    for got, want in zip(peaks, sorted(t.freqs), strict=False):
        assert abs(got - want) <= tol, (peaks, t.freqs)
    # level: each frequency at the plan's level, so the on-signal is
    # level + 10 log10(number of frequencies). Whole segments only.
    whole = np.concatenate([x[a:b] for a, b in ons if b - a >= round(0.09 * RATE)])
    if len(t.freqs) > 1 and min(abs(f1 - f2) for f1 in t.freqs for f2 in t.freqs if f1 != f2) < 30:
        whole = x[: int(RATE * 1.0)]          # slow beat: average over whole beat periods
    want = t.level_dbm0 + 10 * np.log10(len(t.freqs))
    assert units.signal_dbm0(whole) == pytest.approx(want, abs=0.15)


def numpy_reference(plan: TonePlan, tone: str, n: int) -> np.ndarray:
    """Plain numpy rendering: phase f*i/8000 from the play() instant, on-segments only."""
    t = plan[tone]
    i = np.arange(n)
    peak = units.dbm0_to_peak(t.level_dbm0)
    y = sum(np.sin(2 * np.pi * f * i / RATE) for f in t.freqs) * peak
    mask = np.zeros(n, bool)
    for a, b, on in boundaries(t.cadence, n):
        mask[a:b] = on
    return np.where(mask, np.round(y), 0.0)


@pytest.mark.parametrize("zone, tone", [("cn", "busy"), ("cn", "special_information"),
                                        ("us", "ringback"), ("uk", "congestion"), ("us", "off_hook")])
def test_kernel_matches_numpy_reference(zone, tone):
    plan = TonePlan.load(zone)
    n = RATE * 3
    got = render(plan, tone, n / RATE, block=160)[0].astype(np.float64)
    ref = numpy_reference(plan, tone, n)
    # float32 sine of a float64 phase vs numpy's float64 sine: rounding only
    assert np.max(np.abs(got - ref)) <= 1


def test_phase_continuous_whatever_the_block_size():
    plan = TonePlan.load("uk")
    ref = render(plan, "ringback", 4.0, block=160)
    for block in (1, 7, 80, 333, 4000):
        assert np.array_equal(render(plan, "ringback", 4.0, block=block), ref), block


def test_channels_are_independent_and_batched():
    plan = TonePlan.load("cn")
    names = ["dial", "busy", "ringback", "congestion"]
    g = ToneGenerator(5, plan)
    for c, name in enumerate(names):
        g.play(c, name)
    out = np.zeros((5, 8000), np.int16)
    g.tx(out)
    for c, name in enumerate(names):
        assert np.array_equal(out[c], render(plan, name, 1.0)[0])
    assert not out[4].any()                    # channel 4 plays nothing
    assert g.playing(1) == "busy" and g.playing(4) is None


def test_adds_into_the_block_with_saturation():
    plan = TonePlan.load("cn")
    g = ToneGenerator(1, plan)
    g.play(0, "dial", level_dbm0=3.0)
    base = np.full((1, 800), 30000, np.int16)
    g.tx(base)
    tone = numpy_reference(TonePlan.from_toml(
        '[z.tones]\ndial = { freqs = [450], cadence = [], level_dbm0 = 3.0 }', "z"), "dial", 800)
    want = np.clip(30000 + tone, -32768, 32767)
    assert base.max() == 32767                          # clipped, never wrapped
    assert np.max(np.abs(base[0] - want)) <= 1
    g2 = ToneGenerator(1, plan)
    g2.play(0, "dial")
    mixed = np.full((1, 800), 100, np.int16)
    g2.tx(mixed)
    assert np.array_equal(mixed[0] - 100, render(plan, "dial", 0.1)[0])


def test_stop_and_restart_from_the_beginning_of_the_cadence():
    plan = TonePlan.load("cn")
    g = ToneGenerator(1, plan)
    g.play(0, "busy")
    a = np.zeros((1, 1000), np.int16)
    g.tx(a)
    g.stop(0)
    b = np.zeros((1, 1000), np.int16)
    g.tx(b)
    assert not b.any()
    g.play(0, "busy")
    c = np.zeros((1, 1000), np.int16)
    g.tx(c)
    assert np.array_equal(a, c)


def test_non_contiguous_out_is_filled():
    plan = TonePlan.load("eu")
    g = ToneGenerator(2, plan)
    g.play(1, "dial")
    big = np.zeros((2, 1000), np.int16)
    g.tx(big[:, 100:260])
    assert np.array_equal(big[1, 100:260], render(plan, "dial", 0.02)[0])
    assert not big[:, :100].any() and not big[:, 260:].any()


def test_errors_are_clear():
    plan = TonePlan.load("cn")
    g = ToneGenerator(2, plan)
    with pytest.raises(ValueError, match="channel 2 out of range 0..1"):
        g.play(2, "busy")
    with pytest.raises(KeyError, match="zone 'cn' has no tone 'bsy'"):
        g.play(0, "bsy")
    with pytest.raises(AudioArrayError, match=r"ToneGenerator.tx: expected int16\[2, n\]"):
        g.tx(np.zeros((2, 160), np.float32))
    with pytest.raises(AudioArrayError, match="3 channels, expected 2"):
        g.tx(np.zeros((3, 160), np.int16))
    ro = np.zeros((2, 160), np.int16)
    ro.flags.writeable = False
    with pytest.raises(AudioArrayError, match="ToneGenerator.tx: the output array is read-only"):
        g.tx(ro)
