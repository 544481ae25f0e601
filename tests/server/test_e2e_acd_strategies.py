"""Every distribution strategy, end to end: hwsim (a separate lockstep process)
rings the callers in and plays the agents at phones hotline:4-7; the real
server answers, queues, rings, bridges. Each test checks what the far ends
saw (hwsim's report: which phone rang when, who answered) against the ACD's
explained decisions (`acd.decision`: the order with its keys, the agents
skipped and why, the agents chosen).

Callers have DTMF caller ID and are answered at their first ring, ~2.2 s
after they dial; an agent answers `answer_after` s after the first ring.
Scenario times below are hwsim seconds; decision `t` is the same clock in ms.
"""
from __future__ import annotations

import random
import re

import pytest

from acdkit import (
    PHONE,
    agents,
    caller,
    caller_record,
    chosen,
    data,
    decisions,
    done,
    outcome,
    phone,
    rings,
    run,
    scenario,
)

N = ["13911110001", "13911110002", "13911110003", "13911110004", "13911110005"]


def queue(strategy: str, members: list[str], extra: str = "") -> str:
    names = ", ".join(f'"{m}"' for m in members)
    return f'\n[queues.service]\nstrategy = "{strategy}"\nmembers = [{names}]\n{extra}'


# --------------------------------------------------------- strategies that order agents
# (strategy, [agents] + [queues], scenario, expected chosen per decision, expected
#  agent order of the last decision, a regex every key of the last decision matches)
CASES = {
    # top-down: from the top every time, although li is free for the second call
    "top-down": (
        agents("zhang", "li") + queue("top-down", ["zhang", "li"]),
        scenario(phone("zhang"), phone("li"), caller(1.0, 0, N[0]), caller(6.0, 1, N[1])),
        [["zhang"], ["zhang"]], ["zhang", "li"], r"member #\d"),
    # round-robin: resumes after the member offered last, answered or not: li lets
    # the second call ring out (3 s), wang takes it, so the third call goes to zhao
    "round-robin": (
        agents("zhang", "li", "wang", "zhao", li="max_misses = 0")
        + queue("round-robin", ["zhang", "li", "wang", "zhao"], "ring_timeout = 3\n"),
        scenario(phone("zhang"), phone("li", None), phone("wang"), phone("zhao"),
                 caller(1.0, 0, N[0]), caller(6.0, 1, N[1]), caller(14.0, 2, N[2]),
                 caller(19.0, 3, N[3])),
        [["zhang"], ["li"], ["wang"], ["zhao"], ["zhang"]], ["zhang", "li", "wang", "zhao"],
        r"member #\d, after #4"),
    # longest-idle: three overlapping calls end wang (8.2 s), zhang (12.2), li (14.7);
    # the fourth caller (16.2 s) gets wang, idle longest -- not zhang (top-down) nor
    # zhang (round-robin after wang)
    "longest-idle": (
        agents("zhang", "li", "wang") + queue("longest-idle", ["zhang", "li", "wang"]),
        scenario(phone("zhang", talk=8.0), phone("li", talk=10.0), phone("wang", talk=3.0),
                 caller(1.0, 0, N[0]), caller(1.5, 1, N[1]), caller(2.0, 2, N[2]),
                 caller(14.0, 3, N[3])),
        [["zhang"], ["li"], ["wang"], ["wang"]], ["wang", "zhang", "li"], r"idle \d+\.\d s"),
    # fewest-calls counts answered calls only: li never answers, so li (0 calls) is
    # offered first again on the third call, where round-robin would start at zhang
    "fewest-calls": (
        agents("zhang", "li", "wang", li="max_misses = 0")
        + queue("fewest-calls", ["zhang", "li", "wang"], "ring_timeout = 3\n"),
        scenario(phone("zhang"), phone("li", None), phone("wang"),
                 caller(1.0, 0, N[0]), caller(6.0, 1, N[1]), caller(14.0, 2, N[2])),
        [["zhang"], ["li"], ["wang"], ["li"], ["zhang"]], ["zhang", "wang"], r"1 calls"),
    # least-talk-time: zhang talked 5 s, wang 3 s, li 1 s (li answers late, so li's
    # call ends after wang's: longest-idle would pick wang)
    "least-talk-time": (
        agents("zhang", "li", "wang") + queue("least-talk-time", ["zhang", "li", "wang"]),
        scenario(phone("zhang", talk=5.0), phone("li", answer_after=4.0, talk=1.0),
                 phone("wang", talk=3.0), caller(1.0, 0, N[0]), caller(1.5, 1, N[1]),
                 caller(2.0, 2, N[2]), caller(10.0, 3, N[3])),
        [["zhang"], ["li"], ["wang"], ["li"]], ["li", "wang", "zhang"], r"talked \d+\.\d s"),
    # skill-based: billing >= 2; li and wang (5) before zhang (3); zhao (1) is never a
    # candidate; the tie between li and wang is broken by fewest calls
    "skill-based": (
        agents("zhang", "li", "wang", "zhao", zhang="skills = { billing = 3 }",
               li="skills = { billing = 5 }", wang="skills = { billing = 5 }",
               zhao="skills = { billing = 1 }")
        + queue("skill-based", ["zhang", "li", "wang", "zhao"],
                'skill = "billing"\nmin_skill = 2\ntiebreak = "fewest-calls"\n'),
        scenario(phone("zhang"), phone("li"), phone("wang"), phone("zhao"),
                 caller(1.0, 0, N[0]), caller(6.0, 1, N[1]), caller(11.0, 2, N[2])),
        [["li"], ["wang"], ["li"]], ["li", "wang", "zhang"], r"skill \d; fewest-calls: \d calls"),
}


