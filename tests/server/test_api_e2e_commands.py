"""The network API's commands on the real server, end to end: hwsim (a separate lockstep
process) plays the caller and the agent at phone hotline:4; the server runs the queue; the
test is an ACD program and an agent's desktop over real HTTP and WebSocket on loopback.

Agent 1001 (a numeric id) answers a caller. Then, each step once the one before has been
answered: the monitor user's hold is refused (403); the agent user holds its own call (the
caller hears music on hold from that tick), retrieves it, and may not make agent 1002 ready
(403); the integration user pauses and resumes the call's recording; the agent user sets
itself not ready with a reason code (pending: it is on a call) and the integration user hangs
the call up with a reason. The events, the call record, the recording, the agent's state and
the audit log show each; the agent user's event stream had its own call's events and nothing
of agent 1002.
"""
from __future__ import annotations

import json

from apiscriptkit import FLOW_TO_MENU, FLOW_TO_QUEUE, TICK, ApiScript, after, on_call, trunk_call

from acdkit import HEAD, HWSIM, caller, data, phone, run, scenario, server_config

USERS = """
[[api.user]]
name = "desk1001"
role = "agent"
agent = 1001
token_file = "desk1001-token"

[[api.user]]
name = "acd"
role = "integration"
token_file = "acd-token"

[[api.user]]
name = "mon"
role = "monitor"
token_file = "mon-token"
"""
ACD = """
[agents.1001]
phone = "hotline:4"

[agents.1002]
phone = "hotline:5"
start = "not_ready"

[queues.service]
members = ["1001"]

[recording]
layout = "stereo"

[api]
""" + USERS


