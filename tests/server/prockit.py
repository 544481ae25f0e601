"""Real processes for the server tests: hwsim and `voiceboard serve`, their logs and the card.

    proc, report_dir = hwsim(tmp_path, name, SCENARIO)   # hotline as board `name`, ready
    srv = serve(cfg, log, "--lockstep-sync")             # voiceboard serve, events logged to `log`
    wait_for(lambda: events(log, "call.bridge"), "a bridge", [proc, srv])
    card(name)                                           # the card's status registers
"""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "tests" / "server" / "configs"


def wait_for(pred, what: str, procs, limit: float = 90.0) -> None:
    deadline = time.monotonic() + limit     # a guard against a wedged process, not a timing check
    while not pred():
        for p in procs:
            assert p.poll() is None, f"{p.args[:4]} exited ({p.returncode}) while waiting for {what}"
        assert time.monotonic() < deadline, f"never saw {what}"
        time.sleep(0.02)


def events(log: Path, kind: str | None = None) -> list[dict]:
    """The bus events `voiceboard serve` logged (one JSON object a line)."""
    out = []
    for line in log.read_text().splitlines():
        if " event {" in line:
            ev = json.loads(line.split(" event ", 1)[1])
            if kind is None or ev["kind"] == kind:
                out.append(ev)
    return out


def hwsim(tmp: Path, name: str, scenario: str, *, clock: str = "lockstep", tag: str = "") -> tuple:
    """`python -m hwsim` serving the hotline as board `name`; (process, report dir)."""
    cfg = tmp / f"hwsim{tag}.toml"
    cfg.write_text((CONFIGS / "hwsim-hotline.toml").read_text().replace("hotline_e2e", name))
    scen = tmp / f"scenario{tag}.toml"
    scen.write_text(scenario.replace("BOARD", name))
    ready, report = tmp / f"ready{tag}.json", tmp / f"report{tag}"
    proc = subprocess.Popen([sys.executable, "-m", "hwsim", "--config", str(cfg), "--scenario", str(scen),
                             "--clock", clock, "--ready-file", str(ready), "--report", str(report)],
                            stdout=subprocess.DEVNULL, stderr=open(tmp / f"hwsim{tag}.log", "w"))
    wait_for(ready.exists, "hwsim ready file", [proc])
    return proc, report


def serve(cfg: Path, log: Path, *extra: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "boarddrv.cli", "serve", "--config", str(cfg),
                             "--status-port", "-1", *extra],
                            stdout=subprocess.DEVNULL, stderr=open(log, "w"), env=env)


def stop_hwsim(proc: subprocess.Popen, report: Path) -> dict:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0
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
    """Cleanup: SIGTERM (hwsim unlinks its boards), then SIGKILL; servekit.stop does it."""
    from servekit import stop
    stop(list(procs))
