"""How fast does the board library move audio in lockstep? (8, 240, 960 channels)

Lockstep is what CI and load scenarios run on: the device advances as soon as
the host commits, so the question is how many times faster than real time a
board of N channels can tick, and what each channel-tick costs in the native
path (shared-memory rings, the tick handshake, the block views).

Device side: a plain ``boarddrv.simdev.SimDevice`` loop in a child process
(multiprocessing, spawn) that copies what the host sent back into rx each
tick, like a card in loopback. Not hwsim: hwsim adds the world behind the
ports (lines, phones, tones), which is its own cost and not the board path.
Host side: a plain loop of wait_tick, ``tx[:] = rx``, commit.

CPU is measured per side: the host with ``time.process_time()``, the device
with ``resource.getrusage(RUSAGE_CHILDREN)`` after it has exited. In
lockstep the two sides take turns, so the sum is the one-core cost. There is
no peer to compare against (no other lockstep board simulator exists); the
figure to check is that 960 channels (32 E1 spans) tick at least 50x faster
than real time on one core.

    .venv/bin/python bench/board_ticks.py [--seconds 2] [--json] [--dahdi]

``--dahdi`` adds a ``dahdi://`` row per size in the same run: the same
board served through the DAHDI device emulator (boarddrv/libvbdahdi.so,
lockstep pace) and opened with the dahdi:// backend, which does what it does
on a real card: one read() and one write() per channel per tick, with the
emulator standing in for the kernel in the same process. Its host CPU is
therefore backend + "kernel"; the emulator's board ticks are 10 ms, so the
device ticks twice per 20 ms host tick.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import sys
import time
from typing import Any

import numpy as np

BLOCK = 160
RATE = 8000
TARGET_X = 50.0

# name -> (spans, label): (kind, nchan) per span
LAYOUTS: dict[int, tuple[list[tuple[str, int]], str]] = {
    8: ([("analog", 8)], "1 analog span x 8"),
    240: ([("e1", 30)] * 8, "8 E1 CAS spans x 30"),
    960: ([("e1", 30)] * 32, "32 E1 CAS spans x 30"),
}


def _device(name: str, nchan: int, ticks: int, ready: Any, result: Any) -> None:
    """Child process: create the board, serve 1 + `ticks` ticks, copy tx back into rx.

    Sends the CPU time of the `ticks` timed ticks (not start-up) through `result`."""
    from boarddrv import ChannelType
    from boarddrv.simdev import ChanSpec, SimDevice, SpanSpec

    spans, chans = [], []
    for i, (kind, n) in enumerate(LAYOUTS[nchan][0]):
        if kind == "e1":
            spans.append(SpanSpec(kind="e1", nchan=n, framing="cas", coding="hdb3"))
            chans += [ChanSpec(type=ChannelType.E1_CAS, span=i) for _ in range(n)]
        else:
            spans.append(SpanSpec(kind="analog", nchan=n))
            chans += [ChanSpec(type=ChannelType.FXO, span=i) for _ in range(n)]
    dev = SimDevice.create(name, spans=spans, channels=chans, law="alaw", clock="lockstep")
    try:
        ready.set()
        if not dev.wait_host(30.0):
            raise SystemExit("bench device: no host attached within 30 s")
        dev.next_tick(30.0)                  # first tick: start-up, not timed
        dev.publish()
        cpu0 = time.process_time()
        for _ in range(ticks):
            dev.next_tick(30.0)
            np.copyto(dev.rx, dev.tx)
            dev.publish()
        result.send(time.process_time() - cpu0)
    finally:
        dev.close()


def host_loop(uri: str, ticks: int) -> tuple[float, float]:
    """The host side: wait_tick, tx[:] = rx, commit; (CPU seconds, wall seconds) of the timed ticks."""
    from boarddrv import open_board
    with open_board(uri) as board:
        board.start(block=BLOCK)
        board.wait_tick(timeout=10.0)           # first tick: not timed (start-up)
        board.commit()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for _ in range(ticks):
            board.wait_tick(timeout=10.0)
            board.tx[:] = board.rx
            board.commit()
        return time.process_time() - cpu0, time.perf_counter() - wall0


def _dahdi_host(name: str, ticks: int) -> tuple[float, float]:
    """host_loop on dahdi:// in a child process with the emulator preloaded."""
    import subprocess
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        argv = [sys.executable, "-m", "boarddrv.cli", "dahdi-run", "--configure", "--pace", "lockstep",
                "--state", f"{tmp}/state", f"sim://{name}", "--",
                sys.executable, os.path.abspath(__file__), "--host-loop", "dahdi://", "--ticks", str(ticks)]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise RuntimeError(f"dahdi host loop failed: {r.stderr.strip()}")
    out = json.loads(r.stdout)
    return out["cpu"], out["wall"]


