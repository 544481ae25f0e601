"""Agent control and hold, end to end: hwsim (a separate lockstep process) plays
the callers and the people at phones hotline:4-7, the real server runs the
queues (tests/server/acdkit.py).

- feature codes dialled on an agent's phone (*21 log in, *22 log out, *23
  ready, *24 not ready) change the agent's state at once, with a
  confirmation tone (or congestion tone when refused);
- the admin API (`POST /admin/agent-ACTION/AGENT`) over real HTTP, through
  the `voiceboard agent` command;
- hold: the agent's hook flash puts the caller on hold (music), a second
  flash takes it off; hanging up with the caller held rings the phone back
  (hold recall); the call's recording goes on in one file across it.

Callers have DTMF caller ID and are answered at their first ring (~2.2 s
after `at`); scenario times are hwsim seconds. Nothing is timed on the wall
clock: an admin request lands at some tick, and the checks are made relative
to the tick its `agent.state` event carries.
"""
from __future__ import annotations

import asyncio
import sqlite3
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from acdkit import PHONE, agents, caller, caller_record, data, decisions, done, phone, run, scenario

REPO = Path(__file__).resolve().parents[2]
TICK = 0.02
N = ["13911110001", "13911110002", "13911110003"]


def speech(name: str) -> str:
    return str(REPO / "prompts" / "en" / f"{name}.wav")


def speech_audio(name: str) -> np.ndarray:
    from dsp.audiofile import read_audio
    return read_audio(speech(name))[0]


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) if len(x) else 0.0


def dial(at: float, name: str, digits: str, hang_up_after: float = 2.0) -> str:
    """The agent at `name`'s phone lifts it at `at`, dials `digits` 1 s later and
    hangs up `hang_up_after` s after the digits."""
    return (f'[[dial]]\nat = {at}\nphone = "hotline_e2e:{PHONE[name]}"\ndigits = "{digits}"\n'
            f'script = [{{ after = {hang_up_after}, hangup = true }}]\n')


def states(r, agent: str) -> list[tuple[str, str, str]]:
    return [(e["action"], e["state"], e["by"]) for e in data(r, "agent.state") if e["agent"] == agent]


def ticks(r, kind: str, **match: Any) -> list[int]:
    return [e.tick for e in r.events(kind) if all(e.as_dict().get(k) == v for k, v in match.items())]


# ------------------------------------------------------------------ feature codes
def test_feature_codes_log_in_set_ready_not_ready_and_out_and_the_waiting_caller_gets_the_agent(
        e2e, tmp_path):
    """zhang starts logged out. *23 (ready) while logged out is refused
    (congestion tone); *21 logs in: the caller waiting since ~3 s is rung the
    moment zhang's phone is back on hook. *24 sets not ready: the second caller
    waits; *23: it is rung at once; *22 logs out."""
    acd = agents("zhang", zhang='start = "logged_out"') + (
        '\n[queues.service]\nmembers = ["zhang"]\n')
    sc = scenario(phone("zhang", talk=2.0),
                  dial(2.0, "zhang", "*23"), dial(8.0, "zhang", "*21"),
                  dial(20.0, "zhang", "*24"), dial(32.0, "zhang", "*23"),
                  dial(50.0, "zhang", "*22"),
                  caller(1.0, 0, N[0]), caller(24.0, 1, N[1]), duration=80.0)
    r = run(e2e, tmp_path, acd, sc, until=lambda s: len(s.records) >= 2 and e2e.all_idle(s)
            and s.acd.acd.agents["zhang"].state.value == "logged_out")
    by = "phone hotline:4 ({})"
    assert states(r, "zhang") == [("login", "ready", by.format("*21")),
                                  ("not_ready", "not_ready", by.format("*24")),
                                  ("ready", "ready", by.format("*23")),
                                  ("logout", "logged_out", by.format("*22"))]
    refused, = data(r, "agent.state_refused")
    assert (refused["agent"], refused["action"], refused["why"]) == ("zhang", "ready",
                                                                     "logged out: log in first")
    # the phone's own calls: the dial phone heard the confirmation (or congestion) tone
    # after its digits, until it hung up
    dials = r.calls_on(PHONE["zhang"], "out")
    assert [c["dialled"] for c in dials] == ["*23", "*21", "*24", "*23", "*22"]
    for c in dials:
        heard = r.heard(c)
        t_end = c["hangup"] - c["answer"]
        tone = heard[int((t_end - 1.5) * 8000):int((t_end - 0.1) * 8000)]
        assert rms(tone) > 300, (c["dialled"], rms(tone))
    # both callers went to zhang, each rung in the tick zhang's phone went back on hook
    # after the code that made zhang ready (login; ready again)
    idle = ticks(r, "channel.state", chan=PHONE["zhang"], new="idle")
    ds = decisions(r)
    assert [d["chosen"] for d in ds] == [["zhang"], ["zhang"]]
    login_t, = ticks(r, "agent.state", action="login")
    ready_t, = ticks(r, "agent.state", action="ready")
    assert ds[0]["t"] == min(t for t in idle if t > login_t) * 20
    assert ds[1]["t"] == min(t for t in idle if t > ready_t) * 20
    assert caller_record(r, N[0]).agent == "zhang" and caller_record(r, N[1]).agent == "zhang"
    # while not ready, the second caller was not offered to zhang
    assert ds[1]["t"] > ready_t * 20


