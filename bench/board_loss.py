"""Board loss and return: how fast the server notices a lost board and takes it back.

    .venv/bin/python bench/board_loss.py [--rounds 5] [--json]

Set-up: hwsim serves the hotline (real-time clock) as a separate process;
the voice server runs in this process on that board and a second one
(served by another hwsim process that is never touched). Each round kills
the first hwsim with SIGKILL (the card vanishes), waits for the server's
`board.lost`, starts hwsim again with the same name (a card reset) and
waits for `board.back`. Measured per round, on the host's monotonic clock:

- detect: SIGKILL sent -> `board.lost` published (the host's waits check
  the device's pid; a dead device is noticed within its liveness slice);
- back: hwsim's ready file written -> `board.back` published (the reopen
  backoff: 0.25 s after the loss, doubling to 2 s, so this also depends on
  how long hwsim took to start);
- the untouched board's engine ticked all along (its tick count advanced
  across every round: checked, not timed).

A soak (board loss and back, repeatedly) can use the same recipe: one hwsim
process per board, killed and started again.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hwsim.spawn import HwsimProcess  # noqa: E402


def start_hwsim(work: Path, name: str, tag: str) -> tuple[HwsimProcess, float]:
    """hwsim serving the hotline as `name`, real time; (process, monotonic time it was ready)."""
    cfg = work / f"hwsim-{name}.toml"
    cfg.write_text((REPO / "tests/server/configs/hwsim-hotline.toml").read_text().replace("hotline_e2e", name))
    hw = HwsimProcess(cfg, clock="realtime", ready=work / f"ready-{name}-{tag}.json", log=os.devnull,
                      cwd=REPO).start()
    try:
        hw.wait_ready(timeout=60.0, poll=0.005)     # polled finely: back_ms is measured from here
    except BaseException:
        hw.stop(timeout=10.0, kill_timeout=10.0)
        raise
    return hw, time.monotonic()


async def rounds(server, work: Path, bx: str, procs: dict, n: int) -> list[dict]:
    out = []
    stop = asyncio.Event()
    task = asyncio.create_task(server.run(stop))

    async def until(pred, what: str) -> float:
        deadline = time.monotonic() + 60
        while not pred():
            if task.done() or time.monotonic() > deadline:
                raise RuntimeError(f"never saw {what} (server error: {server.error})")
            await asyncio.sleep(0.001)
        return time.monotonic()

    def count(kind: str) -> int:
        return sum(1 for e in server.bus.journal if e.kind == kind)

    try:
        await until(lambda: server.boards and all(rt.engine.tick > 50 for rt in server.boards), "ticks")
        for k in range(n):
            y_before = server.boards[1].engine.tick
            t_kill = time.monotonic()
            procs["x"].send_signal(signal.SIGKILL)
            procs["x"].popen.wait(10)
            t_lost = await until(lambda k=k: count("board.lost") > k, "board.lost")
            procs["x"], t_ready = await asyncio.to_thread(start_hwsim, work, bx, str(k))
            t_back = await until(lambda k=k: count("board.back") > k, "board.back")
            out.append({"detect_ms": (t_lost - t_kill) * 1000, "back_ms": (t_back - t_ready) * 1000,
                        "y_ticked": server.boards[1].engine.tick > y_before})
    finally:
        stop.set()
        await task
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    import logging
    logging.basicConfig(level=logging.ERROR)
    from voiceserver.config.server import load_config
    from voiceserver.core.server import VoiceServer
    from voiceserver.ivr.prompts import PromptLibrary
    bx, by = f"benchx{os.getpid()}", f"benchy{os.getpid()}"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        procs = {"x": start_hwsim(work, bx, "s")[0], "y": start_hwsim(work, by, "s")[0]}
        try:
            cfg_path = work / "server.toml"
            text = (REPO / "tests/server/configs/server-two-hotlines.toml").read_text()
            cfg_path.write_text(text.replace("hotline_x", bx).replace("hotline_y", by))
            library = PromptLibrary(None, languages=["zh"], fallback="zh")
            server = VoiceServer(load_config(cfg_path, library=library), library, sync=False)
            res = asyncio.run(rounds(server, work, bx, procs, args.rounds))
        finally:
            for hw in procs.values():
                hw.stop(timeout=10.0, kill_timeout=10.0)     # SIGTERM: hwsim unlinks its board
    summary = {k: {"median": round(statistics.median(r[k] for r in res), 1),
                   "max": round(max(r[k] for r in res), 1)} for k in ("detect_ms", "back_ms")}
    summary["rounds"] = len(res)
    summary["other_board_ticked_every_round"] = all(r["y_ticked"] for r in res)
    if args.json:
        print(json.dumps({"summary": summary, "rounds": res}))
    else:
        print(f"{len(res)} rounds: board.lost {summary['detect_ms']['median']} ms after SIGKILL "
              f"(max {summary['detect_ms']['max']}); board.back {summary['back_ms']['median']} ms "
              f"after hwsim was ready again (max {summary['back_ms']['max']}); the other board "
              f"ticked throughout: {summary['other_board_ticked_every_round']}")
    return 0 if summary["other_board_ticked_every_round"] else 1


if __name__ == "__main__":
    sys.exit(main())
