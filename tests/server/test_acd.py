"""The ACD state machine, input by input: every timeout path and every leave path."""
from __future__ import annotations

import pytest

from voiceserver.acd.agents import AgentSpec, AgentState, AgentStateError
from voiceserver.acd.distributor import (
    Acd,
    Announce,
    Beep,
    Connect,
    Event,
    Hangup,
    Mailbox,
    Moh,
    Overflow,
    Play,
    RecordStart,
    RecordStop,
    Ring,
    StopRing,
    Voicemail,
    VoicemailSpec,
)
from voiceserver.acd.hunt import HuntGroup
from voiceserver.acd.queues import Member, QueueSpec, Target


def of(cmds: list, cls: type) -> list:
    return [c for c in cmds if isinstance(c, cls)]


def events(cmds: list, kind: str) -> list[dict]:
    return [c.data for c in cmds if isinstance(c, Event) and c.kind == kind]


def rings(cmds: list) -> list[str]:
    return [c.agent for c in of(cmds, Ring)]


def make(n: int = 3, *, agent_kw: dict | None = None, **qkw) -> Acd:
    agents = [AgentSpec(f"a{i}", phone=("hb", 4 + i), **(agent_kw or {})) for i in range(n)]
    q = QueueSpec("q", tuple(Member(a.name) for a in agents), **{"strategy": "top-down", **qkw})
    return Acd(agents, [q])


# ------------------------------------------------------------------ ringing
def test_ring_no_answer_moves_to_next_agent_and_explains() -> None:
    acd = make(ring_timeout_ms=10_000)
    out = acd.call_arrived("c1", "q", "100", t=0)
    assert rings(out) == ["a0"]
    assert of(out, Ring)[0].line == ("hb", 4)
    assert acd.deadline == 10_000
    assert acd.tick(9_999) == []
    out = acd.tick(10_000)
    assert of(out, StopRing) == [StopRing("a0", "c1", "no answer")]
    assert events(out, "acd.ring_timeout")[0]["misses"] == 1
    assert rings(out) == ["a1"]
    d = events(out, "acd.decision")[0]
    assert d["chosen"] == ["a1"]
    assert {"agent": "a0", "why": "already offered this call in this round"} in d["skipped"]
    assert acd.explain("c1") == d


def test_after_n_misses_agent_goes_not_ready_and_is_skipped() -> None:
    acd = make(1, ring_timeout_ms=1_000, agent_kw={"max_misses": 2})
    acd.call_arrived("c1", "q", t=0)
    out = acd.tick(1_000)                  # miss 1, a new round rings a0 again at once
    assert rings(out) == ["a0"]
    out = acd.tick(2_000)                  # miss 2: not ready
    ev = events(out, "acd.ring_timeout")[0]
    assert ev["not_ready"] and ev["agent_state"] == "not_ready"
    assert rings(out) == []
    assert acd.agents["a0"].reason == "missed 2 calls in a row"
    assert acd.why_not("c1", 2_000) == [{"agent": "a0",
                                         "why": "not ready (missed 2 calls in a row)"}]
    out = acd.ready("a0", 5_000)
    assert rings(out) == ["a0"]


def test_retry_pause_between_rounds() -> None:
    acd = make(1, ring_timeout_ms=1_000, retry_ms=4_000, agent_kw={"max_misses": 0})
    acd.call_arrived("c1", "q", t=0)
    assert rings(acd.tick(1_000)) == []
    assert acd.deadline == 5_000
    assert rings(acd.tick(5_000)) == ["a0"]


