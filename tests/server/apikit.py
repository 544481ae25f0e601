"""The network API on a real loopback socket for the API's tests (tests/server/test_api_*.py).

`LiveApi` runs `NetworkApi` in an event loop of its own thread, so that a
test (and hypothesis, example after example) talks to it with plain
blocking clients (http.client) while it serves. Its users are one of each
role; `CallBook` stands behind the commands: a book of calls in progress
(which agents each is offered to), that publishes on the bus what each
command did, as the server's controller would, and refuses what the server
refuses (no such call: LookupError; not possible now: Conflict). The effect
of the commands on a real server is checked end to end in
test_api_e2e_commands.py.

Imported by name (``from apikit import ...``), as the other kits.
"""
from __future__ import annotations

import asyncio
import http.client
import json
import ssl
import subprocess
import threading
from pathlib import Path
from typing import Any

from voiceserver.api.network import NetworkApi
from voiceserver.api.roles import ApiUser, Role, token_digest
from voiceserver.api.status import Conflict
from voiceserver.core.events import EventBus, ServerEventKind

K = ServerEventKind
TOKENS = {name: f"{name}-token-{'x' * 32}" for name in ("admin", "sup", "acd", "a1001", "a1002", "mon")}
USERS = (
    ApiUser("admin", Role.ADMIN, token_digest(TOKENS["admin"])),
    ApiUser("sup", Role.SUPERVISOR, token_digest(TOKENS["sup"])),
    ApiUser("acd", Role.INTEGRATION, token_digest(TOKENS["acd"])),
    ApiUser("a1001", Role.AGENT, token_digest(TOKENS["a1001"]), agent="1001"),
    ApiUser("a1002", Role.AGENT, token_digest(TOKENS["a1002"]), agent="1002"),
    ApiUser("mon", Role.MONITOR, token_digest(TOKENS["mon"])),
)
AGENTS = ("1001", "1002", "alice")


class CallBook:
    """The calls in progress and the agents: the backend the commands act on (see the module)."""

    def __init__(self, bus: EventBus) -> None:
        self.bus = bus
        self.calls: dict[str, set[str]] = {}          # call id -> agents it is offered/connected to
        self.held: set[str] = set()
        self.states = {a: "logged_out" for a in AGENTS}
        self.done: list[tuple[str, ...]] = []          # what was asked, in order
        self.reloads = 0

    def offer(self, call_id: str, *agents: str) -> None:
        self.calls[call_id] = set(agents)
        self.bus.publish(0, K.CALL_START, chan=1, call_id=call_id, board="b", caller="139", called="", direction="in")
        self.bus.publish(0, K.ACD_DECISION, call_id=call_id, queue="q", chosen=list(agents))

    def call_agents(self, call_id: str) -> set[str]:
        return set(self.calls.get(call_id, ()))

    def hang_up(self, call_id: str, reason: str) -> dict[str, Any]:
        if call_id not in self.calls:
            raise LookupError(f"no call {call_id!r} in progress")
        del self.calls[call_id]
        self.done.append(("hangup", call_id, reason))
        self.bus.publish(0, K.CALL_END, chan=1, call_id=call_id, board="b", answered=True, reason=reason)
        return {"hung_up": call_id, "reason": reason}

    def call_command(self, call_id: str, command: str, by: str, **args: Any) -> dict[str, Any]:
        if call_id not in self.calls:
            raise LookupError(f"no call {call_id!r} in progress")
        self.done.append((command, call_id, by, *args.values()))
        if command in ("transfer", "ivr"):
            return {"call_id": call_id, **args}
        if command == "route":
            self.bus.publish(0, K.CALL_QUEUE, chan=1, call_id=call_id, board="b", queue=args["queue"])
            return {"call_id": call_id, "queue": args["queue"]}
        if command in ("hold", "retrieve"):
            if (command == "hold") == (call_id in self.held):
                raise Conflict(f"call {call_id} is {'already' if command == 'hold' else 'not'} on hold")
            (self.held.add if command == "hold" else self.held.discard)(call_id)
            kind = K.CALL_HOLD if command == "hold" else K.CALL_UNHOLD
            self.bus.publish(0, kind, chan=1, call_id=call_id, board="b", agent=None, phone=4, why=by)
            return {"call_id": call_id, "held": call_id in self.held, "changed": True}
        return {"call_id": call_id, "paused": command == "record-pause", "changed": True}

    def agent_control(self, agent: str, action: str, by: str, reason: str | None = None) -> dict[str, Any]:
        if agent not in self.states:
            raise LookupError(f"no agent {agent!r}")
        old = self.states[agent]
        if action in ("ready", "not_ready") and old == "logged_out":
            raise Conflict(f"agent {agent} is logged out: log in first")
        new = {"login": "not_ready", "logout": "logged_out", "ready": "ready", "not_ready": "not_ready"}[action]
        self.states[agent] = new
        self.done.append(("agent", agent, action, by, reason or ""))
        row = {"agent": agent, "action": action, "old": old, "state": new, "now": new, "pending": None,
               "changed": new != old, "by": by}
        self.bus.publish(0, K.AGENT_STATE, **row)
        return row

    def views(self) -> dict[str, Any]:
        return {"queues": lambda: [{"name": "q", "waiting": len(self.calls)}],
                "agents": lambda: [{"name": a, "state": s} for a, s in self.states.items()],
                "channels": lambda: [{"board": "b", "chan": 1, "call_id": c} for c in self.calls]}

    async def admin_reload(self) -> dict[str, Any]:
        self.reloads += 1
        return {"reloaded": True, "file": "server.toml", "error": None}


