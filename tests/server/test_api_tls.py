"""The network API over TLS ([api] tls_cert / tls_key), with real clients on loopback.

The certificate is self-signed, made in the test with the openssl binary
(apikit.self_signed). Clients that trust it (http.client, aiohttp's
WebSocket through the bundled EventClient, and `voiceboard queues` from the
config) get their answers; a client that does not trust it, and a plain
HTTP request on the TLS port, get nothing; a key others may read is refused
at start.
"""
from __future__ import annotations

import asyncio
import http.client
import json
import os
import ssl

import pytest

from voiceserver.api.client import EventClient, StreamRefused
from voiceserver.api.network import NetworkApi
from voiceserver.cli import agent as agent_cli
from voiceserver.cli import queues as queues_cli
from voiceserver.core.events import EventBus, ServerEventKind

from apikit import TOKENS, USERS, LiveApi, self_signed


def trusting(cert: str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=cert)


def test_https_and_wss_with_a_trusted_self_signed_certificate(tmp_path):
    cert, key = self_signed(tmp_path)
    with LiveApi(tmp_path, tls=(cert, key)) as live:
        who = live.request("GET", "/v1/whoami", user="acd", context=trusting(cert))
        denied = live.request("POST", "/v1/reload", user="mon", context=trusting(cert))

        async def stream() -> list[dict]:
            got = []
            async with EventClient(f"https://127.0.0.1:{live.port}", TOKENS["mon"], since=0,
                                   ssl=trusting(cert)) as events:
                async for ev in events:
                    got.append(ev)
                    if len(got) == 3:
                        return got
            return got

        for i in range(3):
            live.on_loop(lambda i=i: live.bus.publish(0, ServerEventKind.SPAN_ALARM, board="b", span=1,
                                                      alarm="LOS", set=bool(i % 2)))
        events = live.call(stream())
    assert who == (200, {"user": "acd", "role": "integration", "agent": None})
    assert denied[0] == 403
    assert [e["seq"] for e in events] == [1, 2, 3] and events[0]["kind"] == "span.alarm"


def test_a_client_that_does_not_trust_the_certificate_and_plain_http_get_nothing(tmp_path):
    cert, key = self_signed(tmp_path)
    other, _ = self_signed(tmp_path, "other")
    with LiveApi(tmp_path, tls=(cert, key)) as live:
        with pytest.raises(ssl.SSLCertVerificationError):
            live.request("GET", "/v1/whoami", context=trusting(other))
        with pytest.raises(ssl.SSLCertVerificationError):
            live.request("GET", "/v1/whoami", context=ssl.create_default_context())     # the system's CAs
        conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=10)
        conn.request("GET", "/v1/whoami", headers={"Authorization": f"Bearer {TOKENS['admin']}"})
        with pytest.raises((http.client.HTTPException, ConnectionError)):    # no HTTP answer at all
            conn.getresponse()
        conn.close()

        async def stream() -> None:
            async with EventClient(f"https://127.0.0.1:{live.port}", TOKENS["admin"], ssl=trusting(other)) as ev:
                async for _ in ev:
                    pass
        with pytest.raises(StreamRefused, match="certificate is not trusted"):
            live.call(stream())
    assert live.book.done == []


def test_a_key_others_may_read_or_a_wrong_pair_is_refused_at_start(tmp_path):
    cert, key = self_signed(tmp_path)
    other_cert, _ = self_signed(tmp_path, "other")

    async def start(tls: tuple[str, str]) -> str:
        api = NetworkApi(EventBus(), host="127.0.0.1", port=0, users=USERS, tls=tls)
        with pytest.raises(OSError) as err:
            await api.start()
        return str(err.value)
    os.chmod(key, 0o644)
    assert f"TLS key {key} has mode 0644: others may read it; `chmod 600 {key}`" in asyncio.run(start((cert, key)))
    os.chmod(key, 0o600)
    assert "cannot use the TLS certificate" in asyncio.run(start((other_cert, key)))
    assert "No such file" in asyncio.run(start((cert, str(tmp_path / "none.key"))))


def test_voiceboard_queues_and_agent_find_the_https_api_and_its_certificate_in_the_config(tmp_path, capsys):
    """[api] with tls_cert: the CLIs go to https://, trusting that certificate, with the admin's
    token file or --user's from [[api.user]] (a monitor may read, not change)."""
    cert, key = self_signed(tmp_path)
    with LiveApi(tmp_path, tls=(cert, key)) as live:
        for name in ("mon", "admin"):
            (tmp_path / f"{name}-token").write_text(TOKENS[name] + "\n")
            (tmp_path / f"{name}-token").chmod(0o600)
        cfg = tmp_path / "server.toml"
        cfg.write_text(f'[api]\nbind = "127.0.0.1:{live.port}"\ntls_cert = "{cert}"\ntls_key = "{key}"\n'
                       f'[[api.user]]\nname = "mon"\nrole = "monitor"\ntoken_file = "mon-token"\n')
        rc_queues = queues_cli.main(["--config", str(cfg), "--user", "mon", "--json"])
        queues = capsys.readouterr()
        rc_mon = agent_cli.main(["login", "1001", "--config", str(cfg), "--user", "mon"])
        mon = capsys.readouterr()
        rc_admin = agent_cli.main(["not-ready", "1001", "--config", str(cfg), "--reason", "lunch"])
        rc_login = agent_cli.main(["login", "1001", "--config", str(cfg)])
        admin = capsys.readouterr()
        rc_nobody = agent_cli.main(["login", "1001", "--config", str(cfg), "--user", "nobody"])
        nobody = capsys.readouterr()
    assert rc_queues == 0, queues.err
    assert json.loads(queues.out)["agents"][0] == {"name": "1001", "state": "logged_out"}
    assert rc_mon == 1 and "HTTP 403" in mon.err and "role monitor" in mon.err
    assert rc_admin == 1 and "HTTP 409" in admin.err and "log in first" in admin.err
    assert rc_login == 0 and admin.out.strip() == "1001: not_ready"
    assert rc_nobody == 2 and "no such [[api.user]] in the config (known: admin, mon)" in nobody.err
    assert live.book.done == [("agent", "1001", "login", "network API (admin)", "")]
