"""Recording: how many simultaneous recordings one core sustains in real time, no block dropped.

    .venv/bin/python bench/recording.py [--seconds 5] [--dir DIR] [--max 3840] [--json]
    .venv/bin/python bench/recording.py -n 500 1000 --formats pcm16,alaw   # fixed N, no search
    .venv/bin/python bench/recording.py -n 1000 --profile out.pstats       # cProfile tick + writer

Set-up: hwsim runs as a separate process (`python -m hwsim --clock
lockstep`) serving one E1 board (30 channels per span, at most 34 spans =
1020 channels: hwsim's limit), every channel looped back by the card so rx
carries audio too. Beyond 1020, recording k records channel k mod 1020 (a
second recording of a channel costs the recorder what a first one does:
one slot, one file).

This process is the host: each tick it waits for the tick, writes a tone on
every channel into tx (a different pitch per channel), calls
`Recorder.capture(tick, rx, tx)` as the media engine does (after tx is
complete, before commit), and commits. The Recorder is the production one:
`backpressure=False` (a full ring drops the tick and counts the blocks, the
tick never waits), its writer thread writing the WAV files (header updates
every second, fdatasync every 5 s) and the SQLite call records into a
temporary directory under `--dir` (the default is the system temp directory;
its filesystem type is printed: tmpfs measures CPU, a disk also measures the
fsyncs).

Real-time semantics on a lockstep board: the host paces itself to the real
block period (tick k starts at t0 + k x 20 ms, sleeping when ahead), as a
real card would make it. A trial passes when, over `--seconds` of audio,
the Recorder dropped no block and no tick started more than 7 blocks late
(a real card's 8-block ring would have overrun). The N recordings are
started together and their files opened before the measured window (opening
500 files at once is not what a call mix does); closing them is timed
apart.

"One core": this process (tick thread + writer thread) is pinned to one CPU
with sched_setaffinity and hwsim to the others (it is the card, not the
server); `--no-pin` turns that off. CPU is measured per thread: the tick
thread with `time.thread_time()`, the writer as the rest of the process
(`time.process_time()` minus the tick thread). "1-core x" = audio seconds /
process CPU seconds: how many times real time one core could carry this N.
The kernel's own writeback threads (page cache to disk) are not in it.

Search: N doubles from `--start` until a trial fails (or `--max`), then
bisects to within `--resolution` or 10%; a progress line per trial goes to
stderr. A failed trial is run again (`--retries`, default 1) and N fails only
if every run does: on a machine shared with other work, a stall that is not
ours (another process on our CPU, the hypervisor) can make one run late. The
"other" column shows how much of our CPU others took during each run, and
each progress line the longest wait for the card and the longest capture
(a stall elsewhere shows as lag with neither long). The search runs on
`--formats`' first format; the others are then measured at the N found.

Peers, measured in the same run on the same directory, on the same bytes as
the largest passing trial (N stereo PCM16 files x `--seconds`):
- soundfile (libsndfile): N WAV files written round-robin in the chunks our
  writer uses (10 ticks = 200 ms per file per write): the same job with a C
  library, single-threaded, as fast as it goes; the writes are timed, opening
  and closing apart (as for ours: our window has the header updates and
  fsyncs of a running recorder, not the opening and closing of the files);
- sox: the same bytes converted from raw into one WAV (one sequential file:
  the bandwidth ceiling of a single writer on this filesystem).
Ratios are MB per CPU-second, ours (the writer thread) over the peer's.
"""
from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

RATE = 8000
BLOCK = 160
TICK_S = BLOCK / RATE
MAX_SPANS = 34                 # 1020 channels: hwsim's largest board is 1024
CARD_RING = 8                  # blocks a real card buffers: > 7 late = overrun
TARGET_N = 500
CHUNK_TICKS = 10               # the writer's drain at real time: poll 0.2 s = 10 ticks
CLK_TCK = os.sysconf("SC_CLK_TCK")
WHEN = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)


