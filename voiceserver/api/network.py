"""The network API ([api] bind): aiohttp in the server's event loop.

Today it serves the event stream (voiceserver.api.stream, `GET /v1/events`)
and an index (`GET /`). The admin door (voiceserver.api.door) stands before
every request: the API listens on loopback by default, and a loopback port
is open to every local user and to web pages (DNS rebinding), so the Host
and Origin must be this port's loopback names and the request must carry the
admin token (`Authorization: Bearer`, the server's [api] token_file).
"""
from __future__ import annotations

import socket
from typing import Any

from aiohttp import web

from voiceserver.api.door import AdminDoor
from voiceserver.api.stream import EventStream, door_middleware
from voiceserver.core.events import EventBus

ENDPOINTS = {"/v1/events": "WebSocket: every server event, resumable (?since=SEQ, kind, call, channel)"}


class NetworkApi:
    """`await api.start()` listens on host:port (0: a free port; `api.port` says which)."""

    def __init__(self, bus: EventBus, *, host: str, port: int, token: str, audit_log: str | None = None,
                 journal: tuple[str, str] | None = None, buffer: int | None = None) -> None:
        self.host, self.port = host, port
        self.token, self.audit_log = token, audit_log
        self.stream = EventStream(bus, journal) if buffer is None else EventStream(bus, journal, buffer=buffer)
        self.door: AdminDoor | None = None
        self._runner: web.AppRunner | None = None

    async def start(self) -> NetworkApi:
        family, kind, proto, _, addr = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(addr)
            sock.listen(128)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            raise OSError(exc.errno, f"network API: cannot listen on {self.host}:{self.port}: "
                                     f"{exc.strerror}") from None
        self.port = sock.getsockname()[1]
        try:
            self.door = AdminDoor(self.token, self.port, self.audit_log)
        except OSError as exc:
            sock.close()
            raise OSError(exc.errno, f"cannot open the admin audit log {self.audit_log}: {exc.strerror}") from None
        app = web.Application(middlewares=[door_middleware(self.door)])
        app.router.add_get("/", self._index)
        app.router.add_get("/v1/events", self.stream.handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()
        return self

    async def _index(self, request: web.Request) -> web.Response:
        body: dict[str, Any] = {"endpoints": ENDPOINTS, "clients": self.stream.clients}
        return web.json_response(body)

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.door is not None:
            self.door.close()
            self.door = None
