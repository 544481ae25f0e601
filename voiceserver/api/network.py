"""The network API ([api] bind): aiohttp in the server's event loop, HTTP or HTTPS.

It serves the event stream (voiceserver.api.stream, `GET /v1/events`), the
views (queues, agents, channels), the commands (calls, agents, the admin's
reload; each POST audited) and an index (`GET /`). Every request passes the
door (voiceserver.api.door: Host and Origin, the bearer token, which user it
is), then the route's right (voiceserver.api.roles: which roles may use it,
and for an agent user whether the call or agent is its own). Refusals are
JSON `{"error": ...}`: 401 without a known token, 403 with the role the
route needs, 400 with what is wrong in the request, 404 no such route, call
or agent, 405 a wrong method, 409 not possible now.

With ``[api] tls_cert``/``tls_key`` it speaks TLS (https, wss) only.

The commands act through a backend (the voice server: voiceserver.core.server
.VoiceServer) with the methods `hang_up`, `agent_control`, `call_command`,
`supervise`, `consult`, `originate`, `call_agents`, `views` and `admin_reload`;
a missing one is a 404 "not served here".
"""
from __future__ import annotations

import json
import os
import re
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from voiceserver.acd.queues import MAX_PENALTY, MAX_TIER
from voiceserver.api import openapi
from voiceserver.api.door import AdminDoor, Request
from voiceserver.api.roles import (
    ADMIN,
    AGENTS,
    CALLS,
    ORIGINATE,
    READ,
    SUPERVISE,
    VIEW_ALL,
    ApiUser,
    Right,
    Role,
    may,
)
from voiceserver.api.status import LOOPBACK, Conflict, listen_socket
from voiceserver.api.stream import EventStream, door_request
from voiceserver.core.events import EventBus, ServerEventKind, event_schema

ENDPOINTS = {
    "/v1/openapi.json": "this API as OpenAPI 3.1",
    "/v1/schemas/events.json": "a JSON Schema for every event kind",
    "/v1/events": "WebSocket: every server event, resumable (?since=SEQ, kind, call, channel, queue, agent)",
    "/v1/whoami": "the user the token is, its role and agent",
    "/v1/queues": "the queues",
    "/v1/agents": "the agents (an agent user: itself)",
    "/v1/channels": "every channel and its call",
    "/v1/reload": "POST: reload the server's config (admin)",
    "/v1/calls/{call_id}/{command}": "POST: hangup, hold, retrieve, record-pause, record-resume, "
                                     "route ({\"queue\": ...}), transfer ({\"number\", \"trunk\"}), "
                                     "ivr ({\"menu\"} or {\"action\"})",
    "/v1/calls/{call_id}/listen|whisper|barge|intercept": "POST {\"supervisor\": AGENT or BOARD:CHANNEL}: "
                                                         "a supervisor joins an agent call (supervisor, admin)",
    "/v1/calls/{call_id}/conference": "POST {\"party\": AGENT or BOARD:CHANNEL}: a party's phone joins an "
                                      "agent call, all hear all",
    "/v1/calls/{call_id}/consult": "POST {\"party\": AGENT or BOARD:CHANNEL}: the caller on hold, the agent "
                                   "talks to that phone; then consult-complete or consult-cancel",
    "/v1/agents/{agent}/{action}": "POST: login, logout, ready, not-ready (JSON {\"reason\": ...} optional)",
    "/v1/agents/{agent}/queues/{queue}/join|leave": "POST: the agent joins (JSON {\"penalty\": N, \"tier\": N} "
                                                   "optional) or leaves the queue's members",
    "/v1/calls/{call_id}/record-start|record-stop": "POST: start or stop the call's recording on demand",
    "/v1/calls/{call_id}/answer": "POST: answer a call ringing on an answer_api line",
    "/v1/calls/{call_id}/mute|unmute": "POST {\"party\": \"agent\" or \"caller\"}: that party is not heard "
                                       "by the other (or is again)",
    "/v1/calls/{call_id}/bridge": "POST {\"call\": CALL_ID}: join two calls' audio; unbridge separates them",
    "/v1/originate": "POST {\"trunk\", \"number\", \"then\": {\"ivr\"|\"agent\"|\"call\"|\"play\"|\"queue\": "
                     "...}}: a new outbound call (201, its call id)",
}
AGENT_ACTIONS = {"login": "login", "logout": "logout", "ready": "ready", "not-ready": "not_ready"}
# call commands besides hangup: the backend's call_command(call_id, command, by)
CALL_COMMANDS = ("hold", "retrieve", "record-pause", "record-resume", "record-start", "record-stop", "unbridge",
                 "answer")