def run_one(nchan: int, seconds: float, scheme: str = "sim") -> dict[str, Any]:
    """Tick an nchan board for about `seconds` of wall time; return the figures."""
    ticks = _calibrate(nchan, seconds) // (10 if scheme == "dahdi" else 1)
    dev_ticks = 2 * ticks + 1 if scheme == "dahdi" else ticks    # the emulator ticks every 10 ms
    name = f"bench{os.getpid()}_{nchan}"
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    recv, send = ctx.Pipe(duplex=False)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = ctx.Process(target=_device, args=(name, nchan, dev_ticks, ready, send), daemon=True)
    proc.start()
    if not ready.wait(30):
        proc.kill()
        raise RuntimeError(f"bench device for {nchan} channels did not come up")
    if scheme == "dahdi":
        host_cpu, wall = _dahdi_host(name, ticks)
    else:
        host_cpu, wall = host_loop(f"sim://{name}", ticks)
    if not recv.poll(30):
        proc.kill()
        raise RuntimeError(f"bench device for {nchan} channels sent no result")
    dev_cpu = recv.recv()
    proc.join(30)
    if proc.exitcode != 0:
        raise RuntimeError(f"bench device for {nchan} channels exited with {proc.exitcode}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    dev_total = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    audio_s = ticks * BLOCK / RATE
    return {
        "uri": scheme + "://", "channels": nchan, "layout": LAYOUTS[nchan][1], "ticks": ticks, "wall_s": wall,
        "ticks_per_s": ticks / wall, "x_realtime": audio_s / wall,
        "x_realtime_one_core": audio_s / (host_cpu + dev_cpu),
        "host_cpu_s": host_cpu, "device_cpu_s": dev_cpu,
        "host_chan_s_per_cpu_s": nchan * audio_s / host_cpu if host_cpu else float("inf"),
        "device_chan_s_per_cpu_s": nchan * audio_s / dev_cpu if dev_cpu else float("inf"),
        "host_ns_per_chan_tick": host_cpu / (ticks * nchan) * 1e9,
        "device_ns_per_chan_tick": dev_cpu / (ticks * nchan) * 1e9,
        "ns_per_chan_tick": (host_cpu + dev_cpu) / (ticks * nchan) * 1e9,
        "us_per_tick": (host_cpu + dev_cpu) / ticks * 1e6,       # both sides, whole board
        "device_cpu_total_s": dev_total,   # getrusage(RUSAGE_CHILDREN): with spawn + imports
    }


def _calibrate(nchan: int, seconds: float) -> int:
    """Tick count from a rough rate guess per size, so each size runs about `seconds`."""
    guess = {8: 35000, 240: 25000, 960: 15000}[nchan]   # ticks/s measured on the dev box
    return max(200, int(guess * seconds))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=2.0, help="rough wall time per size (default 2)")
    ap.add_argument("--sizes", default="8,240,960", help="channel counts, from 8, 240, 960")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--dahdi", action="store_true", help="add a dahdi:// row per size (through the emulator)")
    ap.add_argument("--host-loop", metavar="URI", help=argparse.SUPPRESS)   # the dahdi:// child
    ap.add_argument("--ticks", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.host_loop:
        cpu, wall = host_loop(args.host_loop, args.ticks)
        print(json.dumps({"cpu": cpu, "wall": wall}))
        return 0
    try:
        sizes = [int(s) for s in args.sizes.split(",")]
    except ValueError:
        print(f"board_ticks: --sizes {args.sizes!r}: expected numbers like 8,240,960", file=sys.stderr)
        return 2
    bad = [s for s in sizes if s not in LAYOUTS]
    if bad:
        print(f"board_ticks: --sizes: {bad} not among {sorted(LAYOUTS)}", file=sys.stderr)
        return 2
    results = []
    for n in sizes:
        results.append(run_one(n, args.seconds))
        if args.dahdi:
            results.append(run_one(n, args.seconds, "dahdi"))
    verdict = None
    if 960 in sizes:
        r960 = next(r for r in results if r["channels"] == 960 and r["uri"] == "sim://")
        verdict = {"target_x_realtime_960_one_core": TARGET_X,
                   "measured": r960["x_realtime_one_core"],
                   "pass": r960["x_realtime_one_core"] >= TARGET_X}
    if args.json:
        json.dump({"block": BLOCK, "results": results, "check": verdict,
                   "peer": None, "cpus": os.cpu_count()}, sys.stdout, indent=2)
        print()
        return 0
    from rich.console import Console
    from rich.table import Table
    t = Table(title=f"lockstep board ticks, block {BLOCK} (20 ms); device = SimDevice child process",
              title_justify="left")
    for col in ["uri", "channels", "layout", "ticks", "ticks/s", "x real time", "x RT one core",
                "host ch-s/CPU-s", "dev ch-s/CPU-s", "host ns/ch-tick", "dev ns/ch-tick", "us/tick"]:
        t.add_column(col, justify="left" if col in ("layout", "uri") else "right")
    for r in results:
        t.add_row(r["uri"], str(r["channels"]), r["layout"], str(r["ticks"]), f"{r['ticks_per_s']:,.0f}",
                  f"{r['x_realtime']:,.0f}", f"{r['x_realtime_one_core']:,.0f}",
                  f"{r['host_chan_s_per_cpu_s']:,.0f}", f"{r['device_chan_s_per_cpu_s']:,.0f}",
                  f"{r['host_ns_per_chan_tick']:.1f}", f"{r['device_ns_per_chan_tick']:.1f}",
                  f"{r['us_per_tick']:.1f}")
    Console(width=180).print(t)
    print("x RT one core = audio seconds / (host + device CPU seconds): the two sides take turns.")
    print("ns/ch-tick = CPU per channel per 20 ms tick; us/tick = CPU per board tick, both sides:"
          " the fixed per-tick cost (handshake, Python calls) dominates at 8 channels.")
    print("Device CPU: process_time() of its tick loop; with start-up (getrusage of the child): "
          + ", ".join(f"{r['channels']} ch {r['device_cpu_total_s']:.2f} s" for r in results)
          + ". No peer exists for this benchmark.")
    if verdict:
        print(f"check: 960 channels >= {TARGET_X:g}x real time on one core: "
              f"{verdict['measured']:,.0f}x -> {'PASS' if verdict['pass'] else 'FAIL'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
