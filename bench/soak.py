"""The soak: the hotline and an E1-sized site on lockstep hwsim for hours of
simulated time at twice their design traffic, with faults on a schedule, then
a check that nothing was lost, doubled, orphaned or left seized.

    .venv/bin/python bench/soak.py                        # 24 simulated hours, traffic x2
    .venv/bin/python bench/soak.py --hours 0.5 --seed 3   # a short one
    .venv/bin/python bench/soak.py --hours 2 --json out.json --keep out/soak
    .venv/bin/python bench/soak.py --hours 0.15 --max-hold 60 --tail 100 --kills 12   # 12 crashes

Real processes: one `python -m hwsim --clock lockstep` per board (so a board
can be lost and come back: its process is stopped and started again, as a
card reset) and `voiceboard serve --lockstep-sync` on a server config with
[storage] and recording rules. The callers are generated here (Poisson
arrivals, a mix of behaviours, one unique caller number per call) and handed
to hwsim as explicit [[caller]] lists, so a restarted board carries on with
the callers still to come. Design traffic: what the lines carry at 1 %
blocking (Erlang B); arrivals = `--traffic` x that / the mean holding time
of the board's caller mix (`Board.hold`, measured).

Faults, at fixed fractions of the run (`FAULTS`): an admin-request storm, a
rules reload with an error, `kill -9` of the server and a restart (`--kills N`:
N of them, spread over the run), the recordings filesystem full for a while,
the E1 site's board lost and back.
A server that exits by itself is restarted too, and counted. The admin
storm sends `Authorization: Bearer` when the server made a token file
(`token_for`: `*token*` beside the config or the storage), none otherwise.

At the end (after a quiet tail longer than any call), the invariants
(`verify`): every call offered (it rang at the server) is in the call
records exactly once (joined on the caller number), every recording file has
its row and every kept row its file, no line is left seized (asked of the
board: the host's hook state), the server never exited by itself, the admin
storm was answered, the broken rules were rejected and the restored ones
applied, recording resumed after the disk full, and the server's RSS is flat
over the last server run. Exit status 1 if any fails (each says how: counts
and ids), 2 for bad arguments.

"E1 site": inbound E1 CAS calls need China No.1 R2 register signalling,
which is not built yet, so the site is an analog board with as many lines as
its E1 spans have channels (30 per span). Docs: docs/soak.md.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from hwsim.spawn import HwsimProcess, spawn_hwsim  # noqa: E402
from voiceserver.acd.erlang import erlang_b  # noqa: E402

SPEECH = REPO / "prompts" / "en" / "your_call_is_important.wav"
GRADE_OF_SERVICE = 0.01      # design: the traffic the lines carry with 1 % blocking (Erlang B)
MAX_HOLD = 240.0             # s: no caller stays longer; the quiet tail is longer than this
TAIL = 300.0                 # s of simulated time without new callers at the end
START = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
RECORDING_BYTES = 8000 * 10  # mono A-law, max_seconds = 10: at most 80 kB per recording
STORE_CAP = 1 << 30          # the recordings tmpfs is at most 1 GiB: sampling keeps it under
AGENTS = ["chen", "li", "wang", "zhao"]
PACE = 20.0                  # simulated s a board may run ahead of the other
WALL_GUARD = 120.0           # wall s without simulated progress: wedged (a guard, not a check)


# ---------------------------------------------------------------- traffic
def design_erlangs(lines: int, gos: float = GRADE_OF_SERVICE) -> float:
    """The largest offered traffic (Erlangs) that `lines` carry with blocking <= gos."""
    lo, hi = 0.0, float(lines)
    for _ in range(60):
        mid = (lo + hi) / 2
        if erlang_b(lines, mid) <= gos:
            lo = mid
        else:
            hi = mid
    return lo


@dataclass
class Board:
    """One simulated board of the soak: its hwsim config and the callers it gets."""
    key: str                  # "hotline" | "e1site": the server's name for it
    name: str                 # the hwsim board name (unique per run)
    lines: int                # inbound FXO lines
    prefix: str               # caller numbers: prefix + serial
    kinds: dict[str, float]   # caller behaviour -> share
    hold: float               # s: mean holding time of this caller mix (answer to release), measured
    config: str = ""          # hwsim TOML


@dataclass
class Caller:
    at: float                 # simulated s since the board's first tick
    number: str
    kind: str
    hangup_after: float

    def toml(self, board: str, at: float) -> str:
        script = {
            "account": '[{ after_silence = 1.0, digits = "1" }, { after_silence = 1.0, digits = "12345678#" }]',
            "silent": "[]",
            "early": "[]",
            "invalid": '[{ after_silence = 1.0, digits = "7" }]',
            "agent": '[{ after_silence = 0.6, digits = "0" }]',
            "voicemail": f'[{{ after_silence = 0.6, digits = "9" }}, {{ after_silence = 1.0, play = "{SPEECH}" }}]',
        }[self.kind]
        return (f'[[caller]]\nat = {at:.3f}\nline = "{board}"\nnumber = "{self.number}"\n'
                f"give_up = 60.0\nhangup_after = {self.hangup_after:.2f}\nscript = {script}\n")


def plan_callers(board: Board, seconds: float, traffic: float, rng: random.Random,
                 max_hold: float = MAX_HOLD) -> list[Caller]:
    """Poisson arrivals at `traffic` x the board's design load for `seconds`."""
    rate = traffic * design_erlangs(board.lines) / board.hold      # calls per second
    kinds, weights = zip(*board.kinds.items(), strict=False)
    out: list[Caller] = []
    t = 1.0
    while True:
        t += rng.expovariate(rate)
        if t >= seconds:
            return out
        kind = rng.choices(kinds, weights)[0]
        if kind == "early":
            hold = rng.uniform(1.0, 8.0)
        elif kind == "voicemail":
            hold = 20.0
        else:
            hold = min(max_hold, 5.0 + rng.expovariate(1 / 55.0))
        out.append(Caller(t, f"{board.prefix}{len(out) + 1:07d}", kind, hold))


