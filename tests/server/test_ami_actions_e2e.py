"""The AMI actions on the real `voiceboard serve` (hwsim in lockstep), panoramisk as the client.

A caller waits in the IVR's main menu. An `integration` user takes agent chen out of queue
`service` and puts agent wu in it (QueueRemove, QueueAdd), sends the caller to the account
menu, then to the queue (Redirect): wu's phone rings and answers, chen's never does.
Meanwhile it originates a call on the pstn group into the main menu (Originate, Context ivr):
hwsim's exchange answers, OriginateResponse comes back with the action's ActionID, the called
party hears the menu; then it hangs that call up by its Uniqueid. hwsim: hwsim-acd.toml (its
exchange lines give battery reversal on answer: the answer supervision of the calls dialled).
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
duration = 600.0
seed = 7

[[caller]]               # waits in the main menu until AMI sends it on
at = 1.0
line = "BOARD:0"
number = "13911110061"
hangup_after = 500.0

[[agent]]                # wu's phone: answers, talks 3 s, hangs up
phones = "BOARD:4"
answer_after = 1.0
script = [{ after = 3.0, hangup = true }]

[[outbound]]             # the originated call: answered after 2 s of ringback
result = "answer"
ring = 2.0
hangup_after = 300.0
"""
GUARD = 60.0       # seconds: a guard against a wedged process, never a timing check
OUT = "13900001111"


def test_originate_redirect_queue_add_and_remove_on_a_real_server(tmp_path):
    board = f"amia{os.getpid()}"
    base = (CONFIGS / "server-recording.toml").read_text().replace("hotline_e2e", board)
    cfg = tmp_path / "server.toml"
    cfg.write_text(base.replace("first_timeout = 3000", "first_timeout = 400000")
                   .replace("first_timeout = 8000", "first_timeout = 400000") + EXTRA)
    hw = hwsim(tmp_path, board, SCENARIO, "hwsim-acd.toml")     # battery reversal on answer
    log = tmp_path / "serve.log"
    server = serve_with_ami(cfg, log)
    try:
        port = listening_port(log, "ami", [hw, server])
        wait_for(lambda: events(log, "call.play"), "the caller in the IVR", [hw, server])

        async def session() -> dict[str, Any]:
            m = Manager(host="127.0.0.1", port=port, username="acd",
                        secret=(tmp_path / "acd-token").read_text().strip(), ping_delay=3600, reconnect_timeout=3600)
            await asyncio.wait_for(m.connect(), GUARD)

            async def act(action: dict[str, str], as_list: bool | None = False) -> Any:
                return await asyncio.wait_for(m.send_action(action, as_list=as_list), GUARD)
            out = {"remove": await act({"Action": "QueueRemove", "Queue": "service", "Interface": "chen"}),
                   "add": await act({"Action": "QueueAdd", "Queue": "service", "Interface": "Agent/wu"}),
                   "to menu": await act({"Action": "Redirect", "Channel": "DAHDI/hotline-0", "Context": "ivr",
                                         "Exten": "account"}),
                   "to queue": await act({"Action": "Redirect", "Channel": "DAHDI/hotline-0", "Context": "queue",
                                          "Exten": "service"}),
                   # Asterisk's way: "successfully queued", then OriginateResponse with the same ActionID
                   "originate": await act({"Action": "Originate", "Channel": f"DAHDI/pstn/{OUT}",
                                           "Context": "ivr", "Exten": "main", "Async": "true"}, as_list=None)}
            out["hangup"] = await act({"Action": "Hangup", "Channel": out["originate"][0]["Uniqueid"]})
            m.close()
            return out
        out = asyncio.run(session())
        wait_for(lambda: len(events(log, "call.end")) >= 3, "the calls' ends", [hw, server])
        server.send_signal(signal.SIGTERM)
        assert server.wait(60) == 0
    finally:
        stop([server, hw])
    assert out["remove"].success and out["remove"]["Message"] == "Removed interface from queue"
    assert out["add"].success and out["add"]["Message"] == "Added interface to queue"
    assert out["to menu"].success and out["to queue"].success and out["hangup"].success
    members = [(e["agent"], e["queue"], e["joined"], e["why"]) for e in events(log, "acd.member")]
    assert members == [("chen", "service", False, "AMI (acd)"), ("wu", "service", True, "AMI (acd)")]
    # the caller: the account menu, then the queue: wu alone is offered it, and answers
    caller = events(log, "call.play")[0]["call_id"]
    assert ["enter_account"] in [e["items"] for e in events(log, "call.play") if e["call_id"] == caller]
    decision, = [e for e in events(log, "acd.decision") if e["call_id"] == caller]
    assert decision["queue"] == "service" and decision["chosen"] == ["wu"]
    bridge, = [e for e in events(log, "call.bridge") if e["call_id"] == caller]
    assert bridge["agent"] == "wu" and bridge["line"] == 4
    # the originated call: queued, answered (OriginateResponse with the ActionID), in the main menu
    queued, response = out["originate"]
    assert queued["Response"] == "Success" and queued["Message"] == "Originate successfully queued"
    out_id = queued["Uniqueid"]
    assert (response["Event"], response["Response"], response["Reason"], response["Uniqueid"]) == (
        "OriginateResponse", "Success", "4", out_id)
    assert response["ActionID"] == queued["ActionID"]
    steps = [(e["state"], e["line"]) for e in events(log, "call.originate")]
    assert steps == [("dialing", "hotline:1"), ("answered", "hotline:1")]
    plays = [e["items"] for e in events(log, "call.play") if e["call_id"] == out_id]
    assert plays and plays[0][0] == "main_menu", plays
    end_out, = [e for e in events(log, "call.end") if e["call_id"] == out_id]
    assert end_out["reason"] == "hung up by AMI (acd)" and end_out["answered"] is True
    audit = [json.loads(line) for line in (tmp_path / "admin-audit.jsonl").read_text().splitlines()]
    assert [(a["path"], a["status"]) for a in audit] == [
        ("/ami/QueueRemove", 200), ("/ami/QueueAdd", 200), ("/ami/Redirect", 200), ("/ami/Redirect", 200),
        ("/ami/Originate", 200), ("/ami/Hangup", 200)]
    assert audit[4]["detail"] == {"trunk": "pstn", "number": OUT, "then": {"ivr": "main"}}
