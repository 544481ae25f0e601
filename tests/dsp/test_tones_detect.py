"""CallProgressDetector: kernels against numpy references, then the tones of every plan
named (and told apart) under jitter, level and noise, with the China busy-tone deadline."""
from __future__ import annotations

import math

import numpy as np
import pytest

from dsp import _tones
from dsp.checks import AudioArrayError
from dsp.tones import OTHER, RATE, SILENCE, CallProgressDetector, ToneEvent, ToneGenerator, TonePlan, builtin_zones

from tonesig import noise, run_detector, segments, silence, synth, to_int16

DETECTABLE = [(z, n) for z in builtin_zones() for n, t in TonePlan.load(z).tones.items() if t.detect]


def tone_signal(plan: TonePlan, name: str, seconds: float, *, level: float | None = None,
                jitter: float = 0.0, seed: int = 0, lead: float = 0.5, tail: float = 0.0,
                freq_scale: float = 1.0) -> np.ndarray:
    t = plan[name]
    rng = np.random.default_rng(seed)
    segs = segments(t.cadence, seconds, jitter, rng)
    x = synth(tuple(f * freq_scale for f in t.freqs), t.level_dbm0 if level is None else level,
              segs, rng)
    x = np.concatenate([silence(lead), x, silence(tail)])
    n = int(round((lead + seconds + tail) * RATE))
    return np.pad(x, (0, max(0, n - len(x))))[:n]


def named(events) -> list[str]:
    return [ev.tone for ev, _ in events if ev.end is None and ev.tone not in ("silence", "unknown")]


# ---------------------------------------------------------------- kernels

def goertzel_reference(x: np.ndarray, freqs: list[float], n: int) -> np.ndarray:
    """[nframes, 2 nf + 1, nchan]: re, im of each frame's DFT at f times e^{iw(n-1)}
    (the phase the Goertzel recursion ends with), then the frame energy; plain numpy."""
    nchan, total = x.shape
    nfr = total // n
    out = np.zeros((nfr, 2 * len(freqs) + 1, nchan))
    i = np.arange(n)
    for j in range(nfr):
        fr = x[:, j * n:(j + 1) * n].astype(np.float64)
        for k, f in enumerate(freqs):
            X = fr @ np.exp(-2j * np.pi * f * (i - (n - 1)) / RATE)
            out[j, 2 * k], out[j, 2 * k + 1] = X.real, X.imag
        out[j, -1] = (fr ** 2).sum(axis=1)
    return out


def test_goertzel_kernel_matches_numpy_across_block_boundaries():
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((3, 1000)) * 3000).astype(np.int16)
    x[1] = to_int16(synth((450,), -10, [1000 / RATE]))
    freqs = [350.0, 450.0, 950.0]
    coef = np.array([2 * math.cos(2 * math.pi * f / RATE) for f in freqs], np.float32)
    sinw = np.array([math.sin(2 * math.pi * f / RATE) for f in freqs], np.float32)
    s1 = np.zeros((3, 3), np.float32)
    s2 = np.zeros((3, 3), np.float32)
    en = np.zeros(3, np.float32)
    pos, got = 0, []
    for a, b in [(0, 77), (77, 400), (400, 401), (401, 1000)]:
        xt = np.ascontiguousarray(x[:, a:b].T, dtype=np.float32)
        out = np.zeros((10, 7, 3), np.float32)
        nfr, pos = _tones.goertzel_frames(xt, coef, sinw, s1, s2, en, pos, 160, out)
        got.append(out[:nfr])
    got = np.concatenate(got)
    ref = goertzel_reference(x, freqs, 160)
    assert got.shape == ref.shape == (6, 7, 3)
    np.testing.assert_allclose(got[:, -1], ref[:, -1], rtol=1e-5)
    scale = np.abs(ref[:, :-1]).max()
    np.testing.assert_allclose(got[:, :-1], ref[:, :-1], atol=scale * 1e-4)