def make_boards(tag: str, e1_lines: int) -> list[Board]:
    hotline = Board("hotline", f"hotline_soak{tag}", 4, "1391",
                    {"account": 0.3, "silent": 0.1, "early": 0.15, "invalid": 0.1,
                     "agent": 0.25, "voicemail": 0.1}, hold=21.3)
    hotline.config = f"""# the soak's hotline: 4 exchange lines + 4 agent phones (hwsim-hotline.toml)
[clock]
start = {START.isoformat()}

[[board]]
name = "{hotline.name}"
law = "alaw"

[[board.span]]
kind = "analog"
channels = 8

[[board.fxo]]
channels = "0-2"
disconnect = "busy-tone"
callerid = "fsk"

[[board.fxo]]
channels = "3"
disconnect = "loop-drop"
callerid = "dtmf"

[[board.fxs]]
channels = "4-7"
numbers = ["8001", "8002", "8003", "8004"]
"""
    e1 = Board("e1site", f"e1site_soak{tag}", e1_lines, "1392",
               {"account": 0.45, "silent": 0.15, "early": 0.25, "invalid": 0.15}, hold=15.6)
    half = e1_lines // 2
    e1.config = f"""# the soak's E1 site: {e1_lines} lines, as many as its E1 spans have channels. Analog
# FXO ports: inbound E1 CAS calls need China No.1 R2 register signalling (not built yet).
[clock]
start = {START.isoformat()}

[[board]]
name = "{e1.name}"
law = "alaw"

[[board.span]]
kind = "analog"
channels = {e1_lines}

[[board.fxo]]
channels = "0-{half - 1}"
disconnect = "loop-drop"
callerid = "fsk"

[[board.fxo]]
channels = "{half}-{e1_lines - 1}"
disconnect = "busy-tone"
callerid = "fsk"
"""
    return [hotline, e1]


def server_config(boards: list[Board], store: Path) -> str:
    hot, e1 = boards
    agents = "\n".join(f'[agents.{a}]\nphone = "hotline:{4 + i}"\n' for i, a in enumerate(AGENTS))
    return f"""# the soak's server: both boards, the hotline IVR with a queue and voicemail, recording rules
[[boards]]
uri = "sim://{hot.name}"
name = "hotline"

[[boards]]
uri = "sim://{e1.name}"
name = "e1site"

[channels]
inbound = ["hotline:0-3", "e1site:0-{e1.lines - 1}"]
agents = "hotline:4-7"

[prompts]
default_lang = "zh"
languages = ["zh", "en"]

[storage]
recordings = "{store / 'recordings'}"
voicemail = "{store / 'voicemail'}"
database = "calls.db"
rules_audit = "rules-audit.jsonl"

[recording]
rules = "rules.toml"

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
greeting = ["main_menu", "press_1_balance"]
invalid = ["invalid_choice"]
timeout = ["no_input"]
retries = 2
first_timeout = 3000
fallback = {{ action = "hangup", prompts = ["goodbye"] }}

[ivr.menus.main.options]
"1" = "account"
"0" = {{ action = "queue", queue = "service" }}
"9" = {{ action = "voicemail", mailbox = "sales" }}

[ivr.menus.account]
greeting = ["enter_account"]
timeout = ["no_input"]
retries = 1
clear_digits = true
max_digits = 8
min_digits = 6
terminators = "#"
first_timeout = 8000
fallback = {{ action = "hangup", prompts = ["goodbye"] }}
input = {{ store = "account", then = {{ action = "hangup", prompts = ["goodbye"] }} }}

{agents}
[queues.service]
strategy = "top-down"
members = {json.dumps(AGENTS)}
ring_timeout = 20

[voicemail]
max_length = 30
silence = 5

[voicemail.mailboxes.sales]
owner = "chen"
"""


def rules_text(sample: int) -> str:
    return f"""# the soak's recording rules: mono A-law, at most 10 s, shorter than 3 s discarded
format = "wav-alaw"
layout = "mono"
min_seconds = 3
max_seconds = 10

[sampling]
inbound = {sample}
seed = "soak"
"""


BROKEN_RULES = '# a broken edit: the reload must be rejected and the running rules kept\nmin_seconds = "three"\n'


# ---------------------------------------------------------------- faults
@dataclass
class Fault:
    at: float                 # fraction of the run
    kind: str
    lasts: float = 0.0        # fraction of the run it lasts (disk full)


FAULTS = [Fault(0.10, "admin-storm"), Fault(0.15, "rules-error", 0.03), Fault(0.25, "server-kill9"),
          Fault(0.35, "disk-full", 0.08), Fault(0.50, "board-reset")]
STORM_REQUESTS = 240
STORM_THREADS = 8