def test_hold_retrieve_record_pause_resume_not_ready_with_a_reason_and_hang_up_over_the_api(
        e2e, tmp_path, prompt_library):
    script = ApiScript(
        (on_call, [("mon", "POST", "/v1/calls/{call}/hold", None),
                   ("desk1001", "POST", "/v1/calls/{call}/hold", None)]),
        (after("call.hold", 150), [("desk1001", "POST", "/v1/calls/{call}/retrieve", None),
                                   ("desk1001", "POST", "/v1/agents/1002/ready", None)]),
        (after("call.unhold"), [("acd", "POST", "/v1/calls/{call}/record-pause", None)]),
        (after("recording.paused"), [("acd", "POST", "/v1/calls/{call}/record-resume", None)]),
        (after("recording.resumed"), [
            ("desk1001", "POST", "/v1/agents/1001/not-ready", {"reason": "after-call-work"}),
            ("acd", "POST", "/v1/calls/{call}/hangup", {"reason": "closed by the ACD"})]),
    )
    # the agent's phone hangs up long after the API has ended the call (hwsim's person at it
    # does not notice the caller gone); the caller never hangs up: the API does
    sc = scenario(phone("zhang", answer_after=1.0, talk=40.0), caller(1.0, 0, "13911110050", hangup_after=None),
                  duration=120.0)
    try:
        r = run(e2e, tmp_path, ACD, sc, api_port=0, max_sim_seconds=100,
                until=lambda s: script(s) and len(s.records) >= 1 and e2e.all_idle(s))
    finally:
        script.stop()
    (mon_hold, hold), (retrieve, other_agent), (pause,), (resume,), (not_ready, hangup) = script.answers
    call_id = hold[1]["call_id"]
    assert mon_hold[0] == 403 and "role monitor" in mon_hold[1]["error"]
    assert hold == (200, {"call_id": call_id, "held": True, "changed": True, "phone": 4})
    assert retrieve[0] == 200 and retrieve[1]["held"] is False
    assert other_agent[0] == 403 and "only its own agent '1001'" in other_agent[1]["error"]
    assert pause[0] == 200 and pause[1]["paused"] is True and resume[1]["paused"] is False
    assert not_ready[0] == 200 and not_ready[1]["pending"] == "not_ready" and not_ready[1]["agent"] == "1001"
    assert hangup == (200, {"hung_up": call_id, "reason": "closed by the ACD"})
    # the effects: events, what the caller heard, the record, the agent
    held, = r.events("call.hold")
    unheld, = r.events("call.unhold")
    assert held.call_id == unheld.call_id == call_id and held.data["why"] == "network API (desk1001)"
    assert held.data["agent"] == "1001"
    call = r.calls_on(0, "in")[0]
    moh = prompt_library.music_on_hold("default")[:16000]
    found = [round(t, 2) for t, _ in e2e.find_prompt(r.heard_alaw(call), moh)]
    t_hold = held.tick * TICK - call["answer"]
    # from the hold on (the command lands between two ticks: its media go out a tick or two later)
    assert any(0 <= t - t_hold < 0.1 for t in found), (found, t_hold)
    paused, = r.events("recording.paused")
    resumed, = r.events("recording.resumed")
    assert paused.call_id == resumed.call_id == call_id and "network API (acd)" in paused.data["reason"]
    end, = [e for e in r.events("call.end") if e.call_id == call_id and e.chan == 0]
    assert end.tick * TICK < call["answer"] + 30       # the API's hang-up, not the phone's
    assert end.data["reason"] == "closed by the ACD"
    rec, = r.server.records
    assert rec.call_id == call_id and rec.reason == "closed by the ACD" and rec.agent == "1001"
    agent_1001 = [d for d in data(r, "acd.agent") if d["agent"] == "1001"]
    assert agent_1001[-1]["why"] == "after-call-work"          # asked on the call: pending, then applied
    ended, = data(r, "acd.call_ended")
    assert ended["agent"] == "1001" and ended["agent_state"] == "not_ready"
    row, = [a for a in r.server.acd.acd.agent_rows(r.server.live_ms()) if a["name"] == "1001"]
    assert row["state"] == "not_ready" and row["reason"] == "after-call-work"
    # the audit log: who, what, the result
    audit = [json.loads(line) for line in (r.workdir / "admin-audit.jsonl").read_text().splitlines()]
    assert [(a["api_user"], a["role"], a["path"].replace(call_id, "ID"), a["status"], a["result"])
            for a in audit] == [
        ("mon", "monitor", "/v1/calls/ID/hold", 403, "refused"),
        ("desk1001", "agent", "/v1/calls/ID/hold", 200, "done"),
        ("desk1001", "agent", "/v1/calls/ID/retrieve", 200, "done"),
        ("desk1001", "agent", "/v1/agents/1002/ready", 403, "refused"),
        ("acd", "integration", "/v1/calls/ID/record-pause", 200, "done"),
        ("acd", "integration", "/v1/calls/ID/record-resume", 200, "done"),
        ("desk1001", "agent", "/v1/agents/1001/not-ready", 200, "done"),
        ("acd", "integration", "/v1/calls/ID/hangup", 200, "done")]
    assert audit[-1]["detail"] == {"reason": "closed by the ACD"}
    # the agent user's stream: its call from the offer on, its state; nothing of agent 1002
    kinds = [e["kind"] for e in script.stream if e.get("call_id") == call_id]
    assert {"acd.decision", "call.hold", "call.unhold", "recording.paused", "call.end"} <= set(kinds)
    assert not any(e.get("agent") == "1002" for e in script.stream)
    assert not any(e["kind"] == "board.start" for e in script.stream)


