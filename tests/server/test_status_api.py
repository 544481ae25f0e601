"""The status API: the protocol on bytes, then a real socket on port 0 read by the CLI."""
from __future__ import annotations

import asyncio
import json
import socket

import pytest

from voiceserver.acd.agents import AgentSpec
from voiceserver.acd.distributor import Acd
from voiceserver.acd.queues import Member, QueueSpec
from voiceserver.api.status import HttpError, StatusApi, parse_request, response
from voiceserver.cli import apiclient
from voiceserver.cli import queues as queues_cli


def test_parse_request_and_response_bytes() -> None:
    assert parse_request(b"GET /queues?x=1 HTTP/1.1\r\nHost: a\r\n\r\n") == ("GET", "/queues")
    assert parse_request(b"GET /agents/ HTTP/1.0\r\n\r\n") == ("GET", "/agents")
    with pytest.raises(HttpError) as exc:
        parse_request(b"hello\r\n\r\n")
    assert exc.value.status == 400
    raw = response(200, {"a": "队列"})
    head, body = raw.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert f"Content-Length: {len(body)}".encode() in head
    assert json.loads(body) == {"a": "队列"}


def make_acd() -> Acd:
    agents = [AgentSpec("alice", phone=("hotline", 4)), AgentSpec("bob", phone=("hotline", 5)),
              AgentSpec("carol", phone=("hotline", 6), start="logged_out")]
    acd = Acd(agents, [QueueSpec("service", tuple(Member(a.name) for a in agents),
                                 strategy="round-robin")])
    acd.call_arrived("c1", "service", "100", t=0)
    acd.ring_answered("alice", "c1", 2_000)
    acd.call_arrived("c2", "service", "101", t=3_000)
    return acd


TOKEN = "t" * 43


def api_for(acd: Acd, **kw) -> StatusApi:
    kw.setdefault("token", TOKEN)
    return StatusApi(queues=acd.queue_rows, agents=acd.agent_rows,
                     channels=lambda: [{"board": "hotline", "chan": 0, "state": "connected"}], **kw)


def test_handle_routes_without_io() -> None:
    api = api_for(make_acd())
    assert api.handle("GET", "/") == (200, {"endpoints": ["/agents", "/channels", "/queues"],
                                            "admin": []})
    assert api.handle("GET", "/nope")[0] == 404
    assert api.handle("POST", "/queues")[0] == 405
    broken = StatusApi(queues=lambda: 1 / 0, agents=list, channels=list)
    status, body = broken.handle("GET", "/queues")
    assert status == 500 and body == {"error": "internal error (ZeroDivisionError); see the server log"}


def test_admin_actions_are_post_only_and_report_failures() -> None:
    calls = []
    api = api_for(make_acd(), admin={"reload": lambda: calls.append(1) or {"reloaded": True},
                                     "broken": lambda: {}["x"]})
    assert api.handle("GET", "/")[1]["admin"] == ["/admin/broken", "/admin/reload"]
    assert api.handle("GET", "/admin/reload")[0] == 405 and not calls
    assert api.handle("POST", "/admin/reload") == (200, {"reloaded": True}) and calls == [1]
    status, body = api.handle("POST", "/admin/broken")
    assert status == 500 and body["error"] == "internal error (KeyError); see the server log"


def test_loopback_only() -> None:
    with pytest.raises(ValueError, match="loopback only"):
        api_for(make_acd(), host="0.0.0.0")


def test_cli_reads_a_real_acd_over_a_socket(capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    acd = make_acd()
    token_file = tmp_path / "admin-token"
    token_file.write_text(TOKEN + "\n")

    async def scenario() -> tuple[int, int, dict, str]:
        async with api_for(acd) as api:
            where = f"127.0.0.1:{api.port}"
            opts = ["--api", where, "--token-file", str(token_file)]
            client = apiclient.ApiClient("127.0.0.1", api.port, TOKEN, network=False)
            channels = await asyncio.to_thread(client.fetch, "/channels")
            rc_json = await asyncio.to_thread(queues_cli.main, [*opts, "--json"])
            doc = json.loads(capsys.readouterr().out)
            rc_once = await asyncio.to_thread(queues_cli.main, [*opts, "--once"])
            table = capsys.readouterr().out
            with pytest.raises(apiclient.StatusUnreachable, match="HTTP 404"):
                await asyncio.to_thread(client.fetch, "/nope")
            with pytest.raises(apiclient.StatusUnreachable, match="HTTP 401"):
                await asyncio.to_thread(apiclient.ApiClient("127.0.0.1", api.port, "", network=False).fetch,
                                        "/queues")
        assert channels == {"channels": [{"board": "hotline", "chan": 0, "state": "connected"}]}
        return rc_json, rc_once, doc, table

    rc_json, rc_once, doc, table = asyncio.run(scenario())
    assert rc_json == 0 and rc_once == 0
    (q,) = doc["queues"]
    assert q["name"] == "service" and q["waiting"] == 1 and q["stats"]["answered"] == 1
    assert q["callers"][0]["call_id"] == "c2" and q["callers"][0]["ringing"] == ["bob"]
    states = {a["name"]: a["state"] for a in doc["agents"]}
    assert states == {"alice": "on_call", "bob": "ringing", "carol": "logged_out"}
    carol = next(a for a in doc["agents"] if a["name"] == "carol")
    assert carol["why_unavailable"] == "logged out"
    assert "service" in table and "round-robin" in table and "on_call" in table
    assert "logged out" in table


def test_cli_unreachable_is_an_error(capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()                                   # nothing listens there now
    token_file = tmp_path / "admin-token"
    token_file.write_text(TOKEN)
    rc = queues_cli.main(["--api", f"127.0.0.1:{port}", "--token-file", str(token_file), "--once"])
    err = capsys.readouterr().err
    assert rc == 2
    assert f"cannot reach the status API at 127.0.0.1:{port}" in err
    assert queues_cli.main(["--api", "nonsense", "--token-file", str(token_file)]) == 2
    assert "expected HOST:PORT" in capsys.readouterr().err
