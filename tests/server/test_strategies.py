"""Each distribution strategy's order, with the key it explains it by."""
from __future__ import annotations

import random
from collections import Counter

import pytest

from voiceserver.acd.agents import Agent, AgentSpec
from voiceserver.acd.strategies import ALIASES, STRATEGIES, Candidate, canonical, order, ring_mode


def cands(**kw) -> list[Candidate]:
    """Four agents a..d with idle_since, calls, talk_ms, weight, skill from kw lists."""
    out = []
    for i, name in enumerate("abcd"):
        spec = AgentSpec(name, phone=("b", i), weight=kw.get("weight", [1] * 4)[i])
        a = Agent(spec, 0)
        a.idle_since = kw.get("idle", [0] * 4)[i]
        a.calls = kw.get("calls", [0] * 4)[i]
        a.talk_ms = kw.get("talk", [0] * 4)[i]
        out.append(Candidate(a, i, 1, kw.get("skill", [0] * 4)[i]))
    return out


def names(ranked) -> str:
    return "".join(c.agent.name for c, _ in ranked)


def run(strategy: str, cs: list[Candidate], cursor: int | None = None, seed: int = 0, **kw):
    return order(strategy, cs, t=100_000, members=4, cursor=cursor, rng=random.Random(seed), **kw)


def test_longest_idle() -> None:
    r = run("longest-idle", cands(idle=[50_000, 10_000, 70_000, 10_000]))
    assert names(r) == "bdac"          # ties keep member order
    assert r[0][1] == "idle 90.0 s"


def test_round_robin_resumes_after_the_last_offered() -> None:
    cs = cands()
    assert names(run("round-robin", cs)) == "abcd"
    assert names(run("round-robin", cs, cursor=1)) == "cdab"
    assert names(run("round-robin", cs, cursor=3)) == "abcd"
    # An agent missing from the candidates (busy) does not reset the rotation.
    assert names(run("round-robin", [cs[0], cs[1], cs[3]], cursor=1)) == "dab"
    assert run("round-robin", cs, cursor=1)[0][1] == "member #3, after #2"


def test_fewest_calls_and_least_talk_time() -> None:
    assert names(run("fewest-calls", cands(calls=[3, 1, 2, 1]))) == "bdca"
    r = run("least-talk-time", cands(talk=[9_000, 1_000, 5_000, 0]))
    assert names(r) == "dbca" and r[0][1] == "talked 0.0 s"


def test_top_down_ring_all_and_progressive_use_member_order() -> None:
    cs = cands(idle=[5, 4, 3, 2])
    for s in ("top-down", "ring-all", "ring-progressively"):
        assert names(run(s, list(reversed(cs)))) == "abcd"
    assert (ring_mode("ring-all"), ring_mode("ring-progressively"), ring_mode("top-down")) == \
        ("all", "progressive", "one")


def test_random_is_seeded_and_roughly_uniform() -> None:
    cs = cands()
    assert names(run("random", cs, seed=3)) == names(run("random", cs, seed=3))
    rng = random.Random(1)
    first = Counter(names(order("random", cs, t=0, members=4, cursor=None, rng=rng))[0]
                    for _ in range(4000))
    assert all(900 < first[n] < 1100 for n in "abcd"), first


def test_weighted_random_prefers_heavier_agents_in_proportion() -> None:
    cs = cands(weight=[1, 1, 2, 4])
    rng = random.Random(2)
    first = Counter(names(order("weighted-random", cs, t=0, members=4, cursor=None, rng=rng))[0]
                    for _ in range(8000))
    # P(first) = weight / total weight = 1/8, 1/8, 2/8, 4/8
    assert abs(first["d"] / 8000 - 0.5) < 0.03 and abs(first["c"] / 8000 - 0.25) < 0.03
    assert abs(first["a"] / 8000 - 0.125) < 0.02


def test_skill_based_level_then_tiebreak() -> None:
    cs = cands(skill=[3, 5, 5, 1], idle=[0, 20_000, 10_000, 0])
    r = run("skill-based", cs, tiebreak="longest-idle")
    assert names(r) == "cbad"
    assert r[0][1] == "skill 5; longest-idle: idle 90.0 s"
    with pytest.raises(ValueError, match="tie-break"):
        run("skill-based", cs, tiebreak="ring-all")


def test_names_and_aliases() -> None:
    assert canonical("rrmemory") == "round-robin" and canonical("linear") == "top-down"
    assert canonical("agent-with-least-talk-time") == "least-talk-time"
    assert all(canonical(a) in STRATEGIES for a in ALIASES)
    with pytest.raises(ValueError, match="unknown strategy 'roundrobbin'"):
        canonical("roundrobbin")
