"""The API's new call commands end to end: the real server on hwsim (a separate lockstep
process), users on the network API over real HTTP, and the far ends checking what each party
hears (each plays its own tone into the line: test_api_supervisor_e2e's tones and analysis).

- mute / unmute on an agent call: the caller does not hear the muted agent, the agent does
  not hear the muted caller, both hear each other again once unmuted; record-stop ends the
  rules' recording (reason api) and record-start makes a new file (decision reason api);
- originate on the pstn group with `then: {"call": CALLER}`: hwsim's exchange answers, the
  caller in the IVR and the called party hear each other; unbridge separates them, bridge
  joins them again, and the caller's hang-up ends the originated call; an originate the
  exchange answers busy fails with cause busy, in the event and in the call record.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest
from apiscriptkit import SUPERVISED_ACD as ACD
from apiscriptkit import ApiScript, heard_between, later, on_call, tone_file

from acdkit import HEAD, HWSIM, caller, phone, scenario, server_config

RECORDED = ACD + '\n[recording]\nlayout = "stereo"\n'
# the caller waits in an IVR menu (a minute before its timeout): the originate's bridge
WAITING = HEAD.replace('start = "q"', 'start = "wait"') + """
[ivr.menus.wait]
greeting = ["welcome"]
retries = 0
first_timeout = 60000
fallback = { action = "hangup", prompts = ["goodbye"] }