def test_busy_and_wrapup_agents_are_never_rung() -> None:
    acd = make(2, agent_kw={"wrapup_ms": 30_000})
    acd.call_arrived("c1", "q", t=0)
    acd.ring_answered("a0", "c1", 1_000)
    out = acd.call_arrived("c2", "q", t=2_000)
    assert rings(out) == ["a1"]
    d = events(out, "acd.decision")[0]
    assert {"agent": "a0", "why": "busy: on call c1"} in d["skipped"]
    acd.ring_answered("a1", "c2", 3_000)
    acd.call_ended("a0", "c1", 10_000)
    assert acd.agents["a0"].state is AgentState.WRAP_UP
    out = acd.call_arrived("c3", "q", t=11_000)
    assert rings(out) == []
    why = dict((r["agent"], r["why"]) for r in acd.why_not("c3", 11_000))
    assert why["a0"] == "wrap-up (29.0 s left)" and why["a1"] == "busy: on call c2"
    assert acd.deadline == 40_000
    out = acd.tick(40_000)
    assert events(out, "acd.agent")[0]["why"] == "wrap-up over"
    assert rings(out) == ["a0"]


def test_caller_leaves_while_ringing() -> None:
    acd = make()
    acd.call_arrived("c1", "q", t=0)
    out = acd.caller_left("c1", 500)
    assert of(out, StopRing) == [StopRing("a0", "c1", "caller hung up")]
    assert events(out, "acd.outcome")[0]["outcome"] == "abandoned"
    assert acd.agents["a0"].state is AgentState.READY and acd.agents["a0"].misses == 0
    # A late pick-up is refused, and the agent's leg is hung up.
    out = acd.ring_answered("a0", "c1", 600)
    assert events(out, "acd.late_answer") and of(out, Hangup)


def test_ring_failed_busy_is_not_a_miss_but_no_answer_is() -> None:
    acd = make(2, agent_kw={"max_misses": 1})
    acd.call_arrived("c1", "q", t=0)
    out = acd.ring_failed("a0", "c1", "busy", 100)
    assert acd.agents["a0"].misses == 0 and rings(out) == ["a1"]
    out = acd.ring_failed("a1", "c1", "no-answer", 200)
    assert acd.agents["a1"].state is AgentState.NOT_READY
    assert rings(out) == ["a0"]           # new round: a0 is free again


def test_ring_all_first_answer_stops_the_others() -> None:
    acd = make(3, strategy="ring-all")
    out = acd.call_arrived("c1", "q", t=0)
    assert rings(out) == ["a0", "a1", "a2"]
    out = acd.ring_answered("a1", "c1", 2_000)
    assert sorted(s.agent for s in of(out, StopRing)) == ["a0", "a2"]
    assert all(s.reason == "answered by a1" for s in of(out, StopRing))
    assert of(out, Connect) == [Connect("c1", "a1")]
    assert all(acd.agents[a].misses == 0 for a in ("a0", "a2"))


def test_ring_progressively_adds_one_agent_at_a_time() -> None:
    acd = make(3, strategy="ring-progressively", progressive_ms=5_000, ring_timeout_ms=30_000)
    assert rings(acd.call_arrived("c1", "q", t=0)) == ["a0"]
    assert acd.deadline == 5_000
    assert rings(acd.tick(5_000)) == ["a1"]
    assert acd.agents["a0"].state is AgentState.RINGING       # still ringing
    assert rings(acd.tick(10_000)) == ["a2"]
    out = acd.ring_answered("a0", "c1", 12_000)
    assert sorted(s.agent for s in of(out, StopRing)) == ["a1", "a2"]


# ------------------------------------------------------------------ queue order
def test_priority_and_vip_jump_the_queue() -> None:
    agents = [AgentSpec("a0", phone=("hb", 4))]
    q = QueueSpec("q", (Member("a0"),), vip=frozenset({"13800000000"}), vip_priority=9)
    acd = Acd(agents, [q], entries={"q_gold": ("q", 5)})
    acd.call_arrived("busy", "q", t=0)
    acd.ring_answered("a0", "busy", 0)
    acd.call_arrived("plain", "q", "555", t=1)
    acd.call_arrived("gold", "q_gold", "556", t=2)
    acd.call_arrived("vip", "q", "13800000000", t=3)
    acd.call_arrived("plain2", "q", "557", t=4)
    assert [c.call_id for c in acd.queues["q"].calls] == ["vip", "gold", "plain", "plain2"]
    out = acd.call_ended("a0", "busy", 10)
    assert of(out, Ring)[0].call == "vip"


