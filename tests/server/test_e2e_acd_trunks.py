"""Calls out on exchange lines, end to end: agents reached at an external number
through the `pstn` trunk group, and glare (hwsim's exchange seizes a line for
an incoming caller at the moment the server seizes it to call out).

hwsim: lines hotline:0-3 with DTMF caller ID, loop-drop disconnect and battery
reversal on answer (answer supervision for the calls the host dials).
"""
from __future__ import annotations

import os

import pytest

from acdkit import (
    HEAD,
    agents,
    call_id_of,
    caller,
    caller_record,
    data,
    decisions,
    done,
    outcome,
    phone,
    rings,
    run,
    scenario,
    server_config,
)

A = "13911110001"
MOBILE = "13800138000"
SPEECH = os.path.abspath("prompts/en/business_hours.wav")    # what the far end says (3.6 s)


class AgentStates:
    """The agent's state after every bus event (deduplicated): a subscriber the
    run's `until` installs on its first call, before the first tick's events."""

    def __init__(self, agent: str) -> None:
        self.agent = agent
        self.seen: list[str] = []
        self._on = False

    def __call__(self, server) -> bool:
        if not self._on:
            self._on = True
            server.bus.subscribe(lambda ev: self._sample(server))
        return True

    def _sample(self, server) -> None:
        st = server.acd.acd.agents[self.agent].state.value
        if not self.seen or self.seen[-1] != st:
            self.seen.append(st)


def test_external_agent_is_dialled_on_a_trunk_answers_and_is_bridged(e2e, tmp_path):
    """The queue's only agent is a mobile number: the ACD seizes a pstn line (the
    hunt is descending: line 3), dials, the far end answers (battery reversal),
    the caller is bridged with it and hears it speak; the agent's state goes
    ringing -> on call -> wrap-up -> ready as for a phone on the card."""
    acd = (f'[agents.mobile]\nnumber = "{MOBILE}"\ntrunk = "pstn"\nwrapup = 3\n'
           '\n[queues]\ntrunk_hunt = { pstn = "descending" }\n'
           '\n[queues.service]\nmembers = ["mobile"]\n')
    sc = scenario(caller(1.0, 0, A),
                  '[[outbound]]\nresult = "answer"\nring = 3.0\n'
                  f'script = [{{ after = 1.0, play = "{SPEECH}" }}, {{ after = 1.0, hangup = true }}]\n')
    states = AgentStates("mobile")
    until = done(e2e, 2)
    r = run(e2e, tmp_path, acd, sc,
            until=lambda s: states(s) and until(s) and s.acd.acd.agents["mobile"].state.value == "ready")
    cid = call_id_of(r, A)
    d, = decisions(r)
    assert d["chosen"] == ["mobile"] and d["hunt"]["mobile"]["line"] == "hotline:3"
    assert d["hunt"]["mobile"]["order"] == ["hotline:3", "hotline:2", "hotline:1", "hotline:0"]
    # hwsim: line 3 was seized and dialled, the far end answered after 3 s of ringback
    out, = r.calls_on(3, "out")
    assert out["dialled"] == MOBILE and out["result"] == "answer" and out["who_hung_up"] == "caller"
    rec_out = [x for x in r.server.records if x.chan == 3][0]
    assert rec_out.direction == "outbound" and rec_out.called == MOBILE
    assert r.sim_s(rec_out.answer) == pytest.approx(out["answer"], abs=0.05)
    # bridged: the caller hears what the far end says, when it says it
    bridge, = r.events("call.bridge")
    assert (bridge.chan, bridge.data["line"], bridge.data["agent"]) == (0, 3, "mobile")
    me = r.calls_on(0, "in")[0]
    from dsp.audiofile import read_audio
    words = read_audio(SPEECH)[0]
    found = e2e.find_prompt(r.heard_alaw(me), words)
    assert len(found) == 1 and found[0][0] == pytest.approx(out["answer"] + 1.0 - me["answer"], abs=0.1)
    # the far end hung up: the caller's call ended with it, answered by mobile
    o = outcome(r, cid)
    assert (o["outcome"], o["agent"]) == ("answered", "mobile")
    assert caller_record(r, A).agent == "mobile" and me["who_hung_up"] == "host"
    # the agent's state machine, as for an agent on a phone
    assert states.seen == ["ready", "ringing", "on_call", "wrap_up", "ready"]
    ended, = data(r, "acd.call_ended")
    assert ended["agent"] == "mobile" and ended["agent_state"] == "wrap_up"
    over = [e for e in r.events("acd.agent") if e.data["why"] == "wrap-up over"]
    end_tick = r.events("acd.call_ended")[0].tick
    assert len(over) == 1 and (over[0].tick - end_tick) * 20 == pytest.approx(3000, abs=20)


GLARE_CALLER = "13922220000"


