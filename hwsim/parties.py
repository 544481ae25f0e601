"""What a far-end person does once connected: a script of timed actions.

Callers (on FXO lines) and agents (on FXS phones) run the same kind of
script. Each action waits for its condition, counted from when the previous
action finished:

- `at`: seconds since the call was answered (absolute in the call);
- `after`: seconds after the previous action;
- `after_silence`: the host has sent nothing audible for that long (the
  prompt ended) -- the classic "press 1 after the beep".

and then does one thing: press `digits` (DTMF audio toward the host), `play`
an audio file (their speech), `flash` (phones only), or `hangup`.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from hwsim.capture import Capture
    from hwsim.simtime import SimClock, Timeline, Timer


@dataclass(frozen=True)
class Action:
    """One step of a script; exactly one of digits/play/hangup/flash is set."""
    at: float | None = None
    after: float | None = None
    after_silence: float | None = None
    digits: str | None = None
    play: str | None = None
    hangup: bool = False
    flash: bool = False

    def __post_init__(self) -> None:
        whens = [x is not None for x in (self.at, self.after, self.after_silence)]
        if sum(whens) > 1:
            raise ValueError("an action has one of at / after / after_silence, not several")
        dos = [self.digits is not None, self.play is not None, self.hangup, self.flash]
        if sum(dos) != 1:
            raise ValueError("an action does exactly one of digits / play / hangup / flash")

    @property
    def what(self) -> str:
        if self.digits is not None:
            return f"digits {self.digits}"
        if self.play is not None:
            return f"play {self.play}"
        return "hangup" if self.hangup else "flash"


class Polled(Protocol):
    """Something the world calls every tick while it waits on an audio condition."""

    def poll(self) -> None: ...


class PartyWorld(Protocol):
    """What a Party uses of its world: the time, timers, and the host's audio (for silence).
    hwsim.world.BoardWorld provides it; hwsim.ports declares the other parts' needs."""
    timeline: Timeline
    clock: SimClock
    capture: Capture

    @property
    def now(self) -> int: ...

    def poll(self, obj: Polled) -> None: ...

    def unpoll(self, obj: Polled) -> None: ...


class Party:
    """Runs a script on one channel for one call; stops when the call ends.

    The world gives it `digits(str)`, `play(path)`, `flash()`, `hangup()`
    callbacks through `actions`, and the time and host-silence facts."""

    def __init__(self, world: PartyWorld, chan: int, script: list[Action],
                 do: dict[str, Callable[..., None]], hangup_after: float | None = None) -> None:
        self.world = world
        self.chan = chan
        self.script = list(script)
        self.hangup_after = hangup_after   # a deadline apart from the script
        self.do = do
        self.step = 0
        self.t0 = world.now
        self._timer: Timer | None = None
        self._deadline: Timer | None = None
        self._since = world.now
        self.alive = False

    def start(self) -> None:
        self.alive = True
        self.t0 = self.world.now
        if self.hangup_after is not None:
            self._deadline = self.world.timeline.after(self.world.clock.ticks(self.hangup_after),
                                                       self._hangup_now)
        self._next()

    def _hangup_now(self) -> None:
        if self.alive:
            self.do["hangup"]()

    def stop(self) -> None:
        self.alive = False
        for t in (self._timer, self._deadline):
            if t is not None:
                t.cancel()
        self.world.unpoll(self)

    def _next(self) -> None:
        if not self.alive or self.step >= len(self.script):
            return
        a = self.script[self.step]
        clock = self.world.clock
        self._since = self.world.now
        if a.after_silence is not None:
            self.world.poll(self)
            return
        if a.at is not None:
            when = self.t0 + clock.ticks(a.at)
        else:
            when = self.world.now + clock.ticks(a.after or 0.0)
        self._timer = self.world.timeline.at(when, self._fire)

    def poll(self) -> None:
        """Called each tick while waiting for host silence (O(waiting parties))."""
        a = self.script[self.step]
        quiet_from = max(self._since, int(self.world.capture.last_sound[self.chan]) + 1)
        if self.world.now - quiet_from >= self.world.clock.ticks(a.after_silence or 0.0):
            self.world.unpoll(self)
            self._fire()

    def _fire(self) -> None:
        if not self.alive:
            return
        a = self.script[self.step]
        self.step += 1
        if a.digits is not None:
            self.do["digits"](a.digits, self._done)
        elif a.play is not None:
            self.do["play"](a.play, self._done)
        elif a.flash:
            self.do["flash"]()
            self._next()
        else:
            self.do["hangup"]()

    def _done(self) -> None:
        """The audio of the last action finished playing."""
        self._next()


def load_speech(path: str) -> np.ndarray:
    """A speech file as mono 8 kHz int16 (any format soundfile reads)."""
    from dsp.audiofile import read_audio
    x = read_audio(path)
    return x[0].copy() if x.shape[0] == 1 else np.clip(x.mean(axis=0), -32768, 32767).astype(np.int16)
