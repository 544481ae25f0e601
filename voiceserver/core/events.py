"""The server's event bus: everything observable, numbered, journalled.

Each event carries a monotonically increasing sequence number so a client
that disconnects can resume from the last number it saw (the network API
publishes this bus). The journal here is an in-memory ring; its size bounds
how far back a resume can reach.
"""
from __future__ import annotations

import itertools
import json
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

log = logging.getLogger("voiceserver.core.events")


@dataclass(frozen=True)
class ServerEvent:
    seq: int
    tick: int
    kind: str                 # e.g. "channel.state", "call.start", "call.digit", "call.end"
    chan: int | None = None
    call_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "tick": self.tick, "kind": self.kind, "chan": self.chan,
                "call_id": self.call_id, **self.data}


Subscriber = Callable[[ServerEvent], None]


class EventBus:
    def __init__(self, journal_size: int = 100_000) -> None:
        self._seq = itertools.count(1)
        self.journal: deque[ServerEvent] = deque(maxlen=journal_size)
        self._subscribers: list[Subscriber] = []
        self.last_seq = 0

    def publish(self, tick: int, kind: str, chan: int | None = None,
                call_id: str | None = None, **data: Any) -> ServerEvent:
        ev = ServerEvent(next(self._seq), tick, kind, chan, call_id, data)
        self.last_seq = ev.seq
        self.journal.append(ev)
        for sub in list(self._subscribers):
            sub(ev)
        return ev

    def subscribe(self, fn: Subscriber) -> Callable[[], None]:
        self._subscribers.append(fn)
        return lambda: self._subscribers.remove(fn)

    def since(self, seq: int) -> list[ServerEvent]:
        """Events after `seq`; raises LookupError if the journal no longer reaches back."""
        if self.journal and seq < self.journal[0].seq - 1:
            raise LookupError(f"events after {seq} are gone: the journal starts at {self.journal[0].seq}")
        return [e for e in self.journal if e.seq > seq]


def log_event(ev: ServerEvent) -> None:
    """A bus subscriber: the event as one JSON line in the server's log (``voiceboard serve``).

    Events carry secret input masked (voiceserver.core.masking), so the log does too."""
    log.info("event %s", json.dumps(ev.as_dict(), default=str))
