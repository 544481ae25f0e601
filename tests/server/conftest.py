"""End-to-end fixtures: hwsim as a separate process, the voice server in this one.

    def test_x(e2e):
        run = e2e.run(scenario=SCENARIO, until=lambda srv: len(srv.records) >= 1)
        run.server.records          # the server's CallRecords
        run.calls                   # hwsim's report: what each far end did and heard
        run.heard(call)             # the WAV hwsim wrote for a call (int16, 8 kHz)

`e2e.run` starts `python -m hwsim --clock lockstep --ready-file ... --report
DIR` with the test's scenario (hwsim.spawn), waits for the ready file
(aiosmtpd's Controller handshake), runs a `VoiceServer(sync=True)` whose
clock starts at the simulated start the ready file names, until
`until(server)` holds (checked on the server's own event loop, between ticks)
or a simulated-time limit passes; then it stops the server, sends hwsim SIGTERM and reads the report.
Cleanup kills hwsim and closes the boards even when the test failed.

Board names in the config files (`hotline_e2e`, `e1size_e2e`) are replaced by
a name unique to the run, in the configs and the scenario, so that two test
runs on one machine never meet each other's shared memory.
"""
from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import sqlite3
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from lockstepkit import build_server, run_server

from hwsim import spawn
from hwsim.spawn import HwsimProcess, spawn_hwsim

CONFIGS = Path(__file__).resolve().parent / "configs"
BOARD_TOKENS = ("hotline_e2e", "e1size_e2e")   # board names the config files use
READY_LIMIT = 30.0        # wall seconds: a guard against a hung hwsim, not an assertion
_runs = itertools.count(1)


@pytest.fixture(autouse=True)
def events_match_their_schema(monkeypatch):
    """Every event a server test publishes carries only the fields its kind's schema names
    (voiceserver.core.events.EVENT_FIELDS, the JSON Schemas the network API serves, the
    fields docs/events.md lists): a field added in code and nowhere else fails the test."""
    from voiceserver.core import events
    publish = events.EventBus.publish
    wrong: list[str] = []        # noted, not raised: a server swallows errors in its threads

    def checked(self, tick, kind, chan=None, call_id=None, **data):
        extra = events.unknown_fields(events.ServerEventKind(kind), data)
        if extra:
            wrong.append(f"{kind}: {extra}")
        return publish(self, tick, kind, chan, call_id, **data)
    monkeypatch.setattr(events.EventBus, "publish", checked)
    yield
    assert not wrong, f"events with fields their schema does not name: {sorted(set(wrong))}"


@pytest.fixture(scope="session")
def prompt_library():
    """The packaged prompt set, normalised as the server plays it (loaded once: ~4 s)."""
    from voiceserver.ivr.prompts import PromptLibrary
    return PromptLibrary(None, languages=["zh", "en"], fallback="zh")


# ---------------------------------------------------------------- audio
def ncc(signal_: np.ndarray, template: np.ndarray) -> np.ndarray:
    """Normalised cross-correlation of `template` at every offset of `signal_`.

    out[k] = <s[k:k+m], t> / (|s[k:k+m]| |t|): 1.0 where the signal holds the
    template exactly (at any gain), ~0.99 after G.711 companding, far lower
    for other speech. Zero where the signal window is silent.
    """
    s = np.asarray(signal_, np.float64)
    t = np.asarray(template, np.float64)
    m = len(t)
    if len(s) < m:
        return np.zeros(0)
    n = 1 << int(np.ceil(np.log2(len(s) + m)))
    corr = np.fft.irfft(np.fft.rfft(s, n) * np.conj(np.fft.rfft(t, n)), n)[:len(s) - m + 1]
    c2 = np.concatenate(([0.0], np.cumsum(s * s)))
    energy = c2[m:] - c2[:-m]
    norm = np.sqrt(np.maximum(energy, 0.0)) * np.sqrt(float(t @ t))
    out = np.zeros_like(corr)
    ok = energy > 1e-3 * float(t @ t)     # windows with some sound only
    out[ok] = corr[ok] / norm[ok]
    return out


def find_prompt(heard: np.ndarray, template: np.ndarray, threshold: float = 0.9) -> list[tuple[float, float]]:
    """Where `template` occurs in `heard`: [(seconds from the start of heard, peak NCC)].

    Peaks above `threshold`, at least one template length apart (a prompt
    cannot overlap itself on one channel)."""
    c = ncc(heard, template)
    found: list[tuple[float, float]] = []
    m = len(template)
    idx = np.flatnonzero(c > threshold)
    i = 0
    while i < len(idx):
        j = i
        while j + 1 < len(idx) and idx[j + 1] - idx[i] < m:
            j += 1
        seg = idx[i:j + 1]
        k = int(seg[np.argmax(c[seg])])
        found.append((k / 8000.0, float(c[k])))
        i = j + 1
    return found


def alaw_channel(x: np.ndarray) -> np.ndarray:
    """What a real A-law card does to the host's audio (hwsim sends it linear)."""
    from dsp import g711
    return g711.alaw_decode(g711.alaw_encode(np.asarray(x, np.int16)))


