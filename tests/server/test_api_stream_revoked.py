"""A stream the server closes with 1008 (policy violation: a reload removed the user or changed
its role) ends the asyncio client (voiceserver.api.client.EventClient) with StreamRevoked, the
server's reason and the resume point, instead of reconnecting for ever (test_e2e_api_revoked.py:
the same on the real `voiceboard serve`, and `voiceboard events`).

First against a small aiohttp server of the test's own (the close frame alone), then against
the network API on a real loopback socket (apikit.LiveApi) whose users a reload changes.
"""
from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiohttp import WSCloseCode, web

from voiceserver.api.client import EventClient, StreamRevoked
from voiceserver.api.roles import ApiUser, Role

from apikit import TOKENS, USERS, K, LiveApi, until

REASON = "user mon: removed or changed by a config reload"


def without(name: str) -> tuple[ApiUser, ...]:
    return tuple(u for u in USERS if u.name != name)


async def closing_server(closes: list[tuple[int, bytes]]) -> tuple[web.AppRunner, int, list[str | None]]:
    """A stream server whose n-th connection sends two events (seq 2n+1, 2n+2) and closes with
    closes[n]; each connection's `since`."""
    asked: list[str | None] = []

    async def events(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        n = len(asked)
        asked.append(request.query.get("since"))
        for seq in (2 * n + 1, 2 * n + 2):
            await ws.send_str(json.dumps({"seq": seq, "kind": "span.alarm"}))
        code, reason = closes[min(n, len(closes) - 1)]
        await ws.close(code=code, message=reason)
        return ws
    app = web.Application()
    app.router.add_get("/v1/events", events)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1], asked


async def collect(client: EventClient, got: list[int]) -> None:
    async for ev in client:
        got.append(ev["seq"])


def test_the_client_reconnects_after_a_going_away_and_stops_at_a_policy_close():
    async def main() -> tuple[list[int], StreamRevoked, list[str | None], int]:
        runner, port, asked = await closing_server([(WSCloseCode.GOING_AWAY, b"server stopping: resume later"),
                                                    (WSCloseCode.POLICY_VIOLATION, REASON.encode())])
        got: list[int] = []
        try:
            async with EventClient(f"http://127.0.0.1:{port}", "t", retry=0.01) as client:
                with pytest.raises(StreamRevoked) as exc:
                    await asyncio.wait_for(collect(client, got), 20)    # not for ever
                return got, exc.value, asked, client.reconnects
        finally:
            await runner.cleanup()
    got, exc, asked, reconnects = asyncio.run(main())
    assert got == [1, 2, 3, 4] and asked == [None, "2"] and reconnects == 1
    assert exc.reason == REASON and exc.resume == 4
    assert REASON in str(exc) and "seq 4" in str(exc) and "1008" in str(exc)


def test_a_policy_close_before_any_event_has_no_resume_point():
    async def main() -> StreamRevoked:
        runner, port, _ = await closing_server([(WSCloseCode.POLICY_VIOLATION, b"")])
        try:
            async with EventClient(f"http://127.0.0.1:{port}", "t", retry=0.01, since=None) as client:
                with pytest.raises(StreamRevoked) as exc:
                    await asyncio.wait_for(collect(client, []), 20)
                return exc.value
        finally:
            await runner.cleanup()
    exc = asyncio.run(main())
    assert exc.resume == 2 and exc.reason == "" and "no reason given" in str(exc)


def follow_until_revoked(live: LiveApi, user: str, got: list[Any]) -> Any:
    """`user`'s EventClient on the live server until it stops: the exception it stopped with."""
    async def run() -> BaseException | None:
        async with EventClient(f"http://127.0.0.1:{live.port}", TOKENS[user], retry=0.05) as client:
            try:
                async for ev in client:
                    got.append(ev)
            except StreamRevoked as exc:
                return exc
        return None
    return asyncio.run_coroutine_threadsafe(run(), live.loop)


def alarm(live: LiveApi) -> int:
    return live.on_loop(lambda: live.bus.publish(0, K.SPAN_ALARM, board="b", span=1, alarm="LOS", set=True).seq)


@pytest.mark.parametrize("change", ["removed", "role changed"])
def test_a_reload_that_removes_or_demotes_the_user_ends_its_client_with_the_reason(tmp_path, change):
    with LiveApi(tmp_path) as live:
        got: list[Any] = []
        mon = follow_until_revoked(live, "mon", got)
        live.call(until(lambda: live.api.stream.clients == 1, "the stream open"))
        seq = alarm(live)
        live.call(until(lambda: len(got) == 1, "the first event"))
        users = without("mon") if change == "removed" else \
            (*without("mon"), ApiUser("mon", Role.AGENT, USERS[-1].token_sha256, agent="1001"))
        done = live.on_loop(live.api.reload_access, users, None)
        assert done["users"]["streams_closed"] == ["mon"]
        exc = mon.result(10)
        assert isinstance(exc, StreamRevoked), exc
        assert exc.reason == REASON and exc.resume == seq == got[-1]["seq"]
        live.call(until(lambda: live.api.stream.clients == 0, "the stream gone"))
        live.call(asyncio.sleep(0.5))                  # ten retry intervals: it does not come back
        assert live.api.stream.clients == 0
