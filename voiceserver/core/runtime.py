"""The runtime types the server shares with the ACD link and the recording service.

A call on a channel is a `Leg`; an opened board with its engine and channel
state machines is a `BoardRuntime`; a finished call is a `CallRecord`; a
channel of the running server is a `Key`, (board index, channel). `CallHost`
is what the ACD link may ask of the call controller, `RecordingHost` what the
recording service may ask of the server: they depend on these interfaces,
never on the controller's or the server's module or their private names.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from voiceserver.core.channels import Call, Channel
from voiceserver.core.events import EventBus

if TYPE_CHECKING:
    from dsp.mix import Segment
    from voiceserver.config.server import ServerConfig
    from voiceserver.core.engine import Engine
    from voiceserver.core.media import MediaOutbox
    from voiceserver.ivr.flows import IvrCall

RATE = 8000
Key = tuple[int, int]          # (board index, channel) of the running server


@dataclass
class CallRecord:
    """What the server knows of a call when it ends (with [storage] also a row in SQLite)."""
    call_id: str
    board: str
    chan: int
    direction: str
    caller: str | None
    called: str | None
    start: dt.datetime
    answer: dt.datetime | None
    end: dt.datetime
    reason: str
    ivr_path: list[str] = field(default_factory=list)
    digits: str = ""
    prompts_played: int = 0
    agent: str | None = None
    agent_answer: dt.datetime | None = None   # when the agent's phone answered (answer: the line)
    dnis: str | None = None                   # E1 R2: the number dialled, as signalled
    ani: str | None = None                    # E1 R2: the calling number, as signalled
    category: str | None = None               # E1 R2: the calling party category


@dataclass
class Leg:
    """Server-side state of a call on a channel: its IVR, its bridge partner."""
    call: Call
    ivr: IvrCall | None = None
    play_id: int | None = None
    partner: tuple[int, int] | None = None   # (board index, chan) bridged with
    path: list[str] = field(default_factory=list)
    digits: str = ""
    prompts: int = 0
    agent: str | None = None
    rejected: str | None = None   # not answered, and why (the blacklist entry): the record's reason
    ivr_timer: int | None = None  # the tick the IVR's deadline timer is armed for (None: none)


class Conflict(Exception):
    """An action the target's state does not allow now (the API answers 409)."""


class BoardRuntime:
    """One opened board with its engine and channel state machines."""

    def __init__(self, index: int, name: str, board: Any, engine: Engine) -> None:
        self.index = index
        self.name = name
        self.board = board
        self.engine = engine
        self.channels: dict[int, Channel] = {}
        self.callerid_chans: set[int] = set()    # analog FXO trunks: caller ID while idle/ringing
        self.ms_per_tick: float = board.block * 1000.0 / RATE
        self.clock_start: dt.datetime = dt.datetime.now(dt.UTC)  # the time of tick 0
        self.tick = 0                            # the last tick of this board the controller handled
        self.span_chans: dict[int, list[int]] = {}   # span -> its channels
        self.span_alarms: dict[int, int] = {}        # span -> alarm bits (boarddrv.events.ALARMS)
        self.lost: str | None = None             # why the board is lost (None: it is up)
        self.reopen: asyncio.Task[None] | None = None  # the task opening it again

    def ms_at(self, tick: int) -> int:
        """The board's clock in ms at `tick` (the time base of the IVR, ACD and pause rules)."""
        return int(tick * self.ms_per_tick)

    def tick_at(self, ms: float) -> int:
        """The first tick at or after `ms` on the board's clock (a deadline's timer)."""
        return math.ceil(ms / self.ms_per_tick)




class CallHost(Protocol):
    """What the ACD link uses of the call controller that drives it."""
    cfg: ServerConfig
    bus: EventBus
    boards: list[BoardRuntime]
    legs: dict[Key, Leg]
    media: MediaOutbox
    tick: int

    def segment(self, name: str, lang: str) -> Segment: ...
    def now_ms(self, rt: BoardRuntime) -> int: ...
    def new_leg(self, call: Call, partner: Key | None = None) -> Leg: ...
    def settle(self, rt: BoardRuntime, tick: int, chans: set[int]) -> None: ...
    def connect(self, tick: int, caller: Key, line: Key, agent: str | None) -> None: ...
    def play_moh(self, rt: BoardRuntime, chan: int, music: str = "default", token: Any = None) -> None: ...
    def voicemail_record(self, tick: int, key: Key, call_id: str, mailbox: str, max_ms: int) -> None: ...
    def voicemail_stop(self, tick: int, key: Key, call_id: str, mailbox: str, reason: str) -> None: ...


class RecordingHost(Protocol):
    """What the recording service uses of the server that runs it (its engines, loop and clock)."""
    cfg: ServerConfig
    bus: EventBus
    boards: list[BoardRuntime]
    server_id: str
    start_time: dt.datetime

    @property
    def legs(self) -> dict[Key, Leg]: ...

    @property
    def tick(self) -> int:
        """The control plane's tick: the last one it handled (see `catch_up_clock`)."""
        ...

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The control plane's event loop, once it runs."""
        ...

    def catch_up_clock(self) -> int: ...
    def time_at(self, rt: BoardRuntime, tick: int) -> dt.datetime: ...
