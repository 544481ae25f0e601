"""The AMI feed's actions on the real `voiceboard serve` (hwsim in lockstep), panoramisk as the client.

An `integration` user ([[api.user]]) logs in with its name and token, sees the caller waiting
in the IVR with CoreShowChannels, sets agent chen not ready with a reason code and ready
again (QueuePause), and hangs the call up (Hangup on its channel); a `monitor` user's Hangup
is refused. The server's events and the audit log show each.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
from typing import Any

from panoramisk import Manager

from servekit import CONFIGS, events, hwsim, listening_port, serve_with_ami, stop, wait_for

USERS = """
[api]

[[api.user]]
name = "acd"
role = "integration"
token_file = "acd-token"

[[api.user]]
name = "wall"
role = "monitor"
token_file = "wall-token"
"""
SCENARIO = """
[scenario]
duration = 600.0
seed = 5

[[caller]]               # waits in the main menu until AMI hangs up on it
at = 1.0
line = "BOARD:0"
number = "13911110060"
hangup_after = 500.0
"""
GUARD = 60.0       # seconds: a guard against a wedged process, never a timing check


def test_an_integration_user_drives_a_real_call_over_ami(tmp_path):
    board = f"amie{os.getpid()}"
    base = (CONFIGS / "server-recording.toml").read_text().replace("hotline_e2e", board)
    cfg = tmp_path / "server.toml"
    cfg.write_text(base.replace("first_timeout = 3000", "first_timeout = 400000") + USERS)
    hw = hwsim(tmp_path, board, SCENARIO)
    log = tmp_path / "serve.log"
    server = serve_with_ami(cfg, log)
    try:
        port = listening_port(log, "ami", [hw, server])
        wait_for(lambda: events(log, "call.play"), "the caller in the IVR", [hw, server])

        async def session() -> dict[str, Any]:
            async def login(name: str) -> Manager:
                m = Manager(host="127.0.0.1", port=port, username=name,
                            secret=(tmp_path / f"{name}-token").read_text().strip(),
                            ping_delay=3600, reconnect_timeout=3600)
                await asyncio.wait_for(m.connect(), GUARD)
                return m
            acd, wall = await login("acd"), await login("wall")

            async def act(m: Manager, action: dict[str, str]) -> Any:
                return await asyncio.wait_for(m.send_action(action), GUARD)
            out = {"channels": await act(acd, {"Action": "CoreShowChannels"}),
                   "pause": await act(acd, {"Action": "QueuePause", "Interface": "chen", "Paused": "true",
                                            "Reason": "training"}),
                   "unpause": await act(acd, {"Action": "QueuePause", "Interface": "chen", "Paused": "false"}),
                   "wall hangup": await act(wall, {"Action": "Hangup", "Channel": "DAHDI/hotline-0"}),
                   "hangup": await act(acd, {"Action": "Hangup", "Channel": "DAHDI/hotline-0", "Cause": "16"})}
            acd.close()
            wall.close()
            return out
        out = asyncio.run(session())
        wait_for(lambda: events(log, "call.end"), "the call's end", [hw, server])
        server.send_signal(signal.SIGTERM)
        assert server.wait(60) == 0
    finally:
        stop([server, hw])
    call_id = events(log, "call.play")[0]["call_id"]
    shown = [dict(m) for m in out["channels"] if m.get("Event") == "CoreShowChannel"]
    assert [(c["Channel"], c["Uniqueid"], c["CallerIDNum"]) for c in shown] == [
        ("DAHDI/hotline-0", call_id, "13911110060")]
    assert out["pause"].success and out["unpause"].success and out["hangup"].success
    assert not out["wall hangup"].success and "role monitor" in out["wall hangup"]["Message"]
    states = [(e["state"], e["by"]) for e in events(log, "agent.state") if e["agent"] == "chen" and e["changed"]]
    assert states[-2:] == [("not_ready", "AMI (acd)"), ("ready", "AMI (acd)")]
    end, = events(log, "call.end")
    assert end["call_id"] == call_id and end["reason"] == "hung up by AMI (acd), cause 16"
    audit = [json.loads(line) for line in (tmp_path / "admin-audit.jsonl").read_text().splitlines()]
    assert [(a["api_user"], a["path"], a["status"], a["result"]) for a in audit] == [
        ("acd", "/ami/QueuePause", 200, "done"), ("acd", "/ami/QueuePause", 200, "done"),
        ("wall", "/ami/Hangup", 403, "refused"), ("acd", "/ami/Hangup", 200, "done")]
    assert audit[0]["detail"] == {"agent": "chen", "paused": True, "reason": "training"}
