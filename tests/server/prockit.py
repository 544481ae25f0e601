"""Real processes for the server tests: hwsim and `voiceboard serve`, their logs and the card.

    proc, report_dir = hwsim(tmp_path, name, SCENARIO)   # hotline as board `name`, ready
    srv = serve(cfg, log, "--lockstep-sync")             # voiceboard serve, events logged to `log`
    wait_for(lambda: events(log, "call.bridge"), "a bridge", [proc, srv])
    card(name)                                           # the card's status registers
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from hwsim.spawn import spawn_hwsim, stop_process

# the helpers both kits need live in servekit
from servekit import CONFIGS, REPO, events, stop, wait_for  # noqa: F401  (re-exported)


def hwsim(tmp: Path, name: str, scenario: str, *, clock: str = "lockstep", tag: str = "") -> tuple:
    """`python -m hwsim` serving the hotline as board `name`; (process, report dir)."""
    cfg = tmp / f"hwsim{tag}.toml"
    cfg.write_text((CONFIGS / "hwsim-hotline.toml").read_text().replace("hotline_e2e", name))
    scen = tmp / f"scenario{tag}.toml"
    scen.write_text(scenario.replace("BOARD", name))
    report = tmp / f"report{tag}"
    hw = spawn_hwsim(cfg, scenario=scen, clock=clock, ready=tmp / f"ready{tag}.json", report=report,
                     log=tmp / f"hwsim{tag}.log", timeout=90.0)
    return hw.popen, report


def serve(cfg: Path, log: Path, *extra: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "boarddrv.cli", "serve", "--config", str(cfg),
                             "--status-port", "-1", *extra],
                            stdout=subprocess.DEVNULL, stderr=open(log, "w"), env=env)


def stop_hwsim(proc: subprocess.Popen, report: Path) -> dict:
    """SIGTERM; hwsim must end cleanly (status 0) and write its report."""
    stopped = stop_process(proc, timeout=60.0)
    assert stopped == (0, False), f"hwsim did not stop cleanly: {stopped}"
    return json.loads((report / "report.json").read_text())


def server_config(tmp: Path, name: str) -> Path:
    """server-recording.toml (IVR; 0 queues to agent chen on port 5; [storage] here), recording on."""
    cfg = tmp / "server.toml"
    cfg.write_text((CONFIGS / "server-recording.toml").read_text().replace("hotline_e2e", name)
                   + '\n[recording]\nlayout = "stereo"\n')
    return cfg


def card(name: str) -> dict[int, dict]:
    """The card's status registers, read as `voiceboard scan` does (no host claim)."""
    from boarddrv import open_board
    with open_board(f"sim://{name}") as b:
        return {c.index: b.channel_status(c.index) for c in b.channels}


def kill_all(*procs) -> None:
    """Cleanup: SIGTERM (hwsim unlinks its boards), then SIGKILL."""
    stop(list(procs))
