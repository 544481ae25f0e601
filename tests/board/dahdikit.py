"""DAHDI emulator test helpers: an hwsim process serving one mixed board, and programs run on it.

Imported by tests/board/test_dahdi_emu.py and test_dahdi_backend.py.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from hwsim.spawn import spawn_hwsim

REPO = Path(__file__).resolve().parents[2]
LIMIT = 60            # wall seconds: a guard against a hang, not an assertion

BOARD_TOML = """
[[board]]
name = "{name}"
law = "alaw"

[[board.span]]
kind = "analog"
channels = 4

[[board.span]]
kind = "e1"
framing = "cas"
coding = "hdb3"
crc4 = true
timing = 1

[[board.fxo]]
channels = "0-1"
disconnect = "loop-drop"

[[board.fxs]]
channels = "2-3"
"""

# DAHDI numbering: span 1 = analog ports 1-4, span 2 = E1 channels 5-35
# (timeslot 16 is channel 20). FXO ports take FXS signalling and back.
SYSTEM_CONF = """# voiceboard test board
span=2,1,0,cas,hdb3,crc4
fxsks=1-2
fxoks=3-4
cas=5-19:1101
cas=21-35:1101
loadzone=cn
defaultzone=cn
"""


# A scenario's E1 faults: LOS on span 1, RAI while it lasts, both cleared ({name}: the board)
LOS_THEN_RAI = """
[scenario]
duration = 3600.0

[[fault]]
at = 1.0
kind = "alarm-set"
span = "{name}:1"
alarm = "LOS"

[[fault]]
at = 1.5
kind = "alarm-set"
span = "{name}:1"
alarm = "RAI"

[[fault]]
at = 2.0
kind = "alarm-clear"
span = "{name}:1"
alarm = "LOS"

[[fault]]
at = 2.5
kind = "alarm-clear"
span = "{name}:1"
alarm = "RAI"
"""


def sbin(prog: str) -> str:
    return shutil.which(prog, path="/usr/sbin:/usr/bin:/sbin:/bin") or prog


class Hwsim:
    """`python -m hwsim` serving one board, and dahdi-run on it."""

    def __init__(self, workdir: Path, name: str, scenario: str | None = None) -> None:
        self.name = name
        self.uri = f"sim://{name}"
        self.workdir = workdir
        self.state = workdir / "dahdi.state"
        cfg = workdir / "board.toml"
        cfg.write_text(BOARD_TOML.format(name=name))
        scen = None
        if scenario:
            scen = workdir / "scenario.toml"
            scen.write_text(scenario.format(name=name))
        self.log = workdir / "hwsim.log"
        self.hwsim = spawn_hwsim(cfg, scenario=scen, clock="lockstep", ready=workdir / "ready.json",
                                 log=self.log, stdout_to_log=True, timeout=LIMIT)

    def stop(self) -> None:
        self.hwsim.stop(timeout=30.0, kill_timeout=10.0)

    def dahdi_run(self, *cmd: str, check: bool = True, timeout: float = LIMIT,
                  extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
        argv = [sys.executable, "-m", "boarddrv.cli", "dahdi-run", "--state", str(self.state),
                *extra, self.uri, "--", *cmd]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        if check:
            assert r.returncode == 0, f"{cmd}: exit {r.returncode}\n{r.stdout}\n{r.stderr}"
        return r

    def configure(self, conf: str = SYSTEM_CONF, *args: str) -> subprocess.CompletedProcess:
        path = self.workdir / "system.conf"
        path.write_text(conf)
        return self.dahdi_run(sbin("dahdi_cfg"), "-c", str(path), *args, check=False)

    def scan_json(self) -> dict:
        r = subprocess.run([sys.executable, "-m", "boarddrv.cli", "scan", "--json", self.uri],
                           capture_output=True, text=True, timeout=LIMIT, check=True)
        return json.loads(r.stdout)["boards"][0]


def parse_scan(text: str) -> dict[int, dict[str, list[str]]]:
    """dahdi_scan's ini output: {span: {key: [values]}} (port= repeats)."""
    spans: dict[int, dict[str, list[str]]] = {}
    cur: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            cur = spans.setdefault(int(line[1:-1]), {})
        elif "=" in line:
            k, v = line.split("=", 1)
            cur.setdefault(k, []).append(v)
    return spans