def test_tiers_widen_the_pool_without_losing_the_place() -> None:
    agents = [AgentSpec("t1", phone=("hb", 4)), AgentSpec("t2", phone=("hb", 5))]
    q = QueueSpec("q", (Member("t1", 1), Member("t2", 2)), tier_wait_ms=20_000,
                  strategy="top-down")
    acd = Acd(agents, [q])
    acd.call_arrived("x", "q", t=0)
    acd.ring_answered("t1", "x", 0)
    out = acd.call_arrived("c1", "q", t=1_000)
    acd.call_arrived("c2", "q", t=2_000)
    d = events(out, "acd.decision")
    assert d == []                                    # nobody to ring yet
    why = dict((r["agent"], r["why"]) for r in acd.why_not("c1", 1_000))
    assert why["t2"] == "tier 2 not open yet (opens at 20.0 s, waited 0.0 s)"
    assert acd.deadline == 21_000
    out = acd.tick(21_000)
    assert [(r.agent, r.call) for r in of(out, Ring)] == [("t2", "c1")]
    assert acd.queues["q"].position(acd.calls["c2"]) == 2


# ------------------------------------------------------------------ announcements
def test_position_and_expected_wait_announcements() -> None:
    acd = make(1, announce_first_ms=5_000, announce_every_ms=30_000)
    acd.call_arrived("x", "q", t=0, lang="en")
    acd.ring_answered("a0", "x", 0)
    acd.call_ended("a0", "x", 120_000)                 # one call handled: 2 minutes
    acd.call_arrived("y", "q", t=120_000)
    acd.ring_answered("a0", "y", 120_000)
    out = acd.call_arrived("c1", "q", t=121_000, lang="en")
    assert of(out, Moh) == [Moh("c1", True, "default")]
    assert acd.deadline == 126_000
    out = acd.tick(126_000)
    ann = of(out, Announce)[0]
    assert ann.prompts == ("you_are_caller_number", "n1", "in_the_queue",
                           "expected_wait", "n2", "minutes")
    assert of(out, Moh) == [Moh("c1", False)]
    out = acd.prompt_done("c1", 130_000)
    assert of(out, Moh) == [Moh("c1", True, "default")]
    assert acd.deadline == 156_000
    out = acd.call_arrived("c2", "q", t=140_000, lang="zh")
    out = acd.tick(145_000)
    assert of(out, Announce)[0].prompts[:4] == ("you_are_caller_number", "n2", "in_the_queue",
                                                "expected_wait")


def test_no_expected_wait_before_any_call_was_handled() -> None:
    acd = make(1, announce_first_ms=1_000)
    acd.call_arrived("x", "q", t=0)
    acd.ring_answered("a0", "x", 0)
    acd.call_arrived("c1", "q", t=0, lang="zh")
    out = acd.tick(1_000)
    assert of(out, Announce)[0].prompts == ("you_are_caller_number", "n1", "in_the_queue")
    assert acd.deadline is None                         # once only (announce_every_ms = 0)


# ------------------------------------------------------------------ leaving
def test_max_wait_overflows_to_another_queue_keeping_the_wait() -> None:
    agents = [AgentSpec("a0", phone=("hb", 4)), AgentSpec("b0", phone=("hb", 5), start="not_ready")]
    qa = QueueSpec("a", (Member("a0"),), max_wait_ms=60_000, timeout_target=Target("queue", "b"))
    qb = QueueSpec("b", (Member("b0"),))
    acd = Acd(agents, [qa, qb])
    acd.call_arrived("x", "a", t=0)
    acd.ring_answered("a0", "x", 0)
    acd.call_arrived("c1", "a", t=1_000)
    out = acd.tick(61_000)
    assert of(out, Overflow) == [Overflow("c1", Target("queue", "b"), None, "max wait")]
    assert acd.calls["c1"].queue == "b" and acd.calls["c1"].history == ["a", "b"]
    out = acd.ready("b0", 70_000)
    assert rings(out) == ["b0"]
    out = acd.ring_answered("b0", "c1", 71_000)
    assert events(out, "acd.outcome")[0] == {"call_id": "c1", "outcome": "answered",
                                             "queue": "b", "agent": "b0", "wait_ms": 70_000}
    assert acd.queues["a"].stats["timeouts"] == 1 and acd.queues["a"].stats["overflowed"] == 1


