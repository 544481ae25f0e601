"""TimerQueue: what a driver keeps of the StartTimer/StopTimer actions."""
from __future__ import annotations

from voiceserver.r2.actions import StartTimer, StopTimer
from voiceserver.r2.timers import TimerQueue


def test_restart_replaces_stop_removes_due_is_in_deadline_order() -> None:
    q = TimerQueue()
    q.note([StartTimer("a", 100), StartTimer("b", 50), StartTimer("c", 70)])
    q.note([StartTimer("a", 60), StopTimer("c"), StopTimer("never-started")])
    assert q.next_deadline() == 50
    assert q.due(40) == []
    assert q.due(60) == ["b", "a"]
    assert q.due(1000) == [] and q.next_deadline() is None
