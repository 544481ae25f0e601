"""Supervisor functions end to end: the real server on hwsim (a separate lockstep process), a
supervisor user on the network API over real HTTP, and the far ends checking what each party
hears.

The caller, agent 1001 (phone hotline:4) and the supervisor's phone (hotline:6) each play
their own tone into the line: 600, 1000 and 1400 Hz. hwsim keeps what the server sent each of
them; in each stretch of the call the test looks for the three tones in each party's audio:

- listen: the supervisor hears the caller and the agent; neither hears the supervisor;
- whisper: the agent hears the supervisor; the caller does not;
- barge: all three hear the other two;
- intercept: the caller and the supervisor hear each other; the agent's leg is dropped.

Nobody ever hears their own tone back (the engine's mix gives each party the others only).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from apiscriptkit import SUPERVISED_ACD as ACD
from apiscriptkit import TONES, ApiScript, after, heard_between, later, on_call, tone_file, trunk_call

from acdkit import HWSIM, caller, data, phone, scenario, server_config

TICK = 0.02
SUP = {"supervisor": "hotline:6"}


def joined(s: Any) -> bool:
    return any(e.kind == "call.supervise" and e.data.get("state") == "joined" for e in s.bus.journal)


def run_supervised(e2e: Any, tmp_path: Path, script: ApiScript, *, sup_talk: float,
                   party: bool = False) -> Any:
    """One call: the caller on hotline:0, agent 1001 on hotline:4, the supervisor's phone
    hotline:6; each plays its tone from its answer on (the supervisor for `sup_talk` s);
    `party`: a fourth phone, hotline:5, plays its own."""
    sc = scenario(
        '[[agent]]\nphones = "hotline_e2e:5"\nanswer_after = 1.0\n'
        f'script = [{{ after = 0.2, play = "{tone_file(tmp_path, "party", 20.0)}" }}, '
        '{ after = 0.1, hangup = true }]\n' if party else "",
        phone("zhang", answer_after=1.0,
              script=f'[{{ after = 0.2, play = "{tone_file(tmp_path, "agent", 20.0)}" }}, '
                     f'{{ after = 0.1, hangup = true }}]'),
        '[[agent]]\nphones = "hotline_e2e:6"\nanswer_after = 1.0\n'
        f'script = [{{ after = 0.2, play = "{tone_file(tmp_path, "supervisor", sup_talk)}" }}, '
        '{ after = 0.1, hangup = true }]\n',
        caller(1.0, 0, "13911110090", hangup_after=None,
               script=f'[{{ after = 0.5, play = "{tone_file(tmp_path, "caller", 30.0)}" }}]'),
        duration=120.0)
    cfg = server_config(tmp_path, ACD)
    script.call_of = trunk_call
    try:
        return e2e.run(scenario=sc, server_config=cfg, hwsim_config=HWSIM, api_port=0, max_sim_seconds=100,
                       until=lambda s: script(s) and len(s.records) >= 1 and e2e.all_idle(s))
    finally:
        script.stop()


def test_listen_whisper_barge_each_party_hears_what_its_mode_says(e2e, tmp_path):
    script = ApiScript(
        (on_call, [("acd", "POST", "/v1/calls/{call}/listen", SUP),
                   ("desk1001", "POST", "/v1/calls/{call}/listen", SUP),
                   ("boss", "POST", "/v1/calls/{call}/listen", SUP),
                   ("boss", "POST", "/v1/calls/{call}/listen", {"supervisor": "1001"})]),
        (lambda s: joined(s) and later("call.supervise", 100, 2)(s),
         [("boss", "POST", "/v1/calls/{call}/whisper", SUP)]),
        (later("call.supervise", 100, 3), [("boss", "POST", "/v1/calls/{call}/barge", SUP)]),
        (later("call.supervise", 100, 4), [("boss", "POST", "/v1/calls/{call}/hangup", {"reason": "done"})]),
    )
    r = run_supervised(e2e, tmp_path, script, sup_talk=20.0)
    (integration, agent_user, listen, second), (whisper,), (barge,), (hangup,) = script.answers
    call_id = listen[1]["call_id"]
    assert integration[0] == 403 and "admin or supervisor" in integration[1]["error"]
    assert agent_user[0] == 403
    assert listen == (200, {"call_id": call_id, "supervisor": "hotline:6", "phone": 6, "mode": "listen",
                            "joined": False})
    assert second[0] == 409 and "1001 is a party of call" in second[1]["error"]
    assert whisper[1]["mode"] == "whisper" and whisper[1]["joined"] is True and barge[1]["mode"] == "barge"
    assert hangup[0] == 200
    ringing, joined_, whispering, barging = [e for e in r.events("call.supervise")]
    assert [e.data["state"] for e in (ringing, joined_, whispering, barging)] == [
        "ringing", "joined", "changed", "changed"]
    assert joined_.data["agent"] == "1001" and joined_.data["why"] == "network API (boss)"
    end, = r.events("call.supervise_end")
    assert end.call_id == call_id and end.data["phone"] == 6
    hangup_tick = [e for e in r.events("call.end") if e.chan == 0][0].tick
    caller_call = r.calls_on(0, "in")[0]
    agent_call = r.calls_on(4, "in")[0]
    sup_call = r.calls_on(6, "in")[0]
    windows = {"listen": (joined_.tick, whispering.tick), "whisper": (whispering.tick, barging.tick),
               "barge": (barging.tick, hangup_tick)}
    heard = {mode: {who: heard_between(r, call, a, b)
                    for who, call in (("caller", caller_call), ("agent", agent_call), ("supervisor", sup_call))}
             for mode, (a, b) in windows.items()}
    assert heard == {
        "listen": {"caller": {"agent"}, "agent": {"caller"}, "supervisor": {"caller", "agent"}},
        "whisper": {"caller": {"agent"}, "agent": {"caller", "supervisor"}, "supervisor": {"caller", "agent"}},
        "barge": {"caller": {"agent", "supervisor"}, "agent": {"caller", "supervisor"},
                  "supervisor": {"caller", "agent"}},
    }, heard
    # the audit log: who asked what, the result
    audit = [json.loads(line) for line in (r.workdir / "admin-audit.jsonl").read_text().splitlines()]
    assert [(a["api_user"], a["path"].replace(call_id, "ID"), a["status"]) for a in audit] == [
        ("acd", "/v1/calls/ID/listen", 403), ("desk1001", "/v1/calls/ID/listen", 403),
        ("boss", "/v1/calls/ID/listen", 200), ("boss", "/v1/calls/ID/listen", 409),
        ("boss", "/v1/calls/ID/whisper", 200), ("boss", "/v1/calls/ID/barge", 200),
        ("boss", "/v1/calls/ID/hangup", 200)]
    assert audit[2]["detail"] == SUP


def test_the_supervisor_hanging_up_leaves_the_caller_and_agent_talking(e2e, tmp_path):
    """The supervisor barges in and hangs up 3 s later: the caller and the agent hear each
    other again, and no longer the supervisor."""
    script = ApiScript(
        (on_call, [("boss", "POST", "/v1/calls/{call}/barge", SUP)]),
        (after("call.supervise_end", 100), [("boss", "POST", "/v1/calls/{call}/hangup", {"reason": "done"})]),
    )
    r = run_supervised(e2e, tmp_path, script, sup_talk=3.0)
    joined_ = [e for e in r.events("call.supervise") if e.data["state"] == "joined"][0]
    end, = r.events("call.supervise_end")
    hangup_tick = [e for e in r.events("call.end") if e.chan == 0][0].tick
    caller_call, agent_call = r.calls_on(0, "in")[0], r.calls_on(4, "in")[0]
    assert heard_between(r, caller_call, joined_.tick + 25, end.tick - 25) == {"agent", "supervisor"}
    assert heard_between(r, caller_call, end.tick, hangup_tick) == {"agent"}
    assert heard_between(r, agent_call, end.tick, hangup_tick) == {"caller"}


def test_intercept_the_supervisor_takes_the_call_and_the_agent_is_dropped(e2e, tmp_path):
    script = ApiScript(
        (on_call, [("boss", "POST", "/v1/calls/{call}/listen", SUP)]),
        (lambda s: joined(s) and later("call.supervise", 100, 2)(s),
         [("boss", "POST", "/v1/calls/{call}/intercept", SUP)]),
        (after("call.intercept", 150), [("boss", "POST", "/v1/calls/{call}/hangup", {"reason": "done"})]),
    )
    r = run_supervised(e2e, tmp_path, script, sup_talk=20.0)
    (listen,), (intercept,), (hangup,) = script.answers
    assert hangup[0] == 200, hangup
    assert intercept[0] == 200 and intercept[1]["mode"] == "intercept", intercept
    call_id = listen[1]["call_id"]
    took, = r.events("call.intercept")
    assert took.call_id == call_id and took.data["agent"] == "1001" and took.data["phone"] == 6
    agent_end = [e for e in r.events("call.end") if e.chan == 4][0]
    assert agent_end.data["reason"] == "intercepted by supervisor hotline:6"
    assert agent_end.tick <= took.tick + 1
    hangup_tick = [e for e in r.events("call.end") if e.chan == 0][0].tick
    caller_call, sup_call = r.calls_on(0, "in")[0], r.calls_on(6, "in")[0]
    assert heard_between(r, caller_call, took.tick, hangup_tick) == {"supervisor"}
    assert heard_between(r, sup_call, took.tick, hangup_tick) == {"caller"}
    ended, = data(r, "acd.call_ended")
    assert ended["agent"] == "1001" and ended["call_id"] == call_id
    rec, = r.server.records
    assert rec.call_id == call_id and rec.reason == "done"


def test_a_conference_of_four_each_hears_the_other_three(e2e, tmp_path):
    """The agent user adds the phone hotline:6 to its own call, the integration user adds
    hotline:5: the caller, the agent and the two parties each hear the other three and not
    themselves. A monitor may not add a party; a party's hang-up leaves the others talking."""
    script = ApiScript(
        (on_call, [("mon", "POST", "/v1/calls/{call}/conference", {"party": "hotline:5"}),
                   ("desk1001", "POST", "/v1/calls/{call}/conference", {"party": "hotline:6"}),
                   ("acd", "POST", "/v1/calls/{call}/conference", {"party": "hotline:5"})]),
        (lambda s: len([e for e in s.bus.journal if e.kind == "call.supervise" and e.data["state"] == "joined"]) == 2
         and later("call.supervise", 150, 4)(s),
         [("acd", "POST", "/v1/calls/{call}/hangup", {"reason": "done"})]),
    )
    r = run_supervised(e2e, tmp_path, script, sup_talk=20.0, party=True)
    (mon, six, five), (hangup,) = script.answers
    assert mon[0] == 403 and hangup[0] == 200
    assert six[1]["mode"] == five[1]["mode"] == "conference" and (six[1]["phone"], five[1]["phone"]) == (6, 5)
    joins = [e for e in r.events("call.supervise") if e.data["state"] == "joined"]
    assert sorted(e.data["phone"] for e in joins) == [5, 6]
    hangup_tick = [e for e in r.events("call.end") if e.chan == 0][0].tick
    start = max(e.tick for e in joins)
    parties = {"caller": r.calls_on(0, "in")[0], "agent": r.calls_on(4, "in")[0],
               "supervisor": r.calls_on(6, "in")[0], "party": r.calls_on(5, "in")[0]}
    heard = {who: heard_between(r, call, start, hangup_tick) for who, call in parties.items()}
    assert heard == {who: set(TONES) - {who} for who in TONES}, heard