def segment_reference(cls: np.ndarray, energy: np.ndarray, debounce: int,
                      milestone: dict[int, int]):
    """Plain Python run-length segmentation: runs from the class sequence, then
    each run's energy = the frames from its start up to the next run's start."""
    nfr, nchan = cls.shape
    events = []
    for c in range(nchan):
        cur, start, cand, cand_start, cand_len, done = SILENCE, 0, 0, 0, 0, False
        for j in range(nfr):
            k = int(cls[j, c])
            if k == cur:
                cand_len = 0
            else:
                if cand_len > 0 and k == cand:
                    cand_len += 1
                else:
                    cand, cand_start, cand_len = k, j, 1
                if cand_len >= debounce:
                    seg = energy[start:cand_start, c]
                    events.append((j, c, k, cand_start, 0, float(seg.sum()), len(seg)))
                    cur, start, cand_len, done = k, cand_start, 0, False
            m = milestone.get(cur, 0)
            if not done and m and j + 1 - start >= m:
                done = True
                events.append((j, c, cur, start, 1, 0.0, 0))
    return [e[1:] for e in sorted(events, key=lambda e: (e[0], e[1], e[4]))]


def test_segment_kernel_matches_python_reference():
    rng = np.random.default_rng(5)
    # runs of random classes with random lengths, glitches included
    cols = []
    for _c in range(4):
        seq = []
        while len(seq) < 600:
            seq += [int(rng.integers(-2, 3))] * int(rng.integers(1, 30))
        cols.append(seq[:600])
    cls = np.array(cols, np.int32).T.copy()
    milestone = {SILENCE: 25, OTHER: 10, 0: 20, 2: 15}
    ms = np.zeros(3 + 2, np.int32)
    for k, v in milestone.items():
        ms[k + 2] = v
    energy = rng.integers(0, 1000, size=cls.shape).astype(np.float32)
    state = dict(cur=np.full(4, SILENCE, np.int32), cur_start=np.zeros(4, np.int64),
                 cand=np.zeros(4, np.int32), cand_start=np.zeros(4, np.int64),
                 cand_len=np.zeros(4, np.int32), done=np.zeros(4, np.uint8),
                 run_e=np.zeros(4), run_n=np.zeros(4, np.int32), cand_e=np.zeros(4))
    got = []
    frame0 = 0
    for a, b in [(0, 13), (13, 300), (300, 600)]:
        ev = np.zeros((2 * (b - a) * 4, 4), np.int64)
        ev_e = np.zeros((2 * (b - a) * 4, 2))
        n = _tones.segment_frames(np.ascontiguousarray(cls[a:b]), np.ascontiguousarray(energy[a:b]),
                                  frame0, state["cur"], state["cur_start"], state["cand"],
                                  state["cand_start"], state["cand_len"], state["done"],
                                  state["run_e"], state["run_n"], state["cand_e"], 2, ms, 2,
                                  ev, ev_e)
        got += [tuple(int(v) for v in e) + (float(x[0]), int(x[1])) for e, x in zip(ev[:n], ev_e[:n], strict=False)]
        frame0 += b - a
    ref = segment_reference(cls, energy, 2, milestone)
    assert [g[:4] for g in got] == [r[:4] for r in ref]
    assert [g[5] for g in got] == [r[5] for r in ref]          # frames per run, exactly
    np.testing.assert_allclose([g[4] for g in got], [r[4] for r in ref])


def test_classify_is_the_documented_rule():
    """Frames of known signals, one per channel, through the kernel and classify()."""
    plan = TonePlan.load("uk")
    d = CallProgressDetector(6, plan)
    rng = np.random.default_rng(9)
    sec = 0.1                                                # 5 frames
    rows = [synth((400,), -20, [sec], rng),                  # busy's signature
            synth((400, 450), -20, [sec], rng),              # ringback's
            synth((400 * 1.035,), -20, [sec], rng),          # 3.5 % off: not a plan tone
            synth((400,), -20, [sec], rng) + noise(sec, -21, rng),   # too little at 400 Hz
            noise(sec, -20, rng),
            noise(sec, -60, rng)]                            # quiet
    x = to_int16(np.stack(rows))
    nf = len(d.freqs)
    out = np.zeros((5, 2 * nf + 1, 6), np.float32)
    nfr, _ = _tones.goertzel_frames(np.ascontiguousarray(x.T, dtype=np.float32), d._coef,
                                    d._sinw, d._s1, d._s2, d._energy, 0, 160, out)
    cls = d.classify(out[:nfr])
    sig = {s: i for i, s in enumerate(d._sigs)}
    want = [sig[(400.0,)], sig[(400.0, 450.0)], OTHER, OTHER, OTHER, SILENCE]
    # frame 0 has no previous frame to check the frequency against
    assert cls[1:].tolist() == [want] * 4


