"""A config reload re-reads the network API's users and its TLS certificate, on real sockets
(apikit.LiveApi; NetworkApi.reload_access is what VoiceServer's reload calls, and the last
test goes through `POST /v1/reload` of a real server).

Users: a removed user's token is refused from the next request on, and its open event
stream is closed at once (1008, the reason in the close); a changed user's (its role) too;
a new user's token works; the others' streams go on. TLS: new connections get the new
certificate; a certificate that cannot be used leaves the old one serving and the reload
says why.
"""
from __future__ import annotations

import asyncio
import json
import os
import ssl
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from voiceserver.api.roles import ApiUser, Role, token_digest
from voiceserver.core.events import ServerEventKind

from acdkit import HEAD, HWSIM, scenario, server_config
from apikit import TOKENS, USERS, LiveApi, self_signed, until

NEW_TOKEN = "new-token-" + "y" * 32
NEW = ApiUser("new", Role.MONITOR, token_digest(NEW_TOKEN))


def trusting(cert: str) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=cert)


def without(name: str) -> tuple[ApiUser, ...]:
    return tuple(u for u in USERS if u.name != name)


async def follow(live: LiveApi, user: str, got: list[Any], token: str | None = None) -> tuple[int | None, str]:
    """`user`'s event stream until the server closes it: (close code, reason)."""
    async with aiohttp.ClientSession() as s, \
            s.ws_connect(f"http://127.0.0.1:{live.port}/v1/events",
                         headers={"Authorization": f"Bearer {token or TOKENS[user]}"}) as ws:
        got.append("open")
        while True:
            msg = await ws.receive()
            if msg.type != aiohttp.WSMsgType.TEXT:
                return ws.close_code, msg.extra or ""
            got.append(json.loads(msg.data))


def alarm(live: LiveApi) -> None:
    live.on_loop(lambda: live.bus.publish(0, ServerEventKind.SPAN_ALARM, board="b", span=1, alarm="LOS", set=True))


def test_a_removed_users_token_is_refused_and_its_stream_closed_while_the_others_go_on(tmp_path):
    with LiveApi(tmp_path) as live:
        mon_got: list[Any] = []
        acd_got: list[Any] = []
        mon = asyncio.run_coroutine_threadsafe(follow(live, "mon", mon_got), live.loop)
        acd = asyncio.run_coroutine_threadsafe(follow(live, "acd", acd_got), live.loop)
        live.call(until(lambda: mon_got and acd_got and live.api.stream.clients == 2, "both streams open"))
        alarm(live)
        live.call(until(lambda: len(mon_got) == 2 and len(acd_got) == 2, "the first event on both"))
        assert live.request("GET", "/v1/whoami", user="mon")[0] == 200
        done = live.on_loop(live.api.reload_access, (*without("mon"), NEW), None)
        assert done == {"users": {"added": ["new"], "removed": ["mon"], "changed": [], "streams_closed": ["mon"]}}
        code, reason = mon.result(10)
        assert code == 1008 and reason == "user mon: removed or changed by a config reload"
        status, body = live.request("GET", "/v1/whoami", user="mon")
        assert status == 401 and "the token is wrong" in body["error"]
        conn_new = live.request("GET", "/v1/whoami", user=None,
                                headers={"Authorization": f"Bearer {NEW_TOKEN}"})
        assert conn_new == (200, {"user": "new", "role": "monitor", "agent": None})
        alarm(live)                                        # the integration's stream goes on
        live.call(until(lambda: len(acd_got) == 3, "the second event on acd's stream"))
        assert not acd.done() and len(mon_got) == 2
        assert live.api.stream.clients == 1
        live.on_loop(live.api.reload_access, USERS, None)   # back: mon's token works again
        assert live.request("GET", "/v1/whoami", user="mon")[0] == 200
    assert acd.result(10)[0] == 1001                       # the server stopping: going away


def test_a_user_whose_role_changed_is_cut_off_and_comes_back_with_the_new_role(tmp_path):
    with LiveApi(tmp_path) as live:
        got: list[Any] = []
        stream = asyncio.run_coroutine_threadsafe(follow(live, "sup", got), live.loop)
        live.call(until(lambda: got and live.api.stream.clients == 1, "the stream open"))
        demoted = tuple(ApiUser(u.name, Role.MONITOR, u.token_sha256) if u.name == "sup" else u for u in USERS)
        done = live.on_loop(live.api.reload_access, demoted, None)
        assert done["users"] == {"added": [], "removed": [], "changed": ["sup"], "streams_closed": ["sup"]}
        assert stream.result(10)[0] == 1008
        assert live.request("GET", "/v1/whoami", user="sup") == (200, {"user": "sup", "role": "monitor",
                                                                       "agent": None})
        assert live.request("POST", "/v1/calls/c-1/listen", user="sup", body={"supervisor": "1002"})[0] == 403


