"""The card's own record of its lines, and putting lines back to idle.

Why: a card keeps what its host last told it. After `kill -9` the lines
that carried calls stay off-hook and cross-connected (a caller can go on
talking to an agent, unrecorded, and new calls to those lines are
blocked) while a new server thinks them idle. So the server reads the
card's status registers when it opens a board (at start and when a lost
board comes back) and releases every line it did not expect; at a clean
stop it releases every line before the board is closed.

What "not idle" means here is what the host set and can undo: an FXO
line off-hook, a phone the host rings, a cross-connect, a loopback, E1
CAS bits other than the idle 1011. A lifted FXS phone is the person's,
not the host's: it is reported (`phone_offhook`), the server gives it
busy tone until it is hung up.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from boarddrv import BoardError, ChannelType

CAS_IDLE = 0b1011      # China No.1: an idle E1 CAS line sends ABCD 1011 (as the card starts)
QUEUE_FULL = -10       # VB_EAGAIN: the card's command queue is full


@dataclass(frozen=True)
class LineState:
    """One channel that is not idle on the card."""
    chan: int
    type: str                   # FXO | FXS | E1_CAS | ...
    offhook: bool = False       # FXO: the host holds the line off-hook
    ringing: bool = False       # FXS: the host rings the phone
    xconnect: int | None = None  # cross-connected with this channel
    loopback: bool = False
    cas_tx: int | None = None   # E1 CAS bits the host sends, when not idle
    phone_offhook: bool = False  # FXS: the phone is lifted (the person's, not ours)

    @property
    def seized(self) -> bool:
        """Something the host set and must undo."""
        return (self.offhook or self.ringing or self.xconnect is not None or self.loopback
                or self.cas_tx is not None)

    def describe(self) -> str:
        """In words, for the log, the event and the call row's note."""
        parts = []
        if self.offhook:
            parts.append("off-hook")
        if self.ringing:
            parts.append("ringing the phone")
        if self.xconnect is not None:
            parts.append(f"cross-connected with {self.xconnect}")
        if self.loopback:
            parts.append("in loopback")
        if self.cas_tx is not None:
            parts.append(f"sending CAS {self.cas_tx:04b}")
        if self.phone_offhook:
            parts.append("phone lifted")
        return ", ".join(parts) or "idle"


def line_states(board: Any) -> list[LineState]:
    """Every channel of `board` that is not idle, from the card's status registers."""
    out = []
    for info in board.channels:
        st = board.channel_status(info.index)
        kind = info.type
        cas = st["cas_tx"]
        line = LineState(
            info.index, kind.name,
            offhook=kind is ChannelType.FXO and st["hook"],
            ringing=kind is ChannelType.FXS and st["ringing"],
            xconnect=st["xconnect"], loopback=st["loopback"],
            cas_tx=cas if cas is not None and cas != CAS_IDLE else None,
            phone_offhook=kind is ChannelType.FXS and st["hook"])
        if line.seized or line.phone_offhook:
            out.append(line)
    return out


def release(board: Any, line: LineState) -> None:
    """Undo what the host set on `line`: on-hook, ringing off, no cross-connect, no loopback, CAS idle."""
    if line.offhook:
        _send(board, board.hook, line.chan, "onhook")
    if line.ringing:
        _send(board, board.ring, line.chan, False)
    if line.xconnect is not None and board.channel_status(line.chan)["xconnect"] is not None:
        _send(board, board.xdisconnect, line.chan)   # (its peer, released first, may have cleared both ends)
    if line.loopback:
        _send(board, board.loopback, line.chan, False)
    if line.cas_tx is not None:
        _send(board, board.set_cas, line.chan, CAS_IDLE)


def _send(board: Any, call: Any, *args: Any, ticks: int = 100) -> None:
    """A control call; on a full command queue (a big board with every line seized: more
    commands than the queue holds) give the card a tick to drain it, and try again."""
    for _ in range(ticks):
        try:
            call(*args)
            return
        except BoardError as exc:
            if exc.code != QUEUE_FULL:
                raise
        board.wait_tick(timeout=1.0)   # the host's tick: the card reads the queue at the next one
        board.commit()
    call(*args)


def release_all(board: Any) -> list[LineState]:
    """Release every seized line of `board`; returns what each line was doing."""
    lines = line_states(board)
    for line in lines:
        if line.seized:
            release(board, line)
    return lines
