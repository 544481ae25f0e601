"""AMI Originate with an Application, and QueueAdd with a Penalty, on the real `voiceboard serve`
(hwsim in lockstep), panoramisk as the client.

An `integration` user takes chen out of queue `service` and puts chen back with Penalty 5, then
wu with Penalty 0 (so the member order, top-down, would ring chen first; the penalty rings wu).
It originates a call on the pstn group with Application Playback (Data welcome&goodbye): the
called party hears both prompts and the server hangs up. It originates another with Application
Queue (Data service): the called party joins the queue, wu's phone rings (chen's never does) and
answers. hwsim: hwsim-acd.toml (battery reversal on answer: the answer supervision of the calls
dialled).
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
from typing import Any

from panoramisk import Manager

from servekit import CONFIGS, events, hwsim, listening_port, serve_with_ami, stop, wait_for

EXTRA = """
[agents.wu]
phone = "hotline:4"

[api]

[[api.user]]
name = "acd"
role = "integration"
token_file = "acd-token"
"""
SCENARIO = """
[scenario]
duration = 300.0
seed = 7

[[agent]]                # wu's phone: answers, talks 3 s, hangs up
phones = "BOARD:4"
answer_after = 1.0
script = [{ after = 3.0, hangup = true }]

[[outbound]]             # the Playback call: answered after 2 s of ringback
result = "answer"
ring = 2.0
hangup_after = 200.0

[[outbound]]             # the Queue call
result = "answer"
ring = 2.0
hangup_after = 200.0
"""
GUARD = 60.0       # seconds: a guard against a wedged process, never a timing check


def test_originate_playback_and_queue_and_queue_add_penalty_on_a_real_server(tmp_path):
    board = f"amip{os.getpid()}"
    cfg = tmp_path / "server.toml"
    cfg.write_text((CONFIGS / "server-recording.toml").read_text().replace("hotline_e2e", board) + EXTRA)
    hw = hwsim(tmp_path, board, SCENARIO, "hwsim-acd.toml")     # battery reversal on answer
    log = tmp_path / "serve.log"
    server = serve_with_ami(cfg, log)
    try:
        port = listening_port(log, "ami", [hw, server])

        async def session() -> dict[str, Any]:
            m = Manager(host="127.0.0.1", port=port, username="acd",
                        secret=(tmp_path / "acd-token").read_text().strip(), ping_delay=3600, reconnect_timeout=3600)
            await asyncio.wait_for(m.connect(), GUARD)

            async def act(action: dict[str, str], as_list: bool | None = False) -> Any:
                return await asyncio.wait_for(m.send_action(action, as_list=as_list), GUARD)
            out = {"remove": await act({"Action": "QueueRemove", "Queue": "service", "Interface": "chen"}),
                   "chen p5": await act({"Action": "QueueAdd", "Queue": "service", "Interface": "chen",
                                         "Penalty": "5"}),
                   "wu p0": await act({"Action": "QueueAdd", "Queue": "service", "Interface": "Agent/wu",
                                       "Penalty": "0"}),
                   "status": await act({"Action": "QueueStatus"}, as_list=True),
                   "playback": await act({"Action": "Originate", "Channel": "DAHDI/pstn/13900001111",
                                          "Application": "Playback", "Data": "welcome&goodbye", "Async": "true"},
                                         as_list=None),
                   "queue": await act({"Action": "Originate", "Channel": "DAHDI/pstn/13900002222",
                                       "Application": "Queue", "Data": "service", "Async": "true"}, as_list=None)}
            m.close()
            return out
        out = asyncio.run(session())
        wait_for(lambda: len(events(log, "call.end")) >= 2, "both calls' ends", [hw, server])
        server.send_signal(signal.SIGTERM)
        assert server.wait(60) == 0
    finally:
        stop([server, hw])
    assert out["remove"].success and out["chen p5"].success and out["wu p0"].success
    members = [(e["Queue"], e["Name"], e["Penalty"]) for e in out["status"] if e.get("Event") == "QueueMember"]
    assert members == [("service", "chen", "5"), ("service", "wu", "0")]
    (queued_play, response_play), (queued_queue, response_queue) = out["playback"], out["queue"]
    assert queued_play["Message"] == "Originate successfully queued" and response_play["Response"] == "Success"
    assert response_queue["Response"] == "Success" and response_queue["Reason"] == "4"
    play_id, queue_id = queued_play["Uniqueid"], queued_queue["Uniqueid"]
    # Playback: both prompts, no menu, then the server hangs up
    assert [e["items"] for e in events(log, "call.play") if e["call_id"] == play_id] == [["welcome", "goodbye"]]
    end_play, = [e for e in events(log, "call.end") if e["call_id"] == play_id]
    assert end_play["side"] == "server" and end_play["answered"] is True
    # Queue: it joins service; the penalty-0 member wu is rung (chen, listed first, has penalty 5) and answers
    joined, = [e for e in events(log, "acd.joined") if e["call_id"] == queue_id]
    assert joined["queue"] == "service"
    decision, = [e for e in events(log, "acd.decision") if e["call_id"] == queue_id]
    assert decision["chosen"] == ["wu"]
    assert {"agent": "chen", "why": "penalty 5: a member of penalty 0 is free (wu)"} in decision["skipped"]
    bridge, = [e for e in events(log, "call.bridge") if e["call_id"] == queue_id]
    assert bridge["agent"] == "wu" and bridge["line"] == 4
    audit = [json.loads(line) for line in (tmp_path / "admin-audit.jsonl").read_text().splitlines()]
    assert [(a["path"], a["status"], a["detail"].get("penalty", a["detail"].get("then"))) for a in audit] == [
        ("/ami/QueueRemove", 200, None), ("/ami/QueueAdd", 200, 5), ("/ami/QueueAdd", 200, 0),
        ("/ami/Originate", 200, {"play": "welcome&goodbye"}), ("/ami/Originate", 200, {"queue": "service"})]
