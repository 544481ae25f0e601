"""Shared test settings. Area fixtures live in tests/<area>/conftest.py.

Every test is marked with its kind (registered in pyproject.toml), by the
rules below: `pytest -m unit` (make test-fast) runs the in-process tests.
"""
from __future__ import annotations

import glob
import importlib
import os
import re
import textwrap
from fnmatch import fnmatch
from pathlib import Path

import pytest

SHM = "/dev/shm"
TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent

# ---------------------------------------------------------------- test kinds
# Tests that start processes or servers: a device, a host, hwsim, the demo,
# our commands as processes (patterns of tests/-relative paths, or
# path::test). A quick external tool (soxi, sox) does not count.
E2E_TESTS = (
    "board/test_lost.py",             # devices and hosts in child processes, killed
    "board/test_shm_owner.py",        # a board served by another user, hwsim
    "board/test_dahdi_emu.py",        # DAHDI programs on the emulator
    "r2/test_openr2_interop.py",      # OpenR2's r2test on the emulator against `voiceboard serve`
    "board/test_dahdi_backend.py",    # dahdi:// through the emulator
    "board/test_config_import.py",    # `voiceboard config import` as a process
    "dsp/test_dtmf_cli.py::test_voiceboard_command",
    "dsp/test_archive_process.py",    # the archive tools as processes, on generated long files
    "hwsim/test_process.py",
    "server/test_e2e*.py",
    "server/test_soak.py",
    "server/test_demo.py",
    "server/test_demo_board.py",
    "server/test_calls_cli.py",       # `voiceboard calls` as a process, ~0.5 s a test
    "server/test_events_cli.py::test_follow_*",            # `voiceboard events -f` as a process
    "server/test_callids.py::test_one_running_server_per_server_id_and_database",
    "server/test_linestate_card.py::test_what_a_killed_host_seized_is_read_back_and_released",
    "board/test_open.py::test_import_needs_no_board_and_no_native_code",      # a fresh interpreter
    "board/test_open.py::test_half_made_boards_of_dead_creators_are_swept",   # a creator that dies
    "board/test_ticks.py::test_lockstep_across_processes_matches_in_process",
    "dsp/test_archive.py::test_one_exit_status_convention",   # the tools' worker processes
    "dsp/test_dsp_independent.py",    # imports in a fresh interpreter
    "hwsim/test_spawn.py",            # hwsim and stubborn processes, started and stopped
    "server/test_api_cli.py::test_an_agent_user_follows_its_own_events_only",  # `voiceboard events -f`
    "server/test_stream_load.py",     # two WebSocket client processes, 150,000 events
)
# Helpers that start hwsim or `voiceboard serve`: a module using them is e2e.
E2E_KITS = {"prockit", "servekit", "acdkit", "dahdikit"}
# Fixtures that start processes.
E2E_FIXTURES = {"e2e", "stop_process"}
# Tests whose assertions depend on the wall clock (a real-time board).
REALTIME_TESTS = (
    "board/test_ticks.py::test_realtime_*",
    "board/test_tools.py::test_timing_realtime_passes",     # 2 s of a real-time card
)
# In-process but long (seconds each): load simulations, property searches,
# speech corpora. Not in `make test-fast`; `make test` runs them.
SLOW_TESTS = (
    "server/test_acd_load.py",                              # 10,000-call ACD runs
    "server/test_rules_property.py",                        # against a reference model
    "server/test_rules_recheck_fast.py",                    # fast paths against the whole chain
    "server/test_rules.py::test_sampling_is_deterministic_per_call_id_and_near_its_rate",
    "dsp/test_dtmf_talkoff.py",                             # a speech corpus, against spandsp
    "dsp/test_tones_speech.py",                             # speech and music corpora
    "dsp/test_tones_detect.py::test_jittered_cadences_are_told_apart",   # every zone x jitter
    "server/test_stream.py::test_a_slow_client_*",          # 80,000 events through two sockets
    "dsp/test_archive.py::test_tones_across_every_seam_*",  # a long file, split and whole
    "dsp/test_archive.py::test_seams_of_a_resampled_file",
    "dsp/test_archive.py::test_two_hours_of_noise_give_no_caller_id",
    "dsp/test_archive.py::test_resampler_in_blocks_is_resample_poly",
    "dsp/test_tones_detect.py::test_china_busy_is_named_within_three_cadences",
    "r2/test_r2_property.py::test_random_timing_and_numbers",
    "hwsim/test_scenario_config.py::test_e1_load_scenario_runs_on_960_channels",
)


def _uses_kit(module: object) -> bool:
    """The test module calls into one of E2E_KITS (imported at its top)."""
    return any(getattr(v, "__module__", None) in E2E_KITS or getattr(v, "__name__", None) in E2E_KITS
               for v in vars(module).values())


def kind_of(item: pytest.Item) -> str:
    """unit, slow, e2e, realtime or hardware: the one kind marker of this test."""
    rel = Path(str(item.path)).resolve().relative_to(TESTS).as_posix()
    name = f"{rel}::{item.name.split('[')[0]}"
    if rel.startswith("hardware/"):
        return "hardware"
    if (any(fnmatch(rel, p) or fnmatch(name, p) for p in E2E_TESTS)
            or E2E_FIXTURES.intersection(getattr(item, "fixturenames", ()))
            or (getattr(item, "module", None) is not None and _uses_kit(item.module))):
        return "e2e"
    if any(fnmatch(name, p) for p in REALTIME_TESTS):
        return "realtime"
    if any(fnmatch(rel, p) or fnmatch(name, p) for p in SLOW_TESTS):
        return "slow"
    return "unit"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(kind_of(item))


