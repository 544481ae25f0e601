"""The server's event bus: everything observable, numbered, journalled.

Each event carries a monotonically increasing sequence number so a client
that disconnects can resume from the last number it saw. The bus keeps the
latest events in memory (`since`); with [storage], voiceserver.core.journal
keeps every event in SQLite across restarts.
"""
from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TextIO


class ServerEventKind(StrEnum):
    """Every kind of event the server publishes: the one catalogue (docs/events.md lists each).

    A StrEnum so that an event's kind is still its plain name in JSON, logs and
    comparisons, while a misspelt kind fails where it is published."""
    ACD_AGENT = "acd.agent"
    ACD_ALL_BUSY = "acd.all_busy"
    ACD_CALL_ENDED = "acd.call_ended"
    ACD_DECISION = "acd.decision"
    ACD_ERROR = "acd.error"
    ACD_GLARE = "acd.glare"
    ACD_JOIN_REFUSED = "acd.join_refused"
    ACD_JOINED = "acd.joined"
    ACD_LATE_ANSWER = "acd.late_answer"
    ACD_MEMBER = "acd.member"
    ACD_OUTCOME = "acd.outcome"
    ACD_OVERFLOW = "acd.overflow"
    ACD_OVERFLOW_REFUSED = "acd.overflow_refused"
    ACD_RING_FAILED = "acd.ring_failed"
    ACD_RING_TIMEOUT = "acd.ring_timeout"
    ACD_VOICEMAIL_ABANDONED = "acd.voicemail_abandoned"
    API_LISTENING = "api.listening"
    ACD_VOICEMAIL_SAVED = "acd.voicemail_saved"
    AGENT_STATE = "agent.state"
    AGENT_STATE_REFUSED = "agent.state_refused"
    BOARD_BACK = "board.back"
    BOARD_EVENTS_LOST = "board.events_lost"
    BOARD_LOST = "board.lost"
    BOARD_START = "board.start"
    BOARD_STOPPED = "board.stopped"
    CALL_ANSWER = "call.answer"
    CALL_ANSWER_ALARM = "call.answer_alarm"
    CALL_API_ANSWER = "call.api_answer"
    CALL_BRIDGE = "call.bridge"
    CALL_BRIDGE_FAILED = "call.bridge_failed"
    CALL_CALLERID = "call.callerid"
    CALL_CONTINUED = "call.continued"
    CALL_DIALED = "call.dialed"
    CALL_DIALING = "call.dialing"
    CALL_CONSULT = "call.consult"
    CALL_DIGIT = "call.digit"
    CALL_END = "call.end"
    CALL_FLASH = "call.flash"
    CALL_GLARE = "call.glare"
    CALL_HOLD = "call.hold"
    CALL_OFFER = "call.offer"
    CALL_PLAY = "call.play"
    CALL_PLAY_DONE = "call.play_done"
    CALL_QUEUE = "call.queue"
    CALL_RECALL = "call.recall"
    CALL_RECALL_TIMEOUT = "call.recall_timeout"
    CALL_RECOVERED = "call.recovered"
    CALL_REJECTED = "call.rejected"
    CALL_RING = "call.ring"
    CALL_RINGBACK = "call.ringback"
    CALL_SIGNAL = "call.signal"
    CALL_START = "call.start"
    CALL_SUPERVISE = "call.supervise"
    CALL_SUPERVISE_END = "call.supervise_end"
    CALL_INTERCEPT = "call.intercept"
    CALL_JOIN = "call.join"
    CALL_MUTE = "call.mute"
    CALL_ORIGINATE = "call.originate"
    CALL_TRANSFER_FAILED = "call.transfer_failed"
    CALL_TRANSFER_RETRY = "call.transfer_retry"
    CALL_UNHOLD = "call.unhold"
    CALL_WARNING = "call.warning"
    CHANNEL_STATE = "channel.state"
    CONFIG_RELOAD_FAILED = "config.reload_failed"
    CONFIG_RELOADED = "config.reloaded"
    IVR_INPUT = "ivr.input"
    IVR_STEP = "ivr.step"
    JOURNAL_GAP = "journal.gap"
    LINE_RELEASED = "line.released"
    RECORDING_DECISION = "recording.decision"
    RECORDING_FAILED = "recording.failed"
    RECORDING_MAX_DURATION = "recording.max_duration"
    RECORDING_OVERRUN = "recording.overrun"
    RECORDING_OVERRUN_END = "recording.overrun_end"
    RECORDING_PAUSED = "recording.paused"
    RECORDING_RECOVERED = "recording.recovered"
    RECORDING_RESUMED = "recording.resumed"
    RECORDING_RULES_AUDIT_FAILED = "recording.rules_audit_failed"
    RECORDING_RULES_REJECTED = "recording.rules_rejected"
    RECORDING_RULES_RELOADED = "recording.rules_reloaded"
    RECORDING_RULES_REMOVED = "recording.rules_removed"
    RECORDING_RULES_STOP = "recording.rules_stop"
    RECORDING_STARTED = "recording.started"
    RECORDING_STOPPED = "recording.stopped"
    RECORDING_STORAGE_UNCHANGED = "recording.storage_unchanged"
    ROUTE_CANCELLED = "route.cancelled"
    ROUTE_DECIDED = "route.decided"
    ROUTE_REQUEST = "route.request"
    SPAN_ALARM = "span.alarm"
    STATUS_LISTENING = "status.listening"
    STREAM_OVERFLOW = "stream.overflow"
    VOICEMAIL_RECORD_START = "voicemail.record_start"
    VOICEMAIL_RECORD_STOP = "voicemail.record_stop"