class LiveApi:
    """`with LiveApi(tmp) as api:` the network API serving on 127.0.0.1:api.port in a thread."""

    def __init__(self, tmp: Path, *, tls: tuple[str, str] | None = None, journal: bool = False) -> None:
        self.tmp = tmp
        self.tls = tls
        self.audit = tmp / "audit.jsonl"
        self.loop = asyncio.new_event_loop()
        self.bus = EventBus()
        self.journal = None
        if journal:
            from voiceserver.core.journal import EventJournal
            self.journal = EventJournal(str(tmp / "events.db"), "pbx1")
            self.bus.start_at(self.journal.open())
            self.bus.subscribe(self.journal, first=True)
        self.book = CallBook(self.bus)
        self.api = NetworkApi(self.bus, host="127.0.0.1", port=0, users=USERS, audit_log=str(self.audit),
                              journal=(str(tmp / "events.db"), "pbx1") if journal else None, tls=tls,
                              backend=self.book)
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> LiveApi:
        self._thread.start()
        self.call(self.api.start())
        return self

    def __exit__(self, *exc: object) -> None:
        self.call(self.api.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()
        if self.journal is not None:
            self.journal.close()

    def call(self, coro: Any, timeout: float = 30.0) -> Any:
        """Run `coro` on the API's loop and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def on_loop(self, fn: Any, *args: Any) -> Any:
        """Run a plain function on the API's loop (the bus is the loop's) and wait for it."""
        async def run() -> Any:
            return fn(*args)
        return self.call(run())

    @property
    def port(self) -> int:
        return self.api.port

    def request(self, method: str, path: str, *, user: str | None = "admin", body: Any = None,
                raw: bytes | None = None, headers: dict[str, str] | None = None,
                context: ssl.SSLContext | None = None) -> tuple[int, Any]:
        """One request over a new connection: (status, JSON body or None)."""
        if context is not None:
            conn: http.client.HTTPConnection = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=30,
                                                                           context=context)
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        h = dict(headers or {})
        if user is not None:
            h.setdefault("Authorization", f"Bearer {TOKENS[user]}")
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        if data is not None:
            h.setdefault("Content-Type", "application/json")
        try:
            conn.request(method, path, body=data, headers=h)
            resp = conn.getresponse()
            payload = resp.read()
        finally:
            conn.close()
        try:
            return resp.status, json.loads(payload)
        except ValueError:
            return resp.status, None

    def audit_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.audit.read_text().splitlines()] if self.audit.exists() else []


def self_signed(tmp: Path, name: str = "api") -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 and localhost, made with the openssl binary:
    (certificate, key) PEM files, the key mode 0600."""
    cert, key = tmp / f"{name}.crt", tmp / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "2", "-subj", "/CN=voiceboard test",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    key.chmod(0o600)
    return str(cert), str(key)


async def until(pred, what: str, guard: float = 30.0) -> None:
    """Wait until pred() holds; `guard` s is a guard against a wedged socket, never a timing check."""
    async def wait() -> None:
        while not pred():
            await asyncio.sleep(0.01)
    try:
        await asyncio.wait_for(wait(), guard)
    except TimeoutError:
        raise AssertionError(f"never saw {what}") from None
