"""Real-time mode: do the board's ticks and the server's events keep up with real time?

    .venv/bin/python bench/realtime_clock.py                  # 60 s, the demo's callers
    .venv/bin/python bench/realtime_clock.py --seconds 120 --calls 20

hwsim runs as a separate process with `--clock realtime` (the demo's hotline
and callers, on a board named for this run), the voice server in this
process with `sync=False`, as `voiceboard demo --real-time` runs them. Every
second the bench compares, in ticks (20 ms):

- device lag = wall-clock ticks since the first tick - ticks the card made:
  how far the simulated card's clock has fallen behind real time (a real
  card's never does; hwsim used to drop the time it spent descheduled);
- engine lag = ticks the card made - the engine's tick (the host skips ticks
  it cannot keep up with: overruns);
- handling lag = the engine's tick when the control plane handles an event
  - the tick the event is stamped with (a backlog on the control plane).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hwsim.spawn import HwsimProcess  # noqa: E402
from voiceserver.cli import serve as cli  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--calls", type=int, default=12)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vb-rtclock-"))
    board = f"rtclock{os.getpid()}"
    (work / "hw.toml").write_text(cli.demo_hwsim_config(board))
    (work / "sc.toml").write_text(cli.demo_scenario(args.calls, args.seconds / 60 + 1, 1, board))
    # started and ready inside, stopped (SIGTERM) on leaving; its stderr in hwsim.log
    with HwsimProcess(work / "hw.toml", scenario=work / "sc.toml", clock="realtime",
                      ready=work / "ready.json", log=work / "hwsim.log"):
        cfg, library, VoiceServer = cli._build(str(cli.DEMO_CONFIG))
        cfg = replace(cfg, boards=[replace(cfg.boards[0], uri=f"sim://{board}")],
                      storage=replace(cfg.storage, recordings=str(work / "rec"), database=str(work / "calls.db"),
                                      voicemail=str(work / "vm"), rules_audit=str(work / "audit.jsonl")))
        server = VoiceServer(cfg, library, sync=False)
        handling: list[int] = []
        handle = server._handle

        def timed_handle(index: int, tick: int, events: list) -> None:
            handling.append(server.boards[index].engine.tick - tick)
            handle(index, tick, events)
        server._handle = timed_handle
        rows = asyncio.run(_run(server, args.seconds))
    last = rows[-1]
    out = {"seconds": args.seconds, "calls": len(server.records),
           "device_lag_ticks_end": last["device_lag"], "device_lag_ticks_max": max(r["device_lag"] for r in rows),
           "engine_lag_ticks_max": max(r["engine_lag"] for r in rows), "overruns": last["overruns"],
           "handling_lag_ticks_max": max(handling, default=0),
           "handling_lag_ticks_mean": round(statistics.mean(handling), 2) if handling else 0.0,
           "events_handled": len(handling)}
    if args.json:
        print(json.dumps(out))
    else:
        for k, v in out.items():
            print(f"{k:26} {v}")
    return 0


async def _run(server, seconds: float) -> list[dict]:
    stop = asyncio.Event()
    task = asyncio.create_task(server.run(stop))
    while not server.boards or server.boards[0].engine.tick <= 0:
        await asyncio.sleep(0.01)
    rt = server.boards[0]
    t0, dev0 = time.monotonic(), rt.board.stats()["ticks"]
    rows = []
    while time.monotonic() - t0 < seconds and not task.done():
        await asyncio.sleep(1.0)
        st = rt.board.stats()
        wall = (time.monotonic() - t0) * 8000 / rt.board.block
        made = st["ticks"] - dev0
        rows.append({"device_lag": round(wall - made), "engine_lag": st["ticks"] - 1 - rt.engine.tick,
                     "overruns": st["overruns"]})
    stop.set()
    await task
    return rows


if __name__ == "__main__":
    sys.exit(main())
