"""The simulated card's shared memory carries call audio: only its own user may use it.

The device creates /dev/shm/voiceboard.NAME mode 0600 whatever the umask;
a segment of that name that another user owns (made by `nobody` here, as
a local attacker would) is refused by the device creating the board
(hwsim) and by a host opening it, with a typed error naming the segment
and its owner.
"""
from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from boarddrv import NotOwner, open_board

from boardkit import mixed_board

REPO = Path(__file__).resolve().parents[2]
AS_NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="acting as another user needs root")


def segment(name: str) -> Path:
    return Path(f"/dev/shm/voiceboard.{name}")


def test_the_segment_is_0600_whatever_the_umask(name):
    old = os.umask(0)
    try:
        with mixed_board(name):
            st = segment(name).stat()
    finally:
        os.umask(old)
    assert stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == os.geteuid()


def test_a_board_another_user_serves_is_not_opened(name):
    """`nobody` runs a real device under the name; this host refuses to attach."""
    code = ("import sys; from tests.board.boardkit import mixed_board\n"
            f"dev = mixed_board({name!r}); print('ready', flush=True); sys.stdin.read(); dev.close()")
    plant = subprocess.Popen([*AS_NOBODY, sys.executable, "-c", code], cwd=REPO,
                             env={**os.environ, "PYTHONPATH": str(REPO)},
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert plant.stdout.readline().strip() == "ready"
        assert segment(name).stat().st_uid == 65534
        with pytest.raises(NotOwner) as exc:
            open_board(f"sim://{name}")
        assert f"/dev/shm/voiceboard.{name} is owned by uid 65534 (nobody)" in str(exc.value)
        assert "not by this process's uid 0 (root)" in str(exc.value)
    finally:
        plant.communicate("", timeout=30)
    assert plant.returncode == 0


def test_hwsim_refuses_a_segment_planted_under_its_name(name, tmp_path):
    """A file `nobody` left under the board's name is neither replaced nor used."""
    path = segment(name)
    subprocess.run([*AS_NOBODY, sys.executable, "-c",
                    f"open({str(path)!r}, 'wb').write(b'planted by nobody')"], check=True)
    try:
        with pytest.raises(NotOwner, match=f"board '{name}': {path} exists and is owned by "
                                           f"uid 65534 \\(nobody\\)"):
            mixed_board(name)
        with pytest.raises(NotOwner, match="owned by uid 65534"):
            open_board(f"sim://{name}")
        # hwsim, the process: exit status 1, the reason on stderr
        cfg = (REPO / "tests/server/configs/hwsim-hotline.toml").read_text()
        (tmp_path / "hw.toml").write_text(cfg.replace("hotline_e2e", name))
        run = subprocess.run([sys.executable, "-m", "hwsim", "--config", str(tmp_path / "hw.toml"),
                              "--clock", "lockstep"], capture_output=True, text=True, timeout=60,
                             cwd=REPO)
        assert run.returncode == 1, run
        assert f"{path} exists and is owned by uid 65534 (nobody)" in run.stderr
        assert path.read_bytes() == b"planted by nobody" and path.stat().st_uid == 65534
    finally:
        path.unlink(missing_ok=True)