# ---------------------------------------------------------------- processes
def _wait(pred: Callable[[], bool], what: str, limit: float = 60.0,
          alive: Callable[[], str | None] = lambda: None) -> None:
    deadline = time.monotonic() + limit       # a guard against a wedged process, not a timing check
    while not pred():
        why = alive()
        if why:
            raise RuntimeError(f"{why} while waiting for {what}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"no {what} after {limit:.0f} s")
        time.sleep(0.02)


def ready_limit(scenario: Path) -> float:
    """How long hwsim may take to load a scenario: a day of E1 callers is ~37 MB of TOML
    (225,000 [[caller]] tables), which hwsim parses in about 50 s on a busy 2-core machine."""
    return 60.0 + 3.0 * scenario.stat().st_size / 1e6


class HwsimBoard:
    """One board's `python -m hwsim` process; restarting it carries the callers on."""

    def __init__(self, board: Board, callers: list[Caller], work: Path, agents: bool) -> None:
        self.board = board
        self.callers = callers
        self.work = work
        self.agents = agents
        self.proc: HwsimProcess | None = None
        self.runs = 0
        self.offset = 0.0             # simulated s done by the processes before this one
        self.reports: list[dict[str, Any]] = []
        self.started: set[str] = set()   # caller numbers an earlier process started (its report)
        self.held = False             # SIGSTOPped: ahead of the other board (pace)
        self._observer: Any = None
        (work / f"{board.key}.toml").write_text(board.config)

    def start(self) -> None:
        """A new hwsim process, starting where the last one stopped (simulated time), with
        the callers still to come: those after `offset` that no earlier process started.

        hwsim starts a caller at the tick nearest its `at`, so the last tick of a
        process (the one `offset` ends at) may already have rung a caller whose `at`
        is up to half a tick after `offset`: that caller rang there (its report has
        it, cut by the stop) and must not ring again as a new offer here."""
        self.runs += 1
        n = self.runs
        name = self.board.name
        start = START + dt.timedelta(seconds=self.offset)
        lines = [f"[scenario]\nstart = {start.isoformat()}\nseed = {n}\n"]
        if self.agents:
            lines.append(f'[[agent]]\nphones = "{name}:4-7"\nanswer_after = 2.0\nhangup_after = 40.0\n'
                         f'script = [{{ after = 1.0, play = "{SPEECH}" }}]\n')
        lines += [c.toml(name, c.at - self.offset) for c in self.callers
                  if c.at > self.offset and c.number not in self.started]
        scen = self.work / f"{self.board.key}-scenario{n}.toml"
        scen.write_text("\n".join(lines))
        self.report_dir = self.work / f"{self.board.key}-report{n}"
        self.proc = spawn_hwsim(self.work / f"{self.board.key}.toml", scenario=scen, clock="lockstep",
                                ready=self.work / f"{self.board.key}-ready.json", report=self.report_dir,
                                log=self.work / f"{self.board.key}-hwsim{n}.log",
                                timeout=ready_limit(scen))
        from boarddrv import open_board
        self._observer = open_board(f"sim://{name}")    # read-only use: stats and hook state

    def seconds(self) -> float:
        """Simulated seconds of this board (all its processes)."""
        if self._observer is None:
            return self.offset
        try:
            st = self._observer.stats()
        except Exception:
            return self.offset
        return self.offset + st["ticks"] * 160 / 8000.0

    def seized(self) -> list[int]:
        """FXO lines the host holds off-hook now (asked of the card's registers)."""
        from boarddrv import ChannelType
        if self._observer is None:
            return []
        return [c.index for c in self._observer.channels
                if c.type is ChannelType.FXO and self._observer.channel_status(c.index)["hook"]]

    def pace(self, ahead: float) -> None:
        """Hold this board (SIGSTOP: its clock stands, as in lockstep the host's does) while it
        is more than PACE simulated s ahead of the slowest board; let it go at half that."""
        if self.proc is None or self.proc.poll() is not None:
            return
        if not self.held and ahead > PACE:
            self.proc.send_signal(signal.SIGSTOP)
            self.held = True
        elif self.held and ahead < PACE / 2:
            self.release()

    def release(self) -> None:
        if self.held and self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
        self.held = False

    def stop(self) -> dict[str, Any]:
        """SIGTERM: hwsim ends the calls in progress, writes its report, removes the board."""
        if self._observer is not None:
            self._observer.close()
            self._observer = None
        assert self.proc is not None
        self.release()
        self.proc.stop(timeout=120.0, kill_timeout=10.0)
        path = self.report_dir / "report.json"
        report = json.loads(path.read_text()) if path.exists() else {
            "calls": [], "ticks": {}, "errors": [f"no report (exit {self.proc.returncode})"]}
        report["run"] = self.runs
        report["offset"] = self.offset
        self.started.update(c["number"] for c in report["calls"]
                            if c.get("direction") == "in" and c.get("number"))
        self.offset += report["ticks"].get(self.board.name, 0) * 160 / 8000.0
        self.reports.append(report)
        return report

    def sweep_audio(self) -> None:
        """hwsim keeps a WAV of every call; the soak does not need them: bound the disk."""
        calls = getattr(self, "report_dir", None)
        if calls is None or not (calls / "calls").is_dir():
            return
        for wav in (calls / "calls").glob("*.wav"):
            if wav.with_suffix(".json").exists():
                wav.unlink(missing_ok=True)

    def kill(self) -> None:
        if self._observer is not None:
            self._observer.close()
            self._observer = None
        self.release()
        if self.proc is not None:               # cleanup: SIGTERM first
            self.proc.stop(timeout=20.0, kill_timeout=10.0)
        shm = Path(f"/dev/shm/voiceboard.{self.board.name}")   # a killed hwsim leaves its board
        if self.proc is not None and shm.exists():
            shm.unlink(missing_ok=True)


@dataclass
class ServerRun:
    """One `voiceboard serve` process: how it started, ended, and its memory."""
    n: int
    log: Path
    started_at: float                      # soak simulated s
    ended_at: float | None = None
    how: str = ""                          # "kill -9", "stopped", "exited by itself (N)"
    exit_code: int | None = None
    rss: list[tuple[float, int, int]] = field(default_factory=list)   # (soak s, bytes, event seq)


class Server:
    def __init__(self, config: Path, work: Path, port: int) -> None:
        self.config = config
        self.work = work
        self.port = port
        self.proc: subprocess.Popen | None = None
        self.runs: list[ServerRun] = []

    def start(self, now: float) -> None:
        run = ServerRun(len(self.runs) + 1, self.work / f"serve{len(self.runs) + 1}.log", now)
        self.runs.append(run)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "boarddrv.cli", "serve", "--config", str(self.config),
             "--lockstep-sync", "--status-port", str(self.port), "--log-level", "info"],
            stdout=subprocess.DEVNULL, stderr=open(run.log, "w"))
        _wait(lambda: '"kind": "board.start"' in run.log.read_text(errors="replace")
              and run.log.read_text(errors="replace").count('"kind": "board.start"') >= 2,
              f"server {run.n} started (board.start)", alive=self.died)

    def died(self) -> str | None:
        if self.proc is not None and self.proc.poll() is not None:
            tail = self.runs[-1].log.read_text(errors="replace").strip().splitlines()[-3:]
            return f"voiceboard serve exited ({self.proc.returncode}): " + " | ".join(tail)
        return None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def rss(self) -> int | None:
        if not self.alive:
            return None
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            return None
        return None

    def sample(self, now: float) -> int | None:
        """Note the RSS now, with the last event number the log shows (the journal's fill)."""
        rss = self.rss()
        if rss is not None:
            run = self.runs[-1]
            run.rss.append((now, rss, last_seq(run.log)))
        return rss

    def kill9(self, now: float) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        self._ended(now, "kill -9")

    def stop(self, now: float) -> None:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                self._ended(now, "did not stop on SIGTERM: killed")
                return
        self._ended(now, "stopped" if self.proc.returncode == 0 else f"stop exit {self.proc.returncode}")

    def _ended(self, now: float, how: str) -> None:
        run = self.runs[-1]
        run.ended_at, run.how, run.exit_code = now, how, self.proc.returncode

    def signal(self, sig: int) -> None:
        if self.alive:
            self.proc.send_signal(sig)


def last_seq(log: Path) -> int:
    """The sequence number of the last event in a server log (read from its tail)."""
    try:
        with open(log, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 8192))
            found = re.findall(rb'"seq": (\d+)', f.read())
    except OSError:
        return 0
    return int(found[-1]) if found else 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- the small filesystem
def mount_store(path: Path, size: int) -> str:
    """A filesystem of `size` bytes at `path` to fill up: tmpfs, else a loop-mounted image."""
    path.mkdir(parents=True, exist_ok=True)
    out = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                         capture_output=True, text=True, timeout=30)
    if out.returncode == 0:
        return "tmpfs"
    image = path.with_suffix(".img")
    with open(image, "wb") as f:
        f.truncate(size)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True, capture_output=True, timeout=60)
    loop = subprocess.run(["mount", "-o", "loop", str(image), str(path)], capture_output=True,
                          text=True, timeout=30)
    if loop.returncode != 0:
        raise RuntimeError(f"cannot mount a small filesystem at {path} to fill: tmpfs: "
                           f"{out.stderr.strip()}; loop image: {loop.stderr.strip()} (run as root)")
    return f"ext4 image on a loop device (tmpfs mount refused: {out.stderr.strip()})"


