"""A voice server in this process, on lockstep boards, run until a condition holds.

The e2e fixture (conftest.py) and tests that serve their own card (test_r2_engine.py)
share it.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


# ---------------------------------------------------------------- the server
def build_server(config: Path, library, start_time: dt.datetime, **kw: Any):
    from voiceserver.config.server import load_config
    from voiceserver.core.server import VoiceServer
    cfg = load_config(config, library=library)   # every prompt a flow names exists
    return VoiceServer(cfg, library, sync=True, start_time=start_time, **kw)

def sim_seconds(server) -> float:
    """Simulated seconds: the first board's engine tick count (the server's own
    clock, now_ms, moves only on ticks that have events)."""
    rt = server.boards[0] if server.boards else None
    return 0.0 if rt is None else rt.engine.tick * rt.board.block / 8000.0

def run_server(server, until: Callable[[Any], bool], max_sim_seconds: float,
               wall_limit: float = 150.0) -> None:
    """Run `server` (lockstep) until `until(server)` holds; raise if it never does.

    `until` is evaluated on the server's event loop, so it sees the control
    plane between two ticks' handling. `max_sim_seconds` is the real bound
    (simulated time); `wall_limit` only guards against a wedged process."""
    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(server.run(stop))
        failure: str | None = None
        t0 = time.monotonic()
        try:
            while True:
                await asyncio.sleep(0.005)
                if task.done():
                    failure = f"server stopped before the condition held (error: {server.error})"
                    break
                if server.error is not None:
                    failure = f"server error: {server.error}"
                    break
                lost = [f"{rt.name}: {rt.lost}" for rt in server.boards if rt.lost]
                if lost:     # the server goes on without it: say so now, not at the wall limit
                    failure = f"board lost before the condition held ({'; '.join(lost)})"
                    break
                if server.boards and until(server):
                    break
                if sim_seconds(server) > max_sim_seconds:
                    failure = f"condition not met within {max_sim_seconds} simulated s"
                    break
                if time.monotonic() - t0 > wall_limit:
                    failure = (f"condition not met after {wall_limit:.0f} s wall "
                               f"({sim_seconds(server):.1f} simulated s): wedged?")
                    break
        finally:
            stop.set()
            await task     # closes the boards
        if failure is not None:
            raise AssertionError(failure)
    asyncio.run(main())
