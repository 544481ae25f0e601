"""The cost of a call: the whole voice server taking a steady stream of IVR calls, recorded.

    .venv/bin/python bench/server_mixed.py                        # 240 lines, 12 calls/s, 60 s
    .venv/bin/python bench/server_mixed.py --seconds 30 --json    # JSON to stdout
    .venv/bin/python bench/server_mixed.py --profile loop.pstats  # + where the control plane goes

hwsim runs as a separate process (`python -m hwsim --clock lockstep`, as in
bench/server_channels.py) with 240 FXO lines (FSK caller ID, loop-drop
disconnect) and Poisson callers at 12 calls/s (seeded), handed to hwsim as
explicit [[caller]] lists. Each caller is answered by the IVR (menu
"press 1", then the account menu of tests/server/configs/server-acd.toml:
8 digits and '#'), presses 1, then 12345678#, hears goodbye and the server
hangs up. Every call is recorded in stereo (PCM16) under [storage] in a
temporary directory, with the real SQLite call database. The server runs as
`voiceboard serve` runs it: `VoiceServer(sync=True)` in this process, the
recording service, and the bus's JSON event log subscriber
(`voiceserver.core.events.EventLog`) at INFO level into a log file.

After `--warmup` simulated seconds (calls last ~13 s: the lines carry a
steady ~150 calls by then) the bench measures `--seconds` simulated seconds:

- calls: the calls that *ended* in the window and went the whole IVR path,
  counted from the call database (row's ivr_path has key 1, the account
  input and the IVR's hangup; a kept stereo recording); `offered`: callers
  hwsim placed in the window.
- server CPU per call (ms) and per channel-second (µs, over the 240 lines),
  split as in server_channels: "engine" = the engine thread's own CPU,
  "control" = the rest of the process, itself split by thread: the loop
  thread (the asyncio loop: the control plane proper, events, IVR, rules,
  the JSON log; and the bench's 50 ms poll) and the recording writer (the
  WAV files and the SQLite rows). Within the loop thread: "controller", the
  sans-I/O call controller's own CPU (its `handle`: a tick's events in,
  media commands out, with the IVR, the rules and the ACD it calls), less
  the bus's subscribers it calls as it publishes; "bus sinks", those
  subscribers (the JSON event log, the journal's hand-off). The rest of the
  loop thread is the asyncio loop and the engine's hand-offs, the recording
  service's events from the writer, and the poll.
- events per call: bus events published in the window / calls.
- `--profile FILE`: cProfile (CPU time) of the loop thread over the window
  into FILE, of the recording writer into FILE.writer, and a breakdown of
  each by area (self time of each function; library code -- stdlib,
  builtins -- goes to the area of its largest caller).

Measured on the 2-core development machine (medians of 3 runs, before and
after run back to back; other work on the machine), 712 calls in the 60 s
window (11.85/s), 25.5 bus events per call:

    server CPU per call      16.1 ms -> 13.3 ms   (796 -> 656 µs per channel-second)
      engine                  5.6 ms ->  5.6 ms
      control                10.5 ms ->  7.7 ms   (517 -> 378 µs per channel-second)
        loop thread           4.3 ms ->  4.1 ms   (the JSON event log: ~1.2 ms of it)
        recording writer      6.1 ms ->  3.6 ms

"before" is wave3-core; "after": the event log record made without a stack
walk (core/events.py), the recorder's writer writing each recording's audio
in batches instead of one tick at a time whenever a call row was queued
(recording/recorder.py), the call row SQL built once (recording/calldb.py).

Later (`--seconds 30`, 3 runs each, alternating, load 0.7-1.3), with the
call rows of a writer pass in one transaction, the event log and journal
handed off every 50 ms, one IVR timer per typed number, and the journal
writing a batch in one statement; 25.6 -> 35.4 bus events per call (the
digit durations, IVR steps and inputs, prompt ends added meanwhile):

    control         6.19 / 6.31 / 6.40 -> 6.02 / 5.63 / 6.19 ms per call
      loop thread   2.72 / 2.77 / 2.74 -> 2.73 / 2.53 / 2.70
      writer        3.08 / 3.16 / 3.27 -> 2.96 / 2.80 / 3.15
      journal       0.40 / 0.39 / 0.39 -> 0.32 / 0.30 / 0.34

Most of the writer's time is the kernel copying the recordings' audio into
the page cache (stereo PCM16: 32 kB per call-second) and syncing each file.

With the controller's own row (3 runs each, alternating, load 0.4-1.3; this
machine was slower that day: the same code gave the loop thread 3.1-3.3 ms),
before (955dcbf) and after the event's JSON cached without a lock, the
subscribers kept as a tuple, a line state that changes nothing not
dispatched by the ACD, and lockstep's hand-back by a released lock:

    control         6.85 / 6.71 / 7.11 -> 6.65 / 7.80 / 6.62 ms per call
      loop thread   3.31 / 3.13 / 3.20 -> 3.18 / 3.54 / 2.95
        controller  1.88 / 1.75 / 1.78 -> 1.78 / 1.94 / 1.64
        bus sinks   0.60 / 0.56 / 0.60 -> 0.60 / 0.65 / 0.56
      journal       0.38 / 0.36 / 0.43 -> 0.39 / 0.43 / 0.38
      writer        3.16 / 3.22 / 3.49 -> 3.08 / 3.83 / 3.29

-- no change beyond the noise. An hour later, on the same idle machine, the
same pair gave 2.2-2.6 / 2.3-2.7 ms for the controller: this host moves the
figures by a third between runs, so compare only alternating runs.

Then (3 runs each, alternating, load 0.2-1.0), before (7405767) and after:
the bus's subscribers timed on one event in eight (a bracket per event had cost
more than the JSON log and landed in the controller's figure), the bus's event
made without a frozen dataclass's __init__ and its JSON through json's C
encoder made once, carry_out leaving at once with nothing to do and a
channel-state event on a short path; the recording rules re-checked by a
text-free verdict (the explained chain only for a stop or a start) and the
pause control skipped where no rule can hear a key or an IVR step; the
writer's new rows inserted without a read, the rows after a recording's start
or stop in its commit, and audio across the ring's end in one write:

    control         5.64 / 6.76 / 6.70 -> 5.19 / 6.29 / 5.98 ms per call
      loop thread   2.68 / 3.10 / 3.02 -> 2.35 / 2.82 / 2.64
        controller  1.44 / 1.64 / 1.67 -> 1.18 / 1.44 / 1.28
        bus sinks   0.51 / 0.60 / 0.59 -> 0.43 / 0.56 / 0.56
      journal       0.36 / 0.41 / 0.40 -> 0.33 / 0.41 / 0.38
      writer        2.60 / 3.24 / 3.28 -> 2.51 / 3.05 / 2.96

("before" times the bus per event, so its controller row errs high.) The
same pair an hour later, with the host slower (the untouched engine at 6.2-6.9
ms per call instead of 3.8-4.6):

    control        10.94 / 10.03 / 11.21 -> 8.68 / 8.97 / 10.24 ms per call
      loop thread   5.33 / 4.91 / 5.40 -> 4.26 / 4.37 / 4.93
        controller  2.68 / 2.54 / 2.75 -> 2.17 / 2.19 / 2.46

The controller -- a call's control-plane cost: its 35 events, the IVR, the
rules, the ACD -- is 15-20 % cheaper, under 2 ms per call when the host runs
fast and above it when it runs slow. The whole server cannot be under 2 ms at
this load: 240 idle lines alone cost ~100 µs per channel-second
(bench/server_channels.py), 2 ms per call at 12 calls/s. Of the rest, the
writer is mostly the kernel (creating each .part file, 0.3-1.3 ms on this VM's
ext4, copying the audio, fsync), the loop thread outside the controller the
event log and journal (JSON per event) and the engine's hand-offs; `gc` shows
the cyclic collector's share (~0.13 ms per call).

Then (3 runs of each, in turn, in a slow hour of the host: the engine at 6.2-6.9
ms per call), with the subscribers timed in one handled tick in eight: 6a24e86
on this machine's pyenv Python 3.11.7 (a plain source build: what every figure
above ran on), the same code on Debian's Python 3.11.2 (/usr/bin/python3, built
with profile-guided optimisation; the Makefile now makes the virtualenv from it),
and on Debian's Python with a tick's events stamped with one clock read, no
carry_out or call-row progress with nothing to do, and the rules' decision at
answer without writing out the checks that decide nothing:

                    pyenv 3.11.7          Debian 3.11.2         + this change
    controller     2.23 / 2.13 / 2.09 -> 1.82 / 1.88 / 1.90 -> 1.74 / 1.76 / 1.70 ms per call
    loop thread    4.18 / 4.06 / 3.92 -> 3.35 / 3.57 / 3.50 -> 3.35 / 3.30 / 3.30
    control        8.27 / 8.21 / 8.25 -> 7.06 / 7.61 / 7.53 -> 7.18 / 7.28 / 7.45
    server        15.13 / 14.85 / 14.86 -> 13.27 / 14.09 / 13.95 -> 13.57 / 13.66 / 13.72

The controller is under 2 ms per call in a slow hour of the host too. The table's
first line names the Python a run used.
"""
from __future__ import annotations

