"""A tiny read-only HTTP/JSON status endpoint on loopback (stdlib asyncio only).

``GET /queues``, ``GET /agents`` and ``GET /channels`` answer with the JSON
that callbacks the server provides return (the ACD's ``queue_rows`` and
``agent_rows``, the server's ``channel_rows``); ``GET /`` lists them.
Admin actions the server hands in (``POST /admin/reload``, and actions on
one target such as ``POST /admin/record-pause/CALL_ID``) are the only
writes: each is one callback, named in the table. It
runs on the server's event loop, so a callback sees the control plane
between two ticks, never half way through one.

The HTTP part is sans-I/O (``parse_request``, ``parse_headers`` and
``response`` work on bytes) under a thin asyncio server, as in websockets.
It binds loopback only: status and admin actions are for the operator's
terminal (``voiceboard queues``, ``voiceboard reload``) on the server's own
machine, not a network service; the ACD's network API is a separate, later
piece. Loopback is still shared with every local user and every browser
on the machine, so each request first passes the ``AdminDoor`` (Host and
Origin checks, the token, the reload rate, the audit log: admin_door.py).

Connections are bounded so that no client can take the descriptors the
media path needs (recordings, the call database): at most
``max_connections`` at once and ``max_per_client`` from one address (a
new one over the limit first evicts that group's oldest connection that
has sent nothing for ``EVICT_AFTER`` s, else it is answered 503 and
closed at once), the request head must arrive within ``timeout`` s and be
at most ``MAX_HEADER`` bytes, and the cap is lowered (and the soft
RLIMIT_NOFILE raised towards the hard one) so that three quarters of the
descriptors free at start stay free for the rest of the server.
"""
from __future__ import annotations

import asyncio
import inspect
import json
import logging
import os
import resource
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from voiceserver.api.door import AdminDoor, Request
from voiceserver.core.runtime import Conflict

__all__ = ["StatusApi", "parse_request", "parse_headers", "response", "HttpError", "Conflict",
           "LOOPBACK", "connection_cap"]

log = logging.getLogger(__name__)

LOOPBACK = ("127.0.0.1", "::1", "localhost")
MAX_HEADER = 8192
MAX_TARGET = 200               # characters of an action's target (call id, BOARD:CHANNEL, agent)
EVICT_AFTER = 1.0              # s: a connection silent this long may make room for a new one
_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
            404: "Not Found", 405: "Method Not Allowed", 409: "Conflict",
            413: "Content Too Large", 429: "Too Many Requests",
            431: "Request Header Fields Too Large", 500: "Internal Server Error",
            503: "Service Unavailable"}

Source = Callable[[], Any]


def listen_socket(host: str, port: int) -> socket.socket:
    """A non-blocking TCP listener on host:port (0: a free port), for the status API and the
    network API; OSError as bind() gave it (the socket closed)."""
    family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    listener = socket.socket(family, kind, proto)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(addr)
        listener.listen(128)
        listener.setblocking(False)
    except OSError:
        listener.close()
        raise
    return listener


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def parse_request(head: bytes) -> tuple[str, str]:
    """Method and path of a request head (up to the blank line). HttpError if malformed."""
    if len(head) > MAX_HEADER:
        raise HttpError(431, f"request head over {MAX_HEADER} bytes")
    try:
        line = head.split(b"\r\n", 1)[0].decode("ascii")
    except UnicodeDecodeError:
        raise HttpError(400, "request line is not ASCII") from None
    parts = line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1.") or not parts[1].startswith("/"):
        raise HttpError(400, f"bad request line {line[:80]!r}")
    method, target, _ = parts
    path = target.split("?", 1)[0].rstrip("/") or "/"
    return method, path


