"""An asyncio client of the event stream that resumes by itself.

    async with EventClient("http://127.0.0.1:8750", token) as events:
        async for ev in events:             # every event once, in order, across reconnects
            if ev["kind"] == "call.callerid":
                pop_screen(ev["caller"])

It connects to `GET /v1/events` (voiceserver.api.stream) and, when the
connection ends (the server restarts, the network drops, the server cuts
a slow client off with `stream.overflow`), connects again with `since` =
the last seq it handed out, after `retry` seconds, for ever; but a close
with 1008 (policy violation: a reload removed the user or changed its role
or token) ends it with `StreamRevoked` (the server's reason and the resume
point), as a refused connection ends it with `StreamRefused`. Events are
never handed out twice; a `journal.gap` event is handed out as it comes
(the caller decides what a gap means for it). `last_seq` is where a later
client would resume (keep it to survive your own restart).
"""
from __future__ import annotations

import asyncio
import json
import ssl as ssl_module
from collections.abc import AsyncIterator, Sequence
from typing import Any

import aiohttp
from aiohttp import WSCloseCode

from voiceserver.core.events import ServerEventKind

OVERFLOW = ServerEventKind.STREAM_OVERFLOW.value


class StreamRefused(Exception):
    """The server refused the stream for good (a wrong token, a bad filter, an untrusted TLS
    certificate): HTTP status (0: no HTTP answer) and why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class StreamRevoked(Exception):
    """The server closed the stream for good with 1008 (policy violation): a config reload
    removed the user, changed its role or its token. Retrying with the same token would be
    refused or would silently get another role's events, so the client stops: `reason` is the
    server's (the close frame's), `resume` the last seq handed out (where a client with a valid
    token goes on from)."""

    def __init__(self, reason: str, resume: int | None) -> None:
        super().__init__(f"the server closed the stream (1008, policy violation): {reason or 'no reason given'}"
                         f"; the last event handed out was seq {resume if resume is not None else '(none)'}")
        self.reason = reason
        self.resume = resume


class EventClient:
    def __init__(self, base_url: str, token: str, *, since: int | None = None, kinds: Sequence[str] | None = None,
                 call: str | None = None, channel: str | None = None, queue: str | None = None,
                 agent: str | None = None, retry: float = 1.0, ssl: ssl_module.SSLContext | None = None) -> None:
        """`base_url`: http:// or https:// (then `ssl`: the context that trusts the server's
        certificate; None: the system's CAs)."""
        self.base_url = base_url.rstrip("/")
        self.ssl = ssl
        self.token = token
        self.last_seq = since
        self.filters: list[tuple[str, str]] = [("kind", k) for k in kinds or []]
        self.filters += [("call", call)] if call else []
        self.filters += [("channel", channel)] if channel else []
        self.filters += [("queue", queue)] if queue else []
        self.filters += [("agent", agent)] if agent else []
        self.retry = retry
        self.reconnects = 0
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> EventClient:
        self._session = aiohttp.ClientSession(headers={"Authorization": f"Bearer {self.token}"})
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._events()

    async def _events(self) -> AsyncIterator[dict[str, Any]]:
        assert self._session is not None, "use `async with EventClient(...)`"
        while True:
            params = list(self.filters)
            if self.last_seq is not None:
                params.append(("since", str(self.last_seq)))
            try:
                async with self._session.ws_connect(f"{self.base_url}/v1/events", params=params, heartbeat=30.0,
                                                    ssl=self.ssl if self.ssl is not None else True) as ws:
                    while True:
                        msg = await ws.receive()
                        if msg.type == aiohttp.WSMsgType.CLOSE and msg.data == WSCloseCode.POLICY_VIOLATION:
                            raise StreamRevoked(str(msg.extra or ""), self.last_seq)
                        if msg.type != aiohttp.WSMsgType.TEXT:
                            break
                        ev = json.loads(msg.data)
                        if ev["kind"] == OVERFLOW:          # cut off: resume where it says
                            self.last_seq = ev["resume"]
                            break
                        seq = ev["seq"] if ev["seq"] is not None else ev.get("to")
                        if seq is not None and self.last_seq is not None and seq <= self.last_seq:
                            continue                         # never twice
                        if seq is not None:
                            self.last_seq = seq
                        yield ev
            except aiohttp.WSServerHandshakeError as exc:
                if exc.status in (400, 401, 403, 404):
                    raise StreamRefused(exc.status, exc.message) from None
            except aiohttp.ClientConnectorCertificateError as exc:     # https: not ours to retry
                raise StreamRefused(0, f"the server's TLS certificate is not trusted: "
                                       f"{exc.certificate_error}") from None
            except (TimeoutError, aiohttp.ClientError, OSError):
                pass                                         # the server is away: try again
            self.reconnects += 1
            await asyncio.sleep(self.retry)
