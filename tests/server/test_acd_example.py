"""The example ACD program (voiceserver/examples/acd.py, docs/acd-example.md) against the real
`voiceboard serve` on hwsim (lockstep), each a process of its own.

A caller rings line 0 of the hotline and waits in the IVR's main menu (its timeout is raised
here so that it waits for the program, however fast lockstep runs); the program, an
`integration` user, pops the caller's number on the screen and routes the call to queue
`service`; agent chen's phone (port 5) rings, answers, and hangs up after 3 s. The program's
output, the server's events and its audit log show each step, and the program's state file
the seq a restarted program would resume after.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from servekit import CONFIGS, events, hwsim, stop, wait_for

API = """
[api]

[[api.user]]
name = "acd"
role = "integration"
token_file = "acd-token"
"""
SCENARIO = """
[scenario]
duration = 600.0
seed = 5

[[agent]]                # chen's phone
phones = "BOARD:5"
answer_after = 1.0
script = [{ after = 3.0, hangup = true }]

[[caller]]               # waits in the main menu, pressing nothing
at = 1.0
line = "BOARD:0"
number = "13911110050"
hangup_after = 500.0
"""


def test_the_example_acd_pops_the_caller_and_routes_the_call_to_a_queue(tmp_path):
    board = f"acdex{os.getpid()}"
    base = (CONFIGS / "server-recording.toml").read_text().replace("hotline_e2e", board)
    assert "first_timeout = 3000" in base
    cfg = tmp_path / "server.toml"
    cfg.write_text(base.replace("first_timeout = 3000", "first_timeout = 400000") + API)
    hw = hwsim(tmp_path, board, SCENARIO)
    log = tmp_path / "serve.log"
    server = subprocess.Popen([sys.executable, "-m", "boarddrv.cli", "serve", "--config", str(cfg),
                               "--lockstep-sync", "--status-port", "-1", "--api-port", "0"],
                              stdout=subprocess.DEVNULL, stderr=open(log, "w"))
    acd = None
    try:
        wait_for(lambda: events(log, "api.listening"), "the API listening", [hw, server])
        port = events(log, "api.listening")[0]["port"]
        acd = subprocess.Popen([sys.executable, "-m", "voiceserver.examples.acd", "--url", f"http://127.0.0.1:{port}",
                                "--token-file", str(tmp_path / "acd-token"), "--queue", "service",
                                "--since", "0", "--state", str(tmp_path / "acd-state.json"), "--calls", "1"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = acd.communicate(timeout=180)         # a guard against a wedged run
        assert acd.returncode == 0, err
        server.send_signal(signal.SIGTERM)
        assert server.wait(60) == 0
    finally:
        stop([acd, server, hw])
    lines = out.splitlines()
    assert lines[0].startswith("READY ") and "queue=service" in lines[0]
    call_id = events(log, "call.callerid")[0]["call_id"]
    assert [line.split()[0] for line in lines[1:]] == ["POP", "ROUTE", "AGENT", "LEG-END", "END"], out
    assert lines[1] == f"POP 13911110050 - call={call_id} line=hotline:0"
    assert lines[2] == f"ROUTE call={call_id} queue=service -> 200"
    assert lines[3] == f"AGENT chen call={call_id}"
    assert lines[4] == f"LEG-END call={call_id} line=hotline:5 reason=phone hung up"   # chen hung up
    assert lines[5] == f"END call={call_id} reason=other party hung up"
    # the call's effect on the server: out of the IVR into the queue, to chen
    joined, = [e for e in events(log, "acd.joined") if e["call_id"] == call_id]
    assert joined["queue"] == "service"
    assert [e["agent"] for e in events(log, "call.bridge") if e["call_id"] == call_id] == ["chen"]
    outcome, = [e for e in events(log, "acd.outcome") if e["call_id"] == call_id]
    assert (outcome["outcome"], outcome["agent"]) == ("answered", "chen")
    # who did it: the program's user, in the audit log
    audit = [json.loads(line) for line in (tmp_path / "admin-audit.jsonl").read_text().splitlines()]
    assert [(a["api_user"], a["role"], a["path"], a["status"]) for a in audit] == [
        ("acd", "integration", f"/v1/calls/{call_id}/route", 200)]
    # where a restarted program would resume: after the call's end
    state = json.loads((tmp_path / "acd-state.json").read_text())
    end, = [e for e in events(log, "call.end") if e["call_id"] == call_id and e["chan"] == 0]
    assert state["last_seq"] == end["seq"]
