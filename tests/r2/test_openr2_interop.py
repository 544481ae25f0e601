"""China No.1 calls both ways between the voice server and OpenR2's r2test, unmodified.

Debian's `r2test` (package libopenr2-bin) runs through the DAHDI device
emulator (`voiceboard dahdi-run`) on simulated E1 spans that back-to-back
cables join to the server's spans in hwsim:

    board {n}a (r2test, callers; restarted each round) = cable = server span 0
    board {n}c (r2test, called channels; one run)        = cable = server span 1
    server span 2: hwsim's own China No.1 exchange, whose callers dial a number
                   the server transfers out over span 1 (that is how the server
                   places a call on demand: an IVR transfer)

Inbound, r2test calls the server: one call per caller channel per r2test run
(OpenR2's r2test calls once when the far end goes idle), DNIS and category by
channel range; the server answers 95566 with its IVR, which plays a prompt and
hangs up (the server clears back first); other numbers are refused busy,
congestion or unallocated by the trunk group's `unknown_cause`. On three
channels r2test clears forward first: its `r2_answer` timer (1 s, from an
OpenR2 advanced protocol file) runs out after the accept, while the server's
trunk group waits 3 s (`answer_delay`) before it answers.
Outbound, the server calls r2test: r2test accepts, answers and echoes; the
exchange's caller hangs up, the server clears forward first.
Both sides are read: r2test's "USER:" lines (one printf each; OpenR2's own
trace lines are written in pieces that r2test's threads interleave, so they
are not parsed), and the server's events and call database. Every call is accounted for and none may break
(docs/r2.md, "Interop with OpenR2").

`OPENR2_CALLS` (environment, default 100) sets the calls in each direction:
the outbound calls, and enough r2test runs for as many inbound answered calls
(24 a run); see docs/r2.md, "Interop with OpenR2".
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from hwsim.spawn import spawn_hwsim, stop_process

LIMIT = 120.0        # wall seconds for one r2test round or one wait: a guard against a hang
CALLS = int(os.environ.get("OPENR2_CALLS", "100"))

pytestmark = pytest.mark.skipif(not shutil.which("r2test"),
                                reason="OpenR2's r2test not installed (.ci/apt-packages.txt)")

# r2test's caller ranges on board {n}a: (DAHDI channels, DNIS, category, what the server does).
# DAHDI channel = timeslot; the server's board channel of timeslot t is t-1 (t < 16) or t-2.
ANI = "13800138000"
CALLERS = [
    ("1-12", "95566", "national_subscriber", "answered"),
    ("17-18", "40001", "national_subscriber", "busy"),
    ("19-20", "40002", "national_subscriber", "congestion"),
    ("21-22", "40003", "national_subscriber", "unallocated"),
    ("23-31", "95566", "national_priority_subscriber", "answered"),
    ("13-15", "95566", "national_subscriber", "caller clears"),   # last: the advanced file applies from here
]
# OpenR2's advanced protocol file for the "caller clears" channels: no answer within 1 s of the
# accept and r2test's caller clears forward ("No Answer"); the server's group waits 3 s to answer
GIVE_UP_AFTER_ACCEPT = "timers.r2_answer=1000\n"
# OpenR2's category numbers as r2test prints them (openr2_calling_party_category_t)
OPENR2_CATEGORY = {"national_subscriber": 0, "national_priority_subscriber": 1}
# what r2test prints for the server's refusal (openr2_proto_get_disconnect_string)
OPENR2_CAUSE = {"busy": "Busy Number", "congestion": "Network Congestion", "unallocated": "Unallocated Number"}

OUT_NUMBER = "13812345678"       # the server's outbound calls dial this (its ANI: the group's)
OUT_ANI = "01062345678"
EXCHANGE_CALLS = CALLS           # hwsim's callers on span 2: one outbound call each
ANSWERED_PER_ROUND = sum(len(range(*map(int, c[0].split("-")))) + 1 for c in CALLERS if c[3] == "answered")
ROUNDS = -(-CALLS // ANSWERED_PER_ROUND)

HWSIM = """
[[board]]
name = "{n}a"
law = "alaw"
[[board.span]]
kind = "e1"
framing = "cas"
coding = "hdb3"
crc4 = true

[[board]]
name = "{n}c"
law = "alaw"
[[board.span]]
kind = "e1"
framing = "cas"
coding = "hdb3"
crc4 = true

