"""The whole voice server on lockstep hwsim: CPU per channel with every channel in the IVR.

    .venv/bin/python bench/server_channels.py                 # N = 30 120 240 480 960
    .venv/bin/python bench/server_channels.py -n 960 1920 --seconds 10 --json     # JSON to stdout
    .venv/bin/python bench/server_channels.py --json out.json                   # table + JSON file
    .venv/bin/python bench/server_channels.py -n 960 --profile out.pstats

For each N: hwsim runs as a separate process (`python -m hwsim --clock
lockstep`) with N FXO lines (boards of up to 960 lines, spans of 240) and N
callers that ring within the first second and then stay silent. The server
(`VoiceServer(sync=True)`, in this process, exactly as `voiceboard demo`
runs it) answers each after its FSK caller ID and plays a ~32 s greeting
while collecting digits: every channel is in the IVR with a prompt playing
and DTMF, call-progress, VAD detection running (the detectors run on every
channel of the board every tick in any case).

Once all N calls are connected and playing, the bench measures a window of
`--seconds` simulated seconds:

- server CPU: `time.process_time()` of this process over the window -- the
  engine thread(s) + the asyncio control plane + anything else the server
  does (the bench's own 5 ms poll of the loop is included: it costs
  ~0.1 ms per poll). "engine" is the engine threads' own CPU
  (pthread CPU clocks), "control" the rest.
- hwsim CPU: the hwsim process's utime+stime from /proc (a separate
  process: it is the simulated card and the world, not the server).
- x real time = simulated seconds / wall seconds (lockstep: the server and
  hwsim take turns, so this is what the pair achieves on this machine).
- 1-core x real time = simulated seconds / server CPU seconds: how many
  times faster than real time the server would run on one core of its own.
  The largest N with this >= 1 is the server's channel capacity per core
  (measured; and extrapolated from a linear fit of CPU against N).

`--profile FILE` runs cProfile on the engine thread(s) during the window.
"""
from __future__ import annotations

import argparse
import asyncio
import cProfile
import datetime as dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hwsim.spawn import HwsimProcess, spawn_hwsim  # noqa: E402

LINES_PER_BOARD = 960
LINES_PER_SPAN = 240
GREETING = ["welcome", "business_hours", "closed", "system_error", "leave_message",
            "confirm_or_reenter", "enter_account", "press_pound_main_menu", "transferring",
            "press_2_hours"]     # ~32 s of zh prompts: longer than ramp-up + window
CLK_TCK = os.sysconf("SC_CLK_TCK")


def boards_for(n: int, tag: str) -> list[tuple[str, int]]:
    out, left, k = [], n, 0
    while left > 0:
        m = min(left, LINES_PER_BOARD)
        out.append((f"bench{tag}b{k}", m))
        left -= m
        k += 1
    return out


def hwsim_config(boards: list[tuple[str, int]]) -> str:
    out = ["[clock]", "start = 2026-11-23T10:00:00+08:00", ""]
    for name, m in boards:
        out += ["[[board]]", f'name = "{name}"', 'law = "alaw"', ""]
        left = m
        while left > 0:
            out += ["[[board.span]]", 'kind = "analog"', f"channels = {min(left, LINES_PER_SPAN)}", ""]
            left -= LINES_PER_SPAN
        out += ["[[board.fxo]]", f'channels = "0-{m - 1}"', 'disconnect = "loop-drop"',
                'callerid = "fsk"', ""]
    return "\n".join(out)


def scenario(boards: list[tuple[str, int]], idle: bool = False) -> str:
    n = sum(m for _, m in boards)
    out = ["[scenario]", "duration = 3600.0", "seed = 1", ""]
    for name, m in ([] if idle else boards):
        out += ["[[arrivals]]", f'lines = "{name}:0-{m - 1}"', f"rate = {m * 2.0}",  # ~all within 1 s
                f"limit = {m}", "start = 0.1", 'number_prefix = "139"', "hangup_after = 3000.0",
                "give_up = 120.0", "script = []", ""]
    assert n
    return "\n".join(out)


def server_config(boards: list[tuple[str, int]]) -> str:
    out = []
    for name, _ in boards:
        out += ["[[boards]]", f'uri = "sim://{name}"', f'name = "{name}"', ""]
    inbound = ", ".join(f'"{name}:0-{m - 1}"' for name, m in boards)
    greeting = ", ".join(f'"{p}"' for p in GREETING)
    out += ["[channels]", f"inbound = [{inbound}]", "",
            "[prompts]", 'default_lang = "zh"', 'languages = ["zh"]', "",
            "[ivr]", 'default_flow = "main"', "",
            "[ivr.flows.main]", 'start = "main"', 'lang = "zh"', "",
            "[ivr.menus.main]", f"greeting = [{greeting}]", "first_timeout = 30000", "retries = 3",
            'fallback = { action = "hangup", prompts = ["goodbye"] }', "",
            "[ivr.menus.main.options]", '"1" = { action = "hangup", prompts = ["goodbye"] }', ""]
    return "\n".join(out)


