"""One call as the far end saw it: the record that goes into the report."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class CallRecord:
    """What happened on one call, in simulated seconds since tick 0.

    `heard` is what the host sent to the far end during the call (int16,
    8 kHz), kept in memory unless the report writer already saved it to
    `wav`. `who_hung_up`: "caller" (far end), "host", "agent" (FXS phone),
    "fault" (line cut, board removed), "abandoned" (gave up before answer),
    "blocked" (no idle line), "unanswered" (host stopped ringing a phone).
    `never_released`: the host still held the line (off-hook, or ringing
    the phone) when the simulation ended; `released` is then None.
    """
    call_id: str
    board: str
    channel: int
    kind: str                    # "fxo" | "fxs" | "e1"
    direction: str               # "in": far end called the host; "out": host called out
    number: str | None = None    # the caller's number (inbound) / agent's phone; E1: the ANI
    called: str | None = None    # E1: the DNIS (the number called)
    category: str | None = None  # E1: the calling party category (group II), e.g. national_subscriber
    ani_restricted: bool = False # E1: the host sent I-12 (ANI restricted) instead of its number
    name: str | None = None
    offered: float | None = None
    wallclock: str | None = None
    ring: list[float] = field(default_factory=list)        # RING_START times
    answer: float | None = None
    hangup: float | None = None   # when the call ended (first side to clear)
    released: float | None = None # when the host let go of the line (onhook)
    who_hung_up: str | None = None
    disconnect: str | None = None
    callerid: str | None = None   # "fsk" | "dtmf" | None, and whether audio was sent
    digits: list[dict[str, Any]] = field(default_factory=list)   # far end pressed
    dialled: str | None = None    # host dialled (decoded when dsp.dtmf exists)
    result: str | None = None     # outbound: answer | busy | no-answer
    flashes: list[float] = field(default_factory=list)
    heard: np.ndarray | None = None
    heard_samples: int = 0        # len(heard), kept when the report writer drops the audio
    wav: str | None = None
    notes: list[str] = field(default_factory=list)
    glare: bool = False           # inbound call that met the host's seizure of the line
    never_released: bool = False  # the host still held the line when the simulation ended
    r2: list[dict[str, Any]] = field(default_factory=list)   # E1: line and MF signals, {at, dir, signal}

    @property
    def heard_seconds(self) -> float:
        return self.heard_samples / 8000.0

    def to_json(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "heard"}
        out["heard_seconds"] = round(self.heard_seconds, 3)
        return out
