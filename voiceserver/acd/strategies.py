"""Distribution strategies: in which order a queue offers a call to its free agents.

The strategies of Asterisk app_queue and FreeSWITCH mod_callcenter, under
one set of names (their names are accepted as aliases):

=================== ====================================== ===========================
name                order                                  Asterisk / FreeSWITCH
=================== ====================================== ===========================
ring-all            everyone at once                       ringall / ring-all
longest-idle        longest free since the last call first leastrecent / longest-idle-agent
round-robin         member order, resuming after the       rrmemory / round-robin
                    agent offered last
fewest-calls        fewest answered calls first            fewestcalls / agent-with-fewest-calls
least-talk-time     least total talk time first            - / agent-with-least-talk-time
top-down            member order from the top every time   linear / top-down
random              uniformly shuffled (seeded)            random / random
weighted-random     shuffled, heavier agents earlier       wrandom / -
ring-progressively  member order; one more agent joins     - / ring-progressively
                    the ringing every few seconds
skill-based         highest skill level first, then a      - / -
                    tie-break strategy
=================== ====================================== ===========================

A strategy only orders agents that may be rung; which agents may be rung
(and why the others are skipped) is the queue's business. ``order`` returns
each agent with the key it was sorted on, in words, so a decision can be
explained ("idle 42.0 s", "3 calls").
"""
from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from voiceserver.acd.agents import Agent

__all__ = ["STRATEGIES", "ALIASES", "Candidate", "Ranked", "canonical", "ring_mode", "order"]

STRATEGIES = ("ring-all", "longest-idle", "round-robin", "fewest-calls", "least-talk-time",
              "top-down", "random", "weighted-random", "ring-progressively", "skill-based")
ALIASES = {
    "ringall": "ring-all", "leastrecent": "longest-idle", "longest-idle-agent": "longest-idle",
    "rrmemory": "round-robin", "roundrobin": "round-robin", "rrordered": "round-robin",
    "fewestcalls": "fewest-calls", "agent-with-fewest-calls": "fewest-calls",
    "agent-with-least-talk-time": "least-talk-time", "linear": "top-down",
    "sequentially-by-agent-order": "top-down", "wrandom": "weighted-random",
}
TIEBREAKS = tuple(s for s in STRATEGIES if s not in ("ring-all", "ring-progressively",
                                                      "skill-based"))


def canonical(name: str) -> str:
    """Our name for a strategy name or alias; ValueError naming the known ones."""
    s = ALIASES.get(name, name)
    if s not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r} (known: {', '.join(STRATEGIES)}; "
                         f"aliases: {', '.join(sorted(ALIASES))})")
    return s


def ring_mode(strategy: str) -> str:
    """'all' (ring every candidate), 'progressive' (add one at a time) or 'one'."""
    return {"ring-all": "all", "ring-progressively": "progressive"}.get(strategy, "one")


@dataclass(frozen=True)
class Candidate:
    """A free agent as a queue sees it: its place in the member list, tier, skill level and
    penalty."""

    agent: Agent
    position: int        # index in the queue's member list (0 = top)
    tier: int = 1
    skill: int = 0       # level of the queue's skill (0: the queue needs none)
    penalty: int = 0     # Asterisk's penalty: only the lowest of the free members is offered the call


@dataclass(frozen=True)
class Ranked:
    agent: str
    key: str             # the sort key in words


def _secs(ms: int) -> str:
    return f"{ms / 1000:.1f} s"


def order(strategy: str, cands: Sequence[Candidate], *, t: int, members: int,
          cursor: int | None, rng: random.Random, tiebreak: str = "longest-idle"
          ) -> list[tuple[Candidate, str]]:
    """The candidates in the order to offer the call, each with its key in words.

    ``members``: size of the queue's member list (round-robin wraps on it);
    ``cursor``: position of the member offered last in this queue (round-robin);
    ``rng``: the queue's seeded generator (random strategies).
    Ties keep member order, so every strategy is deterministic for a seed.
    """
    strategy = canonical(strategy)
    base = sorted(cands, key=lambda c: c.position)
    if strategy in ("ring-all", "top-down", "ring-progressively"):
        return [(c, f"member #{c.position + 1}") for c in base]
    if strategy == "longest-idle":
        out = sorted(base, key=lambda c: c.agent.idle_since)
        return [(c, f"idle {_secs(t - c.agent.idle_since)}") for c in out]
    if strategy == "round-robin":
        start = -1 if cursor is None else cursor
        n = max(members, 1)
        out = sorted(base, key=lambda c: (c.position - start - 1) % n)
        return [(c, f"member #{c.position + 1}, after #{start + 1}" if cursor is not None
                 else f"member #{c.position + 1}") for c in out]
    if strategy == "fewest-calls":
        out = sorted(base, key=lambda c: c.agent.calls)
        return [(c, f"{c.agent.calls} calls") for c in out]
    if strategy == "least-talk-time":
        out = sorted(base, key=lambda c: c.agent.talk_ms)
        return [(c, f"talked {_secs(c.agent.talk_ms)}") for c in out]
    if strategy == "random":
        keys = {id(c): rng.random() for c in base}
        out = sorted(base, key=lambda c: keys[id(c)])
        return [(c, f"draw {keys[id(c)]:.3f}") for c in out]
    if strategy == "weighted-random":
        # Efraimidis-Spirakis: key u^(1/w), largest first = sampling without
        # replacement with probability proportional to weight.
        keys = {id(c): rng.random() ** (1.0 / c.agent.spec.weight) for c in base}
        out = sorted(base, key=lambda c: -keys[id(c)])
        return [(c, f"weight {c.agent.spec.weight}, draw {keys[id(c)]:.3f}") for c in out]
    # skill-based: the tie-break strategy's order, then the skill level (stable sort)
    tb = canonical(tiebreak)
    if tb not in TIEBREAKS:
        raise ValueError(f"skill-based tie-break must be one of {', '.join(TIEBREAKS)}, "
                         f"not {tiebreak!r}")
    inner = order(tb, base, t=t, members=members, cursor=cursor, rng=rng)
    out2 = sorted(inner, key=lambda ck: -ck[0].skill)
    return [(c, f"skill {c.skill}; {tb}: {k}") for c, k in out2]
