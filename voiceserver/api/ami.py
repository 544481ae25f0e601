"""An Asterisk-AMI-compatible TCP feed, so that call-centre tools written for Asterisk work.

The Asterisk Manager Interface is a line protocol: the server greets with
`Asterisk Call Manager/VERSION`, then client and server exchange messages
of `Key: Value` lines ended by an empty line. This feed speaks enough of it
for the tools that screen-pop callers, count queue calls and follow agents:

- actions `Login` (the secret is the server's admin token: [api]
  token_file; any user name), `Logoff`, `Ping`, `Events` (on/off), and
  `QueueStatus` / `CoreStatus`; other actions get `Response: Error`.
- events, translated from the server's bus (docs/events.md): Newchannel,
  NewCallerid, Newstate, DTMFBegin/DTMFEnd, Hangup, BridgeEnter,
  QueueCallerJoin, QueueCallerLeave, QueueCallerAbandon, AgentCalled,
  AgentConnect, AgentRingNoAnswer, AgentComplete, QueueMemberStatus, Alarm,
  AlarmClear; each also carries `Seq` (the bus's number) and `CallID`.

AMI has no resume: a client that was away misses what happened meanwhile
(the WebSocket stream of voiceserver.api.stream resumes). A client that
does not read is cut off once `BUFFER` messages wait for it; the server
never waits.
"""
from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Callable
from typing import Any

from voiceserver.core.events import EventBus, ServerEvent, ServerEventKind

log = logging.getLogger(__name__)

VERSION = "5.0.1"          # the AMI version the feed answers as (Asterisk 13's)
BUFFER = 10_000            # messages waiting for one client before it is cut off
K = ServerEventKind

Message = dict[str, str]


def encode(msg: Message) -> bytes:
    return ("".join(f"{k}: {v}\r\n" for k, v in msg.items()) + "\r\n").encode("utf-8", "replace")


def channel_name(board: str | None, chan: int | None) -> str:
    """An Asterisk-style channel name: DAHDI/<board>-<chan> (the board's channel number)."""
    return f"DAHDI/{board or 'board'}-{chan if chan is not None else 0}"


def translate(ev: ServerEvent) -> list[Message]:
    """The AMI events for one bus event (none for the kinds AMI has no name for)."""
    d = ev.data
    k = ev.kind
    base = {"Privilege": "call,all", "Channel": channel_name(d.get("board"), ev.chan),
            "Uniqueid": ev.call_id or "", "Linkedid": ev.call_id or ""}
    out: list[Message] = []
    if k is K.CALL_START:
        out.append({"Event": "Newchannel", **base, "ChannelState": "4", "ChannelStateDesc": "Ring",
                    "CallerIDNum": d.get("caller") or "<unknown>", "CallerIDName": "<unknown>",
                    "Exten": d.get("called") or "s", "Context": "voiceboard-" + str(d.get("direction", ""))})
    elif k is K.CALL_CALLERID:
        out.append({"Event": "NewCallerid", **base, "CallerIDNum": d.get("caller") or "<unknown>",
                    "CallerIDName": d.get("name") or "<unknown>"})
    elif k is K.CALL_ANSWER:
        out.append({"Event": "Newstate", **base, "ChannelState": "6", "ChannelStateDesc": "Up"})
    elif k is K.CALL_DIGIT:
        digit = str(d.get("digit", ""))
        for name in ("DTMFBegin", "DTMFEnd"):
            out.append({"Event": name, **base, "Digit": digit, "Direction": "Received"})
    elif k is K.CALL_END:
        out.append({"Event": "Hangup", **base, "Cause": "16", "Cause-txt": str(d.get("reason") or "Normal Clearing")})
    elif k is K.CALL_BRIDGE:
        out.append({"Event": "BridgeEnter", **base, "BridgeUniqueid": ev.call_id or "",
                    "BridgeTechnology": "voiceboard"})
        if d.get("agent"):
            out.append({"Event": "AgentConnect", **base, "Queue": str(d.get("queue") or ""),
                        "Interface": str(d["agent"]), "MemberName": str(d["agent"])})
    elif k is K.ACD_JOINED:
        out.append({"Event": "QueueCallerJoin", **base, "Queue": str(d.get("queue")),
                    "Position": str(d.get("position", "")), "CallerIDNum": str(d.get("caller") or "<unknown>")})
    elif k is K.ACD_OUTCOME:
        queue = str(d.get("queue") or "")
        if d.get("outcome") == "abandoned":
            out.append({"Event": "QueueCallerAbandon", **base, "Queue": queue})
        out.append({"Event": "QueueCallerLeave", **base, "Queue": queue})
    elif k is K.ACD_DECISION:
        for agent in d.get("chosen") or ():
            out.append({"Event": "AgentCalled", **base, "Queue": str(d.get("queue") or ""),
                        "Interface": str(agent), "MemberName": str(agent)})
    elif k is K.ACD_RING_TIMEOUT:
        out.append({"Event": "AgentRingNoAnswer", **base, "Interface": str(d.get("agent")),
                    "MemberName": str(d.get("agent"))})
    elif k is K.ACD_CALL_ENDED:
        out.append({"Event": "AgentComplete", **base, "Interface": str(d.get("agent")),
                    "MemberName": str(d.get("agent")), "TalkTime": str(round((d.get("talk_ms") or 0) / 1000)),
                    "Reason": "agent" if d.get("agent_state") else "caller"})
    elif k is K.AGENT_STATE:
        state = str(d.get("state", ""))
        out.append({"Event": "QueueMemberStatus", "Privilege": "agent,all", "Interface": str(d.get("agent")),
                    "MemberName": str(d.get("agent")), "Paused": "1" if state == "not_ready" else "0",
                    "Status": {"ready": "1", "busy": "2", "logged_out": "5"}.get(state, "0"),
                    "StateName": state})
    elif k is K.SPAN_ALARM:
        out.append({"Event": "Alarm" if d.get("set") else "AlarmClear", "Privilege": "system,all",
                    "Span": str(d.get("span")), "Alarm": str(d.get("alarm")), "Board": str(d.get("board"))})
    for m in out:
        m["Seq"] = str(ev.seq)
        m["CallID"] = ev.call_id or ""
    return out


