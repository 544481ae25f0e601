"""`voiceboard hwsim` as a separate process: ready file, a host, shutdown, report."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from boarddrv import BoardLost, EventKind, open_board

from worldkit import HOTLINE

VOICEBOARD = os.path.join(os.path.dirname(sys.executable), "voiceboard")


def _wait_ready(path, proc, limit=30.0):
    """The aiosmtpd handshake: wait for the ready file (or the process dying)."""
    deadline = time.monotonic() + limit   # a guard against hangs, not a timed assertion
    while not os.path.exists(path):
        if proc.poll() is not None:
            raise AssertionError(f"hwsim exited {proc.returncode}: {proc.stderr.read()}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("hwsim never wrote its ready file")
        time.sleep(0.02)
    with open(path) as f:
        return json.load(f)


@pytest.fixture
def files(tmp_path):
    name = f"hwp{os.getpid()}"
    cfg = tmp_path / "board.toml"
    cfg.write_text(HOTLINE.replace('name = "hotline"', f'name = "{name}"'))
    sc = tmp_path / "sc.toml"
    sc.write_text(f"""
[scenario]
seed = 3
[[caller]]
at = 0.2
line = "{name}:2"
number = "13912345678"
hangup_after = 1.0
script = [{{ after = 0.2, digits = "12" }}]
""")
    return name, cfg, sc, tmp_path


def test_process_serves_a_host_and_sigterm_gives_boardlost_and_report(files):
    name, cfg, sc, tmp = files
    ready = tmp / "ready.json"
    proc = subprocess.Popen([VOICEBOARD, "hwsim", "--config", str(cfg), "--scenario", str(sc),
                             "--ready-file", str(ready), "--report", str(tmp / "rep")],
                            stderr=subprocess.PIPE, text=True)
    try:
        info = _wait_ready(str(ready), proc)
        assert info["boards"] == {name: f"sim://{name}"} and info["clock"] == "lockstep"
        with open_board(info["boards"][name]) as b:
            b.start(block=160)
            events = []
            while EventKind.RING_START not in [e.kind for e in events]:
                b.wait_tick(timeout=5.0)
                events += b.events()
                b.commit()
            b.hook(2, "offhook")
            for _ in range(100):                 # the caller presses 1 2 and hangs up after 1 s
                b.wait_tick(timeout=5.0)
                events += b.events()
                b.commit()
            b.hook(2, "onhook")
            b.wait_tick(timeout=5.0)
            b.commit()
            proc.send_signal(signal.SIGTERM)
            with pytest.raises(BoardLost):
                for _ in range(10000):
                    b.wait_tick(timeout=5.0)
                    b.commit()
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not os.path.exists(f"/dev/shm/voiceboard.{name}")
    assert not ready.exists()
    report = json.loads((tmp / "rep" / "report.json").read_text())
    (call,) = report["calls"]
    assert call["number"] == "13912345678" and call["channel"] == 2
    assert call["who_hung_up"] == "caller" and call["digits"][0]["digits"] == "12"
    assert call["disconnect"] == "busy-tone"
    import soundfile as sf
    audio, rate = sf.read(tmp / "rep" / call["wav"])
    assert rate == 8000 and len(audio) == pytest.approx(8000, abs=200)


def test_bad_config_is_reported_with_file_and_line(tmp_path):
    cfg = tmp_path / "bad.toml"
    text = HOTLINE.replace('disconnect = "loop-drop"', 'disconnect = "drop"')
    cfg.write_text(text)
    line = text.splitlines().index('disconnect = "drop"') + 1
    r = subprocess.run([VOICEBOARD, "hwsim", "--config", str(cfg)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert f"{cfg}:{line}: key 'board[0].fxo[0].disconnect': expected one of" in r.stderr


def test_killed_process_gives_boardlost(files):
    name, cfg, _, tmp = files
    ready = tmp / "ready.json"
    proc = subprocess.Popen([VOICEBOARD, "hwsim", "--config", str(cfg), "--ready-file", str(ready)],
                            stderr=subprocess.PIPE, text=True)
    try:
        info = _wait_ready(str(ready), proc)
        with open_board(info["boards"][name]) as b:
            b.start(block=160)
            for _ in range(5):
                b.wait_tick(timeout=5.0)
                b.commit()
            proc.kill()
            proc.wait()
            with pytest.raises(BoardLost):
                for _ in range(10000):
                    b.wait_tick(timeout=5.0)
                    b.commit()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        from boarddrv.simdev import SimDevice, SpanSpec
        SimDevice.create(name, [SpanSpec("analog", 1)]).close()   # replaces and unlinks the stale board


def test_a_board_name_in_use_names_the_process_holding_it(files):
    name, cfg, _, tmp = files
    ready = tmp / "ready.json"
    first = subprocess.Popen([VOICEBOARD, "hwsim", "--config", str(cfg), "--ready-file", str(ready)],
                             stderr=subprocess.PIPE, text=True)
    try:
        _wait_ready(str(ready), first)
        second = subprocess.run([VOICEBOARD, "hwsim", "--config", str(cfg)],
                                capture_output=True, text=True, timeout=60)
        assert second.returncode == 1
        assert f"board '{name}' is already served by pid {first.pid} (" in second.stderr
        assert f"voiceboard hwsim --config {cfg} --ready-file" in second.stderr   # its command line
        assert first.poll() is None                 # the first one goes on serving
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(30)
    assert not os.path.exists(f"/dev/shm/voiceboard.{name}")


def test_a_scenario_waits_for_a_host_says_so_and_the_board_carries_its_clock(files):
    import datetime as dt
    name, cfg, sc, tmp = files
    sc.write_text(sc.read_text().replace("[scenario]", "[scenario]\nstart = 2026-11-21T23:30:00+08:00"))
    ready = tmp / "ready.json"
    proc = subprocess.Popen([VOICEBOARD, "hwsim", "--config", str(cfg), "--scenario", str(sc),
                             "--ready-file", str(ready)], stderr=subprocess.PIPE, text=True)
    try:
        _wait_ready(str(ready), proc)
        lines = [proc.stderr.readline() for _ in range(4)]
        assert f"waiting for a host to start sim://{name}: the scenario's time starts" in lines[1]
        assert "voiceboard serve --config" in lines[2] and "voiceboard demo" in lines[3]
        with open_board(f"sim://{name}") as b:
            start = b.clock_start()      # the scenario's simulated day, with its UTC offset
            assert start == dt.datetime(2026, 11, 21, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=8)))
            assert start.utcoffset() == dt.timedelta(hours=8)
            b.start(block=160)
            b.wait_tick(timeout=5.0)
            b.commit()
            assert f"sim://{name}: a host started the board; the scenario runs" in proc.stderr.readline()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
