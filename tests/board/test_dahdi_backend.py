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
from dahdikit import LIMIT, LOS_THEN_RAI, REPO, Hwsim, sbin

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
            dev.add_counter(1, "slips", 4)          # DAHDI shows these in /proc/dahdi/2 only
            sim = json.loads(subprocess.run(CLI + ["scan", "--json", f"sim://{name}"], capture_output=True,
                                            text=True, timeout=LIMIT, check=True).stdout)["boards"][0]
            r = dahdi_run(f"sim://{name}", tmp_path / "state", *CLI, "scan", "--json", "dahdi://")
    finally:
        dev.close()
    assert r.returncode == 0, r.stderr
    dahdi = json.loads(r.stdout)["boards"][0]
    assert [s["alarms"] for s in dahdi["spans"]] == [s["alarms"] for s in sim["spans"]] == [[], ["LOS"]]
    for key in ("crc4", "bpv", "fas", "ebit", "slips"):
        assert dahdi["spans"][1]["counters"][key] == sim["spans"][1]["counters"][key]
    assert dahdi["spans"][1]["counters"]["slips"] == 4
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


# ---------------------------------------------------------------- the voice server on dahdi://
SERVER_TOML = """
[[boards]]
uri = "{uri}"
name = "b"

[channels]
inbound = "b:0-1,4-33"            # the two FXO ports and the E1's 30 timeslots

[prompts]
default_lang = "zh"
languages = ["zh"]

[ivr]
default_flow = "main"

[ivr.flows.main]
start = "hello"
lang = "zh"

[ivr.actions.hello]
action = "play"
prompts = ["welcome"]
then = "main"

[ivr.menus.main]
greeting = ["main_menu"]
invalid = ["invalid_choice"]
timeout = ["no_input"]
retries = 1
first_timeout = 3000
fallback = {{ action = "hangup", prompts = ["goodbye"] }}

[ivr.menus.main.options]
"1" = {{ action = "hangup", prompts = ["goodbye"] }}
"""

# LOS on the E1 span, RAI while it lasts, both cleared; then a call on an analog line
ALARM_SCENARIO = LOS_THEN_RAI + """
[[caller]]
at = 3.0
line = "{name}:0"
number = "13911112222"
script = [{{ after_silence = 0.6, digits = "1" }}]
"""

# The voice server (lockstep) on the board, until the call is over and every line idle;
# what it published about spans and channels, as JSON.
SERVER_RUN = """
import asyncio, datetime as dt, json, sys, time
from voiceserver.config.server import load_config
from voiceserver.core.channels import State
from voiceserver.core.events import ServerEventKind
from voiceserver.core.server import VoiceServer
from voiceserver.ivr.prompts import PromptLibrary

lib = PromptLibrary(None, languages=["zh"], fallback="zh")
server = VoiceServer(load_config(sys.argv[1], library=lib), lib, sync=True,
                     start_time=dt.datetime.fromisoformat(sys.argv[2]))

def sim_s():
    rt = server.boards[0] if server.boards else None
    return 0.0 if rt is None else rt.engine.tick * rt.board.block / 8000.0

def done():
    idle = all(ch.state is State.IDLE for rt in server.boards for ch in rt.channels.values())
    return server.boards and sim_s() > 3.5 and len(server.records) >= 1 and idle

async def main():
    stop = asyncio.Event()
    task = asyncio.create_task(server.run(stop))
    t0 = time.monotonic()
    try:
        while not done():
            await asyncio.sleep(0.005)
            assert not task.done() and server.error is None, server.error
            assert not any(rt.lost for rt in server.boards), [rt.lost for rt in server.boards]
            assert sim_s() < 40 and time.monotonic() - t0 < 150, "not done"
    finally:
        stop.set()
        await task

asyncio.run(main())
journal = server.bus.journal
print(json.dumps({
    "alarms": [[e.tick, e.data["span"], e.data["alarm"], e.data["set"]]
               for e in journal if e.kind is ServerEventKind.SPAN_ALARM],
    "states": [[e.tick, e.chan, e.data["old"], e.data["new"], e.data.get("reason")]
               for e in journal if e.kind is ServerEventKind.CHANNEL_STATE],
    "records": [[r.chan, r.digits] for r in server.records],
}))
"""


