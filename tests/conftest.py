"""Shared test settings. Area fixtures live in tests/<area>/conftest.py."""
from __future__ import annotations

import pytest


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


def pytest_addoption(parser):
    parser.addoption("--board-via-dahdi", action="store_true",
                     help="end-to-end tests open their hwsim boards as dahdi:// through the DAHDI "
                          "emulator (run pytest with LD_PRELOAD=boarddrv/libvbdahdi.so; make pytest-dahdi)")
