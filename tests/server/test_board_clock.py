"""`voiceboard serve` runs on the board's clock: a simulated card's scenario day, not the host's.

Two hwsim processes, one at 10:00 on a Monday and one at 23:30 on a
Saturday (Beijing time), serve one board each to one `voiceboard serve`. Each
board's call takes the flow its own simulated time asks for, and its call row
and recording file carry that board's simulated date, whatever the host's
clock says.
"""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from hwsim.spawn import HwsimProcess

CONFIGS = Path(__file__).resolve().parent / "configs"

SCENARIO = """
[scenario]
start = START
duration = 600.0
seed = 5

[[caller]]
at = 1.0
line = "BOARD:0"
number = "13800000001"
hangup_after = 30.0
script = []
"""

SERVER = """
[[boards]]
uri = "sim://DAY"
name = "day"

[[boards]]
uri = "sim://NIGHT"
name = "night"

[channels]
inbound = ["day:0-3", "night:0-3"]

[prompts]
default_lang = "zh"
languages = ["zh"]

[storage]
recordings = "recordings"
database = "calls.db"
voicemail = "voicemail"
rules_audit = "rules-audit.jsonl"
template = "{date}-{time}_ch{channel}_{call_id}"

[recording]
layout = "stereo"
min_seconds = 1

[schedule]
timezone = "Asia/Shanghai"
day_flow = "day"
night_flow = "night"
hours = [{ days = "mon-fri", from = "09:00", to = "18:00" }]

[ivr.flows.day]
start = "open"

[ivr.flows.night]
start = "closed"

[ivr.menus.open]
greeting = ["welcome"]
retries = 0
first_timeout = 2000
fallback = { action = "hangup", prompts = ["goodbye"] }
options = { "1" = { action = "hangup" } }

[ivr.menus.closed]
greeting = ["closed"]
retries = 0
first_timeout = 2000
fallback = { action = "hangup", prompts = ["goodbye"] }
options = { "1" = { action = "hangup" } }
"""


def _hwsim(tmp: Path, board: str, start: str) -> HwsimProcess:
    """hwsim serving the hotline as `board` from simulated time `start`: started, not yet ready."""
    (tmp / f"{board}.toml").write_text((CONFIGS / "hwsim-hotline.toml").read_text().replace("hotline_e2e", board))
    (tmp / f"{board}-sc.toml").write_text(SCENARIO.replace("START", start).replace("BOARD", board))
    return HwsimProcess(tmp / f"{board}.toml", scenario=tmp / f"{board}-sc.toml", clock="lockstep",
                        ready=tmp / f"{board}-ready.json", log=tmp / f"{board}.log").start()


def _wait_for(pred, what: str, procs, limit: float = 120.0) -> None:
    deadline = time.monotonic() + limit     # a guard against a wedged process, not a timing check
    while not pred():
        for p in procs:
            assert p.poll() is None, f"{p.args[:4]} exited ({p.returncode}) while waiting for {what}"
        assert time.monotonic() < deadline, f"never saw {what}"
        time.sleep(0.05)


def _rows(db: Path) -> dict[str, dict]:
    """Ended calls by board, with their recordings."""
    if not db.exists():
        return {}
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    try:
        calls = con.execute('SELECT * FROM calls WHERE "end" IS NOT NULL').fetchall()
        out = {}
        for c in calls:
            recs = con.execute("SELECT path, status FROM recordings WHERE call_id = ?", (c["call_id"],)).fetchall()
            out[c["board"]] = {**dict(c), "recordings": [dict(r) for r in recs]}
        return out
    except sqlite3.OperationalError:       # the schema is being made
        return {}
    finally:
        con.close()


def test_serve_takes_each_simulated_boards_day_for_flows_rows_and_file_names(tmp_path, stop_process):
    day, night = f"clkday{os.getpid()}", f"clknight{os.getpid()}"
    hwsims = [_hwsim(tmp_path, day, "2026-11-23T10:00:00+08:00"),       # Monday, business hours
              _hwsim(tmp_path, night, "2026-11-21T23:30:00+08:00")]     # Saturday night
    cfg = tmp_path / "server.toml"
    cfg.write_text(SERVER.replace("DAY", day).replace("NIGHT", night))
    serve = None
    try:
        for hw in hwsims:
            hw.wait_ready(timeout=120.0)
        log = tmp_path / "serve.log"
        serve = subprocess.Popen([sys.executable, "-m", "boarddrv.cli", "serve", "--config", str(cfg),
                                  "--lockstep-sync", "--status-port", "-1"],
                                 stdout=subprocess.DEVNULL, stderr=open(log, "w"))
        db = tmp_path / "calls.db"
        _wait_for(lambda: set(_rows(db)) == {"day", "night"}, "both calls ended",
                  [serve] + [hw.popen for hw in hwsims])
        stop_process(serve)
        rows = _rows(db)
    finally:
        for proc in [serve, *hwsims]:
            if proc is not None:
                stop_process(proc)

    d, n = rows["day"], rows["night"]
    # the flow each board's own time asks for
    assert "closed" not in json.dumps(d["ivr_path"]) and "open" in d["ivr_path"], d["ivr_path"]
    assert "closed" in n["ivr_path"] and "open" not in n["ivr_path"], n["ivr_path"]
    # call rows (UTC) on each board's simulated day: 10:00 and 23:30 at +08:00
    assert d["start"].startswith("2026-11-23T02:00:0"), d["start"]
    assert n["start"].startswith("2026-11-21T15:30:0"), n["start"]
    # recording files named and filed by the simulated local date and time
    (dr,), (nr,) = d["recordings"], n["recordings"]
    assert dr["status"] == nr["status"] == "kept"
    assert "/2026/11/23/20261123-1000" in dr["path"] and Path(dr["path"]).exists(), dr
    assert "/2026/11/21/20261121-2330" in nr["path"] and Path(nr["path"]).exists(), nr


def test_between_ticks_the_control_planes_clock_is_the_engines_not_the_last_event(e2e):
    """Work outside a tick's handling (a reload, the admin API, the rules watch)
    is stamped with the engine's tick: on an idle line no event has moved the
    control plane's clock since start, which in real time is seconds behind."""
    seen: dict[str, object] = {}

    def reload_when_idle_for_a_while(server) -> bool:
        rt = server.boards[0]
        if "tick" not in seen and rt.engine.tick >= 400:      # 8 simulated s, no calls
            seen["tick"] = rt.engine.tick
            server.reload(server.cfg.file)
            seen["wallclock"] = server.wallclock(rt)
        return "tick" in seen

    run = e2e.run(scenario="[scenario]\nduration = 60.0\n", until=reload_when_idle_for_a_while,
                  max_sim_seconds=20)
    rt = run.server.boards[0]
    ev, = run.events("config.reloaded")
    assert ev.tick >= seen["tick"]          # not 0: the tick of the last handled event
    assert seen["wallclock"] >= run.server.time_at(rt, seen["tick"])
