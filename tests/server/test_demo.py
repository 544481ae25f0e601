"""`voiceboard demo`, the newcomer's main command, as a real process: calls, recordings, rows."""
from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import soundfile as sf


def test_demo_runs_its_callers_and_leaves_readable_recordings_and_call_rows(tmp_path: Path):
    packaged = Path(__file__).resolve().parents[2] / "voiceserver" / "configs"
    before = sorted(p.name for p in packaged.iterdir())
    out = subprocess.run([sys.executable, "-m", "boarddrv.cli", "demo", "--calls", "4", "--no-live",
                          "--json", "--keep", str(tmp_path)],
                         capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-2000:]
    s = json.loads(out.stdout)
    assert s["calls"] == 4 and s["error"] is None and s["answered"] >= 3
    rec = s["recordings"]
    assert rec["database"] == str(tmp_path / "calls.db") and rec["calls"] == 4
    assert rec["recordings"].get("kept", 0) == s["answered"]      # every answered call
    files = sorted((tmp_path / "recordings").rglob("*.wav"))
    assert len(files) == s["answered"] and not list((tmp_path / "recordings").rglob("*.part"))
    for f in files:
        info = sf.info(str(f))
        assert (info.channels, info.samplerate) == (2, 8000) and info.duration > 3
    con = sqlite3.connect(tmp_path / "calls.db")
    paths = {p for (p,) in con.execute("SELECT path FROM recordings WHERE status = 'kept'")}
    assert paths == {str(f) for f in files}
    # everything the run wrote is under its own directory, the event journal too: nothing
    # next to the packaged config (it once wrote events.db there)
    assert sorted(p.name for p in packaged.iterdir()) == before
    assert (tmp_path / "events.db").exists()
