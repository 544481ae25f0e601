"""Trunk hunt groups: the four DAHDI orders plus least-used; skips; glare retry."""
from __future__ import annotations

import pytest

from voiceserver.acd.hunt import HuntGroup, Seizure, canonical_method

LINES = [("b", 0), ("b", 1), ("b", 2), ("b", 3)]


def idle(_line) -> str:
    return "idle"


def picks(group: HuntGroup, n: int, status=idle) -> list[int]:
    out = []
    for _ in range(n):
        choice = group.pick(status)
        assert choice.line is not None
        group.seized(choice.line)
        out.append(choice.line[1])
    return out


def test_orders() -> None:
    assert picks(HuntGroup("g", LINES, "g"), 3) == [0, 0, 0]
    assert picks(HuntGroup("g", LINES, "G"), 3) == [3, 3, 3]
    assert picks(HuntGroup("g", LINES, "r"), 6) == [0, 1, 2, 3, 0, 1]
    assert picks(HuntGroup("g", LINES, "R"), 5) == [3, 2, 1, 0, 3]
    assert picks(HuntGroup("g", LINES, "least-used"), 6) == [0, 1, 2, 3, 0, 1]


def test_least_used_fills_the_least_seized_line() -> None:
    g = HuntGroup("g", LINES, "least-used")
    g.used.update({("b", 0): 5, ("b", 1): 2, ("b", 2): 2, ("b", 3): 9})
    assert g.pick(idle).line == ("b", 1)


def test_skips_alarm_blocked_busy_with_reasons() -> None:
    states = {("b", 0): "alarm", ("b", 1): "busy", ("b", 2): "blocked"}
    g = HuntGroup("pstn", LINES, "ascending")
    c = g.pick(lambda x: states.get(x, "idle"))
    assert c.line == ("b", 3)
    assert c.explain()["skipped"] == [{"line": "b:0", "why": "alarm"},
                                      {"line": "b:1", "why": "busy"},
                                      {"line": "b:2", "why": "blocked"}]
    assert HuntGroup("pstn", LINES).pick(lambda x: "busy").line is None


def test_round_robin_skips_busy_but_keeps_rotating() -> None:
    g = HuntGroup("g", LINES, "round-robin")
    assert picks(g, 1) == [0]
    assert picks(g, 1, lambda x: "busy" if x == ("b", 1) else "idle") == [2]
    assert picks(g, 1) == [3]


def test_glare_retries_on_another_line_then_gives_up() -> None:
    g = HuntGroup("g", LINES[:3], "ascending")
    s = Seizure(g, max_retries=1)
    assert s.start(idle) == ("b", 0)
    assert s.glare(("b", 0), idle) == ("b", 1)       # the glared line is not retried
    assert s.choices[-1].explain()["skipped"] == [{"line": "b:0",
                                                  "why": "glare on this line: not retried"}]
    assert s.glare(("b", 1), idle) is None            # out of retries
    with pytest.raises(ValueError, match="this call seized nothing"):
        s.glare(("b", 2), idle)


def test_bad_groups() -> None:
    with pytest.raises(ValueError, match="unknown hunt method"):
        canonical_method("x")
    with pytest.raises(ValueError, match="no lines"):
        HuntGroup("g", [])
    with pytest.raises(ValueError, match="twice"):
        HuntGroup("g", [("b", 1), ("b", 1)])


def test_glare_retry_follows_the_group_method_and_skips_busy_lines() -> None:
    states = {("b", 2): "busy"}
    g = HuntGroup("g", LINES, "round-robin")
    g.last = ("b", 0)
    s = Seizure(g, max_retries=2)
    status = lambda x: states.get(x, "idle")            # noqa: E731
    assert s.start(status) == ("b", 1)
    states[("b", 1)] = "busy"                           # the exchange's call holds it now
    assert s.glare(("b", 1), status) == ("b", 3)        # round-robin goes on after 1; 2 is busy
    why = {d["line"]: d["why"] for d in s.choices[-1].explain()["skipped"]}
    assert why == {"b:2": "busy"}                      # (line 1 comes last in this order)
    assert s.glared == [("b", 1)] and s.line == ("b", 3)
    assert g.last == ("b", 3) and g.used[("b", 1)] == 1  # the next call starts after line 3
    assert Seizure(g).start(status) == ("b", 0)


def test_zero_glare_retries_gives_up_at_the_first_glare() -> None:
    s = Seizure(HuntGroup("g", LINES), max_retries=0)
    assert s.start(idle) == ("b", 0)
    assert s.glare(("b", 0), idle) is None and s.line is None