# ---------------------------------------------------------------- environment
def fs_type(path: Path) -> str:
    """Filesystem type of `path` from /proc/mounts (longest mount point that holds it)."""
    path = path.resolve()
    best, kind = "", "unknown"
    try:
        with open("/proc/mounts") as f:
            for line in f:
                parts = line.split()
                if len(parts) < 3:
                    continue
                mnt = parts[1].replace("\\040", " ")
                if (str(path) == mnt or str(path).startswith(mnt.rstrip("/") + "/")) and len(mnt) > len(best):
                    best, kind = mnt, parts[2]
    except OSError:
        pass
    return kind


def cpu_plan(pin: bool) -> tuple[set[int] | None, set[int] | None, str]:
    """(CPUs for this process, CPUs for hwsim, description)."""
    allowed = sorted(os.sched_getaffinity(0))
    if not pin:
        return None, None, f"not pinned ({len(allowed)} CPUs)"
    if len(allowed) < 2:
        return None, None, "one CPU only: bench and hwsim share it (not pinned)"
    return {allowed[-1]}, set(allowed[:-1]), f"bench on CPU {allowed[-1]}, hwsim on CPU " + \
        ",".join(map(str, allowed[:-1]))


def cpu_busy(cpus: set[int] | None) -> float:
    """Busy seconds (user, system, irq, steal...) of `cpus` (all CPUs if None) from /proc/stat."""
    total = 0.0
    with open("/proc/stat") as f:
        for line in f:
            name, *vals = line.split()
            if not name.startswith("cpu") or name == "cpu" or (cpus is not None and int(name[3:]) not in cpus):
                continue
            v = [int(x) for x in vals]
            total += sum(v) - v[3] - v[4]           # all but idle and iowait
    return total / CLK_TCK


def proc_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


# ---------------------------------------------------------------- hwsim
def hwsim_config(name: str, spans: int) -> str:
    out = ["[clock]", "start = 2026-11-23T10:00:00+00:00", "",
           "[[board]]", f'name = "{name}"', 'law = "alaw"', ""]
    left = spans
    while left > 0:      # hwsim takes at most 64 spans per [[board.span]]
        out += ["[[board.span]]", 'kind = "e1"', f"count = {min(left, 64)}", 'framing = "cas"', ""]
        left -= 64
    return "\n".join(out)


class Hwsim:
    """`python -m hwsim --clock lockstep` serving one E1 board, pinned to `cpus`."""

    def __init__(self, spans: int, work: Path, cpus: set[int] | None) -> None:
        from hwsim.spawn import spawn_hwsim
        self.name = f"benchrec{os.getpid()}"
        cfg, self.ready, self.log = work / "hwsim.toml", work / "ready.json", work / "hwsim.log"
        cfg.write_text(hwsim_config(self.name, spans))
        self.hwsim = spawn_hwsim(cfg, clock="lockstep", ready=self.ready, log=self.log, stdout_to_log=True,
                                 cpus=cpus, cwd=REPO, timeout=60.0)
        assert self.hwsim.info is not None
        self.uri = self.hwsim.info["boards"][self.name]

    def cpu(self) -> float:
        return proc_cpu(self.hwsim.pid)

    def stop(self) -> None:
        self.hwsim.stop(timeout=30.0, kill_timeout=30.0)


def tone_bank(nchan: int, periods: int = 4) -> np.ndarray:
    """int16[periods, nchan, BLOCK]: per channel a tone of 300..3250 Hz (a multiple of 50 Hz, so a
    block holds whole cycles), about -10 dBm0, its level stepping from tick to tick."""
    n = np.arange(BLOCK)
    freqs = 300.0 + 50.0 * (np.arange(nchan) % 60)
    base = np.sin(2 * np.pi * freqs[:, None] * n[None, :] / RATE) * 7000.0
    gains = np.array([1.0, 0.6, 0.3, 0.8])[:periods]
    return np.ascontiguousarray((gains[:, None, None] * base[None]).astype(np.int16))


class Host:
    """The board, opened and started once, every channel looped back by the card."""

    def __init__(self, uri: str) -> None:
        from boarddrv import open_board
        self.board = open_board(uri)
        self.board.start(block=BLOCK)
        self.nchan = self.board.info.nchan
        self.bank = tone_bank(self.nchan)
        chans = list(range(self.nchan))
        while chans:       # the card's command queue holds 1024: a batch per tick
            batch, chans = chans[:500], chans[500:]
            self.tick()
            for c in batch:
                self.board.loopback(c, True)
            self.board.commit()
        for _ in range(3):
            self.tick()
            self.board.commit()
        assert np.any(self.board.rx[-1]), "loopback: no audio came back on the last channel"
        self.k = 0

    def tick(self) -> int:
        t = self.board.wait_tick(timeout=10.0)
        self.board.tx[:] = self.bank[t % len(self.bank)]
        return t

    def close(self) -> None:
        self.board.close()


