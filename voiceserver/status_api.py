"""A tiny read-only HTTP/JSON status endpoint on loopback (stdlib asyncio only).

``GET /queues``, ``GET /agents`` and ``GET /channels`` answer with the JSON
that callbacks the server provides return (the ACD's ``queue_rows`` and
``agent_rows``, the server's ``channel_rows``); ``GET /`` lists them.
Admin actions the server hands in (``POST /admin/reload``, and actions on
one target such as ``POST /admin/record-pause/CALL_ID``) are the only
writes: each is one callback, named in the table. It
runs on the server's event loop, so a callback sees the control plane
between two ticks, never half way through one.

The HTTP part is sans-I/O (``parse_request`` and ``response`` work on
bytes) under a thin asyncio server, as in websockets. It binds loopback
only: status and admin actions are for the operator's terminal
(``voiceboard queues``, ``voiceboard reload``) on the server's own machine,
not a network service; the ACD's network API is a separate, later piece.
"""
from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

__all__ = ["StatusApi", "parse_request", "response", "HttpError", "Conflict", "LOOPBACK"]

LOOPBACK = ("127.0.0.1", "::1", "localhost")
MAX_HEADER = 8192
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
            409: "Conflict", 431: "Request Header Fields Too Large", 500: "Internal Server Error"}

Source = Callable[[], Any]


class Conflict(Exception):
    """An admin action the target's state does not allow now: HTTP 409."""


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


def response(status: int, body: Any) -> bytes:
    """A complete HTTP/1.1 response with a JSON body; the connection then closes."""
    data = json.dumps(body, ensure_ascii=False, default=str).encode("utf-8")
    head = (f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
            f"Content-Type: application/json; charset=utf-8\r\n"
            f"Content-Length: {len(data)}\r\n"
            f"Cache-Control: no-store\r\nConnection: close\r\n\r\n")
    return head.encode("ascii") + data


class StatusApi:
    """``async with StatusApi(queues=..., agents=..., channels=...) as api: api.port``."""

    def __init__(self, *, queues: Source, agents: Source, channels: Source,
                 admin: dict[str, Source] | None = None,
                 admin_arg: dict[str, Callable[[str], Any]] | None = None,
                 host: str = "127.0.0.1", port: int = 0, timeout: float = 5.0) -> None:
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
        self._server: asyncio.base_events.Server | None = None

    def handle(self, method: str, path: str) -> tuple[int, Any]:
        """Status and JSON body for a parsed request (the whole protocol, no I/O)."""
        if path == "/":
            return 200, {"endpoints": sorted(self.routes),
                         "admin": sorted(self.admin) + sorted(f"{p}/TARGET" for p in self.admin_arg)}
        action = self.admin.get(path)
        head, _, target = path.rpartition("/")
        on_target = action is None and bool(target) and head in self.admin_arg
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
                return 500, {"error": f"{type(exc).__name__}: {exc}"}
            except Exception as exc:   # a failed action is an answer, not a crash
                return 500, {"error": f"{type(exc).__name__}: {exc}"}
        source = self.routes.get(path)
        if source is None:
            return 404, {"error": f"no such endpoint {path}",
                         "endpoints": sorted(self.routes) + sorted(self.admin)}
        if method not in ("GET", "HEAD"):
            return 405, {"error": f"{method} not allowed: the status endpoints are read-only"}
        try:
            rows = source()
        except Exception as exc:   # a bug in a view must not take the server down
            return 500, {"error": f"{type(exc).__name__}: {exc}"}
        return 200, {path.strip("/"): rows}

    async def start(self) -> "StatusApi":
        self._server = await asyncio.start_server(self._client, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> "StatusApi":
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.timeout)
                status, body = self.handle(*parse_request(head))
            except HttpError as exc:
                status, body = exc.status, {"error": exc.message}
            except asyncio.LimitOverrunError:
                status, body = 431, {"error": "request head too large"}
            except (asyncio.IncompleteReadError, asyncio.TimeoutError):
                return
            writer.write(response(status, body))
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except ConnectionError:
                pass
