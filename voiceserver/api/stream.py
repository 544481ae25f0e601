"""The network API's event stream: every server event to a client, in order, resumable.

    GET /v1/events?since=SEQ&kind=call.&kind=acd.joined&call=ID&channel=BOARD:CHAN   (WebSocket)

One text frame per event, the JSON of the bus event (docs/events.md). A
client that was away reconnects with the last `seq` it saw (`since`) and
gets every event after it, from the server's memory or its journal
(voiceserver.core.journal), then the live ones, with nothing duplicated;
where events are gone it gets one `journal.gap` event naming them. Without
`since` the stream starts with the next event.

A client that cannot keep up gets a bounded buffer (`buffer` events); when
that is full the server sends `stream.overflow` with `resume` (the last
seq it sent) and closes the socket (code 1013, "try again later"): the
client reconnects with `since=resume` and loses nothing. The bus never
waits on a client.

The API's port is served by aiohttp in the server's event loop; the admin
door (voiceserver.api.door: loopback Host and Origin, the bearer token)
stands before every request, as on the status API.

An `agent` user's stream holds only its own events (`AgentScope`): those
that name its agent, and those of the calls offered to it, from the offer
to the call's end. The scope is learnt from the events in their order, so
a resumed stream (from the journal) gets the same events as a live one.
"""
from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WSCloseCode, web

from voiceserver.api.door import Request
from voiceserver.api.roles import ApiUser
from voiceserver.core.events import EventBus, EventFilter, ServerEvent, ServerEventKind
from voiceserver.core.journal import COMMIT_INTERVAL, JournalError, gap, read_since

log = logging.getLogger(__name__)

BUFFER = 10_000          # events queued for one client before it is cut off (with its resume point)
PAGE = 5_000             # events read from the journal at a time when catching up
JOURNAL_WAIT = 5.0       # s: how long a catch-up waits for the journal to commit what it needs