def test_route_takes_a_caller_from_the_ivr_menu_to_the_queue_and_agent_1001_gets_it(e2e, tmp_path):
    """The caller listens to a menu that would wait a minute; 1 s into it the integration user
    routes the call to queue service: the prompt stops, the call joins the queue and agent 1001
    is rung and answers. Routing it again is a 409 (it is queued), to an unknown queue a 404,
    by the monitor a 403."""
    assert FLOW_TO_QUEUE in HEAD
    script = ApiScript(
        (after("call.play"), [("acd", "POST", "/v1/calls/{call}/route", {"queue": "nowhere"}),
                              ("mon", "POST", "/v1/calls/{call}/route", {"queue": "service"}),
                              ("acd", "POST", "/v1/calls/{call}/route", {"queue": "service"}),
                              ("acd", "POST", "/v1/calls/{call}/route", {"queue": "service"})]),
        (on_call, [("acd", "POST", "/v1/calls/{call}/hangup", {"reason": "done"})]),
    )
    script.call_of = trunk_call
    sc = scenario(phone("zhang", answer_after=1.0, talk=30.0), caller(1.0, 0, "13911110060", hangup_after=None),
                  duration=120.0)
    cfg = server_config(tmp_path, ACD, head=HEAD.replace(FLOW_TO_QUEUE, FLOW_TO_MENU))
    try:
        r = e2e.run(scenario=sc, server_config=cfg, hwsim_config=HWSIM, api_port=0, max_sim_seconds=100,
                    until=lambda s: script(s) and len(s.records) >= 1 and e2e.all_idle(s))
    finally:
        script.stop()
    (nowhere, mon, routed, again), (hangup,) = script.answers
    call_id = routed[1]["call_id"]
    assert nowhere[0] == 404 and "no queue 'nowhere' (queues: service)" in nowhere[1]["error"]
    assert mon[0] == 403
    assert routed == (200, {"call_id": call_id, "queue": "service"})
    assert again[0] == 409 and "not in the IVR" in again[1]["error"]
    assert hangup[0] == 200
    play, = [e for e in r.events("call.play") if e.call_id == call_id]
    queued, = [e for e in r.events("call.queue") if e.call_id == call_id]
    bridge, = [e for e in r.events("call.bridge") if e.call_id == call_id]
    assert queued.data["queue"] == "service" and bridge.data["agent"] == "1001"
    # routed a second into the greeting (which lasts longer), not after the menu's minute
    assert 50 <= queued.tick - play.tick < 150
    rec, = r.server.records
    assert rec.agent == "1001" and rec.ivr_path[-1] == "routed:network API (acd)" and rec.reason == "done"
    joined, = [d for d in data(r, "acd.joined") if d["call_id"] == call_id]
    assert joined["queue"] == "service"


def test_transfer_sends_a_caller_in_the_ivr_menu_blind_to_a_number_on_the_trunk_group(e2e, tmp_path):
    """1 s into the menu the integration user transfers the caller to 13800138000 over group
    pstn: the server dials it on another line of the group, hwsim's far end answers and the
    caller is bridged with it. An unknown group is a 404, a bad number a 400."""
    mobile = "13800138000"
    script = ApiScript(
        (after("call.play"), [("acd", "POST", "/v1/calls/{call}/transfer", {"number": mobile, "trunk": "nope"}),
                              ("acd", "POST", "/v1/calls/{call}/transfer", {"number": "13x", "trunk": "pstn"}),
                              ("acd", "POST", "/v1/calls/{call}/transfer", {"number": mobile, "trunk": "pstn"})]),
    )
    script.call_of = trunk_call
    sc = scenario(caller(1.0, 0, "13911110070", hangup_after=None),
                  '[[outbound]]\nlines = "hotline_e2e:1-3"\nresult = "answer"\nring = 2.0\n'
                  'script = [{ after = 3.0, hangup = true }]\n', duration=120.0)
    cfg = server_config(tmp_path, ACD, head=HEAD.replace(FLOW_TO_QUEUE, FLOW_TO_MENU))
    try:
        r = e2e.run(scenario=sc, server_config=cfg, hwsim_config=HWSIM, api_port=0, max_sim_seconds=100,
                    until=lambda s: script(s) and len(s.records) >= 2 and e2e.all_idle(s))
    finally:
        script.stop()
    ((group, bad, done),) = script.answers
    call_id = done[1]["call_id"]
    assert group[0] == 404 and "no trunk group 'nope' (groups: pstn)" in group[1]["error"]
    assert bad[0] == 400 and "number: 1 to 32 of 0-9 * #" in bad[1]["error"]
    assert done == (200, {"call_id": call_id, "number": mobile, "trunk": "pstn"})
    bridge, = r.events("call.bridge")        # the caller's line with the outbound leg (its own call id)
    out, = [c for line in (1, 2, 3) for c in r.calls_on(line, "out")]
    assert out["dialled"] == mobile and out["answer"] is not None
    assert bridge.chan == 0 and bridge.data["trunk"] in (1, 2, 3)
    rec = next(x for x in r.server.records if x.call_id == call_id)
    assert rec.chan == 0 and rec.ivr_path[-1] == "routed:network API (acd)" and rec.agent is None
    assert rec.reason == "other party hung up"          # the far end hung up after 3 s
    assert not data(r, "acd.joined")