# The fields each kind carries besides the common ones (COMMON_FIELDS, and `board` where the
# event concerns one): the catalogue's other half. docs/events.md lists the same fields (a test
# compares them) and every event the tests publish is checked against them; `event_schema` makes
# a JSON Schema of each (served by the network API).
EVENT_FIELDS: dict[ServerEventKind, tuple[str, ...]] = {
    ServerEventKind.ACD_AGENT: ('agent', 'pending_logout', 'state', 'why'),
    ServerEventKind.ACD_ALL_BUSY: ('busy', 'queue', 'waiting'),
    ServerEventKind.ACD_CALL_ENDED: ('agent', 'agent_state', 'talk_ms'),
    ServerEventKind.ACD_DECISION: ('chosen', 'hunt', 'mode', 'order', 'position', 'priority', 'queue', 'skipped',
                                   'strategy', 't', 'tiebreak', 'wait_ms'),
    ServerEventKind.ACD_ERROR: ('error',),
    ServerEventKind.ACD_GLARE: ('agent', 'hunt', 'line', 'retry'),
    ServerEventKind.ACD_JOIN_REFUSED: ('queue', 'why'),
    ServerEventKind.ACD_JOINED: ('caller', 'position', 'priority', 'queue'),
    ServerEventKind.ACD_LATE_ANSWER: ('agent',),
    ServerEventKind.ACD_MEMBER: ('agent', 'joined', 'penalty', 'queue', 'tier', 'why'),
    ServerEventKind.ACD_OUTCOME: ('agent', 'mailbox', 'outcome', 'queue', 'reason', 'target', 'wait_ms'),
    ServerEventKind.ACD_OVERFLOW: ('hunt', 'queue', 'reason', 'target', 'wait_ms'),
    ServerEventKind.ACD_OVERFLOW_REFUSED: ('hunt', 'why'),
    ServerEventKind.ACD_RING_FAILED: ('agent', 'agent_state', 'misses', 'not_ready', 'reason'),
    ServerEventKind.ACD_RING_TIMEOUT: ('agent', 'agent_state', 'misses', 'not_ready'),
    ServerEventKind.ACD_VOICEMAIL_ABANDONED: ('mailbox', 'state'),
    ServerEventKind.API_LISTENING: ('host', 'port', 'protocol'),
    ServerEventKind.ACD_VOICEMAIL_SAVED: ('length_ms', 'mailbox', 'reason'),
    ServerEventKind.AGENT_STATE: ('action', 'agent', 'by', 'changed', 'now', 'old', 'pending', 'state'),
    ServerEventKind.AGENT_STATE_REFUSED: ('action', 'agent', 'by', 'state', 'why'),
    ServerEventKind.BOARD_BACK: ('down_seconds', 'tries'),
    ServerEventKind.BOARD_EVENTS_LOST: ('count',),
    ServerEventKind.BOARD_LOST: ('alarm', 'calls', 'error'),
    ServerEventKind.BOARD_START: ('channels',),
    ServerEventKind.BOARD_STOPPED: ('error',),
    ServerEventKind.CALL_ANSWER: ('how', 'recall'),
    ServerEventKind.CALL_ANSWER_ALARM: ('limit_ms', 'waited_ms'),
    ServerEventKind.CALL_API_ANSWER: ('caller', 'fallback_ms', 'name', 'state', 'why'),
    ServerEventKind.CALL_BRIDGE: ('agent', 'line', 'trunk'),
    ServerEventKind.CALL_BRIDGE_FAILED: ('reason',),
    ServerEventKind.CALL_CALLERID: ('caller', 'name'),
    ServerEventKind.CALL_CONSULT: ('agent', 'party', 'phone', 'state', 'why'),
    ServerEventKind.CALL_CONTINUED: ('before_crash',),
    ServerEventKind.CALL_DIALED: ('number',),
    ServerEventKind.CALL_DIALING: ('number',),
    ServerEventKind.CALL_DIGIT: ('digit', 'duration_ms', 'masked', 'onset_tick'),
    ServerEventKind.CALL_END: ('ani', 'answered', 'category', 'dnis', 'reason', 'side'),
    ServerEventKind.CALL_FLASH: (),
    ServerEventKind.CALL_GLARE: ('number', 'outbound'),
    ServerEventKind.CALL_HOLD: ('agent', 'phone', 'why'),
    ServerEventKind.CALL_INTERCEPT: ('agent', 'phone', 'supervisor', 'why'),
    ServerEventKind.CALL_JOIN: ('other', 'other_chan', 'state', 'why'),
    ServerEventKind.CALL_MUTE: ('agent', 'muted', 'party', 'phone', 'why'),
    ServerEventKind.CALL_ORIGINATE: ('cause', 'line', 'number', 'reason', 'retry', 'state', 'then', 'trunk', 'why'),
    ServerEventKind.CALL_SUPERVISE: ('agent', 'mode', 'phone', 'state', 'supervisor', 'why'),
    ServerEventKind.CALL_SUPERVISE_END: ('phone', 'reason', 'supervisor'),
    ServerEventKind.CALL_OFFER: ('ani', 'caller', 'category', 'dnis'),
    ServerEventKind.CALL_PLAY: ('items', 'lang'),
    ServerEventKind.CALL_PLAY_DONE: ('how', 'items'),
    ServerEventKind.CALL_QUEUE: ('queue',),
    ServerEventKind.CALL_RECALL: (),
    ServerEventKind.CALL_RECALL_TIMEOUT: (),
    ServerEventKind.CALL_RECOVERED: ('agent', 'answered', 'caller', 'channel', 'direction', 'disposition', 'end',
                                     'ivr_path', 'queue', 'start'),
    ServerEventKind.CALL_REJECTED: ('caller', 'reason'),
    ServerEventKind.CALL_RING: ('count',),
    ServerEventKind.CALL_RINGBACK: (),
    ServerEventKind.CALL_SIGNAL: ('dir', 'meaning', 'ms', 'signal'),
    ServerEventKind.CALL_START: ('called', 'caller', 'direction'),
    ServerEventKind.CALL_TRANSFER_FAILED: ('reason', 'trunk'),
    ServerEventKind.CALL_TRANSFER_RETRY: ('hunt', 'line', 'retry', 'why'),
    ServerEventKind.CALL_UNHOLD: ('agent', 'phone', 'why'),
    ServerEventKind.CALL_WARNING: ('warning',),
    ServerEventKind.CHANNEL_STATE: ('new', 'old', 'reason'),
    ServerEventKind.CONFIG_RELOAD_FAILED: ('error',),
    ServerEventKind.CONFIG_RELOADED: ('file',),
    ServerEventKind.IVR_INPUT: ('masked', 'menu', 'reason', 'store', 'value'),
    ServerEventKind.IVR_STEP: ('detail', 'step'),
    ServerEventKind.JOURNAL_GAP: ('from', 'reason', 'to'),
    ServerEventKind.LINE_RELEASED: ('released', 'state', 'when'),
    ServerEventKind.RECORDING_DECISION: ('reason', 'record', 'rule'),
    ServerEventKind.RECORDING_FAILED: ('alarm', 'error', 'path', 'reason', 'seconds', 'status', 'voicemail'),
    ServerEventKind.RECORDING_MAX_DURATION: ('alarm', 'voicemail'),
    ServerEventKind.RECORDING_OVERRUN: ('active', 'dropped_blocks', 'tick'),
    ServerEventKind.RECORDING_OVERRUN_END: ('active', 'dropped_blocks', 'tick'),
    ServerEventKind.RECORDING_PAUSED: ('reason', 'rule'),
    ServerEventKind.RECORDING_RECOVERED: ('duration', 'error', 'id', 'mailbox', 'message_id', 'path', 'status'),
    ServerEventKind.RECORDING_RESUMED: ('reason', 'rule'),
    ServerEventKind.RECORDING_RULES_AUDIT_FAILED: ('error',),
    ServerEventKind.RECORDING_RULES_REJECTED: ('audit_log', 'error', 'file', 'reload', 'source'),
    ServerEventKind.RECORDING_RULES_RELOADED: ('audit_log', 'changes', 'file', 'reload', 'source', 'warnings'),
    ServerEventKind.RECORDING_RULES_REMOVED: ('audit_log', 'file', 'reload'),
    ServerEventKind.RECORDING_RULES_STOP: ('keep', 'keep_reason', 'reason', 'rule', 'source'),
    ServerEventKind.RECORDING_STARTED: ('alarm', 'path', 'voicemail'),
    ServerEventKind.RECORDING_STOPPED: ('alarm', 'discard_reason', 'duration', 'path', 'reason', 'status', 'voicemail'),
    ServerEventKind.RECORDING_STORAGE_UNCHANGED: ('file', 'reason'),
    ServerEventKind.ROUTE_CANCELLED: ('reason', 'waited_ms'),
    ServerEventKind.ROUTE_DECIDED: ('agent', 'by', 'decided_by', 'number', 'queue', 'reason', 'trunk', 'waited_ms'),
    ServerEventKind.ROUTE_REQUEST: ('caller', 'deadline', 'deadline_ms', 'dnis', 'ivr_path', 'name', 'queue'),
    ServerEventKind.SPAN_ALARM: ('alarm', 'set', 'span'),
    ServerEventKind.STATUS_LISTENING: ('host', 'port'),
    ServerEventKind.STREAM_OVERFLOW: ('reason', 'resume'),
    ServerEventKind.VOICEMAIL_RECORD_START: ('directory', 'mailbox', 'max_ms', 'stored'),
    ServerEventKind.VOICEMAIL_RECORD_STOP: ('duration', 'mailbox', 'message_id', 'path', 'reason', 'stored'),
}