def unmount(path: Path) -> None:
    if subprocess.run(["umount", str(path)], capture_output=True, timeout=60).returncode != 0:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=60)


# ---------------------------------------------------------------- the admin storm
def token_for(dirs: list[Path]) -> str | None:
    """The admin API token if the server made one (a 0600 file beside its config/storage)."""
    for d in dirs:
        for p in sorted(d.glob("*token*")):
            if p.is_file() and p.stat().st_size < 4096:
                return p.read_text().strip() or None
    return None


def http(port: int, method: str, path: str, token: str | None) -> int:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\n"
    if token:
        head += f"Authorization: Bearer {token}\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall((head + "\r\n").encode())
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    m = re.match(rb"HTTP/1\.[01] (\d{3})", data)
    return int(m.group(1)) if m else 0


def admin_storm(port: int, token: str | None, n: int = STORM_REQUESTS,
                threads: int = STORM_THREADS) -> dict[str, Any]:
    """`n` requests from `threads` threads on loopback: reads, reloads, agent actions, bad targets."""
    mix = [("GET", "/channels"), ("GET", "/queues"), ("GET", "/agents"), ("GET", "/"),
           ("POST", "/admin/reload"), ("POST", "/admin/record-pause/no-such-call"),
           ("POST", "/admin/agent-not-ready/zhao"), ("POST", "/admin/agent-ready/zhao"),
           ("GET", "/no-such-endpoint")]
    codes: Counter[str] = Counter()
    lock = threading.Lock()

    def worker(k: int) -> None:
        for i in range(k, n, threads):
            method, path = mix[i % len(mix)]
            try:
                code = str(http(port, method, path, token))
            except OSError as exc:
                code = f"error: {type(exc).__name__}"
            with lock:
                codes[code] += 1
    ts = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    final = http(port, "POST", "/admin/agent-ready/zhao", token)     # leave the agent ready
    return {"requests": n, "threads": threads, "auth": bool(token), "codes": dict(codes),
            "final_ready": final}


# ---------------------------------------------------------------- the run
@dataclass
class Params:
    hours: float = 24.0
    traffic: float = 2.0
    seed: int = 1
    e1_lines: int = 30
    work: Path | None = None
    progress: float = 10.0              # wall s between progress lines (0: none)
    max_hold: float = MAX_HOLD          # s: the longest a caller stays
    tail: float = TAIL                  # s without new callers at the end (> max_hold + the IVR)
    faults: list[Fault] = field(default_factory=lambda: list(FAULTS))
    quiet: bool = False