# ------------------------------------------------------------------ the admin API + CLI
class Steps:
    """Run `voiceboard agent ARGS` (a real process, real HTTP to the server's
    loopback API) when each condition first holds, in order; `until` helper."""

    def __init__(self, *steps: tuple[Callable[[Any], bool], list[str]]) -> None:
        self.steps = list(steps)
        self.results: list[tuple[int, str, str, int]] = []   # (tick, stdout, stderr, rc)
        self.task: Any = None

    def __call__(self, server: Any) -> bool:
        if self.task is not None and not self.task.done():
            return False
        if self.task is not None:
            self.task.result()
            self.task = None
        if len(self.results) + (self.task is not None) >= len(self.steps):
            return True
        when, argv = self.steps[len(self.results)]
        if server.status_port and when(server):
            # hold the lockstep simulation while the request is under way: the engine
            # runs this at its next tick and waits, so the condition that started the
            # step still holds when the request lands, however slow the process start
            gate = threading.Event()
            engine = server.boards[0].engine
            engine._queue(lambda: gate.wait(60))     # a guard, not a timing check
            self.task = asyncio.get_running_loop().create_task(
                self._run(engine.tick, server.status_port, argv, server.cfg.api.token_file, gate))
        return False

    async def _run(self, tick: int, port: int, argv: list[str], token_file: str,
                   gate: threading.Event) -> None:
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "boarddrv.cli", "agent", *argv, "--api", f"127.0.0.1:{port}",
                "--token-file", token_file,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=str(REPO))
            out, err = await proc.communicate()
        finally:
            gate.set()
        self.results.append((tick, out.decode(), err.decode(), proc.returncode or 0))


def waiting(number: str) -> Callable[[Any], bool]:
    return lambda s: any(c.caller == number and c.state == "waiting" for c in s.acd.acd.calls.values())