COMMON_FIELDS: dict[str, dict[str, Any]] = {
    "seq": {"type": ["integer", "null"]},
    "time": {"type": "string"},
    "server_id": {"type": ["string", "null"]},
    "tick": {"type": "integer"},
    "kind": {"type": "string"},
    "chan": {"type": ["integer", "null"]},
    "call_id": {"type": ["string", "null"]},
    "board": {"type": ["string", "null"]},
}


def event_schema(kind: ServerEventKind) -> dict[str, Any]:
    """A JSON Schema (2020-12) of one kind: the common fields typed, the kind's own named; no
    other field."""
    props: dict[str, Any] = {**COMMON_FIELDS, "kind": {"const": kind.value}}
    props.update({name: {} for name in EVENT_FIELDS[kind]})
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": kind.value,
            "type": "object", "properties": props, "required": ["seq", "kind"],
            "additionalProperties": False}


def unknown_fields(kind: ServerEventKind, data: dict[str, Any]) -> list[str]:
    """The fields of an event's data that its kind's schema does not name (a bug)."""
    known = EVENT_FIELDS[kind]
    return sorted(k for k in data if k not in known and k != "board")


@dataclass(frozen=True)
class ServerEvent:
    seq: int
    tick: int
    kind: ServerEventKind
    chan: int | None = None
    call_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    time: str = ""                      # UTC, ISO 8601 to the millisecond, when published
    server_id: str | None = None        # the server that published it (several may feed one ACD)

    @classmethod
    def made(cls, seq: int, tick: int, kind: ServerEventKind, chan: int | None, call_id: str | None,
             data: dict[str, Any], time: str, server_id: str | None) -> ServerEvent:
        """The bus's constructor: the fields set in one step. A frozen dataclass's __init__
        sets each through object.__setattr__, a microsecond an event on the bus's path."""
        ev = object.__new__(cls)
        ev.__dict__.update(seq=seq, tick=tick, kind=kind, chan=chan, call_id=call_id, data=data,
                           time=time, server_id=server_id)
        return ev

    def as_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "time": self.time, "server_id": self.server_id, "tick": self.tick,
                "kind": self.kind, "chan": self.chan, "call_id": self.call_id, **self.data}

    @property
    def json(self) -> str:
        """The event as JSON (`as_dict`), encoded once for every subscriber that writes it.

        Cached in the instance by hand: Python 3.11's functools.cached_property takes a
        lock on every first read, a tenth of the journal's cost per event."""
        text = self.__dict__.get("_json")
        if text is None:
            text = self.__dict__["_json"] = _json_text(self.as_dict())
        return text