[[board]]
name = "{n}s"
law = "alaw"
[[board.span]]
kind = "e1"
count = 3
framing = "cas"
coding = "hdb3"
crc4 = true

[[cable]]
a = "{n}a:0"
b = "{n}s:0"

[[cable]]
a = "{n}c:0"
b = "{n}s:1"
"""

SERVER = """
[[boards]]
uri = "sim://{n}s"
name = "e1"

# span 0, cabled to r2test's callers. OpenR2's China caller answers A-1 after the
# category with DNIS digits, so the category and ANI are asked for after the DNIS.
# The end of DNIS by timeout after 5 s, not 2: r2test runs in real time and may be
# descheduled for a second or two on a loaded CI machine, the server's clock goes on.
[r2.groups.openr2]
channels = ["e1:0-11", "e1:21-29"]
variant = "cn"
release_control = "mutual"
direction = "in"
[r2.groups.openr2.numbers."95566"]
flow = "hello"
[r2.groups.openr2.override.register]
ani_after_dnis_digits = 0
[r2.groups.openr2.override.timers]
mf_back_cycle = 5000

# r2test's callers that clear forward 1 s after the accept: the server answers 3 s after it
[r2.groups.late]
channels = "e1:12-14"
variant = "cn"
release_control = "mutual"
direction = "in"
[r2.groups.late.numbers."95566"]
flow = "hello"
[r2.groups.late.override.register]
ani_after_dnis_digits = 0
[r2.groups.late.override.timers]
mf_back_cycle = 5000
answer_delay = 3000

[r2.groups.busy]
channels = "e1:15-16"
direction = "in"
release_control = "mutual"
unknown_cause = "busy"
[r2.groups.busy.override.register]
ani_after_dnis_digits = 0
[r2.groups.busy.override.timers]
mf_back_cycle = 5000

[r2.groups.congestion]
channels = "e1:17-18"
direction = "in"
release_control = "mutual"
unknown_cause = "congestion"
[r2.groups.congestion.override.register]
ani_after_dnis_digits = 0
[r2.groups.congestion.override.timers]
mf_back_cycle = 5000

[r2.groups.unallocated]
channels = "e1:19-20"
direction = "in"
release_control = "mutual"
unknown_cause = "unallocated"
[r2.groups.unallocated.override.register]
ani_after_dnis_digits = 0
[r2.groups.unallocated.override.timers]
mf_back_cycle = 5000

# span 1, cabled to r2test's called channels: the server's outbound hunt groups
[r2.groups.out]
channels = "e1:30-44"
variant = "cn"
release_control = "mutual"
direction = "out"
ani = "{out_ani}"
category = "national_subscriber"

[r2.groups.outprio]
channels = "e1:45-59"
variant = "cn"
release_control = "mutual"
direction = "out"
ani = "{out_ani}"
category = "national_priority_subscriber"

# span 2: hwsim's exchange; its callers' 95577 (95578) is transferred out over "out" ("outprio")
[r2.groups.pstn]
channels = "e1:60-89"
direction = "in"
release_control = "mutual"
[r2.groups.pstn.numbers."95577"]
flow = "dialout"
[r2.groups.pstn.numbers."95578"]
flow = "dialoutprio"

[prompts]
default_lang = "zh"
languages = ["zh", "en"]

[ivr]
default_flow = "hello"

[ivr.flows.hello]
start = "hello"
lang = "zh"

[ivr.flows.dialout]
start = {{ action = "transfer", number = "{out_number}", trunk = "out" }}
lang = "zh"

[ivr.flows.dialoutprio]
start = {{ action = "transfer", number = "{out_number}", trunk = "outprio" }}
lang = "zh"

[ivr.actions.hello]
action = "play"
prompts = ["welcome"]
then = {{ action = "hangup" }}