# ---------------------------------------------------------------- one trial
def trial(host: Host, hw: Hwsim, n: int, fmt: str, seconds: float, root: Path,
          profile: tuple[cProfile.Profile, cProfile.Profile] | None = None,
          mine: set[int] | None = None) -> dict[str, Any]:
    """N stereo recordings in `fmt` for `seconds` of audio paced at real time; the figures.

    `profile`: (tick thread, writer thread) profilers, enabled over the measured window."""
    from voiceserver.recording.calldb import CallRow
    from voiceserver.recording.recorder import Recorder

    work = Path(tempfile.mkdtemp(prefix=f"n{n}-{fmt}-", dir=root))
    board = host.board
    try:
        rec = Recorder(work / "calls.db", work / "rec", nchan=host.nchan, block=BLOCK, max_slots=n,
                       backpressure=False)
        try:
            for i in range(n):
                chan = i % host.nchan       # beyond the board's size: a second recording of a channel
                rec.start(CallRow(f"bench-{n}-{fmt}-{i}", start=WHEN, answer=WHEN, channel=chan,
                                  direction="inbound", caller=f"1380000{i:04d}", called="95500"),
                          chan=chan, layout="stereo", fmt=fmt, when=WHEN)
            # warm-up: the starts take effect, the writer opens every file (lockstep: the card waits)
            t0 = time.perf_counter()
            tick = host.tick()
            rec.capture(tick, board.rx, board.tx)
            board.commit()
            if not rec.flush(120.0):
                raise RuntimeError(f"N={n}: the writer did not open the files within 120 s")
            open_s = time.perf_counter() - t0
            failed = rec.stats.failed
            if failed:
                raise RuntimeError(f"N={n}: {failed} recordings failed to start: {rec.events()[:3]}")
            # one lap of the ring at real time, not measured: its pages are touched for the first
            # time there (a server does that once, at start-up)
            t1 = time.perf_counter()
            for k in range(rec.ring_ticks + 5):
                due = t1 + k * TICK_S
                now = time.perf_counter()
                if now < due:
                    time.sleep(due - now)
                tick = host.tick()
                rec.capture(tick, board.rx, board.tx)
                board.commit()
            ticks = max(1, int(round(seconds / TICK_S)))
            st0 = rec.stats.as_dict()
            hw0 = hw.cpu()
            busy0, self0 = cpu_busy(mine), proc_cpu(os.getpid())
            if profile is not None:
                tick_prof, writer_prof = profile
                drain, chores = rec._drain, rec._housekeeping   # the writer calls these each round
                rec._drain = lambda: writer_prof.runcall(drain)
                rec._housekeeping = lambda: writer_prof.runcall(chores)
                tick_prof.enable()
            cpu0, th0 = time.process_time(), time.thread_time()
            cap = 0.0
            worst = [0.0, 0.0, 0.0]
            max_lag = 0.0
            late = 0
            start = time.perf_counter()
            for k in range(ticks):
                due = start + k * TICK_S
                now = time.perf_counter()
                if now < due:
                    time.sleep(due - now)
                    now = time.perf_counter()
                lag = now - due
                if lag > max_lag:
                    max_lag = lag
                if lag > TICK_S:
                    late += 1
                tick = host.tick()
                c0 = time.perf_counter()
                rec.capture(tick, board.rx, board.tx)
                c1 = time.perf_counter()
                board.commit()
                c2 = time.perf_counter()
                cap += c1 - c0
                worst[0] = max(worst[0], c0 - now)      # wait for the card's tick (+ tx fill)
                worst[1] = max(worst[1], c1 - c0)       # Recorder.capture
                worst[2] = max(worst[2], c2 - c1)       # commit
            end = start + ticks * TICK_S      # the last tick's period ends here on a real card
            now = time.perf_counter()
            if now < end:
                time.sleep(end - now)
            wall = time.perf_counter() - start
            th1 = time.thread_time()
            rec.flush(60.0)           # the writer's work for this window counts in it
            cpu1 = time.process_time()
            if profile is not None:
                tick_prof.disable()
                rec._drain, rec._housekeeping = drain, chores
            hw1 = hw.cpu()
            busy1, self1 = cpu_busy(mine), proc_cpu(os.getpid())
            st1 = rec.stats.as_dict()
            c0 = time.perf_counter()
        finally:
            rec.close()
        close_s = time.perf_counter() - c0
    finally:
        shutil.rmtree(work, ignore_errors=True)
    audio = ticks * TICK_S
    tick_cpu = th1 - th0
    cpu = cpu1 - cpu0
    nbytes = st1["bytes_written"] - st0["bytes_written"]
    dropped = st1["dropped_blocks"] - st0["dropped_blocks"]
    lag_ok = max_lag < (CARD_RING - 1) * TICK_S
    return {
        "n": n, "format": fmt, "ticks": ticks, "audio_s": round(audio, 3), "wall_s": round(wall, 3),
        "x_realtime": round(audio / wall, 4), "x_realtime_1core": round(audio / cpu, 2) if cpu > 0 else None,
        "cpu_s": round(cpu, 4), "tick_cpu_s": round(tick_cpu, 4), "writer_cpu_s": round(cpu - tick_cpu, 4),
        "tick_cpu_us_per_tick": round(tick_cpu / ticks * 1e6, 1),
        "capture_us_per_tick": round(cap / ticks * 1e6, 1),
        "writer_cpu_us_per_tick": round((cpu - tick_cpu) / ticks * 1e6, 1),
        "cpu_us_per_tick": round(cpu / ticks * 1e6, 1),
        "hwsim_cpu_us_per_tick": round((hw1 - hw0) / ticks * 1e6, 1),
        "max_lag_ms": round(max_lag * 1e3, 2), "late_ticks": late,
        "worst_wait_ms": round(worst[0] * 1e3, 2), "worst_capture_ms": round(worst[1] * 1e3, 2),
        "worst_commit_ms": round(worst[2] * 1e3, 2),
        "dropped_blocks": dropped, "dropped_ticks": st1["dropped_ticks"] - st0["dropped_ticks"],
        "bytes": nbytes, "mb_per_s": round(nbytes / wall / 1e6, 2),
        "writer_mb_per_cpu_s": round(nbytes / 1e6 / (cpu - tick_cpu), 1) if cpu > tick_cpu else None,
        "open_s": round(open_s, 3), "close_s": round(close_s, 3),
        # what else ran on our CPU (other processes, the kernel's threads, the hypervisor's steal)
        "other_load": round(max(0.0, (busy1 - busy0) - (self1 - self0)) / wall / (len(mine) if mine else
                                                                                 (os.cpu_count() or 1)), 3),
        "pass": dropped == 0 and lag_ok,
    }