def test_overflow_loop_is_refused() -> None:
    agents = [AgentSpec("a0", phone=("hb", 4), start="logged_out")]
    qa = QueueSpec("a", (Member("a0"),), join_empty=False, empty_target=Target("queue", "b"))
    qb = QueueSpec("b", (Member("a0"),), join_empty=False, empty_target=Target("queue", "a"))
    acd = Acd(agents, [qa, qb])
    out = acd.call_arrived("c1", "a", t=0)
    assert events(out, "acd.overflow_refused")[0]["why"] == "already visited"
    assert of(out, Hangup) and acd.outcomes["c1"] == "rejected"


def test_exit_key_takes_the_exit_target() -> None:
    acd = make(1, exit_key="0", exit_target=Target("voicemail", "queue"), mailbox="900")
    acd.call_arrived("x", "q", t=0)
    acd.ring_answered("a0", "x", 0)
    acd.call_arrived("c1", "q", t=0)
    assert acd.digit("c1", "5", 100) == []
    out = acd.digit("c1", "0", 200)
    assert of(out, Voicemail) == [Voicemail("c1", "900")]
    assert of(out, Play) == [Play("c1", ("leave_message",), "zh")]
    assert acd.outcomes["c1"] == "voicemail"


def test_join_empty_and_leave_when_empty() -> None:
    acd = make(1, join_empty=False, leave_when_empty=True,
               empty_target=Target("number", number="13800138000", trunk="pstn"))
    acd.hunt["pstn"] = HuntGroup("pstn", [("hb", 0), ("hb", 1)])
    acd.logout("a0", 0)
    out = acd.call_arrived("c1", "q", t=10)
    assert events(out, "acd.join_refused")
    assert of(out, Overflow)[0].line == ("hb", 0)
    assert acd.outcomes["c1"] == "overflowed"
    acd.login("a0", 20)
    acd.call_arrived("x", "q", t=30)
    acd.ring_answered("a0", "x", 30)
    acd.call_arrived("c2", "q", t=40)
    out = acd.logout("a0", 50)                        # on a call: logs out after it
    assert events(out, "acd.agent")[0]["pending_logout"] is True
    out = acd.call_ended("a0", "x", 60)
    assert acd.agents["a0"].state is AgentState.LOGGED_OUT
    # the pending logout emptied the queue when the call ended: c2 leaves at once
    assert of(out, Overflow)[0].line == ("hb", 1)     # hb:0 still carries c1's overflow
    assert acd.outcomes["c2"] == "overflowed" and "c2" not in acd.calls
    assert acd.logout("a0", 61)[0].data["state"] == "logged_out"   # again: nothing more


def test_overflow_number_glare_retries_on_another_line() -> None:
    acd = make(1, max_wait_ms=1_000,
               timeout_target=Target("number", number="13800138000", trunk="pstn"))
    acd.hunt["pstn"] = HuntGroup("pstn", [("hb", 0), ("hb", 1), ("hb", 2)], "descending")
    acd.not_ready("a0", 0)
    acd.call_arrived("c1", "q", t=0)
    out = acd.tick(1_000)
    assert of(out, Overflow)[0].line == ("hb", 2)
    out = acd.overflow_failed("c1", "glare", 1_100)
    assert of(out, Overflow)[0].line == ("hb", 1)
    assert events(out, "acd.glare")[0]["line"] == "hb:2"
    assert acd.lines[("hb", 2)] == "busy"
    out = acd.overflow_failed("c1", "glare", 1_200)
    assert of(out, Overflow)[0].line == ("hb", 0)
    out = acd.overflow_failed("c1", "glare", 1_300)   # 3 glares > 2 retries
    assert of(out, Hangup)[0].reason.endswith("glare, no line left to retry")