# ---------------------------------------------------------------- hwsim process
def start_hwsim(config: Path, scenario: Path, workdir: Path, seed: int | None = None) -> HwsimProcess:
    """`python -m hwsim` for one run, ready: lockstep, its report in workdir/report,
    stdout and stderr in workdir/hwsim.log."""
    return spawn_hwsim(config, scenario=scenario, clock="lockstep", ready=workdir / "ready.json",
                       report=workdir / "report", log=workdir / "hwsim.log", stdout_to_log=True,
                       args=["--seed", str(seed)] if seed is not None else [], timeout=READY_LIMIT)


def stop_hwsim(hw: HwsimProcess) -> dict[str, Any]:
    """SIGTERM: hwsim closes the calls in progress and writes its report.json (returned)."""
    assert hw.report is not None and hw.log is not None
    hw.stop(timeout=60.0, kill_timeout=10.0)
    if hw.killed:
        raise RuntimeError(f"hwsim did not exit on SIGTERM:\n{hw.log.read_text()}")
    report = hw.report / "report.json"
    if not report.exists():
        raise RuntimeError(f"hwsim (status {hw.returncode}) wrote no report:\n{hw.log.read_text()}")
    return json.loads(report.read_text())


def sim_start(hw: HwsimProcess) -> dt.datetime:
    """The simulated start hwsim's ready file names: where the server's clock starts."""
    assert hw.info is not None
    return dt.datetime.fromisoformat(hw.info["start"])


def _stop(proc: subprocess.Popen | HwsimProcess) -> None:
    """SIGTERM, then SIGKILL if it is still there 10 s later."""
    if isinstance(proc, HwsimProcess):
        proc.stop(timeout=10.0, kill_timeout=10.0)
    else:
        spawn.stop_process(proc, timeout=10.0, kill_timeout=10.0)


@pytest.fixture
def stop_process():
    """`stop_process(proc)`: SIGTERM, then SIGKILL if it does not exit (hwsim
    unlinks its boards on SIGTERM; a SIGKILL would leave them in /dev/shm).
    A subprocess.Popen or an hwsim.spawn.HwsimProcess."""
    return _stop


@dataclass
class E2ERun:
    server: Any
    report: dict[str, Any]
    workdir: Path
    board: str                       # the run's hwsim board name
    calls: list[dict[str, Any]] = field(default_factory=list)

    def heard_alaw(self, call: dict[str, Any]) -> np.ndarray:
        """`heard` after an A-law round trip: what a real A-law card would have sent."""
        return alaw_channel(self.heard(call))

    def heard(self, call: dict[str, Any]) -> np.ndarray:
        """What the host sent to this call's far end: the WAV hwsim wrote."""
        from dsp.audiofile import read_audio
        assert call.get("wav"), f"hwsim kept no audio for {call['call_id']}"
        x = read_audio(str(self.report_dir / call["wav"]))
        return x[0]

    @property
    def report_dir(self) -> Path:
        return self.workdir / "report"

    def calls_on(self, chan: int, direction: str = "in") -> list[dict[str, Any]]:
        return sorted((c for c in self.calls if c["channel"] == chan and c["direction"] == direction),
                      key=lambda c: c["offered"])

    def records_on(self, chan: int) -> list[Any]:
        return [r for r in self.server.records if r.chan == chan]

    def sim_s(self, when: dt.datetime) -> float:
        """A server datetime as simulated seconds since the board's first tick."""
        return (when - self.server.start_time).total_seconds()

    def events(self, kind: str) -> list[Any]:
        return [e for e in self.server.bus.journal if e.kind == kind]


class E2E:
    """Factory for runs in one test (see the module docstring).

    The helpers are reached through the fixture (`e2e.find_prompt`,
    `e2e.all_idle`), not imported: test modules importing `conftest` get
    whichever area's conftest was imported first."""

    find_prompt = staticmethod(lambda *a, **kw: find_prompt(*a, **kw))
    all_idle = staticmethod(lambda server: all_idle(server))

    def __init__(self, tmp_path: Path, library, via_dahdi: bool = False) -> None:
        self.tmp = tmp_path
        self.library = library
        self.via_dahdi = via_dahdi
        self._procs: list[HwsimProcess] = []
        self._servers: list[Any] = []

    def _personalise(self, text: str, names: dict[str, str]) -> str:
        for token, name in names.items():
            text = text.replace(token, name)
        return text

    def run(self, *, scenario: str, until: Callable[[Any], bool], max_sim_seconds: float,
            hwsim_config: str = "hwsim-hotline.toml", server_config: str = "server-hotline.toml",
            seed: int | None = None, **server_kw: Any) -> E2ERun:
        n = next(_runs)
        names = {tok: f"{tok}{os.getpid()}r{n}" for tok in BOARD_TOKENS}
        work = self.tmp / f"run{n}"
        work.mkdir()
        hcfg = work / "hwsim.toml"
        hcfg.write_text(self._personalise((CONFIGS / hwsim_config).read_text(), names))
        scfg = work / "server.toml"
        scfg.write_text(self._personalise((CONFIGS / server_config).read_text(), names))
        scen = work / "scenario.toml"
        scen.write_text(self._personalise(scenario, names))
        hw = start_hwsim(hcfg, scen, work, seed)
        self._procs.append(hw)
        if self.via_dahdi:
            serve_through_dahdi(hw, scfg, work)
        server = build_server(scfg, self.library, sim_start(hw), **server_kw)
        self._servers.append(server)
        run_server(server, until, max_sim_seconds)
        report = stop_hwsim(hw)
        board = next(iter(hw.info["boards"]))
        assert not report["errors"], f"hwsim errors: {report['errors']}"
        return E2ERun(server, report, work, board, calls=report["calls"])

    def cleanup(self) -> None:
        for server in self._servers:     # boards left open by a server that failed to start
            for rt in server.boards:
                rt.engine.stop()
                rt.board.close()
        for hw in self._procs:
            hw.stop(timeout=10.0, kill_timeout=10.0)