class EventStream:
    """`GET /v1/events`: the bus to WebSocket clients (see the module's docstring)."""

    def __init__(self, bus: EventBus, journal: tuple[str, str] | None = None, *, buffer: int = BUFFER) -> None:
        self.bus = bus
        self.journal = journal          # (path, server_id) of the durable journal, or None
        self.buffer = buffer
        self.clients = 0
        self.journal_pages = 0          # reads of the journal by catching-up clients (for the bench)
        self._sockets: set[web.WebSocketResponse] = set()
        self._clients: dict[_Client, ApiUser | None] = {}     # each stream and whose it is

    async def close_all(self) -> None:
        """The server stops: every client gets a close (1001, going away) and resumes later."""
        for ws in list(self._sockets):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server stopping: resume later")

    def revoke(self, still_valid: Callable[[ApiUser], bool]) -> list[str]:
        """A reload removed (or changed) users: their streams end now, each with a close
        (1008, policy violation) whose reason says why; the users whose streams end."""
        ended = []
        for client, user in list(self._clients.items()):
            if user is not None and not still_valid(user) and client.revoked is None:
                client.revoked = f"user {user.name[:40]}: removed or changed by a config reload"
                client.wake.set()
                ended.append(user.name)
        return ended

    async def handle(self, request: web.Request, agent: str | None = None,
                     user: ApiUser | None = None) -> web.StreamResponse:
        """One client's stream; `agent`: an agent user's id (only that agent's events); `user`:
        whose stream it is (a reload that removes the user ends it, `revoke`)."""
        q = request.query
        since: int | None = None
        try:
            if "since" in q:
                if not q["since"].isdigit():
                    raise ValueError(f"since={q['since'][:40]!r}: expected a seq (0 or more)")
                since = int(q["since"])
            if agent is not None and q.get("agent", agent) != agent:
                return web.json_response({"error": f"agent={q['agent'][:40]!r}: an agent user follows only its "
                                                   f"own events (agent {agent})"}, status=403)
            # an agent user's stream is always its agent's (the filter's agent scope)
            flt = EventFilter(q.getall("kind", []), q.get("call"), q.get("channel"), q.get("queue"),
                              agent if agent is not None else q.get("agent"))
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        if since is not None and since > self.bus.last_seq:
            return web.json_response({"error": f"since={since} is after the newest event "
                                               f"({self.bus.last_seq}): not a seq of this server"}, status=400)
        ws = web.WebSocketResponse(heartbeat=30.0)
        if not ws.can_prepare(request).ok:
            return web.json_response({"error": f"{request.path} is a WebSocket: connect with "
                                               f"Upgrade: websocket"}, status=426, headers={"Upgrade": "websocket"})
        await ws.prepare(request)
        self.clients += 1
        self._sockets.add(ws)
        client = _Client(ws, flt, self.buffer, self.bus.last_seq)
        self._clients[client] = user
        stop = self.bus.subscribe(client.queue_event)
        try:
            await client.run(since, self._history)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            stop()
            self.clients -= 1
            self._sockets.discard(ws)
            self._clients.pop(client, None)
            if not ws.closed:
                await ws.close()
        return ws

    async def _history(self, after: int, upto: int) -> list[dict[str, Any]]:
        """The events after `after` up to `upto` (both seqs), oldest first, gaps included:
        from the bus's memory where it reaches back, the journal before that. The journal
        commits a little behind the bus (COMMIT_INTERVAL): when what it has does not reach
        the memory yet, wait for it (up to JOURNAL_WAIT), then name what it lacks as a gap."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + JOURNAL_WAIT
        while True:
            mem = self.bus.journal
            mem_first = mem[0].seq if mem else upto + 1
            out: list[dict[str, Any]] = []
            if after + 1 < mem_first:          # older than the memory: the journal
                if self.journal is None:
                    out.append(gap(after + 1, mem_first - 1, "older than the server keeps in memory "
                                                             "(no [storage] events journal)"))
                else:
                    path, server_id = self.journal
                    try:
                        rows = await asyncio.to_thread(read_since, path, server_id, after, PAGE)
                        self.journal_pages += 1
                    except JournalError as exc:
                        rows = [gap(after + 1, mem_first - 1, f"the journal cannot be read: {exc}")]
                    reach = _last_seq(rows[-1]) if rows else after
                    if reach < mem_first - 1 and len(rows) < PAGE and loop.time() < deadline:
                        await asyncio.sleep(COMMIT_INTERVAL)     # not committed yet: read again
                        continue
                    for ev in rows:
                        if _last_seq(ev) >= mem_first:
                            if ev["seq"] is None:      # a gap running into the memory: up to it
                                ev = {**ev, "to": mem_first - 1}
                                if ev["from"] <= ev["to"]:
                                    out.append(ev)
                            break
                        out.append(ev)
                    if len(rows) == PAGE and out:      # more in the journal: the next page next time
                        return out
                    if reach < mem_first - 1:          # the journal never got them (its writer failed)
                        out.append(gap(reach + 1, mem_first - 1, "not in the journal: its writer is "
                                                                  "behind or failed"))
            start = max(after, _last_seq(out[-1]) if out else after)
            out += [e.as_dict() for e in mem if start < e.seq <= upto]
            return out


def _last_seq(ev: dict[str, Any]) -> int:
    """The last number an event (or a gap) from the journal stands for."""
    return ev["seq"] if ev["seq"] is not None else ev["to"]


class _Client:
    """One connected client: what it gets next, and the queue of live events behind it."""

    def __init__(self, ws: web.WebSocketResponse, flt: EventFilter, buffer: int, joined_at: int) -> None:
        self.ws = ws
        self.flt = flt
        self.buffer = buffer
        self.joined_at = joined_at     # the bus's last seq when the client joined: later ones are live
        self.live: deque[ServerEvent] = deque()
        self.wake = asyncio.Event()
        self.overflow = False
        self.closed = False
        self.revoked: str | None = None   # why the stream's user may no longer have it (a reload)
        self.sent = joined_at          # the last seq sent (or filtered out, or inside a gap sent)

    def queue_event(self, ev: ServerEvent) -> None:
        """The bus's subscriber: never blocks, never raises."""
        if self.overflow:
            return
        if len(self.live) >= self.buffer:
            self.overflow = True
        else:
            self.live.append(ev)
        self.wake.set()

    async def _send(self, ev: dict[str, Any] | ServerEvent) -> None:
        if isinstance(ev, ServerEvent):
            if self.flt.wants(ev.kind, ev.call_id, ev.chan, ev.data.get("board"), ev.data):
                await self.ws.send_str(ev.json)
            self.sent = ev.seq
            return
        if self.flt.wants_dict(ev):
            await self.ws.send_str(json.dumps(ev, ensure_ascii=False, default=str))
        self.sent = ev["seq"] if ev["seq"] is not None else ev["to"]

    async def _read(self) -> None:
        """Clients send nothing the stream uses; their close (or a dead socket) ends it."""
        try:
            async for _ in self.ws:
                pass
        finally:
            self.closed = True
            self.wake.set()

    async def run(self, since: int | None,
                  history: Callable[[int, int], Awaitable[list[dict[str, Any]]]]) -> None:
        reader = asyncio.ensure_future(self._read())
        try:
            if since is not None:
                self.sent = since
                while self.sent < self.joined_at and not self.overflow and not self.closed \
                        and self.revoked is None:
                    page = await history(self.sent, self.joined_at)     # catch up to the join
                    if not page:
                        break
                    for old in page:
                        if self.revoked is not None:
                            break
                        await self._send(old)
            while not self.closed:
                if self.revoked is not None:
                    reader.cancel()
                    await asyncio.gather(reader, return_exceptions=True)
                    await self.ws.close(code=WSCloseCode.POLICY_VIOLATION, message=self.revoked.encode()[:120])
                    return
                if self.overflow:
                    await self.ws.send_str(json.dumps({
                        "seq": None, "kind": ServerEventKind.STREAM_OVERFLOW.value, "resume": self.sent,
                        "reason": f"more than {self.buffer} events waited for this client: "
                                  f"reconnect with since={self.sent}"}))
                    reader.cancel()                # the close handshake reads the client's reply
                    await asyncio.gather(reader, return_exceptions=True)
                    await self.ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"slow client: resume")
                    return
                self.wake.clear()
                while self.live and not self.overflow and self.revoked is None:
                    live = self.live.popleft()
                    if live.seq > self.sent:
                        await self._send(live)
                if not self.live and not self.overflow and not self.closed and self.revoked is None:
                    await self.wake.wait()
        finally:
            reader.cancel()


def door_request(request: web.Request) -> Request:
    """What the admin door looks at, from an aiohttp request."""
    peer = request.transport.get_extra_info("peername") if request.transport else None
    local = request.transport.get_extra_info("sockname") if request.transport else None
    return Request(request.method, request.path, {k.lower(): v for k, v in request.headers.items()},
                   peer=tuple(peer[:2]) if peer else None, local=tuple(local[:2]) if local else None)