def parse_headers(head: bytes) -> dict[str, str]:
    """The header fields of a request head, names lower-case. HttpError if malformed.

    A repeated Host, Origin or Authorization is refused: which one would count?"""
    fields: dict[str, str] = {}
    for raw in head.split(b"\r\n")[1:]:
        if not raw:
            continue
        try:
            line = raw.decode("latin-1")
        except UnicodeDecodeError:   # pragma: no cover - latin-1 decodes every byte
            raise HttpError(400, "bad header line") from None
        name, sep, value = line.partition(":")
        name = name.strip().lower()
        if not sep or not name or name != name.strip() or " " in name:
            raise HttpError(400, f"bad header line {line[:80]!r}")
        if name in fields and name in ("host", "origin", "authorization", "content-length"):
            raise HttpError(400, f"header {name} given twice")
        fields[name] = value.strip()
    if "transfer-encoding" in fields or fields.get("content-length", "0") not in ("", "0"):
        raise HttpError(413, "the status API takes no request body")
    return fields


def response(status: int, body: Any, headers: dict[str, str] | None = None) -> bytes:
    """A complete HTTP/1.1 response with a JSON body; the connection then closes."""
    data = json.dumps(body, ensure_ascii=False, default=str).encode("utf-8")
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    head = (f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
            f"Content-Type: application/json; charset=utf-8\r\n"
            f"Content-Length: {len(data)}\r\n{extra}"
            f"Cache-Control: no-store\r\nConnection: close\r\n\r\n")
    return head.encode("ascii") + data


