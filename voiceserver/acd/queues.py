"""Queues: waiting callers, their order, and which agents may take them.

A queue holds callers in order of priority, then arrival (a VIP, or a call
from an IVR branch with a priority, goes ahead of everyone with a lower
one; equal priorities keep first come, first served). For the caller at
hand it splits the members into *candidates* (free, skilled, tier open)
and *skipped* (each with the reason), which the strategy then orders.

Tiers widen the pool as the wait grows: members of tier k are offered the
call once it has waited ``(k - 1) * tier_wait_ms``; the caller keeps its
place in line meanwhile (FreeSWITCH mod_callcenter's tier levels).

Penalties rank the members free now (Asterisk app_queue's penalty, AMI
QueueAdd's ``Penalty``): of the candidates for a call, only those of the
lowest penalty are offered it; a member of a higher penalty is offered it
only when no member of a lower one is free (or all of those were offered it
in this round of ringing). Every member has penalty 0 unless given one.

Announcement timing (position and expected wait), the maximum wait, the
exit key and the overflow targets are described here and carried out by
the ACD (voiceserver.acd.distributor). Time is in ms of the ACD's clock.
"""
from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from voiceserver.acd.agents import Agent
from voiceserver.acd.strategies import Candidate, canonical

__all__ = ["Target", "Member", "QueueSpec", "WaitingCall", "Queue", "Eligibility"]

TARGET_KINDS = ("queue", "number", "voicemail", "hangup")


@dataclass(frozen=True)
class Target:
    """Where a call goes when it leaves a queue without an agent.

    ``queue``: another queue (``name``); ``number``: an external number
    dialled on trunk group ``trunk``; ``voicemail``: mailbox ``name``;
    ``hangup``: say ``prompts`` (optional) and hang up.
    """

    kind: str
    name: str | None = None        # queue name or mailbox
    number: str | None = None
    trunk: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in TARGET_KINDS:
            raise ValueError(f"overflow target kind {self.kind!r}: one of {', '.join(TARGET_KINDS)}")
        if self.kind in ("queue", "voicemail") and not self.name:
            raise ValueError(f"overflow to {self.kind} needs a name")
        if self.kind == "number" and not (self.number and self.trunk):
            raise ValueError("overflow to a number needs the number and a trunk group")

    def describe(self) -> str:
        if self.kind == "queue":
            return f"queue {self.name}"
        if self.kind == "voicemail":
            return f"voicemail {self.name}"
        if self.kind == "number":
            return f"number {self.number} via {self.trunk}"
        return "hangup"


MAX_TIER = 99                 # a member's tier: 1 .. this
MAX_PENALTY = 1_000_000       # a member's penalty: 0 .. this (AMI QueueAdd's, the config's, the API's)


@dataclass(frozen=True)
class Member:
    agent: str
    tier: int = 1           # offered calls once they waited (tier - 1) * tier_wait_ms
    penalty: int = 0        # offered calls only when no free member has a lower penalty


@dataclass(frozen=True)
class QueueSpec:
    """A queue as configured ([queues.NAME]); every time is in ms."""

    name: str
    members: tuple[Member, ...]
    strategy: str = "longest-idle"
    tiebreak: str = "longest-idle"          # for skill-based
    skill: str | None = None                # members need this skill ...
    min_skill: int = 0                      # ... at least at this level
    tier_wait_ms: int = 30_000              # tier k opens after (k-1) * this
    ring_timeout_ms: int = 15_000           # no answer in this time: next agent
    retry_ms: int = 0                       # pause between two rounds of ringing
    progressive_ms: int = 5_000             # ring-progressively: one more agent every ...
    max_wait_ms: int = 0                    # 0: wait forever
    timeout_target: Target = Target("hangup")
    empty_target: Target = Target("hangup")  # nobody logged in (join_empty / leave_when_empty)
    exit_key: str | None = None
    exit_target: Target = Target("hangup")
    join_empty: bool = True
    leave_when_empty: bool = False
    moh: str = "default"
    announce_first_ms: int = 0              # first announcement after joining (0: none)
    announce_every_ms: int = 0              # then every ... (0: once)
    announce_position: bool = True
    announce_wait: bool = True
    priority: int = 0                       # default priority of calls joining
    vip: frozenset[str] = frozenset()       # caller IDs (normalised) that get vip_priority
    vip_priority: int = 10
    weight: int = 0                         # an agent in two queues serves the heavier first
    mailbox: str | None = None              # the queue's voicemail box
    seed: int = 0                           # random strategies

    def __post_init__(self) -> None:
        object.__setattr__(self, "strategy", canonical(self.strategy))
        object.__setattr__(self, "tiebreak", canonical(self.tiebreak))
        names = [m.agent for m in self.members]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"queue {self.name}: agent(s) listed twice: {', '.join(sorted(dup))}")
        if self.ring_timeout_ms <= 0:
            raise ValueError(f"queue {self.name}: ring_timeout must be positive")
        if self.exit_key is not None and (len(self.exit_key) != 1 or self.exit_key not in "0123456789*#"):
            raise ValueError(f"queue {self.name}: exit_key must be one DTMF key")

    def tier_opens_at(self, tier: int) -> int:
        return max(0, tier - 1) * self.tier_wait_ms


