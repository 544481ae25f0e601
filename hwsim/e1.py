"""An E1 span and the exchange at its far end: CAS bits, alarms, counters.

30 bearer channels (TS1-15, TS17-31) with CAS ABCD bits in TS16. The far
end's bits reach the host as CAS events when they change; the host's bits
(CAS command) are kept per channel with a history; the exchange behind
each channel (hwsim.r2far, or hwsim.trunks on line-only spans) acts on them. Alarms (LOS, LOF/RED, AIS/BLUE, RAI/YELLOW)
and error counters are set by the scenario. LOS, LOF and AIS silence the
span's audio and freeze its CAS (no frame, no signalling): bits that
changed meanwhile reach the host as CAS events when the signal returns.
"""
from __future__ import annotations

import numpy as np

from hwsim.config import SpanConfig
from hwsim.e1signals import COUNTERS, IDLE_ABCD, SIGNAL_LOST, alarm_bit
from hwsim.ports import SpanWorld


class E1Span:
    """The far end of one E1 span (sans-I/O: it tells the world what to post)."""

    def __init__(self, world: SpanWorld, cfg: SpanConfig) -> None:
        self.world = world
        self.cfg = cfg
        self.alarms = 0
        self.counters = {name: 0 for name in COUNTERS}
        self.cas_rx = np.full(cfg.nchan, IDLE_ABCD, np.uint8)   # far end -> host
        self.cas_seen = np.full(cfg.nchan, IDLE_ABCD, np.uint8) # last bits the host was told
        self.cas_tx = np.full(cfg.nchan, IDLE_ABCD, np.uint8)   # host -> far end
        self.cas_history: list[tuple[float, int, int]] = []     # (seconds, chan, abcd) from host

    def _local(self, chan: int) -> int:
        i = chan - self.cfg.first_chan
        if not 0 <= i < self.cfg.nchan:
            raise ValueError(f"channel {chan} is not on span {self.cfg.index}")
        return i

    # -- host ----------------------------------------------------------------
    def host_cas(self, chan: int, abcd: int) -> None:
        self.cas_tx[self._local(chan)] = abcd & 0xF
        self.cas_history.append((self.world.seconds, chan, abcd & 0xF))

    # -- the far end / scenario ------------------------------------------------
    def far_cas(self, chan: int, abcd: int) -> None:
        """The far end sets its ABCD bits on chan; the host gets a CAS event on change."""
        i = self._local(chan)
        abcd &= 0xF
        if self.cas_rx[i] == abcd:
            return
        self.cas_rx[i] = abcd
        if not self.alarms & SIGNAL_LOST:
            self.cas_seen[i] = abcd
            self.world.post("CAS", chan, abcd)

    def set_alarm(self, name: str, on: bool) -> None:
        bit = alarm_bit(name)
        new = (self.alarms | bit) if on else (self.alarms & ~bit)
        if new == self.alarms:
            return
        lost_before = bool(self.alarms & SIGNAL_LOST)
        self.alarms = new
        self.world.set_alarms(self.cfg.index, new, bit, on)
        lost = bool(new & SIGNAL_LOST)
        if lost != lost_before:
            self.world.set_dead_range(self.cfg.first_chan, self.cfg.nchan, lost)
        if lost != lost_before:
            self.world.span_signal(self.cfg.index, not lost)
        if lost_before and not lost:
            # signalling is back: the host learns the bits that changed meanwhile
            for i in np.flatnonzero(self.cas_rx != self.cas_seen).tolist():
                self.cas_seen[i] = self.cas_rx[i]
                self.world.post("CAS", self.cfg.first_chan + i, int(self.cas_rx[i]))

    def add_counter(self, name: str, n: int) -> None:
        if name not in self.counters:
            raise ValueError(f"unknown E1 counter {name!r} (known: {', '.join(COUNTERS)})")
        self.counters[name] += n
        self.world.add_counter(self.cfg.index, name, n)
