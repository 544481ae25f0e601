"""`voiceboard demo` runs on a board of its own, and says why when hwsim cannot start.

The issue: `make demo` failed with "hwsim exited with status 1 before it was
ready" while the README's `voiceboard hwsim --config hwsim/configs/hotline.toml`
ran in another terminal, because both wanted the board "hotline".
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hwsim.spawn import HwsimProcess
from voiceserver.cli import serve as cli


def test_two_demos_at_once_each_run_on_their_own_board_and_leave_none_behind(tmp_path: Path):
    demos = []
    for i in range(2):
        work = tmp_path / f"demo{i}"
        demos.append((subprocess.Popen([sys.executable, "-m", "boarddrv.cli", "demo", "--calls", "1",
                                        "--no-live", "--json", "--keep", str(work)],
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True), work))
    try:
        outs = [(p.communicate(timeout=300), p.pid, w) for p, w in demos]
    finally:
        for p, _ in demos:
            if p.poll() is None:
                p.kill()
                p.wait()
    for (out, err), pid, work in outs:
        assert json.loads(out)["calls"] == 1, err[-2000:]
        board = f"hotline-demo-{pid}"       # the board this demo's hwsim served
        assert f'name = "{board}"' in (work / "hwsim-hotline.toml").read_text()
        assert f'line = "{board}"' in (work / "callers.toml").read_text()
        assert not os.path.exists(f"/dev/shm/voiceboard.{board}")


def test_the_demo_names_the_process_that_holds_its_board(tmp_path: Path):
    """hwsim failing before it is ready: the message carries hwsim's own reason."""
    board = f"demobusy{os.getpid()}"
    cfg = tmp_path / "hotline.toml"
    cfg.write_text(cli.demo_hwsim_config(board))
    with HwsimProcess(cfg, ready=tmp_path / "ready.json", log=tmp_path / "holder.log") as holder:
        second = HwsimProcess(cfg, ready=tmp_path / "r2.json", log=tmp_path / "second.log").start()
        with pytest.raises(RuntimeError) as exc:     # the demo's own wait (voiceserver/cli/serve.py)
            second.wait_ready(timeout=30.0)
        second.stop()
    msg = str(exc.value)
    assert msg.startswith("hwsim exited with status 1 before it was ready")
    assert f"board '{board}' is already served by pid {holder.pid} (" in msg
    assert f"-m hwsim --config {cfg}" in msg
