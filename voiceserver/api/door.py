"""Who may use the loopback status/admin API, and the audit log of what they did.

Loopback is not a boundary: every local user can connect, and so can a web
page in a browser on this machine (a form POST, or DNS rebinding: a name
that resolves to 127.0.0.1 after the page loaded). So each request passes
this door before any handler runs:

- ``Host`` must name this port on loopback (``127.0.0.1:PORT``,
  ``localhost:PORT``, ``[::1]:PORT``): a rebound page sends its own name.
  An ``Origin``, when there is one, must be one of those too: 403.
- Everything but ``GET /`` (the index, a health check) needs
  ``Authorization: Bearer TOKEN``: the admin's token (the file only the
  server's user can read, token.py) or, on the network API, another user's
  (``[[api.user]]``, voiceserver.api.roles): 401. The door says who it is
  (``Request.user``); what that user's role may do is the API's check.
- Reloads are rate limited (one per ``reload_interval`` seconds): 429.

A network API bound to an address that is not loopback (with TLS: clients
on other machines) has no loopback names to check the Host against: there
any Host goes, and an ``Origin`` must be the Host's own (a web page of
another site is refused).

Every admin action (``/admin/...`` and every POST, done or refused) and
every refusal is one JSON line in the audit log: time, peer address and the
peer's uid (from /proc/net/tcp: on loopback the client's socket is ours to
see), the API user and its role, method, path, whether the token was right,
status, result. Refusals of requests without a valid token are written at
most one a second (``not_logged`` counts those left out) so that a flood of
bad requests cannot flood the log; a known user's refusals (403: its role
may not) are all written.
"""
from __future__ import annotations

import datetime as dt
import errno
import ipaddress
import json
import logging
import os
import pwd
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from voiceserver.api.roles import ADMIN_NAME, ApiUser, Role, find_user, token_digest

__all__ = ["AdminDoor", "Request", "peer_uid", "RELOAD_PATH", "RELOAD_PATHS"]

log = logging.getLogger(__name__)

RELOAD_PATH = "/admin/reload"
RELOAD_PATHS = (RELOAD_PATH, "/v1/reload")     # the status API's and the network API's
OPEN_PATHS = ("/",)            # no token needed (nothing in them but the endpoint names)


@dataclass
class Request:
    """What the door looks at: a parsed request head and who sent it."""
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)    # names lower-case
    peer: tuple[str, int] | None = None
    local: tuple[str, int] | None = None
    user: ApiUser | None = None        # set by the door: whose token it is

    @property
    def is_admin(self) -> bool:
        return self.path.startswith("/admin/")


