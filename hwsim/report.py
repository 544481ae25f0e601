"""The far end's report: one JSON and one WAV per call, and a summary.

    DIR/calls/<call_id>.json   the CallRecord (times in simulated seconds)
    DIR/calls/<call_id>.wav    what the host sent to the far end (8 kHz PCM16)
    DIR/report.json            the run: boards, clock, seed, ticks, every call

Files are written on a writer thread so the device loop never waits on the
disk (a real-time tick must not be late because a WAV is being written).
"""
from __future__ import annotations

import json
import os
import queue
import threading
from collections import Counter
from typing import Any

from hwsim.calls import CallRecord


class ReportWriter:
    """Queue CallRecords with `add`; `close(summary)` drains and writes report.json."""

    def __init__(self, directory: str | os.PathLike[str], keep_audio: bool = False) -> None:
        self.dir = os.fspath(directory)
        self.calls_dir = os.path.join(self.dir, "calls")
        os.makedirs(self.calls_dir, exist_ok=True)
        self.keep_audio = keep_audio
        self.records: list[CallRecord] = []
        self._q: queue.Queue[CallRecord | None] = queue.Queue()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="hwsim-report", daemon=True)
        self._thread.start()
        self.errors: list[str] = []

    def add(self, rec: CallRecord) -> None:
        with self._lock:
            self.records.append(rec)
        self._q.put(rec)

    def _run(self) -> None:
        while True:
            rec = self._q.get()
            if rec is None:
                return
            try:
                self._write(rec)
            except Exception as exc:  # keep going: one bad write must not lose the others
                self.errors.append(f"{rec.call_id}: {exc}")

    def _write(self, rec: CallRecord) -> None:
        from dsp.audiofile import write_wav
        if rec.heard is not None and len(rec.heard):
            path = os.path.join(self.calls_dir, f"{rec.call_id}.wav")
            write_wav(path, rec.heard)
            rec.wav = os.path.relpath(path, self.dir)
            if not self.keep_audio:
                rec.heard = None
        _dump(os.path.join(self.calls_dir, f"{rec.call_id}.json"), rec.to_json())

    def close(self, summary: dict[str, Any]) -> str:
        """Finish pending writes and write report.json; returns its path."""
        self._q.put(None)
        self._thread.join()
        with self._lock:
            recs = list(self.records)
        calls = []
        for rec in recs:
            path = os.path.join(self.calls_dir, f"{rec.call_id}.json")
            with open(path, encoding="utf-8") as f:
                calls.append(json.load(f))
        out = dict(summary)
        out["calls_total"] = len(calls)
        out["calls_by_end"] = dict(Counter(c["who_hung_up"] for c in calls))
        out["e1_results"] = dict(Counter(c["result"] for c in calls if c["kind"] == "e1"))
        out["write_errors"] = self.errors
        out["calls"] = calls
        path = os.path.join(self.dir, "report.json")
        _dump(path, out)
        return path


def _dump(path: str, data: Any) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, ensure_ascii=False, default=str)
    os.replace(tmp, path)
