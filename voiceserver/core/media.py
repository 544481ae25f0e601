"""What the call controller asks of the media engines: typed commands, carried out by the server.

The controller decides and the engines act. Each command names the board
(its index in the server) and the channel; `MediaOutbox` collects them in
order during a tick's handling, and `apply` hands one to a board's `Engine`,
whose own methods queue it for the next tick boundary. So the order the
controller decided in is the order the card sees, and the controller itself
touches no engine, thread or card.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dsp.mix import Segment
    from voiceserver.core.engine import Engine

__all__ = ["Play", "StopPlay", "SetTone", "ArmCallerId", "SendDtmf", "Bridge", "Unbridge", "Mix",
           "StartTimer", "BoardControl", "MfListen", "MfSend", "MediaCommand", "MediaOutbox", "apply"]


@dataclass(frozen=True)
class Play:
    board: int
    chan: int
    segments: tuple[Segment, ...]
    token: Any = None
    gain_db: float = 0.0
    loop: bool = False


@dataclass(frozen=True)
class StopPlay:
    board: int
    chan: int


@dataclass(frozen=True)
class SetTone:
    board: int
    chan: int
    name: str | None            # a tone of the zone's plan; None stops it


@dataclass(frozen=True)
class ArmCallerId:
    board: int
    chan: int
    on: bool


@dataclass(frozen=True)
class SendDtmf:
    board: int
    chan: int
    digits: str


@dataclass(frozen=True)
class Bridge:
    board: int
    a: int
    b: int


@dataclass(frozen=True)
class Unbridge:
    board: int
    a: int


@dataclass(frozen=True)
class Mix:
    """A conference in the engine: each channel hears the sum of its sources (rows: chan ->
    sources; an empty tuple: nothing bridged). A supervisor listening, whispering, barged in."""
    board: int
    rows: tuple[tuple[int, tuple[int, ...]], ...]


@dataclass(frozen=True)
class StartTimer:
    board: int
    tick: int                   # on that board's clock
    chan: int
    token: Any


@dataclass(frozen=True)
class BoardControl:
    board: int
    method: str                 # hook, ring, set_cas, xconnect, ... (boarddrv.Board)
    args: tuple[Any, ...]


@dataclass(frozen=True)
class MfListen:
    """E1 R2: the engine's MF receiver listens on `chan` for one set (None: stops)."""
    board: int
    chan: int
    forward: bool | None


@dataclass(frozen=True)
class MfSend:
    """E1 R2: the engine sends MF signal 1-15 on `chan` until told otherwise (0: silence)."""
    board: int
    chan: int
    signal: int
    forward: bool


MediaCommand = Play | StopPlay | SetTone | ArmCallerId | SendDtmf | Bridge | Unbridge | Mix | StartTimer \
    | BoardControl | MfListen | MfSend


class MediaOutbox:
    """The media commands of the handling in progress, in the order they were decided."""

    def __init__(self) -> None:
        self.commands: list[MediaCommand] = []

    def take(self) -> list[MediaCommand]:
        out, self.commands = self.commands, []
        return out

    def play(self, board: int, chan: int, segments: list[Segment], *, token: Any = None,
             gain_db: float = 0.0, loop: bool = False) -> None:
        self.commands.append(Play(board, chan, tuple(segments), token, gain_db, loop))

    def stop_play(self, board: int, chan: int) -> None:
        self.commands.append(StopPlay(board, chan))

    def tone(self, board: int, chan: int, name: str | None) -> None:
        self.commands.append(SetTone(board, chan, name))

    def arm_callerid(self, board: int, chan: int, on: bool) -> None:
        self.commands.append(ArmCallerId(board, chan, on))

    def send_dtmf(self, board: int, chan: int, digits: str) -> None:
        self.commands.append(SendDtmf(board, chan, digits))

    def bridge(self, board: int, a: int, b: int) -> None:
        self.commands.append(Bridge(board, a, b))

    def unbridge(self, board: int, a: int) -> None:
        self.commands.append(Unbridge(board, a))

    def mix(self, board: int, rows: dict[int, tuple[int, ...]]) -> None:
        self.commands.append(Mix(board, tuple(rows.items())))

    def call_at(self, board: int, tick: int, chan: int, token: Any) -> None:
        self.commands.append(StartTimer(board, tick, chan, token))

    def board_call(self, board: int, method: str, *args: Any) -> None:
        self.commands.append(BoardControl(board, method, args))

    def mf_listen(self, board: int, chan: int, forward: bool | None) -> None:
        self.commands.append(MfListen(board, chan, forward))

    def mf_send(self, board: int, chan: int, signal: int, forward: bool) -> None:
        self.commands.append(MfSend(board, chan, signal, forward))


def apply(cmd: MediaCommand, engine: Engine) -> None:
    """Hand one command to its board's engine (queued there for the next tick boundary)."""
    match cmd:
        case Play(_, chan, segments, token, gain_db, loop):
            engine.play(chan, list(segments), token=token, gain_db=gain_db, loop=loop)
        case StopPlay(_, chan):
            engine.stop_play(chan)
        case SetTone(_, chan, name):
            engine.tone(chan, name)
        case ArmCallerId(_, chan, on):
            engine.arm_callerid(chan, on)
        case SendDtmf(_, chan, digits):
            engine.send_dtmf(chan, digits)
        case Bridge(_, a, b):
            engine.bridge(a, b)
        case Unbridge(_, a):
            engine.unbridge(a)
        case Mix(_, rows):
            engine.mix(dict(rows))
        case StartTimer(_, tick, chan, token):
            engine.call_at(tick, chan, token)
        case BoardControl(_, method, args):
            engine.board_call(method, *args)
        case MfListen(_, chan, forward):
            engine.mf_listen(chan, forward)
        case MfSend(_, chan, signal, forward):
            engine.mf_send(chan, signal, forward)
        case _:
            raise TypeError(f"not a media command: {cmd!r}")
