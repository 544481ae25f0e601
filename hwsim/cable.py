"""A back-to-back E1 cable between spans of two boards served by one hwsim.

Each board runs on its own thread with its own host (say the voice server
on one and OpenR2's r2test, through the DAHDI emulator, on the other), so
the cable is a pair of queues: each tick a board's world pushes what its
host sent on the span (the block of audio of each channel, the ABCD bits
of each channel) and pulls what the other host sent one tick before.

The two boards are kept in step while both have a host: the Simulator
waits (`wait_ready`) before a board's tick until the other board's tick
it needs has arrived, so neither runs more than one tick ahead and no
block is lost (a lost block would cut an MF R2 signal in two). While the
other board has no host the cable carries nothing: silence, and no
change of bits. Same-board cables need none of this (hwsim.world copies
those channels directly).
"""
from __future__ import annotations

import threading
from collections import deque
from typing import NamedTuple

import numpy as np


class Frame(NamedTuple):
    """One tick of one side: the host's audio on the span's channels and its ABCD bits."""
    audio: np.ndarray     # int16[nchan, block]
    cas: np.ndarray       # uint8[nchan]


class CableLink:
    """The cable's two directions; side 0 and side 1 are its two spans."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._cond = threading.Condition()
        self._inbox: tuple[deque[Frame | None], deque[Frame | None]] = (deque(), deque())
        self._live = [False, False]
        self.underruns = [0, 0]          # ticks a side went on without the other's frame

    def attach(self, side: int) -> None:
        """A host started on this side's board: the cable starts over, one tick long each way."""
        with self._cond:
            self._live[side] = True
            for box in self._inbox:
                box.clear()
                box.append(None)          # the cable's one tick of delay: nothing yet
            self._cond.notify_all()

    def detach(self, side: int) -> None:
        with self._cond:
            self._live[side] = False
            for box in self._inbox:
                box.clear()
            self._cond.notify_all()

    def both_live(self) -> bool:
        return all(self._live)

    def push(self, side: int, frame: Frame) -> None:
        with self._cond:
            if self._live[1 - side] and self._live[side]:
                self._inbox[1 - side].append(Frame(frame.audio.copy(), frame.cas.copy()))
                self._cond.notify_all()

    def pull(self, side: int) -> Frame | None:
        """The other side's frame for this tick, or None (nothing arrives)."""
        with self._cond:
            box = self._inbox[side]
            if box:
                return box.popleft()
            if all(self._live):
                self.underruns[side] += 1
            return None

    def wait_ready(self, side: int, stop: threading.Event, timeout: float = 1.0) -> bool:
        """Block until this side's next frame is there (or the other side has no host,
        or stop is set, or timeout). True if a frame is waiting."""
        with self._cond:
            self._cond.wait_for(lambda: stop.is_set() or not all(self._live) or bool(self._inbox[side]),
                                timeout)
            return bool(self._inbox[side])


class CableEnd(NamedTuple):
    """One board's end of a cable: which link, which side, which of its spans."""
    link: CableLink
    side: int
    span: int
