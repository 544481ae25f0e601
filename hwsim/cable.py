"""A back-to-back E1 cable between spans of two boards served by one hwsim.

Each board runs on its own thread with its own host (say the voice server
on one and OpenR2's r2test, through the DAHDI emulator, on the other), so
the cable is a pair of queues: each tick a board's world pushes what its
host sent on the span (a block of audio per channel and the ABCD bits of
each channel) and pulls a block's worth of what the other host sent. The
queues count samples, so the two hosts may use different block sizes
(the emulator's 10 ms, the server's 20 ms).

The two boards are kept in step while both have a host: the Simulator
waits (`wait_ready`) before a board's tick until the samples it needs
have arrived, so no block is lost (a lost block would cut an MF R2 signal
in two). Neither side can then run ahead of the other by more than the
cable's delay: one block of the receiving side. While the other board has
no host the cable carries nothing: silence, and no change of bits.
Same-board cables need none of this (hwsim.world copies those channels
directly).
"""
from __future__ import annotations

import threading
from collections import deque
from typing import NamedTuple

import numpy as np


class Frame(NamedTuple):
    """What one side's host sent in one tick: audio on the span's channels and its ABCD bits."""
    audio: np.ndarray     # int16[nchan, samples]
    cas: np.ndarray | None   # uint8[nchan]; None: the silence the cable starts with (no bits)


class CableLink:
    """The cable's two directions; side 0 and side 1 are its two spans."""

    def __init__(self, name: str, nchan: int = 30) -> None:
        self.name = name
        self.nchan = nchan
        self._cond = threading.Condition()
        self._inbox: tuple[deque[Frame], deque[Frame]] = (deque(), deque())
        self._avail = [0, 0]             # samples waiting in each side's inbox
        self._block: list[int | None] = [None, None]
        self.underruns = [0, 0]          # ticks a side went on without the other's samples

    def _start_over(self) -> None:
        """Both inboxes hold one block of silence of their receiver: the cable's delay."""
        for side, box in enumerate(self._inbox):
            box.clear()
            block = self._block[side]
            self._avail[side] = block or 0
            if block:
                box.append(Frame(np.zeros((self.nchan, block), np.int16), None))

    def attach(self, side: int, block: int) -> None:
        """A host started on this side's board with `block` samples a tick."""
        with self._cond:
            self._block[side] = block
            self._start_over()
            self._cond.notify_all()

    def detach(self, side: int) -> None:
        with self._cond:
            self._block[side] = None
            self._start_over()
            self._cond.notify_all()

    def _both(self) -> bool:
        return all(b is not None for b in self._block)

    def push(self, side: int, frame: Frame) -> None:
        with self._cond:
            if self._both():
                other = 1 - side
                self._inbox[other].append(Frame(frame.audio.copy(),
                                                None if frame.cas is None else frame.cas.copy()))
                self._avail[other] += frame.audio.shape[1]
                self._cond.notify_all()

    def pull(self, side: int, samples: int) -> tuple[np.ndarray, np.ndarray | None] | None:
        """`samples` of the other side's audio and its latest bits (None: no bits came),
        or None when they are not there (the other side has no host, or is late)."""
        with self._cond:
            if self._avail[side] < samples:
                if self._both():
                    self.underruns[side] += 1
                return None
            box = self._inbox[side]
            parts: list[np.ndarray] = []
            cas: np.ndarray | None = None
            need = samples
            while need:
                head = box[0]
                if head.cas is not None:
                    cas = head.cas
                n = head.audio.shape[1]
                if n <= need:
                    parts.append(head.audio)
                    box.popleft()
                    need -= n
                else:
                    parts.append(head.audio[:, :need])
                    box[0] = Frame(head.audio[:, need:], None)
                    need = 0
            self._avail[side] -= samples
            return (parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)), cas

    def wait_ready(self, side: int, samples: int, stop: threading.Event, timeout: float = 10.0) -> bool:
        """Block until this side's next `samples` are there (or the other side has no host,
        or stop is set, or timeout). True if they are. The timeout is long: a host descheduled
        for a second on a loaded machine is late, not gone (a host that leaves detaches at once),
        and going on without its samples would cut an MF signal in two."""
        with self._cond:
            self._cond.wait_for(lambda: stop.is_set() or not self._both() or self._avail[side] >= samples,
                                timeout)
            return self._avail[side] >= samples


class CableEnd(NamedTuple):
    """One board's end of a cable: which link, which side, which of its spans."""
    link: CableLink
    side: int
    span: int