MUTE_COMMANDS = ("mute", "unmute")            # {"party": "agent" (default) | "caller"}: who is not heard
MUTE_PARTIES = ("agent", "caller")
THEN = ("ivr", "agent", "call", "play", "queue")   # originate's "then": what an answered call does
MAX_REASON = 200
SUPERVISE_MODES = ("listen", "whisper", "barge", "intercept")   # the backend's supervise(call, mode, ...)
NUMBER = re.compile(r"[0-9*#]{1,32}\Z")       # what a trunk can dial
VIEWS = ("queues", "agents", "channels")
BY = "network API"
# where the middleware leaves the door's Request (who it is) for the handlers
DOOR: Any = web.RequestKey("door", Request) if hasattr(web, "RequestKey") else "door"


def error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


class BadRequest(Exception):
    """A request body or parameter that is malformed: HTTP 400 with what is wrong."""


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    right: Right
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]]


class NetworkApi:
    """`await api.start()` listens on host:port (0: a free port; `api.port` says which)."""

    def __init__(self, bus: EventBus, *, host: str, port: int, token: str | None = None,
                 users: tuple[ApiUser, ...] | None = None, audit_log: str | None = None,
                 journal: tuple[str, str] | None = None, buffer: int | None = None,
                 tls: tuple[str, str] | None = None, backend: Any = None) -> None:
        """`users`: the users and their tokens' digests (voiceserver.api.token.api_users); without
        them `token` is the admin's, the only user. `tls`: (certificate, key) PEM files."""
        self.host, self.port = host, port
        self.token, self.users, self.audit_log = token, users, audit_log
        self.tls = tls
        self.backend = backend
        self.stream = EventStream(bus, journal) if buffer is None else EventStream(bus, journal, buffer=buffer)
        self.door: AdminDoor | None = None
        self._tls_now: ssl.SSLContext | None = None    # the certificate new connections get
        self._runner: web.AppRunner | None = None
        self.routes = [
            Route("GET", "/v1/openapi.json", READ, self._openapi),
            Route("GET", "/v1/schemas/events.json", READ, self._schemas),
            Route("GET", "/v1/events", READ, self._events),
            Route("GET", "/v1/whoami", READ, self._whoami),
            Route("GET", "/v1/queues", READ, self._view),
            Route("GET", "/v1/agents", READ, self._view),
            Route("GET", "/v1/channels", VIEW_ALL, self._view),
            Route("POST", "/v1/reload", ADMIN, self._reload),
            Route("POST", "/v1/calls/{call_id}/hangup", CALLS, self._hangup),
            Route("POST", "/v1/calls/{call_id}/route", CALLS, self._route),
            Route("POST", "/v1/calls/{call_id}/transfer", CALLS, self._transfer),
            Route("POST", "/v1/calls/{call_id}/ivr", CALLS, self._ivr),
            *(Route("POST", f"/v1/calls/{{call_id}}/{c}", CALLS, self._call_command) for c in CALL_COMMANDS),
            Route("POST", "/v1/agents/{agent}/{action}", AGENTS, self._agent),
            *(Route("POST", f"/v1/agents/{{agent}}/queues/{{queue}}/{m}", AGENTS, self._queue_member)
              for m in ("join", "leave")),
            # supervisors: listen, whisper, barge in, intercept (voiceserver.core.controller.supervise)
            *(Route("POST", f"/v1/calls/{{call_id}}/{m}", SUPERVISE, self._supervise) for m in SUPERVISE_MODES),
            Route("POST", "/v1/calls/{call_id}/conference", CALLS, self._supervise),
            Route("POST", "/v1/calls/{call_id}/consult", CALLS, self._consult),
            *(Route("POST", f"/v1/calls/{{call_id}}/consult-{action}", CALLS, self._consult)
              for action in ("complete", "cancel")),
            *(Route("POST", f"/v1/calls/{{call_id}}/{c}", CALLS, self._mute) for c in MUTE_COMMANDS),
            Route("POST", "/v1/calls/{call_id}/bridge", CALLS, self._bridge),
            Route("POST", "/v1/calls/{call_id}/play", CALLS, self._play),
            Route("POST", "/v1/calls/{call_id}/collect", CALLS, self._play),
            Route("POST", "/v1/originate", ORIGINATE, self._originate),
        ]

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    def _ssl_context(self, tls: tuple[str, str] | None = None) -> ssl.SSLContext | None:
        """A server context of (certificate, key) (default: `self.tls`); OSError says what is wrong."""
        tls = tls or self.tls
        if tls is None:
            return None
        cert, key = tls
        try:
            mode = os.stat(key).st_mode
        except OSError as exc:
            raise OSError(exc.errno, f"network API: TLS key {key}: {exc.strerror}") from None
        if mode & 0o007:
            raise OSError(f"network API: TLS key {key} has mode {mode & 0o777:04o}: others may read it; "
                          f"`chmod 600 {key}` (and consider the key known)")
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            ctx.load_cert_chain(cert, key)
        except (OSError, ssl.SSLError) as exc:
            raise OSError(f"network API: cannot use the TLS certificate {cert} and key {key}: {exc}") from None
        return ctx

    def _serve_tls(self, ctx: ssl.SSLContext, listening: ssl.SSLContext) -> None:
        """Each new connection's handshake takes the certificate of `self._tls_now` (a reload
        swaps it): the listening context's SNI callback hands the connection to it (called for
        every ClientHello, with or without a server name)."""
        self._tls_now = ctx

        def current(conn: ssl.SSLObject | ssl.SSLSocket, name: str | None, ctx: ssl.SSLContext) -> None:
            now = self._tls_now
            if now is not None and conn.context is not now:
                conn.context = now
        listening.sni_callback = current

    def reload_access(self, users: tuple[ApiUser, ...] | None,
                      tls: tuple[str, str] | None) -> dict[str, Any]:
        """A config reload: the users and the TLS certificate the new config names. A removed
        (or changed: token, role, agent) user's token is refused from the next request on and
        its event streams are closed (1008, with the reason). New connections get the new
        certificate; one that cannot be used (unreadable, a key others may read, not its key)
        leaves the old one serving and is the answer's `tls.error`. Turning TLS on or off
        takes a restart."""
        out: dict[str, Any] = {}
        if users is not None:
            old = self.users or ()
            kept = set(users)
            names = {u.name for u in users}
            self.users = users
            if self.door is not None:
                self.door.users = users
            out["users"] = {"added": sorted(u.name for u in users if u.name not in {o.name for o in old}),
                            "removed": sorted(o.name for o in old if o.name not in names),
                            "changed": sorted(o.name for o in old if o.name in names and o not in kept),
                            "streams_closed": self.stream.revoke(lambda u: u in kept)}
        if (tls is None) != (self.tls is None):
            out["tls"] = {"error": "TLS is turned on or off at the server's restart, not by a reload: "
                                   f"the API goes on with{'' if self.tls else 'out'} TLS"}
        elif tls is not None and self._tls_now is not None:    # new files, or the same ones renewed
            try:
                ctx = self._ssl_context(tls)
            except OSError as exc:
                out["tls"] = {"error": f"{exc.strerror or exc}; the certificate loaded before goes on serving"}
            else:
                assert ctx is not None
                self.tls, self._tls_now = tls, ctx
                out["tls"] = {"certificate": tls[0], "reloaded": True}
        return out

    async def start(self) -> NetworkApi:
        ctx = self._ssl_context()
        if ctx is not None:
            listening = self._ssl_context()
            assert listening is not None
            self._serve_tls(ctx, listening)
            ctx = listening
        try:
            sock = listen_socket(self.host, self.port)
        except OSError as exc:
            raise OSError(exc.errno, f"network API: cannot listen on {self.host}:{self.port}: "
                                     f"{exc.strerror}") from None
        self.port = sock.getsockname()[1]
        try:
            self.door = AdminDoor(self.token, self.port, self.audit_log, users=self.users,
                                  loopback=self.host in LOOPBACK)
        except OSError as exc:
            sock.close()
            raise OSError(exc.errno, f"cannot open the admin audit log {self.audit_log}: {exc.strerror}") from None
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get("/", self._index)
        for route in self.routes:
            app.router.add_route(route.method, route.path, self._checked(route))
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=5.0)
        await self._runner.setup()
        await web.SockSite(self._runner, sock, ssl_context=ctx).start()
        return self

    # -- the door, the rights ------------------------------------------------
    @web.middleware
    async def _middleware(self, request: web.Request,
                          handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        """The door first (Host, Origin, the token: who it is); aiohttp's own refusals (no such
        route, a wrong method) as JSON like every other answer."""
        assert self.door is not None
        req = door_request(request)
        refused = self.door.refuse(req)
        if refused is not None:
            status, body, headers = refused
            return web.json_response(body, status=status, headers=headers)
        request[DOOR] = req
        try:
            return await handler(request)
        except web.HTTPMethodNotAllowed as exc:
            return error(405, f"{request.method} not allowed on {request.path[:200]}: "
                              f"{', '.join(sorted(exc.allowed_methods))}", {"Allow": ",".join(exc.allowed_methods)})
        except web.HTTPNotFound:
            return error(404, f"no such endpoint {request.path[:200]} (GET / lists them)")

    def _checked(self, route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """The route's handler behind its right: 403 naming the roles it needs."""
        async def handler(request: web.Request) -> web.StreamResponse:
            req: Request = request[DOOR]
            user = req.user
            assert user is not None                  # the door let only known tokens in
            why = self._forbidden(user, route.right, request)
            if why is not None:
                assert self.door is not None
                self.door.forbidden(req, why)
                return error(403, why)
            return await route.handler(request)
        return handler

    def _forbidden(self, user: ApiUser, right: Right, request: web.Request) -> str | None:
        """Why `user` may not use this route on this target, or None."""
        if not may(user, right):
            return f"user {user.name!r} has role {user.role}, which may not {right.what}: it needs {right.needs()}"
        if user.role is not Role.AGENT or right.agent_own is None:
            return None
        if right.agent_own == "agent":
            agent = request.match_info.get("agent")
            if agent != user.agent:
                return (f"user {user.name!r} (role agent) may change only its own agent {user.agent!r}, "
                        f"not {agent!r}: that needs {right.needs()}")
            return None
        call_id = request.match_info.get("call_id", "")
        owners = self._call_agents(call_id)
        if user.agent not in owners:
            return (f"user {user.name!r} (role agent) may control only the calls offered or connected to "
                    f"agent {user.agent!r}; call {call_id[:100]!r} is not one: that needs {right.needs()}")
        return None

    def _call_agents(self, call_id: str) -> set[str]:
        fn = getattr(self.backend, "call_agents", None)
        return set(fn(call_id)) if fn is not None else set()

    # -- reads ---------------------------------------------------------------
    async def _index(self, request: web.Request) -> web.Response:
        body: dict[str, Any] = {"endpoints": ENDPOINTS, "clients": self.stream.clients}
        return web.json_response(body)

    async def _openapi(self, request: web.Request) -> web.Response:
        return web.json_response(openapi.document())

    async def _schemas(self, request: web.Request) -> web.Response:
        """A JSON Schema per event kind (voiceserver.core.events.event_schema)."""
        return web.json_response({k.value: event_schema(k) for k in ServerEventKind})

    async def _events(self, request: web.Request) -> web.StreamResponse:
        user: ApiUser = request[DOOR].user
        return await self.stream.handle(request, agent=user.agent if user.role is Role.AGENT else None, user=user)

    async def _whoami(self, request: web.Request) -> web.Response:
        user: ApiUser = request[DOOR].user
        return web.json_response({"user": user.name, "role": user.role.value, "agent": user.agent})

    async def _view(self, request: web.Request) -> web.Response:
        name = request.path.rsplit("/", 1)[1]
        views = getattr(self.backend, "views", None)
        source = views().get(name) if views is not None else None
        if source is None:
            return error(404, f"{request.path} is not served here (no server behind this API)")
        rows = source()
        user: ApiUser = request[DOOR].user
        if name == "agents" and user.role is Role.AGENT:        # an agent sees itself
            rows = [r for r in rows if r.get("name") == user.agent]
        return web.json_response({name: rows})

    # -- commands ------------------------------------------------------------
    async def _body(self, request: web.Request, allowed: dict[str, str]) -> dict[str, Any]:
        """The optional JSON object body, its keys among `allowed` (key -> what it is)."""
        if not request.can_read_body:
            return {}
        raw = await request.read()
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except ValueError:
            raise BadRequest(f"the body is not JSON: send an object with {', '.join(allowed) or 'nothing'}") from None
        if not isinstance(body, dict):
            raise BadRequest(f"the body is JSON {type(body).__name__}: send an object "
                             f"({', '.join(f'{k}: {v}' for k, v in allowed.items()) or 'empty'})")
        unknown = sorted(set(body) - set(allowed))
        if unknown:
            raise BadRequest(f"unknown field {unknown[0][:40]!r}: this command takes "
                             f"{', '.join(allowed) or 'no fields'}")
        return body

    @staticmethod
    def _reason(body: dict[str, Any], default: str | None) -> str | None:
        reason = body.get("reason", default)
        if reason is None:
            return None
        if not isinstance(reason, str) or not 0 < len(reason) <= MAX_REASON or not reason.isprintable():
            raise BadRequest(f"reason: a string of 1 to {MAX_REASON} printable characters")
        return reason

    async def _command(self, request: web.Request, action: Callable[[], dict[str, Any] | Awaitable[dict[str, Any]]],
                       detail: dict[str, Any] | None = None, ok: int = 200) -> web.Response:
        """Run a state-changing command: `ok` (200; 201 a new call) with its answer, 404 no such
        target, 409 not now; the audit line says who, what, when and the result."""
        try:
            result = action()
            if isinstance(result, Awaitable):
                result = await result
            status, body = ok, result
        except Conflict as exc:
            status, body = 409, {"error": str(exc)}
        except LookupError as exc:
            status, body = 404, {"error": str(exc).strip("'\"")}
        except BadRequest as exc:
            status, body = 400, {"error": str(exc)}
        if self.door is not None:
            self.door.done(request[DOOR], status, body, detail)
        return web.json_response(body, status=status)

    async def _refused_body(self, request: web.Request, exc: BadRequest) -> web.Response:
        """A malformed command: 400, and an audit line (it was a command, refused)."""
        if self.door is not None:
            self.door.done(request[DOOR], 400, {"error": str(exc)})
        return error(400, str(exc))

    def _served(self, name: str) -> Callable[..., Any] | None:
        return getattr(self.backend, name, None)

    def _by(self, request: web.Request) -> str:
        """Who the events and records name as the doer: `network API (user)`."""
        user: ApiUser = request[DOOR].user
        return f"{BY} ({user.name})"

    async def _reload(self, request: web.Request) -> web.Response:
        reload = self._served("admin_reload")
        if reload is None:
            return error(404, "reload is not served here")
        return await self._command(request, reload)

    async def _hangup(self, request: web.Request) -> web.Response:
        hang_up = self._served("hang_up")
        if hang_up is None:
            return error(404, "call control is not served here")
        try:
            reason = self._reason(await self._body(request, {"reason": "text"}), "hung up by the API")
        except BadRequest as exc:
            return await self._refused_body(request, exc)
        call_id = request.match_info["call_id"]
        return await self._command(request, lambda: hang_up(call_id, reason), {"reason": reason})

    async def _call_command(self, request: web.Request) -> web.Response:
        command = request.path.rsplit("/", 1)[1]
        call_command = self._served("call_command")
        if call_command is None:
            return error(404, "call control is not served here")
        try:
            await self._body(request, {})
        except BadRequest as exc:
            return await self._refused_body(request, exc)
        call_id, by = request.match_info["call_id"], self._by(request)
        return await self._command(request, lambda: call_command(call_id, command, by))

    async def _route(self, request: web.Request) -> web.Response:
        """A caller in the IVR (or waiting for a route decision) to a queue: {"queue": NAME}; to
        one agent: {"agent": ID} and optionally the queue it waits in if the agent does not
        answer, {"agent": ID, "queue": NAME}."""
        call_command = self._served("call_command")
        if call_command is None:
            return error(404, "call control is not served here")
        try:
            body = await self._body(request, {"queue": "the queue's name",
                                              "agent": "the agent's id (ring that agent alone)"})
            queue, agent = body.get("queue"), body.get("agent")
            if isinstance(agent, int) and not isinstance(agent, bool):
                agent = str(agent)          # a numeric agent id, as the config allows
            if agent is not None and (not isinstance(agent, str) or not 0 < len(agent) <= MAX_REASON
                                      or not agent.isprintable()):
                raise BadRequest('agent: the agent\'s id: send {"agent": "ID"}')
            if (queue is not None or agent is None) and (not isinstance(queue, str)
                                                         or not 0 < len(queue) <= MAX_REASON):
                raise BadRequest('queue: the queue\'s name is required: send {"queue": "NAME"} '
                                 '(or {"agent": "ID"})')
        except BadRequest as exc:
            return await self._refused_body(request, exc)
        call_id, by = request.match_info["call_id"], self._by(request)
        if agent is None:
            return await self._command(request, lambda: call_command(call_id, "route", by, queue=queue),
                                       {"queue": queue})
        detail = {"agent": agent, **({"queue": queue} if queue is not None else {})}
        return await self._command(request, lambda: call_command(call_id, "route", by, **detail), detail)

    async def _transfer(self, request: web.Request) -> web.Response:
        """A caller in the IVR, transferred blind: {"number": DIGITS, "trunk": GROUP}."""
        call_command = self._served("call_command")
        if call_command is None:
            return error(404, "call control is not served here")
        try:
            body = await self._body(request, {"number": "the digits to dial", "trunk": "the trunk group"})
            number, trunk = body.get("number"), body.get("trunk")
            if not isinstance(number, str) or not NUMBER.match(number):
                raise BadRequest('number: 1 to 32 of 0-9 * # is required: send {"number": "...", "trunk": "..."}')
            if not isinstance(trunk, str) or not 0 < len(trunk) <= MAX_REASON:
                raise BadRequest('trunk: the outbound trunk group ([channels.outbound]) is required')
        except BadRequest as exc:
            return await self._refused_body(request, exc)
        call_id, by = request.match_info["call_id"], self._by(request)
        return await self._command(
            request, lambda: call_command(call_id, "transfer", by, number=number, trunk=trunk),
            {"number": number, "trunk": trunk})

    async def _ivr(self, request: web.Request) -> web.Response:
        """A caller in the IVR to one of its menus or named actions: {"menu": M} or {"action": A}."""
        call_command = self._served("call_command")
        if call_command is None:
            return error(404, "call control is not served here")
        try:
            body = await self._body(request, {"menu": "an [ivr.menus] name", "action": "an [ivr.actions] name"})
            names = {k: v for k, v in body.items() if v is not None}
            if len(names) != 1 or not all(isinstance(v, str) and 0 < len(v) <= MAX_REASON for v in names.values()):
                raise BadRequest('send one of {"menu": "NAME"} (an [ivr.menus] menu) and {"action": "NAME"} '
                                 '(an [ivr.actions] action)')
        except BadRequest as exc:
            return await self._refused_body(request, exc)
        call_id, by = request.match_info["call_id"], self._by(request)
        return await self._command(request, lambda: call_command(call_id, "ivr", by, **names), names)

    async def _play(self, request: web.Request) -> web.Response:
        """Play to a caller, {"prompts": [NAME...], "say": {KIND: VALUE}, "barge_in": true, "lang": L},
        or collect its digits, {"max_digits": 8, ..., "secret": false, "prompts": [...]}: the
        result of a collect comes as an ivr.input event (202 at once)."""
        call_command = self._served("call_command")
        if call_command is None:
            return error(404, "call control is not served here")
        command = request.path.rsplit("/", 1)[1]
        fields = dict(PLAY_FIELDS) if command == "play" else {**PLAY_FIELDS, **COLLECT_FIELDS}
        if command == "collect":
            del fields["barge_in"]
        try:
            args = play_args(await self._body(request, fields), command)
        except BadRequest as exc:
            return await self._refused_body(request, exc)
        call_id, by = request.match_info["call_id"], self._by(request)

        def run() -> dict[str, Any]:
            try:
                return call_command(call_id, command, by, **args)
            except ValueError as exc:         # a prompt missing, a collect spec the collector refuses
                raise BadRequest(str(exc)) from None
        return await self._command(request, run, args, ok=200 if command == "play" else 202)

    async def _supervise(self, request: web.Request) -> web.Response:
        """A supervisor's phone joins an agent call: {"supervisor": AGENT or BOARD:CHANNEL}; the
        conference's party: {"party": ...}."""
        mode = request.path.rsplit("/", 1)[1]
        field = "party" if mode == "conference" else "supervisor"
        supervise = self._served("supervise")
        if supervise is None:
            return error(404, "supervisor functions are not served here")
        try:
            body = await self._body(request, {field: f"the {field}'s agent id or BOARD:CHANNEL phone"})
            who = body.get(field)
            if isinstance(who, int) and not isinstance(who, bool):
                who = str(who)          # a numeric agent id, as the config allows
            if not isinstance(who, str) or not 0 < len(who) <= MAX_REASON or not who.isprintable():
                raise BadRequest(f'{field}: the agent id or BOARD:CHANNEL of the {field}\'s phone is '
                                 f'required: send {{"{field}": "..."}}')
        except BadRequest as exc:
            return await self._refused_body(request, exc)
        call_id, by = request.match_info["call_id"], self._by(request)
        return await self._command(request, lambda: supervise(call_id, mode, who, by), {field: who})

    async def _consult(self, request: web.Request) -> web.Response:
        """A consultative transfer: consult {"party": ...}, then consult-complete or consult-cancel."""
        command = request.path.rsplit("/", 1)[1]
        action = command.removeprefix("consult-") if command != "consult" else "start"
        consult = self._served("consult")
        if consult is None:
            return error(404, "consultative transfer is not served here")
        party: str | None = None
        try:
            if action == "start":
                body = await self._body(request, {"party": "the party's agent id or BOARD:CHANNEL phone"})
                who = body.get("party")
                if isinstance(who, int) and not isinstance(who, bool):
                    who = str(who)
                if not isinstance(who, str) or not 0 < len(who) <= MAX_REASON or not who.isprintable():
                    raise BadRequest('party: the agent id or BOARD:CHANNEL of the phone to consult is required: '
                                     'send {"party": "..."}')
                party = who
            else:
                await self._body(request, {})
        except BadRequest as exc:
            return await self._refused_body(request, exc)
        call_id, by = request.match_info["call_id"], self._by(request)
        return await self._command(request, lambda: consult(call_id, action, party, by),
                                   {"party": party} if party is not None else None)

    async def _mute(self, request: web.Request) -> web.Response:
        """Mute or unmute a party of an agent call: {"party": "agent"} (the default: the caller
        does not hear the agent) or {"party": "caller"} (the agent does not hear the caller)."""
        command = request.path.rsplit("/", 1)[1]
        call_command = self._served("call_command")
        if call_command is None:
            return error(404, "call control is not served here")
        try:
            body = await self._body(request, {"party": "agent (the default) or caller: who is not heard"})
            party = body.get("party", "agent")
            if party not in MUTE_PARTIES:
                raise BadRequest('party: "agent" (the caller does not hear the agent) or "caller" (the agent '
                                 'does not hear the caller)')
        except BadRequest as exc:
            return await self._refused_body(request, exc)
        call_id, by = request.match_info["call_id"], self._by(request)
        return await self._command(request, lambda: call_command(call_id, command, by, party=party),
                                   {"party": party})

    async def _bridge(self, request: web.Request) -> web.Response:
        """Join this call's audio with another's: {"call": CALL_ID}."""
        call_command = self._served("call_command")
        if call_command is None:
            return error(404, "call control is not served here")
        try:
            body = await self._body(request, {"call": "the other call's id"})
            other = body.get("call")
            if not isinstance(other, str) or not 0 < len(other) <= MAX_REASON or not other.isprintable():
                raise BadRequest('call: the id of the call to bridge with is required: send {"call": "CALL_ID"}')
        except BadRequest as exc:
            return await self._refused_body(request, exc)
        call_id, by = request.match_info["call_id"], self._by(request)
        # an agent user: the other call must be its own too
        user: ApiUser = request[DOOR].user
        if user.role is Role.AGENT and user.agent not in self._call_agents(other):
            why = (f"user {user.name!r} (role agent) may bridge only calls offered or connected to agent "
                   f"{user.agent!r}; call {other[:100]!r} is not one: that needs {CALLS.needs()}")
            assert self.door is not None
            self.door.forbidden(request[DOOR], why)
            return error(403, why)
        return await self._command(request, lambda: call_command(call_id, "bridge", by, call=other),
                                   {"call": other})

    async def _originate(self, request: web.Request) -> web.Response:
        """A new outbound call: {"trunk": GROUP, "number": DIGITS, "then": {"ivr": MENU} |
        {"agent": ID} | {"call": CALL_ID} | {"play": [PROMPT, ...]} | {"queue": QUEUE}} ("then"
        optional); 201 with its call id."""
        originate = self._served("originate")
        if originate is None:
            return error(404, "originate is not served here")
        try:
            body = await self._body(request, {"trunk": "the trunk group", "number": "the digits to dial",
                                              "then": "once answered: {ivr: MENU} | {agent: ID} | {call: CALL_ID} "
                                                      "| {play: [PROMPT, ...]} | {queue: QUEUE}"})
            trunk, number, then = body.get("trunk"), body.get("number"), body.get("then") or {}
            if not isinstance(trunk, str) or not 0 < len(trunk) <= MAX_REASON:
                raise BadRequest('trunk: the outbound trunk group ([channels.outbound] or an E1 R2 group) is required')
            if not isinstance(number, str) or not NUMBER.match(number):
                raise BadRequest('number: 1 to 32 of 0-9 * # is required')
            if isinstance(then, dict) and len(then) == 1:
                (what, target), = then.items()
                if isinstance(target, int) and not isinstance(target, bool):
                    target = str(target)            # a numeric agent id
                if what == "play" and isinstance(target, list):   # the prompts, heard in turn, then a hang-up
                    if not target or not all(isinstance(n, str) and n and "&" not in n for n in target):
                        raise BadRequest('then: {"play": [PROMPT, ...]} names one prompt or more')
                    target = "&".join(target)
                then = {what: target}
            if not isinstance(then, dict) or len(then) > 1 or any(
                    k not in THEN or not isinstance(v, str) or not 0 < len(v) <= MAX_REASON or not v.isprintable()
                    for k, v in then.items()):
                raise BadRequest('then: one of {"ivr": MENU}, {"agent": ID}, {"call": CALL_ID}, '
                                 '{"play": [PROMPT, ...]} and {"queue": QUEUE}, or none')
        except BadRequest as exc:
            return await self._refused_body(request, exc)
        by = self._by(request)
        return await self._command(request, lambda: originate(trunk, number, then, by),
                                   {"trunk": trunk, "number": number, "then": then}, ok=201)

    async def _agent(self, request: web.Request) -> web.Response:
        action = AGENT_ACTIONS.get(request.match_info["action"])
        if action is None:
            return error(404, f"no agent action {request.match_info['action'][:40]!r}: {', '.join(AGENT_ACTIONS)}")
        control = self._served("agent_control")
        if control is None:
            return error(404, "agent control is not served here")
        try:
            body = await self._body(request, {"reason": "text (not-ready: the reason code)"})
            reason = self._reason(body, None)
            if reason is not None and action != "not_ready":
                raise BadRequest(f"reason: only not-ready takes a reason code, not {request.match_info['action']}")
        except BadRequest as exc:
            return await self._refused_body(request, exc)
        agent, by = request.match_info["agent"], self._by(request)
        if reason is None:
            return await self._command(request, lambda: control(agent, action, by=by))
        return await self._command(request, lambda: control(agent, action, by=by, reason=reason), {"reason": reason})

    async def _queue_member(self, request: web.Request) -> web.Response:
        """An agent joins (with an optional penalty and tier: voiceserver.acd.queues) or leaves
        a queue's members at run time, as AMI's QueueAdd/QueueRemove: 200 with
        {agent, queue, member, changed} (changed false: it was already / was not a member)."""
        member = self._served("queue_member")
        if member is None:
            return error(404, "queue membership is not served here")
        join = request.path.endswith("/join")
        try:
            body = await self._body(request, {"penalty": f"0 to {MAX_PENALTY}: offered calls only when no free "
                                                         "member has a lower one (default 0)",
                                              "tier": f"1 to {MAX_TIER}: offered calls once they waited "
                                                      "(tier - 1) x the queue's tier_wait (default 1)"}
                                     if join else {})
            levels = {}
            for key, low, high in (("penalty", 0, MAX_PENALTY), ("tier", 1, MAX_TIER)):
                value = body.get(key)
                if value is None:
                    continue
                if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                    raise BadRequest(f"{key}: a whole number {low} to {high}")
                levels[key] = value
        except BadRequest as exc:
            return await self._refused_body(request, exc)
        agent, queue, by = request.match_info["agent"], request.match_info["queue"], self._by(request)
        return await self._command(request, lambda: member(agent, queue, join, by, **levels),
                                   {"agent": agent, "queue": queue, "member": join, **levels})

    async def close(self) -> None:
        await self.stream.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.door is not None:
            self.door.close()
            self.door = None


# The bodies of play and collect (POST /v1/calls/{call_id}/play, .../collect): field -> what it is
PLAY_FIELDS = {"prompts": "a list of prompt names", "say": '{"number"|"digits"|"money": "VALUE"} or a list of them',
               "barge_in": "a key stops the prompts (default true)", "lang": "the prompts' language"}
COLLECT_FIELDS = {"max_digits": "1..64", "min_digits": "0..max_digits", "terminators": "keys that end the input",
                  "first_timeout": "seconds", "inter_timeout": "seconds", "total_timeout": "seconds (0: none)",
                  "secret": "the value is masked in every event"}
SAY_KINDS = {"number": "number", "digits": "digits", "money": "amount", "amount": "amount"}
PROMPT_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]{0,63}")


def play_args(body: dict[str, Any], command: str) -> dict[str, Any]:
    """The call_command arguments of a play or collect body. BadRequest: a malformed field."""
    args: dict[str, Any] = {}
    prompts = body.get("prompts", [])
    if not isinstance(prompts, list) or len(prompts) > 64 or not all(
            isinstance(p, str) and PROMPT_NAME.fullmatch(p) and ".." not in p for p in prompts):
        raise BadRequest('prompts: a list of prompt names: send {"prompts": ["welcome", ...]}')
    say = body.get("say", [])
    says = say if isinstance(say, list) else [say]
    pairs: list[tuple[str, str]] = []
    for one in says:
        if not isinstance(one, dict) or len(one) != 1:
            raise BadRequest('say: {"number": "123.45"}, {"digits": "95566"} or {"money": "12.50"} (or a list)')
        kind, value = next(iter(one.items()))
        if kind not in SAY_KINDS or not isinstance(value, str | int | float) or isinstance(value, bool) \
                or not 0 < len(str(value)) <= 32:
            raise BadRequest(f"say: {str(kind)[:20]!r} with {str(value)[:20]!r}: say one of "
                             f"{', '.join(SAY_KINDS)} with a value of 1 to 32 characters")
        pairs.append((SAY_KINDS[kind], str(value)))
    if command == "play" and not prompts and not pairs:
        raise BadRequest('nothing to play: send {"prompts": [...]} and/or {"say": {...}}')
    args.update(prompts=prompts, say=pairs)
    lang = body.get("lang")
    if lang is not None:
        if not isinstance(lang, str) or not re.fullmatch(r"[a-z]{2}(-[A-Za-z0-9]{1,8})?", lang):
            raise BadRequest('lang: a language code such as "zh" or "en"')
        args["lang"] = lang
    if command == "play":
        barge_in = body.get("barge_in", True)
        if not isinstance(barge_in, bool):
            raise BadRequest("barge_in: true or false")
        args["barge_in"] = barge_in
        return args
    secret = body.get("secret", False)
    if not isinstance(secret, bool):
        raise BadRequest("secret: true or false")
    spec: dict[str, Any] = {}
    for name in ("max_digits", "min_digits"):
        if name in body:
            n = body[name]
            if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= 64:
                raise BadRequest(f"{name}: a whole number 0 to 64")
            spec[name] = n
    if "terminators" in body:
        t = body["terminators"]
        if not isinstance(t, str) or not re.fullmatch(r"[0-9*#A-D]{0,4}", t):
            raise BadRequest('terminators: up to 4 of 0-9 * # A-D, such as "#"')
        spec["terminators"] = t
    for name in ("first_timeout", "inter_timeout", "total_timeout"):
        if name in body:
            s = body[name]
            if not isinstance(s, int | float) or isinstance(s, bool) or not 0 <= s <= 600:
                raise BadRequest(f"{name}: seconds, 0 to 600 (0: no such timeout)")
            spec[name] = round(s * 1000)
    args.update(spec=spec, secret=secret)
    return args