def connection_cap(wanted: int) -> int:
    """How many API connections this process can afford: `wanted`, or fewer.

    At most a quarter of the descriptors free now; when that is short of
    `wanted`, the soft RLIMIT_NOFILE is first raised towards the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return wanted
    try:
        in_use = len(os.listdir("/proc/self/fd"))
    except OSError:
        in_use = 64
    need = in_use + 4 * wanted
    if soft < need and (hard == resource.RLIM_INFINITY or hard > soft):
        new = need if hard == resource.RLIM_INFINITY else min(hard, need)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
        log.info("status API: raised the soft descriptor limit from %d to %d", soft, new)
        soft = new
    return max(1, min(wanted, (soft - in_use) // 4))


@dataclass
class _Conn:
    peer: str
    since: float
    sock: socket.socket
    writer: asyncio.StreamWriter | None = None   # once the stream is set up
    busy: bool = False           # its request head is in: it is being answered

    def drop(self) -> None:
        if self.writer is not None:
            self.writer.transport.abort()
        else:
            self.sock.close()


class StatusApi:
    """``async with StatusApi(queues=..., agents=..., channels=..., token=...) as api: api.port``.

    Without a `token` every request but ``GET /`` is refused (401): there is
    no open mode. `audit_log`: the admin audit file (JSON lines), or None."""

    def __init__(self, *, queues: Source, agents: Source, channels: Source,
                 admin: dict[str, Source] | None = None,
                 admin_arg: dict[str, Callable[[str], Any]] | None = None,
                 host: str = "127.0.0.1", port: int = 0, timeout: float = 5.0,
                 token: str | None = None, audit_log: str | None = None,
                 max_connections: int = 64, max_per_client: int = 32,
                 reload_interval: float = 1.0) -> None:
        if host not in LOOPBACK:
            raise ValueError(f"the status API binds loopback only ({', '.join(LOOPBACK)}), "
                             f"not {host!r}")
        self.routes: dict[str, Source] = {"/queues": queues, "/agents": agents,
                                          "/channels": channels}
        self.admin: dict[str, Source] = {f"/admin/{name}": fn for name, fn in (admin or {}).items()}
        # actions on one target: POST /admin/NAME/TARGET calls fn(TARGET)
        self.admin_arg: dict[str, Callable[[str], Any]] = {
            f"/admin/{name}": fn for name, fn in (admin_arg or {}).items()}
        self.host = host
        self.port = port
        self.timeout = timeout
        self.token = token
        self.audit_log = audit_log
        self.max_connections = max_connections
        self.max_per_client = max_per_client
        self.reload_interval = reload_interval
        self.door: AdminDoor | None = None
        self.refused_connections = 0     # answered 503 at once: over a connection limit
        self.evicted_connections = 0     # closed to make room: silent for EVICT_AFTER s
        self._conns: dict[int, _Conn] = {}     # id(conn) -> conn
        self._tasks: set[asyncio.Task] = set()
        self._warned = 0.0
        self._listener: socket.socket | None = None

    def handle(self, method: str, path: str) -> tuple[int, Any]:
        """Status and JSON body for a parsed request (the whole protocol, no I/O)."""
        if path == "/":
            return 200, {"endpoints": sorted(self.routes),
                         "admin": sorted(self.admin) + sorted(f"{p}/TARGET" for p in self.admin_arg)}
        action = self.admin.get(path)
        head, _, target = path.rpartition("/")
        on_target = action is None and bool(target) and head in self.admin_arg
        if on_target and len(target) > MAX_TARGET:
            return 404, {"error": f"no such target: {len(target)} characters (at most {MAX_TARGET})"}
        if on_target:
            fn = self.admin_arg[head]
            action = lambda: fn(unquote(target))  # noqa: E731
        elif action is None and path in self.admin_arg:
            return 400, {"error": f"{path} needs a target: POST {path}/TARGET"}
        if action is not None:
            if method != "POST":
                return 405, {"error": f"{method} not allowed: {path} is an action (POST)"}
            try:
                return 200, action()
            except Conflict as exc:
                return 409, {"error": str(exc)}
            except LookupError as exc:
                if on_target and not isinstance(exc, KeyError):   # no such target
                    return 404, {"error": str(exc)}
                return _internal(path, exc)
            except ValueError as exc:
                if on_target:      # a target that cannot name anything
                    return 400, {"error": f"bad target: {exc}"}
                return _internal(path, exc)
            except Exception as exc:   # a failed action is an answer, not a crash
                return _internal(path, exc)
        source = self.routes.get(path)
        if source is None:
            return 404, {"error": f"no such endpoint {path}",
                         "endpoints": sorted(self.routes) + sorted(self.admin)}
        if method not in ("GET", "HEAD"):
            return 405, {"error": f"{method} not allowed: the status endpoints are read-only"}
        try:
            rows = source()
        except Exception as exc:   # a bug in a view must not take the server down
            return _internal(path, exc)
        return 200, {path.strip("/"): rows}

    async def start(self) -> StatusApi:
        self.max_connections = connection_cap(self.max_connections)
        self.max_per_client = min(self.max_per_client, self.max_connections)
        listener = listen_socket(self.host, self.port)
        self._listener = listener
        self.port = listener.getsockname()[1]
        try:
            self.door = AdminDoor(self.token, self.port, self.audit_log,
                                  reload_interval=self.reload_interval)
        except OSError as exc:
            await self.close()
            raise OSError(exc.errno, f"cannot open the admin audit log {self.audit_log}: "
                                     f"{exc.strerror}") from None
        asyncio.get_running_loop().add_reader(listener.fileno(), self._accept)
        return self

    async def close(self) -> None:
        if self._listener is not None:
            asyncio.get_running_loop().remove_reader(self._listener.fileno())
            self._listener.close()
            self._listener = None
            for conn in list(self._conns.values()):
                conn.drop()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.door is not None:
            self.door.close()
            self.door = None

    async def __aenter__(self) -> StatusApi:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- connections -------------------------------------------------------
    def _accept(self) -> None:
        """The listener is readable: take what is waiting; admit, or refuse at once.

        Our own accept loop rather than asyncio.start_server: a refused
        connection is closed here, before the next accept, so refusals never
        hold descriptors while the loop catches up."""
        listener = self._listener
        if listener is None:            # closed meanwhile
            return
        for _ in range(64):
            try:
                sock, peer = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:       # EMFILE and friends: try again at the next wake-up
                log.warning("status API: accept failed: %s", exc)
                return
            addr = str(peer[0])
            now = time.monotonic()
            if not self._admit(addr, now):
                self._refuse_connection(addr, sock, now)
                continue
            conn = _Conn(addr, now, sock)
            self._conns[id(conn)] = conn
            task = asyncio.get_running_loop().create_task(self._serve(conn))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _admit(self, peer: str, now: float) -> bool:
        """Room for one more connection from `peer`: evict a silent one if need be."""
        for cap, mine_only in ((self.max_per_client, True), (self.max_connections, False)):
            group = [c for c in self._conns.values() if c.peer == peer or not mine_only]
            if len(group) < cap:
                continue
            idle = [c for c in group if not c.busy and now - c.since >= EVICT_AFTER]
            if not idle:
                return False
            victim = min(idle, key=lambda c: c.since)
            victim.drop()
            self._conns.pop(id(victim), None)
            self.evicted_connections += 1
        return True

    def _refuse_connection(self, peer: str, sock: socket.socket, now: float) -> None:
        self.refused_connections += 1
        if now - self._warned >= 10.0:
            self._warned = now
            log.warning("status API: connection from %s refused: %d open (at most %d, %d per "
                        "address); %d refused so far", peer, len(self._conns),
                        self.max_connections, self.max_per_client, self.refused_connections)
        try:        # a fresh socket's buffer takes the 503 whole, or it is lost: no waiting
            sock.setblocking(False)
            sock.send(response(503, {"error": "too many connections to the status API; try again"}))
        except OSError:
            pass
        sock.close()

    async def _serve(self, conn: _Conn) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=MAX_HEADER)
        protocol = asyncio.StreamReaderProtocol(reader)
        try:
            transport, _ = await loop.connect_accepted_socket(lambda: protocol, conn.sock)
        except OSError:
            self._conns.pop(id(conn), None)
            conn.sock.close()
            return
        conn.writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        if id(conn) not in self._conns:      # evicted or closed meanwhile
            transport.abort()
            return
        await self._client(reader, conn.writer, conn)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      conn: _Conn) -> None:
        peer = writer.get_extra_info("peername")
        local = writer.get_extra_info("sockname")
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.timeout)
                conn.busy = True
                method, path = parse_request(head)
                req = Request(method, path, parse_headers(head), peer=peer and tuple(peer[:2]),
                              local=local and tuple(local[:2]))
                status, body, extra = await self.answer(req)
            except HttpError as exc:
                status, body, extra = exc.status, {"error": exc.message}, {}
            except asyncio.LimitOverrunError:
                status, body, extra = 431, {"error": f"request head over {MAX_HEADER} bytes"}, {}
            except (TimeoutError, asyncio.IncompleteReadError):
                return
            writer.write(response(status, body, extra))
            await asyncio.wait_for(writer.drain(), self.timeout)
        except (TimeoutError, ConnectionError):
            pass
        finally:
            self._conns.pop(id(conn), None)
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, asyncio.CancelledError):
                pass

    async def answer(self, req: Request) -> tuple[int, Any, dict[str, str]]:
        """The door, then the handler; the admin actions' audit lines.

        An action may return an awaitable (a reload loads its file in a worker
        thread): it is awaited here, so the loop goes on with calls meanwhile."""
        assert self.door is not None, "start() first"
        refusal = self.door.refuse(req)
        if refusal is not None:
            return refusal
        status, body = self.handle(req.method, req.path)
        if inspect.isawaitable(body):
            try:
                body = await body
            except Exception as exc:   # a failed action is an answer, not a crash
                status, body = _internal(req.path, exc)
        self.door.done(req, status, body)
        return status, body, {}


def _internal(path: str, exc: Exception) -> tuple[int, dict[str, str]]:
    """A bug behind an endpoint: the traceback to the server log, a short JSON error out."""
    log.error("status API %s failed", path, exc_info=exc)
    return 500, {"error": f"internal error ({type(exc).__name__}); see the server log"}
