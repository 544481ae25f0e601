"""A channel of a named board, `BOARD:CHANNEL` (`hotline:4`): the one type and the one parser.

Config files, recording rules, scenarios, the admin API and the CLIs all
name channels this way; parsing it in one place means one set of error
messages and one answer to "may the board be left out" (only when the caller
says which board that means).
"""
from __future__ import annotations

from typing import NamedTuple

__all__ = ["ChannelRef", "ChannelRefError", "parse_channel_ref", "split_board"]

MAX_DIGITS = 6      # a channel number longer than this is a typo, not a channel


class ChannelRefError(ValueError):
    """A `BOARD:CHANNEL` that is not one; the message says what was expected."""


class ChannelRef(NamedTuple):
    """(board name, channel number as the board numbers it); a tuple, so it is a dict key."""
    board: str
    chan: int

    def __str__(self) -> str:
        return f"{self.board}:{self.chan}"


def split_board(text: str, default_board: str | None = None, what: str = "CHANNEL") -> tuple[str, str]:
    """'hotline:1-4' -> ('hotline', '1-4'). Without a board, `default_board` (the only
    board there is), else an error that asks for one."""
    board, sep, rest = text.strip().partition(":")
    if not sep:
        if default_board is None:
            raise ChannelRefError(f"{text!r}: name the board (BOARD:{what}, e.g. \"hotline:4\")")
        return default_board, board
    if not board:
        raise ChannelRefError(f"{text!r}: the board name before ':' is empty")
    return board, rest


def parse_channel_ref(text: str, default_board: str | None = None) -> ChannelRef:
    """'hotline:4' -> ChannelRef('hotline', 4); '4' only with a `default_board`."""
    board, chan = split_board(text, default_board)
    if not (chan.isascii() and chan.isdigit() and len(chan) <= MAX_DIGITS):
        raise ChannelRefError(f"{text!r}: expected BOARD:CHANNEL with a channel number, "
                              f"e.g. \"hotline:4\"")
    return ChannelRef(board, int(chan))
