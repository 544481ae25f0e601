"""Shared test settings. Area fixtures live in tests/<area>/conftest.py."""
from __future__ import annotations

import os
import re

import pytest

SHM = "/dev/shm"


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


def pytest_addoption(parser):
    parser.addoption("--board-via-dahdi", action="store_true",
                     help="end-to-end tests open their hwsim boards as dahdi:// through the DAHDI "
                          "emulator (run pytest with LD_PRELOAD=boarddrv/libvbdahdi.so; make pytest-dahdi)")
