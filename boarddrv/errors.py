"""One exception hierarchy and one check for every call into the C library."""
from __future__ import annotations


class BoardError(Exception):
    """Any failure of board access; ``code`` is the C library's VB_E* code (or 0)."""

    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.code = code


class NoSuchBoard(BoardError):
    """The URI names no board (for sim://: no device serves that name)."""


class BoardLost(BoardError):
    """The device died or the card was removed; the Board is unusable now."""


class BadChannel(BoardError, IndexError):
    """A channel (or span) number outside the board's range."""


class UnknownScheme(BoardError):
    """The URI's scheme names no backend."""


class BackendUnavailable(BoardError):
    """The backend is known but not built or not installed here."""


class BoardBusy(BoardError):
    """Another host has started the board (or a device already serves the name)."""


class NotOwner(BoardError, PermissionError):
    """A sim:// segment in /dev/shm belongs to another user: it may be a plant, never used."""


class InvalidArgument(BoardError, ValueError):
    """A value, state or channel type the call does not accept."""


class TickTimeout(BoardError, TimeoutError):
    """No tick arrived within the timeout (the device is alive but idle or slow)."""


# VB_E* code -> exception class.  Numbers as in ext/vb.h (checked by a test).
_BY_CODE: dict[int, type[BoardError]] = {
    -1: InvalidArgument,     # VB_EINVAL
    -2: NoSuchBoard,         # VB_ENOBOARD
    -3: BoardLost,           # VB_ELOST
    -4: BadChannel,          # VB_ECHAN
    -5: UnknownScheme,       # VB_ESCHEME
    -6: BackendUnavailable,  # VB_ENOBACKEND
    -7: BoardBusy,           # VB_EBUSY
    -8: TickTimeout,         # VB_ETIMEDOUT
    -14: BadChannel,         # VB_ESPAN
    -15: NotOwner,           # VB_EPERM
}


def error_class(code: int) -> type[BoardError]:
    return _BY_CODE.get(code, BoardError)


def _check(rc: int, detail: str) -> int:
    """Return rc if it is not an error, else raise the matching BoardError with detail."""
    if rc >= 0:
        return rc
    raise error_class(rc)(detail, rc)
