"""DSP throughput against spandsp, measured in the same run.

    .venv/bin/python bench/dsp.py [--seconds S] [--channels 1,32,1024] [--json]
    .venv/bin/python bench/dsp.py --q24      # the Q.24 sweep table of docs/dsp-dtmf.md
    .venv/bin/python bench/dsp.py --r2mf     # only the MF R2 rows (docs/dsp-r2mf.md)
    .venv/bin/python bench/dsp.py --commands # whole `voiceboard dtmf` runs vs spandsp on files

DTMF: channel-seconds of audio per CPU-second (time.process_time), ours
(one DtmfDetector over int16[nchan, 160] blocks, the media engine's tick)
and spandsp's (one dtmf_rx state per channel, each fed its whole signal
in one call so that cffi call overhead does not count against it).
Two signals: "noise" (band-limited noise at speech level, no digits: what
most channels carry most of the time) and "dtmf" (5 digits per second on
every channel over low noise: a worst case for event handling, ~10 events
per channel-second, each a Python object on our side).
G.711: encode/decode samples per CPU-second, ours vs spandsp's block calls.
MF R2: as DTMF, against spandsp's r2_mf_rx, at 1, 30 (one E1 span), 480
(16 spans) and 1,024 channels; "r2mf" carries a compelled-cycle signal
every 140 ms on every channel, half the channels on each set.

--commands: the archive commands as users run them, a process per run, on
generated files (in --workdir, default a temporary directory): a 256-channel
60 s file, a one-hour mono file, a directory of 1,000 short mono calls
(quiet-line noise; on one channel ten digits and a Bell 202 caller ID).
Ours is `voiceboard dtmf|cid PATH --json` with -j 1 and with every core;
spandsp's is this file's `--spandsp-scan` (the same files read in blocks by
soundfile, one dtmf_rx or one CLASS adsi_rx per channel, one process; our
`cid` also listens for V.23 and DTMF caller ID, spandsp's CLASS receiver
for Bell 202 only). Each row gives
channel-seconds of audio per CPU-second (the process and its workers),
wall seconds, peak memory (VmHWM of the process, largest ru_maxrss of its
workers) and the digits found (the same files: both should agree).

Timings are noisy on a shared machine; the ratios (same run, same data)
are the figures to read. Each measurement is the best of --repeat runs.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from functools import partial

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# this file is bench/dsp.py: keep its folder off the path so `dsp` is the package
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != HERE]
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests", "dsp"))

from dsp import g711  # noqa: E402
from dsp.dtmf import DtmfDetector, DtmfGenerator  # noqa: E402
from dsp.r2mf import R2MfGenerator, R2MfReceiver  # noqa: E402

import spandsp  # noqa: E402  (tests/dsp/spandsp.py: the one harness)

RATE = 8000
BLOCK = 160


def _cpu(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return max(best, 1e-9)


def make_signal(nchan: int, seconds: float, kind: str = "dtmf", seed: int = 7) -> np.ndarray:
    """int16[nchan, n]: "dtmf" digits (varying per channel) over low noise, or "noise"."""
    n = int(seconds * RATE)
    rng = np.random.default_rng(seed)
    out = np.empty((nchan, n), np.int16)
    for c0 in range(0, nchan, 64):  # in groups: float64 noise for 1,024 x 10 s is 650 MB
        c1 = min(nchan, c0 + 64)
        if kind == "noise":
            x = rng.normal(0.0, 1500.0, size=(c1 - c0, n + 1))
            out[c0:c1] = x[:, 1:] + 0.8 * x[:, :-1]  # low-passed: a speech-like tilt
        else:
            out[c0:c1] = rng.normal(0.0, 300.0, size=(c1 - c0, n))
    if kind == "noise":
        return out
    gen = DtmfGenerator(nchan, on_ms=60, off_ms=140)
    digits = "0123456789*#ABCD"
    for ch in range(nchan):
        gen.send(ch, "".join(rng.choice(list(digits), size=int(seconds * 5))))
    gen.tx(out)
    return out


def bench_dtmf(nchan: int, seconds: float, repeat: int, kind: str) -> dict:
    x = make_signal(nchan, seconds, kind)
    n = x.shape[1]
    blocks = [np.ascontiguousarray(x[:, i:i + BLOCK]) for i in range(0, n, BLOCK)]
    ndig = [0]

    def ours() -> None:
        det = DtmfDetector(nchan)
        k = 0
        for b in blocks:
            k += len(det.rx(b))
        ndig[0] = k // 2

    states = [spandsp.lib.dtmf_rx_init(spandsp.ffi.NULL, spandsp.ffi.NULL, spandsp.ffi.NULL)
              for _ in range(nchan)]
    rows = [spandsp.ffi.from_buffer("int16_t[]", x[ch]) for ch in range(nchan)]

    def theirs() -> None:
        for st, row in zip(states, rows, strict=True):
            spandsp.lib.dtmf_rx(st, row, n)

    t_ours = _cpu(ours, repeat)
    t_theirs = _cpu(theirs, repeat)
    for st in states:
        spandsp.lib.dtmf_rx_free(st)
    audio = nchan * n / RATE
    return {"signal": kind, "channels": nchan, "audio_channel_seconds": audio,
            "ours": audio / t_ours, "spandsp": audio / t_theirs,
            "ratio": t_theirs / t_ours, "digits_found_per_channel": ndig[0] / nchan}


def bench_g711(nsamples: int, repeat: int) -> list[dict]:
    rng = np.random.default_rng(3)
    x = (rng.normal(0, 3000, size=nsamples)).clip(-32768, 32767).astype(np.int16)
    out = []
    for law in ("alaw", "ulaw"):
        codes = getattr(g711, f"{law}_encode")(x)
        enc_o = _cpu(partial(getattr(g711, f"{law}_encode"), x), repeat)
        enc_s = _cpu(partial(getattr(spandsp, f"{law}_encode"), x), repeat)
        dec_o = _cpu(partial(getattr(g711, f"{law}_decode"), codes), repeat)
        dec_s = _cpu(partial(getattr(spandsp, f"{law}_decode"), codes), repeat)
        out.append({"op": f"{law} encode", "ours": nsamples / enc_o, "spandsp": nsamples / enc_s,
                    "ratio": enc_s / enc_o})
        out.append({"op": f"{law} decode", "ours": nsamples / dec_o, "spandsp": nsamples / dec_s,
                    "ratio": dec_s / dec_o})
    return out


# ---------------------------------------------------------------- whole commands on files

MAXRSS_WRAPPER = """
import resource, runpy, sys
target, args = sys.argv[1], sys.argv[2:]
try:
    if target == "voiceboard":
        from boarddrv.cli import main
        main(args)
    else:
        sys.argv = [target, *args]
        runpy.run_path(target, run_name="__main__")
