"""The test kinds keep their promise: a unit test (`make test-fast`) starts no process."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest


def test_a_unit_test_that_starts_a_process_fails_naming_it():
    with pytest.raises(AssertionError, match=r"started a process \(python.*E2E_TESTS"):
        subprocess.run([sys.executable, "-c", "pass"], check=False)


def test_a_unit_test_that_forks_fails():
    with pytest.raises(AssertionError, match="forked a process"):
        os.fork()


def test_a_quick_tool_on_a_file_is_allowed_in_a_unit_test(tmp_path):
    wav = tmp_path / "s.wav"
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", str(wav), "trim", "0", "0.01"], check=True)
    assert wav.stat().st_size > 44