@dataclass
class WaitingCall:
    """A caller in the ACD, from arrival until it is connected or leaves."""

    call_id: str
    queue: str
    caller: str | None
    priority: int
    arrived: int                   # first arrival in the ACD (wait is measured from here)
    joined: int                    # joined this queue (an overflow re-joins)
    seq: int
    lang: str = "zh"
    state: str = "waiting"         # waiting | ringing | connected | voicemail | outbound | gone
    ringing: dict[str, int] = field(default_factory=dict)   # agent -> ring start
    offered: set[str] = field(default_factory=set)           # this round of ringing
    next_try: int = 0              # no new ring before this (retry pause)
    next_add: int | None = None    # ring-progressively: add the next agent at ...
    plan: list[str] = field(default_factory=list)            # ring-progressively: who is next
    next_announce: int | None = None
    announcing: bool = False
    agent: str | None = None
    history: list[str] = field(default_factory=list)         # queues visited (overflow loops)
    last_decision: dict[str, Any] | None = None
    direct: str | None = None      # the agent rung for it directly (the API's route {"agent"})

    def wait_ms(self, t: int) -> int:
        return t - self.arrived


@dataclass(frozen=True)
class Eligibility:
    candidates: tuple[Candidate, ...]
    skipped: tuple[tuple[str, str], ...]     # (agent, why)