@pytest.mark.parametrize("strategy", list(CASES))
def test_strategy_orders_free_agents_and_explains_it(e2e, tmp_path, strategy):
    acd, sc, want, last_order, key = CASES[strategy]
    ncallers = sc.count("[[caller]]")
    r = run(e2e, tmp_path, acd, sc, until=done(e2e, ncallers))
    ds = decisions(r)
    assert chosen(r) == want, [(d["t"], d["order"], d["skipped"]) for d in ds]
    assert all(d["strategy"] == strategy and d["queue"] == "service" for d in ds)
    last = ds[-1]
    assert [o["agent"] for o in last["order"]] == last_order, last
    assert all(re.fullmatch(key, o["key"]) for o in last["order"]), last["order"]
    # hwsim: each phone rang exactly as often as the ACD chose it, and every
    # caller was answered by the agent the last decision for it chose
    for name in PHONE:
        assert len(rings(r, name)) == sum(c == [name] for c in want), name
    for number in N[:ncallers]:
        rec = caller_record(r, number)
        mine = [d for d in ds if d["call_id"] == rec.call_id]
        assert rec.agent == mine[-1]["chosen"][0] and rec.answer is not None, (rec, mine)
        assert outcome(r, rec.call_id)["outcome"] == "answered"
    if strategy == "round-robin":       # li rang out: the ring moved on after ring_timeout
        ring_li, after = ds[1], ds[2]
        assert after["t"] - ring_li["t"] == 3000 and after["call_id"] == ring_li["call_id"]
        assert [t["agent"] for t in data(r, "acd.ring_timeout")] == ["li"]
    if strategy == "fewest-calls":
        third = [d for d in ds if d["call_id"] == ds[-1]["call_id"]]
        assert [o["key"] for o in third[0]["order"]] == ["0 calls", "1 calls", "1 calls"]
    if strategy == "least-talk-time":
        assert [o["key"] for o in last["order"]] == ["talked 1.0 s", "talked 3.0 s", "talked 5.0 s"]
    if strategy == "skill-based":
        assert all(d["tiebreak"] == "fewest-calls" for d in ds)
        assert {"agent": "zhao", "why": "lacks skill billing>=2 (has 1)"} in ds[0]["skipped"]
        assert [o["key"] for o in ds[1]["order"]][:2] == ["skill 5; fewest-calls: 0 calls",
                                                          "skill 5; fewest-calls: 1 calls"]


