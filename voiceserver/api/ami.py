"""An Asterisk-AMI-compatible TCP feed, so that call-centre tools written for Asterisk work.

The Asterisk Manager Interface is a line protocol: the server greets with
`Asterisk Call Manager/VERSION`, then client and server exchange messages
of `Key: Value` lines ended by an empty line. This feed speaks enough of it
for the tools that screen-pop callers, count queue calls and follow agents:

- actions `Login` (`Username`: a user of the network API, `[[api.user]]`;
  `Secret`: its token; the admin's token, [api] token_file, with any user
  name), `Logoff`, `Ping`, `Events` (on/off), `CoreStatus`, `QueueStatus`,
  `QueueSummary`, `CoreShowChannels` and `Status` (the channels in calls), `Hangup`
  (`Channel`: DAHDI/<board>-<chan> or the call id; `Cause`), `QueuePause`
  (`Interface`: the agent, `Paused`: true = not ready, false = ready,
  `Reason`: the not-ready reason code), `Originate` (`Channel`:
  DAHDI/<trunk group>/<number>; `Context` ivr, agent or call and `Exten`:
  what the answered call does, or `Application` Playback or Queue with its
  `Data`), `Redirect` (`Context` ivr or queue, `Exten`
  the menu or queue), `QueueAdd`/`QueueRemove` (`Queue`, `Interface`: the
  agent joins or leaves the queue); other actions get `Response: Error`.
- each action is checked against the user's role as the same command of
  the network API is (voiceserver.api.roles: `monitor` may not hang up,
  an `agent` user may hang up only its own calls and pause only its own
  agent), and every state-changing one (Hangup, QueuePause, Originate, Redirect,
  QueueAdd, QueueRemove), and every one
  refused for its role, is a line of the API's audit log (path
  `/ami/<Action>`). An `agent` user gets only its own events, as on the
  event stream (voiceserver.core.events.AgentScope).
- events, translated from the server's bus (docs/events.md): Newchannel,
  NewCallerid, Newstate, DTMFBegin/DTMFEnd, Hangup, BridgeEnter,
  QueueCallerJoin, QueueCallerLeave, QueueCallerAbandon, AgentCalled,
  AgentConnect, AgentRingNoAnswer, AgentComplete, QueueMemberStatus,
  QueueMemberAdded, QueueMemberRemoved, OriginateResponse, Alarm, AlarmClear,
  and UserEvent QueueAllBusy (acd.all_busy: Asterisk has no such event);
  each also carries `Seq` (the bus's number) and `CallID`.

AMI has no resume: a client that was away misses what happened meanwhile
(the WebSocket stream of voiceserver.api.stream resumes). A client that
does not read is cut off once `BUFFER` messages wait for it; the server
never waits.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from voiceserver.acd.queues import MAX_PENALTY
from voiceserver.api.door import AdminDoor, Request
from voiceserver.api.roles import (
    AGENTS,
    CALLS,
    ORIGINATE,
    READ,
    VIEW_ALL,
    ApiUser,
    Right,
    Role,
    find_user,
    may,
    token_digest,
)
from voiceserver.core.events import AgentScope, EventBus, ServerEvent, ServerEventKind
from voiceserver.core.runtime import Conflict

log = logging.getLogger(__name__)

VERSION = "5.0.1"          # the AMI version the feed answers as (Asterisk 13's)
BUFFER = 10_000            # messages waiting for one client before it is cut off
K = ServerEventKind

Message = dict[str, str]
# An agent's state -> Asterisk's device state number, as QueueMember and QueueMemberStatus carry it
# (AST_DEVICE_*: 0 unknown, 1 not in use, 2 in use, 5 unavailable, 6 ringing); not ready is
# Paused: 1 on a free device, as Asterisk's paused members are. The state's name is in StateName.
DEVICE_STATES = {"ready": "1", "not_ready": "1", "wrap_up": "1", "ringing": "6", "on_call": "2",
                 "logged_out": "5"}


def member_state(state: str) -> dict[str, str]:
    """A queue member's Status (the device state number), StateName and Paused (not ready)."""
    return {"Status": DEVICE_STATES.get(state, "0"), "StateName": state, "Paused": "1" if state == "not_ready" else "0"}


