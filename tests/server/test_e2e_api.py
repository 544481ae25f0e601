"""The network API's event stream from the real `voiceboard serve` process (hwsim in lockstep).

A WebSocket client (aiohttp's) follows a call as it happens, the server is
stopped and started again, and the client resumes from the last seq it saw:
the second run's call arrives with no event twice and none missing (the
journal has the same events). Waits are guards against a wedged process.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp

from voiceserver.core.callids import default_server_id
from voiceserver.core.journal import read_since

from servekit import events, hwsim, server_config, stop, wait_for

RECORD_ALL = '[recording]\nlayout = "stereo"\n'
TWO_RUNS = """
[scenario]
duration = 400.0
seed = 5

[[caller]]          # run 1
at = 1.0
line = "BOARD:0"
number = "13911110030"
hangup_after = 4.0

[[caller]]          # run 2 (lockstep: simulated time stands still between the runs)
at = 200.0
line = "BOARD:1"
number = "13911110031"
hangup_after = 4.0
"""


def serve_with_api(cfg: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "boarddrv.cli", "serve", "--config", str(cfg),
                             "--lockstep-sync", "--status-port", "-1", "--api-port", "0"],
                            stdout=subprocess.DEVNULL, stderr=open(log, "w"))


async def follow(port: int, token: str, since: int | None, until_caller: str) -> list[dict[str, Any]]:
    """Events from the stream until the call of `until_caller` has ended."""
    url = f"http://127.0.0.1:{port}/v1/events" + (f"?since={since}" if since is not None else "")
    got: list[dict[str, Any]] = []
    call_id = None
    async with aiohttp.ClientSession() as s, s.ws_connect(url, headers={"Authorization": f"Bearer {token}"}) as ws:
        while True:
            msg = await asyncio.wait_for(ws.receive(), 90.0)     # a guard, not a timing check
            assert msg.type == aiohttp.WSMsgType.TEXT, msg
            ev = json.loads(msg.data)
            got.append(ev)
            if ev["kind"] == "call.start" and ev.get("caller") == until_caller:
                call_id = ev["call_id"]
            if ev["kind"] == "call.offer" and ev.get("caller") == until_caller:
                call_id = ev["call_id"]
            if call_id is not None and ev["kind"] == "call.end" and ev["call_id"] == call_id:
                return got


def test_a_client_follows_calls_across_a_server_restart(tmp_path):
    board = f"api{os.getpid()}"
    cfg = server_config(tmp_path / "server.toml", board, RECORD_ALL)
    hw = hwsim(tmp_path, board, TWO_RUNS)
    procs: list[subprocess.Popen | None] = []
    try:
        log1 = tmp_path / "serve1.log"
        procs.append(serve_with_api(cfg, log1))
        wait_for(lambda: events(log1, "api.listening"), "the API listening", [hw, procs[-1]])
        port = events(log1, "api.listening")[0]["port"]
        token = (tmp_path / "admin-token").read_text().strip()
        first = asyncio.run(follow(port, token, 0, "13911110030"))
        procs[-1].send_signal(signal.SIGTERM)
        assert procs[-1].wait(60) == 0

        log2 = tmp_path / "serve2.log"
        procs.append(serve_with_api(cfg, log2))
        wait_for(lambda: events(log2, "api.listening"), "the API listening again", [hw, procs[-1]])
        port = events(log2, "api.listening")[0]["port"]
        second = asyncio.run(follow(port, token, first[-1]["seq"], "13911110031"))
        procs[-1].send_signal(signal.SIGTERM)
        assert procs[-1].wait(60) == 0
    finally:
        stop([*procs, hw])

    kinds = [e["kind"] for e in first]
    for k in ("board.start", "call.start", "call.callerid", "call.offer", "call.answer", "call.end"):
        assert k in kinds, k
    seqs = [e["seq"] for e in first + second]
    assert seqs == sorted(set(seqs)), "every event once, in order"
    assert [e["kind"] for e in second if e["kind"] == "journal.gap"] == [], "a clean stop leaves no gap"
    # the second run's events after the resume point: the end of run 1 (still running when the
    # client left), then run 2's own; the journal holds the same events
    stored = [e for e in read_since(str(tmp_path / "events.db"), default_server_id(), 0, limit=100_000)
              if e["seq"] is not None and e["seq"] <= seqs[-1]]
    assert [e["seq"] for e in stored] == seqs
    assert all({**e, "time": s["time"]} == s for e, s in zip(first + second, stored, strict=True))


def test_panoramisk_follows_a_real_call_on_the_ami_feed(tmp_path):
    """`voiceboard serve --ami-port 0` on hwsim; panoramisk logs in with the admin token and sees
    a call as an Asterisk would show it, from Newchannel to Hangup, caller ID included. AMI has
    no replay: the call followed is the second one (200 simulated seconds in), which starts
    well after the client has logged in."""
    from panoramisk import Manager
    board = f"ami{os.getpid()}"
    cfg = server_config(tmp_path / "server.toml", board, RECORD_ALL)
    hw = hwsim(tmp_path, board, TWO_RUNS)
    log = tmp_path / "serve.log"
    proc = subprocess.Popen([sys.executable, "-m", "boarddrv.cli", "serve", "--config", str(cfg),
                             "--lockstep-sync", "--status-port", "-1", "--ami-port", "0"],
                            stdout=subprocess.DEVNULL, stderr=open(log, "w"))
    got: list[dict[str, str]] = []

    def second_call() -> list[dict[str, str]]:
        ids = {e["Uniqueid"] for e in got if e["Event"] == "NewCallerid" and e["CallerIDNum"] == "13911110031"}
        return [e for e in got if e.get("Uniqueid") in ids]
    try:
        wait_for(lambda: events(log, "api.listening"), "the AMI feed listening", [hw, proc])
        listening = events(log, "api.listening")[0]
        assert listening["protocol"] == "ami"
        token = (tmp_path / "admin-token").read_text().strip()

        async def follow() -> None:
            manager = Manager(host="127.0.0.1", port=listening["port"], username="acd", secret=token,
                              ping_delay=3600, reconnect_timeout=3600)
            manager.register_event("*", lambda _m, ev: got.append(dict(ev)))
            await manager.connect()
            deadline = asyncio.get_running_loop().time() + 120    # a guard, not a timing check
            while not any(e["Event"] == "Hangup" for e in second_call()):
                assert asyncio.get_running_loop().time() < deadline, [e["Event"] for e in got]
                await asyncio.sleep(0.05)
            manager.close()
        asyncio.run(follow())
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        stop([proc, hw])
    call = second_call()
    names = [e["Event"] for e in call]
    assert names[0] == "Newchannel" and names[-1] == "Hangup", names
    for name in ("NewCallerid", "Newstate"):
        assert name in names, (name, names)
    assert len({e["Uniqueid"] for e in call}) == 1 and call[0]["Uniqueid"].startswith(default_server_id())
    assert call[0]["Channel"].endswith("-1")                     # line 1 of the board
    assert [int(e["Seq"]) for e in call] == sorted(int(e["Seq"]) for e in call)


LONG_CALL = """
[scenario]
duration = 600.0
seed = 5