class Soak:
    def __init__(self, p: Params, work: Path) -> None:
        self.p = p
        self.work = work
        self.duration = p.hours * 3600.0
        rng = random.Random(p.seed)
        tag = f"{os.getpid()}"
        self.boards = make_boards(tag, p.e1_lines)
        if p.tail <= p.max_hold + 30:
            raise ValueError(f"the quiet tail ({p.tail} s) must outlast the longest call "
                             f"({p.max_hold} s) by more than 30 s")
        self.callers = {b.key: plan_callers(b, self.duration, p.traffic, rng, p.max_hold)
                        for b in self.boards}
        self.store = work / "store"
        self.recordings = self.store / "recordings"
        self.voicemail = self.store / "voicemail"
        expect = sum(len(c) for c in self.callers.values())
        self.sample = max(1, min(100, int(100 * STORE_CAP * 0.6 / max(1, expect * RECORDING_BYTES))))
        self.store_size = min(STORE_CAP, max(64 << 20, int(expect * RECORDING_BYTES * self.sample / 100 * 1.5)))
        self.config = work / "server.toml"
        self.config.write_text(server_config(self.boards, self.store))
        self.rules = work / "rules.toml"
        self.rules.write_text(rules_text(self.sample))
        self.hw = {b.key: HwsimBoard(b, self.callers[b.key], work, agents=b.key == "hotline")
                   for b in self.boards}
        self.server = Server(self.config, work, free_port())
        self.fault_log: list[dict[str, Any]] = []
        self.store_kind = ""
        self.t_wall = 0.0
        self.seized_at_end: dict[str, list[int]] = {}
        self.filler: Path | None = None
        self.files: set[str] = set()
        self.files_at_clear: set[str] | None = None    # recording files when the disk had room again

    # -- time -------------------------------------------------------------------
    def now(self) -> float:
        """The soak's simulated time: the slowest board's."""
        return min(h.seconds() for h in self.hw.values())

    def say(self, text: str) -> None:
        if not self.p.quiet:
            print(text, file=sys.stderr, flush=True)

    # -- main loop ----------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        t0 = time.monotonic()
        self.store_kind = mount_store(self.store, self.store_size)
        try:
            for h in self.hw.values():
                h.start()
            self.server.start(0.0)
            self._loop()
            self._finish()
        finally:
            for h in self.hw.values():
                h.kill()
            if self.server.alive:
                self.server.proc.kill()
                self.server.proc.wait(10)
            self.t_wall = time.monotonic() - t0
            if self.p.work is not None:      # the recordings go with the tmpfs: keep a copy
                shutil.copytree(self.store, self.work / "store-copy", dirs_exist_ok=True)
            unmount(self.store)
        return verify(self)

    def _loop(self) -> None:
        pending = sorted(self.p.faults, key=lambda f: f.at)
        ends: list[tuple[float, Callable[[], None]]] = []
        end = self.duration + self.p.tail
        t0 = last_progress = last_move = last_sweep = time.monotonic()
        last_t = -1.0
        while True:
            now = self.now()
            if now >= end:
                return
            if now > last_t:
                last_t, last_move = now, time.monotonic()
            elif time.monotonic() - last_move > WALL_GUARD:
                raise RuntimeError(f"no simulated progress for {WALL_GUARD:.0f} s wall at "
                                   f"{now:.1f} s: wedged (server alive: {self.server.alive})")
            if not self.server.alive:                 # it exited by itself: note it, restart it
                run = self.server.runs[-1]
                self.server._ended(now, f"exited by itself ({self.server.proc.returncode})")
                self.say(f"  server {run.n} exited by itself at {now / 3600:.2f} h "
                         f"(exit {run.exit_code}): {_tail(run.log)}")
                self._restart_boards_that_left()
                self.server.start(now)
            while pending and now >= pending[0].at * self.duration:
                f = pending.pop(0)
                done = self._fault(f, now)
                if done is not None:
                    ends.append(((f.at + f.lasts) * self.duration, done))
            for item in [e for e in ends if now >= e[0]]:
                ends.remove(item)
                item[1]()
            for h in self.hw.values():        # the boards keep within PACE s of each other
                h.pace(h.seconds() - now)
            rss = self.server.sample(now)
            if time.monotonic() - last_sweep >= 5.0:
                last_sweep = time.monotonic()
                for h in self.hw.values():
                    h.sweep_audio()
            if self.p.progress and time.monotonic() - last_progress >= self.p.progress:
                last_progress = time.monotonic()
                self.say(f"  {now / 3600:6.2f} h of {self.p.hours:g} h simulated  "
                         f"calls {self._rows_so_far():6d}  faults {len(self.fault_log)}  "
                         f"server runs {len(self.server.runs)}  "
                         f"rss {(rss or 0) / 2**20:.0f} MiB  wall {time.monotonic() - t0:.0f} s")
            time.sleep(0.2)

    def _rows_so_far(self) -> int:
        try:
            con = sqlite3.connect(f"file:{self.work / 'calls.db'}?mode=ro", uri=True, timeout=5)
            try:
                return con.execute("SELECT count(*) FROM calls").fetchone()[0]
            finally:
                con.close()
        except sqlite3.Error:
            return 0

    def _restart_boards_that_left(self) -> None:
        for h in self.hw.values():
            if h.proc is not None and h.proc.poll() is not None:
                h.stop()
                h.start()

    # -- faults -------------------------------------------------------------------
    def _note(self, kind: str, now: float, **info: Any) -> dict[str, Any]:
        entry = {"fault": kind, "at_h": round(now / 3600, 3), **info}
        self.fault_log.append(entry)
        self.say(f"  fault at {now / 3600:.2f} h: {kind} {json.dumps(info, default=str)}")
        return entry

    def _fault(self, f: Fault, now: float) -> Callable[[], None] | None:
        """Do fault `f` now; returns what ends it later (None: it is over)."""
        if f.kind == "server-kill9":
            self.server.kill9(now)
            self.server.start(self.now())
            self._note(f.kind, now, restarted=True)
            return None
        if f.kind == "board-reset":
            h = self.hw["e1site"]
            report = h.stop()                 # the card is gone: the host gets BOARD_LOST
            time.sleep(1.0)                   # lost for a while (wall: the board is not there)
            h.start()                         # and back, at the same simulated time
            entry = self._note(f.kind, now, board=h.board.name, cut_calls=sum(
                1 for c in report["calls"] if c.get("who_hung_up") == "end"))
            entry["server_alive_after"] = self.server.alive
            return None
        if f.kind == "admin-storm":
            token = token_for([self.work, self.store])
            self._note(f.kind, now, **admin_storm(self.server.port, token))
            return None
        if f.kind == "rules-error":
            good = self.rules.read_text()
            self.rules.write_text(BROKEN_RULES)
            self.server.signal(signal.SIGHUP)
            entry = self._note(f.kind, now, phase="broken rules written, SIGHUP")

            def restore() -> None:
                self.rules.write_text(good)
                self.server.signal(signal.SIGHUP)
                entry["restored_at_h"] = round(self.now() / 3600, 3)
            return restore
        if f.kind == "disk-full":
            st = os.statvfs(self.store)
            free = st.f_bavail * st.f_frsize
            self.filler = self.store / "filler"
            with open(self.filler, "wb") as out:
                try:
                    while True:
                        out.write(b"\0" * (1 << 20))
                        out.flush()
                except OSError:
                    pass
            entry = self._note(f.kind, now, filesystem=self.store_kind, filled=free)

            def clear() -> None:
                assert self.filler is not None
                self.filler.unlink()
                self.filler = None
                entry["cleared_at_h"] = round(self.now() / 3600, 3)
                self.files_at_clear = {str(p) for p in self.store.rglob("*.wav*")}
            return clear
        raise ValueError(f"unknown fault {f.kind!r}")

    # -- the end ---------------------------------------------------------------------
    def _finish(self) -> None:
        now = self.now()
        self.seized_at_end = {h.board.key: h.seized() for h in self.hw.values()}
        self.server.sample(now)
        self.server.stop(now)
        for h in self.hw.values():
            h.stop()
            h.sweep_audio()
        self.files = {str(p) for root in (self.recordings, self.voicemail) if root.exists()
                      for p in root.rglob("*.wav*")}


# ---------------------------------------------------------------- verification
@dataclass
class Check:
    name: str
    ok: bool
    detail: str


def _server_calls(logs: list[Path]) -> dict[str, list[tuple[int, str]]]:
    """caller number -> [(server run, call id)] from the servers' call.start/offer events."""
    out: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for n, log in enumerate(logs, 1):
        if not log.exists():
            continue
        with open(log, errors="replace") as f:
            for line in f:
                if '"kind": "call.offer"' not in line:
                    continue
                ev = json.loads(line.split("event ", 1)[1])
                entry = (n, ev.get("call_id"))
                caller = ev.get("caller")
                if caller and entry not in out[caller]:
                    out[caller].append(entry)
    return out


@dataclass
class CallMatch:
    """How the offered calls (hwsim's records) pair with the call rows (`match_offered`)."""
    missing: list[dict]             # offered calls without a row
    dups: dict[str, list[dict]]     # caller number -> its rows, when it has more rows than offers
    stray: list[dict]               # rows for no offered call
    without_caller_id: int          # offered calls paired with a row without caller ID on their line


def match_offered(offered: list[dict], rows: list[dict], key_of: dict[str, str]) -> CallMatch:
    """Pair every offered call with a row of its own. The key is the caller number (one per
    planned caller); a call whose caller ID the server never got (it started between the
    rings, or a board loss cut its first ring) has a row without a number: those pair with
    the calls left on the same line, in order. Each offer needs its own row: a number
    offered twice (by two hwsim processes) with one row is one call missing.

    `key_of`: hwsim board name -> the server's name for it (the rows' `board`)."""
    by_caller: dict[str, list[dict]] = defaultdict(list)
    blind: dict[tuple[str, int], list[dict]] = defaultdict(list)
    for r in sorted(rows, key=lambda r: r["start"] or ""):
        if r["caller"]:
            by_caller[r["caller"]].append(r)
        else:
            blind[(r["board"], r["channel"])].append(r)
    offers: dict[str, list[dict]] = defaultdict(list)
    for c in sorted(offered, key=lambda c: c["offered"]):
        offers[c["number"]].append(c)
    unmatched: list[dict] = []
    dups: dict[str, list[dict]] = {}
    for number, calls in offers.items():
        have = by_caller.get(number, [])
        if len(have) > len(calls):
            dups[number] = have
        left, elsewhere = list(have), []       # a row goes to the offer on its own line first
        for c in calls:
            line = (key_of.get(c["board"], ""), c["channel"])
            mine = next((r for r in left if (r["board"], r["channel"]) == line), None)
            if mine is not None:
                left.remove(mine)
            else:
                elsewhere.append(c)
        unmatched += elsewhere[len(left):]
    missing, without_cid = [], 0
    for c in sorted(unmatched, key=lambda c: c["offered"]):
        line = blind.get((key_of.get(c["board"], ""), c["channel"]))
        if line:
            line.pop(0)
            without_cid += 1
        else:
            missing.append(c)
    stray = [r for n, rs in by_caller.items() if n not in offers for r in rs] + \
        [r for line in blind.values() for r in line]
    return CallMatch(missing, dups, stray, without_cid)