# ---------------------------------------------------------------- native build
def native_modules() -> list[str]:
    """The compiled modules `make build` makes: the cffi board library and the Cython kernels."""
    pyx = sorted(glob.glob(str(REPO / "dsp" / "*.pyx")))
    return ["boarddrv._vbcore"] + [f"dsp.{Path(p).stem}" for p in pyx]


def pytest_sessionstart(session: pytest.Session) -> None:
    """A missing native build fails the run at once, rather than skipping or
    failing tests one by one for a reason that is not theirs. A compiled module
    must sit next to its package's sources: one found elsewhere (another
    checkout's, through an editable install) is not this tree's build."""
    missing = []
    for name in native_modules():
        try:
            mod = importlib.import_module(name)
        except ImportError as exc:
            missing.append(f"{name} ({exc})")
            continue
        pkg = importlib.import_module(name.rpartition(".")[0])
        if Path(mod.__file__).parent != Path(pkg.__file__).parent:
            missing.append(f"{name} (only {mod.__file__}, not in {Path(pkg.__file__).parent})")
    boarddrv = importlib.import_module("boarddrv")
    if not (Path(boarddrv.__file__).parent / "libvbdahdi.so").exists():
        missing.append("boarddrv/libvbdahdi.so (the DAHDI emulator)")
    if missing:
        raise pytest.UsageError("native build missing: run make build\n  " + "\n  ".join(missing))


def _our_segments() -> set[str]:
    """Boards (and half-made ones) in /dev/shm whose names carry this session's pid.

    Tests name their boards with os.getpid() (`t{pid}_3`, `hwp{pid}`, ...), so
    these are ours even while other sessions on the machine make their own."""
    mine = re.compile(rf"^voiceboard(-tmp)?\..*(?<![0-9]){os.getpid()}(?![0-9])")
    try:
        return {n for n in os.listdir(SHM) if mine.match(n)}
    except OSError:
        return set()


def _remove(names: set[str]) -> list[str]:
    """Unlink these segments (so the next tests start clean); returns their names."""
    for n in names:
        try:
            os.unlink(os.path.join(SHM, n))
        except OSError:
            pass
    return sorted(names)


# Programs a unit test may run: quick tools on a file (a WAV, a certificate), not a device,
# host or server.
UNIT_TOOLS = {"sox", "soxi", "multimon-ng", "espeak-ng", "openssl", "cc", "gcc"}


@pytest.fixture(autouse=True)
def _unit_tests_start_no_process(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    """A test marked unit that starts a process (other than a quick tool, UNIT_TOOLS) fails,
    naming it, so `make test-fast` stays in-process: such a test belongs in E2E_TESTS."""
    if request.node.get_closest_marker("unit") is None:
        return
    import subprocess
    real_init = subprocess.Popen.__init__

    def checked_init(self, args, *rest, **kw):
        argv = [args] if isinstance(args, (str, bytes, os.PathLike)) else list(args)
        prog = os.path.basename(str(argv[0]).split()[0]) if argv else ""
        if prog not in UNIT_TOOLS:
            raise AssertionError(f"a unit test started a process ({prog}): list the test in "
                                 "E2E_TESTS (tests/conftest.py)")
        real_init(self, args, *rest, **kw)

    def no_fork() -> int:
        raise AssertionError("a unit test forked a process: list the test in E2E_TESTS (tests/conftest.py)")

    monkeypatch.setattr(subprocess.Popen, "__init__", checked_init)
    monkeypatch.setattr(os, "fork", no_fork)


@pytest.fixture(autouse=True)
def _no_leaked_boards():
    """Fail a test that leaves a Board or SimDevice open (python-can's conftest idea).

    A leaked device keeps /dev/shm/voiceboard.NAME alive and a leaked host
    keeps its claim, which would make later tests fail for the wrong reason.
    """
    from boarddrv.board import open_handles
    before = {id(h) for h in open_handles()}
    yield
    leaked = [h for h in open_handles() if id(h) not in before]
    for h in leaked:
        h.close()
    if leaked:
        pytest.fail(f"test left open: {', '.join(map(repr, leaked))}", pytrace=False)


@pytest.fixture(autouse=True)
def _no_leaked_segments():
    """Fail a test that leaves shared memory of a board it made in /dev/shm
    (a killed hwsim, a device never closed): removed, then reported."""
    before = _our_segments()
    yield
    left = _remove(_our_segments() - before)
    if left:
        pytest.fail(f"test left shared memory in {SHM}: {', '.join(left)}", pytrace=False)


@pytest.fixture(scope="session", autouse=True)
def _no_segments_after_the_session():
    """The whole run leaves none of its boards behind (session fixtures included)."""
    yield
    left = _remove(_our_segments())
    if left:
        pytest.fail(f"the test session left shared memory in {SHM}: {', '.join(left)}", pytrace=False)


@pytest.fixture
def write_config(tmp_path: Path):
    """write_config(text, name="server.toml"): the TOML text (dedented) in a file in
    the test's tmp_path; returns its path. For tests that load a config they build."""
    def write(text: str, name: str = "server.toml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path
    return write


def pytest_addoption(parser):
    parser.addoption("--board-via-dahdi", action="store_true",
                     help="end-to-end tests open their hwsim boards as dahdi:// through the DAHDI "
                          "emulator (run pytest with LD_PRELOAD=boarddrv/libvbdahdi.so; make pytest-dahdi)")