import argparse
import asyncio
import cProfile
import datetime as dt
import gc
import json
import logging
import os
import platform
import pstats
import random
import shutil
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from server_channels import boards_for, hwsim_config, proc_cpu, start_hwsim, stop_hwsim, thread_cpu  # noqa: E402

LINES = 240
RATE = 12.0          # calls per second
ACCOUNT = "12345678"
SCRIPT = (f'[{{ after_silence = 0.5, digits = "1" }}, '
          f'{{ after_silence = 0.5, digits = "{ACCOUNT}#" }}]')


def scenario(board: str, rate: float, until: float, seed: int) -> str:
    """Poisson callers at `rate`/s from 0.5 s to `until` s, each with a unique number."""
    rng = random.Random(seed)
    out = ["[scenario]", f"duration = {until + 60.0:.1f}", f"seed = {seed}", ""]
    t, k = 0.5, 0
    while True:
        t += rng.expovariate(rate)
        if t >= until:
            return "\n".join(out)
        k += 1
        out += ["[[caller]]", f"at = {t:.3f}", f'line = "{board}"', f'number = "139{k:08d}"',
                "give_up = 30.0", "hangup_after = 120.0", f"script = {SCRIPT}", ""]


def server_config(board: str, lines: int, store: Path) -> str:
    return f"""[[boards]]
uri = "sim://{board}"
name = "{board}"

[channels]
inbound = ["{board}:0-{lines - 1}"]

[prompts]
default_lang = "zh"
languages = ["zh"]

[storage]
recordings = "{store / 'recordings'}"
voicemail = "{store / 'voicemail'}"
database = "{store / 'calls.db'}"
rules_audit = "{store / 'rules-audit.jsonl'}"

[recording]
format = "wav-pcm16"
layout = "stereo"

[ivr]
default_flow = "main"

[ivr.flows.main]
start = "main"
lang = "zh"

[ivr.menus.main]
greeting = ["press_1_balance"]
invalid = ["invalid_choice"]
timeout = ["no_input"]
retries = 2
first_timeout = 3000
fallback = {{ action = "hangup", prompts = ["goodbye"] }}

[ivr.menus.main.options]
"1" = "account"

[ivr.menus.account]
greeting = ["enter_account"]
timeout = ["no_input"]
retries = 1
clear_digits = true
max_digits = 8
min_digits = 6
terminators = "#"
first_timeout = 8000
fallback = {{ action = "hangup", prompts = ["goodbye"] }}
input = {{ store = "account", then = {{ action = "hangup", prompts = ["goodbye"] }} }}
"""


