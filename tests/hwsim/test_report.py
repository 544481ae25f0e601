"""The report writer: per-call JSON and WAV, and the summary."""
from __future__ import annotations

import json

import numpy as np
import soundfile as sf

from hwsim.calls import CallRecord
from hwsim.report import ReportWriter


def test_report_files_hold_the_call_and_what_the_host_sent(tmp_path):
    w = ReportWriter(tmp_path / "rep")
    heard = (np.arange(8000) % 200 - 100).astype(np.int16) * 50
    a = CallRecord("b-00001", "b", 2, "fxo", "in", number="138", answer=1.0, hangup=3.0,
                   who_hung_up="caller", digits=[{"digits": "1", "at": 2.0}], heard=heard,
                   heard_samples=len(heard))
    b = CallRecord("b-00002", "b", 3, "fxo", "in", number="139", hangup=0.5, who_hung_up="blocked")
    w.add(a)
    w.add(b)
    path = w.close({"seed": 9})
    rep = json.loads(open(path).read())
    assert rep["seed"] == 9 and rep["calls_total"] == 2
    assert rep["calls_by_end"] == {"caller": 1, "blocked": 1}
    first = rep["calls"][0]
    assert first["call_id"] == "b-00001" and first["digits"] == [{"digits": "1", "at": 2.0}]
    assert first["heard_seconds"] == 1.0 and first["wav"] == "calls/b-00001.wav"
    audio, rate = sf.read(tmp_path / "rep" / first["wav"], dtype="int16")
    assert rate == 8000 and np.array_equal(audio, heard)
    assert rep["calls"][1]["wav"] is None
    assert a.heard is None                      # dropped from memory once on disk
    assert json.loads((tmp_path / "rep" / "calls" / "b-00002.json").read_text())["number"] == "139"


def test_report_counts_e1_outcomes_and_keeps_the_r2_exchange(tmp_path):
    w = ReportWriter(tmp_path / "rep")
    r2 = [{"at": 0.02, "dir": "tx", "signal": "ABCD 0011 seize"}, {"at": 0.1, "dir": "tx", "signal": "MF I-9"}]
    w.add(CallRecord("e-00001", "e", 0, "e1", "in", number="138", called="95588",
                     category="national_subscriber", result="busy", who_hung_up="host", r2=r2))
    w.add(CallRecord("e-00002", "e", 1, "e1", "out", called="12345", result="answer", who_hung_up="caller"))
    w.add(CallRecord("e-00003", "e", 2, "fxo", "out", result="answer", who_hung_up="host"))
    rep = json.loads(open(w.close({})).read())
    assert rep["e1_results"] == {"busy": 1, "answer": 1}
    first = rep["calls"][0]
    assert (first["called"], first["category"], first["r2"]) == ("95588", "national_subscriber", r2)