class AmiFeed:
    """`await feed.start()` listens on host:port (0: a free port; `feed.port` says which)."""

    def __init__(self, bus: EventBus, *, host: str, port: int, token: str,
                 status: Callable[[], dict[str, Any]] | None = None, buffer: int = BUFFER) -> None:
        self.bus, self.host, self.port, self.token = bus, host, port, token
        self.status = status            # QueueStatus: {"queues": [...], "agents": [...]} rows
        self.buffer = buffer
        self.clients: set[_AmiClient] = set()
        self._server: asyncio.base_events.Server | None = None
        self._stop_bus: Callable[[], None] | None = None

    async def start(self) -> AmiFeed:
        try:
            self._server = await asyncio.start_server(self._client, self.host, self.port)
        except OSError as exc:
            raise OSError(exc.errno, f"AMI feed: cannot listen on {self.host}:{self.port}: {exc.strerror}") from None
        self.port = self._server.sockets[0].getsockname()[1]
        self._stop_bus = self.bus.subscribe(self._event)
        return self

    def _event(self, ev: ServerEvent) -> None:
        msgs = translate(ev) if self.clients else []
        for client in list(self.clients):
            if client.events:
                client.queue(msgs)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client = _AmiClient(self, writer)
        self.clients.add(client)
        try:
            writer.write(f"Asterisk Call Manager/{VERSION}\r\n".encode())
            await client.serve(reader)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.clients.discard(client)
            client.close()

    async def close(self) -> None:
        if self._stop_bus is not None:
            self._stop_bus()
            self._stop_bus = None
        if self._server is not None:
            self._server.close()
            for client in list(self.clients):
                client.close()
            await self._server.wait_closed()
            self._server = None