except SystemExit:
    pass
# VmHWM: ru_maxrss of RUSAGE_SELF survives exec (it would carry the bench's own peak)
own = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0])
peak = max(own, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.stderr.write("MAXRSS_KB %d\\n" % peak)
"""


def write_noise_file(path: str, nchan: int, seconds: float, digits_on: int | None = None) -> None:
    """Quiet-line noise in blocks (never whole in memory); on one channel ten digits from 0 s
    and a Bell 202 caller ID at 3 s."""
    import soundfile as sf

    from dsp.callerid import callerid_audio
    rng = np.random.default_rng(11)
    total = int(seconds * RATE)
    step = max(RATE, (1 << 20) // nchan)
    gen = DtmfGenerator(nchan, on_ms=80, off_ms=120)
    cid = callerid_audio("5551234", "Bench")
    if digits_on is not None:
        gen.send(digits_on, "0123456789")
    with sf.SoundFile(path, "w", samplerate=RATE, channels=nchan, subtype="PCM_16", format="WAV") as f:
        for a in range(0, total, step):
            k = min(step, total - a)
            x = rng.normal(0, 30, (nchan, k)).astype(np.int16)
            gen.tx(x)
            lo, hi = max(a, 3 * RATE), min(a + k, 3 * RATE + len(cid))
            if digits_on is not None and lo < hi:
                x[digits_on, lo - a:hi - a] += cid[lo - 3 * RATE:hi - 3 * RATE]
            f.write(x.T)


def spandsp_scan(tool: str, paths: list[str]) -> int:
    """What `voiceboard dtmf|cid` does, with spandsp's receivers: files in 1 s blocks, one
    dtmf_rx (dtmf) or one CLASS adsi_rx (cid: Bell 202 only) per channel."""
    import soundfile as sf

    from dsp.archive import expand_paths

    import spandsp_adsi
    found = 0
    buf = spandsp.ffi.new("char[]", 256)
    for path in expand_paths(paths, "*.wav"):
        with sf.SoundFile(path) as f:
            if tool == "dtmf":
                states = [spandsp.lib.dtmf_rx_init(spandsp.ffi.NULL, spandsp.ffi.NULL, spandsp.ffi.NULL)
                          for _ in range(f.channels)]
            else:
                adsi = [spandsp_adsi.AdsiRx("class") for _ in range(f.channels)]
            while True:
                x = f.read(RATE, dtype="int16", always_2d=True)
                if not len(x):
                    break
                x = np.ascontiguousarray(x.T)
                if tool == "dtmf":
                    for ch, st in enumerate(states):
                        spandsp.lib.dtmf_rx(st, spandsp.ffi.from_buffer("int16_t[]", x[ch]), x.shape[1])
                else:
                    for ch, rx in enumerate(adsi):
                        rx.rx(x[ch])
            if tool == "dtmf":
                for st in states:
                    found += spandsp.lib.dtmf_rx_get(st, buf, 255)
                    spandsp.lib.dtmf_rx_free(st)
            else:
                found += sum(len(rx.messages) for rx in adsi)
    print(f"{found} found")
    return 0


def _run_measured(argv: list[str]) -> dict:
    """CPU seconds (with workers), wall seconds, peak MB and stdout lines of one process."""
    import resource
    import subprocess
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-c", MAXRSS_WRAPPER, *argv], capture_output=True,
                       text=True, env=env, cwd=ROOT)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    peak = [int(x.split()[1]) for x in p.stderr.splitlines() if x.startswith("MAXRSS_KB ")]
    if not peak:
        raise RuntimeError(f"{argv}: {p.stderr}")
    found = [int(x.split()[0]) for x in p.stdout.splitlines() if x.endswith(" found")]
    return {"cpu_s": cpu, "wall_s": wall, "peak_mb": peak[0] / 1024,
            "found": found[0] if found else len(p.stdout.splitlines())}


def bench_commands(workdir: str, repeat: int, calls: int, hour_s: float,
                   tools: tuple[str, ...] = ("dtmf", "cid")) -> list[dict]:
    """Rows: input, runner, channel-seconds per CPU-second, wall, peak memory."""
    os.makedirs(workdir, exist_ok=True)
    wide = os.path.join(workdir, "wide-256ch-60s.wav")
    hour = os.path.join(workdir, "mono-1h.wav")
    calls_dir = os.path.join(workdir, f"calls-{calls}")
    if not os.path.exists(wide):
        write_noise_file(wide, 256, 60.0, digits_on=100)
    if not os.path.exists(hour):
        write_noise_file(hour, 1, hour_s, digits_on=0)
    if not os.path.isdir(calls_dir):
        os.makedirs(calls_dir)
        for k in range(calls):
            write_noise_file(os.path.join(calls_dir, f"call{k:04d}.wav"), 1, 20.0, digits_on=0)
    inputs = [("256 ch x 60 s", wide, 256 * 60.0), (f"mono {hour_s / 3600:g} h", hour, hour_s),
              (f"{calls} calls x 20 s", calls_dir, calls * 20.0)]
    cores = os.cpu_count() or 1
    rows = []
    for tool, (label, path, audio) in ((t, i) for t in tools for i in inputs):
        runs = {"ours -j 1": ["voiceboard", tool, path, "--json", "-j", "1"],
                f"ours -j {cores}": ["voiceboard", tool, path, "--json", "-j", str(cores)],
                "spandsp": [os.path.abspath(__file__), "--spandsp-scan", tool, path]}
        got = {}
        for name, argv in runs.items():
            best = None
            for _ in range(repeat):
                r = _run_measured(argv)
                best = r if best is None or r["cpu_s"] < best["cpu_s"] else best
            got[name] = best
        for name, r in got.items():
            rows.append({"tool": tool, "input": label, "runner": name, "audio_channel_s": audio,
                         "ch_s_per_cpu_s": audio / r["cpu_s"], "cpu_s": r["cpu_s"],
                         "wall_s": r["wall_s"], "peak_mb": r["peak_mb"], "found": r["found"],
                         "vs_spandsp_cpu": got["spandsp"]["cpu_s"] / r["cpu_s"]})
    return rows


# ---------------------------------------------------------------- Q.24 sweep table

ROWS = (697, 770, 852, 941)
COLS = (1209, 1336, 1477, 1633)
KEYS = "123A456B789C*0#D"


def _pair(rng, fl, fh, ll, lh, ms):
    from dsp.units import dbm0_to_peak
    t = np.arange(int(ms * 8))
    p = rng.uniform(0, 2 * np.pi, 2)
    return dbm0_to_peak(ll) * np.sin(2 * np.pi * fl / RATE * t + p[0]) + \
        dbm0_to_peak(lh) * np.sin(2 * np.pi * fh / RATE * t + p[1])


def _to_int16(parts, rng, noise_dbm0=None):
    from dsp.units import dbm0_to_rms
    x = np.concatenate([np.zeros(int(p * 8)) if np.isscalar(p) else p for p in parts])
    if noise_dbm0 is not None:
        x = x + rng.normal(0, dbm0_to_rms(noise_dbm0), len(x))
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def _score(sigs, want):
    n = max(len(s) for s in sigs) + 800
    x = np.zeros((len(sigs), n), np.int16)
    for i, sg in enumerate(sigs):
        x[i, :len(sg)] = sg
    det = DtmfDetector(len(sigs))
    got = [""] * len(sigs)
    for i in range(0, n, BLOCK):
        for e in det.rx(x[:, i:i + BLOCK]):
            if e.end is None:
                got[e.chan] += e.digit
    theirs = [spandsp.dtmf_detect(np.concatenate([sg, np.zeros(800, np.int16)]), chunk=4000)
              for sg in sigs]
    return (sum(g == w for g, w in zip(got, want, strict=True)),
            sum(g == w for g, w in zip(theirs, want, strict=True)),
            len(want))


def _digits(rng, ll=-10.0, lh=-10.0, ms=60.0, off=(0.0, 0.0), noise=None, reps=2):
    sigs, want = [], []
    for _ in range(reps):
        for k in range(16):
            r, c = divmod(k, 4)
            fl = ROWS[r] * (1 + off[0] / 100) + np.sign(off[0]) * 2.0 * (abs(off[0]) == 1.5)
            fh = COLS[c] * (1 + off[1] / 100) + np.sign(off[1]) * 2.0 * (abs(off[1]) == 1.5)
            sigs.append(_to_int16([50, _pair(rng, fl, fh, ll, lh, ms), 100], rng, noise))
            want.append(KEYS[k])
    return sigs, want


def q24_table() -> list[tuple[str, str, str, int, int, int]]:
    """(parameter, point, Q.24 requirement, ours detected, spandsp detected, cases).

    "detected" counts signals whose digit(s) came out right; where Q.24 says
    "reject", the right count is 0. Requirement "-" means Q.24 leaves the
    point free (between its operate and non-operate limits).
    """
    rng = np.random.default_rng(24)
    rows = []
    for off in (-5, -3.5, -3, -2.5, -2, -1.5, 1.5, 2, 2.5, 3, 3.5, 5):
        code = f"{off:+g} %" + (" + 2 Hz" if abs(off) == 1.5 else "")
        need = "accept" if abs(off) <= 1.5 else ("reject" if abs(off) >= 3.5 else "-")
        rows.append(("frequency offset, both tones", code, need, *_score(*_digits(rng, off=(off, off)))))
    for tw in (-6, -4, 0, 4, 8, 10, 12):
        need = "accept" if -4 <= tw <= 8 else "-"
        rows.append(("twist: high tone weaker by (dB)", f"{tw:+d}", need,
                     *_score(*_digits(rng, ll=-8.0, lh=-8.0 - tw))))
    for lv in (0, -10, -20, -30, -36, -40, -42, -45):
        need = "accept" if lv >= -36 else "-"
        rows.append(("level per tone (dBm0)", f"{lv}", need, *_score(*_digits(rng, ll=lv, lh=lv))))
    for ms in (20, 23, 26, 30, 40):
        need = "accept" if ms >= 40 else ("reject" if ms <= 23 else "-")
        rows.append(("tone duration (ms)", f"{ms}", need, *_score(*_digits(rng, ms=ms))))
    for pause in (10, 20, 40):
        sigs, want = [], []
        for k in range(16):
            r, c = divmod(k, 4)
            a = _pair(rng, ROWS[r], COLS[c], -10, -10, 40)
            b = _pair(rng, ROWS[r], COLS[c], -10, -10, 40)
            sigs.append(_to_int16([50, a, pause, b, 100], rng))
            want.append(KEYS[k] * 2)
        need = "accept" if pause >= 40 else "-"
        rows.append(("two equal 40 ms digits, pause (ms): both seen", f"{pause}", need,
                     *_score(sigs, want)))
    for snr in (20, 12, 10, 8, 6, 4):
        rows.append(("SNR, white noise 0-4 kHz, tones -10 dBm0 (dB)", f"{snr}", "-",
                     *_score(*_digits(rng, noise=-7.0 - snr))))
    return rows


# ---------------------------------------------------------------- MF R2 receive

R2MF_CHANNELS = (1, 30, 480, 1024)  # one channel, one E1 span, 16 spans, 1,024


def make_r2mf_signal(nchan: int, seconds: float, kind: str, seed: int = 11) -> np.ndarray:
    """int16[nchan, n]: "r2mf" compelled-cycle signals (70 ms on, 70 ms off, each
    channel on its own set: even forward, odd backward) over noise at -50 dBm0,
    or "noise" (speech-level, as make_signal)."""
    if kind == "noise":
        return make_signal(nchan, seconds, "noise", seed)
    n = int(seconds * RATE)
    rng = np.random.default_rng(seed)
    out = np.empty((nchan, n), np.int16)
    for c0 in range(0, nchan, 64):
        c1 = min(nchan, c0 + 64)
        out[c0:c1] = rng.normal(0.0, 30.0, size=(c1 - c0, n))
    forward = np.arange(nchan) % 2 == 0
    gen = R2MfGenerator(nchan, forward=forward)
    step = int(0.14 * RATE)
    for t in range(0, n - step + 1, step):
        for ch in range(nchan):
            gen.pulse(ch, int(rng.integers(1, 16)), ms=70)
        tick = np.zeros((nchan, step), np.int16)
        gen.tx(tick)
        out[:, t:t + step] += tick
    return out


def bench_r2mf(nchan: int, seconds: float, repeat: int, kind: str) -> dict:
    """Ours (one R2MfReceiver, 160-sample ticks) vs spandsp (one r2_mf_rx per channel, whole signal per call)."""
    x = make_r2mf_signal(nchan, seconds, kind)
    n = x.shape[1]
    forward = np.arange(nchan) % 2 == 0
    blocks = [np.ascontiguousarray(x[:, i:i + BLOCK]) for i in range(0, n, BLOCK)]
    found = [0]

    def ours() -> None:
        rx = R2MfReceiver(nchan, forward=forward)
        k = 0
        for b in blocks:
            k += len(rx.rx(b))
        found[0] = k // 2

    states = [spandsp.lib.r2_mf_rx_init(spandsp.ffi.NULL, int(forward[ch]), spandsp.ffi.NULL, spandsp.ffi.NULL)
              for ch in range(nchan)]
    rows = [spandsp.ffi.from_buffer("int16_t[]", x[ch]) for ch in range(nchan)]

    def theirs() -> None:
        for st, row in zip(states, rows, strict=True):
            spandsp.lib.r2_mf_rx(st, row, n)

    t_ours = _cpu(ours, repeat)
    t_theirs = _cpu(theirs, repeat)
    for st in states:
        spandsp.lib.r2_mf_rx_free(st)
    audio = nchan * n / RATE
    return {"signal": kind, "channels": nchan, "audio_channel_seconds": audio,
            "ours": audio / t_ours, "spandsp": audio / t_theirs,
            "ratio": t_theirs / t_ours, "signals_found_per_channel": found[0] / nchan}


def r2mf_rows(seconds: float, repeat: int, channels=R2MF_CHANNELS) -> list[dict]:
    return [bench_r2mf(c, seconds, repeat, kind) for kind in ("noise", "r2mf") for c in channels]


def print_r2mf(rows: list[dict]) -> None:
    print("MF R2 receive: channel-seconds of audio per CPU-second (ours: 160-sample ticks)")
    print(f"{'signal':>7} {'channels':>9} {'ours':>12} {'spandsp':>12} {'ratio':>7}")
    for r in rows:
        print(f"{r['signal']:>7} {r['channels']:>9} {r['ours']:>12,.0f} {r['spandsp']:>12,.0f} "
              f"{r['ratio']:>6.2f}x")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="audio per channel (default 10)")
    ap.add_argument("--channels", default="1,32,1024", help="comma-separated channel counts")
    ap.add_argument("--repeat", type=int, default=3, help="best of N runs (default 3)")
    ap.add_argument("--json", action="store_true", help="one JSON document instead of tables")
    ap.add_argument("--q24", action="store_true", help="print the Q.24 sweep table instead")
    ap.add_argument("--r2mf", action="store_true", help="only the MF R2 rows (1, 30, 480, 1,024 channels)")
    ap.add_argument("--commands", action="store_true",
                    help="whole `voiceboard dtmf` runs on files vs spandsp instead")
    ap.add_argument("--workdir", default=None,
                    help="--commands: where the generated files go (default: a temporary directory)")
    ap.add_argument("--calls", type=int, default=1000, help="--commands: short calls (default 1000)")
    ap.add_argument("--hour-seconds", type=float, default=3600.0,
                    help="--commands: length of the long mono file (default 3600)")
    ap.add_argument("--tools", default="dtmf,cid", help="--commands: which commands (default dtmf,cid)")
    ap.add_argument("--spandsp-scan", nargs="+", metavar="TOOL PATH", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    spandsp.require()
    if args.spandsp_scan:
        return spandsp_scan(args.spandsp_scan[0], args.spandsp_scan[1:])
    if args.commands:
        import shutil
        import tempfile
        work = args.workdir or tempfile.mkdtemp(prefix="vb-bench-")
        try:
            rows = bench_commands(work, args.repeat, args.calls, args.hour_seconds,
                                  tuple(t for t in args.tools.split(",") if t))
        finally:
            if args.workdir is None:
                shutil.rmtree(work, ignore_errors=True)
        if args.json:
            print(json.dumps(rows, indent=2))
            return 0
        print("`voiceboard dtmf|cid PATH --json` as a process vs spandsp's dtmf_rx / CLASS adsi_rx")
        print("over the same files (channel-seconds of audio per CPU-second, workers included;")
        print("peak = VmHWM or a worker's ru_maxrss; found = digits or caller IDs)")
        print(f"{'tool':>4} {'input':>18} {'runner':>11} {'ch-s/CPU-s':>11} {'vs spandsp':>10} "
              f"{'wall s':>7} {'peak MB':>8} {'found':>6}")
        for r in rows:
            print(f"{r['tool']:>4} {r['input']:>18} {r['runner']:>11} {r['ch_s_per_cpu_s']:>11,.0f} "
                  f"{r['vs_spandsp_cpu']:>9.2f}x {r['wall_s']:>7.2f} {r['peak_mb']:>8.0f} "
                  f"{r['found']:>6}")
        return 0
    if args.r2mf:
        r2 = r2mf_rows(args.seconds, args.repeat)
        if args.json:
            print(json.dumps({"r2mf_rx": r2}, indent=2))
        else:
            print_r2mf(r2)
        return 0
    if args.q24:
        rows = q24_table()
        if args.json:
            keys = ("parameter", "point", "q24", "ours", "spandsp", "cases")
            print(json.dumps([dict(zip(keys, r, strict=True)) for r in rows], indent=2))
            return 0
        print("Q.24 sweep: signals detected correctly, ours vs spandsp on the same signals")
        print("(16 digits x 2, random phases; 'reject' rows should read 0)")
        last = None
        for name, point, need, o, t, n in rows:
            if name != last:
                print(f"\n{name}")
                last = name
            print(f"  {point:>14}  Q.24 {need:>6}  ours {o:>3}/{n}  spandsp {t:>3}/{n}")
        return 0
    chans = [int(c) for c in args.channels.split(",") if c]
    dtmf = [bench_dtmf(c, args.seconds, args.repeat, kind)
            for kind in ("noise", "dtmf") for c in chans]
    g = bench_g711(8_000_000, args.repeat)
    r2 = r2mf_rows(args.seconds, args.repeat)
    if args.json:
        print(json.dumps({"dtmf_rx": dtmf, "g711": g, "r2mf_rx": r2}, indent=2))
        return 0
    print("DTMF receive: channel-seconds of audio per CPU-second (ours: 160-sample ticks)")
    print(f"{'signal':>7} {'channels':>9} {'ours':>12} {'spandsp':>12} {'ratio':>7}")
    for r in dtmf:
        print(f"{r['signal']:>7} {r['channels']:>9} {r['ours']:>12,.0f} {r['spandsp']:>12,.0f} "
              f"{r['ratio']:>6.2f}x")
    print()
    print("G.711: samples per CPU-second (8M-sample arrays)")
    print(f"{'op':>13} {'ours':>14} {'spandsp':>14} {'ratio':>7}")
    for r in g:
        print(f"{r['op']:>13} {r['ours']:>14,.0f} {r['spandsp']:>14,.0f} {r['ratio']:>6.2f}x")
    print()
    print_r2mf(r2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
