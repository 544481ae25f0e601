"""Timeouts, overflow, voicemail, announcements and priorities, end to end:
hwsim (a separate lockstep process) plays the callers and the agents at
phones hotline:4-7, the real server runs the queues. Checks are made on what
the far ends did and heard (hwsim's report and audio, prompts found with the
prompt library) against the ACD's events and explanations.

Callers have DTMF caller ID and are answered at their first ring, ~2.2 s
after they dial, and queued at once; scenario times are hwsim seconds.
"""
from __future__ import annotations

import re

import pytest

from acdkit import (
    StatusProbe,
    agents,
    call_id_of,
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

N = ["13911110001", "13911110002", "13911110003", "13911110004"]
VIP = "13900008888"


def heard(e2e, r, line: int, library, *names: str, lang: str = "zh") -> dict[str, list[float]]:
    """Where each prompt starts in the audio the caller on `line` heard (s after answer)."""
    call = r.calls_on(line, "in")[0]
    audio = r.heard_alaw(call)
    return {n: [round(t, 2) for t, _ in e2e.find_prompt(audio, library.get(n, lang))]
            for n in names}


# ------------------------------------------------------------------ ring timeouts
def test_unanswered_rings_move_on_and_two_misses_make_the_agent_not_ready(e2e, tmp_path):
    acd = agents("zhang", "li", zhang="max_misses = 2") + (
        '\n[queues.service]\nstrategy = "top-down"\nmembers = ["zhang", "li"]\nring_timeout = 3\n')
    sc = scenario(phone("zhang", None), phone("li"),
                  caller(1.0, 0, N[0]), caller(9.0, 1, N[1]), caller(17.0, 2, N[2]))
    r = run(e2e, tmp_path, acd, sc, until=done(e2e, 3))
    ds = decisions(r)
    assert chosen(r) == [["zhang"], ["li"], ["zhang"], ["li"], ["li"]]
    # each unanswered ring moved on to li exactly ring_timeout later
    assert ds[1]["t"] - ds[0]["t"] == 3000 and ds[3]["t"] - ds[2]["t"] == 3000
    t1, t2 = data(r, "acd.ring_timeout")
    assert (t1["agent"], t1["misses"], t1["not_ready"], t1["agent_state"]) == ("zhang", 1, False, "ready")
    assert (t2["agent"], t2["misses"], t2["not_ready"], t2["agent_state"]) == ("zhang", 2, True, "not_ready")
    # the third caller: zhang is skipped, and the decision says why
    assert {"agent": "zhang", "why": "not ready (missed 2 calls in a row)"} in ds[4]["skipped"]
    z = rings(r, "zhang")
    assert len(z) == 2 and all(c["answer"] is None for c in z)      # never rung a third time
    assert all(caller_record(r, n).agent == "li" for n in N[:3])
    assert r.server.acd.acd.agents["zhang"].state.value == "not_ready"


def test_wrap_up_holds_the_agent_busy_agents_are_never_rung_status_api_explains(e2e, tmp_path):
    """zhang has 5 s of wrap-up. The second caller comes while zhang rings for the
    first (li takes it); the third while zhang wraps up and li talks: it waits,
    and the status API says why for each agent; zhang gets it when wrap-up ends."""
    acd = agents("zhang", "li", zhang="wrapup = 5") + (
        '\n[queues.service]\nstrategy = "top-down"\nmembers = ["zhang", "li"]\n')
    sc = scenario(phone("zhang", talk=2.0), phone("li", talk=10.0),
                  caller(1.0, 0, N[0]), caller(1.5, 1, N[1]), caller(5.0, 2, N[2]))

    def c_waits_zhang_wraps(s) -> bool:
        acd_ = s.acd.acd
        return acd_.agents["zhang"].state.value == "wrap_up" and any(
            c.caller == N[2] and c.state == "waiting" for c in acd_.calls.values())
    probe = StatusProbe(c_waits_zhang_wraps, "/queues", "/agents")
    until = done(e2e, 3)
    r = run(e2e, tmp_path, acd, sc, until=lambda s: probe(s) and until(s), status_port=0)
    a, b, c = (call_id_of(r, n) for n in N[:3])
    ds = decisions(r)
    assert [(d["call_id"], d["chosen"]) for d in ds] == [(a, ["zhang"]), (b, ["li"]), (c, ["zhang"])]
    assert {"agent": "zhang", "why": f"busy: ringing for {a}"} in ds[1]["skipped"]
    assert {"agent": "li", "why": f"busy: on call {b}"} in ds[2]["skipped"]
    # wrap-up: zhang is offered c exactly 5 s after a ended, not before
    ended = [e for e in data(r, "acd.call_ended") if e["call_id"] == a][0]
    assert ended["agent_state"] == "wrap_up"
    a_end = next(e.tick for e in r.events("acd.call_ended") if e.call_id == a)
    assert ds[2]["t"] == pytest.approx(a_end * 20 + 5000, abs=20)
    over = [e for e in data(r, "acd.agent") if e["why"] == "wrap-up over"]
    assert [(e["agent"], e["state"]) for e in over] == [("zhang", "ready")]
    # hwsim: zhang's phone rang twice, the second time after the wrap-up; li's phone
    # rang once: never while li talked
    z1, z2 = rings(r, "zhang")
    assert z2["ring"][0] - z1["hangup"] == pytest.approx(5.0, abs=0.05)
    assert len(rings(r, "li")) == 1
    # the status API, read while c waited: c's place and why nobody rings for it,
    # and the queue's recent decisions with their explanations
    q, = probe.result["/queues"]["queues"]
    row, = [x for x in q["callers"] if x["call_id"] == c]
    why = {w["agent"]: w["why"] for w in row["why_not"]}
    assert re.fullmatch(r"wrap-up \(\d\.\d s left\)", why["zhang"]), why
    assert why["li"] == f"busy: on call {b}"
    assert row["decision"] is None                     # nobody could be offered it yet
    recent = {d["call_id"]: d for d in q["decisions"]}
    assert recent[b]["chosen"] == ["li"] and recent[b]["order"] == [{"agent": "li", "key": "member #2"}]
    assert {"agent": "zhang", "why": f"busy: ringing for {a}"} in recent[b]["skipped"]
    agents_ = {x["name"]: x for x in probe.result["/agents"]["agents"]}
    assert agents_["zhang"]["state"] == "wrap_up" and agents_["li"]["state"] == "on_call"
    assert agents_["zhang"]["why_unavailable"].startswith("wrap-up (")


# ------------------------------------------------------------------ max wait -> overflow
OVERFLOW = {
    "queue": ('timeout = { queue = "backup" }\n'
              '\n[queues.backup]\nmembers = ["li"]\n', ""),
    "number": ('timeout = { number = "13800138000", trunk = "pstn" }\n',
               '[[outbound]]\nlines = "hotline_e2e:1-3"\nresult = "answer"\nring = 2.0\n'
               'script = [{ after = 3.0, hangup = true }]\n'),
    "voicemail": ('timeout = { voicemail = "queue" }\nmailbox = "100"\n', ""),
    # the number again, but the exchange rings line 1 in as the ACD seizes it
    "number-glare": ('timeout = { number = "13800138000", trunk = "pstn" }\n',
                     '[[caller]]\nat = 0.5\nline = "hotline_e2e:1"\nnumber = "13922220000"\n'
                     'glare = true\nhangup_after = 2.0\n'
                     '[[outbound]]\nlines = "hotline_e2e:2-3"\nresult = "answer"\nring = 2.0\n'
                     'script = [{ after = 3.0, hangup = true }]\n'),
}


@pytest.mark.parametrize("target", list(OVERFLOW))
def test_max_wait_overflows(e2e, tmp_path, prompt_library, target):
    """Nobody is ready in `service` (zhang logged in, not ready); after 4 s the caller
    goes to another queue (li answers), to an external number on the pstn trunk
    group (the far end answers; with number-glare the exchange first rings in on
    the line the ACD seizes), or to the queue's voicemail box."""
    cfg, outbound = OVERFLOW[target]
    acd = agents("zhang", "li", zhang='start = "not_ready"') + (
        '\n[queues.service]\nmembers = ["zhang"]\nmax_wait = 4\n' + cfg)
    script = '[{ after = 9.0, digits = "#" }]' if target == "voicemail" else None
    sc = scenario(phone("li", talk=2.0), caller(1.0, 0, N[0], script=script), outbound)
    nrec = {"number": 2, "number-glare": 4}.get(target, 1)
    r = run(e2e, tmp_path, acd, sc, until=done(e2e, nrec))
    cid = call_id_of(r, N[0])
    over, = [o for o in data(r, "acd.overflow") if o["call_id"] == cid]
    assert over["queue"] == "service" and over["reason"] == "max wait" and over["wait_ms"] == 4000
    rec = caller_record(r, N[0])
    me = r.calls_on(0, "in")[0]
    if target == "queue":
        assert over["target"] == "queue backup"
        d, = decisions(r)
        # the caller keeps the time already waited: the backup queue's decision is
        # made at 4 s of waiting, and the answer is counted from the first arrival
        assert d["queue"] == "backup" and d["chosen"] == ["li"] and d["wait_ms"] == 4000
        o = outcome(r, cid)
        assert (o["outcome"], o["queue"], o["agent"]) == ("answered", "backup", "li")
        assert o["wait_ms"] == pytest.approx(5000, abs=60)            # + li's 1 s to answer
        assert rec.agent == "li" and rings(r, "li")[0]["answer"] is not None
    elif target.startswith("number"):
        line = 1 if target == "number" else 2
        assert over["target"] == "number 13800138000 via pstn"
        assert over["hunt"]["line"] == "hotline:1"                 # ascending; 0 is the caller's
        assert outcome(r, cid)["outcome"] == "overflowed"
        if target == "number-glare":
            g, = data(r, "acd.glare")
            assert (g["call_id"], g["line"], g["retry"]) == (cid, "hotline:1", "hotline:2")
            gl, = r.calls_on(1, "in")                 # the glare caller got the line, answered
            assert gl["glare"] and gl["answer"] is not None and r.calls_on(1, "out") == []
            assert [x.direction for x in r.server.records if x.chan == 1] == ["outbound", "inbound"]
        out, = r.calls_on(line, "out")
        assert out["dialled"] == "13800138000" and out["answer"] is not None
        bridge, = r.events("call.bridge")
        assert bridge.chan == 0 and bridge.data["line"] == line
        # bridged until the far end hung up; then the server cleared the caller
        assert me["hangup"] == pytest.approx(out["hangup"], abs=0.1)
        assert me["who_hung_up"] == "host"
    else:
        assert over["target"] == "voicemail queue"
        o = outcome(r, cid)
        assert (o["outcome"], o["mailbox"]) == ("voicemail", "100")
        saved, = data(r, "acd.voicemail_saved")
        assert (saved["mailbox"], saved["reason"]) == ("100", "terminator")
        at = heard(e2e, r, 0, prompt_library, "leave_message", "message_saved", "goodbye")
        # the greeting right at the max wait, the closing prompts after the # at 9 s
        assert len(at["leave_message"]) == 1 and at["leave_message"][0] == pytest.approx(4.0, abs=0.1)
        assert len(at["message_saved"]) == 1 and 9.0 < at["message_saved"][0] < 9.5
        assert len(at["goodbye"]) == 1 and at["goodbye"][0] > at["message_saved"][0]
        assert rec.reason == "acd: voicemail done" and me["who_hung_up"] == "host"
    assert not data(r, "acd.ring_timeout") and rings(r, "zhang") == []


# ------------------------------------------------------------------ nobody logged in, exit key
def test_nobody_logged_in_join_empty_and_leave_when_empty(e2e, tmp_path, prompt_library):
    """`service` refuses callers while nobody is logged in (join_empty = false) and
    sends them to `backup`; `backup` lets them join but sends them on as soon as
    it has nobody logged in either (leave_when_empty): to mailbox 200."""
    acd = agents("zhang", zhang='start = "logged_out"') + (
        '\n[queues.service]\nmembers = ["zhang"]\njoin_empty = false\n'
        'empty = { queue = "backup" }\n'
        '\n[queues.backup]\nmembers = ["zhang"]\nleave_when_empty = true\n'
        'empty = { voicemail = "200" }\n')
    sc = scenario(phone("zhang"), caller(1.0, 0, N[0], hangup_after=8.0))
    r = run(e2e, tmp_path, acd, sc, until=done(e2e, 1))
    cid = call_id_of(r, N[0])
    refused, = data(r, "acd.join_refused")
    assert (refused["queue"], refused["why"]) == ("service", "no agent logged in (join_empty = false)")
    hops = [(o["queue"], o["target"], o["reason"]) for o in data(r, "acd.overflow")]
    assert hops == [("service", "queue backup", "queue empty"),
                    ("backup", "voicemail 200", "queue empty (leave_when_empty)")]
    o = outcome(r, cid)
    assert (o["outcome"], o["mailbox"], o["queue"]) == ("voicemail", "200", "backup")
    at = heard(e2e, r, 0, prompt_library, "leave_message")
    assert at["leave_message"] and at["leave_message"][0] < 0.2      # at once, no waiting
    saved, = data(r, "acd.voicemail_saved")
    assert saved["reason"] == "caller_left"
    assert not decisions(r) and rings(r, "zhang") == []


def test_exit_key_leaves_the_queue_for_its_target(e2e, tmp_path, prompt_library):
    acd = agents("zhang", zhang='start = "not_ready"') + (
        '\n[queues.service]\nmembers = ["zhang"]\nexit_key = "*"\n'
        'exit = { voicemail = "queue" }\nmailbox = "100"\n')
    sc = scenario(caller(1.0, 0, N[0], script='[{ after = 3.0, digits = "5" }, '
                                              '{ after = 1.0, digits = "*" }]', hangup_after=12.0))
    r = run(e2e, tmp_path, acd, sc, until=done(e2e, 1))
    cid = call_id_of(r, N[0])
    over, = data(r, "acd.overflow")
    assert (over["reason"], over["target"]) == ("exit key *", "voicemail queue")
    assert outcome(r, cid)["outcome"] == "voicemail"
    me = r.calls_on(0, "in")[0]
    star = [d["at"] for d in me["digits"] if d["digits"] == "*"][0] - me["answer"]
    at = heard(e2e, r, 0, prompt_library, "leave_message")
    # "5" is not the exit key: nothing happened then; "*" leads to the greeting at once
    assert len(at["leave_message"]) == 1 and 0 < at["leave_message"][0] - star < 0.3
    assert [e.data["digit"] for e in r.events("call.digit")] == ["5", "*"]


# ------------------------------------------------------------------ announcements, VIP
def test_position_and_expected_wait_are_announced_periodically(e2e, tmp_path, prompt_library):
    """A first short call (2 s) gives the queue its handle time; then zhang wraps
    up (30 s) and li talks (13 s) while two more callers wait. Each hears, 2 s
    after joining and then every 6 s, its place in line and the expected wait
    (under a minute); the second hears "number 2" until the first is taken by
    li, then "number 1"."""
    acd = agents("zhang", "li", zhang="wrapup = 30") + (
        '\n[queues.service]\nstrategy = "top-down"\nmembers = ["zhang", "li"]\n'
        'announce_first = 2\nannounce_every = 6\n')
    sc = scenario(phone("zhang", talk=2.0), phone("li", talk=13.0),
                  caller(1.0, 0, N[0]), caller(5.0, 1, N[1]), caller(6.5, 2, N[2]),
                  caller(7.0, 3, N[3], hangup_after=20.0))
    r = run(e2e, tmp_path, acd, sc, until=done(e2e, 4))
    names = ("you_are_caller_number", "n1", "n2", "in_the_queue", "expected_wait",
             "less_than_a_minute")
    c = heard(e2e, r, 2, prompt_library, *names)
    d = heard(e2e, r, 3, prompt_library, *names)
    assert c["you_are_caller_number"] == pytest.approx([2.0, 8.0], abs=0.1), c
    assert d["you_are_caller_number"] == pytest.approx([2.0, 8.0, 14.0], abs=0.1), d
    for who, places in ((c, ["n1", "n1"]), (d, ["n2", "n2", "n1"])):
        said = []
        for t in who["you_are_caller_number"]:
            said += [n for n in ("n1", "n2") if any(t + 1.3 < x < t + 1.6 for x in who[n])]
        assert said == places, who
        assert len(who["in_the_queue"]) == len(places)
        assert len(who["expected_wait"]) == len(places) == len(who["less_than_a_minute"])
    # nobody waiting hears an announcement: the first two callers were rung at once
    first = heard(e2e, r, 0, prompt_library, "you_are_caller_number")
    assert first["you_are_caller_number"] == []
    assert caller_record(r, N[2]).agent == "li"
    assert outcome(r, call_id_of(r, N[3]))["outcome"] == "abandoned"


def test_vip_caller_jumps_the_queue(e2e, tmp_path):
    acd = agents("zhang") + ('\n[queues.service]\nmembers = ["zhang"]\n'
                             'vip = ["+86 139 0000 8888"]\nvip_priority = 10\n')
    sc = scenario(phone("zhang", talk=2.0), caller(1.0, 0, N[0]), caller(2.5, 1, N[1]),
                  caller(3.0, 2, VIP))
    r = run(e2e, tmp_path, acd, sc, until=done(e2e, 3))
    a, b, v = call_id_of(r, N[0]), call_id_of(r, N[1]), call_id_of(r, VIP)
    joined = {j["call_id"]: j for j in data(r, "acd.joined")}
    assert (joined[b]["priority"], joined[b]["position"]) == (0, 1)
    assert (joined[v]["priority"], joined[v]["position"]) == (10, 1)     # ahead of b at once
    assert [d["call_id"] for d in decisions(r)] == [a, v, b]
    assert decisions(r)[1]["priority"] == 10
    # the phone's second and third calls: the VIP's line first, although b came first
    z = rings(r, "zhang")
    assert len(z) == 3 and z[1]["ring"][0] < z[2]["ring"][0]
    assert outcome(r, v)["wait_ms"] < outcome(r, b)["wait_ms"]
    # the agent answered the VIP first (`answer` is when each line was answered: b's first)
    assert caller_record(r, VIP).agent_answer < caller_record(r, N[1]).agent_answer
    assert caller_record(r, N[1]).answer < caller_record(r, VIP).answer