# ---------------------------------------------------------------- peers
def _stereo_audio(host: Host, seconds: float) -> np.ndarray:
    """int16[ticks, 2*BLOCK] of channel 0 as the recorder stores it (rx = looped tx, tx)."""
    ticks = max(1, int(round(seconds / TICK_S)))
    out = np.empty((ticks, 2 * BLOCK), np.int16)
    for k in range(ticks):
        out[k, 0::2] = host.bank[(k - 1) % len(host.bank), 0]
        out[k, 1::2] = host.bank[k % len(host.bank), 0]
    return out


def peer_soundfile(audio: np.ndarray, n: int, root: Path) -> dict[str, Any] | None:
    """N stereo PCM16 WAV files through libsndfile, round-robin in CHUNK_TICKS chunks, then closed."""
    try:
        import soundfile as sf
    except ImportError:
        return None
    work = Path(tempfile.mkdtemp(prefix="peer-sf-", dir=root))
    try:
        frames = audio.reshape(-1, 2)                    # [ticks*BLOCK, 2]
        step = CHUNK_TICKS * BLOCK
        o0 = time.perf_counter()
        files = [sf.SoundFile(str(work / f"{i}.wav"), "w", samplerate=RATE, channels=2, subtype="PCM_16",
                              format="WAV") for i in range(n)]
        cpu0, w0 = time.process_time(), time.perf_counter()      # the writes alone, as for ours
        for a in range(0, len(frames), step):
            chunk = frames[a:a + step]
            for f in files:
                f.write(chunk)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - w0
        for f in files:
            f.close()
        open_close = time.perf_counter() - o0 - wall
    finally:
        shutil.rmtree(work, ignore_errors=True)
    nbytes = audio.nbytes * n
    return {"peer": "soundfile", "what": f"{n} stereo PCM16 WAV files, {CHUNK_TICKS}-tick chunks round-robin",
            "bytes": nbytes, "cpu_s": round(cpu, 4), "wall_s": round(wall, 4),
            "mb_per_cpu_s": round(nbytes / 1e6 / cpu, 1), "mb_per_s": round(nbytes / 1e6 / wall, 1),
            "open_close_s": round(open_close, 3), "version": getattr(sf, "__libsndfile_version__", None)}