# ------------------------------------------------------------------ external agents
def test_external_agent_rung_over_a_trunk_with_glare_retry() -> None:
    agents = [AgentSpec("far", number="13900000000", trunk="pstn")]
    hunt = {"pstn": HuntGroup("pstn", [("hb", 0), ("hb", 1)], "round-robin")}
    acd = Acd(agents, [QueueSpec("q", (Member("far"),))], hunt=hunt)
    out = acd.call_arrived("c1", "q", t=0)
    assert of(out, Ring) == [Ring("far", "c1", ("hb", 0), "13900000000")]
    assert events(out, "acd.decision")[0]["hunt"]["far"]["line"] == "hb:0"
    out = acd.ring_failed("far", "c1", "glare", 50)
    assert of(out, Ring) == [Ring("far", "c1", ("hb", 1), "13900000000")]
    assert acd.agents["far"].misses == 0
    acd.ring_answered("far", "c1", 3_000)
    acd.call_ended("far", "c1", 9_000)
    assert acd.seized == set()
    # Both lines busy with inbound calls: the agent is skipped with the reason.
    acd.line_state(("hb", 0), "busy", 9_100)
    acd.line_state(("hb", 1), "alarm", 9_100)
    acd.call_arrived("c2", "q", t=9_200)
    assert acd.why_not("c2", 9_200) == [{"agent": "far",
                                         "why": "no free line in trunk group pstn"}]
    out = acd.line_state(("hb", 1), "idle", 9_300)
    assert of(out, Ring)[0].line == ("hb", 1)


def test_phone_line_down_skips_the_agent() -> None:
    acd = make(2)
    acd.line_state(("hb", 4), "alarm", 0)
    out = acd.call_arrived("c1", "q", t=0)
    assert rings(out) == ["a1"]
    assert {"agent": "a0", "why": "phone line alarm"} in events(out, "acd.decision")[0]["skipped"]


# ------------------------------------------------------------------ voicemail
def vm_acd(**kw) -> Acd:
    spec = VoicemailSpec(max_ms=60_000, silence_ms=4_000,
                         mailboxes={"100": Mailbox("100", ("closed", "leave_message"))}, **kw)
    return Acd([AgentSpec("a0", phone=("hb", 4))], [QueueSpec("q", (Member("a0"),))],
               voicemail=spec)


def test_voicemail_terminator_key() -> None:
    acd = vm_acd()
    out = acd.voicemail("c1", "100", 0, lang="en")
    assert of(out, Play) == [Play("c1", ("closed", "leave_message"), "en")]
    assert acd.digit("c1", "#", 100) == []            # during the greeting: ignored
    out = acd.prompt_done("c1", 5_000)
    assert of(out, Beep) == [Beep("c1")] and of(out, RecordStart) == [RecordStart("c1", "100", 60_000)]
    acd.speech("c1", True, 5_500)
    out = acd.digit("c1", "#", 20_000)
    assert of(out, RecordStop) == [RecordStop("c1", "100", "terminator")]
    assert events(out, "acd.voicemail_saved")[0]["length_ms"] == 15_000
    assert of(out, Play) == [Play("c1", ("message_saved", "goodbye"), "en")]
    out = acd.prompt_done("c1", 23_000)
    assert of(out, Hangup) == [Hangup("c1", "voicemail done")]
    assert "c1" not in acd.vms


