"""dsp stands alone: no module of it imports boarddrv (or any other package of the project).

dsp sits below boarddrv, hwsim and voiceserver; an import the other way
round would tie the signal processing to the board driver. Each check runs
in a fresh interpreter so that what the test process already imported
does not hide an import.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROJECT_PACKAGES = ("boarddrv", "hwsim", "voiceserver", "prompts")

IMPORT_ALL = """
import importlib, json, pkgutil, sys
import dsp
names = sorted(m.name for m in pkgutil.iter_modules(dsp.__path__, "dsp."))
for name in names:
    importlib.import_module(name)
print(json.dumps({"modules": names, "loaded": sorted(sys.modules)}))
"""


def run_fresh(code: str) -> str:
    path = [ROOT] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(path))
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_every_dsp_module_imports_without_boarddrv():
    result = json.loads(run_fresh(IMPORT_ALL))
    # the list is the package's own: a module added later is covered without editing this test
    assert {"dsp._dtmf", "dsp.checks", "dsp.dtmf", "dsp.tomlconfig", "dsp.tones",
            "dsp.tones_cli"} <= set(result["modules"])
    leaked = sorted(m for m in result["loaded"] if m.split(".")[0] in PROJECT_PACKAGES)
    assert "boarddrv" not in result["loaded"]
    assert leaked == []


@pytest.mark.parametrize("package", PROJECT_PACKAGES)
def test_the_check_can_fail(package):
    """The same probe sees a project package once something imports it."""
    result = json.loads(run_fresh(f"import {package}\n" + IMPORT_ALL))
    assert package in result["loaded"]


def test_boarddrv_tomlconfig_is_the_same_module(tmp_path):
    """Code that catches boarddrv.tomlconfig.ConfigError still catches a bad tone plan."""
    from boarddrv import tomlconfig as board_toml
    from dsp import tomlconfig
    from dsp.tones import TonePlan
    assert board_toml.ConfigError is tomlconfig.ConfigError
    assert board_toml.Node is tomlconfig.Node and board_toml.load is tomlconfig.load
    assert set(board_toml.__all__) >= set(tomlconfig.__all__)
    bad = tmp_path / "site.toml"
    bad.write_text('[site]\n[site.tones]\nbusy = { freqs = [4500], cadence = [] }\n')
    with pytest.raises(board_toml.ConfigError) as ei:
        TonePlan.load("site", bad)
    assert str(ei.value) == f"{bad}:3: key 'site.tones.busy.freqs[0]': frequency 4500 Hz outside 20..4000 Hz"