[ivr.menus.wait.options]
"1" = { action = "queue", queue = "service" }
"""
OUT = "13900001111"
BUSY = "13900002222"


class Script(ApiScript):
    """ApiScript whose request bodies may be made when sent: a callable of the server."""

    async def _send(self, server: Any, requests: list[tuple[str, str, str, Any]]) -> list[tuple[int, Any]]:
        out = []
        async with aiohttp.ClientSession() as s:
            for user, method, path, body in requests:
                path = path.format(call=self.call_of(server))
                body = body(server) if callable(body) else body
                async with s.request(method, self.base + path, json=body,
                                     headers={"Authorization": f"Bearer {self.tokens[user]}"}) as r:
                    out.append((r.status, await r.json()))
        return out


def caller_call(server: Any) -> str:
    leg = server.legs.get((0, 0))
    return leg.call.call_id if leg is not None else "none"


def test_mute_each_party_then_unmute_and_record_stop_then_start(e2e, tmp_path):
    script = Script(
        (on_call, [("mon", "POST", "/v1/calls/{call}/mute", None),
                   ("desk1001", "POST", "/v1/calls/{call}/mute", None)]),
        (later("call.mute", 100, 1), [("desk1001", "POST", "/v1/calls/{call}/unmute", None),
                                      ("desk1001", "POST", "/v1/calls/{call}/mute", {"party": "caller"})]),
        (later("call.mute", 100, 3), [("acd", "POST", "/v1/calls/{call}/record-stop", None),
                                      ("acd", "POST", "/v1/calls/{call}/unmute", {"party": "caller"})]),
        (later("call.mute", 100, 4), [("acd", "POST", "/v1/calls/{call}/record-start", None)]),
        (later("call.mute", 150, 4), [("acd", "POST", "/v1/calls/{call}/hangup", {"reason": "done"})]),
    )
    script.call_of = caller_call
    sc = scenario(
        phone("zhang", answer_after=1.0,
              script=f'[{{ after = 0.2, play = "{tone_file(tmp_path, "agent", 30.0)}" }}, '
                     f'{{ after = 0.1, hangup = true }}]'),
        caller(1.0, 0, "13911110090", hangup_after=None,
               script=f'[{{ after = 0.5, play = "{tone_file(tmp_path, "caller", 40.0)}" }}]'),
        duration=120.0)

    def stopped(s: Any) -> int:
        return sum(1 for e in s.bus.journal if e.kind == "recording.stopped")
    try:
        r = e2e.run(scenario=sc, server_config=server_config(tmp_path, RECORDED), hwsim_config=HWSIM, api_port=0,
                    max_sim_seconds=100,
                    until=lambda s: script(s) and len(s.records) >= 1 and e2e.all_idle(s) and stopped(s) >= 2)
    finally:
        script.stop()
    (mon, mute_agent), (unmute_agent, mute_caller), (rec_stop, unmute_caller), (rec_start,), (hangup,) = \
        script.answers
    assert mon[0] == 403 and "needs" in mon[1]["error"]
    call_id = mute_agent[1]["call_id"]
    assert mute_agent == (200, {"call_id": call_id, "party": "agent", "muted": True, "changed": True,
                                "muted_parties": ["agent"]})
    assert unmute_agent[1]["muted_parties"] == [] and mute_caller[1]["muted_parties"] == ["caller"]
    assert unmute_caller[0] == 200 and unmute_caller[1]["changed"] is True and hangup[0] == 200
    assert rec_stop == (200, {"call_id": call_id, "recording": False, "changed": True})
    assert rec_start == (200, {"call_id": call_id, "recording": True, "changed": True})
    mutes = r.events("call.mute")
    assert [(e.data["party"], e.data["muted"]) for e in mutes] == [
        ("agent", True), ("agent", False), ("caller", True), ("caller", False)]
    assert mutes[0].data["agent"] == "1001" and mutes[0].data["why"] == "network API (desk1001)"
    hangup_tick = [e for e in r.events("call.end") if e.chan == 0][0].tick
    caller_heard, agent_heard = r.calls_on(0, "in")[0], r.calls_on(4, "in")[0]
    windows = {"agent muted": (mutes[0].tick, mutes[1].tick), "caller muted": (mutes[2].tick, mutes[3].tick),
               "nobody muted": (mutes[3].tick, hangup_tick)}
    heard = {name: {"caller": heard_between(r, caller_heard, a, b), "agent": heard_between(r, agent_heard, a, b)}
             for name, (a, b) in windows.items()}
    assert heard == {"agent muted": {"caller": set(), "agent": {"caller"}},
                     "caller muted": {"caller": {"agent"}, "agent": set()},
                     "nobody muted": {"caller": {"agent"}, "agent": {"caller"}}}, heard
    # the recordings: the rules' one stopped by the API, then the API's own until the call end
    decisions = [e.data for e in r.events("recording.decision")]
    assert decisions[-1]["reason"] == "api" and decisions[-1]["record"] is True
    stops = r.events("recording.stopped")
    assert [e.data["reason"] for e in stops] == ["api", "call end"]
    paths = [e.data["path"] for e in stops]
    assert paths[0] != paths[1] and all(Path(p).exists() for p in paths), paths


def test_originate_bridged_with_a_caller_in_the_ivr_unbridge_bridge_and_a_busy_one(e2e, tmp_path):
    def out_call(s: Any) -> str:
        return next(e.call_id for e in s.bus.journal if e.kind == "call.originate")

    def originated(state: str, ticks: int) -> Any:
        def when(s: Any) -> bool:
            seen = [e.tick for e in s.bus.journal if e.kind == "call.originate" and e.data["state"] == state]
            return bool(seen) and s.boards[0].engine.tick >= seen[0] + ticks
        return when

    def joins(n: int, ticks: int) -> Any:
        return later("call.join", ticks, n)

    first = {"trunk": "pstn", "number": OUT, "then": {"call": "{call}"}}
    script = Script(
        (lambda s: caller_call(s) != "none" and later("call.play", 50, 1)(s),
         [("desk1001", "POST", "/v1/originate", {"trunk": "pstn", "number": OUT}),
          ("mon", "POST", "/v1/originate", {"trunk": "pstn", "number": OUT}),
          ("acd", "POST", "/v1/originate", {"trunk": "nope", "number": OUT}),
          ("acd", "POST", "/v1/originate", lambda s: {**first, "then": {"call": caller_call(s)}})]),
        (joins(2, 150), [("acd", "POST", "/v1/calls/{call}/unbridge", None)]),
        (joins(4, 100), [("acd", "POST", "/v1/calls/{call}/bridge", lambda s: {"call": out_call(s)}),
                         ("acd", "POST", "/v1/originate", {"trunk": "pstn", "number": BUSY,
                                                           "then": {"ivr": "wait"}})]),
        (lambda s: joins(6, 150)(s) and originated("failed", 0)(s),
         [("acd", "POST", "/v1/calls/{call}/hangup", {"reason": "done"})]),
        (later("call.join", 50, 8), [("acd", "POST", "/v1/calls/{call}/hangup", {"reason": "caller left"})]),
    )
    # the caller's call; once it has ended, the originated one (a plain bridge does not tie them)
    script.call_of = lambda s: caller_call(s) if caller_call(s) != "none" else out_call(s)
    sc = scenario(
        phone("zhang", answer_after=None),
        caller(1.0, 0, "13911110090", hangup_after=None,
               script=f'[{{ after = 0.5, play = "{tone_file(tmp_path, "caller", 40.0)}" }}]'),
        '[[outbound]]\nresult = "answer"\nring = 2.0\n'
        f'script = [{{ after = 0.2, play = "{tone_file(tmp_path, "party", 40.0)}" }}]\n',
        '[[outbound]]\nresult = "busy"\n',
        duration=120.0)
    try:
        r = e2e.run(scenario=sc, server_config=server_config(tmp_path, ACD, head=WAITING), hwsim_config=HWSIM,
                    api_port=0, max_sim_seconds=100,
                    until=lambda s: script(s) and len(s.records) >= 3 and e2e.all_idle(s))
    finally:
        script.stop()
    (agent_user, monitor, no_group, made), (unbridged,), (bridged, busy), (hangup,), (hangup_out,) = script.answers
    assert agent_user[0] == 403 and "admin, supervisor or integration" in agent_user[1]["error"]
    assert monitor[0] == 403 and no_group[0] == 404 and "no trunk group 'nope'" in no_group[1]["error"]
    assert made[0] == 201 and made[1]["line"] == "hotline:1" and made[1]["number"] == OUT, made
    out_id, caller_id = made[1]["call_id"], made[1]["then"]["call"]
    assert unbridged == (200, {"call_id": caller_id, "other": out_id, "state": "separated"})
    assert bridged == (200, {"call_id": caller_id, "other": out_id, "state": "joined"})
    assert busy[0] == 201 and hangup[0] == 200 and hangup_out == (200, {"hung_up": out_id, "reason": "caller left"})
    # the events: the originate's steps, the joins of each call
    steps = [(e.call_id, e.data["state"], e.data.get("cause")) for e in r.events("call.originate")]
    busy_id = busy[1]["call_id"]
    assert steps == [(out_id, "dialing", None), (out_id, "answered", None), (busy_id, "dialing", None),
                     (busy_id, "failed", "busy")], steps
    js = r.events("call.join")
    assert [(e.call_id, e.data["state"]) for e in js] == [
        (caller_id, "joined"), (out_id, "joined"), (caller_id, "separated"), (out_id, "separated"),
        (caller_id, "joined"), (out_id, "joined"), (caller_id, "ended"), (out_id, "ended")]
    # hwsim: the exchange's callee answered line 1; the busy one met busy tone
    callee, = r.calls_on(1, "out")
    assert callee["dialled"] == OUT and callee["result"] == "answer"
    # what each heard: joined, separated, joined again
    hangup_tick = [e for e in r.events("call.end") if e.chan == 0][0].tick
    caller_heard = r.calls_on(0, "in")[0]
    windows = {"joined": (js[0].tick, js[2].tick), "separated": (js[2].tick, js[4].tick),
               "joined again": (js[4].tick, hangup_tick)}
    callee = {**callee, "answer": callee["offered"]}    # hwsim keeps what a dialled line heard from its seizure
    heard = {name: {"caller": heard_between(r, caller_heard, a, b), "party": heard_between(r, callee, a, b)}
             for name, (a, b) in windows.items()}
    assert heard == {"joined": {"caller": {"party"}, "party": {"caller"}},
                     "separated": {"caller": set(), "party": set()},
                     "joined again": {"caller": {"party"}, "party": {"caller"}}}, heard
    # the call records: the originated call went on after the caller's (bridged again by the API, not
    # by its originate: test_api_calls.py has an originate's call ending with its caller's); busy says busy
    records = {rec.call_id: rec for rec in r.server.records}
    assert records[caller_id].reason == "done"
    assert records[out_id].direction == "outbound" and records[out_id].called == OUT
    assert records[out_id].reason == "caller left" and records[out_id].answer is not None
    assert records[busy_id].reason == "outbound busy" and records[busy_id].answer is None


def test_a_call_on_an_answer_api_line_rings_until_the_integration_answers_it(e2e, tmp_path):
    """[channels] answer_api = "hotline:0": the caller's line rings on (hwsim's exchange keeps
    ringing, the caller hears ringback) for 3 s until the integration user answers it over the
    API; then the call's IVR starts (its welcome). A monitor may not answer."""
    head = WAITING.replace('agents = "hotline:4-7"\n', 'agents = "hotline:4-7"\nanswer_api = "hotline:0"\n')

    def waited(ticks: int) -> Any:
        def when(s: Any) -> bool:
            seen = [e.tick for e in s.bus.journal if e.kind == "call.api_answer"]
            return bool(seen) and s.boards[0].engine.tick >= seen[0] + ticks
        return when
    script = Script(
        (waited(150), [("mon", "POST", "/v1/calls/{call}/answer", None),
                       ("acd", "POST", "/v1/calls/{call}/answer", None),
                       ("acd", "POST", "/v1/calls/{call}/answer", None)]),
        (later("call.answer", 100, 1), [("acd", "POST", "/v1/calls/{call}/hangup", {"reason": "done"})]),
    )
    script.call_of = caller_call
    sc = scenario(phone("zhang", answer_after=None), caller(1.0, 0, "13911110090", hangup_after=None), duration=60.0)
    try:
        r = e2e.run(scenario=sc, server_config=server_config(tmp_path, ACD, head=head), hwsim_config=HWSIM,
                    api_port=0, max_sim_seconds=50,
                    until=lambda s: script(s) and len(s.records) >= 1 and e2e.all_idle(s))
    finally:
        script.stop()
    (monitor, answered, again), (hangup,) = script.answers
    assert monitor[0] == 403 and answered[0] == 200 and answered[1]["answered"] is True and hangup[0] == 200
    assert again[0] == 409 and "not waiting for an answer" in again[1]["error"]
    states = [(e.data["state"], e.data.get("why")) for e in r.events("call.api_answer")]
    assert states == [("waiting", None), ("answered", "network API (acd)")]
    waiting, answer_ev = r.events("call.api_answer")
    assert waiting.data["caller"] == "13911110090" and waiting.data["fallback_ms"] == 20_000
    answer, = [e for e in r.events("call.answer") if e.chan == 0]
    assert answer.tick == answer_ev.tick and answer.tick - waiting.tick >= 150
    assert r.events("call.play")[0].tick == answer.tick          # the IVR's welcome from the answer on
    # hwsim: the exchange's caller was answered that late, not at the offer
    call, = r.calls_on(0, "in")
    assert call["answer"] - call["offered"] >= 3.0, call
    assert r.sim_s(r.server.records[0].answer) == pytest.approx(call["answer"], abs=0.1)   # the hook's latency


