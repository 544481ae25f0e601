"""The recorder's writer thread: exact files across the ring's wrap, folders, header upkeep."""
from __future__ import annotations

import datetime as dt
import os
import random
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dsp import g711
from voiceserver.recording import recorder as recmod
from voiceserver.recording import wavfile
from voiceserver.recording.calldb import CallDb, CallRow
from voiceserver.recording.recorder import Recorder

NCHAN, BLOCK = 4, 80
T0 = dt.datetime(2026, 11, 23, 9, 30, 5, tzinfo=dt.UTC)


def audio(seed: int, ticks: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(-20000, 20000, (NCHAN, ticks * BLOCK), dtype=np.int16)


def call(cid: str) -> CallRow:
    return CallRow(cid, start=T0, answer=T0, board="b1")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_files_hold_every_tick_exactly_whatever_the_ring_wrap_and_the_passes(tmp_path, seed):
    """A 7-tick ring, recordings starting and stopping at random ticks, the writer woken at
    random: each file holds its ticks in order (stereo PCM16 and mono A-law), however its
    stretches fall across the ring's end."""
    rnd = random.Random(seed)
    ticks = 300
    rx, tx = audio(seed, ticks), audio(seed + 100, ticks)
    with CallDb(tmp_path / "calls.db") as db:
        r = Recorder(db, tmp_path / "rec", nchan=NCHAN, block=BLOCK, ring_seconds=7 * BLOCK / 8000,
                     backpressure=True)
        assert r.ring_ticks == 7
        plan = {}                  # call id -> (chan, layout, fmt, first tick, last tick + 1)
        live: dict[str, int] = {}
        for k in range(ticks):
            if rnd.random() < 0.08 and len(live) < NCHAN:
                cid = f"c{k}"
                chan = next(c for c in range(NCHAN) if c not in [plan[x][0] for x in live])
                layout, fmt = rnd.choice([("stereo", "pcm16"), ("mono", "alaw")])
                live[cid] = r.start(call(cid), chan=chan, layout=layout, fmt=fmt, when=T0)
                plan[cid] = (chan, layout, fmt, k, None)
            for cid in [c for c in live if rnd.random() < 0.03]:
                r.stop(live.pop(cid))
                plan[cid] = plan[cid][:4] + (k,)
            r.capture(k, rx[:, k * BLOCK:(k + 1) * BLOCK].copy(), tx[:, k * BLOCK:(k + 1) * BLOCK].copy())
            if rnd.random() < 0.1:
                r.flush()
        for cid, h in live.items():
            r.stop(h)
            plan[cid] = plan[cid][:4] + (ticks,)
        r.capture(ticks, rx[:, :BLOCK].copy(), tx[:, :BLOCK].copy())
        assert r.close()
        assert len(plan) >= 5
        for cid, (chan, _layout, fmt, a, b) in plan.items():
            (row,) = db.recordings(cid)
            span = slice(a * BLOCK, b * BLOCK)
            if b == a:
                assert row.status == "discarded"
                continue
            assert row.status == "kept" and row.duration == (b - a) * BLOCK / 8000
            if fmt == "pcm16":
                x, _ = sf.read(row.path, dtype="int16", always_2d=True)
                np.testing.assert_array_equal(x[:, 0], rx[chan, span])
                np.testing.assert_array_equal(x[:, 1], tx[chan, span])
            else:
                info = wavfile.read_header(row.path)
                body = Path(row.path).read_bytes()[info.data_offset:info.data_offset + info.data_bytes]
                both = rx[chan, span].astype(np.int32) + tx[chan, span]
                want = g711.alaw_encode(np.clip(both, -32768, 32767).astype(np.int16))
                assert body == np.asarray(want).tobytes()


@pytest.mark.parametrize("root", [".", "rec", "a/./b", "/abs/x"])
def test_file_paths_are_what_pathlib_would_give(root):
    assert recmod._join(Path(root), "2026", "11", "23") == str(Path(root) / "2026" / "11" / "23")


def test_a_missing_folder_is_made_and_a_file_in_its_place_fails_the_recording(tmp_path):
    with CallDb(tmp_path / "calls.db") as db:
        r = Recorder(db, tmp_path / "rec", nchan=NCHAN, block=BLOCK, backpressure=True)
        z = np.zeros((NCHAN, BLOCK), np.int16)
        h = r.start(call("a"), chan=0, when=T0)
        r.capture(0, z, z)
        r.stop(h)
        r.capture(1, z, z)
        r.flush()
        assert (tmp_path / "rec/2026/11/23").is_dir()
        (tmp_path / "rec/2026/12").write_text("not a folder")
        h = r.start(call("b"), chan=0, when=T0 + dt.timedelta(days=8))
        r.capture(2, z, z)
        r.stop(h)
        r.capture(3, z, z)
        r.flush()
        failed = [e for e in r.events() if e.kind == "recording.failed"]
        assert [(e.call_id, e.detail["reason"]) for e in failed] == [("b", "directory not writable")]
        assert [x.status for x in db.recordings("a")] == ["kept"]
        r.close()


def test_headers_are_published_once_due_and_files_synced(tmp_path, monkeypatch):
    """Passes with nothing due skip the files; a pass after the interval publishes every size."""
    synced = []
    real_sync = wavfile.WavFile.sync
    monkeypatch.setattr(wavfile.WavFile, "sync", lambda self: (synced.append(self.path.name), real_sync(self)))
    with CallDb(tmp_path / "calls.db") as db:
        r = Recorder(db, tmp_path / "rec", nchan=NCHAN, block=BLOCK, backpressure=True,
                     header_interval=0.3, fsync_interval=0.6, poll=0.02)
        rx = audio(7, 40)
        hs = [r.start(call(f"h{c}"), chan=c, when=T0) for c in range(2)]
        for k in range(20):
            r.capture(k, rx[:, k * BLOCK:(k + 1) * BLOCK].copy(), rx[:, k * BLOCK:(k + 1) * BLOCK].copy())
        r.flush()
        parts = sorted((tmp_path / "rec").rglob("*.part"))
        assert len(parts) == 2
        assert [wavfile.read_header(p).data_bytes for p in parts] == [0, 0]   # not due yet
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not all(
                wavfile.read_header(p).data_bytes == 20 * BLOCK * 4 for p in parts):
            time.sleep(0.02)
        assert [wavfile.read_header(p).data_bytes for p in parts] == [20 * BLOCK * 4] * 2
        while time.monotonic() < deadline and len(synced) < 2:
            time.sleep(0.02)
        assert sorted(synced[:2]) == sorted(p.name for p in parts)
        for h in hs:
            r.stop(h)
        r.capture(20, rx[:, :BLOCK].copy(), rx[:, :BLOCK].copy())
        assert r.close()
    assert not list((tmp_path / "rec").rglob("*.part")) and os.path.isdir(tmp_path / "rec")


class Held:
    """Holds the writer inside a pass (a database write that waits) while messages queue up
    behind it, so that they reach the writer in one pass whatever the threads' timing."""

    def __init__(self, r: Recorder) -> None:
        self.gate = threading.Event()
        r.db_write("holding the writer", None, lambda db: self.gate.wait(10))

    def release(self) -> None:
        self.gate.set()


def commits(db: CallDb) -> list[str]:
    seen: list[str] = []
    db._conn.set_trace_callback(lambda sql: seen.append(sql) if sql == "COMMIT" else None)
    return seen


def test_the_rows_after_a_start_and_a_stop_go_in_the_recordings_commits(tmp_path):
    """A start then its call's answer row: one commit, the row before the file; a stop then the
    call's end row: one commit, after the file is final. The table is what the rows say."""
    z = np.zeros((NCHAN, BLOCK), np.int16)
    with CallDb(tmp_path / "calls.db") as db:
        r = Recorder(db, tmp_path / "rec", nchan=NCHAN, block=BLOCK, backpressure=True, poll=60)
        r.log_call(CallRow("a", start=T0, board="b1", server_id="s", run=1), new=True)
        r.capture(0, z, z)
        r.flush()
        held = Held(r)
        r.capture(1, z, z)
        seen = commits(db)
        h = r.start(call("a"), chan=0, when=T0)
        r.log_call(CallRow("a", answer=T0, agent="1001", server_id="s", run=1))
        r.log_call(CallRow("x", start=T0, server_id="s", run=1), new=True)
        r.capture(2, z, z)
        held.release()
        r.flush()
        assert len(seen) == 1
        assert db.call("a")["agent"] == "1001" and db.call("x") is not None
        assert [x.status for x in db.recordings("a")] == ["recording"]
        held = Held(r)
        r.capture(3, z, z)
        seen.clear()
        r.stop(h)
        r.log_call(CallRow("a", end=T0 + dt.timedelta(seconds=9), disposition="caller hung up",
                           server_id="s", run=1))
        r.capture(4, z, z)
        held.release()
        r.flush()
        assert len(seen) == 1
        (rec,) = db.recordings("a")
        assert rec.status == "kept" and os.path.exists(rec.path)
        assert db.call("a")["duration"] == 9.0 and db.call("a")["disposition"] == "caller hung up"
        assert [e.kind for e in r.events()] == ["recording.started", "recording.stopped"]
        assert r.close()


def test_a_database_error_in_such_a_commit_writes_the_recording_and_each_row_apart(
        tmp_path, call_row_write_fails):
    """A row that cannot be written spoils the commit it shares: the recording's row (start or
    end) is then written alone, and each call row on its own, as if they had come apart."""
    call_row_write_fails("bad")
    z = np.zeros((NCHAN, BLOCK), np.int16)
    with CallDb(tmp_path / "calls.db") as db:
        r = Recorder(db, tmp_path / "rec", nchan=NCHAN, block=BLOCK, backpressure=True, poll=60)
        r.capture(0, z, z)
        held = Held(r)
        h = r.start(call("a"), chan=0, when=T0)
        r.log_call(CallRow("bad", start=T0))
        r.log_call(CallRow("a", agent="1001"))
        r.capture(1, z, z)
        held.release()
        r.flush()
        held = Held(r)
        r.stop(h)
        r.log_call(CallRow("a", end=T0 + dt.timedelta(seconds=3)))
        r.log_call(CallRow("bad", end=T0))
        r.capture(2, z, z)
        held.release()
        r.flush()
        (rec,) = db.recordings("a")
        assert rec.status == "kept" and os.path.exists(rec.path)
        assert db.call("a")["agent"] == "1001" and db.call("a")["duration"] == 3.0
        assert db.call("bad") is None
        events = [(e.kind, e.call_id) for e in r.events()]
        assert events == [("recording.started", "a"), ("recording.failed", "bad"),
                          ("recording.stopped", "a"), ("recording.failed", "bad")]
        assert r.close()


def test_a_recording_refused_its_call_row_still_lets_the_rows_after_it_be_written(tmp_path):
    z = np.zeros((NCHAN, BLOCK), np.int16)
    with CallDb(tmp_path / "calls.db") as db:
        db.upsert_call(CallRow("a", start=T0, server_id="other", run=7), new=True)
        r = Recorder(db, tmp_path / "rec", nchan=NCHAN, block=BLOCK, backpressure=True, poll=60)
        r.capture(0, z, z)
        held = Held(r)
        r.start(CallRow("a", start=T0, server_id="s", run=1), chan=0, when=T0)
        r.log_call(CallRow("b", start=T0, agent="1002", server_id="s", run=1), new=True)
        r.capture(1, z, z)
        held.release()
        r.flush()
        assert db.recordings("a") == [] and db.call("b")["agent"] == "1002"
        assert not list((tmp_path / "rec").rglob("*.part"))
        (failed,) = r.events()
        assert failed.kind == "recording.failed" and "server other run 7" in failed.detail["reason"]
        assert r.close()
