"""The recorder: what lands in the files and the call records, fed tick by tick like the engine does."""
from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dsp import g711
from voiceserver.recording import recorder as recmod
from voiceserver.recording.calldb import CallDb, CallRow
from voiceserver.recording.recorder import Recorder

NCHAN, BLOCK = 6, 160
T0 = dt.datetime(2026, 11, 23, 9, 30, 5, tzinfo=dt.UTC)


def signal(chan: int, side: str, n: int) -> np.ndarray:
    """A distinct, deterministic signal for each (channel, side): a tone plus a ramp."""
    f = 300.0 + 97.0 * chan + (500.0 if side == "tx" else 0.0)
    t = np.arange(n)
    return (6000 * np.sin(2 * np.pi * f * t / 8000) + (t % 101) * 3).astype(np.int16)


class Feed:
    """Plays the role of the media engine: rx/tx blocks for every channel, tick after tick."""

    def __init__(self, rec: Recorder, ticks: int = 400) -> None:
        self.rec = rec
        n = ticks * BLOCK
        self.rx = np.stack([signal(c, "rx", n) for c in range(NCHAN)])
        self.tx = np.stack([signal(c, "tx", n) for c in range(NCHAN)])
        self.tick = 0

    def run(self, ticks: int) -> None:
        for _ in range(ticks):
            k = self.tick
            self.rec.capture(k, self.rx[:, k * BLOCK:(k + 1) * BLOCK].copy(),
                             self.tx[:, k * BLOCK:(k + 1) * BLOCK].copy())
            self.tick += 1


@pytest.fixture
def env(tmp_path):
    db = CallDb(tmp_path / "calls.db")
    made = []

    def make(**kw) -> tuple[Recorder, Feed]:
        kw.setdefault("backpressure", True)
        r = Recorder(db, tmp_path / "rec", nchan=NCHAN, block=BLOCK, **kw)
        made.append(r)
        return r, Feed(r)
    yield make, db, tmp_path / "rec"
    for r in made:
        r.close()
    db.close()


def call(cid: str, **kw) -> CallRow:
    return CallRow(cid, start=T0, answer=T0, direction="inbound", board="b1", **kw)


def read(path) -> np.ndarray:
    x, rate = sf.read(path, dtype="int16", always_2d=True)
    assert rate == 8000
    return x


def test_stereo_pcm16_holds_caller_left_agent_right_exactly(env):
    make, db, root = env
    r, feed = make()
    feed.run(10)                                         # before the answer: not recorded
    h = r.start(call("c1", caller="13800138000", called="10086"), chan=2, when=T0)
    feed.run(100)
    r.stop(h)
    feed.run(1)
    r.flush()
    (row,) = db.recordings("c1")
    assert row.status == "kept" and row.layout == "stereo" and row.format == "pcm16"
    assert row.duration == 100 * BLOCK / 8000
    x = read(row.path)
    span = slice(10 * BLOCK, 110 * BLOCK)
    np.testing.assert_array_equal(x[:, 0], feed.rx[2, span])
    np.testing.assert_array_equal(x[:, 1], feed.tx[2, span])
    assert Path(row.path) == root / "2026/11/23" / "20261123-093005_ch2_c1.wav"
    assert not list(root.rglob("*.part"))
    if shutil.which("soxi"):
        out = subprocess.run(["soxi", row.path], capture_output=True, text=True, check=True).stdout
        assert "Channels       : 2" in out and "16000 samples" in out


def test_mono_alaw_is_the_saturating_sum_encoded(env):
    make, db, _ = env
    r, feed = make()
    feed.tx[1, :] = 30000                                # the sum saturates where rx is positive
    h = r.start(call("c2"), chan=1, layout="mono", fmt="alaw", when=T0)
    feed.run(50)
    r.stop(h)
    feed.run(1)
    r.flush()
    (row,) = db.recordings("c2")
    x = read(row.path)[:, 0]
    mix = np.clip(feed.rx[1, :50 * BLOCK].astype(np.int32) + 30000, -32768, 32767).astype(np.int16)
    np.testing.assert_array_equal(x, g711.alaw_decode(g711.alaw_encode(mix)))
    if shutil.which("soxi"):
        assert subprocess.run(["soxi", "-e", row.path], capture_output=True, text=True).stdout.strip() == "A-law"


def test_capture_is_one_kernel_call_per_tick_whatever_the_number_of_recordings(env, monkeypatch):
    make, db, _ = env
    calls = []
    real = recmod.capture_block
    monkeypatch.setattr(recmod, "capture_block", lambda *a: calls.append(a[-1]) or real(*a))
    r, feed = make()
    for c in range(NCHAN):
        r.start(call(f"k{c}"), chan=c, when=T0)
    feed.run(20)
    assert calls == [NCHAN] * 20