Subscriber = Callable[[ServerEvent], None]


_last_stamp: tuple[int, str] = (-1, "")     # (ms, its stamp): one tuple, so threads see a pair
_last_second: tuple[int, str] = (-1, "")    # (second, its date and time to the second)


def utc_now() -> str:
    """Now in UTC as events carry it: ISO 8601 to the millisecond, with Z.

    Made once per millisecond (a tick's events share it), from the date and time
    formatted once a second: a datetime's isoformat per millisecond was about 4 % of
    the controller's profile in bench/server_mixed.py."""
    global _last_stamp, _last_second
    now_ms = time.time_ns() // 1_000_000
    last = _last_stamp
    if last[0] == now_ms:
        return last[1]
    second, ms = divmod(now_ms, 1000)
    day = _last_second
    if day[0] != second:
        day = _last_second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    stamp = f"{day[1]}.{ms:03d}Z"
    _last_stamp = (now_ms, stamp)
    return stamp


class EventBus:
    def __init__(self, journal_size: int = 100_000, server_id: str | None = None,
                 clock: Callable[[], str] = utc_now) -> None:
        self.server_id = server_id
        self._clock = clock
        self._seq = itertools.count(1)
        self.journal: deque[ServerEvent] = deque(maxlen=journal_size)
        self._subscribers: tuple[Subscriber, ...] = ()    # a new tuple on each change: publish needs no copy
        self.last_seq = 0
        self._held: str | None = None       # the time of the tick being handled (`hold_time`)

    def publish(self, tick: int, kind: ServerEventKind | str, chan: int | None = None,
                call_id: str | None = None, **data: Any) -> ServerEvent:
        """Number and journal an event; a kind outside the catalogue is a bug (ValueError)."""
        if kind.__class__ is not ServerEventKind:
            kind = ServerEventKind(kind)
        ev = ServerEvent.made(next(self._seq), tick, kind, chan, call_id, data, self._held or self._clock(),
                              self.server_id)
        self.last_seq = ev.seq
        self.journal.append(ev)
        for sub in self._subscribers:
            sub(ev)
        return ev

    def hold_time(self) -> None:
        """Stamp the events published until `release_time` with the time now: the events of
        one tick's handling share a time, read once instead of once per event."""
        self._held = self._clock()

    def release_time(self) -> None:
        self._held = None

    def subscribe(self, fn: Subscriber, *, first: bool = False) -> Callable[[], None]:
        """`first`: before the subscribers already there (the journal: a number is stored
        before anyone else sees it)."""
        self._subscribers = (fn, *self._subscribers) if first else (*self._subscribers, fn)
        return lambda: self._unsubscribe(fn)

    def _unsubscribe(self, fn: Subscriber) -> None:
        subs = list(self._subscribers)
        subs.remove(fn)
        self._subscribers = tuple(subs)

    def start_at(self, seq: int) -> None:
        """Number the next event `seq` (a journal's run continues after the earlier runs)."""
        if seq <= self.last_seq:
            raise ValueError(f"event numbers only go up: {seq} after {self.last_seq}")
        self._seq = itertools.count(seq)

    def since(self, seq: int) -> list[ServerEvent]:
        """Events after `seq`; raises LookupError if the journal no longer reaches back."""
        if self.journal and seq < self.journal[0].seq - 1:
            raise LookupError(f"events after {seq} are gone: the journal starts at {self.journal[0].seq}")
        return [e for e in self.journal if e.seq > seq]


