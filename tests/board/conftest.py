"""Board test fixtures: unique board names."""
from __future__ import annotations

import itertools
import os

import pytest

_seq = itertools.count()


@pytest.fixture
def name() -> str:
    """A board name no other test (or engineer's run) uses at the same time."""
    return f"t{os.getpid()}_{next(_seq)}"
