"""The DAHDI device emulator judged by programs we did not write.

hwsim runs as its own process (lockstep) with one board: an analog span
(2 FXO + 2 FXS ports) and an E1 CAS span (CRC-4, HDB3). Debian's
dahdi_scan, dahdi_cfg, dahdi_maint, dahdi_test and OpenR2's r2test run on it
through `voiceboard dahdi-run`, and what they print is compared with
`voiceboard scan --json` of the same board.
"""
from __future__ import annotations

import ast
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dahdikit import LIMIT, LOS_THEN_RAI, REPO, SYSTEM_CONF, Hwsim, parse_scan, sbin

EMULATOR = REPO / "boarddrv" / "libvbdahdi.so"

pytestmark = pytest.mark.skipif(not shutil.which("dahdi_scan", path="/usr/sbin:/usr/bin"),
                                reason="Debian package dahdi not installed (.ci/apt-packages.txt)")

FAULTS = """
[scenario]
duration = 3600.0

[[fault]]
at = 0.2
kind = "counter"
span = "{name}:1"
counter = "crc4"
n = 7

[[fault]]
at = 0.2
kind = "counter"
span = "{name}:1"
counter = "fas"
n = 3
"""


@pytest.fixture
def hwsim(tmp_path, name):
    sim = Hwsim(tmp_path, name)
    try:
        yield sim
    finally:
        sim.stop()