class _AmiClient:
    def __init__(self, feed: AmiFeed, writer: asyncio.StreamWriter) -> None:
        self.feed = feed
        self.writer = writer
        self.authenticated = False
        self.events = False
        self.out: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._sender = asyncio.ensure_future(self._send_loop())

    def queue(self, msgs: list[Message]) -> None:
        if self.out.qsize() >= self.feed.buffer:      # a client that does not read: cut off
            log.warning("AMI client %s does not read: disconnected", self.writer.get_extra_info("peername"))
            self.events = False
            self.out.put_nowait(None)
            return
        for m in msgs:
            self.out.put_nowait(encode(m))

    async def _send_loop(self) -> None:
        while True:
            data = await self.out.get()
            if data is None:
                self.writer.close()
                return
            self.writer.write(data)
            await self.writer.drain()

    async def finish(self) -> None:
        """What was queued goes out, then the connection closes."""
        self.out.put_nowait(None)
        try:
            await asyncio.wait_for(asyncio.shield(self._sender), 10.0)
        except (TimeoutError, ConnectionError):
            pass

    def reply(self, msg: Message, action_id: str | None) -> None:
        if action_id is not None:
            msg = {**msg, "ActionID": action_id}
        self.out.put_nowait(encode(msg))

    async def serve(self, reader: asyncio.StreamReader) -> None:
        while True:
            block = await reader.readuntil(b"\r\n\r\n")
            fields: dict[str, str] = {}
            for line in block.decode("utf-8", "replace").split("\r\n"):
                key, sep, value = line.partition(":")
                if sep:
                    fields[key.strip().lower()] = value.strip()
            action = fields.get("action", "").lower()
            aid = fields.get("actionid")
            if action == "login":
                secret = fields.get("secret", "")
                if hmac.compare_digest(secret.encode(), self.feed.token.encode()):
                    self.authenticated = True
                    self.events = fields.get("events", "on").lower() not in ("off", "no", "0")
                    self.reply({"Response": "Success", "Message": "Authentication accepted"}, aid)
                    self.reply({"Event": "FullyBooted", "Privilege": "system,all", "Status": "Fully Booted"}, None)
                else:
                    self.reply({"Response": "Error", "Message": "Authentication failed"}, aid)
                    await self.finish()
                    return
            elif not self.authenticated:
                self.reply({"Response": "Error", "Message": "Permission denied: Login first"}, aid)
            elif action == "ping":
                self.reply({"Response": "Success", "Ping": "Pong", "Timestamp": f"{time.time():.6f}"}, aid)
            elif action == "logoff":
                self.reply({"Response": "Goodbye", "Message": "Thanks for all the fish."}, aid)
                await self.finish()
                return
            elif action == "events":
                self.events = fields.get("eventmask", "on").lower() not in ("off", "no", "0")
                self.reply({"Response": "Success", "Events": "On" if self.events else "Off"}, aid)
            elif action == "corestatus":
                self.reply({"Response": "Success", "CoreCurrentCalls": str(self._current_calls())}, aid)
            elif action == "queuestatus":
                self._queue_status(aid)
            else:
                self.reply({"Response": "Error", "Message": f"Invalid/unknown command: {fields.get('action', '')}"
                                                             " (this feed answers Login, Logoff, Ping, Events, "
                                                             "CoreStatus, QueueStatus)"}, aid)

    def _current_calls(self) -> int:
        st = self.feed.status() if self.feed.status else {}
        return sum(int(q.get("waiting", 0)) + int(q.get("talking", 0)) for q in st.get("queues", []))

    def _queue_status(self, aid: str | None) -> None:
        st = self.feed.status() if self.feed.status else {"queues": [], "agents": []}
        self.reply({"Response": "Success", "EventList": "start", "Message": "Queue status will follow"}, aid)
        n = 0
        for q in st.get("queues", []):
            self.reply({"Event": "QueueParams", "Queue": str(q.get("queue", q.get("name", ""))),
                        "Calls": str(q.get("waiting", 0)), "Completed": str(q.get("answered", 0)),
                        "Abandoned": str(q.get("abandoned", 0))}, aid)
            n += 1
        for a in st.get("agents", []):
            self.reply({"Event": "QueueMember", "Name": str(a.get("agent", "")),
                        "StateInterface": str(a.get("agent", "")), "Status": str(a.get("state", "")),
                        "Paused": "1" if a.get("state") == "not_ready" else "0"}, aid)
            n += 1
        self.reply({"Event": "QueueStatusComplete", "EventList": "Complete", "ListItems": str(n)}, aid)

    def close(self) -> None:
        self._sender.cancel()
        if not self.writer.is_closing():
            self.writer.close()