# ---------------------------------------------------------------- consultative transfer
def test_consult_then_complete_the_caller_ends_with_the_consulted_phone(e2e, tmp_path, prompt_library):
    """Agent 1001's desk consults the phone hotline:6: the caller hears the music on hold while
    the agent and hotline:6 talk (each hears the other, not the caller); completed, the caller
    and hotline:6 hear each other and the agent's leg is dropped."""
    script = ApiScript(
        (on_call, [("desk1001", "POST", "/v1/calls/{call}/consult-complete", None),
                   ("desk1001", "POST", "/v1/calls/{call}/consult", {"party": "hotline:6"})]),
        (lambda s: any(e.kind == "call.consult" and e.data["state"] == "joined" for e in s.bus.journal)
         and later("call.consult", 100, 2)(s),
         [("desk1001", "POST", "/v1/calls/{call}/consult-complete", None)]),
        (after("call.end", 100), [("boss", "POST", "/v1/calls/{call}/hangup", {"reason": "done"})]),
    )
    r = run_supervised(e2e, tmp_path, script, sup_talk=20.0)
    (early, started), (completed,), (hangup,) = script.answers
    assert early[0] == 409 and "no consultation in progress" in early[1]["error"]
    assert started[0] == 200 and started[1]["state"] == "ringing" and started[1]["phone"] == 6
    assert completed[0] == 200 and completed[1]["state"] == "completed" and hangup[0] == 200
    states = [e.data["state"] for e in r.events("call.consult")]
    assert states == ["ringing", "joined", "completed"]
    ringing, joined_, done = r.events("call.consult")
    held, = r.events("call.hold")
    assert held.tick == ringing.tick and held.data["agent"] == "1001"
    agent_end = [e for e in r.events("call.end") if e.chan == 4][0]
    assert agent_end.data["reason"] == "transferred to hotline:6" and agent_end.tick <= done.tick + 1
    hangup_tick = [e for e in r.events("call.end") if e.chan == 0][0].tick
    caller_call, agent_call, party_call = r.calls_on(0, "in")[0], r.calls_on(4, "in")[0], r.calls_on(6, "in")[0]
    # consulting: the agent and the party hear each other; the caller hears the music
    assert heard_between(r, agent_call, joined_.tick, done.tick) == {"supervisor"}
    assert heard_between(r, party_call, joined_.tick, done.tick) == {"agent"}
    moh = prompt_library.music_on_hold("default")[:8000]
    heard = r.heard_alaw(caller_call)
    found = [t for t, _ in e2e.find_prompt(heard, moh)]
    t_hold = held.tick * TICK - caller_call["answer"]
    assert any(0 <= t - t_hold < 0.1 for t in found), (found, t_hold)
    # completed: the caller and the party
    assert heard_between(r, caller_call, done.tick, hangup_tick) == {"supervisor"}
    assert heard_between(r, party_call, done.tick, hangup_tick) == {"caller"}
    ended, = data(r, "acd.call_ended")
    assert ended["agent"] == "1001"