def test_abi_matches_dahdi_user_h(tmp_path):
    """Every ioctl number, constant, struct size and offset we use equals <dahdi/user.h>."""
    assert Path("/usr/include/dahdi/user.h").exists(), "install dahdi-source (.ci/apt-packages.txt)"
    exe = tmp_path / "abi"
    r = subprocess.run(["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", f"-I{REPO / 'ext'}", "-o", str(exe),
                        str(REPO / "tests" / "c" / "test_dahdi_abi.c")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert subprocess.run([str(exe)]).returncode == 0


def test_emulator_built_with_interposers():
    assert EMULATOR.exists(), "make build builds boarddrv/libvbdahdi.so"
    syms = subprocess.run(["nm", "-D", "--defined-only", str(EMULATOR)], capture_output=True,
                          text=True, check=True).stdout.split()
    for fn in ("open", "open64", "openat", "close", "read", "write", "ioctl", "poll", "ppoll",
               "select", "pselect", "epoll_ctl", "epoll_wait", "epoll_pwait", "fopen", "opendir", "stat",
               "stat64", "lstat64", "statx", "access"):
        assert fn in syms, fn
    assert "vb_open" not in syms, "the board library stays private to the emulator"


def test_dahdi_scan_lists_the_simulated_spans(hwsim):
    """Before dahdi_cfg: both spans, unconfigured; ports and types as `voiceboard scan` shows."""
    desc = hwsim.scan_json()
    spans = parse_scan(hwsim.dahdi_run(sbin("dahdi_scan")).stdout)
    assert sorted(spans) == [1, 2] and len(desc["spans"]) == 2
    analog, e1 = spans[1], spans[2]
    assert analog["type"] == ["analog"] and analog["alarms"] == ["UNCONFIGURED"]
    assert analog["totchans"] == ["4"] and analog["basechan"] == ["1"]
    # an FXO port (to the exchange) is listed FXO, a phone port FXS
    types = [c["type"] for c in desc["channels"] if c["span"] == 0]
    assert analog["port"] == [f"{i + 1},{t}" for i, t in enumerate(types)] == ["1,FXO", "2,FXO", "3,FXS", "4,FXS"]
    assert e1["type"] == ["digital-E1"] and e1["totchans"] == ["31"] and e1["basechan"] == ["5"]
    assert e1["location"] == [hwsim.uri]
    assert e1["alarms"] == ["UNCONFIGURED"] and e1["framing_opts"] == ["CCS,CRC4"]


def test_dahdi_cfg_applies_system_conf(hwsim):
    r = hwsim.configure(SYSTEM_CONF, "-vv")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Changing signalling on channel 5 from Unused to CAS / User" in r.stdout
    assert "Changing signalling on channel 1 from Unused to FXS Kewlstart" in r.stdout
    spans = parse_scan(hwsim.dahdi_run(sbin("dahdi_scan")).stdout)
    desc = hwsim.scan_json()
    assert [s["alarms"] for s in desc["spans"]] == [[], []]
    assert spans[1]["alarms"] == ["OK"] and spans[2]["alarms"] == ["OK"]
    assert spans[2]["coding"] == ["HDB3"] and spans[2]["framing"] == ["CAS/CRC4"]
    assert spans[2]["syncsrc"] == ["2"]          # the E1 span is the timing source
    # the configuration stays, like the kernel's: a second run changes nothing
    again = hwsim.configure(SYSTEM_CONF, "-vv")
    assert again.returncode == 0 and "Changing signalling" not in again.stdout


def test_dahdi_cfg_t_checks_without_applying(hwsim):
    r = hwsim.configure(SYSTEM_CONF, "-t", "-vv")
    assert r.returncode == 0, r.stderr
    assert "DAHDI Version: 2.11.1 (voiceboard emulator over hwsim)" in r.stdout
    assert "SPAN 2: CAS/HDB3 Build-out: 0 db (CSU)/0-133 feet (DSX-1)" in r.stdout
    assert "Channel 05: CAS / User (Default) (Echo Canceler: none) (Slaves: 05)" in r.stdout
    spans = parse_scan(hwsim.dahdi_run(sbin("dahdi_scan")).stdout)
    assert spans[2]["alarms"] == ["UNCONFIGURED"]


def test_dahdi_cfg_reports_a_bad_system_conf(hwsim):
    """FXO signalling on an FXO port is what dahdi_cfg's hints call out; T1 framing on E1 too."""
    r = hwsim.configure("fxoks=1\n")
    assert r.returncode != 0
    assert "DAHDI_CHANCONFIG failed on channel 1: Invalid argument" in r.stderr
    r = hwsim.configure("span=2,1,0,esf,b8zs\ncas=5:1101\n")
    assert r.returncode != 0 and "DAHDI_SPANCONFIG failed on span 2: Invalid argument" in r.stderr
    r = hwsim.configure("span=2,1,0,ccs,hdb3,crc4\ncas=5:1101\n")
    assert r.returncode != 0 and "DAHDI_CHANCONFIG failed on channel 5" in r.stderr


def test_framing_mismatch_shows_as_alarm(hwsim):
    """CRC-4 configured where the carrier sends none (or the reverse) loses multiframe alignment."""
    assert hwsim.configure(SYSTEM_CONF.replace(",crc4", "")).returncode == 0
    spans = parse_scan(hwsim.dahdi_run(sbin("dahdi_scan")).stdout)
    assert spans[2]["alarms"] == ["RED"]
    assert spans[1]["alarms"] == ["OK"]


def test_alarms_and_counters_match_voiceboard_scan(tmp_path, name):
    from boarddrv.board import open_board
    sim = Hwsim(tmp_path, name, scenario=FAULTS)
    try:
        with open_board(sim.uri) as b:      # the faults come with simulated time: run 0.5 s of it
            b.start(80)
            for _ in range(50):
                b.wait_tick(5.0)
                b.commit()
        assert sim.configure().returncode == 0
        desc = sim.scan_json()
        counters = desc["spans"][1]["counters"]
        assert counters["crc4"] == 7 and counters["fas"] == 3
        maint = sim.dahdi_run(sbin("dahdi_maint"), "-s", "2").stdout
        assert f">CRC Errors : {counters['crc4']}:" in maint
        assert f">Framing Errors : {counters['fas']}:" in maint
    finally:
        sim.stop()


def test_span_in_alarm_shows_in_dahdi_scan(name):
    """A simulated LOS is RED in dahdi_scan, RAI is YEL: the same span `voiceboard scan` flags."""
    sys.path.insert(0, str(Path(__file__).parent))
    from boardkit import DeviceThread, mixed_board
    dev = mixed_board(name)
    state = Path(f"/dev/shm/voiceboard-dahdi.{name}")
    try:
        with DeviceThread(dev):
            dev.set_alarms(1, ["LOS", "RAI"])
            env = {"--state": str(state)}
            argv = [sys.executable, "-m", "boarddrv.cli", "dahdi-run", "--state", env["--state"],
                    f"sim://{name}", "--", sbin("dahdi_scan")]
            out = subprocess.run(argv, capture_output=True, text=True, timeout=LIMIT, check=True).stdout
            spans = parse_scan(out)
            assert spans[2]["alarms"] == ["YEL/RED"]
            assert spans[1]["alarms"] == ["UNCONFIGURED"]
    finally:
        dev.close()
        state.unlink(missing_ok=True)


LOS_ON_E1 = """
[scenario]
duration = 3600.0

[[fault]]
at = 0.2
kind = "alarm-set"
span = "{name}:1"
alarm = "LOS"
"""

# voiceboard scan's span alarms as dahdi-base.c's alarm words (span_alarms in ext/dahdi_emu.c)
DAHDI_ALARM_WORD = {"LOS": "RED", "LOF": "RED", "AIS": "BLUE", "RAI": "YELLOW"}


def parse_lsdahdi(text: str) -> dict[int, dict]:
    """lsdahdi's listing: {span: {"head": str, "chans": [(num, type, signalling, rest)]}}.

    Channel lines are printf "%3d %-10s %-10s %s %s %s" (number, type, signalling, info,
    battery, alarms), so the fields are cut by column.
    """
    spans: dict[int, dict] = {}
    cur: dict = {}
    for line in text.splitlines():
        if line.startswith("### Span"):
            num = int(line[len("### Span"):].split(":")[0])
            cur = spans.setdefault(num, {"head": line.split(":", 1)[1].strip(), "chans": []})
        elif line.strip():
            cur["chans"].append((int(line[0:3]), line[4:14].strip(), line[15:25].strip(), line[26:].split()))
    return spans


def test_lsdahdi_lists_the_simulated_spans(tmp_path, name):
    """lsdahdi (Perl, reads /proc/dahdi/N) lists what `voiceboard scan` shows: spans,
    channel counts, port types, signalling after dahdi_cfg, a span's alarm on its channels."""
    from boarddrv.board import open_board
    sim = Hwsim(tmp_path, name, scenario=LOS_ON_E1)
    try:
        before = parse_lsdahdi(sim.dahdi_run(sbin("lsdahdi")).stdout)
        desc = sim.scan_json()
        assert sorted(before) == [1, 2] == [s["index"] + 1 for s in desc["spans"]]
        analog, e1 = before[1], before[2]
        assert analog["head"].startswith(f"VB/{name}/1 \"voiceboard {name} span 1 (analog)\"")
        assert e1["head"].startswith(f"VB/{name}/2 \"voiceboard {name} span 2 (E1)\"")
        types = [c["type"] for c in desc["channels"] if c["span"] == 0]
        assert [c[1] for c in analog["chans"]] == types == ["FXO", "FXO", "FXS", "FXS"]
        assert [c[0] for c in analog["chans"]] == [1, 2, 3, 4]
        # an E1 span has 31 channels, TS16 (channel 20) included; 30 of them are the board's
        assert [c[0] for c in e1["chans"]] == list(range(5, 36))
        assert desc["spans"][1]["nchan"] == 30
        assert all(c[2] == "" and c[3] == [] for s in before.values() for c in s["chans"])

        with open_board(sim.uri) as b:      # the LOS comes with simulated time: run 0.5 s of it
            b.start(80)
            for _ in range(50):
                b.wait_tick(5.0)
                b.commit()
        assert sim.configure().returncode == 0
        desc = sim.scan_json()
        alarms = [sorted({DAHDI_ALARM_WORD[a] for a in s["alarms"]}) for s in desc["spans"]]
        assert alarms == [[], ["RED"]]
        after = parse_lsdahdi(sim.dahdi_run(sbin("lsdahdi")).stdout)
        analog, e1 = after[1], after[2]
        # FXO ports take FXS signalling (system.conf's fxsks=1-2) and back
        assert [(c[1], c[2]) for c in analog["chans"]] == [("FXO", "FXSKS"), ("FXO", "FXSKS"),
                                                          ("FXS", "FXOKS"), ("FXS", "FXOKS")]
        assert [c[2] for c in e1["chans"] if c[0] != 20] == ["CAS"] * 30
        assert [c[2] for c in e1["chans"] if c[0] == 20] == [""]
        assert all(c[3] == alarms[0] for c in analog["chans"])
        assert all(c[3] == alarms[1] for c in e1["chans"])
        assert "HDB3/CRC4" in e1["head"] and "RED" in e1["head"]
    finally:
        sim.stop()


def test_proc_dahdi_has_the_kernel_format(hwsim):
    """/proc/dahdi/N as dahdi-base.c writes it; the private directory goes with the process."""
    assert hwsim.configure().returncode == 0
    tmp = hwsim.workdir / "tmp"
    tmp.mkdir()
    listing = "import os; os.listdir('/proc/dahdi'); print(os.listdir(os.environ['TMPDIR']))"
    argv = [sys.executable, "-m", "boarddrv.cli", "dahdi-run", "--state", str(hwsim.state), hwsim.uri, "--",
            "sh", "-c", f"ls /proc/dahdi; cat /proc/dahdi/1 /proc/dahdi/2; python3 -c \"{listing}\""]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=LIMIT, env=dict(os.environ, TMPDIR=str(tmp)))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[:2] == ["1", "2"]
    name = hwsim.name
    # span 2 times the board (span=2,1,...), so it is the master and the clock source
    assert f"Span 1: VB/{name}/1 \"voiceboard {name} span 1 (analog)\" " in lines
    assert f"Span 2: VB/{name}/2 \"voiceboard {name} span 2 (E1)\" (MASTER) HDB3/CRC4 ClockSource " in lines
    assert f"\t   1 VB/{name}/1/FXO/1 FXSKS " in lines
    assert f"\t   4 VB/{name}/1/FXS/4 FXOKS " in lines
    assert f"\t   5 VB/{name}/2/1 CAS " in lines
    assert f"\t  20 VB/{name}/2/16 " in lines
    # each process has its own directory while it runs (ls and cat removed theirs at exit)
    made = ast.literal_eval(lines[-1])
    assert len(made) == 1 and made[0].startswith("vb-dahdi-")
    assert list(tmp.iterdir()) == []


EPOLL_READER = r"""
import errno, fcntl, os, select, struct, sys, time
GETEVENT = (2 << 30) | (4 << 16) | (0xDA << 8) | 8          # DAHDI_GETEVENT: _IOR(0xDA, 8, int)
SET_BLOCKSIZE = (1 << 30) | (4 << 16) | (0xDA << 8) | 1     # DAHDI_SET_BLOCKSIZE: _IOW(0xDA, 1, int)
ELAST = 500
fd = os.open("/dev/dahdi/5", os.O_RDWR | os.O_NONBLOCK)   # E1 timeslot 1 (CAS)
fcntl.ioctl(fd, SET_BLOCKSIZE, struct.pack("i", 160))     # 20 ms blocks (DAHDI's default is 1024)
r, w = os.pipe()
ep = select.epoll()
ep.register(fd, select.EPOLLIN | select.EPOLLPRI)
ep.register(r, select.EPOLLIN)
os.write(w, b"x")                                         # a real descriptor in the same set
blocks, pipe_seen, events, elast = 0, False, [], False
deadline = time.monotonic() + 30
while not events and time.monotonic() < deadline:
    for f, mask in ep.poll(5.0):
        if f == r:
            os.read(r, 1)
            pipe_seen = True
        elif mask & select.EPOLLPRI:                      # an event waits: read says ELAST
            try:
                os.read(fd, 1024)
            except OSError as exc:
                elast = exc.errno == ELAST
            got = fcntl.ioctl(fd, GETEVENT, struct.pack("i", 0))
            events.append(struct.unpack("i", got)[0])
        elif mask & select.EPOLLIN:
            n = len(os.read(fd, 1024))
            assert n == 160, n                            # one block of 20 ms (A-law bytes)
            blocks += 1
os.close(fd)                                              # the kernel drops a closed descriptor
left = ep.poll(0.1)
print(blocks, pipe_seen, elast, events, left)
"""


def test_epoll_reads_blocks_and_sees_an_event(tmp_path, name):
    """select.epoll on a channel: EPOLLIN per block, EPOLLPRI when the span's LOS queues DAHDI_EVENT_ALARM."""
    sim = Hwsim(tmp_path, name, scenario=LOS_ON_E1)
    try:
        assert sim.configure().returncode == 0
        # lockstep pace: no block is lost to a slow machine, so they can be counted
        out = sim.dahdi_run(sys.executable, "-c", EPOLL_READER, extra=("--pace", "lockstep")).stdout.split(maxsplit=3)
        blocks, pipe_seen, elast, rest = int(out[0]), out[1], out[2], out[3]
        # the LOS comes at 0.2 s of simulated time: about 10 blocks of 20 ms before it
        assert 9 <= blocks <= 11, out
        assert pipe_seen == "True" and elast == "True"
        assert rest.strip() == "[4] []"                 # DAHDI_EVENT_ALARM; nothing after close
    finally:
        sim.stop()


ALARMS_IN_ALARM = LOS_THEN_RAI

EVENT_READER = r"""
import fcntl, os, struct
GETEVENT = (2 << 30) | (4 << 16) | (0xDA << 8) | 8
SET_BLOCKSIZE = (1 << 30) | (4 << 16) | (0xDA << 8) | 1
fd = os.open("/dev/dahdi/5", os.O_RDWR)
fcntl.ioctl(fd, SET_BLOCKSIZE, struct.pack("i", 160))
blocks, events = 0, []
while blocks < 200:                                       # 4 s of 20 ms blocks
    try:
        os.read(fd, 160)
        blocks += 1
    except OSError as exc:
        assert exc.errno == 500, exc                      # ELAST: an event waits
        ev = struct.unpack("i", fcntl.ioctl(fd, GETEVENT, struct.pack("i", 0)))[0]
        events.append([blocks, ev])
print(events)
"""


def test_alarm_events_only_in_and_out_of_alarm(tmp_path, name):
    """As dahdi_alarm_notify: DAHDI_EVENT_ALARM when the span goes into alarm (LOS at 1.0 s),
    none when RAI comes (1.5 s) or LOS goes with RAI left (2.0 s), NOALARM when clear (2.5 s)."""
    sim = Hwsim(tmp_path, name, scenario=ALARMS_IN_ALARM)
    try:
        assert sim.configure().returncode == 0
        events = ast.literal_eval(sim.dahdi_run(sys.executable, "-c", EVENT_READER,
                                                extra=("--pace", "lockstep")).stdout)
        assert [e[1] for e in events] == [4, 5], events          # ALARM, NOALARM
        assert abs(events[1][0] - events[0][0] - 75) <= 2, events  # 1.5 s apart
    finally:
        sim.stop()


MAINT_HOST = r"""
import errno, fcntl, json, os, struct, subprocess, sys
def ioc(direction, nr):                                   # DAHDI ioctls on an int: _IOR/_IOW(0xDA, nr, int)
    return (direction << 30) | (4 << 16) | (0xDA << 8) | nr
GETEVENT, SET_BLOCKSIZE, GETRXBITS, SETTXBITS = ioc(2, 8), ioc(1, 1), ioc(2, 43), ioc(1, 43)
ELAST = 500
DAHDI_MAINT, URI = sys.argv[1], sys.argv[2]
fd = os.open("/dev/dahdi/5", os.O_RDWR)                   # E1 timeslot 1 (board channel 4)
fcntl.ioctl(fd, SET_BLOCKSIZE, struct.pack("i", 80))      # 10 ms blocks, the board's tick
fcntl.ioctl(fd, SETTXBITS, struct.pack("i", 0b0001))      # the host's CAS bits (the line idles 1011)
PATTERN = bytes((i * 37 + 11) & 0xFF for i in range(80))
events = []

def retry(call):
    while True:
        try:
            return call()
        except OSError as exc:
            if exc.errno != ELAST:
                raise
            events.append(struct.unpack("i", fcntl.ioctl(fd, GETEVENT, struct.pack("i", 0)))[0])

def run(n):
    # n blocks: write PATTERN, read one; which of the blocks read were PATTERN ("0110...")
    same = ""
    for _ in range(n):
        retry(lambda: os.write(fd, PATTERN))
        same += "1" if retry(lambda: os.read(fd, 80)) == PATTERN else "0"
    return same

def rxbits():
    return struct.unpack("i", fcntl.ioctl(fd, GETRXBITS, struct.pack("i", 0)))[0]

def maint(*args):
    r = subprocess.run([DAHDI_MAINT, *args], capture_output=True, text=True)
    return [r.returncode, r.stdout.strip()]

def board_cas():
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "VB_DAHDI_BOARDS")}
    out = subprocess.run([sys.executable, "-m", "boarddrv.cli", "scan", "--json", URI], env=env,
                         capture_output=True, text=True, check=True).stdout
    chans = json.loads(out)["boards"][0]["channels"]
    return [[c["cas_tx"], c["cas_rx"]] for c in chans if c["span"] == 1]

def scan_alarms():
    out = subprocess.run([DAHDI_MAINT.replace("dahdi_maint", "dahdi_scan")], capture_output=True, text=True).stdout
    return [l.split("=", 1)[1] for l in out.splitlines() if l.startswith("alarms=")]

report = {"line": run(20), "line_rxbits": rxbits()}
del events[:]
report["local_on"] = maint("-s", "2", "-l", "localhost")
report["local"] = run(20)
report["local_rxbits"] = rxbits()
report["local_alarms"] = scan_alarms()
report["local_events"], events[:] = list(events), []
report["off"] = maint("-s", "2", "-l", "off")
report["after_local"] = run(20)
report["after_rxbits"] = rxbits()
report["off_events"], events[:] = list(events), []
report["net_on"] = maint("-s", "2", "-l", "networkline")
run(10)
report["net_cas"] = board_cas()
report["net_heard"] = run(10)
report["net_off"] = maint("-s", "2", "-l", "off")
run(10)
report["after_net_cas"] = board_cas()
report["payload_on"] = maint("-s", "2", "-l", "networkpayload")
run(10)
report["payload_cas"] = board_cas()[0]
report["payload_off"] = maint("-s", "2", "-l", "off")
run(10)
report["after_payload_cas"] = board_cas()[0]
report["loopup"] = maint("-s", "2", "-l", "loopup")
report["analog"] = maint("-s", "1", "-l", "localhost")
report["insert"] = maint("-s", "2", "-i", "fas")
print(json.dumps(report))
"""


def test_dahdi_maint_loopbacks_on_an_e1_span(hwsim):
    """dahdi_maint -l on the E1 span, while a program holds timeslot 1: local loop (it hears
    what it sends, its own CAS bits, LOOP alarm events), network line loop (the far end gets
    its own CAS bits back, the host's come back after), loop-up and analog spans refused."""
    assert hwsim.configure().returncode == 0
    out = hwsim.dahdi_run(sys.executable, "-c", MAINT_HOST, sbin("dahdi_maint"), hwsim.uri).stdout
    r = json.loads(out)
    assert r["line"] == "0" * 20 and r["line_rxbits"] == 0b1011   # the line: silence, idle bits
    assert r["local_on"] == [0, "Span 2: local host loopback ON"]
    # its own blocks, a tick later (the first few were on their way when the loop came)
    assert r["local"].endswith("1" * 15), r["local"]
    assert r["local_rxbits"] == 0b0001                             # and its own CAS bits
    assert r["local_alarms"] == ["OK", "LB"]                       # dahdi_scan: span 2 in LOOP alarm
    assert r["local_events"] == [4, 13]                            # DAHDI_EVENT_ALARM, BITSCHANGED
    assert r["off"] == [0, "Span 2: loopback OFF"]
    assert r["after_local"].endswith("0" * 15) and r["after_rxbits"] == 0b1011, r["after_local"]
    assert r["off_events"] == [5, 13]                              # NOALARM, BITSCHANGED
    assert r["net_on"] == [0, "Span 2: network line loopback ON"]
    # every timeslot sends the far end its own bits; the host still hears the line
    assert all(tx == rx == 0b1011 for tx, rx in r["net_cas"]), r["net_cas"]
    assert r["net_heard"] == "0" * 10
    assert r["net_off"] == [0, "Span 2: loopback OFF"]
    assert r["after_net_cas"][0] == [0b0001, 0b1011]               # the host's bits again
    # a payload loop looks the same from here: the simulated line has no framing to regenerate
    assert r["payload_on"] == [0, "Span 2: network payload loopback ON"]
    assert r["payload_cas"] == [0b1011, 0b1011] and r["after_payload_cas"] == [0b0001, 0b1011]
    assert r["payload_off"] == [0, "Span 2: loopback OFF"]
    not_supported = "This type of looping not supported by the driver for this span"
    assert r["loopup"] == [1, "Span 2: transmitting loopup signal\n" + not_supported]   # no loop codes on E1
    assert r["analog"] == [1, "Span 1: local host loopback ON\n" + not_supported]
    assert r["insert"] == [0, "Inserting a single FAS defect\nThis type of error injection is not "
                              "supported by the driver for this span"]


def test_dahdi_maint_resets_the_counters(tmp_path, name):
    """dahdi_maint -r: DAHDI's counters start again from zero; the board's own go on."""
    from boarddrv.board import open_board
    sim = Hwsim(tmp_path, name, scenario=FAULTS)
    try:
        with open_board(sim.uri) as b:
            b.start(80)
            for _ in range(50):
                b.wait_tick(5.0)
                b.commit()
        assert sim.configure().returncode == 0
        assert ">CRC Errors : 7:" in sim.dahdi_run(sbin("dahdi_maint"), "-s", "2").stdout
        r = sim.dahdi_run(sbin("dahdi_maint"), "-s", "2", "-r")
        assert "Resetting error counters for span 2" in r.stdout and "not supported" not in r.stdout
        maint = sim.dahdi_run(sbin("dahdi_maint"), "-s", "2").stdout
        assert ">CRC Errors : 0:" in maint and ">Framing Errors : 0:" in maint
        assert sim.scan_json()["spans"][1]["counters"]["crc4"] == 7
    finally:
        sim.stop()


EPOLL_MODES = r"""
import fcntl, os, select, struct
SET_BLOCKSIZE = (1 << 30) | (4 << 16) | (0xDA << 8) | 1
fd = os.open("/dev/dahdi/5", os.O_RDWR | os.O_NONBLOCK)
fcntl.ioctl(fd, SET_BLOCKSIZE, struct.pack("i", 160))
ep = select.epoll()
ep.register(fd, select.EPOLLIN | select.EPOLLONESHOT)
one = ep.poll(2.0)
disarmed = ep.poll(0.3)                                   # blocks wait, but it fired once
ep.modify(fd, select.EPOLLIN | select.EPOLLONESHOT)
rearmed = ep.poll(2.0)
ep.modify(fd, select.EPOLLIN | select.EPOLLET)
edges = 0
while ep.poll(0.3):                                       # one per new block, none once the ring is full
    edges += 1
level = ep.poll(0)                                        # unread blocks: not ready again under EPOLLET
ep.modify(fd, select.EPOLLIN)
print(len(one), len(disarmed), len(rearmed), edges, len(level), len(ep.poll(0)))
"""


def test_epoll_oneshot_and_edge_triggered(hwsim):
    """EPOLLONESHOT reports once until EPOLL_CTL_MOD; EPOLLET once per new block, and nothing
    once the receive ring is full and no block comes in; level-triggered again after MOD."""
    assert hwsim.configure().returncode == 0
    out = hwsim.dahdi_run(sys.executable, "-c", EPOLL_MODES).stdout.split()
    one, disarmed, rearmed, edges, level, again = map(int, out)
    assert (one, disarmed, rearmed) == (1, 0, 1)
    assert 1 <= edges <= 2 and level == 0, out            # DAHDI's default ring: 2 buffers
    assert again == 1


def test_dahdi_test_reports_timing(hwsim):
    r = hwsim.dahdi_run(sbin("dahdi_test"), "-c", "2")
    assert "Opened pseudo dahdi interface, measuring accuracy" in r.stdout
    assert "--- Results after 2 passes ---" in r.stdout
    assert "Cumulative Accuracy" in r.stdout


def test_r2test_exchanges_idle_with_the_carrier(hwsim):
    """OpenR2 opens E1 channels 5-6, sends R2 idle (1011 on the line) and sees the carrier's idle."""
    assert hwsim.configure().returncode == 0
    before = [c["cas_tx"] for c in hwsim.scan_json()["channels"] if c["span"] == 1]
    conf = hwsim.workdir / "r2test.conf"
    conf.write_text("variant=cn\nloglevel=all\nusedahdimf=no\ncallfiles=no\nchannel=5-6\n")
    argv = [sys.executable, "-m", "boarddrv.cli", "dahdi-run", "--state", str(hwsim.state), hwsim.uri,
            "--", "stdbuf", "-oL", "-eL", "r2test", "-c", str(conf)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    try:
        deadline = time.monotonic() + LIMIT
        while sum("far end unblocked" in line for line in lines) < 2:
            assert time.monotonic() < deadline, "".join(lines)
            line = proc.stdout.readline()
            assert line, f"r2test ended:\n{''.join(lines)}"
            lines.append(line)
        # while r2test holds the channels, the board shows what it sends
        desc = hwsim.scan_json()
        e1 = [c for c in desc["channels"] if c["span"] == 1]
        assert [c["cas_tx"] for c in e1[:2]] == [0b1011, 0b1011]
        assert [c["cas_tx"] for c in e1[2:]] == before[2:]     # channels r2test did not open
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    text = "".join(lines)
    for ch in (5, 6):
        assert f"Channel {ch} -- CAS Raw Tx >> 0x0B" in text
        assert f"Channel {ch} -- CAS Rx << [IDLE]" in text


STALLED_READER = r"""
import fcntl, os, struct, time
SET_BLOCKSIZE = (1 << 30) | (4 << 16) | (0xDA << 8) | 1     # DAHDI_SET_BLOCKSIZE
BUFFER_EVENTS = (1 << 30) | (4 << 16) | (0xDA << 8) | 105   # DAHDI_BUFFER_EVENTS
GETEVENT = (2 << 30) | (4 << 16) | (0xDA << 8) | 8          # DAHDI_GETEVENT
READ_OVERRUN = 29                                           # DAHDI_EVENT_READ_OVERRUN
fd = os.open("/dev/dahdi/5", os.O_RDWR)                     # E1 timeslot 1; blocking reads
fcntl.ioctl(fd, SET_BLOCKSIZE, struct.pack("i", 160))       # 2 buffers of 20 ms: 40 ms of slack
fcntl.ioctl(fd, BUFFER_EVENTS, struct.pack("i", 1))

def read_for(seconds):
    blocks, overruns, end = 0, 0, time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            os.read(fd, 160)
            blocks += 1
        except OSError as exc:
            assert exc.errno == 500, exc                    # ELAST: an event waits
            ev = struct.unpack("i", fcntl.ioctl(fd, GETEVENT, struct.pack("i", 0)))[0]
            overruns += ev == READ_OVERRUN
    return blocks, overruns

out = [read_for(0.5)]
time.sleep(0.3)              # descheduled for 300 ms, as on a loaded machine
out.append(read_for(0.5))
time.sleep(3.0)              # stopped reading (longer than the card waits for a reader: 2 s)
out.append(read_for(0.3))
print(out)
"""


def test_card_pace_waits_for_a_reader_that_fell_behind(hwsim):
    """Card pace: a program descheduled for a while finds every block when it reads again (the
    card's tick waits for a channel whose program reads it, while its buffers are full), so an MF
    R2 signal is never cut by a lost block; a program that stopped reading for longer than 2 s
    is overrun, as by a card."""
    assert hwsim.configure().returncode == 0
    out = ast.literal_eval(hwsim.dahdi_run(sys.executable, "-c", STALLED_READER).stdout.strip())
    (_, lost_before), (_, lost_after_stall), (_, lost_after_stop) = out
    assert lost_before == 0 and lost_after_stall == 0, out
    assert lost_after_stop >= 1, out


SLOW_ANSWERER = r"""
import fcntl, os, struct, time
SET_BLOCKSIZE = (1 << 30) | (4 << 16) | (0xDA << 8) | 1
GETEVENT = (2 << 30) | (4 << 16) | (0xDA << 8) | 8
fd = os.open("/dev/dahdi/5", os.O_RDWR)
fcntl.ioctl(fd, SET_BLOCKSIZE, struct.pack("i", 160))
blocks, events, write_errors = 0, [], []
while blocks < 30:                                        # 0.6 s of blocks; the LOS comes at 0.2 s
    try:
        block = os.read(fd, 160)
    except OSError as exc:
        assert exc.errno == 500, exc                      # ELAST: the event, before the next block
        events.append(struct.unpack("i", fcntl.ioctl(fd, GETEVENT, struct.pack("i", 0)))[0])
        continue
    blocks += 1
    time.sleep(0.025)                                     # descheduled between the read and the answer
    try:
        os.write(fd, block)                               # the answer (an echo, as r2test's)
    except OSError as exc:
        write_errors.append(exc.errno)                    # ELAST here: an event came in between
print([events, write_errors])
"""


def test_card_pace_delivers_no_event_between_a_read_and_its_answer(tmp_path, name):
    """Card pace: an event (here the span's LOS alarm) does not arrive between a program's read of
    a block and its write of the answer, however slow the program is there, so the write does not
    fail with ELAST (OpenR2 1.3.3's openr2_chan_write quits the channel on that); the next read
    reports it."""
    sim = Hwsim(tmp_path, name, scenario=LOS_ON_E1)
    try:
        assert sim.configure().returncode == 0
        events, write_errors = ast.literal_eval(sim.dahdi_run(sys.executable, "-c", SLOW_ANSWERER).stdout.strip())
        assert events == [4] and write_errors == [], (events, write_errors)   # DAHDI_EVENT_ALARM
    finally:
        sim.stop()


def test_without_boards_there_is_no_dev_dahdi(tmp_path):
    """Preloaded but serving nothing: as on a machine without the DAHDI modules."""
    from boarddrv.tools.dahdi_run import emulator_path
    env = dict(os.environ, LD_PRELOAD=str(emulator_path()))
    env.pop("VB_DAHDI_BOARDS", None)
    r = subprocess.run([sbin("dahdi_scan")], env=env, capture_output=True, text=True, timeout=LIMIT)
    assert r.returncode == 1 and "Unable to open /dev/dahdi/ctl: No such file or directory" in r.stderr


def test_dahdi_run_errors(name):
    run = [sys.executable, "-m", "boarddrv.cli", "dahdi-run"]
    r = subprocess.run(run + [f"sim://{name}", "--", sbin("dahdi_scan")], capture_output=True, text=True)
    assert r.returncode == 1 and f"sim://{name}" in r.stderr and "hwsim" in r.stderr
    r = subprocess.run(run + ["dahdi://", "--", sbin("dahdi_scan")], capture_output=True, text=True)
    assert r.returncode == 2 and "simulated boards only" in r.stderr
    r = subprocess.run(run + [f"sim://{name}", "--", "no-such-program-x"], capture_output=True, text=True)
    assert r.returncode == 2 and "no-such-program-x" in r.stderr
    r = subprocess.run(run + [f"sim://{name}"], capture_output=True, text=True)
    assert r.returncode == 2 and "usage" in r.stderr


def test_a_960_channel_board_configures_and_scans(tmp_path, name):
    """32 E1 spans: the genconf'd system.conf fits dahdi_cfg's line length; DAHDI spans 1..32."""
    from boarddrv import ChannelType
    from boarddrv.simdev import ChanSpec, SimDevice, SpanSpec
    spans = [SpanSpec(kind="e1", nchan=30, framing="cas") for _ in range(32)]
    chans = [ChanSpec(ChannelType.E1_CAS, s) for s in range(32) for _ in range(30)]
    with SimDevice.create(name, spans=spans, channels=chans):
        r = subprocess.run([sys.executable, "-m", "boarddrv.cli", "dahdi-run", "--configure", "--state",
                            str(tmp_path / "state"), f"sim://{name}", "--", sbin("dahdi_scan")],
                           capture_output=True, text=True, timeout=LIMIT)
    assert r.returncode == 0, r.stderr
    scan = parse_scan(r.stdout)
    assert sorted(scan) == list(range(1, 33))
    assert all(s["alarms"] == ["OK"] and s["totchans"] == ["31"] for s in scan.values())
    assert scan[32]["basechan"] == [str(31 * 31 + 1)]