def test_ivr_sends_a_caller_to_a_play_action_whose_prompt_list_plays_then_queues_it(e2e, tmp_path,
                                                                                     prompt_library):
    """1 s into the menu greeting the integration user sends the caller to action `hours` (a
    play of business_hours, then the queue): the greeting stops, business_hours plays to the
    caller (hwsim hears it), then the call joins the queue and agent 1001 gets it."""
    head = HEAD.replace(FLOW_TO_QUEUE, FLOW_TO_MENU) + (
        '\n[ivr.actions.hours]\naction = "play"\nprompts = ["business_hours"]\nthen = "q"\n')
    script = ApiScript(
        (after("call.play"), [("acd", "POST", "/v1/calls/{call}/ivr", {"menu": "nowhere"}),
                              ("acd", "POST", "/v1/calls/{call}/ivr", {"action": "hours"})]),
        (on_call, [("acd", "POST", "/v1/calls/{call}/hangup", {"reason": "done"})]),
    )
    script.call_of = trunk_call
    sc = scenario(phone("zhang", answer_after=1.0, talk=30.0), caller(1.0, 0, "13911110080", hangup_after=None),
                  duration=120.0)
    cfg = server_config(tmp_path, ACD, head=head)
    try:
        r = e2e.run(scenario=sc, server_config=cfg, hwsim_config=HWSIM, api_port=0, max_sim_seconds=100,
                    until=lambda s: script(s) and len(s.records) >= 1 and e2e.all_idle(s))
    finally:
        script.stop()
    ((nowhere, jumped), (hangup,)) = script.answers
    call_id = jumped[1]["call_id"]
    assert nowhere[0] == 404 and "no menu 'nowhere' (menus: wait)" in nowhere[1]["error"]
    assert jumped == (200, {"call_id": call_id, "menu": None, "action": "hours"}) and hangup[0] == 200
    greeting, hours = [e for e in r.events("call.play") if e.call_id == call_id]
    assert greeting.data["items"][0] == "main_menu" and hours.data["items"] == ["business_hours"]
    assert 50 <= hours.tick - greeting.tick < 150             # a second into the greeting
    queued, = [e for e in r.events("call.queue") if e.call_id == call_id]
    bridge, = [e for e in r.events("call.bridge") if e.call_id == call_id]
    assert queued.tick > hours.tick + 100 and bridge.data["agent"] == "1001"   # after the prompt (~3.6 s)
    # what the caller heard: business_hours from the jump on
    call = r.calls_on(0, "in")[0]
    heard = r.heard_alaw(call)
    said, = e2e.find_prompt(heard, prompt_library.get("business_hours", "zh"))
    assert 0 <= said[0] - (hours.tick * TICK - call["answer"]) < 0.1
    assert not e2e.find_prompt(heard, prompt_library.get("press_3_message", "zh"))   # the greeting stopped
    rec, = r.server.records
    assert "jump:network API (acd)" in rec.ivr_path and rec.agent == "1001"