def test_pause_writes_silence_and_lists_the_gap(env):
    make, db, _ = env
    r, feed = make()
    h = r.start(call("c3"), chan=0, when=T0)
    feed.run(50)
    r.pause(h)
    feed.run(25)
    r.resume(h)
    feed.run(50)
    r.pause(h)                                            # paused at the end: closed at stop
    feed.run(10)
    r.stop(h)
    feed.run(1)
    r.flush()
    (row,) = db.recordings("c3")
    assert row.gaps == [{"start": 1.0, "end": 1.5, "why": "pause"},
                        {"start": 2.5, "end": 2.7, "why": "pause"}]
    x = read(row.path)
    assert len(x) == 135 * BLOCK
    assert not x[50 * BLOCK:75 * BLOCK].any() and not x[125 * BLOCK:].any()
    np.testing.assert_array_equal(x[75 * BLOCK:125 * BLOCK, 0], feed.rx[0, 75 * BLOCK:125 * BLOCK])


def test_max_duration_stops_the_recording_not_the_call(env):
    make, db, _ = env
    r, feed = make()
    h = r.start(call("c4"), chan=0, when=T0, max_seconds=1.0)
    other = r.start(call("c5"), chan=1, when=T0)
    feed.run(100)
    r.stop(h)                                             # the server's stop after the limit: harmless
    r.stop(other)
    feed.run(1)
    r.flush()
    assert db.recordings("c4")[0].duration == 1.0 and db.recordings("c4")[0].stop_reason == "max duration"
    assert db.recordings("c5")[0].duration == 2.0
    kinds = [e.kind for e in r.events() if e.handle == h]   # tick-side and writer-side events interleave
    assert "recording.max_duration" in kinds and kinds[-1] == "recording.stopped"


def test_transfer_keeps_one_file_with_the_new_agent_on_the_right(env):
    make, db, _ = env
    r, feed = make()
    h = r.start(call("c6"), chan=0, agent=("rx", 3), when=T0)   # agent phone on channel 3
    feed.run(40)
    r.retarget(h, agent=("rx", 4))                             # transferred to the agent on 4
    feed.run(40)
    r.stop(h)
    feed.run(1)
    r.flush()
    (row,) = db.recordings("c6")
    x = read(row.path)
    np.testing.assert_array_equal(x[:, 0], feed.rx[0, :80 * BLOCK])
    np.testing.assert_array_equal(x[:40 * BLOCK, 1], feed.rx[3, :40 * BLOCK])
    np.testing.assert_array_equal(x[40 * BLOCK:, 1], feed.rx[4, 40 * BLOCK:80 * BLOCK])


def test_discarded_and_empty_recordings_leave_no_file(env):
    make, db, root = env
    r, feed = make()
    h1 = r.start(call("d1"), chan=0, when=T0)
    h2 = r.start(call("d2"), chan=1, when=T0)
    feed.run(30)
    r.stop(h1, discard="min duration 5 s not met")
    h3 = r.start(call("d3"), chan=2, when=T0)
    r.stop(h3)                                            # stopped before any audio
    r.stop(h2)
    feed.run(1)
    r.flush()
    d1, d2, d3 = (db.recordings(c)[0] for c in ("d1", "d2", "d3"))
    assert (d1.status, d1.discard_reason) == ("discarded", "min duration 5 s not met")
    assert (d3.status, d3.discard_reason) == ("discarded", "no audio")
    assert d2.status == "kept"
    files = sorted(p.name for p in root.rglob("*") if p.is_file())
    assert files == [Path(d2.path).name]
    assert r.stats.kept == 1 and r.stats.discarded == 2


def test_file_names_from_the_template_are_safe_and_unique(env):
    make, db, root = env
    r, feed = make(template="{caller}_{called}_{agent}_{channel}_{call_id}")
    a = r.start(call("id/../x", caller="+86 10 1234", called=None, agent="b1:5"), chan=4, when=T0)
    b = r.start(call("id/../x", caller="+86 10 1234", called=None, agent="b1:5"), chan=4, when=T0)
    feed.run(5)
    r.stop(a)
    r.stop(b)
    feed.run(1)
    r.flush()
    names = sorted(Path(x.path).relative_to(root).as_posix() for x in db.recordings())
    assert names == ["2026/11/23/+86_10_1234_unknown_b1_5_4_id_.._x-1.wav",
                     "2026/11/23/+86_10_1234_unknown_b1_5_4_id_.._x.wav"]