# ---------------------------------------------------------------- the profile by area
AREAS = ("event bus/logging", "IVR", "recording service/recorder control", "recording audio (files)", "database",
         "channel state machines", "ACD", "controller/engine glue", "asyncio loop", "other")


def _area_of_file(fn: str, name: str) -> str | None:
    """The area of a function by its file; None: library code, attributed to its caller."""
    f = fn.replace("\\", "/")
    if "/voiceserver/core/events.py" in f or "/voiceserver/core/masking.py" in f:
        return "event bus/logging"
    if "/logging/" in f or "/json/" in f or name.startswith("<built-in method _json") \
            or "encode_basestring" in name or "c_make_encoder" in name:
        return "event bus/logging"
    if "/voiceserver/ivr/" in f:
        return "IVR"
    if "/voiceserver/recording/calldb.py" in f or "sqlite3" in name or "/sqlite3/" in f:
        return "database"
    if "/voiceserver/recording/wavfile.py" in f or (
            "/voiceserver/recording/recorder.py" in f and name in ("_drain", "_write_span", "_append")):
        return "recording audio (files)"
    if "/voiceserver/recording/" in f:
        return "recording service/recorder control"
    if "/voiceserver/core/channels.py" in f:
        return "channel state machines"
    if "/voiceserver/acd/" in f:
        return "ACD"
    if "/voiceserver/" in f or "/dsp/" in f or "/boarddrv/" in f:
        return "controller/engine glue"
    if "/asyncio/" in f or "/selectors.py" in f or name.startswith("<method 'poll' of 'select"):
        return "asyncio loop"
    if "/bench/" in f:
        return "other"
    return None