def _few(items: list[Any], k: int = 8) -> str:
    text = ", ".join(str(i) for i in items[:k])
    return text + (f", ... ({len(items)} in all)" if len(items) > k else "")


def verify(s: Soak) -> dict[str, Any]:
    """The invariants, each with what failed and how (counts, ids)."""
    reports = [(key, r) for key, h in s.hw.items() for r in h.reports]
    far = [c for _, r in reports for c in r["calls"] if c["direction"] == "in" and c["kind"] == "fxo"]
    offered = [c for c in far if c["ring"] or c["answer"] is not None]
    blocked = [c for c in far if c["who_hung_up"] == "blocked"]
    con = sqlite3.connect(f"file:{s.work / 'calls.db'}?mode=ro", uri=True)
    con.row_factory = sqlite3.Row
    rows = [dict(r) for r in con.execute("SELECT * FROM calls")]
    recs = [dict(r) for r in con.execute("SELECT * FROM recordings")]
    vms = [dict(r) for r in con.execute("SELECT * FROM voicemail")]
    con.close()
    checks: list[Check] = []

    # 1. every call offered is in the call records exactly once (key: the unique caller number)
    key_of = {h.board.name: key for key, h in s.hw.items()}
    m = match_offered(offered, rows, key_of)
    missing, dups, stray, no_cid = m.missing, m.dups, m.stray, m.without_caller_id
    seen = _server_calls([r.log for r in s.server.runs])
    why_missing = Counter()
    examples: list[str] = []
    shown: Counter[str] = Counter()
    ids = {r["call_id"]: r for r in rows}
    for c in missing:
        got = seen.get(c["number"], [])
        if not got:
            why_missing["the server never offered it with this number (no call.offer)"] += 1
            shown["never"] += 1
            if shown["never"] <= 3:
                examples.append(f"{c['number']} on {c['board']}:{c['channel']} rang "
                                f"{len(c['ring'])}x, {'answered' if c['answer'] is not None else 'not answered'}, "
                                f"ended by {c['who_hung_up']} at {c['hangup']} s")
        else:
            run, cid = got[-1]
            holder = ids.get(cid)
            if holder is not None:
                why_missing["its call id's row holds another call (id reused after a restart)"] += 1
                shown["reused"] += 1
                if shown["reused"] <= 3:
                    examples.append(f"{c['number']} was {cid} in server run {run}; row {cid} now "
                                    f"has caller {holder['caller']}")
            else:
                why_missing["offered with an id that has no row"] += 1
                shown["norow"] += 1
                if shown["norow"] <= 3:
                    examples.append(f"{c['number']} was {cid} in server run {run}: no row")
    detail = (f"{len(offered)} offered, {len(rows)} rows; missing {len(missing)}, "
              f"duplicated {len(dups)}, rows for no offered call {len(stray)}, "
              f"matched on the line without caller ID {no_cid}")
    if missing:
        detail += "; missing because: " + "; ".join(f"{n} {w}" for w, n in why_missing.items())
        detail += "; e.g. " + " | ".join(examples or [c["number"] for c in missing[:5]])
    if dups:
        detail += "; duplicated: " + _few([f"{n} x{len(rs)} ({', '.join(r['call_id'] for r in rs)})"
                                           for n, rs in dups.items()])
    if stray:
        detail += "; stray rows: " + _few([f"{r['call_id']} caller={r['caller']}" for r in stray])
    checks.append(Check("calls: every offered call in the records exactly once",
                        not missing and not dups and not stray, detail))

    # 2. recordings: every file has its row, every kept row its file, every row its call
    files = s.files                          # listed before the small filesystem went away
    paths = {r["path"] for r in recs}
    no_row = sorted(f for f in files if f not in paths)
    no_file = [r for r in recs if r["status"] == "kept" and r["path"] not in files]
    open_rows = [r for r in recs if r["status"] == "recording"]
    disc_file = [r for r in recs if r["status"] in ("discarded", "failed") and r["path"] in files]
    no_call = [r for r in recs if r["call_id"] not in ids]
    wrong_call = []
    for r in recs:
        call = ids.get(r["call_id"])
        if call is None or not call["answer"] or not r["started"]:
            continue
        started, answer = _t(r["started"]), _t(call["answer"])
        end = _t(call["end"]) if call["end"] else None
        if started < answer - dt.timedelta(seconds=1) or (end is not None and started > end + dt.timedelta(seconds=1)):
            wrong_call.append(r)
    vm_no_file = [v for v in vms if v["path"] not in files]
    ok = not (no_row or no_file or open_rows or disc_file or no_call or wrong_call or vm_no_file)
    detail = (f"{len(recs)} recording rows ({dict(Counter(r['status'] for r in recs))}), {len(files)} files; "
              f"files without a row {len(no_row)}, kept rows without a file {len(no_file)}, "
              f"rows still 'recording' {len(open_rows)}, discarded/failed rows with a file {len(disc_file)}, "
              f"rows whose call has no row {len(no_call)}, rows on another call's row {len(wrong_call)}, "
              f"voicemail rows without a file {len(vm_no_file)}")
    for label, items in (("files without a row", no_row),
                         ("kept rows without a file", [f"{r['id']} {r['call_id']} {r['path']}" for r in no_file]),
                         ("still recording", [f"{r['id']} {r['call_id']}" for r in open_rows]),
                         ("rows on another call's row", [f"{r['id']} {r['call_id']} started {r['started']} "
                                                         f"vs call answer {ids[r['call_id']]['answer']}"
                                                         for r in wrong_call])):
        if items:
            detail += f"; {label}: " + _few(items, 4)
    checks.append(Check("recordings: every file has its row, every kept row its file", ok, detail))

    # 3. no line left seized (the card's hook registers after the quiet tail)
    seized = {k: v for k, v in s.seized_at_end.items() if v}
    last = {}
    for key, r in reports:
        for c in r["calls"]:
            if c["answer"] is not None and c["released"] is None and c["who_hung_up"] != "end":
                last[(key, c["channel"])] = c
    detail = "none" if not seized else "; ".join(
        f"{k}:{ch}" + (f" (call {last[(k, ch)]['call_id']} {last[(k, ch)]['number']}: "
                       f"{last[(k, ch)]['who_hung_up']} hung up at {last[(k, ch)]['hangup']:.1f} s, "
                       f"never released)" if (k, ch) in last else "")
        for k, chans in seized.items() for ch in chans)
    never_released = [c for c in last.values()]
    detail += f"; far-end calls never released by the host: {len(never_released)}"
    checks.append(Check("lines: none left seized", not seized, detail))

    # 4. the server never exited by itself
    unplanned = [r for r in s.server.runs if r.how.startswith("exited by itself")]
    checks.append(Check("server: no exit by itself", not unplanned,
                        "none" if not unplanned else "; ".join(
                            f"run {r.n} at {r.ended_at / 3600:.2f} h: {r.how}: "
                            + _tail(r.log) for r in unplanned)))

    # 5. faults answered as they should be
    for entry in s.fault_log:
        if entry["fault"] == "admin-storm":
            codes = entry["codes"]
            bad = {c: n for c, n in codes.items() if not c.isdigit() or c.startswith("5")
                   or c in ("401", "403")}   # 403: the door refused the harness's own Host
            checks.append(Check("admin storm: every request answered", not bad,
                                f"{entry['requests']} requests ({'with' if entry['auth'] else 'no'} token): "
                                f"{codes}" + (f"; failed: {bad}" if bad else "")))
        if entry["fault"] == "rules-error":
            audit = s.work / "rules-audit.jsonl"
            results = [json.loads(line).get("result") for line in audit.read_text().splitlines()] \
                if audit.exists() else []
            # the broken version rejected, then the restored one (the running rules) in force
            rejected = "rejected" in results
            restored = rejected and "applied" in results[len(results) - results[::-1].index("rejected"):]
            logs = "".join(_read(r.log) for r in s.server.runs)
            fail_ev = '"kind": "config.reload_failed"' in logs
            checks.append(Check("rules reload with an error: rejected, running rules kept",
                                rejected and restored and fail_ev,
                                f"audit results {dict(Counter(results))} (a reload applied after the "
                                f"rejection: {'yes' if restored else 'NO'}), config.reload_failed "
                                f"{'logged' if fail_ev else 'NOT logged'}"))
        if entry["fault"] == "disk-full":
            full = [r for r in recs if r["stop_reason"] == "disk full"]
            failed = [r for r in recs if r["status"] == "failed"]
            kept = [r for r in recs if r["status"] == "kept"]
            # recording resumed: recordings kept that did not exist yet when the filler went away
            before = s.files_at_clear
            later = 0 if before is None else sum(
                1 for r in recs if r["status"] == "kept" and r["path"] not in before
                and r["path"] + ".part" not in before)
            checks.append(Check("disk full: recording stopped cleanly and resumed", later > 0,
                                f"{len(full)} recordings stopped 'disk full', {len(failed)} failed, "
                                f"{later} kept after the disk had room again, {len(kept)} kept in all"))

    # 6. memory: the last server run's RSS after warm-up vs at its end
    mem = memory(s)
    checks.append(Check("memory: flat over the last server run", mem["ok"], mem["detail"]))

    totals = {
        "hours": s.p.hours, "traffic": s.p.traffic, "seed": s.p.seed,
        "design_erlangs": {b.key: round(design_erlangs(b.lines), 3) for b in s.boards},
        "lines": {b.key: b.lines for b in s.boards},
        "calls_planned": {k: len(v) for k, v in s.callers.items()},
        "calls_offered": len(offered), "blocked_at_exchange": len(blocked),
        "carried_erlangs": _carried(s, offered),
        "design_hold_s": {b.key: b.hold for b in s.boards}, "mean_hold_s": _mean_hold(s, offered),
        "in_call_records": len(offered) - len(missing), "duplicates": len(dups), "missing": len(missing),
        "without_caller_id": no_cid, "stray_rows": len(stray),
        "rows": len(rows), "recording_rows": len(recs), "recording_files": len(files),
        "recordings_without_rows": len(no_row), "rows_without_files": len(no_file),
        "lines_left_seized": sum(len(v) for v in seized.values()),
        "restarts": len(s.server.runs) - 1,
        "unplanned_exits": len(unplanned),
        "board_restarts": sum(h.runs - 1 for h in s.hw.values()),
        "faults": [e["fault"] for e in s.fault_log],
        "rss_start_mib": mem.get("start_mib"), "rss_end_mib": mem.get("end_mib"),
        "recording_sample_percent": s.sample, "store": s.store_kind,
        "wall_seconds": round(s.t_wall, 1),
    }
    return {"ok": all(c.ok for c in checks), "totals": totals,
            "checks": [dataclasses.asdict(c) for c in checks], "faults": s.fault_log,
            "server_runs": [{"n": r.n, "from_h": round(r.started_at / 3600, 3),
                             "to_h": None if r.ended_at is None else round(r.ended_at / 3600, 3),
                             "how": r.how} for r in s.server.runs],
            "workdir": str(s.work)}