def peer_sox(audio: np.ndarray, n: int, root: Path) -> dict[str, Any] | None:
    """The same bytes (N copies of the audio) from raw into one stereo PCM16 WAV by sox."""
    sox = shutil.which("sox")
    if sox is None:
        return None
    work = Path(tempfile.mkdtemp(prefix="peer-sox-", dir=root))
    try:
        raw = work / "in.raw"
        with open(raw, "wb") as f:
            for _ in range(n):
                f.write(audio.tobytes())
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        w0 = time.perf_counter()
        subprocess.run([sox, "-t", "raw", "-r", str(RATE), "-e", "signed-integer", "-b", "16", "-c", "2",
                        str(raw), str(work / "out.wav")], check=True)
        wall = time.perf_counter() - w0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        version = subprocess.run([sox, "--version"], capture_output=True, text=True).stdout.strip()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    nbytes = audio.nbytes * n
    return {"peer": "sox", "what": "the same bytes from raw into one stereo PCM16 WAV",
            "bytes": nbytes, "cpu_s": round(cpu, 4), "wall_s": round(wall, 4),
            "mb_per_cpu_s": round(nbytes / 1e6 / max(cpu, 1e-6), 1), "mb_per_s": round(nbytes / 1e6 / wall, 1),
            "version": version}


