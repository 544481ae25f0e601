"""The dahdi:// backend, run in CI through the DAHDI emulator.

The board contract suite (tests/hardware) runs on `dahdi://` with the
emulator serving a hwsim board; then what only DAHDI does: events arrive
through ELAST and GETEVENT, errors name the channel and what to check.
Each program runs as `voiceboard dahdi-run ... -- python ...`: the
emulator must be preloaded before the process starts.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from boardkit import CAS0, FXO0, FXS0, DeviceThread, mixed_board
from dahdikit import LIMIT, REPO, Hwsim, sbin

pytestmark = pytest.mark.skipif(not Path(sbin("dahdi_cfg")).exists(),
                                reason="Debian package dahdi not installed (.ci/apt-packages.txt)")

CLI = [sys.executable, "-m", "boarddrv.cli"]


def dahdi_run(uri: str, state: Path, *cmd: str, configure: bool = True, env: dict | None = None,
              pace: str = "lockstep", **kw) -> subprocess.CompletedProcess:
    argv = CLI + ["dahdi-run", "--state", str(state), "--pace", pace]
    argv += ["--configure"] if configure else []
    return subprocess.run(argv + [uri, "--", *cmd], capture_output=True, text=True, timeout=LIMIT * 3,
                          env=env, **kw)


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_board_contract_holds_on_dahdi(tmp_path, name):
    """tests/hardware (what `make test-hardware URI=dahdi://` runs on a card) passes through the emulator."""
    import os
    sim = Hwsim(tmp_path, name)
    try:
        env = dict(os.environ, VB_TEST_URI="dahdi://")
        # card pace: the board ticks in real time, as a card does for `make test-hardware`
        r = dahdi_run(sim.uri, sim.state, sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                      str(REPO / "tests" / "hardware"), env=env, cwd=REPO, pace="card")
        assert r.returncode == 0, r.stdout + r.stderr
        assert "7 passed" in r.stdout and "skipped" not in r.stdout, r.stdout
    finally:
        sim.stop()


def test_events_come_through_getevent(name, tmp_path):
    """Hook, ring and CAS changes on the simulated card reach dahdi:// as board events."""
    def on_tick(dev, t):
        if t == 30:
            dev.post("HOOK_OFF", FXS0)
            dev.post("CAS", CAS0, 0b0011)
            dev.post("RING_START", FXO0)
        if t == 60:
            dev.post("RING_STOP", FXO0)
            dev.post("HOOK_ON", FXS0)
    dev = mixed_board(name)
    code = """
import json
from boarddrv import open_board
with open_board("dahdi://") as b:
    b.start(160)
    out = []
    for _ in range(60):
        b.wait_tick(5.0)
        out += [(e.kind.name, e.chan, e.value) for e in b.events()]
        b.commit()
    print(json.dumps(out))
"""
    try:
        with DeviceThread(dev, on_tick):
            r = dahdi_run(f"sim://{name}", tmp_path / "state", *python(code))
    finally:
        dev.close()
    assert r.returncode == 0, r.stderr
    events = [tuple(e) for e in json.loads(r.stdout)]
    assert ("HOOK_OFF", FXS0, 0) in events and ("HOOK_ON", FXS0, 0) in events
    assert ("CAS", CAS0, 0b0011) in events
    ring = [e for e in events if e[1] == FXO0]
    assert [e[0] for e in ring] == ["RING_START", "RING_STOP"]
    assert events.index(("HOOK_OFF", FXS0, 0)) < events.index(("HOOK_ON", FXS0, 0))


def test_span_alarms_and_counters_match_sim(name, tmp_path):
    dev = mixed_board(name)
    try:
        with DeviceThread(dev):
            dev.set_alarms(1, ["LOS"])
            dev.add_counter(1, "crc4", 5)
            dev.add_counter(1, "bpv", 2)
            sim = json.loads(subprocess.run(CLI + ["scan", "--json", f"sim://{name}"], capture_output=True,
                                            text=True, timeout=LIMIT, check=True).stdout)["boards"][0]
            r = dahdi_run(f"sim://{name}", tmp_path / "state", *CLI, "scan", "--json", "dahdi://")
    finally:
        dev.close()
    assert r.returncode == 0, r.stderr
    dahdi = json.loads(r.stdout)["boards"][0]
    assert [s["alarms"] for s in dahdi["spans"]] == [s["alarms"] for s in sim["spans"]] == [[], ["LOS"]]
    for key in ("crc4", "bpv", "fas", "ebit"):
        assert dahdi["spans"][1]["counters"][key] == sim["spans"][1]["counters"][key]
    assert [c["type"] for c in dahdi["channels"]] == [c["type"] for c in sim["channels"]]
    assert [c["timeslot"] for c in dahdi["channels"]] == [c["timeslot"] for c in sim["channels"]]