class Queue:
    """A queue's live state: its callers, counters and round-robin cursor."""

    def __init__(self, spec: QueueSpec) -> None:
        self.spec = spec
        self.name = spec.name
        self.rng = random.Random(spec.seed)
        self.cursor: int | None = None          # position of the member offered last
        self.calls: list[WaitingCall] = []      # waiting, in service order
        self.positions = {m.agent: i for i, m in enumerate(spec.members)}
        self.tiers = sorted({m.tier for m in spec.members if m.tier > 1})
        self.stats: dict[str, int] = {"joined": 0, "answered": 0, "abandoned": 0,
                                      "overflowed": 0, "exited": 0, "timeouts": 0,
                                      "rejected": 0, "voicemail": 0}
        self.wait_total_ms = 0
        self.longest_answered_ms = 0
        self.aht_ms: float | None = None        # handle time, moving average (expected wait)

    # -- callers -------------------------------------------------------------
    def priority_for(self, caller: str | None, asked: int | None) -> int:
        """The call's priority: what the IVR asked, raised for a VIP caller."""
        p = self.spec.priority if asked is None else asked
        if caller is not None and caller in self.spec.vip:
            p = max(p, self.spec.vip_priority)
        return p

    def add(self, call: WaitingCall) -> None:
        """Insert after every caller of the same or higher priority."""
        i = len(self.calls)
        while i > 0 and self.calls[i - 1].priority < call.priority:
            i -= 1
        self.calls.insert(i, call)
        self.stats["joined"] += 1

    def remove(self, call: WaitingCall) -> None:
        if call in self.calls:
            self.calls.remove(call)

    def position(self, call: WaitingCall) -> int:
        """1-based place in line (callers being rung or waiting)."""
        return self.calls.index(call) + 1

    # -- members ---------------------------------------------------------
    def set_members(self, members: tuple[Member, ...]) -> None:
        """The members from now on (an agent joined or left at run time: Acd.member); the
        round-robin cursor starts over if its place is gone."""
        self.spec = replace(self.spec, members=members)
        self.positions = {m.agent: i for i, m in enumerate(members)}
        self.tiers = sorted({m.tier for m in members if m.tier > 1})
        if self.cursor is not None and self.cursor >= len(members):
            self.cursor = None

    def logged_in(self, agents: Mapping[str, Agent]) -> int:
        return sum(1 for m in self.spec.members
                   if m.agent in agents and agents[m.agent].state.value != "logged_out")

    def all_busy(self, t: int, agents: Mapping[str, Agent]) -> bool:
        """Staffed but nobody free: at least one member logged in, and none can be rung now
        (each is on a call, ringing, in wrap-up, not ready, or its line is down) -- the
        wallboard's "all agents busy". A queue nobody is logged in to is unstaffed, not busy."""
        return self.logged_in(agents) > 0 and not any(
            m.agent in agents and agents[m.agent].unavailable(t) is None for m in self.spec.members)

    def skill_of(self, agent: Agent) -> int | None:
        """The agent's level in the queue's skill; None if below the minimum."""
        if self.spec.skill is None:
            return 0
        level = agent.spec.skills.get(self.spec.skill)
        if level is None or level < self.spec.min_skill:
            return None
        return level

    def eligible(self, call: WaitingCall, agents: Mapping[str, Agent], t: int,
                 exclude: Sequence[str] = ()) -> Eligibility:
        """Split the members into those that may be offered `call` now and the others (why)."""
        cands: list[Candidate] = []
        skipped: list[tuple[str, str]] = []
        waited = t - call.joined
        for pos, m in enumerate(self.spec.members):
            a = agents.get(m.agent)
            if a is None:
                skipped.append((m.agent, "no such agent"))
                continue
            why = a.unavailable(t)
            if why is None:
                level = self.skill_of(a)
                opens = self.spec.tier_opens_at(m.tier)
                if level is None:
                    have = a.spec.skills.get(self.spec.skill or "")
                    why = (f"lacks skill {self.spec.skill}>={self.spec.min_skill}"
                           f" (has {have if have is not None else 'none'})")
                elif waited < opens:
                    why = (f"tier {m.tier} not open yet (opens at {opens / 1000:.1f} s, "
                           f"waited {waited / 1000:.1f} s)")
                elif m.agent in call.offered:
                    why = "already offered this call in this round"
                elif m.agent in exclude:
                    why = "reserved for another caller"
            if why is not None:
                skipped.append((m.agent, why))
            else:
                cands.append(Candidate(a, pos, m.tier, level or 0, m.penalty))
        return Eligibility(tuple(cands), tuple(skipped))

    @staticmethod
    def lowest_penalty(cands: Sequence[Candidate]) -> tuple[list[Candidate], list[tuple[str, str]]]:
        """Asterisk's penalty: the candidates of the lowest penalty among `cands` (the members
        that may be rung now), and the others with why they wait."""
        if not cands:
            return [], []
        low = min(c.penalty for c in cands)
        kept = [c for c in cands if c.penalty == low]
        free = ", ".join(c.agent.name for c in kept)
        return kept, [(c.agent.name, f"penalty {c.penalty}: a member of penalty {low} is free ({free})")
                      for c in cands if c.penalty != low]

    # -- announcements -----------------------------------------------------
    def first_announce(self, t: int) -> int | None:
        s = self.spec
        if not (s.announce_position or s.announce_wait) or s.announce_first_ms <= 0:
            return None
        return t + s.announce_first_ms

    def next_announce(self, t: int) -> int | None:
        every = self.spec.announce_every_ms
        return t + every if every > 0 else None

    def expected_wait_ms(self, position: int, staffed: int) -> int | None:
        """Position times handle time over the agents serving; None until a call was handled."""
        if self.aht_ms is None or staffed <= 0:
            return None
        return int(position * self.aht_ms / staffed)

    def handled(self, talk_ms: int) -> None:
        """Exponential moving average of handle time (Asterisk's holdtime: 3/4 old, 1/4 new)."""
        self.aht_ms = float(talk_ms) if self.aht_ms is None else (3 * self.aht_ms + talk_ms) / 4

    # -- views -------------------------------------------------------------
    def snapshot(self, t: int, agents: Mapping[str, Agent]) -> dict[str, Any]:
        s = self.spec
        answered = self.stats["answered"]
        return {
            "name": self.name, "strategy": s.strategy, "waiting": len(self.calls),
            "callers": [{"call_id": c.call_id, "caller": c.caller, "priority": c.priority,
                         "wait_ms": c.wait_ms(t), "state": c.state,
                         "ringing": sorted(c.ringing)} for c in self.calls],
            "members": [{"agent": m.agent, "tier": m.tier, "penalty": m.penalty,
                         "state": agents[m.agent].state.value if m.agent in agents else "unknown"}
                        for m in s.members],
            "logged_in": self.logged_in(agents),
            "ready": sum(1 for m in s.members if m.agent in agents
                         and agents[m.agent].unavailable(t) is None),
            "all_busy": self.all_busy(t, agents),
            "stats": dict(self.stats),
            "asa_ms": (self.wait_total_ms // answered) if answered else None,
            "longest_wait_ms": max((c.wait_ms(t) for c in self.calls), default=0),
            "aht_ms": None if self.aht_ms is None else int(self.aht_ms),
        }


def frozen_skills(skills: Mapping[str, int]) -> Mapping[str, int]:
    return MappingProxyType(dict(skills))