# ---------------------------------------------------------------- search
def search(run, start: int, limit: int, resolution: int) -> tuple[int | None, int | None]:
    """Largest passing N: double from `start` until a failure or `limit`, then bisect.

    `run(n)` -> bool. Returns (largest pass, smallest fail)."""
    lo, hi = None, None
    n = min(start, limit)
    while True:
        if run(n):
            lo = n
            if n >= limit:
                return lo, None
            n = min(2 * n, limit)
        else:
            hi = n
            break
    if lo is None:        # even `start` fails: bisect down from it
        lo_b = 0
    else:
        lo_b = lo
    while hi - lo_b > max(resolution, lo_b // 10):
        mid = (lo_b + hi) // 2
        if run(mid):
            lo_b, lo = mid, mid
        else:
            hi = mid
    return lo, hi


def progress(r: dict[str, Any]) -> None:
    print(f"  N={r['n']:>5} {r['format']:<5} {'pass' if r['pass'] else 'FAIL'}: "
          f"x{r['x_realtime']:.3f} wall, 1-core x{r['x_realtime_1core']}, {r['cpu_us_per_tick']:.0f} us CPU/tick, "
          f"dropped {r['dropped_blocks']}, max lag {r['max_lag_ms']:.1f} ms, {r['mb_per_s']:.1f} MB/s, "
          f"other load on our CPU {r['other_load']:.0%}; longest wait for the card {r['worst_wait_ms']:.1f} ms, "
          f"capture {r['worst_capture_ms']:.1f} ms" + (f" (run {r['attempt']})" if r["attempt"] > 1 else ""),
          file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=5.0,
                    help="audio seconds per trial, paced at real time (default 5: one fsync round)")
    ap.add_argument("--dir", help="where the recordings go (default: the system temp directory)")
    ap.add_argument("--max", type=int, default=3840, help="largest N to try (default 3840)")
    ap.add_argument("--start", type=int, default=480, help="first N of the search (default 480)")
    ap.add_argument("--resolution", type=int, default=60,
                    help="bisect until within this many or 10%% (default 60)")
    ap.add_argument("-n", type=int, nargs="+", help="measure these N only (no search)")
    ap.add_argument("--formats", default="pcm16,alaw", help="pcm16,alaw: the first is searched")
    ap.add_argument("--retries", type=int, default=1,
                    help="run a failed trial again this many times; it fails if every run does (default 1: "
                         "a machine shared with other work has stalls of its own)")
    ap.add_argument("--no-pin", action="store_true", help="do not pin this process and hwsim to CPUs")
    ap.add_argument("--no-peers", action="store_true", help="skip soundfile and sox")
    ap.add_argument("--profile", metavar="FILE", help="cProfile the last trial (tick + writer threads)")
    ap.add_argument("--json", action="store_true", help="JSON on stdout instead of the table")
    args = ap.parse_args(argv)
    fmts = [f.strip() for f in args.formats.split(",") if f.strip()]
    if not fmts or any(f not in ("pcm16", "alaw") for f in fmts):
        print(f"recording: --formats {args.formats!r}: expected pcm16 and/or alaw", file=sys.stderr)
        return 2
    if args.seconds <= 0 or args.max < 1 or args.start < 1:
        print("recording: --seconds, --max and --start must be positive", file=sys.stderr)
        return 2
    mine, theirs, pin_note = cpu_plan(not args.no_pin)
    if mine:
        os.sched_setaffinity(0, mine)     # before any thread exists: the writer threads inherit it
    base = Path(args.dir) if args.dir else Path(tempfile.gettempdir())
    if not base.is_dir():
        print(f"recording: --dir {base}: not a directory", file=sys.stderr)
        return 2
    fs = fs_type(base)
    limit = args.max if not args.n else max(args.n)
    spans = min(-(-limit // 30), MAX_SPANS)
    rows: list[dict[str, Any]] = []
    peers: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-recording-", dir=base) as tmp:
        root = Path(tmp)
        hw = Hwsim(spans, root, theirs)
        host = None
        try:
            host = Host(hw.uri)
            prof = (cProfile.Profile(), cProfile.Profile()) if args.profile else None

            def run(n: int, fmt: str, profile: Any = None) -> dict[str, Any]:
                for attempt in range(args.retries + 1):
                    r = trial(host, hw, n, fmt, args.seconds, root, profile, mine)
                    r["attempt"] = attempt + 1
                    rows.append(r)
                    progress(r)
                    if r["pass"]:
                        break
                return r

            if args.n:
                ns = sorted(set(min(n, limit) for n in args.n))
                for i, n in enumerate(ns):
                    for j, f in enumerate(fmts):
                        last = i == len(ns) - 1 and j == len(fmts) - 1
                        run(n, f, prof if last else None)
                best, first_fail = None, None
                ok = [r["n"] for r in rows if r["pass"] and r["format"] == fmts[0]]
                best = max(ok) if ok else None
            else:
                print(f"searching N ({fmts[0]}, stereo), {args.seconds:g} s of audio per trial, "
                      f"up to {limit} ({spans} E1 spans); {fs} at {base}; {pin_note}",
                      file=sys.stderr, flush=True)
                best, first_fail = search(lambda n: run(n, fmts[0])["pass"], args.start, limit,
                                          args.resolution)
                at = best or min(args.start, limit)
                for j, f in enumerate(fmts[1:]):
                    run(at, f, prof if j == len(fmts) - 2 else None)
            if prof is not None:
                prof[0].dump_stats(args.profile)
                prof[1].dump_stats(args.profile + ".writer")
            if not args.no_peers:
                at = best or min(r["n"] for r in rows)
                audio = _stereo_audio(host, args.seconds)
                for fn in (peer_soundfile, peer_sox):
                    p = fn(audio, at, root)
                    if p is not None:
                        p["n"] = at
                        peers.append(p)
        finally:
            if host is not None:
                host.close()
            hw.stop()
    ref = next((r for r in reversed(rows) if r["format"] == fmts[0] and r["n"] == best and r["pass"]), None)
    for p in peers:
        p["ratio_ours_over_peer_mb_per_cpu_s"] = (
            round(ref["writer_mb_per_cpu_s"] / p["mb_per_cpu_s"], 3)
            if ref and ref.get("writer_mb_per_cpu_s") and p["mb_per_cpu_s"] else None)
    out = {
        "block": BLOCK, "seconds_per_trial": args.seconds, "dir": str(base), "filesystem": fs,
        "cpus": os.cpu_count(), "pinning": pin_note, "board_channels": host.nchan if host else None,
        "rows": rows, "peers": peers,
        "largest_n": best, "smallest_failing_n": None if args.n else first_fail,
        "searched_format": fmts[0], "target_n": TARGET_N,
        "target_met": best is not None and best >= TARGET_N,
        "limited_by_max": best is not None and best >= limit,
    }
    if args.json:
        print(json.dumps(out, indent=1))
        return 0
    print(f"recording bench: stereo, block {BLOCK} (20 ms), {args.seconds:g} s of audio per trial paced at "
          f"real time; files on {fs} ({base}); {pin_note}")
    print(f"{'N':>5} {'format':<6} {'x RT':>6} {'1-core x':>8} {'CPU us/tick':>11} {'tick':>6} "
          f"{'capture':>7} {'writer':>7} {'dropped':>7} {'max lag':>8} {'MB/s':>7} {'open s':>6} "
          f"{'close s':>7} {'other':>5} {'result':>6}")
    for r in rows:
        print(f"{r['n']:>5} {r['format']:<6} {r['x_realtime']:>6.3f} {r['x_realtime_1core']:>8.2f} "
              f"{r['cpu_us_per_tick']:>11.0f} {r['tick_cpu_us_per_tick']:>6.0f} {r['capture_us_per_tick']:>7.1f} "
              f"{r['writer_cpu_us_per_tick']:>7.0f} {r['dropped_blocks']:>7} {r['max_lag_ms']:>6.1f}ms "
              f"{r['mb_per_s']:>7.2f} {r['open_s']:>6.2f} {r['close_s']:>7.2f} {r['other_load']:>5.0%} "
              f"{'pass' if r['pass'] else 'FAIL':>6}" + (f" (run {r['attempt']})" if r["attempt"] > 1 else ""))
    print("x RT = audio s / wall s (paced: 1.0 when it keeps up); 1-core x = audio s / CPU s of this process;"
          " CPU us/tick = tick thread + writer thread per 20 ms tick; capture = Recorder.capture alone"
          " (wall); max lag = latest tick start behind the real-time schedule (fail at >= "
          f"{(CARD_RING - 1) * TICK_S * 1e3:.0f} ms); other = CPU time others used on our CPU (processes, kernel,"
          " steal) over the trial's wall time.")
    for p in peers:
        ratio = p["ratio_ours_over_peer_mb_per_cpu_s"]
        print(f"peer {p['peer']}: {p['what']} (N={p['n']}, {p['bytes'] / 1e6:.0f} MB): "
              f"{p['mb_per_cpu_s']:.0f} MB per CPU-s, {p['mb_per_s']:.0f} MB/s wall; ours (writer thread) "
              f"{ref['writer_mb_per_cpu_s'] if ref else '-'} MB per CPU-s -> ratio "
              f"{'-' if ratio is None else f'{ratio:.2f}'}")
    if best is None:
        summary = f"no N sustained (even {min(r['n'] for r in rows)} failed)"
    else:
        bound = "" if args.n else \
            f" (the --max {limit}: the limit was not reached)" if out["limited_by_max"] else (
            f" (N={first_fail} failed)" if first_fail else "")
        summary = f"largest N at >= 1x real time on one core with no dropped block: {best}{bound}"
    print(f"{summary}; target >= {TARGET_N}: {'PASS' if out['target_met'] else 'FAIL'}")
    if ref:
        print(f"writer disk bandwidth at N={best}: {ref['mb_per_s']:.2f} MB/s sustained, "
              f"{ref['writer_mb_per_cpu_s']} MB per writer CPU-second")
    if args.profile:
        print(f"profiles: {args.profile} (tick thread), {args.profile}.writer (writer: drain + housekeeping); "
              "python -m pstats FILE")
    return 0


if __name__ == "__main__":
    sys.exit(main())