def _t(text: str) -> dt.datetime:
    from voiceserver.recording.calldb import parse_time
    return parse_time(text)


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def _tail(log: Path, n: int = 2) -> str:
    lines = [line for line in _read(log).splitlines() if "ERROR" in line or "Error" in line or "lost" in line]
    return " | ".join(line[-200:] for line in lines[-n:]) or "(no error in its log)"


def _mean_hold(s: Soak, offered: list[dict]) -> dict[str, float]:
    """Mean holding time (answer to release) of the calls that ended normally, per board."""
    out = {}
    for key, h in s.hw.items():
        held = [(c["released"] or c["hangup"]) - c["answer"] for c in offered
                if c["board"] == h.board.name and c["answer"] is not None
                and c["who_hung_up"] in ("caller", "host")]
        out[key] = round(sum(held) / len(held), 1) if held else None
    return out


def _carried(s: Soak, offered: list[dict]) -> dict[str, float]:
    out = {}
    for key in s.hw:
        secs = sum((c["hangup"] or 0) - c["answer"] for c in offered
                   if c["answer"] is not None and c["board"] == s.hw[key].board.name)
        out[key] = round(secs / max(1.0, s.duration), 3)
    return out


def journal_size() -> int:
    """How many events the server's in-memory journal keeps (its bound)."""
    import inspect

    from voiceserver.core.events import EventBus
    return inspect.signature(EventBus).parameters["journal_size"].default


