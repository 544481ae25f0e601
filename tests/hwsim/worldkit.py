"""Shared by the hwsim tests: board configs and a sans-I/O host that drives a BoardWorld.

Imported by name (`from worldkit import ...`), not from conftest: every test
folder has a conftest module, and a bare `from conftest import` gets whichever
was imported last."""
from __future__ import annotations

import numpy as np

from hwsim.scenario import Scenario
from hwsim.simtime import SimClock
from hwsim.world import BoardWorld, HostCommand, Post

HOTLINE = """
[[board]]
name = "hotline"
[[board.span]]
kind = "analog"
channels = 8
[[board.fxo]]
channels = "0"
disconnect = "loop-drop"
callerid = "fsk"
[[board.fxo]]
channels = "1"
disconnect = "battery-reversal"
callerid = "dtmf"
[[board.fxo]]
channels = "2-3"
disconnect = "busy-tone"
callerid = "none"
[[board.fxs]]
channels = "4-7"
"""

E1 = """
[[board]]
name = "e1site"
[[board.span]]
kind = "e1"
count = 2
"""


class Host:
    """A host driving a world sans-I/O: keeps the events and rx it got."""

    def __init__(self, world: BoardWorld) -> None:
        self.world = world
        self.tick = 0
        self.tx = np.zeros((world.nchan, world.clock.block), np.int16)
        self.rx = np.zeros_like(self.tx)
        self.events: list[tuple[int, Post]] = []
        self.outputs: list[tuple[int, object]] = []
        self.rx_log: dict[int, list[np.ndarray]] = {}
        self._pending: list[HostCommand] = []

    def send(self, kind: str, chan: int, value: int = 0) -> None:
        self._pending.append(HostCommand(kind, chan, value))

    def record(self, chan: int) -> None:
        self.rx_log.setdefault(chan, [])

    def run(self, seconds: float = 0.0, ticks: int | None = None, tx_fn=None) -> None:
        n = ticks if ticks is not None else self.world.clock.ticks(seconds)
        for _ in range(n):
            self.tick += 1
            if tx_fn is not None:
                tx_fn(self)
            cmds, self._pending = self._pending, []
            for out in self.world.step(self.tick, self.tx, cmds, self.rx):
                if isinstance(out, Post):
                    self.events.append((self.tick, out))
                else:
                    self.outputs.append((self.tick, out))
            for ch, log in self.rx_log.items():
                log.append(self.rx[ch].copy())

    def heard(self, chan: int) -> np.ndarray:
        return np.concatenate(self.rx_log[chan]) if self.rx_log.get(chan) else np.zeros(0, np.int16)

    def kinds(self, chan: int | None = None) -> list[tuple[int, str]]:
        return [(t, e.kind) for t, e in self.events if chan is None or e.chan == chan]


def make(cfg, scenario: Scenario | None = None, block: int = 160) -> Host:
    return Host(BoardWorld(cfg, SimClock(block), scenario))