# ---------------------------------------------------------------- naming tones

def _expect_only(events, tone: str) -> None:
    names = named(events)
    assert names and set(names) == {tone}, names


@pytest.mark.parametrize("zone, tone", DETECTABLE)
def test_every_plan_tone_is_named_from_the_generator(zone, tone):
    """Generator -> detector, one tone per channel, all of a plan's tones at once."""
    plan = TonePlan.load(zone)
    t = plan[tone]
    seconds = 4.0 if t.continuous else max(3.0, 1.5 * t.period + 0.5)
    g = ToneGenerator(1, plan)
    n = int(seconds * RATE)
    tail = max(t.cadence[1::2], default=0.0) * 1.25 + 1.0    # long enough to see it end
    x = np.zeros((1, n + int(tail * RATE)), np.int16)
    g.play(0, tone)
    g.tx(x[:, RATE // 2:RATE // 2 + n])
    d = CallProgressDetector(1, plan)
    ev = run_detector(d, x)
    _expect_only(ev, tone)
    onset = [(e, at) for e, at in ev if e.tone == tone and e.end is None][0]
    assert abs(onset[0].start - RATE // 2) <= 2 * d.frame_len       # start within 2 frames
    ends = [e for e, _ in ev if e.tone == tone and e.end is not None]
    assert len(ends) == 1 and ends[0].start == onset[0].start
    # the tone ends where the generator's last "on" ended (it was cut at n)
    gen = x[0, RATE // 2:RATE // 2 + n]
    last_on = RATE // 2 + int(np.nonzero(gen)[0][-1]) + 1
    assert abs(ends[0].end - last_on) <= 2 * d.frame_len


@pytest.mark.parametrize("zone, tones", [
    ("cn", ["busy", "congestion", "ringback", "dial", "call_waiting", "special_information"]),
    ("eu", ["busy", "congestion", "ringback", "dial", "call_waiting"]),
    ("us", ["busy", "congestion", "ringback", "dial"]),
    ("uk", ["busy", "congestion", "ringback", "dial", "number_unobtainable"]),
])
@pytest.mark.parametrize("jitter", [0.1, 0.15])
def test_jittered_cadences_are_told_apart(zone, tones, jitter):
    """Independent synthesis, every segment ±jitter, random phases; several seeds."""
    plan = TonePlan.load(zone)
    for seed in range(3):
        chans = [tone_signal(plan, t, 12.0, jitter=jitter, seed=seed * 10 + i)
                 for i, t in enumerate(tones)]
        n = max(len(c) for c in chans)
        x = to_int16(np.stack([np.pad(c, (0, n - len(c))) for c in chans]))
        ev = run_detector(CallProgressDetector(len(tones), plan), x)
        for c, t in enumerate(tones):
            got = [e.tone for e, _ in ev if e.chan == c and e.end is None
                   and e.tone not in ("silence", "unknown")]
            assert got == [t], (zone, t, seed, got)


@pytest.mark.parametrize("level", [-40, -35, -30, -25, -20, -15, -10, -5, 0])
def test_levels_from_minus_40_to_0_dbm0(level):
    plan = TonePlan.load("cn")
    tones = ["busy", "congestion", "ringback", "dial", "record_warning"]
    chans = [tone_signal(plan, t, 8.0, level=level, seed=i) for i, t in enumerate(tones)]
    x = to_int16(np.stack(chans))
    ev = run_detector(CallProgressDetector(len(tones), plan), x)
    for c, t in enumerate(tones):
        got = [e.tone for e, _ in ev if e.chan == c and e.end is None and e.tone != "silence"]
        assert got == [t], (level, t, got)


@pytest.mark.parametrize("snr_db", [20, 15, 10])
def test_in_white_noise(snr_db):
    plan = TonePlan.load("cn")
    rng = np.random.default_rng(snr_db)
    tones = ["busy", "congestion", "ringback", "dial"]
    chans = []
    for i, t in enumerate(tones):
        s = tone_signal(plan, t, 8.0, level=-20, seed=i, jitter=0.1)
        chans.append(s + noise(len(s) / RATE, -20 - snr_db, rng))
    x = to_int16(np.stack(chans))
    ev = run_detector(CallProgressDetector(len(tones), plan), x)
    for c, t in enumerate(tones):
        got = [e.tone for e, _ in ev if e.chan == c and e.end is None
               and e.tone not in ("silence", "unknown")]
        assert got == [t], (snr_db, t, got)


@pytest.mark.parametrize("offset_pct", [-1.5, 1.5])
def test_frequency_offsets_of_a_carrier(offset_pct):
    for zone in ("cn", "us"):
        plan = TonePlan.load(zone)
        x = to_int16(tone_signal(plan, "busy", 5.0, freq_scale=1 + offset_pct / 100)[None, :])
        _expect_only(run_detector(CallProgressDetector(1, plan), x), "busy")


@pytest.mark.parametrize("offset_hz", [-12.0, -10.0, 10.0, 12.0])
def test_a_tone_off_frequency_is_not_a_plan_tone(offset_hz):
    """440 Hz (A4, music) played with China's busy cadence is not China's 450 Hz busy."""
    plan = TonePlan.load("cn")
    x = to_int16(tone_signal(plan, "busy", 5.0, freq_scale=(450 + offset_hz) / 450)[None, :])
    assert named(run_detector(CallProgressDetector(1, plan), x)) == []


# ---------------------------------------------------------------- stutter dial

@pytest.mark.parametrize("level, offset_pct, snr_db", [
    (-10, 0.0, None), (-40, 0.0, None), (0, 0.0, None), (-10, -1.5, None), (-10, 1.5, None),
    (-20, 0.0, 15), (-20, 1.0, 10)])
def test_china_stutter_dial_is_named(level, offset_pct, snr_db):
    """cn stutter dial (450 + 425 Hz, one 20 ms bin apart: measured over 80 ms), independent
    synthesis with random phases, over levels, a carrier's frequency offset and white noise;
    named from within 2 frames of its start, ended within 2 frames of its end."""
    plan = TonePlan.load("cn")
    rng = np.random.default_rng(abs(int(level * 10 + offset_pct * 100)))
    for seed in range(3):
        x = tone_signal(plan, "stutter_dial", 4.0, level=level, seed=seed, lead=0.537, tail=1.5,
                        freq_scale=1 + offset_pct / 100)
        if snr_db is not None:
            x = x + noise(len(x) / RATE, level - snr_db, rng)
        d = CallProgressDetector(1, plan)
        ev = run_detector(d, to_int16(x[None, :]))
        tones = [e for e, _ in ev if e.tone not in ("silence", "unknown")]
        assert [e.tone for e in tones] == ["stutter_dial"] * 2, (seed, tones)
        assert abs(tones[0].start - 0.537 * RATE) <= 2 * d.frame_len
        assert abs(tones[1].end - 4.537 * RATE) <= 2 * d.frame_len


@pytest.mark.parametrize("freqs", [(450,), (425,), (437.5,), (450, 475), (425, 400), (450, 412),
                                   (450, 440)])
def test_china_stutter_dial_rejects_other_tones(freqs):
    """Plain dial tone (450), one frequency of the pair, their midpoint, a pair 25 Hz apart at
    other frequencies, a pair 38 Hz or 10 Hz apart (music, a mistuned line): never stutter dial."""
    plan = TonePlan.load("cn")
    x = np.concatenate([silence(0.3), synth(freqs, -10, [5.0], np.random.default_rng(len(freqs))),
                        silence(1.0)])
    ev = run_detector(CallProgressDetector(1, plan), to_int16(x[None, :]))
    assert "stutter_dial" not in named(ev)
    if freqs == (450,):
        assert named(ev) == ["dial"]


def test_china_stutter_dial_needs_both_tones_near_equal():
    """425 Hz 20 dB under 450 Hz (a leak, not the tone pair): dial tone, not stutter dial;
    6 dB under: still the pair (the twist a line may add)."""
    plan = TonePlan.load("cn")
    rng = np.random.default_rng(3)
    for weak_db, want in ((20, "dial"), (6, "stutter_dial")):
        x = synth((450,), -10, [5.0], rng) + synth((425,), -10 - weak_db, [5.0], rng)
        ev = run_detector(CallProgressDetector(1, plan), to_int16(np.concatenate([silence(0.3), x])[None]))
        assert named(ev) == [want], (weak_db, named(ev))


def test_stutter_dial_cadences_of_the_us_plan_are_named_under_jitter():
    """us stutter dial (350 + 440 Hz, 0.1 / 0.1 s): ±10 % jitter, random phases; not dial tone."""
    plan = TonePlan.load("us")
    for seed in range(3):
        x = tone_signal(plan, "stutter_dial", 3.0, jitter=0.1, seed=seed)
        ev = run_detector(CallProgressDetector(1, plan), to_int16(x[None, :]))
        assert named(ev) == ["stutter_dial"], (seed, named(ev))


def detection_delays(zone: str, tone: str, trials: int, jitter: float,
                     random_phase: bool = True) -> list[float]:
    """Seconds from the tone's start (a random point in its cadence, or its
    beginning) to its naming. Also used to measure the figures in docs/dsp-tones.md."""
    plan = TonePlan.load(zone)
    t = plan[tone]
    rng = np.random.default_rng(11)
    delays = []
    for k in range(trials):
        phase = rng.uniform(0, t.period) if (t.cadence and random_phase) else 0.0
        segs = segments(t.cadence, phase + max(8.0, 1.5 * t.period), jitter, rng)
        # drop the first `phase` seconds: the line starts mid-cadence
        x = synth(t.freqs, t.level_dbm0, segs, rng)[int(phase * RATE):]
        lead = rng.uniform(0.3, 1.0)
        sig = to_int16(np.concatenate([silence(lead), x])[None, :])
        ev = run_detector(CallProgressDetector(1, plan), sig, block=160)
        at = [a for e, a in ev if e.tone == tone and e.end is None]
        assert at, (zone, tone, k, [e for e, _ in ev])
        delays.append(at[0] / RATE - lead)
    return delays


def test_china_busy_is_named_within_three_cadences():
    """The busy-disconnect deadline: 3 x (0.35 + 0.35) = 2.1 s, from any point of the cadence."""
    delays = detection_delays("cn", "busy", 20, jitter=0.15)
    assert max(delays) <= 2.1, delays


def test_busy_after_speech_like_noise_and_silence_reporting():
    """Far end talks (noise bursts), hangs up: busy follows; after it stops, silence."""
    plan = TonePlan.load("cn")
    rng = np.random.default_rng(2)
    talk = np.concatenate([noise(0.6, -20, rng), silence(0.15), noise(0.8, -18, rng)])
    busy = tone_signal(plan, "busy", 4.0, lead=0.0)
    x = to_int16(np.concatenate([talk, busy, silence(7.0)])[None, :])
    d = CallProgressDetector(1, plan)
    ev = run_detector(d, x)
    kinds = [(e.tone, e.end is None) for e, _ in ev]
    assert ("unknown", True) in kinds and ("busy", True) in kinds
    b0 = len(talk)
    onset = [(e, a) for e, a in ev if e.tone == "busy" and e.end is None][0]
    assert abs(onset[0].start - b0) <= 2 * d.frame_len and onset[1] - b0 <= 2.1 * RATE
    sil = [e for e, _ in ev if e.tone == "silence" and e.end is None]
    busy_end = [e for e, _ in ev if e.tone == "busy" and e.end is not None][0].end
    assert len(sil) == 1 and sil[0].start == busy_end
    # unknown opened before busy was named and closed when the tone began
    unk = [e for e, _ in ev if e.tone == "unknown" and e.end is not None]
    assert unk and all(e.end <= b0 + 2 * d.frame_len for e in unk)


def test_ringback_then_answer_ends_ringback():
    plan = TonePlan.load("cn")
    rng = np.random.default_rng(4)
    # two cycles, then the callee answers half-way through the third "on"
    ring = tone_signal(plan, "ringback", 10.5, lead=0.2)
    x = to_int16(np.concatenate([ring, noise(3.0, -20, rng)])[None, :])
    ev = run_detector(CallProgressDetector(1, plan), x)
    assert named(ev) == ["ringback"]
    end = [e for e, _ in ev if e.tone == "ringback" and e.end is not None]
    assert end and abs(end[0].end - int(10.7 * RATE)) <= 320


def test_events_do_not_depend_on_block_size():
    plan = TonePlan.load("uk")
    tones = ["ringback", "busy", "congestion"]
    x = to_int16(np.stack([tone_signal(plan, t, 6.0, seed=i, jitter=0.1, tail=6.0)
                           for i, t in enumerate(tones)]))
    ref = [e for e, _ in run_detector(CallProgressDetector(3, plan), x, block=160)]
    for block in (80, 333, 1000):
        got = [e for e, _ in run_detector(CallProgressDetector(3, plan), x, block=block)]
        key = lambda e: (e.chan, e.start, e.tone, -1 if e.end is None else e.end)  # noqa: E731
        assert sorted(got, key=key) == sorted(ref, key=key), block


def test_silence_is_reported_after_silence_s_and_closed():
    plan = TonePlan.load("eu")
    x = to_int16(np.concatenate([silence(6.0), tone_signal(plan, "dial", 3.0, lead=0)])[None, :])
    ev = run_detector(CallProgressDetector(1, plan), x)
    assert ev[0][0] == ToneEvent(0, "silence", 0, None) and ev[0][1] == 5 * RATE
    assert ev[1][0] == ToneEvent(0, "silence", 0, 6 * RATE)
    assert named(ev) == ["dial"]


def test_spandsp_tone_generator_output_is_named():
    """Peer cross-check: spandsp's tone_gen renders the tones, we name them."""
    import spandsp_tones
    spandsp_tones.require()
    cases = [("cn", "busy"), ("cn", "congestion"), ("cn", "ringback"), ("cn", "dial"),
             ("us", "busy"), ("us", "ringback"), ("us", "congestion"), ("us", "dial"),
             ("uk", "ringback"), ("uk", "congestion"), ("eu", "busy"), ("eu", "congestion")]
    for zone, tone in cases:
        plan = TonePlan.load(zone)
        t = plan[tone]
        y = spandsp_tones.tone_gen(t.freqs, t.level_dbm0, t.cadence, 9.0)
        x = to_int16(np.concatenate([silence(0.4), y.astype(np.float64)])[None, :])
        ev = run_detector(CallProgressDetector(1, plan), x)
        assert named(ev) == [tone], (zone, tone, named(ev))


def test_input_errors():
    d = CallProgressDetector(2, TonePlan.load("cn"))
    with pytest.raises(AudioArrayError, match=r"CallProgressDetector.rx: expected int16\[2, n\]"):
        d.rx(np.zeros((2, 160)))
    with pytest.raises(AudioArrayError, match="1 channels, expected 2"):
        d.rx(np.zeros((1, 160), np.int16))
    assert d.rx(np.zeros((2, 0), np.int16)) == []
    with pytest.raises(ValueError, match="nchan"):
        CallProgressDetector(0, TonePlan.load("cn"))
