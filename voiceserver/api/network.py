"""The network API ([api] bind): aiohttp in the server's event loop.

Today it serves the event stream (voiceserver.api.stream, `GET /v1/events`),
the first commands (a call's hang-up, an agent's state; each POST audited)
and an index (`GET /`). The admin door (voiceserver.api.door) stands before
every request: the API listens on loopback by default, and a loopback port
is open to every local user and to web pages (DNS rebinding), so the Host
and Origin must be this port's loopback names and the request must carry the
admin token (`Authorization: Bearer`, the server's [api] token_file).
"""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

from voiceserver.api import openapi
from voiceserver.api.door import AdminDoor
from voiceserver.api.status import Conflict, listen_socket
from voiceserver.api.stream import EventStream, door_middleware, door_request
from voiceserver.core.events import EventBus, ServerEventKind, event_schema

ENDPOINTS = {
    "/v1/openapi.json": "this API as OpenAPI 3.1",
    "/v1/schemas/events.json": "a JSON Schema for every event kind",
    "/v1/events": "WebSocket: every server event, resumable (?since=SEQ, kind, call, channel)",
    "/v1/calls/{call_id}/hangup": "POST {\"reason\": ...}: end a call in progress",
    "/v1/agents/{agent}/{action}": "POST: login, logout, ready, not-ready (JSON {\"reason\": ...} optional)",
}
AGENT_ACTIONS = {"login": "login", "logout": "logout", "ready": "ready", "not-ready": "not_ready"}
MAX_REASON = 200


class NetworkApi:
    """`await api.start()` listens on host:port (0: a free port; `api.port` says which)."""

    def __init__(self, bus: EventBus, *, host: str, port: int, token: str, audit_log: str | None = None,
                 journal: tuple[str, str] | None = None, buffer: int | None = None,
                 hang_up: Callable[[str, str], dict[str, Any]] | None = None,
                 agent_control: Callable[..., dict[str, Any]] | None = None) -> None:
        self.host, self.port = host, port
        self.hang_up, self.agent_control = hang_up, agent_control
        self.token, self.audit_log = token, audit_log
        self.stream = EventStream(bus, journal) if buffer is None else EventStream(bus, journal, buffer=buffer)
        self.door: AdminDoor | None = None
        self._runner: web.AppRunner | None = None

    async def start(self) -> NetworkApi:
        try:
            sock = listen_socket(self.host, self.port)
        except OSError as exc:
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
        app.router.add_get("/v1/openapi.json", self._openapi)
        app.router.add_get("/v1/schemas/events.json", self._schemas)
        app.router.add_get("/v1/events", self.stream.handle)
        app.router.add_post("/v1/calls/{call_id}/hangup", self._hangup)
        app.router.add_post("/v1/agents/{agent}/{action}", self._agent)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=5.0)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()
        return self

    async def _openapi(self, request: web.Request) -> web.Response:
        return web.json_response(openapi.document())

    async def _schemas(self, request: web.Request) -> web.Response:
        """A JSON Schema per event kind (voiceserver.core.events.event_schema)."""
        return web.json_response({k.value: event_schema(k) for k in ServerEventKind})

    async def _index(self, request: web.Request) -> web.Response:
        body: dict[str, Any] = {"endpoints": ENDPOINTS, "clients": self.stream.clients}
        return web.json_response(body)

    async def _reason(self, request: web.Request, default: str) -> str:
        """The optional JSON body's `reason` (what the call record and the events say)."""
        if not request.can_read_body:
            return default
        try:
            body = await request.json()
        except ValueError:
            raise web.HTTPBadRequest(text=json.dumps({"error": 'the body is not JSON: send {"reason": "..."}'}),
                                     content_type="application/json") from None
        reason = body.get("reason", default) if isinstance(body, dict) else None
        if not isinstance(reason, str) or not 0 < len(reason) <= MAX_REASON:
            raise web.HTTPBadRequest(text=json.dumps({"error": f"reason: a string of 1 to {MAX_REASON} "
                                                               f"characters"}), content_type="application/json")
        return reason

    async def _command(self, request: web.Request, action: Callable[[], dict[str, Any]]) -> web.Response:
        """Run a state-changing command: 200 with its answer, 404 no such target, 409 not now;
        the door writes the audit line (who, what, when, result)."""
        try:
            status, body = 200, action()
        except Conflict as exc:
            status, body = 409, {"error": str(exc)}
        except LookupError as exc:
            status, body = 404, {"error": str(exc).strip("'\"")}
        if self.door is not None:
            self.door.done(door_request(request), status, body)
        return web.json_response(body, status=status)

    async def _hangup(self, request: web.Request) -> web.Response:
        if self.hang_up is None:
            return web.json_response({"error": "call control is not served here"}, status=404)
        call_id = request.match_info["call_id"]
        reason = await self._reason(request, "hung up by the API")
        hang_up = self.hang_up
        return await self._command(request, lambda: hang_up(call_id, reason))

    async def _agent(self, request: web.Request) -> web.Response:
        action = AGENT_ACTIONS.get(request.match_info["action"])
        if action is None:
            return web.json_response({"error": f"no agent action {request.match_info['action']!r}: "
                                               f"{', '.join(AGENT_ACTIONS)}"}, status=404)
        if self.agent_control is None:
            return web.json_response({"error": "agent control is not served here"}, status=404)
        agent = request.match_info["agent"]
        control = self.agent_control
        return await self._command(request, lambda: control(agent, action, by="network API"))

    async def close(self) -> None:
        await self.stream.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.door is not None:
            self.door.close()
            self.door = None