def serve(tmp_path: Path, name: str, via_dahdi: bool) -> dict:
    """SERVER_RUN against a fresh hwsim board, on sim:// or (through the emulator) on dahdi://."""
    sim = Hwsim(tmp_path, name, scenario=ALARM_SCENARIO)
    try:
        conf = tmp_path / "server.toml"
        conf.write_text(SERVER_TOML.format(uri="dahdi://" if via_dahdi else sim.uri))
        cmd = [sys.executable, "-c", SERVER_RUN, str(conf), sim.hwsim.info["start"]]
        if via_dahdi:     # as --board-via-dahdi runs the e2e tests: lockstep, 20 ms blocks
            argv = CLI + ["dahdi-run", "--state", str(sim.state), "--configure", "--pace", "lockstep",
                          "--block", "160", sim.uri, "--", *cmd]
        else:
            argv = cmd
        r = subprocess.run(argv, capture_output=True, text=True, timeout=LIMIT * 4, cwd=REPO)
        assert r.returncode == 0, r.stdout + r.stderr
        return json.loads(r.stdout.splitlines()[-1])
    finally:
        sim.stop()


def test_voice_server_rides_out_a_span_alarm_on_dahdi(tmp_path, name):
    """A LOS (and a RAI during it) on the E1 span reaches the server on dahdi:// as span alarm
    events: it blocks the span's 30 lines and unblocks them when the span is clear, as on
    sim://; the analog lines are untouched and take the call that comes after."""
    (tmp_path / "sim").mkdir()
    (tmp_path / "dahdi").mkdir()
    on_sim = serve(tmp_path / "sim", f"{name}s", via_dahdi=False)
    on_dahdi = serve(tmp_path / "dahdi", f"{name}d", via_dahdi=True)
    for run in (on_sim, on_dahdi):
        e1 = [s for s in run["states"] if s[1] >= 4]
        assert sorted({s[1] for s in e1}) == list(range(4, 34))
        # every E1 line: blocked by the LOS, idle again once no alarm is left (nothing else)
        for chan in range(4, 34):
            assert [s[2:] for s in e1 if s[1] == chan] == [["idle", "blocked", "LOS"],
                                                            ["blocked", "idle", "alarm cleared"]]
        blocked_at = {s[0] for s in e1 if s[3] == "blocked"}
        unblocked_at = {s[0] for s in e1 if s[3] == "idle"}
        assert len(blocked_at) == len(unblocked_at) == 1         # the whole span at once
        # from 1.0 s to 2.5 s of simulated time: 75 ticks of 20 ms (give or take the card's latency).
        # A server that opened the board after 1.0 s (a loaded machine: the card does not wait
        # for a program that has not read yet) finds the LOS there at its tick 0 and sees the
        # clear fewer than 75 ticks later.
        blocked, unblocked = blocked_at.pop(), unblocked_at.pop()
        if blocked == 0:
            assert 0 < unblocked <= 75 + 3, run["states"]
        else:
            assert abs(unblocked - blocked - 75) <= 3, run["states"]
        assert run["records"] == [[0, "1"]]                      # the analog call after it
        assert all(s[1] == 0 for s in run["states"] if s[1] < 4)
    assert [a[1:] for a in on_dahdi["alarms"]] == [a[1:] for a in on_sim["alarms"]] == [
        [1, "LOS", True], [1, "RAI", True], [1, "LOS", False], [1, "RAI", False]]
    # 0.5 s between them on both (hwsim's clock may start a little before the server's)
    for run in (on_sim, on_dahdi):
        ticks = [a[0] for a in run["alarms"]]
        assert all(abs(b - a - 25) <= 3 for a, b in zip(ticks, ticks[1:], strict=False)), run["alarms"]