# --------------------------------------------------------- seeded random strategies
def _replay(strategy: str, seed: int, ds: list[dict], weights: dict[str, int]) -> list[str]:
    """The agent each decision must choose: the queue's generator (random.Random(seed))
    draws once per candidate, in member order, decision after decision."""
    rng = random.Random(seed)
    members = ["zhang", "li", "wang", "zhao"]
    out = []
    for d in ds:
        cands = [m for m in members if m in {o["agent"] for o in d["order"]}]
        draws = {m: rng.random() for m in cands}
        if strategy == "random":
            out.append(min(cands, key=lambda m: draws[m]))
            assert {o["agent"]: o["key"] for o in d["order"]} == {
                m: f"draw {draws[m]:.3f}" for m in cands}
        else:
            keys = {m: draws[m] ** (1.0 / weights[m]) for m in cands}
            out.append(max(cands, key=lambda m: keys[m]))
            assert {o["agent"]: o["key"] for o in d["order"]} == {
                m: f"weight {weights[m]}, draw {keys[m]:.3f}" for m in cands}
    return out


@pytest.mark.parametrize("strategy", ["random", "weighted-random"])
def test_random_strategies_repeat_exactly_from_the_queue_seed(e2e, tmp_path, strategy):
    weights = {"zhang": 1, "li": 1, "wang": 1, "zhao": 1}
    if strategy == "weighted-random":
        weights = {"zhang": 1, "li": 2, "wang": 1, "zhao": 6}
    extra = {n: f"weight = {w}" for n, w in weights.items()}
    acd = agents("zhang", "li", "wang", "zhao", **extra) + queue(
        strategy, ["zhang", "li", "wang", "zhao"], "seed = 7\n")
    sc = scenario(*(phone(n) for n in PHONE), *(caller(1.0 + 5 * i, i, N[i]) for i in range(4)))
    r = run(e2e, tmp_path, acd, sc, until=done(e2e, 4))
    ds = decisions(r)
    assert len(ds) == 4 and all(len(d["order"]) == 4 for d in ds)   # all four free each time
    assert [c[0] for c in chosen(r)] == _replay(strategy, 7, ds, weights)
    assert len({c[0] for c in chosen(r)}) > 1, "seed 7 does not pick one agent every time"
    for d in ds:
        assert caller_record(r, N[ds.index(d)]).agent == d["chosen"][0]


# --------------------------------------------------------- ring-all, ring-progressively
def test_ring_all_rings_every_free_member_at_once_first_answer_wins(e2e, tmp_path):
    acd = agents("zhang", "li", "wang") + queue("ring-all", ["zhang", "li", "wang"],
                                                "ring_timeout = 20\n")
    sc = scenario(phone("zhang", answer_after=2.0, talk=8.0), phone("li", None), phone("wang", None),
                  caller(1.0, 0, N[0]))
    r = run(e2e, tmp_path, acd, sc, until=done(e2e, 1))
    d, = decisions(r)
    assert d["mode"] == "all" and d["chosen"] == ["zhang", "li", "wang"]
    z, li, w = rings(r, "zhang")[0], rings(r, "li")[0], rings(r, "wang")[0]
    assert z["ring"][0] == li["ring"][0] == w["ring"][0]             # the same tick
    assert z["answer"] == z["ring"][0] + 2.0
    # the other phones stopped ringing when zhang answered: no second ring burst
    # (the cadence would have started one 5 s after the first), then hwsim's
    # 6 s alert gap ended them as unanswered
    for other in (li, w):
        assert other["ring"] == [z["ring"][0]] and other["answer"] is None
        assert other["who_hung_up"] == "unanswered"
    stops = [e for e in r.events("channel.state") if e.chan in (5, 6) and e.data["old"] == "ringing"]
    assert [e.data["reason"] for e in stops] == ["answered by zhang"] * 2
    assert caller_record(r, N[0]).agent == "zhang"


