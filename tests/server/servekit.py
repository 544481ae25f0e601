"""Shared by the tests that run the real `voiceboard serve` process against hwsim
(test_recording_crash.py, test_call_identity.py): start hwsim and the server as
processes, wait for what they write, read the call database as `voiceboard
calls` would (a second connection while the server writes).

Waits are guards against a wedged process (a wall-clock limit that fails the
test with what was awaited), never timing checks.

Imported by name (``from servekit import ...``), as acdkit.
"""
from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hwsim.spawn import spawn_hwsim, stop_process

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "tests" / "server" / "configs"


def wait_for(pred: Callable[[], Any], what: str, procs: list[subprocess.Popen],
             limit: float = 90.0) -> None:
    deadline = time.monotonic() + limit     # a guard against a wedged process, not a timing check
    while not pred():
        for p in procs:
            assert p.poll() is None, f"{p.args[:4]} exited ({p.returncode}) while waiting for {what}"
        assert time.monotonic() < deadline, f"never saw {what}"
        time.sleep(0.02)


def hwsim(workdir: Path, board: str, scenario: str, hwsim_config: str = "hwsim-hotline.toml"
          ) -> subprocess.Popen:
    """hwsim in lockstep with `scenario` (BOARD stands for the board's name); ready when it returns."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "hwsim.toml").write_text((CONFIGS / hwsim_config).read_text().replace("hotline_e2e", board))
    (workdir / "scenario.toml").write_text(scenario.replace("BOARD", board))
    hw = spawn_hwsim(workdir / "hwsim.toml", scenario=workdir / "scenario.toml", clock="lockstep",
                     ready=workdir / "ready.json", log=workdir / "hwsim.log", timeout=90.0)
    return hw.popen


def server_config(path: Path, board: str, extra: str = "", base: str = "server-recording.toml") -> Path:
    """`base` for `board`, with `extra` TOML appended; [storage] paths are relative to `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text((CONFIGS / base).read_text().replace("hotline_e2e", board) + "\n" + extra)
    return path


def serve(cfg: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "boarddrv.cli", "serve", "--config", str(cfg),
                             "--lockstep-sync", "--status-port", "-1"],
                            stdout=subprocess.DEVNULL, stderr=open(log, "w"))


def serve_with_ami(cfg: Path, log: Path) -> subprocess.Popen:
    """`voiceboard serve` in lockstep with the network API and the AMI feed on ports of the
    system's choosing (`listening_port` says which)."""
    return subprocess.Popen([sys.executable, "-m", "boarddrv.cli", "serve", "--config", str(cfg),
                             "--lockstep-sync", "--status-port", "-1", "--api-port", "0", "--ami-port", "0"],
                            stdout=subprocess.DEVNULL, stderr=open(log, "w"))


def listening_port(log: Path, protocol: str, procs: list[subprocess.Popen]) -> int:
    """The port the server says (api.listening) its `protocol` feed (http, ami) listens on."""
    def found() -> list[dict[str, Any]]:
        return [e for e in events(log, "api.listening") if e["protocol"] == protocol]
    wait_for(found, f"the {protocol} feed listening", procs)
    return int(found()[0]["port"])


def events(log: Path, kind: str | None = None) -> list[dict[str, Any]]:
    """The server's events (of `kind`), from its log (serve logs every event as JSON).

    Only whole lines: the server may be writing the last one as we read (or a kill -9
    cut it), and a torn line is no event yet."""
    out = []
    for line in log.read_text().split("\n")[:-1]:
        if " event {" in line:
            ev = json.loads(line.split(" event ", 1)[1])
            if kind is None or ev["kind"] == kind:
                out.append(ev)
    return out


def rows(db: Path, sql: str, args: tuple = ()) -> list[dict[str, Any]]:
    """Rows of the call database, read by a connection of our own (the server may be writing)."""
    if not db.exists():
        return []
    con = sqlite3.connect(db, timeout=10.0)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute(sql, args)]
    except sqlite3.OperationalError:      # the server has not made the tables yet
        return []
    finally:
        con.close()


def stop(procs: list[subprocess.Popen | None]) -> None:
    """Cleanup: SIGTERM what is still running (hwsim unlinks its boards), then SIGKILL."""
    for p in procs:
        if p is not None:
            stop_process(p, timeout=10.0, kill_timeout=10.0)