def test_admin_api_sets_an_agent_ready_the_waiting_caller_is_rung_at_once_errors_are_404_and_409(
        e2e, tmp_path):
    """zhang starts not ready, li logged out. A caller waits; `voiceboard agent
    ready zhang` makes zhang ready and the caller is rung in the same tick; an
    unknown agent is a 404 and `ready li` (logged out) a 409, both with exit
    status 1 and the reason on stderr; `logout zhang` during the call waits
    for its end (pending)."""
    acd = agents("zhang", "li", zhang='start = "not_ready"', li='start = "logged_out"') + (
        '\n[queues.service]\nmembers = ["zhang", "li"]\n')
    # lockstep runs at many times real time, and each request is a process of its
    # own: a long call leaves room for the requests to land while it goes on
    sc = scenario(phone("zhang", talk=60.0), caller(1.0, 0, N[0], hangup_after=None),
                  duration=250.0)
    on_call = lambda s: s.acd.acd.agents["zhang"].state.value == "on_call"  # noqa: E731
    steps = Steps((waiting(N[0]), ["ready", "zhang"]),
                  (lambda s: True, ["not-ready", "nobody"]),
                  (lambda s: True, ["ready", "li", "--json"]),
                  (on_call, ["logout", "zhang", "--json"]))
    r = run(e2e, tmp_path, acd, sc, status_port=0, max_sim_seconds=200,
            until=lambda s: steps(s) and len(s.records) >= 1 and e2e.all_idle(s)
            and s.acd.acd.agents["zhang"].state.value == "logged_out")
    (_, out1, _, rc1), (_, out2, err2, rc2), (_, out3, err3, rc3), (_, out4, _, rc4) = steps.results
    assert rc1 == 0 and out1.strip() == "zhang: ready"
    assert rc2 == 1 and out2 == "" and "HTTP 404" in err2 and "no agent 'nobody'" in err2
    assert rc3 == 1 and out3 == "" and "HTTP 409" in err3 and "log in first" in err3
    assert rc4 == 0 and '"pending": "logout"' in out4 and '"state": "on_call"' in out4
    ev = [e for e in r.events("agent.state") if e.data["agent"] == "zhang"]
    assert [(e.data["action"], e.data["state"], e.data["pending"], e.data["by"]) for e in ev] == [
        ("ready", "ready", None, "admin API"), ("logout", "on_call", "logout", "admin API")]
    # the waiting caller was offered to zhang in the tick of the change
    d, = decisions(r)
    assert d["chosen"] == ["zhang"] and d["t"] == ev[0].tick * 20
    assert {"agent": "li", "why": "logged out"} in d["skipped"]
    # the pending logout applied when the call ended
    ended, = data(r, "acd.call_ended")
    assert ended["agent_state"] == "logged_out"
    assert r.server.acd.acd.agents["li"].state.value == "logged_out"


def test_last_member_logging_out_sends_waiting_callers_where_the_queue_says(e2e, tmp_path,
                                                                            prompt_library):
    """leave_when_empty: zhang (not ready, the only member) logs out over the
    API while a caller waits: the caller leaves for the queue's mailbox and
    hears the greeting at once."""
    acd = agents("zhang", zhang='start = "not_ready"') + (
        '\n[queues.service]\nmembers = ["zhang"]\nleave_when_empty = true\n'
        'empty = { voicemail = "queue" }\nmailbox = "100"\n')
    sc = scenario(caller(1.0, 0, N[0], hangup_after=None), duration=250.0)
    steps = Steps((waiting(N[0]), ["logout", "zhang"]))
    r = run(e2e, tmp_path, acd, sc, status_port=0, max_sim_seconds=200,
            until=lambda s: steps(s) and len(s.records) >= 1 and e2e.all_idle(s))
    (tick, out, _, rc), = steps.results
    assert rc == 0 and out.strip() == "zhang: logged_out"
    logout_t, = ticks(r, "agent.state", action="logout")
    ov, = [e for e in r.events("acd.overflow")]
    assert ov.tick == logout_t and ov.data["reason"] == "queue empty (leave_when_empty)"
    assert ov.data["target"].startswith("voicemail")
    cid = caller_record(r, N[0]).call_id
    assert [o["outcome"] for o in data(r, "acd.outcome") if o["call_id"] == cid] == ["voicemail"]
    call = r.calls_on(0, "in")[0]
    found = e2e.find_prompt(r.heard_alaw(call), prompt_library.get("leave_message", "zh"))
    at = logout_t * TICK - call["answer"]
    assert len(found) == 1 and abs(found[0][0] - at) < 0.1, (found, at)


# ------------------------------------------------------------------ hold
RECORDING = '\n[recording]\nlayout = "stereo"\n'


def recording_of(r, call_id: str) -> tuple[dict[str, Any], np.ndarray]:
    con = sqlite3.connect(r.workdir / "calls.db")
    con.row_factory = sqlite3.Row
    try:
        row, = [dict(x) for x in con.execute("SELECT * FROM recordings WHERE call_id = ?", (call_id,))]
        call = dict(con.execute("SELECT * FROM calls WHERE call_id = ?", (call_id,)).fetchone())
    finally:
        con.close()
    x, rate = sf.read(row["path"], dtype="int16", always_2d=True)
    assert rate == 8000 and x.shape[1] == 2
    row["call"] = call
    return row, x