def test_new_connections_get_the_new_certificate_and_a_bad_one_keeps_the_old(tmp_path):
    cert, key = self_signed(tmp_path)
    cert2, key2 = self_signed(tmp_path, "renewed")
    cert3, key3 = self_signed(tmp_path, "third")
    with LiveApi(tmp_path, tls=(cert, key)) as live:
        assert live.request("GET", "/v1/whoami", context=trusting(cert))[0] == 200
        done = live.on_loop(live.api.reload_access, None, (cert2, key2))
        assert done == {"tls": {"certificate": cert2, "reloaded": True}}
        assert live.request("GET", "/v1/whoami", context=trusting(cert2))[0] == 200
        with pytest.raises(ssl.SSLCertVerificationError):
            live.request("GET", "/v1/whoami", context=trusting(cert))
        # a key others may read, a key that is not the certificate's, no file: the renewed one stays
        os.chmod(key3, 0o644)
        for bad, why in (((cert3, key3), "has mode 0644: others may read it"),
                         ((cert3, key2), "cannot use the TLS certificate"),
                         ((cert3, str(tmp_path / "none.key")), "No such file")):
            done = live.on_loop(live.api.reload_access, None, bad)
            assert why in done["tls"]["error"] and "the certificate loaded before goes on serving" in \
                done["tls"]["error"], done
            assert live.request("GET", "/v1/whoami", context=trusting(cert2))[0] == 200
        done = live.on_loop(live.api.reload_access, None, None)
        assert "TLS is turned on or off at the server's restart" in done["tls"]["error"]
        assert live.request("GET", "/v1/whoami", context=trusting(cert2))[0] == 200


def test_the_same_files_renewed_in_place_are_read_again(tmp_path):
    cert, key = self_signed(tmp_path)
    with LiveApi(tmp_path, tls=(cert, key)) as live:
        old = Path(cert).read_text()
        self_signed(tmp_path)                              # renewed: same paths, a new certificate
        assert Path(cert).read_text() != old
        with pytest.raises(ssl.SSLCertVerificationError):  # (still the old one: no reload yet)
            live.request("GET", "/v1/whoami", context=trusting(cert))
        assert live.on_loop(live.api.reload_access, None, (cert, key))["tls"]["reloaded"] is True
        assert live.request("GET", "/v1/whoami", context=trusting(cert))[0] == 200


# ---------------------------------------------------------------- a real server's POST /v1/reload
SERVER_USERS = """
[agents.1001]
phone = "hotline:4"

[queues.service]
members = ["1001"]

[api]

[[api.user]]
name = "acd"
role = "integration"
token_file = "acd-token"

[[api.user]]
name = "mon"
role = "monitor"
token_file = "mon-token"
"""
MON = '''
[[api.user]]
name = "mon"
role = "monitor"
token_file = "mon-token"
'''
NEW_USER = '''
[[api.user]]
name = "new"
role = "monitor"
token_file = "new-token"
'''


class Reloader:
    """From a run's `until`: mon follows the stream; the config loses mon and gains `new`; the
    admin's POST /v1/reload; then mon's and new's tokens are tried. Everything is kept."""

    def __init__(self) -> None:
        self.task: asyncio.Task | None = None
        self.out: dict[str, Any] = {}

    def __call__(self, server: Any) -> bool:
        if self.task is None and server.api_port:
            self.task = asyncio.get_running_loop().create_task(self._run(server))
        return self.task is not None and self.task.done()

    async def _run(self, server: Any) -> None:
        base = f"http://127.0.0.1:{server.api_port}"
        cfg = Path(server.cfg.file)
        token = {u.name: Path(u.token_file).read_text().strip() for u in server.cfg.api.users}
        token["admin"] = Path(server.cfg.api.token_file).read_text().strip()

        def auth(user: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {token[user]}"}
        async with aiohttp.ClientSession() as s:
            async with s.ws_connect(f"{base}/v1/events", headers=auth("mon")) as ws:
                cfg.write_text(cfg.read_text().replace(MON, NEW_USER))
                async with s.post(f"{base}/v1/reload", headers=auth("admin")) as r:
                    self.out["reload"] = (r.status, await r.json())
                msg = await asyncio.wait_for(ws.receive(), 10)
                self.out["close"] = (ws.close_code, msg.extra)
            token["new"] = (cfg.parent / "new-token").read_text().strip()
            for user in ("mon", "new", "acd"):
                async with s.get(f"{base}/v1/whoami", headers=auth(user)) as r:
                    self.out[user] = (r.status, await r.json())


def test_post_v1_reload_of_a_real_server_rereads_the_users(e2e, tmp_path):
    reloader = Reloader()
    r = e2e.run(scenario=scenario(duration=60.0), server_config=server_config(tmp_path, SERVER_USERS, head=HEAD),
                hwsim_config=HWSIM, api_port=0, max_sim_seconds=50, until=reloader)
    out = reloader.out
    status, body = out["reload"]
    assert status == 200 and body["reloaded"] is True and body["error"] is None
    assert body["api"] == {"users": {"added": ["new"], "removed": ["mon"], "changed": [],
                                     "streams_closed": ["mon"]}}
    assert out["close"] == (1008, "user mon: removed or changed by a config reload")
    assert out["mon"][0] == 401
    assert out["new"] == (200, {"user": "new", "role": "monitor", "agent": None})
    assert out["acd"][0] == 200
    assert [e.kind for e in r.events("config.reloaded")]
