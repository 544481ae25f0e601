"""Config reload on a running server: new calls get the new config, calls in
progress keep the one they started with, and a bad file changes nothing.

The first test reloads at an exact simulated moment (the server in this
process, hwsim a separate lockstep process); the second drives the real
`voiceboard serve` process with SIGHUP.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hwsim.spawn import HwsimProcess

SCENARIO = """
[scenario]
duration = 300.0
seed = 3

[[caller]]
at = 1.0
line = "hotline_e2e:0"
number = "13911110001"
script = [{ after_silence = 1.0, hangup = true }]

[[caller]]
at = 30.0
line = "hotline_e2e:1"
number = "13911110002"
script = [{ after_silence = 1.0, hangup = true }]
"""

OLD_GREETING = 'greeting = ["main_menu", "press_1_balance"]'
NEW_GREETING = 'greeting = ["main_menu"]'


def test_reload_mid_call_keeps_the_call_and_changes_new_calls(e2e):
    state: dict = {"reloaded": None}

    def until(server) -> bool:
        if state["reloaded"] is None and any(e.kind == "call.answer" for e in server.bus.journal):
            path = Path(server.cfg.file)
            text = path.read_text()
            assert OLD_GREETING in text
            broken = path.with_name("broken.toml")
            broken.write_text(text.replace("[ivr.menus.main]", "[ivr.menus.main]\nretrys = 2"))
            old_cfg = server.cfg
            assert server.reload(str(broken)) is False        # rejected: nothing changes
            assert server.cfg is old_cfg
            new = path.with_name("new.toml")
            new.write_text(text.replace(OLD_GREETING, NEW_GREETING))
            state["reloaded"] = server.reload(str(new))
        return len(server.records) >= 2 and e2e.all_idle(server)

    run = e2e.run(scenario=SCENARIO, max_sim_seconds=90, until=until)
    assert state["reloaded"] is True
    failed = run.events("config.reload_failed")
    assert len(failed) == 1 and "retrys" in failed[0].data["error"]
    assert len(run.events("config.reloaded")) == 1
    first, = run.records_on(0)
    second, = run.records_on(1)
    menus = {}
    for e in run.events("call.play"):
        if "main_menu" in e.data["items"]:
            menus.setdefault(e.call_id, e.data["items"])
    # the call in progress at the reload kept its flow; the next call got the new one
    assert menus[first.call_id] == ["main_menu", "press_1_balance"]
    assert menus[second.call_id] == ["main_menu"]


def _wait_for(pred, what: str, proc: subprocess.Popen, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit     # a guard against a wedged process, not a timing check
    while not pred():
        assert proc.poll() is None, f"server exited ({proc.returncode}) while waiting for {what}"
        assert time.monotonic() < deadline, f"never saw {what}"
        time.sleep(0.05)


def test_voiceboard_serve_reloads_on_sighup_and_admin_command_and_stops_on_sigterm(tmp_path, stop_process):
    repo = Path(__file__).resolve().parents[2]
    name = f"reload{os.getpid()}"
    hw = (repo / "tests/server/configs/hwsim-hotline.toml").read_text().replace("hotline_e2e", name)
    sv = (repo / "tests/server/configs/server-hotline.toml").read_text().replace("hotline_e2e", name)
    (tmp_path / "hwsim.toml").write_text(hw)
    cfg = tmp_path / "server.toml"
    cfg.write_text(sv)
    hwsim = HwsimProcess(tmp_path / "hwsim.toml", clock="realtime", ready=tmp_path / "ready.json",
                         log=os.devnull).start()
    server = None
    try:
        hwsim.wait_ready(timeout=60.0)
        log = tmp_path / "serve.log"
        with socket.socket() as sock:          # a free loopback port for the admin API
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        server = subprocess.Popen([sys.executable, "-m", "boarddrv.cli", "serve", "--config", str(cfg),
                                   "--status-port", str(port)],
                                  stdout=subprocess.DEVNULL, stderr=open(log, "w"))
        text = lambda: log.read_text()  # noqa: E731
        _wait_for(lambda: "board.start" in text(), "board.start", server)
        cfg.write_text(sv.replace("[ivr.menus.main]", "[ivr.menus.main]\nretrys = 2"))
        server.send_signal(signal.SIGHUP)
        _wait_for(lambda: "config reload rejected" in text(), "the rejected reload", server)
        assert "retrys" in text() and "did you mean 'retries'" in text()
        cfg.write_text(sv.replace(OLD_GREETING, NEW_GREETING))
        server.send_signal(signal.SIGHUP)
        _wait_for(lambda: '"kind": "config.reloaded"' in text(), "config.reloaded", server)
        # the admin command does the same over the loopback API, and says when it refused
        reload = [sys.executable, "-m", "boarddrv.cli", "reload", "--api", f"127.0.0.1:{port}",
                  "--config", str(cfg)]     # the admin token: [api] token_file, next to cfg
        ok = subprocess.run(reload, capture_output=True, text=True, timeout=60)
        assert ok.returncode == 0 and ok.stdout.startswith("reloaded "), ok
        cfg.write_text(sv.replace("[ivr.menus.main]", "[ivr.menus.main]\nretrys = 2"))
        time.sleep(1.0)                  # reloads are rate limited: one a second
        bad = subprocess.run(reload, capture_output=True, text=True, timeout=60)
        assert bad.returncode == 1 and "rejected" in bad.stderr and "retrys" in bad.stderr, bad
        # a channel the board does not have: refused like `serve` refuses it at start
        cfg.write_text(sv.replace('agents = "hotline:4-7"', 'agents = "hotline:4-7,99"'))
        time.sleep(1.0)
        gone = subprocess.run(reload, capture_output=True, text=True, timeout=60)
        assert gone.returncode == 1 and "rejected" in gone.stderr, gone
        assert f"{cfg}:" in gone.stderr and "has no channel 99" in gone.stderr, gone
        status = subprocess.run([sys.executable, "-m", "boarddrv.cli", "queues", "--api",
                                 f"127.0.0.1:{port}", "--config", str(cfg), "--once", "--json"],
                                capture_output=True, text=True, timeout=60)
        assert status.returncode == 0, status
        shown = json.loads(status.stdout)
        # no [agents]/[queues] in this config: every agent phone serves the IVR's queues
        assert {a["name"] for a in shown["agents"]} == {f"hotline{c}" for c in range(4, 8)}, shown
        assert shown["queues"] == []     # and this IVR names no queue
        events = [json.loads(line.split("event ", 1)[1]) for line in text().splitlines() if " event {" in line]
        seqs = [e["seq"] for e in events]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        server.send_signal(signal.SIGTERM)
        assert server.wait(30) == 0
        # ... the same file `serve` refuses at start, with the same words
        start = subprocess.run([sys.executable, "-m", "boarddrv.cli", "serve", "--config", str(cfg),
                                "--status-port", "-1"], capture_output=True, text=True, timeout=60)
        assert start.returncode != 0 and "has no channel 99" in start.stderr, start
    finally:
        for p in (server, hwsim):
            if p is not None:
                stop_process(p)


# ---------------------------------------------------------------- start's checks, off the loop
SCENARIO_3 = SCENARIO + """
[[caller]]
at = 55.0
line = "hotline_e2e:2"
number = "13911110003"
script = [{ after_silence = 1.0, hangup = true }]
"""


@pytest.mark.parametrize("how", ["sighup", "admin"])
def test_reload_runs_starts_checks_and_loads_off_the_loop(e2e, monkeypatch, how):
    """A channel the board lacks is refused on reload as at start (the old config serves the
    next call); a good reload (SIGHUP's, or the admin API's of the running file) is loaded in
    a worker thread while the loop goes on with calls."""
    import threading

    import voiceserver.config.server as config_mod
    real_load = config_mod._Loader.load
    loading, go_on = threading.Event(), threading.Event()
    seen: dict = {}

    def load_and_wait(self, *args, **kwargs):
        # the good reload: hold it until the loop moved on
        if "good" in state and os.path.abspath(self.file) == os.path.abspath(state["good"]):
            seen["thread"] = threading.current_thread() is not threading.main_thread()
            loading.set()
            seen["waited"] = go_on.wait(60)     # a guard, not a timing check
        return real_load(self, *args, **kwargs)

    monkeypatch.setattr(config_mod._Loader, "load", load_and_wait)
    state: dict = {}

    def until(server) -> bool:
        answers = [e for e in server.bus.journal if e.kind == "call.answer"]
        path = Path(server.cfg.file)
        if len(answers) >= 1 and "rejected" not in state:
            text = path.read_text()
            bad = path.with_name("bad.toml")
            bad.write_text(text.replace('agents = "hotline:4-7"', 'agents = ["hotline:4-7", "hotline:99"]'))
            old = server.cfg
            state["rejected"] = server.reload(str(bad))
            state["error"] = server.reload_error
            assert server.cfg is old
        if len(answers) >= 2 and "started" not in state:
            new = path.with_name("new.toml") if how == "sighup" else path
            new.write_text(path.read_text().replace(OLD_GREETING, NEW_GREETING))
            state["good"] = str(new)
            if how == "sighup":
                server.reload_soon(str(new))
            else:      # what POST /admin/reload runs (the status API awaits it)
                state["task"] = asyncio.ensure_future(server.admin_reload())
            state["started"] = server.bus.journal[-1].seq
        if loading.is_set() and not go_on.is_set():
            # the load is under way in its thread; once a call event came after it began,
            # let it finish: that event was handled while the file was loading
            if any(e.seq > state["started"] and e.kind.startswith("call.")
                   for e in server.bus.journal):
                state["during"] = [e for e in server.bus.journal if e.seq > state["started"]]
                go_on.set()
        return len(server.records) >= 3 and e2e.all_idle(server)

    run = e2e.run(scenario=SCENARIO_3, max_sim_seconds=120, until=until)
    assert state["rejected"] is False
    line = next(i for i, t in enumerate((run.workdir / "bad.toml").read_text().splitlines(), 1)
                if t.startswith("agents = "))
    assert f"bad.toml:{line}: key 'channels.agents': board hotline " in state["error"]
    assert "has no channel 99" in state["error"]
    failed, = run.events("config.reload_failed")
    assert "has no channel 99" in failed.data["error"]
    # the good reload ran in a worker thread and the loop handled calls meanwhile
    assert seen == {"thread": True, "waited": True}
    assert state["during"] and all(e.kind != "config.reloaded" for e in state["during"])
    reloaded, = run.events("config.reloaded")
    assert reloaded.seq > max(e.seq for e in state["during"])
    menus = {}
    for e in run.events("call.play"):
        if "main_menu" in e.data["items"]:
            menus.setdefault(e.call_id, e.data["items"])
    first, = run.records_on(0)
    second, = run.records_on(1)
    third, = run.records_on(2)
    # after the rejected reload the old config still answered the next call; the call that
    # was up during the good reload kept it; the call after it got the new one
    assert menus[first.call_id] == menus[second.call_id] == ["main_menu", "press_1_balance"]
    assert menus[third.call_id] == ["main_menu"]