def test_unconfigured_channels_say_run_dahdi_cfg(name, tmp_path):
    dev = mixed_board(name)
    try:
        with DeviceThread(dev):
            r = dahdi_run(f"sim://{name}", tmp_path / "state", *python(
                "from boarddrv import open_board; open_board('dahdi://')"), configure=False)
    finally:
        dev.close()
    assert r.returncode != 0
    assert "NoSuchBoard" in r.stderr and "none is configured: run dahdi_cfg" in r.stderr


def test_channel_held_by_another_process_is_busy(name, tmp_path):
    """A second program on channels a first one holds: BoardBusy naming the channel and what to check."""
    holder = """
import sys
from boarddrv import open_board
with open_board("dahdi://") as b:
    b.start(160)
    print("holding", flush=True)
    sys.stdin.readline()
"""
    second = """
from boarddrv import open_board, BoardBusy
with open_board("dahdi://") as b:
    try:
        b.start(160)
    except BoardBusy as exc:
        print(exc)
"""
    dev = mixed_board(name)
    state = tmp_path / "state"
    try:
        with DeviceThread(dev):
            argv = CLI + ["dahdi-run", "--state", str(state), "--configure", f"sim://{name}", "--",
                          *python(holder)]
            first = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            try:
                assert first.stdout.readline().strip() == "holding"
                r = dahdi_run(f"sim://{name}", state, *python(second), configure=False)
            finally:
                first.communicate("\n", timeout=LIMIT)
    finally:
        dev.close()
    assert r.returncode == 0, r.stderr
    assert "DAHDI channel 1 (span 1, board channel 0): Device or resource busy" in r.stdout
    assert "another program holds it" in r.stdout


def test_removed_card_is_board_lost(name, tmp_path):
    code = """
from boarddrv import open_board, BoardLost
with open_board("dahdi://") as b:
    b.start(160)
    try:
        for _ in range(2000):
            b.wait_tick(5.0)
            b.commit()
    except BoardLost as exc:
        print("lost:", exc)
"""

    def on_tick(dev, t):
        if t == 40:
            dev.remove()
    dev = mixed_board(name)
    try:
        with DeviceThread(dev, on_tick):
            r = dahdi_run(f"sim://{name}", tmp_path / "state", *python(code))
    finally:
        dev.close()
    assert r.returncode == 0, r.stderr
    assert "lost: board dahdi:// lost" in r.stdout


def test_unknown_ioctl_and_unconfigured_channel_errors(name, tmp_path):
    """As dahdi-base.c answers: ENOTTY for an ioctl it does not know, ENXIO for SPECIFY
    of a channel dahdi_cfg did not configure (E1 TS16 under CAS), EINVAL for no channel."""
    code = """
import errno, fcntl, os, struct
ctl = os.open("/dev/dahdi/ctl", os.O_RDWR)
out = []
try:
    fcntl.ioctl(ctl, 0x4004DA77, struct.pack("i", 0))
except OSError as e:
    out.append(errno.errorcode[e.errno])
ch = os.open("/dev/dahdi/channel", os.O_RDWR)
for channo in (20, 5000):          # TS16 of the E1 span; no such channel
    try:
        fcntl.ioctl(ch, 0x4004DA26, struct.pack("i", channo))
    except OSError as e:
        out.append(errno.errorcode[e.errno])
try:
    os.read(ch, 160)               # a channel fd before SPECIFY
except OSError as e:
    out.append(errno.errorcode[e.errno])
print(",".join(out))
"""
    dev = mixed_board(name)
    try:
        with DeviceThread(dev):
            r = dahdi_run(f"sim://{name}", tmp_path / "state", *python(code))
    finally:
        dev.close()
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ENOTTY,ENXIO,ENXIO,EINVAL"