def proc_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK     # utime + stime


def thread_cpu(threads: list[Any]) -> float:
    return sum(time.clock_gettime(time.pthread_getcpuclockid(t.ident)) for t in threads if t.is_alive())


def run_one(n: int, seconds: float, library, profile: str | None, workdir: Path,
            idle: bool = False) -> dict[str, Any]:
    from voiceserver.config.server import load_config
    from voiceserver.core.channels import State
    from voiceserver.core.server import VoiceServer
    tag = f"{os.getpid()}n{n}"
    boards = boards_for(n, tag)
    work = workdir / f"n{n}"
    work.mkdir(parents=True, exist_ok=True)
    (work / "hwsim.toml").write_text(hwsim_config(boards))
    (work / "scenario.toml").write_text(scenario(boards, idle))
    (work / "server.toml").write_text(server_config(boards))
    hw = start_hwsim(work)
    try:
        cfg = load_config(work / "server.toml", library=library)
        server = VoiceServer(cfg, library, sync=True, start_time=dt.datetime.fromisoformat(hw.info["start"]))
        result = asyncio.run(_measure(server, 0 if idle else n, seconds, hw.pid, profile, State))
        result["channels"] = n
        result["state"] = "idle" if idle else "ivr"
    finally:
        stop_hwsim(hw)
    result["boards"] = len(boards)
    return result


def start_hwsim(work: Path) -> HwsimProcess:
    """`python -m hwsim --clock lockstep` on work/hwsim.toml and work/scenario.toml, ready
    (`.info`: the ready file; `.pid`); its stdout and stderr in work/hwsim.log."""
    return spawn_hwsim(work / "hwsim.toml", scenario=work / "scenario.toml", clock="lockstep",
                       ready=work / "ready.json", log=work / "hwsim.log", stdout_to_log=True, timeout=60.0)


def stop_hwsim(hw: HwsimProcess) -> None:
    """SIGTERM; SIGKILL if it is still there 30 s later."""
    hw.stop(timeout=30.0)


async def _measure(server, n: int, seconds: float, hwsim_pid: int, profile: str | None, State) -> dict[str, Any]:
    stop = asyncio.Event()
    task = asyncio.create_task(server.run(stop))

    def sim_s() -> float:
        # the engine's tick counter: the server's own clock (now_ms) only moves
        # on ticks that have events, and a steady IVR has almost none
        return server.boards[0].engine.tick * server.block / 8000.0 if server.boards else 0.0

    def in_ivr() -> int:
        return sum(1 for leg in server.legs.values() if leg.play_id is not None and leg.ivr is not None
                   and not leg.ivr.done)

    def connected() -> int:
        return sum(1 for rt in server.boards for ch in rt.channels.values() if ch.state is State.CONNECTED)

    try:
        wall0 = time.monotonic()
        while not (server.boards and connected() == n and in_ivr() == n and sim_s() > 0.1):
            await asyncio.sleep(0.005)
            if task.done() or server.error:
                raise RuntimeError(f"server stopped: {server.error}")
            if sim_s() > 60.0:
                raise RuntimeError(f"only {connected()} of {n} calls connected after 60 simulated s")
        ramp_wall = time.monotonic() - wall0
        engines = [rt.engine._thread for rt in server.boards]
        prof = None
        if profile:
            prof = cProfile.Profile()
            _install_engine_profile(server, prof)   # from the engines' next tick
        s0, w0, c0, e0, h0 = sim_s(), time.monotonic(), time.process_time(), thread_cpu(engines), proc_cpu(hwsim_pid)
        while sim_s() - s0 < seconds:
            await asyncio.sleep(0.005)
            if task.done() or server.error:
                raise RuntimeError(f"server stopped: {server.error}")
        s1, w1, c1, e1, h1 = sim_s(), time.monotonic(), time.process_time(), thread_cpu(engines), proc_cpu(hwsim_pid)
        if prof is not None:
            _remove_engine_profile(server)
            prof.dump_stats(profile)
        still = in_ivr()
    finally:
        stop.set()
        await task
    sim, wall, cpu, eng, hw = s1 - s0, w1 - w0, c1 - c0, e1 - e0, h1 - h0
    nch = sum(len(rt.channels) for rt in server.boards)
    if still != n:
        reasons = sorted({r.reason for r in server.records})
        raise RuntimeError(f"{n - still} calls left the IVR during the window ({server.totals.calls} ended: {reasons})")
    return {
        "channels": n, "sim_seconds": round(sim, 2), "wall_seconds": round(wall, 2),
        "ramp_wall_seconds": round(ramp_wall, 2),
        "x_realtime": round(sim / wall, 2),
        "server_cpu_seconds": round(cpu, 3), "engine_cpu_seconds": round(eng, 3),
        "control_cpu_seconds": round(cpu - eng, 3), "hwsim_cpu_seconds": round(hw, 3),
        "server_x_realtime_1core": round(sim / cpu, 2) if cpu > 0 else None,
        "server_us_per_channel_second": round(cpu / (nch * sim) * 1e6, 2),
        "engine_us_per_channel_second": round(eng / (nch * sim) * 1e6, 2),
        "hwsim_us_per_channel_second": round(hw / (nch * sim) * 1e6, 2),
        "server_ms_per_tick": round(cpu / (sim * 50) * 1e3, 3),
    }