def test_voicemail_silence_and_max_length() -> None:
    acd = vm_acd()
    acd.voicemail("s", "100", 0)
    acd.prompt_done("s", 1_000)
    acd.speech("s", True, 1_500)
    assert acd.deadline == 61_000
    acd.speech("s", False, 9_000)
    assert acd.deadline == 13_000
    acd.speech("s", True, 12_000)                     # spoke again in time
    acd.speech("s", False, 14_000)
    out = acd.tick(18_000)
    assert of(out, RecordStop) == [RecordStop("s", "100", "silence")]
    acd.voicemail("m", "100", 20_000)
    acd.prompt_done("m", 21_000)
    acd.speech("m", True, 21_000)
    out = acd.tick(81_000)
    assert of(out, RecordStop) == [RecordStop("m", "100", "max_length")]


def test_voicemail_caller_hangs_up_while_recording_keeps_the_message() -> None:
    acd = vm_acd()
    acd.voicemail("c1", "100", 0)
    acd.prompt_done("c1", 1_000)
    out = acd.caller_left("c1", 7_000)
    assert of(out, RecordStop) == [RecordStop("c1", "100", "caller_left")]
    assert events(out, "acd.voicemail_saved")[0]["length_ms"] == 6_000


def test_strict_mailboxes_reject_unknown() -> None:
    acd = vm_acd(strict=True)
    out = acd.voicemail("c1", "999", 0)
    assert of(out, Hangup) and acd.outcomes["c1"] == "rejected"


# ------------------------------------------------------------------ guarantees
def test_agent_never_gets_two_calls() -> None:
    acd = make(1)
    acd.call_arrived("c1", "q", t=0)
    with pytest.raises(AgentStateError, match="busy: ringing for c1"):
        acd.agents["a0"].offer("c2", 1)
    acd.call_arrived("c2", "q", t=1)
    assert acd.agents["a0"].call == "c1"
    with pytest.raises(ValueError, match="already known"):
        acd.call_arrived("c1", "q", t=2)


def test_unknown_queue_is_rejected_with_a_reason() -> None:
    acd = make(1)
    out = acd.call_arrived("c1", "nope", t=0)
    assert events(out, "acd.error")[0]["error"] == "no queue 'nope'"
    assert acd.outcomes["c1"] == "rejected"


def test_skill_based_skips_unskilled_and_orders_by_level() -> None:
    agents = [AgentSpec("lo", phone=("hb", 4), skills={"billing": 2}),
              AgentSpec("hi", phone=("hb", 5), skills={"billing": 8}),
              AgentSpec("none", phone=("hb", 6)),
              AgentSpec("mid", phone=("hb", 7), skills={"billing": 5})]
    q = QueueSpec("q", tuple(Member(a.name) for a in agents), strategy="skill-based",
                  skill="billing", min_skill=3, tiebreak="top-down")
    acd = Acd(agents, [q])
    out = acd.call_arrived("c1", "q", t=0)
    d = events(out, "acd.decision")[0]
    assert d["chosen"] == ["hi"]
    assert [o["agent"] for o in d["order"]] == ["hi", "mid"]
    assert d["order"][0]["key"] == "skill 8; top-down: member #2"
    skipped = dict((s["agent"], s["why"]) for s in d["skipped"])
    assert skipped == {"lo": "lacks skill billing>=3 (has 2)",
                       "none": "lacks skill billing>=3 (has none)"}


def test_call_ended_from_both_sides_counts_once() -> None:
    acd = make(1, agent_kw={"wrapup_ms": 5_000})
    acd.call_arrived("c1", "q", t=0)
    acd.ring_answered("a0", "c1", 1_000)
    out = acd.caller_left("c1", 61_000)               # the caller hangs up first
    assert events(out, "acd.call_ended")[0]["talk_ms"] == 60_000
    assert acd.call_ended("a0", "c1", 61_100) == []   # then the agent's phone: nothing more
    assert acd.agents["a0"].calls == 1 and acd.agents["a0"].state is AgentState.WRAP_UP
    with pytest.raises(ValueError, match="not connected"):
        acd.call_ended("a0", "c9", 62_000)
