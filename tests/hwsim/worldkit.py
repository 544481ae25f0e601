"""Shared by the hwsim tests: board configs, a sans-I/O host that drives a BoardWorld,
and R2Peer, a scripted China No.1 host side for one E1 channel (a test double).

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


# ---------------------------------------------------------------------------- R2Peer
# A test double for the host side of one E1 channel speaking China No.1 by hand.
# Not an R2 implementation: each test says, signal by signal, what the host sends
# (ABCD bits, MF R2 tones) and what it expects from hwsim's exchange, following the
# China No.1 tables (line: idle 1011, seize 0011, seize acknowledge / clear-back /
# blocked 1111, answer 0111, clear-forward 1011; MF: forward 1380-1980 Hz, backward
# 1140-540 Hz, signal n = a pair of frequencies by Q.441). Its tones are plain numpy
# sines and it hears hwsim's tones with a zero-padded FFT, so it shares no code with
# the exchange under test (hwsim.r2far, hwsim.r2mf) nor with the server's R2.

FORWARD_HZ = (1380, 1500, 1620, 1740, 1860, 1980)
BACKWARD_HZ = (1140, 1020, 900, 780, 660, 540)
# Q.441: signal 1..15 -> indices of its two frequencies
Q441 = [(0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3), (0, 4), (1, 4), (2, 4), (3, 4),
        (0, 5), (1, 5), (2, 5), (3, 5), (4, 5)]
AMP = 2300.0          # per frequency, about -11 dBm0 (A-law full scale sine ~ +3 dBm0 at 32767)


def tones_in(block: np.ndarray, freqs: tuple[int, ...]) -> int:
    """The MF signal of set `freqs` in one block (0: none), by the two strongest spectral peaks."""
    x = block.astype(np.float64)
    if np.sqrt(np.mean(x * x)) < 300:
        return 0
    spec = np.abs(np.fft.rfft(x, 8000))            # 1 Hz bins
    first = int(np.argmax(spec))
    masked = spec.copy()
    masked[max(0, first - 60):first + 61] = 0
    second = int(np.argmax(masked))
    if masked[second] < spec[first] / 3:          # one tone only, or speech
        return 0
    found = []
    for peak in (first, second):
        near = [i for i, f in enumerate(freqs) if abs(f - peak) <= 15]
        if not near:
            return 0
        found.append(near[0])
    pair = tuple(sorted(found))
    return Q441.index(pair) + 1 if pair in Q441 else 0


class R2Peer:
    """One channel of the host, scripted: `forward` when the host is the calling side."""

    def __init__(self, host: Host, chan: int, forward: bool) -> None:
        self.h = host
        self.chan = chan
        self.send_hz = FORWARD_HZ if forward else BACKWARD_HZ
        self.hear_hz = BACKWARD_HZ if forward else FORWARD_HZ
        self.sending = 0
        self._pulse_left = 0
        self._phase = 0
        self.heard: list[tuple[int, int]] = []     # (tick, signal) per tick

    # -- the host's tx --------------------------------------------------------
    def _fill(self, h: Host) -> None:
        n = h.tx.shape[1]
        if self.sending:
            a, b = Q441[self.sending - 1]
            t = (self._phase + np.arange(n)) / 8000
            h.tx[self.chan] = np.round(AMP * (np.sin(2 * np.pi * self.send_hz[a] * t)
                                              + np.sin(2 * np.pi * self.send_hz[b] * t))).astype(np.int16)
            if self._pulse_left:
                self._pulse_left -= 1
                if not self._pulse_left:
                    self.sending = 0
        else:
            h.tx[self.chan] = 0
        self._phase += n

    def send(self, signal: int) -> None:
        """Start a compelled MF signal (kept on until stop())."""
        self.sending, self._pulse_left = signal, 0

    def pulse(self, signal: int, ticks: int) -> None:
        self.sending, self._pulse_left = signal, ticks

    def stop(self) -> None:
        self.sending = 0

    def cas(self, abcd: int) -> None:
        self.h.send("CAS", self.chan, abcd)

    # -- running --------------------------------------------------------------
    def step(self) -> int:
        """One tick; returns the signal hwsim sent on the channel in it."""
        self.h.run(ticks=1, tx_fn=self._fill)
        sig = tones_in(self.h.rx[self.chan], self.hear_hz)
        self.heard.append((self.h.tick, sig))
        return sig

    def wait_signal(self, seconds: float = 3.0) -> tuple[int, int]:
        """Run until hwsim sends an MF signal: (signal, tick it was first heard)."""
        for _ in range(self.h.world.clock.ticks(seconds)):
            sig = self.step()
            if sig:
                return sig, self.h.tick
        raise AssertionError(f"no MF signal from hwsim on channel {self.chan} within {seconds} s")

    def wait_silence(self, seconds: float = 3.0) -> int:
        """Run until hwsim's MF signal ends: the tick of the first silent block."""
        for _ in range(self.h.world.clock.ticks(seconds)):
            if not self.step():
                return self.h.tick
        raise AssertionError(f"hwsim's MF signal on channel {self.chan} did not end within {seconds} s")

    def quiet_for(self, seconds: float) -> None:
        """Run `seconds` and check that hwsim sent no MF signal meanwhile."""
        for _ in range(self.h.world.clock.ticks(seconds)):
            assert not self.step(), f"unexpected MF signal on channel {self.chan} at tick {self.h.tick}"

    def wait_cas(self, abcd: int, seconds: float = 3.0) -> int:
        """Run until the channel's CAS event with `abcd`; returns its tick."""
        seen = len(self.h.events)
        for _ in range(max(1, self.h.world.clock.ticks(seconds))):
            for t, e in self.h.events[seen:]:
                if e.kind == "CAS" and e.chan == self.chan:
                    assert e.value == abcd, f"expected ABCD {abcd:04b}, got {e.value:04b} at tick {t}"
                    return t
            seen = len(self.h.events)
            self.step()
        raise AssertionError(f"no ABCD {abcd:04b} on channel {self.chan} within {seconds} s")

    def cas_events(self) -> list[tuple[int, int]]:
        return [(t, e.value) for t, e in self.h.events if e.kind == "CAS" and e.chan == self.chan]

    # -- compelled cycles -------------------------------------------------------
    def answer_cycle(self, reply: int) -> int:
        """Backward end: hwsim's forward signal is on; reply with `reply` until it stops.
        Returns the forward signal that was answered."""
        sig, _ = self.wait_signal()
        self.send(reply)
        self.wait_silence()
        self.stop()
        return sig

    def forward_cycle(self, signal: int) -> int:
        """Forward end: send `signal` until hwsim answers, stop, wait for its answer to end.
        Returns hwsim's backward signal."""
        self.send(signal)
        reply, _ = self.wait_signal()
        self.stop()
        self.wait_silence()
        return reply
