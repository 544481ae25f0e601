"""The server's event bus: everything observable, numbered, journalled.

Each event carries a monotonically increasing sequence number so a client
that disconnects can resume from the last number it saw. The bus keeps the
latest events in memory (`since`); with [storage], voiceserver.core.journal
keeps every event in SQLite across restarts.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import Any, TextIO


class ServerEventKind(StrEnum):
    """Every kind of event the server publishes: the one catalogue (docs/events.md lists each).

    A StrEnum so that an event's kind is still its plain name in JSON, logs and
    comparisons, while a misspelt kind fails where it is published."""
    ACD_AGENT = "acd.agent"
    ACD_CALL_ENDED = "acd.call_ended"
    ACD_DECISION = "acd.decision"
    ACD_ERROR = "acd.error"
    ACD_GLARE = "acd.glare"
    ACD_JOIN_REFUSED = "acd.join_refused"
    ACD_JOINED = "acd.joined"
    ACD_LATE_ANSWER = "acd.late_answer"
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
    CALL_BRIDGE = "call.bridge"
    CALL_BRIDGE_FAILED = "call.bridge_failed"
    CALL_CALLERID = "call.callerid"
    CALL_CONTINUED = "call.continued"
    CALL_DIALED = "call.dialed"
    CALL_DIALING = "call.dialing"
    CALL_DIGIT = "call.digit"
    CALL_END = "call.end"
    CALL_FLASH = "call.flash"
    CALL_GLARE = "call.glare"
    CALL_HOLD = "call.hold"
    CALL_OFFER = "call.offer"
    CALL_PLAY = "call.play"
    CALL_QUEUE = "call.queue"
    CALL_RECALL = "call.recall"
    CALL_RECALL_TIMEOUT = "call.recall_timeout"
    CALL_RECOVERED = "call.recovered"
    CALL_REJECTED = "call.rejected"
    CALL_RING = "call.ring"
    CALL_RINGBACK = "call.ringback"
    CALL_START = "call.start"
    CALL_TRANSFER_FAILED = "call.transfer_failed"
    CALL_TRANSFER_RETRY = "call.transfer_retry"
    CALL_UNHOLD = "call.unhold"
    CALL_WARNING = "call.warning"
    CHANNEL_STATE = "channel.state"
    CONFIG_RELOAD_FAILED = "config.reload_failed"
    CONFIG_RELOADED = "config.reloaded"
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
    SPAN_ALARM = "span.alarm"
    STATUS_LISTENING = "status.listening"
    STREAM_OVERFLOW = "stream.overflow"
    VOICEMAIL_RECORD_START = "voicemail.record_start"
    VOICEMAIL_RECORD_STOP = "voicemail.record_stop"


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

    def as_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "time": self.time, "server_id": self.server_id, "tick": self.tick,
                "kind": self.kind, "chan": self.chan, "call_id": self.call_id, **self.data}

    @cached_property
    def json(self) -> str:
        """The event as JSON (`as_dict`), encoded once for every subscriber that writes it."""
        return _JSON.encode(self.as_dict())


Subscriber = Callable[[ServerEvent], None]


def utc_now() -> str:
    """Now in UTC as events carry it: ISO 8601 to the millisecond, with Z."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class EventBus:
    def __init__(self, journal_size: int = 100_000, server_id: str | None = None,
                 clock: Callable[[], str] = utc_now) -> None:
        self.server_id = server_id
        self._clock = clock
        self._seq = itertools.count(1)
        self.journal: deque[ServerEvent] = deque(maxlen=journal_size)
        self._subscribers: list[Subscriber] = []
        self.last_seq = 0

    def publish(self, tick: int, kind: ServerEventKind | str, chan: int | None = None,
                call_id: str | None = None, **data: Any) -> ServerEvent:
        """Number and journal an event; a kind outside the catalogue is a bug (ValueError)."""
        kind = ServerEventKind(kind)
        ev = ServerEvent(next(self._seq), tick, kind, chan, call_id, data, self._clock(), self.server_id)
        self.last_seq = ev.seq
        self.journal.append(ev)
        for sub in list(self._subscribers):
            sub(ev)
        return ev

    def subscribe(self, fn: Subscriber, *, first: bool = False) -> Callable[[], None]:
        """`first`: before the subscribers already there (the journal: a number is stored
        before anyone else sees it)."""
        if first:
            self._subscribers.insert(0, fn)
        else:
            self._subscribers.append(fn)
        return lambda: self._subscribers.remove(fn)

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


class EventLog:
    """A bus subscriber: each event as one line of the server's log (``voiceboard serve``),
    ``<date> <time>,<ms> INFO event {json}``: the line ``log.info("event %s", ...)``
    gives under the server's log format, so readers of the log see no change.

    Written to the log's stream directly rather than through `logging`: a
    logging record (LogRecord, handler lock, formatter, a flush per record)
    costs several times the line itself. In the event loop the lines of one
    loop turn (a tick's events) go out in one write at the end of the turn,
    not one system call each; a `kill -9` loses at most that turn's lines (the
    call records are in the database, not here). Outside a loop (start-up,
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
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:       # no event loop in this thread: at once
                self.flush()

    def flush(self) -> None:
        """Write the lines not yet written (the server calls it once more as it stops)."""
        lines, self._lines = self._lines, []
        if lines:
            self.stream.write("".join(lines))