def test_a_full_ring_drops_blocks_without_waiting_and_marks_the_gap(env, monkeypatch):
    make, db, _ = env
    r, feed = make(backpressure=False, ring_seconds=0.1)   # 5 ticks
    gate = threading.Event()
    entered = threading.Event()
    real = r._drain

    def stalled() -> None:                                  # a disk that hangs
        entered.set()
        gate.wait()
        real()
    h = r.start(call("o1"), chan=0, when=T0)
    feed.run(1)
    r.flush()
    monkeypatch.setattr(r, "_drain", stalled)
    try:
        r._wake.set()
        assert entered.wait(10), "the writer never picked up the stalled drain"
        feed.run(r.ring_ticks + 7)     # returns although the writer is stuck: the ring takes
        assert (r.stats.dropped_ticks, r.stats.dropped_blocks) == (7, 7)   # 5 ticks, 7 drop
        assert [e.kind for e in r.events()][-1] == "recording.overrun"
    finally:
        gate.set()                                          # never leave the writer stuck
    monkeypatch.setattr(r, "_drain", real)
    r.flush()
    feed.run(3)
    r.stop(h)
    feed.run(1)
    r.flush()
    (row,) = db.recordings("o1")
    assert row.dropped_blocks == 7
    assert row.gaps == [{"start": 0.12, "end": 0.26, "why": "overrun"}]   # ticks 6..12
    x = read(row.path)
    assert len(x) == (1 + r.ring_ticks + 7 + 3) * BLOCK    # the time line is kept
    np.testing.assert_array_equal(x[:6 * BLOCK, 0], feed.rx[0, :6 * BLOCK])
    assert not x[6 * BLOCK:13 * BLOCK].any()
    np.testing.assert_array_equal(x[13 * BLOCK:, 0], feed.rx[0, 13 * BLOCK:16 * BLOCK])
    assert "recording.overrun_end" in [e.kind for e in r.events()]


def test_close_keeps_what_is_recording(env):
    make, db, _ = env
    r, feed = make()
    r.start(call("e1"), chan=0, when=T0)
    feed.run(20)
    r.close()
    (row,) = db.recordings("e1")
    assert (row.status, row.stop_reason, row.duration) == ("kept", "server stopped", 0.4)


def test_slots_run_out_cleanly(env):
    make, db, root = env
    r, feed = make(max_slots=1)
    r.start(call("s1"), chan=0, when=T0)
    h = r.start(call("s2"), chan=1, when=T0)
    feed.run(3)
    failed = [e for e in r.events() if e.kind == "recording.failed"]
    assert failed and failed[0].handle == h and "no free recording slot" in failed[0].detail["reason"]
    assert db.recordings("s2") == []


def test_a_write_failure_keeps_the_audio_before_it_and_the_alarm_says_so(env, monkeypatch):
    """Disk full mid-call: the alarm goes out once the file is final, naming it and its status."""
    import errno

    from voiceserver.recording import wavfile as wavwriter
    make, db, _ = env
    r, feed = make()
    real = wavwriter.WavFile.write
    writes = []

    def write(self, data):
        writes.append(len(memoryview(data).cast("B")))
        if len(writes) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(self, data)
    monkeypatch.setattr(wavwriter.WavFile, "write", write)
    r.start(call("f1"), chan=0, when=T0)
    feed.run(10)
    r.flush()
    feed.run(10)
    r.flush()
    (failed,) = [e for e in r.events() if e.kind == "recording.failed"]
    assert failed.detail["reason"] == "disk full" and failed.detail["status"] == "kept"
    (row,) = db.recordings("f1")
    assert (row.status, row.stop_reason, row.path) == ("kept", "disk full", failed.detail["path"])
    x = read(row.path)                    # the first write's ticks, intact
    assert len(x) == writes[0] // 4
    np.testing.assert_array_equal(x[:, 0], feed.rx[0, :len(x)])


def test_bad_requests_are_clear_errors(env):
    make, db, _ = env
    r, feed = make()
    with pytest.raises(ValueError, match="layout must be one of mono, stereo"):
        r.start(call("x"), chan=0, layout="quad")
    with pytest.raises(ValueError, match="format must be one of pcm16, alaw"):
        r.start(call("x"), chan=0, fmt="mp3")
    with pytest.raises(ValueError, match="channel 9 out of range 0..5"):
        r.start(call("x"), chan=9)
    with pytest.raises(ValueError, match="agent source: expected"):
        r.start(call("x"), chan=0, agent=("left", 1))
    with pytest.raises(ValueError, match="no recording with handle 77"):
        r.stop(77)
    with pytest.raises(ValueError, match="capture: rx and tx must be int16"):
        r.capture(0, np.zeros((2, 160), np.int16), np.zeros((2, 160), np.int16))
    with pytest.raises(ValueError, match=r"unknown placeholder \{date2\}"):
        recmod.check_template("{date2}_{call_id}")
    with pytest.raises(ValueError, match="a file name, not a path"):
        recmod.check_template("{date}/{call_id}")


def test_call_records_travel_in_order_with_the_audio(env):
    make, db, _ = env
    r, feed = make()
    h = r.start(call("c7", caller="555"), chan=0, when=T0)
    feed.run(10)
    r.stop(h)
    r.log_call(CallRow("c7", end=T0 + dt.timedelta(seconds=3), disposition="caller hung up",
                       digits_count=4, agent="b1:5"))
    feed.run(1)
    r.flush()
    c = db.call("c7")
    assert (c["disposition"], c["digits_count"], c["agent"], c["caller"], c["duration"]) == \
        ("caller hung up", 4, "b1:5", "555", 3.0)