_JSON = json.JSONEncoder(default=str)   # json.dumps(..., default=str) without a new encoder per event
_C_ENCODER = getattr(json.encoder, "c_make_encoder", None)


def _json_text(obj: dict[str, Any]) -> str:
    """What `json.dumps(obj, default=str)` gives, through json's C encoder made once.

    JSONEncoder.encode builds a new C encoder for every call, a third of the cost of an
    event's small dict. No circular check: an event's fields are plain values."""
    return "".join(_C_EVENT_ENCODER(obj, 0)) if _C_EVENT_ENCODER is not None else _JSON.encode(obj)


_C_EVENT_ENCODER = None if _C_ENCODER is None else _C_ENCODER(
    None, str, json.encoder.encode_basestring_ascii, None, ": ", ", ", False, False, True)


STREAM_NOTICES = (ServerEventKind.JOURNAL_GAP, ServerEventKind.STREAM_OVERFLOW)


class CallScope:
    """The events of one thing (an agent, a queue): those naming it, and every event of a
    call from the first one that names it to the call's end. It learns the calls as the
    events come, so it must see every event, in order."""

    def __init__(self) -> None:
        self.calls: set[str] = set()

    def names(self, data: dict[str, Any]) -> bool:
        raise NotImplementedError

    def wants(self, kind: str, call_id: str | None, data: dict[str, Any]) -> bool:
        if kind in STREAM_NOTICES:
            return True
        mine = self.names(data)
        if call_id is None:
            return mine
        if mine:
            self.calls.add(call_id)
        elif call_id not in self.calls:
            return False
        if kind == ServerEventKind.CALL_END:
            self.calls.discard(call_id)
        return True


