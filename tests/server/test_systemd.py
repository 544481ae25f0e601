"""Running under systemd: the shipped unit file, and sd_notify from `voiceboard serve`.

The unit is checked by `systemd-analyze verify` (systemd is in
.ci/apt-packages.txt: a missing tool fails the test, it does not skip)
and for the settings the docs promise. sd_notify is tested against a real
unix datagram socket as $NOTIFY_SOCKET: READY=1 once the boards tick,
WATCHDOG=1 while they tick, none while the card is frozen (hwsim stopped
with SIGSTOP: the tick is stuck), again after SIGCONT, STOPPING=1 at SIGTERM.
"""
from __future__ import annotations

import configparser
import os
import shutil
import signal
import socket
import subprocess

from prockit import REPO, hwsim, kill_all, serve, wait_for

UNIT = REPO / "docs" / "systemd" / "voiceboard.service"


def test_the_unit_file_passes_systemd_analyze_verify(tmp_path):
    tool = shutil.which("systemd-analyze")
    assert tool, "systemd-analyze is missing: install systemd (.ci/apt-packages.txt)"
    exe = REPO / ".venv" / "bin" / "voiceboard"     # verify checks that ExecStart exists
    unit = tmp_path / "voiceboard.service"
    unit.write_text(UNIT.read_text().replace("/opt/voiceboard/.venv/bin/voiceboard", str(exe)))
    p = subprocess.run([tool, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    # verify exits 0 on unknown keys and bad values: it says so on stderr, naming the file
    complaints = [line for line in (p.stdout + p.stderr).splitlines() if unit.name in line]
    assert p.returncode == 0 and complaints == [], p.stdout + p.stderr


def test_the_unit_file_says_what_the_docs_promise():
    ini = configparser.ConfigParser(interpolation=None, strict=True)
    ini.optionxform = str
    ini.read_string(UNIT.read_text())
    svc = ini["Service"]
    assert svc["Type"] == "notify" and svc["NotifyAccess"] == "main"
    assert svc["Restart"] == "on-failure" and svc["RestartPreventExitStatus"] == "2"
    assert svc["WatchdogSec"] == "10s"
    assert svc["ExecStart"].split()[1:3] == ["serve", "--config"]
    assert svc["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert ini["Install"]["WantedBy"] == "multi-user.target"
    assert "docs/systemd/voiceboard.service" in (REPO / "docs" / "server.md").read_text()


def _listen(path: str) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    return s


def test_notify_sends_one_datagram_to_the_socket_systemd_names(tmp_path):
    from voiceserver.core import sdnotify
    path = str(tmp_path / "notify")
    with _listen(path) as s:
        assert sdnotify.notify("READY=1\nSTATUS=x", {"NOTIFY_SOCKET": path})
        assert s.recv(4096) == b"READY=1\nSTATUS=x"
    name = f"voiceboard-test-{os.getpid()}"
    with _listen("\0" + name) as s:                  # '@' names the abstract namespace
        assert sdnotify.notify("WATCHDOG=1", {"NOTIFY_SOCKET": "@" + name})
        assert s.recv(4096) == b"WATCHDOG=1"
    assert not sdnotify.notify("READY=1", {})                                      # not under systemd
    assert not sdnotify.notify("READY=1", {"NOTIFY_SOCKET": str(tmp_path / "nobody")})  # logged, not raised


def test_watchdog_interval_is_half_of_watchdog_usec_for_this_process():
    from voiceserver.core.sdnotify import watchdog_interval
    assert watchdog_interval({"WATCHDOG_USEC": "10000000"}) == 5.0
    assert watchdog_interval({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": str(os.getpid())}) == 5.0
    assert watchdog_interval({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval({}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "soon"}) is None


def _messages(s: socket.socket, timeout: float) -> list[str]:
    """Every datagram until none comes for `timeout` s."""
    out = []
    s.settimeout(timeout)
    while True:
        try:
            out.append(s.recv(4096).decode())
        except TimeoutError:
            return out


def _until(s: socket.socket, want: str, procs, limit: float = 90.0) -> list[str]:
    got: list[str] = []
    s.settimeout(0.2)
    wait_for(lambda: _recv_into(s, got) and any(want in m for m in got), want, procs, limit)
    return got


def _recv_into(s: socket.socket, got: list[str]) -> bool:
    try:
        got.append(s.recv(4096).decode())
    except TimeoutError:
        pass
    return True


def test_serve_tells_systemd_ready_pings_while_ticking_and_stops_pinging_on_a_stuck_tick(tmp_path):
    name = f"sdnotify{os.getpid()}"
    hw, _ = hwsim(tmp_path, name, "[scenario]\nduration = 3600.0\n", clock="realtime")
    cfg = tmp_path / "server.toml"
    cfg.write_text((REPO / "tests/server/configs/server-hotline.toml").read_text().replace("hotline_e2e", name))
    path = str(tmp_path / "notify")
    env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC="400000")     # a ping every 0.2 s
    env.pop("WATCHDOG_PID", None)
    srv = None
    with _listen(path) as s:
        try:
            srv = serve(cfg, tmp_path / "serve.log", env=env)
            got = _until(s, "READY=1", [hw, srv])
            assert got[0].startswith("READY=1\nSTATUS=serving 1 board(s)")
            _until(s, "WATCHDOG=1", [hw, srv])
            hw.send_signal(signal.SIGSTOP)            # the card freezes: no tick comes
            try:
                _messages(s, 1.5)                     # a ping may be on its way from before
                assert _messages(s, 2.0) == []        # then none while the tick is stuck
            finally:
                hw.send_signal(signal.SIGCONT)
            _until(s, "WATCHDOG=1", [hw, srv])        # ticking again: pings again
            srv.send_signal(signal.SIGTERM)
            _until(s, "STOPPING=1", [hw])
            assert srv.wait(60) == 0
        finally:
            kill_all(srv, hw)