def test_flash_holds_the_caller_with_music_and_flash_again_reconnects_in_one_recording(
        e2e, tmp_path, prompt_library):
    """zhang answers, flashes 1 s later (hold) and again at 6 s (unhold), says
    something at 7 s and hangs up at 14 s; the caller talks while held. The
    caller hears music on hold
    (from its start) while held and zhang's words after; zhang hears silence
    while the caller is held. One recording: the caller left throughout; on the
    right the music while held, then zhang's words."""
    words = "your_call_is_important"
    acd = agents("zhang") + '\n[queues.service]\nmembers = ["zhang"]\n' + RECORDING
    script = (f'[{{ at = 1.0, flash = true }}, {{ at = 6.0, flash = true }}, '
              f'{{ at = 7.0, play = "{speech(words)}" }}, {{ at = 14.0, hangup = true }}]')
    sc = scenario(phone("zhang", answer_after=1.0, script=script),
                  caller(1.0, 0, N[0], script=f'[{{ at = 2.5, play = "{speech("business_hours")}" }}]'),
                  duration=60.0)
    r = run(e2e, tmp_path, acd, sc, until=done(e2e, 1))
    rec = caller_record(r, N[0])
    hold, = r.events("call.hold")
    unhold, = r.events("call.unhold")
    assert hold.data["why"] == unhold.data["why"] == "flash"
    assert hold.call_id == unhold.call_id == rec.call_id and hold.data["agent"] == "zhang"
    ring, = r.calls_on(PHONE["zhang"], "in")
    assert ring["flashes"] == [ring["answer"] + 1.0, ring["answer"] + 6.0]
    # in the tick hwsim flashed (its clock counts the board's first tick as 0.02 s)
    assert abs(hold.tick * TICK + TICK - ring["flashes"][0]) < 1e-6
    assert abs(unhold.tick * TICK + TICK - ring["flashes"][1]) < 1e-6
    # the answer time: the line's, not the agent's
    call = r.calls_on(0, "in")[0]
    assert abs(r.sim_s(rec.answer) - call["answer"]) <= 0.05           # (within a tick or two)
    assert abs(r.sim_s(rec.agent_answer) - ring["answer"]) <= 0.05
    assert ring["answer"] - call["answer"] > 0.5
    # what the caller heard: the music from its start at the hold, then zhang's words
    moh = prompt_library.music_on_hold("default")[:16000]
    heard = r.heard_alaw(call)
    found = [round(t, 2) for t, _ in e2e.find_prompt(heard, moh)]
    t_hold = hold.tick * TICK - call["answer"]
    t_unhold = unhold.tick * TICK - call["answer"]
    assert any(abs(t - t_hold) < 0.05 for t in found), (found, t_hold)
    said, = e2e.find_prompt(heard, speech_audio(words))
    assert abs(said[0] - (ring["answer"] + 7.0 - call["answer"])) < 0.06
    # what zhang heard while the caller was held: silence (the caller's words came later)
    zh = r.heard(ring)
    held = zh[int((t_hold - (ring["answer"] - call["answer"]) + 0.2) * 8000):
              int((t_unhold - (ring["answer"] - call["answer"]) - 0.1) * 8000)]
    assert len(held) > 30000 and rms(held) < 20, rms(held)
    # one recording across the hold
    row, x = recording_of(r, rec.call_id)
    assert row["status"] == "kept"
    left, right = x[:, 0], x[:, 1]
    t0 = next(e.tick for e in r.events("recording.decision") if e.call_id == rec.call_id) * TICK
    h0, h1 = hold.tick * TICK - t0, unhold.tick * TICK - t0
    on_right = [round(t, 2) for t, _ in e2e.find_prompt(right, moh)]
    assert any(abs(t - h0) < 0.05 for t in on_right), (on_right, h0)
    assert rms(right[int((h0 + 0.1) * 8000):int((h1 - 0.1) * 8000)]) > 300
    said_r, = e2e.find_prompt(right, speech_audio(words))
    assert abs(said_r[0] - (ring["answer"] + 7.0 - t0)) < 0.06
    assert not e2e.find_prompt(left, speech_audio(words))
    caller_said, = e2e.find_prompt(left, speech_audio("business_hours"))   # said while held
    assert h0 < caller_said[0] - 0.05 and caller_said[0] + 3.58 < h1
    assert abs(caller_said[0] - (call["answer"] + 2.5 - t0)) < 0.06
    assert not e2e.find_prompt(right, speech_audio("business_hours"))
    assert not e2e.find_prompt(left, moh)
    assert row["call"]["answer"] is not None and row["call"]["agent"] == "zhang"