def test_glare_on_an_agent_trunk_retries_on_the_next_line_and_serves_the_incoming_call(e2e, tmp_path):
    """The ACD seizes line 0 to dial the mobile agent just as the exchange seizes
    it for an incoming call (hwsim's glare caller). The incoming call wins the
    line and is served as any inbound call (queued, taken by zhang); the ring to
    the mobile is retried on line 1, answered and bridged."""
    acd = (f'[agents.mobile]\nnumber = "{MOBILE}"\ntrunk = "pstn"\n\n' + agents("zhang")
           + '\n[queues]\nglare_retries = 2\n'
           '\n[queues.service]\nstrategy = "top-down"\nmembers = ["mobile", "zhang"]\n')
    sc = scenario(phone("zhang", talk=3.0), caller(1.0, 3, A),
                  f'[[caller]]\nat = 0.5\nline = "hotline_e2e:0"\nnumber = "{GLARE_CALLER}"\n'
                  'glare = true\nhangup_after = 30.0\n',
                  '[[outbound]]\nlines = "hotline_e2e:1-2"\nresult = "answer"\nring = 2.0\n'
                  'script = [{ after = 4.0, hangup = true }]\n')
    r = run(e2e, tmp_path, acd, sc, until=done(e2e, 4))
    cid = call_id_of(r, A)
    first = decisions(r)[0]
    assert first["call_id"] == cid and first["chosen"] == ["mobile"]
    assert first["hunt"]["mobile"]["line"] == "hotline:0"
    g, = data(r, "acd.glare")
    assert (g["call_id"], g["agent"], g["line"], g["retry"]) == (cid, "mobile", "hotline:0", "hotline:1")
    assert {"line": "hotline:0", "why": "glare on this line: not retried"} in g["hunt"]["skipped"]
    assert not data(r, "acd.ring_failed")              # a glare is no miss: the ring goes on
    # the server: the outbound call on line 0 ended as glare, and line 0 carried an
    # inbound call instead, answered at once (no caller ID: none comes on a glare)
    line0 = [x for x in r.server.records if x.chan == 0]
    assert [(x.direction, x.reason.split(":")[0]) for x in line0] == [
        ("outbound", "glare"), ("inbound", "other party hung up")]
    glare_ev, = r.events("call.glare")
    assert glare_ev.chan == 0 and glare_ev.data["number"] == MOBILE
    inbound = line0[1]
    assert inbound.caller is None and inbound.agent == "zhang" and inbound.answer is not None
    # hwsim: the glare caller was connected by the host's seizure and talked to zhang
    gl, = r.calls_on(0, "in")
    assert gl["glare"] and gl["answer"] is not None and gl["number"] == GLARE_CALLER
    assert r.calls_on(0, "out") == []                  # the host never got dial tone there
    z, = rings(r, "zhang")
    assert z["answer"] is not None
    # the retry: line 1 dialled the mobile, answered, bridged with the first caller
    out, = r.calls_on(1, "out")
    assert out["dialled"] == MOBILE and out["answer"] is not None
    bridges = {e.chan: e.data for e in r.events("call.bridge")}
    assert bridges[3]["line"] == 1 and bridges[3]["agent"] == "mobile"
    assert bridges[0]["line"] == 4 and bridges[0]["agent"] == "zhang"
    assert outcome(r, cid)["agent"] == "mobile"
    assert r.server.acd.acd.agents["mobile"].misses == 0


def test_glare_on_an_ivr_transfer_retries_on_the_next_line(e2e, tmp_path):
    """The IVR's transfer seizes its line through the same hunt group: glare on
    line 0 moves it to line 1, and the incoming call on line 0 gets the IVR."""
    head = HEAD.replace('action = "queue"\nqueue = "service"',
                        f'action = "transfer"\nnumber = "{MOBILE}"\ntrunk = "pstn"')
    assert 'action = "transfer"' in head
    cfg = server_config(tmp_path, "", head=head)
    sc = scenario(caller(1.0, 3, A),
                  f'[[caller]]\nat = 0.5\nline = "hotline_e2e:0"\nnumber = "{GLARE_CALLER}"\n'
                  'glare = true\nhangup_after = 30.0\n',
                  *(['[[outbound]]\nlines = "hotline_e2e:1-2"\nresult = "answer"\nring = 2.0\n'
                     'script = [{ after = 3.0, hangup = true }]\n'] * 2))
    # records: the glared seizure and the inbound call on line 0, both callers' transfers
    r = e2e.run(scenario=sc, server_config=cfg, hwsim_config="hwsim-acd.toml",
                until=done(e2e, 5), max_sim_seconds=60)
    retry, = data(r, "call.transfer_retry")
    assert (retry["why"], retry["line"], retry["retry"]) == ("glare", "hotline:0", "hotline:1")
    assert retry["chan"] == 3 and retry["call_id"] == call_id_of(r, A)
    assert not data(r, "call.transfer_failed")
    # the first caller: transferred over line 1; the glare caller (line 0, the IVR
    # transfers it too) over line 2
    bridges = {e.chan: e.data.get("trunk") for e in r.events("call.bridge")}
    assert bridges == {3: 1, 0: 2}
    for line in (1, 2):
        out, = r.calls_on(line, "out")
        assert out["dialled"] == MOBILE and out["answer"] is not None
    gl, = r.calls_on(0, "in")
    assert gl["glare"] and gl["answer"] is not None