def serve_through_dahdi(hw: HwsimProcess, server_cfg: Path, work: Path) -> None:
    """--board-via-dahdi: the run's board becomes DAHDI spans (dahdi_cfg applies the
    system.conf dahdi_genconf would write) and the server opens it as dahdi://."""
    from boarddrv.board import open_board
    from boarddrv.dahdiconf import system_conf
    from boarddrv.tools.dahdi_run import configure, emulator_env
    assert hw.info is not None
    uris = [f"sim://{b}" for b in hw.info["boards"]]
    if len(uris) != 1:
        pytest.skip("--board-via-dahdi serves one card per run")
    if "libvbdahdi" not in os.environ.get("LD_PRELOAD", ""):
        pytest.fail("--board-via-dahdi needs the emulator preloaded: "
                    "LD_PRELOAD=boarddrv/libvbdahdi.so (make pytest-dahdi)", pytrace=False)
    with open_board(uris[0]) as board:
        conf = system_conf([board])
    # block 160: hwsim's far ends move in the same 20 ms steps as on sim://
    env = emulator_env(uris, str(work / "dahdi.state"), pace="lockstep", block=160)
    r = configure(conf, env, str(work / "system.conf"))
    assert r.returncode == 0, f"dahdi_cfg: {r.stdout}{r.stderr}"
    for key in ("VB_DAHDI_BOARDS", "VB_DAHDI_STATE", "VB_DAHDI_PACE", "VB_DAHDI_BLOCK"):
        os.environ[key] = env[key]     # read by the preloaded emulator at its next /dev/dahdi open
    server_cfg.write_text(server_cfg.read_text().replace(uris[0] + '"', 'dahdi://"'))


@pytest.fixture
def e2e(tmp_path, prompt_library, request):
    runs = E2E(tmp_path, prompt_library, request.config.getoption("--board-via-dahdi"))
    try:
        yield runs
    finally:
        runs.cleanup()


def all_idle(server) -> bool:
    from voiceserver.core.channels import State
    return all(ch.state is State.IDLE for rt in server.boards for ch in rt.channels.values())


# ---------------------------------------------------------------- memory
def strings_reachable(root: Any) -> list[str]:
    """Every str (and bytes, as latin-1) reachable from `root` through containers and
    instance data: an object's state, not the code (modules, classes, functions and frames
    are not followed, so the test's own constants are not found through them)."""
    import gc
    import types
    skip = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType,
            types.CodeType, types.FrameType)
    seen: set[int] = set()
    found: list[str] = []
    stack = [root]
    while stack:
        o = stack.pop()
        if id(o) in seen or isinstance(o, skip):
            continue
        seen.add(id(o))
        if isinstance(o, str):
            found.append(o)
        elif isinstance(o, (bytes, bytearray)):
            found.append(bytes(o).decode("latin-1"))
        else:
            stack.extend(gc.get_referents(o))
    return found


@pytest.fixture
def reachable_strings():
    """`reachable_strings(obj)`: what secrets an object still holds (see strings_reachable)."""
    return strings_reachable


@pytest.fixture
def call_row_write_fails(monkeypatch) -> Callable[[str], None]:
    """`call_row_write_fails(call_id)`: from then on, writing that call's row raises a disk
    I/O error inside the call database's transaction; other rows are written as usual."""
    from voiceserver.recording import calldb
    real = calldb._upsert_call

    def install(call_id: str) -> None:
        def broken(c, row, **kw):
            if row.call_id == call_id:
                raise sqlite3.OperationalError("disk I/O error")
            return real(c, row, **kw)
        monkeypatch.setattr(calldb, "_upsert_call", broken)
    return install


@pytest.fixture
def card(prompt_library):  # noqa: ANN201 - controllerkit.Card (imported here only when used)
    """One call controller on a card and engine the test plays (controllerkit.Card)."""
    from controllerkit import Card
    return Card(prompt_library)
