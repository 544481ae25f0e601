"""record-start and record-stop at the recording service's level: an on-demand recording is a
decision with reason "api", the rules no longer stop it, a stop finishes the file with reason
"api" and the call row says who; an answered call the rules never saw (an originated one) is
recorded too. The recorder is a stand-in that keeps what it was asked (its own tests are
test_recorder.py); a real file on hwsim: test_api_calls_e2e.py."""
from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import pytest

from voiceserver.core.channels import Call
from voiceserver.core.events import EventBus
from voiceserver.core.runtime import Leg
from voiceserver.recording.rules import RecordingRules
from voiceserver.recording.service import API_RULE, RecordingService

START = dt.datetime(2026, 12, 3, 10, 0, tzinfo=dt.UTC)
WHO = "network API (acd)"


class Recorder:
    """What the service asks of a board's recorder, kept in order."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, Any, dict[str, Any]]] = []
        self.handles = 0

    def start(self, row: Any, **kw: Any) -> int:
        self.handles += 1
        self.asked.append(("start", row.call_id, kw))
        return self.handles

    def stop(self, handle: int, **kw: Any) -> None:
        self.asked.append(("stop", handle, kw))

    def log_call(self, row: Any, **kw: Any) -> None:
        self.asked.append(("row", row.call_id, {k: v for k, v in vars(row).items() if v is not None}))

    def retarget(self, handle: int, **kw: Any) -> None:
        self.asked.append(("retarget", handle, kw))


def service(rules: RecordingRules | None) -> tuple[RecordingService, Recorder, Any]:
    rt = SimpleNamespace(index=0, name="hotline", engine=SimpleNamespace(tick=100), board=None,
                         ms_per_tick=20, ms_at=lambda t: t * 20, tick_at=lambda ms: ms // 20)
    server = SimpleNamespace(cfg=None, bus=EventBus(), boards=[rt], tick=100, server_id="pbx1", legs={},
                             time_at=lambda r, t: START + dt.timedelta(milliseconds=t * 20))
    storage = SimpleNamespace(recordings="/nonexistent")
    svc = RecordingService(server, storage, rules)
    rec = Recorder()
    svc.recorders[0] = rec
    return svc, rec, rt


def inbound(svc: RecordingService, rt: Any, call_id: str = "c1", chan: int = 0) -> Leg:
    leg = Leg(Call(call_id, chan, "inbound", caller="13911110090", answer_tick=50))
    svc.s.legs[(0, chan)] = leg
    svc.answered(rt, 50, chan, leg)
    return leg


def test_record_start_then_stop_on_a_call_the_rules_do_not_record(tmp_path):
    rules = RecordingRules(file="rules.toml", sampling=(("inbound", 0.0), ("outbound", 0.0), ("internal", 0.0)),
                           layout="mono")
    svc, rec, rt = service(rules)
    inbound(svc, rt)
    assert not [a for a in rec.asked if a[0] == "start"], "the rules said no"
    out = svc.record_command("c1", True, who=WHO)
    assert out == {"call_id": "c1", "recording": True, "changed": True}
    (_, call_id, kw), = [a for a in rec.asked if a[0] == "start"]
    assert call_id == "c1" and kw["layout"] == "mono"          # the rules' layout
    decision = [e for e in svc.s.bus.journal if e.kind == "recording.decision"][-1]
    assert decision.data == {"board": "hotline", "record": True, "rule": str(API_RULE), "reason": "api"}
    assert svc.record_command("c1", True, who=WHO) == {"call_id": "c1", "recording": True, "changed": False,
                                                      "why": "already recording"}
    svc._recheck(rt, 120, svc.calls["c1"], rules, "the call changed")     # the rules no longer decide
    assert svc.calls["c1"].recording
    out = svc.record_command("hotline:0", False, who=WHO)                   # BOARD:CHANNEL as well
    assert out == {"call_id": "c1", "recording": False, "changed": True}
    assert rec.asked[-1] == ("stop", 1, {"reason": "api"})
    assert svc._settle(rt, svc.calls["c1"], 200) == (str(API_RULE), f"api: stopped by {WHO}")
    assert svc.record_command("c1", False, who=WHO)["why"] == "not recording"
    svc.record_command("c1", True, who=WHO)                                  # again: a new file
    assert [a[1] for a in rec.asked if a[0] == "start"] == ["c1", "c1"] and svc.calls["c1"].handle == 2


def test_a_recording_started_on_demand_is_kept_at_the_call_end_whatever_the_minimum():
    rules = RecordingRules(file="rules.toml", min_seconds=600.0,
                           sampling=(("inbound", 0.0), ("outbound", 0.0), ("internal", 0.0)))
    svc, rec, rt = service(rules)
    inbound(svc, rt)
    svc.record_command("c1", True, who=WHO)
    assert svc._settle(rt, svc.calls["c1"], 150) == (str(API_RULE), f"recording: api ({WHO})")
    assert rec.asked[-1] == ("stop", 1, {"reason": "call end"})


def test_an_answered_call_the_rules_never_saw_is_recorded_and_an_unanswered_one_is_not():
    svc, rec, rt = service(None)
    svc.s.legs[(0, 2)] = Leg(Call("out1", 2, "outbound", called="13900001111", answer_tick=70))
    svc.s.legs[(0, 3)] = Leg(Call("out2", 3, "outbound", called="13900002222"))
    assert svc.record_command("out1", True, who=WHO)["recording"] is True
    (_, _, kw), = [a for a in rec.asked if a[0] == "start"]
    assert kw["chan"] == 2 and kw["layout"] == "stereo"                       # no rules: the defaults
    with pytest.raises(LookupError, match="no answered call 'out2'"):
        svc.record_command("out2", True, who=WHO)
    with pytest.raises(LookupError, match="no answered call 'nope'"):
        svc.record_command("nope", False, who=WHO)