def test_ring_progressively_adds_one_member_every_few_seconds(e2e, tmp_path):
    acd = agents("zhang", "li", "wang") + queue(
        "ring-progressively", ["zhang", "li", "wang"], "progressive = 2\nring_timeout = 10\n")
    sc = scenario(phone("zhang", None), phone("li", None), phone("wang", answer_after=2.0),
                  caller(1.0, 0, N[0]))
    r = run(e2e, tmp_path, acd, sc, until=done(e2e, 1))
    ds = decisions(r)
    assert chosen(r) == [["zhang"], ["li"], ["wang"]]
    assert [d["t"] - ds[0]["t"] for d in ds] == [0, 2000, 4000]
    assert all(d["mode"] == "progressive" for d in ds)
    # the 2nd decision: zhang is still ringing for this call, not free
    assert {"agent": "zhang", "why": f"busy: ringing for {ds[0]['call_id']}"} in ds[1]["skipped"]
    z, li, w = (rings(r, n)[0] for n in ("zhang", "li", "wang"))
    assert [li["ring"][0] - z["ring"][0], w["ring"][0] - z["ring"][0]] == pytest.approx([2.0, 4.0])
    assert w["answer"] == pytest.approx(w["ring"][0] + 2.0)
    # zhang's and li's ringing stopped at wang's answer (zhang's second burst, due
    # 5 s after the first, came before it; none after)
    assert all(t < w["answer"] for t in z["ring"] + li["ring"])
    assert z["answer"] is None and li["answer"] is None
    assert caller_record(r, N[0]).agent == "wang"
    assert not data(r, "acd.ring_timeout")          # answered within the ring timeout


# --------------------------------------------------------- tiers
def test_tiers_widen_with_the_wait_and_the_caller_keeps_its_place(e2e, tmp_path):
    """zhang (tier 1) is busy; li (tier 2) is offered a caller once it has waited
    4 s. The first of two waiting callers gets li first; the second, who would
    reach 4 s of waiting while li rings for the first, waits its turn."""
    acd = agents("zhang", "li") + (
        '\n[queues.service]\nstrategy = "top-down"\n'
        'members = ["zhang", { agent = "li", tier = 2 }]\ntier_wait = 4\n')
    sc = scenario(phone("zhang", talk=12.0), phone("li", talk=2.0),
                  caller(1.0, 0, N[0]), caller(3.0, 1, N[1]), caller(4.0, 2, N[2]))
    r = run(e2e, tmp_path, acd, sc, until=done(e2e, 3))
    ds = decisions(r)
    a, b, c = (caller_record(r, n).call_id for n in N[:3])
    assert [(d["call_id"], d["chosen"]) for d in ds] == [(a, ["zhang"]), (b, ["li"]), (c, ["li"])]
    assert {"agent": "li", "why": "tier 2 not open yet (opens at 4.0 s, waited 0.0 s)"} \
        in ds[0]["skipped"]
    joined = {j["call_id"]: j for j in data(r, "acd.joined")}
    assert joined[b]["position"] == 1 and joined[c]["position"] == 2
    # b: li at exactly 4 s of waiting, still first in line although c waits too
    assert ds[1]["wait_ms"] == 4000 and ds[1]["position"] == 1
    assert {"agent": "zhang", "why": f"busy: on call {a}"} in ds[1]["skipped"]
    # c's tier opened (4 s) while li rang for b; c got li when li was free again
    li_b, li_c = rings(r, "li")
    assert ds[2]["wait_ms"] > 4000 and ds[2]["t"] / 1000 == pytest.approx(li_b["hangup"], abs=0.05)
    assert li_c["ring"][0] >= li_b["hangup"]
    assert caller_record(r, N[1]).agent == "li" and caller_record(r, N[2]).agent == "li"