# Originate and Redirect: the Context names what the Exten is (docs/api.md, the AMI section)
ORIGINATE_CONTEXTS = ("ivr", "agent", "call")
REDIRECT_CONTEXTS = ("ivr", "queue")
# Originate's Application -> the originate's `then` it is (Data: the prompts, '&'-separated; the queue)
ORIGINATE_APPLICATIONS = {"playback": "play", "queue": "queue"}
ORIGINATE_APPLICATIONS_TEXT = "Playback (Data: prompt[&prompt...]: heard, then hung up), Queue (Data: the queue)"
# call.originate's failure cause -> OriginateResponse's Reason (Asterisk's AST_CONTROL numbers)
ORIGINATE_REASONS = {"no-answer": "3", "busy": "5", "congestion": "8"}


def encode(msg: Message) -> bytes:
    return ("".join(f"{k}: {v}\r\n" for k, v in msg.items()) + "\r\n").encode("utf-8", "replace")


def channel_name(board: str | None, chan: int | None) -> str:
    """An Asterisk-style channel name: DAHDI/<board>-<chan> (the board's channel number)."""
    return f"DAHDI/{board or 'board'}-{chan if chan is not None else 0}"


def interface(fields: dict[str, str]) -> str:
    """The agent id of an action's `Interface`: `1001`, or Asterisk's `Agent/1001`."""
    value = fields.get("interface", "")
    return value.split("/", 1)[1] if value.lower().startswith("agent/") else value


def seconds(ms: Any) -> int:
    """Milliseconds (or None: not known yet) as AMI's whole seconds."""
    return round(int(ms) / 1000) if ms is not None else 0


def originate_application(application: str, data: str) -> dict[str, str] | None:
    """The originate's `then` for Originate's Application and Data, or None (not supported).
    Data as Asterisk's: `Playback` prompt names '&'-separated (the called party hears them,
    then is hung up, as Asterisk hangs up when the application returns), `Queue` the queue's
    name; Asterisk's options after a ',' are ignored."""
    what = ORIGINATE_APPLICATIONS.get(application.strip().lower())
    if what is None:
        return None
    return {what: data.split(",", 1)[0].strip()}


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
    elif k is K.CALL_DIGIT:    # one event per digit, at its tone's end: both AMI events from it
        digit = str(d.get("digit", ""))
        out.append({"Event": "DTMFBegin", **base, "Digit": digit, "Direction": "Received"})
        end = {"Event": "DTMFEnd", **base, "Digit": digit, "Direction": "Received"}
        if d.get("duration_ms") is not None:
            end["DurationMs"] = str(d["duration_ms"])
        out.append(end)
    elif k is K.CALL_END:      # Q.850 cause: 38 network out of order (span alarm, board lost), else 16
        out.append({"Event": "Hangup", **base, "Cause": "38" if d.get("side") == "network" else "16",
                    "Cause-txt": str(d.get("reason") or "Normal Clearing")})
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
                    "MemberName": str(d.get("agent")), "TalkTime": str(seconds(d.get("talk_ms"))),
                    "Reason": "agent" if d.get("agent_state") else "caller"})
    elif k is K.AGENT_STATE:
        state = str(d.get("state", ""))
        out.append({"Event": "QueueMemberStatus", "Privilege": "agent,all", "Interface": str(d.get("agent")),
                    "MemberName": str(d.get("agent")), **member_state(state)})
    elif k is K.ACD_MEMBER:
        agent = str(d.get("agent"))
        msg = {"Event": "QueueMemberAdded" if d.get("joined") else "QueueMemberRemoved",
               "Privilege": "agent,all", "Queue": str(d.get("queue")), "Interface": agent,
               "MemberName": agent, "StateInterface": agent}
        if d.get("joined") and d.get("penalty") is not None:
            msg["Penalty"] = str(d["penalty"])
        out.append(msg)
    elif k is K.CALL_ORIGINATE and d.get("state") in ("answered", "failed"):
        ok = d.get("state") == "answered"
        out.append({"Event": "OriginateResponse", **base, "Response": "Success" if ok else "Failure",
                    "Reason": "4" if ok else ORIGINATE_REASONS.get(str(d.get("cause")), "0"),
                    "Exten": str(d.get("number") or ""), "Cause-txt": str(d.get("reason") or "")})
    elif k is K.ACD_ALL_BUSY:  # Asterisk has no such event: a UserEvent, as a dialplan's UserEvent() sends
        out.append({"Event": "UserEvent", "Privilege": "user,all", "UserEvent": "QueueAllBusy",
                    "Queue": str(d.get("queue") or ""), "Busy": "1" if d.get("busy") else "0",
                    "Waiting": str(d.get("waiting", 0))})
    elif k is K.SPAN_ALARM:
        out.append({"Event": "Alarm" if d.get("set") else "AlarmClear", "Privilege": "system,all",
                    "Span": str(d.get("span")), "Alarm": str(d.get("alarm")), "Board": str(d.get("board"))})
    for m in out:
        m["Seq"] = str(ev.seq)
        m["CallID"] = ev.call_id or ""
    return out