class AgentScope(CallScope):
    """One agent's events: those naming it (`agent`, or among an ACD decision's `chosen`),
    and the calls offered to it from the offer on (an agent user's stream; `agent=`)."""

    def __init__(self, agent: str) -> None:
        super().__init__()
        self.agent = agent

    def names(self, data: dict[str, Any]) -> bool:
        chosen = data.get("chosen")
        return data.get("agent") == self.agent or (isinstance(chosen, list) and self.agent in chosen)


class QueueScope(CallScope):
    """One queue's events: those naming it (`queue`: a caller joining, the ACD's decisions,
    all-busy, members), and its callers' calls from joining the queue on (`queue=`)."""

    def __init__(self, queue: str) -> None:
        super().__init__()
        self.queue = queue

    def names(self, data: dict[str, Any]) -> bool:
        return data.get("queue") == self.queue


class EventFilter:
    """Which events a reader asked for (by kind or family `call.`, call, [board:]channel,
    queue, agent); the stream's notices (a gap, an overflow) always go through. The event
    stream and `voiceboard events` filter with it. A queue or an agent filter follows calls
    (CallScope): it must be asked about every event, in order."""

    def __init__(self, kinds: list[str], call: str | None, channel: str | None,
                 queue: str | None = None, agent: str | None = None) -> None:
        self.kinds = kinds
        self.call = call
        self.board: str | None = None
        self.chan: int | None = None
        if channel is not None:
            board, _, chan = channel.rpartition(":")
            if not chan.isdigit():
                raise ValueError(f"channel {channel!r}: expected CHAN or BOARD:CHAN")
            self.board, self.chan = board or None, int(chan)
        for name, value in (("queue", queue), ("agent", agent)):
            if value is not None and not (0 < len(value) <= 100 and value.isprintable()):
                raise ValueError(f"{name} {value[:40]!r}: expected a {name} name")
        self.scopes: list[CallScope] = [*([QueueScope(queue)] if queue is not None else []),
                                        *([AgentScope(agent)] if agent is not None else [])]

    def wants(self, kind: str, call_id: str | None, chan: int | None, board: str | None,
              data: dict[str, Any]) -> bool:
        """`data`: the event's fields (a queue or agent filter reads them)."""
        if self.scopes:      # each scope sees every event (it learns the calls), then all must want it
            if not all([s.wants(kind, call_id, data) for s in self.scopes]):
                return False
        if kind in STREAM_NOTICES:
            return True
        if self.kinds and not any(kind == k or (k.endswith(".") and kind.startswith(k)) for k in self.kinds):
            return False
        if self.call is not None and call_id != self.call:
            return False
        return self.chan is None or (chan == self.chan and (self.board is None or board == self.board))

    def wants_dict(self, ev: dict[str, Any]) -> bool:
        """`wants` for an event as JSON (from the journal, or a gap)."""
        return self.wants(ev["kind"], ev.get("call_id"), ev.get("chan"), ev.get("board"), ev)