def profile_areas(stats: pstats.Stats) -> dict[str, float]:
    """Seconds of the loop thread by area: each function's self time, library code to its caller's area."""
    raw = stats.stats           # func -> (cc, nc, tt, ct, callers{func: (cc, nc, tt, ct)})
    memo: dict[Any, str] = {}

    def area(func: Any, depth: int = 0) -> str:
        if func in memo:
            return memo[func]
        fn, _, name = func
        a = _area_of_file(fn, name)
        if a is None:
            callers = raw.get(func, (0, 0, 0, 0, {}))[4]
            if callers and depth < 20:
                top = max(callers.items(), key=lambda kv: kv[1][3])[0]
                a = area(top, depth + 1)
            else:
                a = "other"
        memo[func] = a
        return a

    out: dict[str, float] = defaultdict(float)
    for func, (_, _, tt, _, _) in raw.items():
        out[area(func)] += tt
    return {a: out.get(a, 0.0) for a in AREAS}


# ---------------------------------------------------------------- the run
def whole_path_calls(db_path: Path, t0: dt.datetime, t1: dt.datetime) -> tuple[int, int]:
    """(calls that ended in [t0, t1) and went the whole IVR path with a kept stereo recording,
    all calls that ended in the window)."""
    from voiceserver.recording.calldb import CallDb, parse_time
    whole = ended = 0
    with CallDb(db_path) as db:
        kept = {r["call_id"] for r in db.query(
            "SELECT call_id FROM recordings WHERE status = 'kept' AND layout = 'stereo'")}
        for row in db.query('SELECT call_id, "end", ivr_path FROM calls'):
            end = parse_time(row["end"])
            if end is None or not t0 <= end < t1:
                continue
            ended += 1
            path = json.loads(row["ivr_path"] or "[]")
            if ("key:1" in path and any(p.startswith("input:account=") for p in path)
                    and "hangup" in path and row["call_id"] in kept):
                whole += 1
    return whole, ended