[[caller]]          # stays in the IVR until the API hangs up on it
at = 1.0
line = "BOARD:0"
number = "13911110040"
hangup_after = 500.0
"""


def test_the_api_hangs_up_a_call_and_sets_an_agent_not_ready_with_an_audit_line_each(tmp_path):
    """POST /v1/calls/ID/hangup ends a real call (the record and the events give the reason);
    POST /v1/agents/chen/not-ready changes the agent; an unknown call is a 404, a bad body a
    400; each POST is a line of the audit log (who, what, result)."""
    board = f"cmd{os.getpid()}"
    cfg = server_config(tmp_path / "server.toml", board, RECORD_ALL)
    hw = hwsim(tmp_path, board, LONG_CALL)
    log = tmp_path / "serve.log"
    proc = serve_with_api(cfg, log)
    try:
        wait_for(lambda: events(log, "api.listening"), "the API listening", [hw, proc])
        port = events(log, "api.listening")[0]["port"]
        wait_for(lambda: events(log, "call.answer"), "the call answered", [hw, proc])
        call_id = events(log, "call.answer")[0]["call_id"]
        auth = {"Authorization": f"Bearer {(tmp_path / 'admin-token').read_text().strip()}"}

        async def commands() -> list[tuple[int, dict[str, Any]]]:
            base = f"http://127.0.0.1:{port}/v1"
            out = []
            async with aiohttp.ClientSession(headers=auth) as s:
                for url, body in [(f"{base}/calls/{call_id}/hangup", {"reason": "fraud check"}),
                                  (f"{base}/calls/{call_id}/hangup", None),           # gone now
                                  (f"{base}/calls/x/hangup", {"reason": 5}),
                                  (f"{base}/agents/chen/not-ready", None),
                                  (f"{base}/agents/nobody/ready", None),
                                  (f"{base}/agents/chen/dance", None)]:
                    async with s.post(url, json=body) as r:
                        out.append((r.status, await r.json()))
            return out
        answers = asyncio.run(commands())
        wait_for(lambda: events(log, "call.end"), "the call's end", [hw, proc])
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        stop([proc, hw])
    (ok, body), gone, bad, (agent_ok, agent), nobody, dance = answers
    assert ok == 200 and body == {"hung_up": call_id, "reason": "fraud check"}
    assert gone[0] == 404 and "no call" in gone[1]["error"]
    assert bad[0] == 400 and "reason" in bad[1]["error"]
    assert agent_ok == 200 and agent["state"] == "not_ready"
    assert nobody[0] == 404 and dance[0] == 404 and "login, logout" in dance[1]["error"]
    end, = events(log, "call.end")
    assert end["call_id"] == call_id and end["reason"] == "fraud check"
    assert [e["state"] for e in events(log, "agent.state")][-1] == "not_ready"
    audit = [json.loads(line) for line in (tmp_path / "admin-audit.jsonl").read_text().splitlines()]
    done = [(a["path"], a["status"], a["result"]) for a in audit if a["method"] == "POST"]
    assert done[0] == (f"/v1/calls/{call_id}/hangup", 200, "done")
    assert ("/v1/agents/chen/not-ready", 200, "done") in done
    assert all(a["user"] is not None and a["token"] == "ok" for a in audit if a["method"] == "POST")
