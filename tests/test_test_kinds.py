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


def test_no_test_module_imports_another():
    """Tests share helpers through kits (tests/*/…kit.py) and fixtures (conftest.py), never by
    importing a test module (its module code runs twice, and files get tied together) or a
    conftest by name (with several test folders on the path, which one comes is chance)."""
    import ast
    from pathlib import Path
    tests = Path(__file__).parent
    names = {p.stem for p in tests.rglob("test_*.py")} | {"conftest"}
    found = []
    for path in tests.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            mods = ([a.name for a in node.names] if isinstance(node, ast.Import)
                    else [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            found += [f"{path.relative_to(tests)}: {m}" for m in mods if m.split(".")[-1] in names]
    assert found == []
