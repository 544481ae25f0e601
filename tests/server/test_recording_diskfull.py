"""Storage trouble during calls: the recording stops cleanly, the alarm goes out, the rows
say why, and the call itself goes on to its normal end.

hwsim runs as a separate lockstep process and the server in this one (the e2e
fixture); the recordings directory is a real small tmpfs filled up mid-call,
or a directory that cannot be written (a path under a regular file; a
read-only tmpfs). Tests run as root, so chmod would not stop a write.
"""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
import soundfile as sf

CONFIGS = Path(__file__).resolve().parent / "configs"
REPO = Path(__file__).resolve().parents[2]
BYTES_PER_SECOND = 8000 * 2 * 2          # stereo PCM16

SCENARIO = f"""
[scenario]
duration = 300.0
seed = 9

[[caller]]                 # talks, stays 14 s, hangs up (loop drop: the end is exact)
at = 1.0
line = "hotline_e2e:3"
number = "13911110003"
hangup_after = 14.0
script = [{{ after = 0.5, play = "{REPO / 'prompts/en/business_hours.wav'}" }}]
"""


def config(tmp_path: Path, recordings: Path) -> str:
    text = (CONFIGS / "server-recording.toml").read_text()
    assert 'recordings = "recordings"' in text
    text = text.replace('recordings = "recordings"', f'recordings = "{recordings}"')
    path = tmp_path / "server-diskfull.toml"
    path.write_text(text + '\n[recording]\nlayout = "stereo"\n')
    return str(path)


def mount_tmpfs(path: Path, options: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    if shutil.which("mount") is None:
        pytest.skip("no mount command: cannot make a small filesystem to fill")
    out = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                         capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here ({out.stderr.strip()}); "
                    f"run as root with CAP_SYS_ADMIN")


def unmount(path: Path) -> None:
    if subprocess.run(["umount", str(path)], capture_output=True, timeout=30).returncode != 0:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=30)


def rows(run) -> tuple[dict, list[dict]]:
    con = sqlite3.connect(run.workdir / "calls.db")
    con.row_factory = sqlite3.Row
    try:
        call, = [dict(r) for r in con.execute("SELECT * FROM calls")]
        recs = [dict(r) for r in con.execute("SELECT * FROM recordings")]
    finally:
        con.close()
    return call, recs


def check_call_went_on(run, call: dict) -> None:
    """The caller hung up when the script said, not the host; the row has the normal end."""
    far, = run.calls
    assert far["who_hung_up"] == "caller", far
    assert abs((far["hangup"] - far["answer"]) - 14.0) < 0.05, far
    assert call["disposition"] == "far end hung up (loop current dropped)"
    assert abs(call["duration"] - 14.0) < 0.1, call
    assert run.server.error is None


def test_a_full_disk_stops_the_recording_cleanly_and_the_call_goes_on(e2e, tmp_path,
                                                                     prompt_library):
    mnt = tmp_path / "small"
    mount_tmpfs(mnt, "size=256k")
    try:
        st = os.statvfs(mnt)
        free = st.f_bavail * st.f_frsize
        # leave ~3 s of stereo audio: the disk fills mid-call (the call lasts 14 s)
        filler = free - 3 * BYTES_PER_SECOND
        with open(mnt / "filler", "wb") as f:
            f.write(b"\0" * filler)
        free = os.statvfs(mnt).f_bavail * os.statvfs(mnt).f_frsize
        run = e2e.run(scenario=SCENARIO, server_config=config(tmp_path, mnt / "rec"),
                      max_sim_seconds=60, until=lambda s: len(s.records) >= 1 and e2e.all_idle(s),
                      rules_poll=0)
        call, (rec,) = rows(run)
        check_call_went_on(run, call)
        # the alarm: one recording.failed saying why, for this call
        failed = run.events("recording.failed")
        assert [(e.call_id, e.data["reason"], e.data["alarm"]) for e in failed] == [
            (call["call_id"], "disk full", True)], [e.data for e in failed]
        # the recording stopped there; what landed is a valid file, and the rows say why
        assert rec["stop_reason"] == "disk full"
        assert call["recording_note"].startswith("recording failed: disk full"), call
        # the audio that landed before the disk filled is kept, as a valid WAV file
        path = Path(rec["path"])
        assert rec["status"] == "kept" and path.exists()
        assert not Path(str(path) + ".part").exists()
        secs = float(subprocess.run(["soxi", "-D", str(path)], capture_output=True, text=True,
                                    timeout=30).stdout)
        assert 2.0 < secs <= free / BYTES_PER_SECOND, (secs, free)     # it did stop early
        assert secs == pytest.approx(rec["duration"], abs=1e-3)
        x, rate = sf.read(path, dtype="int16", always_2d=True)
        assert rate == 8000 and x.shape == (round(secs * 8000), 2)
        assert e2e.find_prompt(x[:, 1], prompt_library.get("welcome", "zh"))[0][0] == 0.0
    finally:
        unmount(mnt)


@pytest.mark.parametrize("how", ["parent-is-a-file", "read-only-tmpfs"])
def test_an_unwritable_recordings_directory_alarms_and_the_call_goes_on(e2e, tmp_path, how):
    if how == "parent-is-a-file":
        blocker = tmp_path / "not-a-dir"
        blocker.write_text("a file where the recordings' parent should be\n")
        target = blocker / "recordings"
        mnt = None
    else:
        mnt = tmp_path / "ro"
        mount_tmpfs(mnt, "ro,size=64k")
        target = mnt
    try:
        run = e2e.run(scenario=SCENARIO, server_config=config(tmp_path, target),
                      max_sim_seconds=60, until=lambda s: len(s.records) >= 1 and e2e.all_idle(s),
                      rules_poll=0)
        call, (rec,) = rows(run)
        check_call_went_on(run, call)
        failed = [e for e in run.events("recording.failed") if e.call_id == call["call_id"]]
        assert [(e.data["reason"], e.data["alarm"]) for e in failed] == [
            ("directory not writable", True)], [e.data for e in failed]
        assert rec["status"] == "failed" and rec["stop_reason"] == "directory not writable"
        assert rec["duration"] == 0 and not Path(rec["path"]).exists()
        assert call["recording_note"] == "recording failed: directory not writable"
        if how == "parent-is-a-file":        # known at start already: an alarm then too
            start, = [e for e in run.events("recording.failed") if e.call_id is None]
            assert "cannot be made" in start.data["reason"] and start.data["alarm"] is True
        json.dumps([e.as_dict() for e in run.server.bus.journal], default=str)   # events serialise
    finally:
        if mnt is not None:
            unmount(mnt)