def run(seconds: float, warmup: float, rate: float, seed: int, profile: str | None,
        workdir: Path) -> dict[str, Any]:
    from voiceserver.config.server import load_config
    from voiceserver.core.events import EventLog
    from voiceserver.core.server import VoiceServer
    from voiceserver.ivr.prompts import PromptLibrary
    (name, lines), = boards_for(LINES, f"mix{os.getpid()}")
    work = workdir
    store = work / "store"
    shutil.rmtree(store, ignore_errors=True)     # --keep DIR again: only this run's rows
    (work / "hwsim.toml").write_text(hwsim_config([(name, lines)]))
    (work / "scenario.toml").write_text(scenario(name, rate, warmup + seconds + 5.0, seed))
    (work / "server.toml").write_text(server_config(name, lines, store))
    library = PromptLibrary(None, languages=["zh"], fallback="zh")
    # as `voiceboard serve`: the root logger at INFO with its format, the JSON event lines on the bus,
    # both into one stream (a file here, stderr there)
    log_stream = open(work / "server.log", "w", buffering=1)
    handler = logging.StreamHandler(log_stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    hw = start_hwsim(work)
    event_log = None
    try:
        cfg = load_config(work / "server.toml", library=library)
        server = VoiceServer(cfg, library, sync=True, start_time=dt.datetime.fromisoformat(hw.info["start"]))
        event_log = EventLog(log_stream)
        server.bus.subscribe(event_log)
        result = asyncio.run(_measure(server, seconds, warmup, hw.pid, profile))
    finally:
        stop_hwsim(hw)
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()
        if event_log is not None:
            event_log.flush()
        log_stream.close()
    rt0 = result.pop("_window")
    whole, ended = whole_path_calls(store / "calls.db", *rt0)
    if whole == 0:
        raise RuntimeError(f"no call went the whole IVR path in the window ({ended} ended); "
                           f"see {work / 'server.log'}")
    offered = _offered(work / "scenario.toml", warmup, warmup + result["sim_seconds"])
    cpu, eng, loop_cpu = result["server_cpu_seconds"], result["engine_cpu_seconds"], result["loop_cpu_seconds"]
    ctl = cpu - eng
    sim = result["sim_seconds"]
    result.update({
        "lines": lines, "rate": rate, "offered": offered, "calls": whole, "calls_ended": ended,
        "calls_per_second": round(whole / sim, 2),
        "server_ms_per_call": round(cpu / whole * 1e3, 3),
        "engine_ms_per_call": round(eng / whole * 1e3, 3),
        "control_ms_per_call": round(ctl / whole * 1e3, 3),
        "loop_ms_per_call": round(loop_cpu / whole * 1e3, 3),
        "controller_ms_per_call": round(result["controller_cpu_seconds"] / whole * 1e3, 3),
        "bus_sinks_ms_per_call": round(result["bus_sinks_cpu_seconds"] / whole * 1e3, 3),
        "gc_ms_per_call": round(result["gc_cpu_seconds"] / whole * 1e3, 3),
        "server_us_per_channel_second": round(cpu / (lines * sim) * 1e6, 2),
        "engine_us_per_channel_second": round(eng / (lines * sim) * 1e6, 2),
        "control_us_per_channel_second": round(ctl / (lines * sim) * 1e6, 2),
        "events_per_call": round(result.pop("_events") / whole, 1),
    })
    for key, name in (("_areas", "profile_ms_per_call"), ("_writer_areas", "writer_profile_ms_per_call")):
        areas = result.pop(key, None)
        if areas is not None:
            result[name] = {a: round(s / whole * 1e3, 3) for a, s in areas.items()}
    return result


def _offered(path: Path, t0: float, t1: float) -> int:
    import tomllib
    callers = tomllib.loads(path.read_text()).get("caller", [])
    return sum(1 for c in callers if t0 <= c["at"] < t1)


async def _measure(server, seconds: float, warmup: float, hwsim_pid: int,
                   profile: str | None) -> dict[str, Any]:
    stop = asyncio.Event()
    task = asyncio.create_task(server.run(stop))
    events = [0]

    def sim_s() -> float:
        return server.boards[0].engine.tick * server.block / 8000.0 if server.boards else 0.0

    async def until(t: float) -> None:
        while sim_s() < t:
            await asyncio.sleep(0.05)   # the poll is in the loop's CPU: keep it rare
            if task.done() or server.error:
                raise RuntimeError(f"server stopped: {server.error}")

    try:
        wall0 = time.monotonic()
        await until(warmup)
        warm_wall = time.monotonic() - wall0
        rt = server.boards[0]
        engines = [b.engine._thread for b in server.boards]
        loop_thread = [threading.current_thread()]
        prof = cProfile.Profile(time.thread_time) if profile else None   # CPU, not waits
        clock_cost = _clock_cost()       # before the window: its own CPU is not the server's
        seq0 = server.bus.last_seq
        tick0 = rt.engine.tick
        s0, w0, c0, e0, l0, h0 = (sim_s(), time.monotonic(), time.process_time(), thread_cpu(engines),
                                  thread_cpu(loop_thread), proc_cpu(hwsim_pid))
        threads0 = _threads_cpu()
        wprof = cProfile.Profile(time.thread_time) if profile else None
        meter = ControllerMeter(server, clock_cost)
        gc_meter = GcMeter()
        if prof is not None:
            _install_writer_profile(server, wprof)
            prof.enable()        # this thread: the asyncio loop, where the control plane runs
        await until(s0 + seconds)
        if prof is not None:
            prof.disable()
            _remove_writer_profile(server)
        s1, w1, c1, e1, l1, h1 = (sim_s(), time.monotonic(), time.process_time(), thread_cpu(engines),
                                  thread_cpu(loop_thread), proc_cpu(hwsim_pid))
        tick1 = rt.engine.tick
        threads1 = _threads_cpu()
        meter.remove()
        gc_meter.remove()
        controller_cpu, sinks_cpu = meter.totals()
        events[0] = server.bus.last_seq - seq0
        window = (server.time_at(rt, tick0), server.time_at(rt, tick1))
    finally:
        stop.set()
        await task
    if server.error:
        raise RuntimeError(f"server error: {server.error}")
    out: dict[str, Any] = {
        "sim_seconds": round(s1 - s0, 2), "wall_seconds": round(w1 - w0, 2),
        "warmup_wall_seconds": round(warm_wall, 2), "x_realtime": round((s1 - s0) / (w1 - w0), 2),
        "server_cpu_seconds": round(c1 - c0, 3), "engine_cpu_seconds": round(e1 - e0, 3),
        "control_cpu_seconds": round(c1 - c0 - (e1 - e0), 3), "loop_cpu_seconds": round(l1 - l0, 3),
        "hwsim_cpu_seconds": round(h1 - h0, 3),
        "_events": events[0], "_window": window,
        "threads_cpu_seconds": {k: round(v - threads0.get(k, 0.0), 3) for k, v in sorted(threads1.items())},
        "controller_cpu_seconds": round(controller_cpu, 3),
        "bus_sinks_cpu_seconds": round(sinks_cpu, 3),
        "gc_cpu_seconds": round(gc_meter.seconds, 3),
        "gc_collections": gc_meter.collections,
    }
    if prof is not None:
        prof.dump_stats(profile)
        out["_areas"] = profile_areas(pstats.Stats(profile))
        wprof.dump_stats(profile + ".writer")
        out["_writer_areas"] = profile_areas(pstats.Stats(profile + ".writer"))
    return out


class ControllerMeter:
    """CPU time of the sans-I/O call controller in the loop thread: its `handle` (a tick's
    events in, media commands out) less the bus's subscribers it calls as it publishes
    (the journal's hand-off, the JSON event log, the streams): those are the I/O around it.

    Timing the subscribers costs what it measures: a bracket is two `time.thread_time()`
    calls (system calls), and a wrapper around the subscribers is a Python call per event.
    On every event either landed in the controller's figure. So the subscribers are timed
    in one handled tick in SINK_SAMPLE (the ticks of a window's hundreds of calls
    interleave, so the sample is a fair one); the other ticks publish to the bus as the
    server does, and their subscribers' time is estimated per event from the sampled ones.
    Each sampled event's time leaves out one `thread_time()` call's own cost (`clock_cost`,
    from `_clock_cost` before the window), the part of the bracket inside it."""

    SINK_SAMPLE = 8

    def __init__(self, server, clock_cost: float) -> None:
        self.server = server
        self.controller = 0.0      # `handle`'s CPU, its subscribers included
        self._sampled = 0.0        # the sampled ticks' subscribers
        self._sampled_events = 0
        self._handled_events = 0   # events published inside `handle`, every tick
        self._handles = 0
        bus = self._bus = server.bus
        self._seq0 = bus.last_seq
        self._subscribers = subscribers = bus._subscribers
        calls = server.calls
        self._handle = calls.handle

        def timed(ev) -> None:
            t0 = time.thread_time()
            try:
                for fn in subscribers:
                    fn(ev)
            finally:
                self._sampled += time.thread_time() - t0 - clock_cost
        timed_subscribers = (timed,)

        def handle(index: int, tick: int, events: list) -> list:
            self._handles += 1
            sample = self._handles % self.SINK_SAMPLE == 0
            seq0 = bus.last_seq
            if sample:
                bus._subscribers = timed_subscribers
            t0 = time.thread_time()
            try:
                return self._handle(index, tick, events)
            finally:
                self.controller += time.thread_time() - t0
                published = bus.last_seq - seq0
                self._handled_events += published
                if sample:
                    bus._subscribers = subscribers
                    self._sampled_events += published
        calls.handle = handle

    def totals(self) -> tuple[float, float]:
        """(controller, bus sinks) CPU seconds: the sampled ticks' subscribers leave the
        controller's figure exactly, the others' at the sampled cost per event; the sinks'
        figure is that cost for every event of the window (published in `handle` or not)."""
        per_event = self._sampled / max(1, self._sampled_events)
        unsampled = self._handled_events - self._sampled_events
        controller = self.controller - self._sampled - per_event * unsampled
        return controller, per_event * (self._bus.last_seq - self._seq0)

    def remove(self) -> None:
        self.server.calls.__dict__.pop("handle", None)
        self._bus._subscribers = self._subscribers


def _clock_cost(n: int = 20_000) -> float:
    """One `time.thread_time()` call's own CPU (the median of consecutive readings' steps)."""
    steps = []
    last = time.thread_time()
    for _ in range(n):
        now = time.thread_time()
        steps.append(now - last)
        last = now
    steps.sort()
    return steps[n // 2]


class GcMeter:
    """CPU time of Python's cyclic garbage collector in the window, in whichever thread it
    ran (it is inside those threads' figures): a collection's cost grows with the objects
    that live on, such as the bus's journal of recent events."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.collections = [0, 0, 0]        # by generation
        self._started: dict[int, float] = {}
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        me = threading.get_ident()
        if phase == "start":
            self._started[me] = time.thread_time()
        elif me in self._started:
            self.seconds += time.thread_time() - self._started.pop(me)
            self.collections[info["generation"]] += 1

    def remove(self) -> None:
        gc.callbacks.remove(self._callback)


def _install_writer_profile(server, prof: cProfile.Profile) -> None:
    """Run each recorder's writer passes (files and SQLite) under `prof`, in the writer thread."""
    for rec in server.recording.recorders.values():
        for name in ("_drain", "_housekeeping"):
            orig = getattr(rec, name)
            setattr(rec, name, lambda _orig=orig: prof.runcall(_orig))


def _remove_writer_profile(server) -> None:
    for rec in server.recording.recorders.values():
        for name in ("_drain", "_housekeeping"):
            rec.__dict__.pop(name, None)


def _threads_cpu() -> dict[str, float]:
    """CPU seconds of each live thread of this process, by name (same names summed)."""
    out: dict[str, float] = defaultdict(float)
    for t in threading.enumerate():
        try:
            out[t.name] += time.clock_gettime(time.pthread_getcpuclockid(t.ident))
        except (OSError, TypeError):
            pass
    return dict(out)


def interpreter() -> str:
    """The Python that ran the server: its figures depend on how that Python was built (a
    distribution's profile-guided build runs this code faster than a plain source build)."""
    return f"Python {platform.python_version()} ({os.path.realpath(sys.executable)})"


def print_table(r: dict[str, Any]) -> None:
    print(f"whole server on lockstep hwsim: {r['lines']} FXO lines, Poisson callers at {r['rate']:g}/s, "
          f"IVR (1, then {len(ACCOUNT)} digits + #), stereo recording, SQLite rows, JSON event log")
    print(f"  python          {r['python']}, {r['cpus']} CPUs")
    print(f"  window          {r['sim_seconds']:.1f} simulated s in {r['wall_seconds']:.1f} s wall "
          f"({r['x_realtime']:.2f}x real time)")
    print(f"  calls           {r['calls']} went the whole IVR path ({r['calls_per_second']:.2f}/s; "
          f"{r['calls_ended']} ended, {r['offered']} offered in the window)")
    print(f"  events per call {r['events_per_call']:.1f}")
    print(f"  {'':16}{'CPU s':>8} {'ms/call':>9} {'µs/ch-s':>9}")
    for label, key in (("server", "server"), ("  engine", "engine"), ("  control", "control")):
        print(f"  {label:16}{r[key + '_cpu_seconds']:>8.2f} {r[key + '_ms_per_call']:>9.3f} "
              f"{r[key + '_us_per_channel_second']:>9.1f}")
    print(f"  {'    loop thread':16}{r['loop_cpu_seconds']:>8.2f} {r['loop_ms_per_call']:>9.3f}")
    for label, key in (("controller", "controller"), ("bus sinks", "bus_sinks")):
        print(f"  {'      ' + label:16}{r[key + '_cpu_seconds']:>8.2f} {r[key + '_ms_per_call']:>9.3f}")
    rest = {k: v for k, v in r["threads_cpu_seconds"].items() if k not in ("MainThread", "media-engine")}
    for name, v in rest.items():
        print(f"  {'    ' + name:16}{v:>8.2f} {v / r['calls'] * 1e3:>9.3f}")
    print(f"  {'  (of which gc)':16}{r['gc_cpu_seconds']:>8.2f} {r['gc_ms_per_call']:>9.3f}"
          f"   collections by generation: {' / '.join(map(str, r['gc_collections']))}")
    print(f"  {'hwsim (apart)':16}{r['hwsim_cpu_seconds']:>8.2f}")
    for key, what in (("profile_ms_per_call", "loop thread"), ("writer_profile_ms_per_call", "recording writer")):
        prof = r.get(key)
        if not prof:
            continue
        total = sum(prof.values()) or 1.0
        print(f"  {what} profile (CPU; cProfile's own overhead inflates it), ms per call:")
        for area, ms in sorted(prof.items(), key=lambda kv: -kv[1]):
            if ms:
                print(f"    {area:38}{ms:>7.3f}  {ms / total:>5.1%}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="simulated seconds measured")
    ap.add_argument("--warmup", type=float, default=20.0, help="simulated seconds before the window")
    ap.add_argument("--rate", type=float, default=RATE, help="calls per second offered")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", nargs="?", const="-", metavar="FILE",
                    help="JSON instead of the table (to stdout), or to FILE as well as the table")
    ap.add_argument("--profile", metavar="FILE", help="cProfile the loop thread over the window into FILE")
    ap.add_argument("--keep", metavar="DIR", help="keep the run's files (configs, log, recordings, calls.db)")
    args = ap.parse_args(argv)
    if args.keep:
        Path(args.keep).mkdir(parents=True, exist_ok=True)
        r = run(args.seconds, args.warmup, args.rate, args.seed, args.profile, Path(args.keep))
    else:
        with tempfile.TemporaryDirectory(prefix="bench-mixed-") as tmp:
            r = run(args.seconds, args.warmup, args.rate, args.seed, args.profile, Path(tmp))
    r["cpus"] = os.cpu_count()
    r["python"] = interpreter()
    if args.json == "-":
        print(json.dumps(r, indent=1))
        return 0
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=1) + "\n")
    print_table(r)
    return 0


if __name__ == "__main__":
    sys.exit(main())
