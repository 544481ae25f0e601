"""Board access: open a telephony board by URI and move audio and signalling.

    from boarddrv import open_board
    with open_board("sim://hotline") as board:
        board.start(block=160)
        ...

Importing this package loads no native code; the C library is loaded by
the first open_board() (BackendUnavailable if it was never built). The
board module (and numpy with it) loads at the first use of one of its names,
so that `voiceboard dtmf --help` and the other tools start in tens of ms.
"""
from typing import TYPE_CHECKING, Any

from .errors import (
    BackendUnavailable,
    BadChannel,
    BoardBusy,
    BoardError,
    BoardLost,
    InvalidArgument,
    NoSuchBoard,
    NotOwner,
    TickTimeout,
    UnknownScheme,
)
from .events import ALARMS, ChannelType, Command, CommandKind, Event, EventKind

if TYPE_CHECKING:
    from .board import Board, BoardInfo, ChannelInfo, SpanInfo, list_boards, open_board, open_handles

_BOARD_NAMES = ("Board", "BoardInfo", "ChannelInfo", "SpanInfo", "list_boards", "open_board", "open_handles")


def __getattr__(name: str) -> Any:
    if name in _BOARD_NAMES:
        from . import board
        return getattr(board, name)
    raise AttributeError(f"module 'boarddrv' has no attribute {name!r}")

__all__ = [
    "Board", "BoardInfo", "ChannelInfo", "SpanInfo", "list_boards", "open_board", "open_handles",
    "BoardError", "NoSuchBoard", "BoardLost", "BadChannel", "UnknownScheme", "BackendUnavailable",
    "BoardBusy", "InvalidArgument", "TickTimeout", "NotOwner",
    "ALARMS", "ChannelType", "Command", "CommandKind", "Event", "EventKind",
]