class AmiFeed:
    """`await feed.start()` listens on host:port (0: a free port; `feed.port` says which)."""

    def __init__(self, bus: EventBus, *, host: str, port: int, token: str | None = None,
                 users: tuple[ApiUser, ...] | None = None, status: Callable[[], dict[str, Any]] | None = None,
                 buffer: int = BUFFER, backend: Any = None, audit_log: str | None = None) -> None:
        """`users`: the network API's (voiceserver.api.token.api_users, the admin among them);
        without them `token` is the admin's, the only user. `backend`: the voice server (its
        `hang_up`, `agent_control`, `call_command`, `originate`, `queue_member`, `call_agents`, `views`), as for
        the network API; `status`:
        the QueueStatus rows where there is no backend. `audit_log`: the API's audit log."""
        self.bus, self.host, self.port, self.token = bus, host, port, token
        if users is None:
            users = (ApiUser("admin", Role.ADMIN, token_digest(token)),) if token is not None else ()
        self.users = users
        self.status = status            # QueueStatus: {"queues": [...], "agents": [...]} rows
        self.backend = backend
        self.audit_log = audit_log
        self.door: AdminDoor | None = None
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
        try:
            self.door = AdminDoor(self.token, self.port, self.audit_log, users=self.users)
        except OSError as exc:
            self._server.close()
            raise OSError(exc.errno, f"AMI feed: cannot open the audit log {self.audit_log}: "
                                     f"{exc.strerror}") from None
        self._stop_bus = self.bus.subscribe(self._event)
        return self

    def login(self, username: str, secret: str) -> ApiUser | None:
        """The user `username` whose token `secret` is (the admin's token: any name), or None."""
        user = find_user(self.users, secret) if secret else None
        if user is None or (user.name != username and user.role is not Role.ADMIN):
            return None
        return user

    def reload_users(self, users: tuple[ApiUser, ...]) -> dict[str, Any]:
        """A config reload: the users the new config names log in from now on; a client logged
        in as a user that was removed or changed (token, role, agent) is told why and
        disconnected, as the network API closes that user's streams."""
        kept = set(users)
        self.users = users
        if self.door is not None:
            self.door.users = users
        gone = [c for c in self.clients if c.user is not None and c.user not in kept]
        for client in gone:
            assert client.user is not None
            client.events = False
            client.queue([{"Event": "Shutdown", "Shutdown": "Uncleanly", "Restart": "False",
                           "Reason": f"user {client.user.name}: removed or changed by a config reload"}])
            client.out.put_nowait(None)
            self.clients.discard(client)
        return {"clients_closed": len(gone)}

    def views(self) -> dict[str, Callable[[], list[dict[str, Any]]]]:
        """The backend's queues, agents and channels (or `status`'s queues and agents)."""
        fn = getattr(self.backend, "views", None)
        if fn is not None:
            return fn()
        if self.status is None:
            return {}
        status = self.status
        return {"queues": lambda: status().get("queues", []), "agents": lambda: status().get("agents", [])}

    def _event(self, ev: ServerEvent) -> None:
        msgs = translate(ev) if self.clients else []
        done = ev.kind is K.CALL_ORIGINATE and ev.data.get("state") in ("answered", "failed")
        retry = ev.data.get("retry") if ev.kind is K.CALL_ORIGINATE and ev.data.get("state") == "retry" else None
        for client in list(self.clients):
            if retry is not None and ev.call_id in client.originated:   # glare: its response follows the new call
                client.originated[str(retry)] = client.originated.pop(ev.call_id)
            aid = client.originated.pop(ev.call_id or "", None) if done else None
            if aid is not None:          # the originator gets its OriginateResponse with its ActionID
                client.queue([{**m, "ActionID": aid} for m in msgs])
            elif client.events and (client.scope is None or client.scope.wants(ev.kind.value, ev.call_id, ev.data)):
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
        self.user: ApiUser | None = None
        self.scope: AgentScope | None = None     # an agent user: only its own events
        self.events = False
        self.originated: dict[str, str] = {}     # call id -> the ActionID of the Originate that made it
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
                user = self.feed.login(fields.get("username", ""), fields.get("secret", ""))
                if user is not None:
                    self.authenticated = True
                    self.user = user
                    self.scope = AgentScope(user.agent or "") if user.role is Role.AGENT else None
                    self.events = fields.get("events", "on").lower() not in ("off", "no", "0")
                    self.reply({"Response": "Success", "Message": "Authentication accepted"}, aid)
                    self.reply({"Event": "FullyBooted", "Privilege": "system,all", "Status": "Fully Booted"}, None)
                else:
                    self.reply({"Response": "Error", "Message": "Authentication failed"}, aid)
                    await self.finish()
                    return
            elif not self.authenticated:
                self.reply({"Response": "Error", "Message": "Permission denied: Login first"}, aid)
            elif action == "logoff":
                self.reply({"Response": "Goodbye", "Message": "Thanks for all the fish."}, aid)
                await self.finish()
                return
            elif action in ACTIONS:
                right, method = ACTIONS[action]
                why = self._forbidden(right, fields)
                if why is not None:
                    self._audit(fields, 403, {"result": "refused", "why": why})
                    self.reply({"Response": "Error", "Message": f"Permission denied: {why}"}, aid)
                else:
                    method(self, fields, aid)
            else:
                self.reply({"Response": "Error", "Message": f"Invalid/unknown command: {fields.get('action', '')}"
                                                             f" (this feed answers {', '.join(NAMES)})"}, aid)

    # -- the rights and the audit log (as the network API's) ----------------------------
    def _forbidden(self, right: Right, fields: dict[str, str]) -> str | None:
        """Why this user may not run this action on its target, or None."""
        user = self.user
        assert user is not None
        if not may(user, right):
            return f"user {user.name!r} has role {user.role}, which may not {right.what}: it needs {right.needs()}"
        if user.role is not Role.AGENT or right.agent_own is None:
            return None
        if right.agent_own == "agent":
            agent = interface(fields)
            if agent != user.agent:
                return (f"user {user.name!r} (role agent) may change only its own agent {user.agent!r}, "
                        f"not {agent[:40]!r}: that needs {right.needs()}")
            return None
        call_id = self._call_of(fields.get("channel", ""))
        agents = getattr(self.feed.backend, "call_agents", None)
        if call_id is None or agents is None or user.agent not in agents(call_id):
            return (f"user {user.name!r} (role agent) may control only the calls offered or connected to "
                    f"agent {user.agent!r}; {fields.get('channel', '')[:100]!r} is not one: that needs "
                    f"{right.needs()}")
        return None

    def _audit(self, fields: dict[str, str], status: int, line: dict[str, Any]) -> None:
        door = self.feed.door
        if door is None:
            return
        peer = self.writer.get_extra_info("peername")
        local = self.writer.get_extra_info("sockname")
        req = Request("POST", f"/ami/{fields.get('action', '')[:40]}", peer=tuple(peer[:2]) if peer else None,
                      local=tuple(local[:2]) if local else None, user=self.user)
        if line["result"] == "refused":
            door.forbidden(req, line["why"])
        else:
            door.done(req, status, line.get("body"), line.get("detail"))

    def _by(self) -> str:
        assert self.user is not None
        return f"AMI ({self.user.name})"

    def _call_of(self, channel: str) -> str | None:
        """The call id of `Channel`: DAHDI/<board>-<chan> (the call on that channel) or a call id."""
        rows = self.feed.views().get("channels")
        for row in rows() if rows is not None else []:
            if row.get("call_id") and (channel in (row["call_id"], channel_name(row.get("board"), row.get("chan")))):
                return str(row["call_id"])
        return channel or None

    def _command(self, fields: dict[str, str], aid: str | None, run: Callable[[], dict[str, Any]],
                 detail: dict[str, Any], success: str, extra: Callable[[], Message] | None = None) -> None:
        """A state-changing action: the reply (`extra`: more fields on success), and the audit
        line (who, what, the result)."""
        try:
            body = run()
            status, reply = 200, {"Response": "Success", "Message": success, **(extra() if extra else {})}
        except Conflict as exc:
            status, body, reply = 409, {"error": str(exc)}, {"Response": "Error", "Message": str(exc)}
        except LookupError as exc:
            msg = str(exc).strip("'\"")
            status, body, reply = 404, {"error": msg}, {"Response": "Error", "Message": msg}
        self._audit(fields, status, {"result": "done" if status == 200 else "failed", "body": body,
                                     "detail": detail})
        self.reply(reply, aid)

    # -- the actions ---------------------------------------------------------------------
    def _ping(self, fields: dict[str, str], aid: str | None) -> None:
        self.reply({"Response": "Success", "Ping": "Pong", "Timestamp": f"{time.time():.6f}"}, aid)

    def _events(self, fields: dict[str, str], aid: str | None) -> None:
        self.events = fields.get("eventmask", "on").lower() not in ("off", "no", "0")
        self.reply({"Response": "Success", "Events": "On" if self.events else "Off"}, aid)

    def _core_status(self, fields: dict[str, str], aid: str | None) -> None:
        self.reply({"Response": "Success", "CoreCurrentCalls": str(self._current_calls())}, aid)

    def _channels(self, fields: dict[str, str], aid: str | None) -> None:
        """CoreShowChannels and Status: one event per channel in a call."""
        status_action = fields.get("action", "").lower() == "status"
        event, done = ("Status", "StatusComplete") if status_action else ("CoreShowChannel",
                                                                          "CoreShowChannelsComplete")
        self.reply({"Response": "Success", "EventList": "start", "Message": "Channels will follow"}, aid)
        rows = self.feed.views().get("channels")
        n = 0
        for row in rows() if rows is not None else []:
            if not row.get("call_id"):
                continue
            self.reply({"Event": event, "Channel": channel_name(row.get("board"), row.get("chan")),
                        "Uniqueid": str(row["call_id"]), "Linkedid": str(row["call_id"]),
                        "CallerIDNum": str(row.get("caller") or "<unknown>"),
                        "ChannelStateDesc": str(row.get("state", "")), "Application": str(row.get("menu") or "")},
                       aid)
            n += 1
        self.reply({"Event": done, "EventList": "Complete", "ListItems": str(n)}, aid)

    def _hangup(self, fields: dict[str, str], aid: str | None) -> None:
        hang_up = getattr(self.feed.backend, "hang_up", None)
        channel = fields.get("channel", "")
        call_id = self._call_of(channel)
        if hang_up is None or call_id is None:
            self.reply({"Response": "Error", "Message": "Hangup: no such channel" if hang_up is not None
                        else "Hangup is not served here"}, aid)
            return
        cause = fields.get("cause")
        reason = f"hung up by AMI ({self.user.name if self.user else ''})" + (f", cause {cause}" if cause else "")
        self._command(fields, aid, lambda: hang_up(call_id, reason), {"channel": channel[:100], "reason": reason},
                      "Channel Hungup")

    def _queue_pause(self, fields: dict[str, str], aid: str | None) -> None:
        control = getattr(self.feed.backend, "agent_control", None)
        if control is None:
            self.reply({"Response": "Error", "Message": "QueuePause is not served here"}, aid)
            return
        agent = fields.get("interface", "")
        paused = fields.get("paused", "").lower()
        if not agent or paused not in ("true", "false", "yes", "no", "1", "0"):
            self.reply({"Response": "Error", "Message": "QueuePause needs Interface (the agent) and "
                                                        "Paused (true: not ready, false: ready)"}, aid)
            return
        reason = fields.get("reason") or None
        pause = paused in ("true", "yes", "1")
        by = self._by()

        def run() -> dict[str, Any]:
            if pause:
                return control(agent, "not_ready", by=by, reason=reason)
            return control(agent, "ready", by=by)
        detail = {"agent": agent, "paused": pause, **({"reason": reason} if pause and reason else {})}
        self._command(fields, aid, run, detail, f"Interface {agent} {'paused' if pause else 'unpaused'}")

    def _queue_status(self, fields: dict[str, str], aid: str | None) -> None:
        """QueueStatus: QueueParams per queue, each followed by a QueueMember per member (Queue,
        Penalty, CallsTaken, Status, StateName, Paused: `member_state`) where the rows name the members
        (the server's); else a QueueMember per agent."""
        views = self.feed.views()
        queues = views.get("queues")
        agents = views.get("agents")
        self.reply({"Response": "Success", "EventList": "start", "Message": "Queue status will follow"}, aid)
        n = 0
        rows = queues() if queues is not None else []
        agent_rows = {str(a.get("name", a.get("agent", ""))): a for a in (agents() if agents is not None else [])}
        for q in rows:
            queue = str(q.get("queue", q.get("name", "")))
            stats = q.get("stats") or q
            self.reply({"Event": "QueueParams", "Queue": queue, "Calls": str(q.get("waiting", 0)),
                        "Completed": str(stats.get("answered", 0)), "Abandoned": str(stats.get("abandoned", 0))},
                       aid)
            n += 1
            for m in q.get("members") or ():      # the server's rows: each member, as Asterisk lists them
                name = str(m.get("agent", ""))
                if self.user is not None and self.user.role is Role.AGENT and name != self.user.agent:
                    continue                     # an agent sees itself
                self.reply({"Event": "QueueMember", "Queue": queue, "Name": name, "Location": name,
                            "StateInterface": name, "Penalty": str(m.get("penalty", 0)),
                            "CallsTaken": str(agent_rows.get(name, {}).get("calls", 0)),
                            **member_state(str(m.get("state", "")))}, aid)
                n += 1
        per_queue = any("members" in q for q in rows)
        for name, a in ({} if per_queue else agent_rows).items():    # rows without members: each agent once
            if self.user is not None and self.user.role is Role.AGENT and name != self.user.agent:
                continue                     # an agent sees itself
            self.reply({"Event": "QueueMember", "Name": name, "StateInterface": name,
                        **member_state(str(a.get("state", "")))}, aid)
            n += 1
        self.reply({"Event": "QueueStatusComplete", "EventList": "Complete", "ListItems": str(n)}, aid)

    def _queue_summary(self, fields: dict[str, str], aid: str | None) -> None:
        """QueueSummary (`Queue`: that queue only): one QueueSummary event per queue from the
        rows QueueStatus serves; times in whole seconds, as Asterisk's (HoldTime: the average
        wait of the answered calls, TalkTime: the handle time's moving average)."""
        queues = self.feed.views().get("queues")
        wanted = fields.get("queue", "")
        self.reply({"Response": "Success", "EventList": "start", "Message": "Queue summary will follow"}, aid)
        n = 0
        for q in queues() if queues is not None else []:
            name = str(q.get("queue", q.get("name", "")))
            if wanted and name != wanted:
                continue
            self.reply({"Event": "QueueSummary", "Queue": name, "LoggedIn": str(q.get("logged_in", 0)),
                        "Available": str(q.get("ready", 0)), "Callers": str(q.get("waiting", 0)),
                        "HoldTime": str(seconds(q.get("asa_ms"))), "TalkTime": str(seconds(q.get("aht_ms"))),
                        "LongestHoldTime": str(seconds(q.get("longest_wait_ms")))}, aid)
            n += 1
        self.reply({"Event": "QueueSummaryComplete", "EventList": "Complete", "ListItems": str(n)}, aid)

    def _originate(self, fields: dict[str, str], aid: str | None) -> None:
        """Originate: Channel TECH/GROUP/NUMBER (DAHDI/pstn/13900001111) or Local/NUMBER@GROUP;
        Context ivr, agent or call with Exten the menu, the agent, the call id (none: nothing
        runs once answered); or Application Playback or Queue with its Data (see
        `originate_application`). Always asynchronous: the reply carries the new call's Uniqueid,
        OriginateResponse (with this action's ActionID, as Asterisk's) follows the answer or the
        failure."""
        originate = getattr(self.feed.backend, "originate", None)
        if originate is None:
            self.reply({"Response": "Error", "Message": "Originate is not served here"}, aid)
            return
        channel = fields.get("channel", "")
        if channel.lower().startswith("local/") and "@" in channel:
            number, _, group = channel[6:].partition("@")
        else:
            parts = channel.split("/")
            group, number = (parts[-2], parts[-1]) if len(parts) >= 3 else ("", "")
        context, exten = fields.get("context", "").lower(), fields.get("exten", "")
        if not group or not number or not number.isascii() or not all(c in "0123456789*#" for c in number) \
                or len(number) > 32:
            self.reply({"Response": "Error", "Message": "Originate needs Channel: DAHDI/<trunk group>/<number> "
                                                        "or Local/<number>@<trunk group>"}, aid)
            return
        application = fields.get("application", "")
        if application:              # as Asterisk: an Application runs instead of a Context/Exten
            then = originate_application(application, fields.get("data", ""))
            if then is None:
                self.reply({"Response": "Error", "Message": f"Originate: Application {application[:40]!r} is not "
                                                            f"supported; supported: {ORIGINATE_APPLICATIONS_TEXT}"},
                           aid)
                return
            if not next(iter(then.values())):
                self.reply({"Response": "Error", "Message": f"Originate: Application {application[:40]} needs Data: "
                                                            f"{ORIGINATE_APPLICATIONS_TEXT}"}, aid)
                return
        elif context and (context not in ORIGINATE_CONTEXTS or not exten):
            self.reply({"Response": "Error", "Message": f"Originate: Context is one of "
                                                        f"{', '.join(ORIGINATE_CONTEXTS)}, with Exten"}, aid)
            return
        else:
            then = {context: exten} if context else {}
        by = self._by()
        answer: dict[str, Any] = {}

        def run() -> dict[str, Any]:
            answer.update(originate(group, number, then, by))
            return answer
        detail = {"trunk": group, "number": number, "then": then}
        self._command(fields, aid, run, detail, "Originate successfully queued",
                      extra=lambda: {"Uniqueid": str(answer.get("call_id", ""))})
        if aid is not None and answer.get("call_id"):    # OriginateResponse will carry it (as Asterisk's)
            self.originated[str(answer["call_id"])] = aid

    def _redirect(self, fields: dict[str, str], aid: str | None) -> None:
        """Redirect: Channel (the call), Context ivr (Exten: a menu) or queue (Exten: a queue)."""
        call_command = getattr(self.feed.backend, "call_command", None)
        channel = fields.get("channel", "")
        call_id = self._call_of(channel)
        context, exten = fields.get("context", "").lower(), fields.get("exten", "")
        if call_command is None or call_id is None:
            self.reply({"Response": "Error", "Message": "Redirect: no such channel" if call_command is not None
                        else "Redirect is not served here"}, aid)
            return
        if context not in REDIRECT_CONTEXTS or not exten:
            self.reply({"Response": "Error", "Message": "Redirect needs Context ivr (Exten: a menu) or queue "
                                                        "(Exten: a queue)"}, aid)
            return
        by = self._by()
        if context == "ivr":
            self._command(fields, aid, lambda: call_command(call_id, "ivr", by, menu=exten),
                          {"channel": channel[:100], "menu": exten}, "Redirect successful")
        else:
            self._command(fields, aid, lambda: call_command(call_id, "route", by, queue=exten),
                          {"channel": channel[:100], "queue": exten}, "Redirect successful")

    def _queue_member(self, fields: dict[str, str], aid: str | None) -> None:
        """QueueAdd and QueueRemove: Queue, Interface (the agent id; Agent/ID too); QueueAdd's
        Penalty (0 when left out) is the member's penalty, as Asterisk's: it is offered a call
        only when no free member of a lower penalty is (voiceserver.acd.queues); it joins at
        tier 1, after the configured members."""
        member = getattr(self.feed.backend, "queue_member", None)
        join = fields.get("action", "").lower() == "queueadd"
        name = "QueueAdd" if join else "QueueRemove"
        if member is None:
            self.reply({"Response": "Error", "Message": f"{name} is not served here"}, aid)
            return
        queue, agent = fields.get("queue", ""), interface(fields)
        if not queue or not agent:
            self.reply({"Response": "Error", "Message": f"{name} needs Queue and Interface (the agent id)"}, aid)
            return
        given = fields.get("penalty", "").strip() if join else ""
        if given and not (given.isascii() and given.isdigit() and int(given) <= MAX_PENALTY):
            self.reply({"Response": "Error", "Message": f"QueueAdd: Penalty is a whole number 0 to {MAX_PENALTY}, "
                                                        f"not {given[:20]!r}"}, aid)
            return
        penalty = int(given) if given else 0
        by = self._by()

        def run() -> dict[str, Any]:
            row = member(agent, queue, join, by, penalty=penalty) if join else member(agent, queue, join, by)
            if not row.get("changed"):
                raise Conflict(f"Unable to {'add' if join else 'remove'} interface: "
                               f"{'Already there' if join else 'Not there'}")
            return row
        self._command(fields, aid, run, {"agent": agent, "queue": queue, **({"penalty": penalty} if join else {})},
                      "Added interface to queue" if join else "Removed interface from queue")

    def _current_calls(self) -> int:
        channels = self.feed.views().get("channels")
        if channels is not None:
            return len({r["call_id"] for r in channels() if r.get("call_id")})
        queues = self.feed.views().get("queues")
        return sum(int(q.get("waiting", 0)) + int(q.get("talking", 0)) for q in (queues() if queues else []))

    def close(self) -> None:
        self._sender.cancel()
        if not self.writer.is_closing():
            self.writer.close()


# action (lower case) -> the right it needs (as the same command of the network API) and its method
ACTIONS: dict[str, tuple[Right, Callable[[_AmiClient, dict[str, str], str | None], None]]] = {
    "ping": (READ, _AmiClient._ping),
    "events": (READ, _AmiClient._events),
    "corestatus": (READ, _AmiClient._core_status),
    "queuestatus": (READ, _AmiClient._queue_status),
    "queuesummary": (READ, _AmiClient._queue_summary),
    "coreshowchannels": (VIEW_ALL, _AmiClient._channels),
    "status": (VIEW_ALL, _AmiClient._channels),
    "hangup": (CALLS, _AmiClient._hangup),
    "queuepause": (AGENTS, _AmiClient._queue_pause),
    "originate": (ORIGINATE, _AmiClient._originate),
    "redirect": (CALLS, _AmiClient._redirect),
    "queueadd": (AGENTS, _AmiClient._queue_member),
    "queueremove": (AGENTS, _AmiClient._queue_member),
}
NAMES = ["Login", "Logoff", "Ping", "Events", "CoreStatus", "QueueStatus", "QueueSummary", "CoreShowChannels",
         "Status", "Hangup", "QueuePause", "Originate", "Redirect", "QueueAdd", "QueueRemove"]
