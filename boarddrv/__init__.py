"""Board access: open a telephony board by URI and move audio and signalling.

    from boarddrv import open_board
    with open_board("sim://hotline") as board:
        board.start(block=160)
        ...

Importing this package loads no native code; the C library is loaded by
the first open_board() (BackendUnavailable if it was never built).
"""
from .board import Board, BoardInfo, ChannelInfo, SpanInfo, list_boards, open_board, open_handles
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

__all__ = [
    "Board", "BoardInfo", "ChannelInfo", "SpanInfo", "list_boards", "open_board", "open_handles",
    "BoardError", "NoSuchBoard", "BoardLost", "BadChannel", "UnknownScheme", "BackendUnavailable",
    "BoardBusy", "InvalidArgument", "TickTimeout", "NotOwner",
    "ALARMS", "ChannelType", "Command", "CommandKind", "Event", "EventKind",
]