def _install_engine_profile(server, prof: cProfile.Profile) -> None:
    """Wrap each engine's run_tick in the profiler (the engine thread calls it)."""
    for rt in server.boards:
        eng = rt.engine
        orig = eng.run_tick
        eng._bench_orig = orig

        def wrapped(tick: int, _orig=orig) -> None:
            prof.runcall(_orig, tick)
        eng.run_tick = wrapped


def _remove_engine_profile(server) -> None:
    for rt in server.boards:
        if hasattr(rt.engine, "_bench_orig"):
            rt.engine.run_tick = rt.engine._bench_orig


def fit_capacity(rows: list[dict[str, Any]]) -> float | None:
    """N where server CPU per simulated second reaches 1.0, from a least-squares line."""
    pts = [(r["channels"], r["server_cpu_seconds"] / r["sim_seconds"]) for r in rows]
    if len(pts) < 2:
        return None
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return None
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    a = my - b * mx
    return (1.0 - a) / b if b > 0 else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", "--channels", type=int, nargs="+", default=[30, 120, 240, 480, 960])
    ap.add_argument("--seconds", type=float, default=10.0, help="simulated seconds measured per N")
    ap.add_argument("--json", nargs="?", const="-", metavar="FILE",
                    help="JSON instead of the table (to stdout), or to FILE as well as the table")
    ap.add_argument("--idle", action="store_true",
                    help="no calls: every line idle (caller ID armed), for comparison")
    ap.add_argument("--profile", metavar="FILE", help="cProfile the engine thread(s) (last N) into FILE")
    args = ap.parse_args(argv)
    from voiceserver.ivr.prompts import PromptLibrary
    library = PromptLibrary(None, languages=["zh"], fallback="zh")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-server-") as tmp:
        for i, n in enumerate(args.channels):
            prof = args.profile if args.profile and i == len(args.channels) - 1 else None
            rows.append(run_one(n, args.seconds, library, prof, Path(tmp), idle=args.idle))
            if args.json != "-":
                print(f"  N={n}: done", file=sys.stderr, flush=True)
    ok = [r["channels"] for r in rows if (r["server_x_realtime_1core"] or 0) >= 1.0]
    out = {"rows": rows, "largest_measured_n_at_1x_one_core": max(ok) if ok else None,
           "fitted_n_at_1x_one_core": (round(fit_capacity(rows)) if fit_capacity(rows) else None),
           "cpus": os.cpu_count(), "block": 160}
    if args.json == "-":
        print(json.dumps(out, indent=1))
        return 0
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")
    print("whole server (engine + control plane) on lockstep hwsim; "
          + ("every line idle, no calls" if args.idle else "every channel in the IVR"))
    print(f"{'N':>6} {'sim s':>6} {'wall s':>7} {'x rt':>6} {'srv cpu s':>9} {'engine':>7} "
          f"{'control':>7} {'1-core x':>8} {'us/ch-s':>8} {'ms/tick':>8} {'hwsim cpu':>9} {'hw us/ch-s':>10}")
    for r in rows:
        print(f"{r['channels']:>6} {r['sim_seconds']:>6.1f} {r['wall_seconds']:>7.2f} {r['x_realtime']:>6.2f} "
              f"{r['server_cpu_seconds']:>9.2f} {r['engine_cpu_seconds']:>7.2f} {r['control_cpu_seconds']:>7.2f} "
              f"{r['server_x_realtime_1core']:>8.2f} {r['server_us_per_channel_second']:>8.1f} "
              f"{r['server_ms_per_tick']:>8.2f} {r['hwsim_cpu_seconds']:>9.2f} "
              f"{r['hwsim_us_per_channel_second']:>10.1f}")
    print(f"largest measured N at >= 1x real time on one core (server CPU): "
          f"{out['largest_measured_n_at_1x_one_core']}; linear fit: {out['fitted_n_at_1x_one_core']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