FLUSH_INTERVAL = 0.05    # s: buffered events (the log's lines, the journal's rows) go out this often


def flush_soon(flush: Callable[[], None], delay: float = FLUSH_INTERVAL) -> None:
    """Run `flush` `delay` seconds from now in the event loop, so that the events of a few
    ticks go out together (a write or a hand-off per loop turn was a tenth of the loop's
    CPU); at once in a thread with no running loop (start-up, recovery)."""
    try:
        asyncio.get_running_loop().call_later(delay, flush)
    except RuntimeError:
        flush()


class EventLog:
    """A bus subscriber: each event as one line of the server's log (``voiceboard serve``),
    ``<date> <time>,<ms> INFO event {json}``: the line ``log.info("event %s", ...)``
    gives under the server's log format, so readers of the log see no change.

    Written to the log's stream directly rather than through `logging`: a
    logging record (LogRecord, handler lock, formatter, a flush per record)
    costs several times the line itself. In the event loop the lines of
    FLUSH_INTERVAL (a few ticks' events) go out in one write, not one system
    call each; a `kill -9` loses at most those lines (the events are in the
    journal and the call records in the database). Outside a loop (start-up,
    crash recovery) each line is written at once. Events carry secret input
    masked (voiceserver.core.masking), so the log does too."""

    def __init__(self, stream: TextIO, clock: Callable[[], float] = time.time) -> None:
        self.stream = stream
        self._clock = clock
        self._second = -1
        self._stamp = ""
        self._lines: list[str] = []

    def __call__(self, ev: ServerEvent) -> None:
        now = self._clock()
        second = int(now)
        if second != self._second:    # the date and time change once a second, not per event
            self._second = second
            self._stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        ms = min(int((now - second) * 1000), 999)
        self._lines.append(f"{self._stamp},{ms:03d} INFO event {ev.json}\n")
        if len(self._lines) == 1:
            flush_soon(self.flush)

    def flush(self) -> None:
        """Write the lines not yet written (the server calls it once more as it stops)."""
        lines, self._lines = self._lines, []
        if lines:
            self.stream.write("".join(lines))