def memory(s: Soak) -> dict[str, Any]:
    """RSS of the last server run: after warm-up vs its last sample.

    Warm-up: the first quarter of the run, and until the event journal is
    full (it grows to its bound, `journal_size`, by design). Flat: grown by
    at most 10 % + 8 MiB after that; a leak grows with every call."""
    run = s.server.runs[-1]
    samples = run.rss
    if len(samples) < 4:
        return {"ok": False, "detail": f"too few RSS samples ({len(samples)}) in server run {run.n}"}
    t0, t1 = samples[0][0], samples[-1][0]
    bound = journal_size()
    full = next((t for t, _, seq in samples if seq >= bound), None)
    warm = max(t0 + (t1 - t0) / 4, full if full is not None else t0)
    start = next(b for t, b, _ in samples if t >= warm)
    end = samples[-1][1]
    limit = start * 1.10 + 8 * 2**20
    note = (f"the event journal ({bound}) filled at {full / 3600:.2f} h" if full is not None else
            f"the event journal never reached its {bound} events: its growth is included")
    return {"ok": end <= limit, "start_mib": round(start / 2**20, 1), "end_mib": round(end / 2**20, 1),
            "detail": f"server run {run.n} ({t0 / 3600:.2f}-{t1 / 3600:.2f} h): RSS {start / 2**20:.1f} MiB "
                      f"after warm-up ({warm / 3600:.2f} h; {note}), {end / 2**20:.1f} MiB at the end "
                      f"(limit {limit / 2**20:.1f} MiB); peak {max(b for _, b, _ in samples) / 2**20:.1f} MiB"}


def table(result: dict[str, Any]) -> str:
    t = result["totals"]
    lines = [
        f"soak: {t['hours']:g} simulated h at {t['traffic']:g}x design traffic (seed {t['seed']}), "
        f"{t['wall_seconds']:.0f} s wall",
        f"  design (Erlang B, {GRADE_OF_SERVICE:.0%} blocking): " + ", ".join(
            f"{k} {t['lines'][k]} lines {v:.2f} E" for k, v in t["design_erlangs"].items())
        + "; carried: " + ", ".join(f"{k} {v:.2f} E" for k, v in t["carried_erlangs"].items()),
        "  mean holding time, design / measured: " + ", ".join(
            f"{k} {t['design_hold_s'][k]:g} / {t['mean_hold_s'][k]} s" for k in t["design_hold_s"]),
        "  the E1 site is an analog board of E1 size: inbound E1 CAS needs R2 signalling (not built yet)",
        "",
        f"  {'calls offered':32s} {t['calls_offered']:>8}   (blocked at the exchange: {t['blocked_at_exchange']})",
        f"  {'in call records':32s} {t['in_call_records']:>8}",
        f"  {'duplicates':32s} {t['duplicates']:>8}",
        f"  {'missing':32s} {t['missing']:>8}",
        f"  {'recordings without rows':32s} {t['recordings_without_rows']:>8}",
        f"  {'rows without files':32s} {t['rows_without_files']:>8}",
        f"  {'lines left seized':32s} {t['lines_left_seized']:>8}",
        f"  {'server restarts':32s} {t['restarts']:>8}   (by itself: {t['unplanned_exits']})",
        f"  {'board restarts':32s} {t['board_restarts']:>8}",
        f"  {'faults':32s} {len(t['faults']):>8}   ({', '.join(t['faults'])})",
        f"  {'server RSS start / end (MiB)':32s} {t['rss_start_mib']!s:>8} / {t['rss_end_mib']}",
        "",
    ]
    for c in result["checks"]:
        lines.append(f"  {'PASS' if c['ok'] else 'FAIL'}  {c['name']}: {c['detail']}")
    lines.append("")
    lines.append("soak " + ("passed" if result["ok"] else "FAILED") + f"; run directory {result['workdir']}")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hours", type=float, default=24.0, help="simulated hours (default 24)")
    ap.add_argument("--traffic", type=float, default=2.0, help="x the design traffic (default 2)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--e1-lines", type=int, default=30, help="lines of the E1 site (30 per E1 span)")
    ap.add_argument("--json", nargs="?", const="-", metavar="FILE",
                    help="the result as JSON (to FILE, or stdout without one)")
    ap.add_argument("--keep", metavar="DIR", help="run in DIR and keep it (logs, reports, DB, recordings)")
    ap.add_argument("--progress", type=float, default=10.0, help="wall s between progress lines (0: none)")
    ap.add_argument("--max-hold", type=float, default=MAX_HOLD, help="s: the longest a caller stays")
    ap.add_argument("--tail", type=float, default=TAIL,
                    help="s without new callers at the end (more than --max-hold + 30)")
    ap.add_argument("--kills", type=int, default=1, metavar="N",
                    help="kill -9 the server N times, evenly over 5-80 %% of the run, instead of "
                         "once at 25 %% (the crash-recovery invariants under many crashes)")
    return ap


def kill_schedule(kills: int) -> list[Fault]:
    """The fault schedule with `kills` server kills: the other faults as scheduled."""
    if kills == 1:
        return list(FAULTS)
    others = [f for f in FAULTS if f.kind != "server-kill9"]
    return others + [Fault(0.05 + 0.75 * k / max(1, kills - 1), "server-kill9") for k in range(kills)]


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not (args.hours > 0 and args.traffic > 0 and args.e1_lines >= 2 and args.kills >= 0):
        print("soak: --hours and --traffic must be > 0, --e1-lines >= 2, --kills >= 0", file=sys.stderr)
        return 2
    if args.tail <= args.max_hold + 30:
        print(f"soak: --tail ({args.tail:g} s) must outlast --max-hold ({args.max_hold:g} s) by more "
              f"than 30 s: the longest call must be over before the lines are checked", file=sys.stderr)
        return 2
    import tempfile
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="voiceboard-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    p = Params(hours=args.hours, traffic=args.traffic, seed=args.seed, e1_lines=args.e1_lines,
               work=work if args.keep else None, progress=args.progress, max_hold=args.max_hold,
               tail=args.tail, faults=kill_schedule(args.kills))
    try:
        result = Soak(p, work).run()
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:   # a process would not start
        print(f"soak: aborted: {exc} (run directory {work})", file=sys.stderr)
        return 1
    if args.json == "-":
        print(json.dumps(result, indent=1, default=str))
    else:
        print(table(result))
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=1, default=str))
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