def test_agent_hanging_up_with_the_caller_on_hold_rings_the_phone_back_and_answering_reconnects(
        e2e, tmp_path):
    """zhang holds the caller at 1 s and hangs up at 3 s: the phone rings again
    (hold recall), zhang answers after 1 s and is bridged with the caller again
    (the script repeats for each answer: hold, hang-up, recall ...) until the
    caller hangs up; one ACD call, one answered outcome, the caller's record
    keeps the line's answer time."""
    acd = agents("zhang") + '\n[queues.service]\nmembers = ["zhang"]\n'
    script = '[{ at = 1.0, flash = true }, { at = 3.0, hangup = true }]'
    sc = scenario(phone("zhang", answer_after=1.0, script=script),
                  caller(1.0, 0, N[0], hangup_after=15.0), duration=60.0)
    r = run(e2e, tmp_path, acd, sc, until=done(e2e, 1))
    rec = caller_record(r, N[0])
    rings = r.calls_on(PHONE["zhang"], "in")
    assert len(rings) >= 3
    recalls = r.events("call.recall")
    assert len(recalls) >= 2 and all(e.call_id == rec.call_id for e in recalls)
    # each recall rang the phone in the tick zhang hung up, and its answer reconnected
    for prev, nxt in zip(rings, rings[1:], strict=False):     # (the on-hook reaches the host a tick later)
        assert abs(nxt["ring"][0] - prev["hangup"] - TICK) < 1e-6
    unholds = r.events("call.unhold")
    assert [e.data["why"] for e in unholds][:2] == ["recall answered"] * 2
    assert abs(unholds[0].tick * TICK + TICK - rings[1]["answer"]) < 1e-6
    # the call ended when the caller hung up, not when zhang did
    call = r.calls_on(0, "in")[0]
    assert call["who_hung_up"] == "caller"
    assert rec.reason.startswith("far end hung up")
    assert abs(r.sim_s(rec.answer) - call["answer"]) <= 0.05
    assert abs(r.sim_s(rec.agent_answer) - rings[0]["answer"]) <= 0.05   # the first answer
    outs = [o for o in data(r, "acd.outcome") if o["call_id"] == rec.call_id]
    assert [o["outcome"] for o in outs] == ["answered"]
    ended, = data(r, "acd.call_ended")
    assert ended["agent"] == "zhang"
    assert r.server.acd.rings == {} and r.server.acd.acd.agents["zhang"].state.value == "ready"


def test_an_unanswered_hold_recall_ends_the_call_after_hold_recall_seconds(e2e, tmp_path):
    """[queues] hold_recall = 1: zhang (who answers after 2 s of ringing) holds
    the caller and hangs up; the recall rings 1 s unanswered, then the held
    caller is hung up rather than left on hold music forever."""
    acd = (agents("zhang") + '\n[queues]\nhold_recall = 1\n'
           '\n[queues.service]\nmembers = ["zhang"]\n')
    script = '[{ at = 1.0, flash = true }, { at = 3.0, hangup = true }]'
    sc = scenario(phone("zhang", answer_after=2.0, script=script),
                  caller(1.0, 0, N[0], hangup_after=30.0), duration=60.0)
    r = run(e2e, tmp_path, acd, sc, until=done(e2e, 1))
    rec = caller_record(r, N[0])
    recall, = r.events("call.recall")
    timeout, = r.events("call.recall_timeout")
    assert recall.call_id == timeout.call_id == rec.call_id
    assert timeout.tick - recall.tick == 50                  # 1 s of 20 ms ticks
    call = r.calls_on(0, "in")[0]
    assert call["who_hung_up"] != "caller"                   # the server ended it
    assert abs(r.sim_s(rec.end) - timeout.tick * TICK) <= 0.05
