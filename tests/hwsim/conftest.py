"""Fixtures for the hwsim tests (helpers: worldkit.py)."""
from __future__ import annotations

import pytest

from hwsim.config import config_from_text

from worldkit import E1, HOTLINE


@pytest.fixture
def hotline_cfg():
    return config_from_text(HOTLINE, "hotline.toml").boards[0]


@pytest.fixture
def e1_cfg():
    return config_from_text(E1, "e1.toml").boards[0]