[storage]
database = "{work}/calls.db"
recordings = "{work}/rec"
voicemail = "{work}/vm"
events = "{work}/events.db"
server_id = "openr2"
"""


def r2test_conf(callers: bool, work: Path) -> str:
    """r2test's config: China, OpenR2's own MF tones (the emulator has no DAHDI MF)."""
    # mfbacktimeout: r2test passes 0 (the backward MF cycle timer runs out at once) unless set;
    # 5 s rather than OpenR2's 2 s rides out a server descheduled on a loaded CI machine
    lines = ["variant=cn", "loglevel=all", "usedahdimf=no", "callfiles=no", "mfbacktimeout=5000"]
    if callers:
        lines += ["maxani=10", "maxdnis=5", "caller=yes", f"cid={ANI}"]
        for chans, dnis, category, outcome in CALLERS:
            if outcome == "caller clears":        # r2test's options hold for the ranges after them
                (work / "give-up.r2").write_text(GIVE_UP_AFTER_ACCEPT)
                lines += [f"advancedprotocolfile={work / 'give-up.r2'}"]
            lines += [f"dnid={dnis}", f"category={category.upper()}", f"channel={chans}"]
    else:   # the called side: the whole DNIS before the category and ANI (OpenR2 counts digits)
        lines += [f"maxdnis={len(OUT_NUMBER)}", "maxani=20", "caller=no", "channel=1-15", "channel=17-31"]
    return "\n".join(lines) + "\n"


def chans(spec: str) -> list[int]:
    lo, hi = map(int, spec.split("-"))
    return list(range(lo, hi + 1))


class R2Test:
    """r2test under the DAHDI emulator on one board; its output lines collected by a thread."""

    def __init__(self, work: Path, board: str, conf: str, tag: str) -> None:
        path = work / f"r2test-{tag}.conf"
        path.write_text(conf)
        self.log = open(work / f"r2test-{tag}.log", "w")
        argv = [sys.executable, "-m", "boarddrv.cli", "dahdi-run", "--state", str(work / f"dahdi-{board}.state"),
                "--configure", f"sim://{board}", "--", "stdbuf", "-oL", "-eL", "r2test", "-c", str(path)]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []     # its "USER:" lines
        self.all: list[str] = []       # and every line
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.log.write(line)
            self.all.append(line)
            at = line.find("USER:")    # r2test's threads share stdout: a log line may hold one
            if at >= 0:
                self.lines.append(line[at:].strip())

    def user(self, pattern: str) -> list[re.Match[str]]:
        rx = re.compile(pattern)
        return [m for m in map(rx.match, list(self.lines)) if m]

    def wait(self, pred, what: str, others: list[subprocess.Popen]) -> None:
        deadline = time.monotonic() + LIMIT
        while not pred():
            assert self.proc.poll() is None, f"r2test exited ({self.proc.returncode}) waiting for {what}"
            for p in others:
                assert p.poll() is None, f"{p.args[:4]} exited ({p.returncode}) waiting for {what}"
            assert time.monotonic() < deadline, f"never saw {what}; r2test: {self.lines[-10:]}"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                stop_process(self.proc, timeout=5.0, kill_timeout=5.0)
        self._reader.join(5)
        self.log.close()


def server_events(log: Path, kind: str) -> list[dict]:
    out = []
    for line in log.read_text().splitlines():
        if " event {" in line:
            ev = json.loads(line.split(" event ", 1)[1])
            if ev["kind"] == kind:
                out.append(ev)
    return out


def db_rows(work: Path, first_chan: int = 0) -> list[tuple]:
    """The server's records of ended calls from channel `first_chan` on, read as `voiceboard calls`
    does (a call's row is written when it starts and completed when it ends)."""
    if not (work / "calls.db").exists():
        return []
    con = sqlite3.connect(work / "calls.db", timeout=10.0)
    try:
        return con.execute("SELECT channel, direction, dnis, ani, category, disposition, answer IS NOT NULL "
                           "FROM calls WHERE channel >= ? AND \"end\" IS NOT NULL ORDER BY call_id",
                           (first_chan,)).fetchall()
    except sqlite3.OperationalError:      # the server has not made the table yet
        return []
    finally:
        con.close()


def protocol_errors(r2: R2Test) -> dict[int, str]:
    """r2test's channels that quit on a protocol error (with OpenR2's reason) or an OS error."""
    out = {}
    for line in r2.all:
        m = re.search(r"Channel (\d+) -- Protocol error\. Reason = ([^,]+),", line)
        if m:
            out[int(m[1])] = m[2]
        m = re.search(r"USER: OS error on chan (\d+)", line)
        if m:
            out[int(m[1])] = "OS error"
    return out


def exchange_scenario(n: str) -> str:
    """hwsim's exchange on the server's span 2: EXCHANGE_CALLS callers of 95577 and 95578 in turn,
    0.7 s apart; each hangs up 10 s after the server answered it (the outbound call is set up
    and answered by then, with room for a loaded machine)."""
    out = ["[scenario]", "duration = 3600.0"]
    for i in range(EXCHANGE_CALLS):
        out += ["[[caller]]", f"at = {3.0 + 0.7 * i:.1f}", f'line = "{n}s:60-89"',
                f'number = "0106{i:07d}"', f'called = "{95577 + i % 2}"', "give_up = 40.0", "hangup_after = 10.0"]
    return "\n".join(out) + "\n"


def test_openr2_calls_the_server_and_the_server_calls_openr2(tmp_path):
    t0 = time.monotonic()
    n = f"or2_{os.getpid()}_"          # board names no other run uses at the same time
    work = tmp_path
    (work / "hw.toml").write_text(HWSIM.format(n=n))
    (work / "scenario.toml").write_text(exchange_scenario(n))
    (work / "server.toml").write_text(SERVER.format(n=n, work=work, out_number=OUT_NUMBER, out_ani=OUT_ANI))
    hw = spawn_hwsim(work / "hw.toml", scenario=work / "scenario.toml", clock="lockstep",
                     ready=work / "ready.json", log=work / "hwsim.log", report=work / "report", timeout=LIMIT)
    serve_log = work / "serve.log"
    procs = [hw.popen]
    srv: subprocess.Popen | None = None
    called: R2Test | None = None
    rounds: list[R2Test] = []
    try:
        # r2test's called side first: once the server starts, its board keeps pace with
        # r2test's (real time), so the exchange's callers come when r2test listens
        called = R2Test(work, f"{n}c", r2test_conf(callers=False, work=work), "called")
        called.wait(lambda: sum("variant = CN" in line for line in called.all) >= 30,
                    "r2test's called channels", procs)
        srv = subprocess.Popen([sys.executable, "-m", "boarddrv.cli", "serve", "--config",
                                str(work / "server.toml"), "--lockstep-sync", "--status-port", "-1"],
                               stdout=subprocess.DEVNULL, stderr=open(serve_log, "w"))
        procs.append(srv)
        called.wait(lambda: bool(server_events(serve_log, "board.start")), "the server's start", procs)
        called.wait(lambda: len(called.user(r"USER: far end unblocked")) >= 30, "idle on r2test's channels",
                    procs)
        time.sleep(1.0)        # the server's first blocks reach board A too, before r2test seizes there
        caller_chans = [c for spec, *_ in CALLERS for c in chans(spec)]
        for r in range(ROUNDS):
            callers = R2Test(work, f"{n}a", r2test_conf(callers=True, work=work), f"round{r}")
            rounds.append(callers)
            callers.wait(lambda r2=callers: len(r2.user(r"USER: (call ended at|protocol error on|OS error on) chan"))
                         >= len(caller_chans), f"round {r}: every caller's call ended", procs)
            callers.stop()
        # every exchange caller's call and its outbound call are in the call database once ended
        called.wait(lambda: len(db_rows(work, 30)) >= 2 * EXCHANGE_CALLS, "every outbound call ended", procs)
        called.wait(lambda: len(called.user(r"USER: (call ended at|protocol error on|OS error on) chan"))
                    >= len(called.user(r"USER: call ready on")), "r2test's side of each outbound call", procs)
    finally:
        for r2 in rounds:
            r2.stop()
        if called is not None:
            called.stop()
        if srv is not None:
            stop_process(srv, timeout=20.0, kill_timeout=10.0)
        hw.stop(timeout=30.0, kill_timeout=10.0)
    wall = time.monotonic() - t0

    # No call may break: r2test quits a channel's thread on a protocol error or an OS error, and
    # each of those is a failure here. (The DAHDI emulator's card pace keeps r2test's blocks and
    # answers in step under load: docs/r2.md.)
    for r2 in rounds + [called]:
        assert protocol_errors(r2) == {}, (r2.log.name, protocol_errors(r2))

    # ---- inbound: r2test's side, per round and channel
    by_chan = {c: (dnis, category, outcome) for spec, dnis, category, outcome in CALLERS for c in chans(spec)}
    expected_in = Counter()
    for r2 in rounds:
        for c, (dnis, category, outcome) in by_chan.items():
            mine = [line for line in r2.lines if re.search(rf"on chan {c}\b|at chan {c}$", line)
                    and "far end" not in line and "read data" not in line]   # (un)blocked: the line state
            assert mine[0] == (f"USER: making call on chan {c}. DNID = {dnis}, CID = {ANI}, "
                               f"CPC = {category.replace('_', ' ').title()}"), mine
            expected_in[outcome] += 1
            if outcome == "answered":
                assert f"USER: call has been accepted on chan {c} with type: Call With Charge" in mine, mine
                assert f"USER: call has been answered on chan {c}" in mine, mine
                # OpenR2 reports a disconnect (on_call_disconnected) only for the far end's: our clear-back
                assert f"USER: got disconnect on chan {c}: Normal Clearing" in mine, mine
            elif outcome == "caller clears":   # r2test clears forward first, accepted and not answered:
                # its own r2_answer timer's "No Answer", before anything of ours
                assert mine[1:] == [f"USER: call has been accepted on chan {c} with type: Call With Charge",
                                    f"USER: got disconnect on chan {c}: No Answer",
                                    f"USER: call ended at chan {c}"], mine
            else:
                assert f"USER: got disconnect on chan {c}: {OPENR2_CAUSE[outcome]}" in mine, mine
                assert not any("answered" in line for line in mine), mine
            assert mine[-1] == f"USER: call ended at chan {c}", mine
    assert expected_in["answered"] >= CALLS
    # ---- inbound: the server's side (span 0 = board channels 0-29), its call database: every call
    calls = db_rows(work)
    got_in = Counter()
    for chan, direction, dnis, ani, category, disposition, answered in (c for c in calls if c[0] < 30):
        ts = chan + 1 if chan < 15 else chan + 2
        want_dnis, want_category, outcome = by_chan[ts]
        assert direction == "inbound"
        assert (dnis, category) == (want_dnis, want_category), (chan, dnis, category)
        assert ani is None, chan              # OpenR2's China caller sends no ANI (docs/r2.md)
        assert disposition == {"answered": "ivr: hangup action",
                               "caller clears": "caller cleared forward"}.get(outcome, f"refused: {outcome}"), (
            chan, disposition)
        assert answered == (outcome == "answered"), chan
        got_in[outcome] += 1
    assert got_in == expected_in, (got_in, expected_in)
    offers = [e for e in server_events(serve_log, "call.offer") if e["chan"] < 30]
    assert len(offers) == expected_in["answered"]      # not the late group's: their callers left first
    assert {(e["dnis"], e["ani"]) for e in offers} == {("95566", None)}

    # ---- outbound: r2test's called side saw the server's DNIS, ANI and category on every call
    ready = called.user(r"USER: call ready on chan (\d+)\. ANI = (\S+), DNIS = (\S+), Category = (\d+)")
    # the hunt groups: "out" on timeslots 1-15, "outprio" (priority subscriber) on 17-31
    seen = Counter((m[2], m[3], int(m[4]), int(m[1]) < 16) for m in ready)
    right = {(OUT_ANI, OUT_NUMBER, OPENR2_CATEGORY["national_subscriber"], True),
             (OUT_ANI, OUT_NUMBER, OPENR2_CATEGORY["national_priority_subscriber"], False)}
    assert set(seen) <= right and sum(seen.values()) == EXCHANGE_CALLS, seen
    ended = called.user(r"USER: call ended at chan")
    accepted = called.user(r"USER: call has been accepted")
    # the server cleared forward first: r2test's disconnect is the server's clear-forward
    cleared = called.user(r"USER: got disconnect on chan \d+: Normal Clearing")
    assert len(accepted) == len(cleared) == len(ended) == EXCHANGE_CALLS, (len(accepted), len(cleared), len(ended))
    outs = [c for c in calls if 30 <= c[0] < 60]
    assert len(outs) == EXCHANGE_CALLS
    assert set(Counter(c[1:] for c in outs)) == {
        ("outbound", OUT_NUMBER, OUT_ANI, "national_subscriber", "other party hung up", 1),
        ("outbound", OUT_NUMBER, OUT_ANI, "national_priority_subscriber", "other party hung up", 1)}, outs
    assert all((c[4] == "national_subscriber") == (c[0] < 45) for c in outs)
    # each came from one of the exchange's callers, who hung up first (the server then cleared forward)
    pstn = [c for c in calls if c[0] >= 60]
    assert len(pstn) == EXCHANGE_CALLS
    assert all(c[5] == "caller cleared forward" for c in pstn), Counter(c[5] for c in pstn)
    print(f"\nOpenR2 interop: {ROUNDS} rounds; inbound {dict(got_in)}; outbound {len(ended)} answered and "
          f"cleared of {len(outs)}; none broken; wall {wall:.0f} s")