class AdminDoor:
    """``door.refuse(req)`` -> (status, body, headers) or None; ``door.done(req, status, body)``."""

    def __init__(self, token: str | None, port: int, audit_log: str | None = None, *,
                 users: tuple[ApiUser, ...] | None = None, loopback: bool = True,
                 reload_interval: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        """`token`: the admin's (the status API, the AMI feed); `users`: the network API's,
        the admin among them (None: the admin alone). `loopback`: False for a network API bound
        to another address (any Host; an Origin must be the Host's own)."""
        self.token = token
        if users is None:
            users = (ApiUser(ADMIN_NAME, Role.ADMIN, token_digest(token)),) if token is not None else ()
        self.users = users
        self.loopback = loopback
        self.hosts = {f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"}
        self.origins = {f"{scheme}://{h}" for h in self.hosts for scheme in ("http", "https")}
        self.reload_interval = reload_interval
        self.clock = clock
        self._last_reload: float | None = None
        self._last_refusal_line: float | None = None
        self.not_logged = 0          # refusals since the last line that no line shows
        self.audit_path = audit_log
        self._audit = None
        if audit_log is not None:
            fd = os.open(audit_log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
            st = os.fstat(fd)
            if st.st_uid != os.geteuid() or st.st_mode & 0o022:   # others could forge or erase lines
                os.close(fd)
                raise OSError(errno.EPERM, f"owned by uid {st.st_uid} with mode "
                                           f"{st.st_mode & 0o777:04o}: it must be this user's "
                                           f"and writable by it alone")
            self._audit = os.fdopen(fd, "a", encoding="utf-8")

    # -- the checks --------------------------------------------------------
    def token_state(self, req: Request) -> str:
        """'ok', 'missing' or 'wrong' for the request's Authorization header; 'ok' sets
        `req.user` (whose token it is)."""
        auth = req.headers.get("authorization")
        if auth is None:
            return "missing"
        scheme, _, given = auth.partition(" ")
        if not self.users or scheme.lower() != "bearer":
            return "wrong"
        req.user = find_user(self.users, given.strip())
        return "ok" if req.user is not None else "wrong"

    def _host_refusal(self, req: Request, host: str) -> str | None:
        """Why the Host or Origin is not this API's, or None."""
        origin = req.headers.get("origin")
        if self.loopback:
            if host.lower() not in self.hosts:
                return (f"Host {host[:100]!r} is not this API's loopback address "
                        f"(127.0.0.1, localhost or [::1] with its port)")
            if origin is not None and origin.lower() not in self.origins:
                return f"cross-origin request from {origin[:100]!r} refused"
            return None
        if origin is not None and origin.lower() not in (f"http://{host.lower()}", f"https://{host.lower()}"):
            return f"cross-origin request from {origin[:100]!r} refused"
        return None

    def refuse(self, req: Request) -> tuple[int, dict[str, Any], dict[str, str]] | None:
        """Why `req` may not go on (status, JSON body, extra headers), or None: it may."""
        host = req.headers.get("host")
        token = self.token_state(req)
        why: tuple[int, str, dict[str, str]] | None = None
        if host is None:
            why = 400, "no Host header", {}
        elif (bad_host := self._host_refusal(req, host)) is not None:
            why = 403, bad_host, {}
        elif req.path not in OPEN_PATHS and token != "ok":
            why = 401, (f"the token is {token}: send Authorization: Bearer TOKEN, the token in the "
                        f"server's [api] token_file (the admin) or a [[api.user]]'s"), {"WWW-Authenticate": "Bearer"}
        elif req.path in RELOAD_PATHS and req.method == "POST" and self._may_reload(req):
            now = self.clock()
            if self._last_reload is not None and now - self._last_reload < self.reload_interval:
                wait = self.reload_interval - (now - self._last_reload)
                why = 429, (f"reload refused: at most one every {self.reload_interval:g} s; "
                            f"try again in {wait:.1f} s"), {"Retry-After": str(max(1, round(wait)))}
            else:
                self._last_reload = now
        if why is None:
            return None
        status, message, headers = why
        self._refused(req, status, message, token)
        return status, {"error": message}, headers

    def _may_reload(self, req: Request) -> bool:
        """Only an admin's reload counts against the rate (another role gets its 403 after)."""
        return req.user is None or req.user.role is Role.ADMIN

    # -- the audit log -----------------------------------------------------
    def done(self, req: Request, status: int, body: Any, detail: dict[str, Any] | None = None) -> None:
        """A state-changing request the door let through (an admin path, or any POST of the
        network API) has been answered: its audit line. `detail`: what the command was asked
        to do beyond its path (a reason, a prompt list)."""
        if not (req.is_admin or req.method == "POST"):
            return
        line: dict[str, Any] = {"result": "done" if status == 200 else "failed"}
        if detail:
            line["detail"] = detail
        if isinstance(body, dict) and status != 200 and "error" in body:
            line["error"] = str(body["error"])[:300]
        self._write(req, status, "ok", line)

    def forbidden(self, req: Request, message: str) -> None:
        """A known user asked for what its role may not do (403): always a line."""
        self._write(req, 403, "ok", {"result": "refused", "why": message})

    def _refused(self, req: Request, status: int, message: str, token: str) -> None:
        now = self.clock()
        if self._last_refusal_line is not None and now - self._last_refusal_line < 1.0:
            self.not_logged += 1
            return
        self._last_refusal_line = now
        self._write(req, status, token, {"result": "refused", "why": message})

    def _write(self, req: Request, status: int, token: str, extra: dict[str, Any]) -> None:
        if self._audit is None:
            return
        uid = peer_uid(req.peer, req.local) if req.peer and req.local else None
        line: dict[str, Any] = {
            "time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
            "peer": f"{req.peer[0]}:{req.peer[1]}" if req.peer else None,
            "uid": uid, "user": _user(uid),
            "api_user": req.user.name if req.user else None, "role": req.user.role.value if req.user else None,
            "method": req.method, "path": req.path[:300], "token": token, "status": status, **extra}
        if self.not_logged:
            line["not_logged"] = self.not_logged     # refusals since the last line, not written
            self.not_logged = 0
        try:
            self._audit.write(json.dumps(line, ensure_ascii=False) + "\n")
            self._audit.flush()
        except OSError as exc:
            log.error("admin audit log %s: cannot write: %s", self.audit_path, exc)

    def close(self) -> None:
        if self._audit is None:
            return
        if self.not_logged:
            try:
                self._audit.write(json.dumps({
                    "time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
                    "result": "refused", "not_logged": self.not_logged,
                    "why": "refusals left out of the log (at most one line a second)"}) + "\n")
            except OSError:
                pass
            self.not_logged = 0
        self._audit.close()
        self._audit = None


def _user(uid: int | None) -> str | None:
    try:
        return pwd.getpwuid(uid).pw_name if uid is not None else None
    except KeyError:
        return None


def _proc_addr(host: str, port: int) -> str | None:
    """An address as /proc/net/tcp{,6} prints it: native-order 32-bit words in hex, :PORT."""
    try:
        packed = ipaddress.ip_address(host.split("%", 1)[0]).packed
    except ValueError:
        return None
    words = "".join(f"{int.from_bytes(packed[i:i + 4], sys.byteorder):08X}"
                    for i in range(0, len(packed), 4))
    return f"{words}:{port:04X}"


def peer_uid(peer: tuple[str, int] | None, local: tuple[str, int] | None) -> int | None:
    """The uid owning the client's end of a loopback TCP connection (Linux), or None.

    The client's socket has our peer's address as its local one and ours as
    its remote one; /proc/net/tcp shows every socket's owner."""
    if not peer or not local:
        return None
    remote, here = _proc_addr(peer[0], peer[1]), _proc_addr(local[0], local[1])
    if remote is None or here is None:
        return None
    want = (remote, here)
    table = "/proc/net/tcp6" if len(want[0]) > 13 else "/proc/net/tcp"
    try:
        with open(table, encoding="ascii") as f:
            next(f, None)
            for line in f:
                parts = line.split()
                if len(parts) > 7 and parts[1] == want[0] and parts[2] == want[1]:
                    return int(parts[7])
    except OSError:
        return None
    return None
