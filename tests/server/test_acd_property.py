"""Random input sequences (hypothesis): the ACD's guarantees hold whatever happens.

Agents log in and out, go not ready, miss, answer late; callers leave and
press keys; lines fail; time jumps. After every input: no agent rings for or
talks on two calls, nobody is rung who was not free, the deadline is in the
future after a tick, and every call is either still in the ACD or has
exactly one outcome.
"""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voiceserver.acd.agents import AgentSpec, AgentState
from voiceserver.acd.distributor import Acd, Connect, Ring, StopRing, VoicemailSpec
from voiceserver.acd.hunt import HuntGroup
from voiceserver.acd.queues import Member, QueueSpec, Target
from voiceserver.acd.strategies import STRATEGIES

AGENTS = ["a0", "a1", "a2", "x0"]

op = st.one_of(
    st.tuples(st.just("arrive"), st.sampled_from(["q", "r", "vip"])),
    st.tuples(st.just("leave"), st.integers(0, 30)),
    st.tuples(st.just("answer"), st.integers(0, 3)),
    st.tuples(st.just("fail"), st.integers(0, 3), st.sampled_from(["no-answer", "busy", "glare"])),
    st.tuples(st.just("end"), st.integers(0, 3)),
    st.tuples(st.sampled_from(["login", "logout", "ready", "not_ready"]), st.sampled_from(AGENTS)),
    st.tuples(st.just("digit"), st.integers(0, 30), st.sampled_from("0#5")),
    st.tuples(st.just("line"), st.sampled_from([("hb", 4), ("hb", 0), ("hb", 1)]),
              st.sampled_from(["idle", "busy", "alarm"])),
    st.tuples(st.just("wait"), st.integers(1, 40_000)),
)


def build(strategy: str) -> Acd:
    agents = [AgentSpec("a0", phone=("hb", 4), max_misses=2, wrapup_ms=3_000),
              AgentSpec("a1", phone=("hb", 5), skills={"en": 3}),
              AgentSpec("a2", phone=("hb", 6), skills={"en": 1}, start="not_ready"),
              AgentSpec("x0", number="139", trunk="pstn")]
    q = QueueSpec("q", (Member("a0"), Member("a1"), Member("a2", 2), Member("x0", 3)),
                  strategy=strategy, skill="en" if strategy == "skill-based" else None,
                  tier_wait_ms=10_000, ring_timeout_ms=8_000, max_wait_ms=60_000,
                  timeout_target=Target("queue", "r"), exit_key="0",
                  exit_target=Target("voicemail", "queue"), mailbox="100",
                  announce_first_ms=5_000, announce_every_ms=20_000, leave_when_empty=True,
                  empty_target=Target("number", number="138", trunk="pstn"))
    r = QueueSpec("r", (Member("a1"), Member("x0")), strategy="ring-all", max_wait_ms=30_000,
                  timeout_target=Target("voicemail", "100"), join_empty=False)
    hunt = {"pstn": HuntGroup("pstn", [("hb", 0), ("hb", 1)], "round-robin")}
    return Acd(agents, [q, r], entries={"vip": ("q", 5)}, hunt=hunt,
               voicemail=VoicemailSpec(max_ms=20_000, silence_ms=3_000))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(strategy=st.sampled_from(STRATEGIES), ops=st.lists(op, max_size=60))
def test_guarantees_hold_for_any_input_sequence(strategy: str, ops: list[tuple]) -> None:
    acd = build(strategy)
    t = 0
    ringing: dict[str, str] = {}        # agent -> call ringing
    talking: dict[str, str] = {}        # agent -> call connected
    arrived: list[str] = []

    def apply(cmds: list) -> None:
        for c in cmds:
            if isinstance(c, Ring):
                assert c.agent not in ringing and c.agent not in talking, c
                ringing[c.agent] = c.call
            elif isinstance(c, StopRing):
                assert ringing.pop(c.agent) == c.call
            elif isinstance(c, Connect):
                assert ringing.pop(c.agent) == c.call
                assert c.agent not in talking and c.call not in talking.values()
                talking[c.agent] = c.call
        for name, a in acd.agents.items():
            if a.state is AgentState.RINGING:
                assert ringing.get(name) == a.call
            elif a.state is AgentState.ON_CALL:
                assert talking.get(name) == a.call
            else:
                assert name not in ringing and name not in talking

    for o in ops:
        kind = o[0]
        if kind == "arrive":
            cid = f"c{len(arrived)}"
            arrived.append(cid)
            apply(acd.call_arrived(cid, o[1], "100", t=t))
        elif kind == "leave" and arrived:
            cid = arrived[o[1] % len(arrived)]
            for agent, call in list(talking.items()):
                if call == cid:
                    del talking[agent]
            apply(acd.caller_left(cid, t))
        elif kind in ("answer", "fail") and ringing:
            agent = sorted(ringing)[o[1] % len(ringing)]
            if kind == "answer":
                apply(acd.ring_answered(agent, ringing[agent], t))
            else:
                call = ringing.pop(agent)    # a glare retry rings again: a new Ring
                apply(acd.ring_failed(agent, call, o[2], t))
        elif kind == "end" and talking:
            agent = sorted(talking)[o[1] % len(talking)]
            call = talking.pop(agent)
            apply(acd.call_ended(agent, call, t))
        elif kind in ("login", "logout", "ready", "not_ready"):
            a = acd.agents[o[1]]
            if kind == "ready" and a.state is AgentState.LOGGED_OUT:
                continue
            if kind == "not_ready" and a.state is AgentState.LOGGED_OUT:
                continue
            apply(getattr(acd, kind)(o[1], t))
        elif kind == "digit" and arrived:
            apply(acd.digit(arrived[o[1] % len(arrived)], o[2], t))
        elif kind == "line":
            apply(acd.line_state(o[1], o[2], t))
        elif kind == "wait":
            end = t + o[1]
            while (d := acd.deadline) is not None and d <= end:
                t = max(t, d)
                apply(acd.tick(t))
                nd = acd.deadline
                assert nd is None or nd > t
            t = end
    active = set(acd.calls) | set(acd.vms) | set(acd.outbound)
    for cid in arrived:
        assert (cid in acd.outcomes) or (cid in active), cid
    for cid in acd.calls:
        if acd.calls[cid].state != "connected":
            assert cid not in acd.outcomes
