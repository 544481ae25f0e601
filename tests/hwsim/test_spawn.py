"""hwsim.spawn with real processes: ready, an early exit reported, a stop escalated to SIGKILL."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hwsim.spawn import (
    HwsimExited,
    HwsimNotReady,
    HwsimProcess,
    spawn_hwsim,
    stop_process,
)

from worldkit import HOTLINE


@pytest.fixture
def board(tmp_path):
    """(name, config path): the hotline under a name of this test run's own."""
    name = f"spawn{os.getpid()}"
    cfg = tmp_path / "board.toml"
    cfg.write_text(HOTLINE.replace('name = "hotline"', f'name = "{name}"'))
    yield name, cfg
    Path(f"/dev/shm/voiceboard.{name}").unlink(missing_ok=True)    # after a SIGKILL


def test_spawn_waits_until_ready_and_stop_is_clean(board, tmp_path):
    name, cfg = board
    log, ready = tmp_path / "hwsim.log", tmp_path / "ready.json"
    ready.write_text("{}")                      # stale, from an earlier run: not taken as ready
    with HwsimProcess(cfg, ready=ready, log=log, report=tmp_path / "rep") as hw:
        assert hw.info is not None and hw.info["boards"] == {name: f"sim://{name}"}
        assert hw.info["clock"] == "lockstep"
        assert Path(f"/dev/shm/voiceboard.{name}").exists()   # the board is there
        assert hw.alive()
        assert "--report" in hw.argv and "--clock" in hw.argv
    assert hw.returncode == 0 and not hw.killed
    assert not ready.exists()                   # hwsim removes it on exit
    assert not Path(f"/dev/shm/voiceboard.{name}").exists()
    assert (tmp_path / "rep" / "report.json").exists()
    assert "serving sim://" in log.read_text()  # its stderr went to the log


def test_exit_before_ready_reports_status_and_log_tail(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(HOTLINE.replace('disconnect = "loop-drop"', 'disconnect = "drop"'))
    with pytest.raises(HwsimExited) as err:
        spawn_hwsim(cfg, ready=tmp_path / "ready.json", log=tmp_path / "hwsim.log", timeout=60)
    assert err.value.returncode == 2
    msg = str(err.value)
    assert "hwsim exited with status 2 before it was ready" in msg
    assert "board[0].fxo[0].disconnect" in msg and str(tmp_path / "hwsim.log") in msg   # why, and where
    assert "disconnect" in err.value.tail


def test_not_ready_in_time_and_a_stop_of_a_held_hwsim_is_escalated(board, tmp_path):
    """SIGSTOPped (as the soak holds a board), hwsim cannot act on SIGTERM: stop() must SIGKILL it."""
    _, cfg = board
    hw = HwsimProcess(cfg, ready=tmp_path / "ready.json", log=tmp_path / "hwsim.log").start()
    try:
        hw.send_signal(signal.SIGSTOP)
        with pytest.raises(HwsimNotReady, match=r"hwsim not ready after 0 s"):
            hw.wait_ready(timeout=0.3)
        assert hw.alive()                       # a timeout leaves it running for the caller to stop
        t0 = time.monotonic()
        rc = hw.stop(timeout=0.5, kill_timeout=10)
        assert rc == -signal.SIGKILL and hw.killed
        assert time.monotonic() - t0 < 10       # a guard, not a timing check
    finally:
        if hw.alive():
            hw.popen.kill()
            hw.popen.wait()


def test_stop_process_escalates_when_sigterm_is_ignored(tmp_path):
    started = tmp_path / "started"
    ignores_sigterm = ("import pathlib, signal, time\n"
                       "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                       f"pathlib.Path({str(started)!r}).touch()\n"
                       "time.sleep(120)\n")
    proc = subprocess.Popen([sys.executable, "-c", ignores_sigterm])
    try:
        deadline = time.monotonic() + 30
        while not started.exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        stopped = stop_process(proc, timeout=0.3, kill_timeout=10)
        assert stopped.killed and stopped.returncode == -signal.SIGKILL
        assert stop_process(proc) == (-signal.SIGKILL, False)    # already gone: nothing to do
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_failed_spawn_leaves_no_process(board, tmp_path, monkeypatch):
    """spawn_hwsim stops hwsim when it does not get ready in time."""
    _, cfg = board
    seen: list[HwsimProcess] = []
    real_wait = HwsimProcess.wait_ready

    def too_soon(self, timeout=60.0, poll=0.02):
        seen.append(self)
        return real_wait(self, 0.0, poll)       # python has not even started hwsim yet
    monkeypatch.setattr(HwsimProcess, "wait_ready", too_soon)
    with pytest.raises(HwsimNotReady):
        spawn_hwsim(cfg, ready=tmp_path / "ready.json", log=tmp_path / "hwsim.log")
    assert seen and not seen[0].alive() and seen[0].returncode is not None


def test_not_started_is_an_error_not_a_crash(tmp_path):
    hw = HwsimProcess(tmp_path / "none.toml", ready=tmp_path / "r.json")
    assert hw.stop() is None and not hw.alive()
    with pytest.raises(RuntimeError, match="not started"):
        hw.wait_ready(0.1)


def test_importing_spawn_loads_no_simulator():
    """A launcher (bench/soak.py runs with bench/ first on sys.path, where bench/dsp.py
    would shadow the dsp package) imports hwsim.spawn without the simulator behind it."""
    code = ("import sys, hwsim.spawn\n"
            "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('numpy', 'dsp', 'boarddrv')\n"
            "                or m in ('hwsim.simulator', 'hwsim.world'))\n"
            "assert not loaded, loaded\n"
            "from hwsim import Simulator, Action\n"        # the package's names still resolve
            "assert Simulator.__module__ == 'hwsim.simulator' and Action.__module__ == 'hwsim.parties'\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       check=False, cwd=Path(__file__).resolve().parents[2])
    assert r.returncode == 0, r.stderr