def test_originate_then_agent_rings_its_phone_once_answered_and_they_hear_each_other(e2e, tmp_path):
    """The integration user originates a call for agent 1001: the exchange answers (the called
    party plays its tone), agent 1001's phone hotline:4 rings and answers (the agent plays its
    tone); the two hear each other, and the agent's hang-up ends the call."""
    script = Script(
        (lambda s: s.boards[0].engine.tick >= 50,
         [("acd", "POST", "/v1/originate", {"trunk": "pstn", "number": OUT, "then": {"agent": "1001"}})]),
    )
    sc = scenario(
        phone("zhang", answer_after=1.0,
              script=f'[{{ after = 0.2, play = "{tone_file(tmp_path, "agent", 6.0)}" }}, '
                     f'{{ after = 0.1, hangup = true }}]'),
        '[[outbound]]\nresult = "answer"\nring = 2.0\n'
        f'script = [{{ after = 0.2, play = "{tone_file(tmp_path, "party", 30.0)}" }}]\n',
        duration=60.0)
    try:
        r = e2e.run(scenario=sc, server_config=server_config(tmp_path, ACD, head=WAITING), hwsim_config=HWSIM,
                    api_port=0, max_sim_seconds=50,
                    until=lambda s: script(s) and len(s.records) >= 1 and e2e.all_idle(s))
    finally:
        script.stop()
    (made,), = script.answers
    assert made[0] == 201 and made[1]["line"] == "hotline:0", made
    out_id = made[1]["call_id"]
    steps = [e.data["state"] for e in r.events("call.originate")]
    assert steps == ["dialing", "answered", "connected"]
    connected = r.events("call.originate")[-1]
    end = [e for e in r.events("call.end") if e.chan == 0][0]
    callee, = r.calls_on(0, "out")
    callee = {**callee, "answer": callee["offered"]}    # hwsim keeps what a dialled line heard from its seizure
    agent = r.calls_on(4, "in")[0]
    a, b = connected.tick + 20, end.tick - 20
    assert heard_between(r, callee, a, b) == {"agent"} and heard_between(r, agent, a, b) == {"party"}
    rec, = [x for x in r.server.records if x.call_id == out_id]
    assert rec.direction == "outbound" and rec.agent == "1001" and rec.answer is not None