def test_consult_then_cancel_the_caller_is_back_with_the_agent(e2e, tmp_path):
    script = ApiScript(
        (on_call, [("desk1001", "POST", "/v1/calls/{call}/consult", {"party": "hotline:6"})]),
        (lambda s: any(e.kind == "call.consult" and e.data["state"] == "joined" for e in s.bus.journal)
         and later("call.consult", 100, 2)(s),
         [("desk1001", "POST", "/v1/calls/{call}/consult-cancel", None)]),
        (later("call.consult", 100, 3), [("acd", "POST", "/v1/calls/{call}/hangup", {"reason": "done"})]),
    )
    r = run_supervised(e2e, tmp_path, script, sup_talk=20.0)
    (started,), (cancelled,), (hangup,) = script.answers
    assert started[0] == cancelled[0] == hangup[0] == 200 and cancelled[1]["state"] == "cancelled"
    assert [e.data["state"] for e in r.events("call.consult")] == ["ringing", "joined", "cancelled"]
    unheld, = r.events("call.unhold")
    _, _, back = r.events("call.consult")
    assert unheld.tick == back.tick
    party_end = [e for e in r.events("call.end") if e.chan == 6][0]
    assert party_end.data["reason"] == "consultation cancelled"
    hangup_tick = [e for e in r.events("call.end") if e.chan == 0][0].tick
    caller_call, agent_call = r.calls_on(0, "in")[0], r.calls_on(4, "in")[0]
    assert heard_between(r, caller_call, back.tick, hangup_tick) == {"agent"}
    assert heard_between(r, agent_call, back.tick, hangup_tick) == {"caller"}
    rec, = r.server.records
    assert rec.reason == "done" and rec.agent == "1001"
