"""Device side of a simulated card: what hwsim (or a test) drives.

A SimDevice creates /dev/shm/voiceboard.NAME; a host then attaches with
open_board("sim://NAME").  Per tick::

    tick = dev.next_tick(timeout)   # None on timeout
    dev.tx ...                      # what the host sent last tick
    dev.rx[:] = ...                 # what the host will receive
    dev.commands(); dev.post(...)
    dev.publish()
"""
from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from . import _ffi
from .board import _c_int, _index, _open_handles, _timeout_ms
from .errors import BoardError, InvalidArgument, _check
from .events import (
    CLOCKS,
    CODINGS,
    FRAMINGS,
    LAWS,
    SPAN_COUNTERS,
    SPAN_KINDS,
    ChannelType,
    Command,
    CommandKind,
    EventKind,
    alarm_bits,
)

_COMMAND_KINDS = {int(k): k for k in CommandKind}
_CMDBUF = 256
# Long names accepted by add_counter as well as SPAN_COUNTERS' short ones.
_COUNTER_ALIASES = {"crc4_errors": "crc4", "ebit_errors": "ebit", "fas_errors": "fas",
                    "bipolar_violations": "bpv"}


@dataclass(frozen=True)
class SpanSpec:
    """One span of the simulated card. E1 defaults: CAS framing, HDB3, no CRC-4."""
    kind: str = "analog"          # "analog" | "e1"
    nchan: int = 8
    framing: str | None = None    # e1: "cas" | "ccs" (default "cas")
    coding: str | None = None     # e1: "hdb3" | "ami" (default "hdb3")
    crc4: bool = False
    timing: int = 0               # clock source priority; 0 = never the clock


@dataclass(frozen=True)
class ChanSpec:
    """One channel; timeslot 0 = assign (E1: 1..31 skipping 16; analog: port number)."""
    type: ChannelType = ChannelType.FXO
    span: int = 0
    timeslot: int = 0


def _pick(table: dict[str, int], value: Any, what: str) -> int:
    try:
        return table[str(value).lower()]
    except KeyError:
        raise InvalidArgument(f"{what} {value!r}: expected one of {', '.join(table)}") from None


def _default_channels(spans: list[SpanSpec]) -> list[ChanSpec]:
    out: list[ChanSpec] = []
    for i, s in enumerate(spans):
        if s.kind == "e1":
            t = ChannelType.E1_CAS if (s.framing or "cas") == "cas" else ChannelType.E1_BEARER
        else:
            t = ChannelType.FXO
        out += [ChanSpec(type=t, span=i) for _ in range(s.nchan)]
    return out


class SimDevice:
    """The card side of a sim:// board. Create with SimDevice.create(); close() it."""

    def __init__(self, handle: Any, name: str, nchan: int, clock: str) -> None:
        self._ffi, self._lib = _ffi.load()
        self._h = handle
        self.name = name
        self.uri = f"sim://{name}"
        self.nchan = nchan
        self.clock = clock
        self.tick = -1
        self._block = 0
        self._rx_views: list[np.ndarray] = []
        self._tx_views: list[np.ndarray] = []
        self._rx_slot = self._tx_slot = 0
        self.removed = False
        self._tickp = self._ffi.new("uint64_t *")
        self._slots = self._ffi.new("int[2]")
        self._cmdbuf = self._ffi.new("vb_event_t[]", _CMDBUF)
        _open_handles.add(self)

    @classmethod
    def create(cls, name: str, spans: Iterable[SpanSpec], channels: Iterable[ChanSpec] | None = None,
               law: str = "alaw", clock: str = "lockstep") -> SimDevice:
        """Create the board (replacing a stale one); BoardBusy if a live device serves name."""
        ffi, lib = _ffi.load()
        spans = list(spans)
        chans = list(channels) if channels is not None else _default_channels(spans)
        if not spans:
            raise InvalidArgument(f"board {name!r}: at least one span is needed")
        sp = ffi.new("vb_span_spec_t[]", len(spans))
        for i, s in enumerate(spans):
            where = f"board {name!r} span {i}"
            kind = _pick(SPAN_KINDS, s.kind, f"{where}: kind")
            sp[i].kind = kind
            sp[i].nchan = _index(s.nchan, f"{where}: nchan")
            if kind == SPAN_KINDS["e1"]:
                sp[i].framing = _pick(FRAMINGS, s.framing or "cas", f"{where}: framing")
                sp[i].coding = _pick(CODINGS, s.coding or "hdb3", f"{where}: coding")
                sp[i].crc4 = 1 if s.crc4 else 0
            elif s.framing not in (None, "none") or s.coding not in (None, "none") or s.crc4:
                raise InvalidArgument(f"{where}: analog spans have no framing, coding or crc4")
            sp[i].timing = _index(s.timing, f"{where}: timing")
        cs = ffi.new("vb_chan_spec_t[]", max(1, len(chans)))
        for i, c in enumerate(chans):
            try:
                cs[i].type = int(ChannelType(c.type))
            except ValueError:
                raise InvalidArgument(f"board {name!r} channel {i}: type {c.type!r} is not a ChannelType") from None
            cs[i].span = _index(c.span, f"board {name!r} channel {i}: span")
            cs[i].timeslot = _index(c.timeslot, f"board {name!r} channel {i}: timeslot")
        law_c = _pick(LAWS, law, f"board {name!r}: law")
        clock_c = _pick(CLOCKS, clock, f"board {name!r}: clock")
        err = ffi.new("char[]", 512)
        out = ffi.new("vb_simdev_t **")
        rc = lib.vb_simdev_create(str(name).encode("utf-8", "replace"), sp, len(spans), cs, len(chans),
                                  law_c, clock_c, out, err, 512)
        if rc < 0:
            _check(rc, _ffi.text(ffi, err))
        return cls(out[0], str(name), len(chans), str(clock).lower())

    # ------------------------------------------------------------ lifecycle
    @property
    def closed(self) -> bool:
        return self._h is None

    def close(self) -> None:
        """Unlink the shared memory; a host attached now gets BoardLost."""
        h, self._h = self._h, None
        if h is not None:
            self._rx_views = self._tx_views = []
            self._lib.vb_simdev_close(h)

    def __enter__(self) -> SimDevice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_h", None) is not None:
            warnings.warn(f"{self!r} was not closed", ResourceWarning, stacklevel=2)
            self.close()

    def __repr__(self) -> str:
        return f"<SimDevice {self.uri} ({'closed' if self.closed else self.clock})>"

    def _handle(self) -> Any:
        if self._h is None:
            raise BoardError(f"simulated device {self.uri} is closed")
        return self._h

    def _call(self, rc: int) -> int:
        if rc < 0:
            _check(rc, _ffi.text(self._ffi, self._lib.vb_simdev_errmsg(self._h)))
        return rc

    # ------------------------------------------------------------ ticks
    @property
    def block(self) -> int:
        """Samples per channel this tick (the host's choice; 160 before a host)."""
        return int(self._lib.vb_simdev_block(self._handle()))

    @property
    def host_attached(self) -> bool:
        return bool(self._lib.vb_simdev_host_attached(self._handle()))

    def wait_host(self, timeout: float | None = None) -> bool:
        """True once a host has started the board; False on timeout."""
        return bool(self._call(self._lib.vb_simdev_wait_host(self._handle(), _timeout_ms(timeout))))

    def next_tick(self, timeout: float | None = None) -> int | None:
        """Begin the next tick (lockstep: after the host's commit); None on timeout."""
        h = self._handle()
        rc = self._lib.vb_simdev_next_tick(h, _timeout_ms(timeout), self._tickp)
        if rc < 0:
            if rc == self._lib.VB_ETIMEDOUT:
                return None
            self._call(rc)
        t: int = self._tickp[0]
        self.tick = t
        block = self._lib.vb_simdev_block(h)
        if block != self._block:
            self._build_views(block)
        self._lib.vb_simdev_slots(h, self._slots, self._slots + 1)
        self._rx_slot, self._tx_slot = self._slots[0], self._slots[1]
        return t

    def _build_views(self, block: int) -> None:
        ffi = self._ffi
        rxp = ffi.new("int16_t **")
        txp = ffi.new("int16_t **")
        stride = ffi.new("size_t *")
        self._lib.vb_simdev_rings(self._h, rxp, ffi.cast("const int16_t **", txp), stride)
        slots, nchan = self._lib.VB_RING_SLOTS, self.nchan
        strides = (stride[0] * 2, block * 2, 2)
        rx = np.ndarray((slots, nchan, block), np.int16, ffi.buffer(rxp[0], slots * stride[0] * 2), 0, strides)
        tx = np.ndarray((slots + 1, nchan, block), np.int16,
                        ffi.buffer(txp[0], (slots + 1) * stride[0] * 2), 0, strides)
        tx.flags.writeable = False
        self._rx_views = [rx[i] for i in range(slots)]
        self._tx_views = [tx[i] for i in range(slots + 1)]
        self._block = block

    @property
    def rx(self) -> np.ndarray:
        """int16[nchan, block] to fill with what the host receives this tick."""
        if self.tick < 0:
            raise BoardError(f"{self.uri}: call next_tick() first")
        return self._rx_views[self._rx_slot]

    @property
    def tx(self) -> np.ndarray:
        """int16[nchan, block] the host sent in the previous tick (silence if it sent none)."""
        if self.tick < 0:
            raise BoardError(f"{self.uri}: call next_tick() first")
        return self._tx_views[self._tx_slot]

    def publish(self) -> None:
        """rx of this tick is complete: the host may read it."""
        self._call(self._lib.vb_simdev_publish(self._handle()))

    # ------------------------------------------------------------ signalling
    def commands(self) -> list[Command]:
        """Host control calls since the last drain, oldest first."""
        h = self._handle()
        out: list[Command] = []
        while True:
            n = self._call(self._lib.vb_simdev_read_commands(h, self._cmdbuf, _CMDBUF))
            for c in self._cmdbuf[0:n]:
                out.append(Command(c.tick, _COMMAND_KINDS[c.kind], c.chan, c.value))
            if n < _CMDBUF:
                return out

    def post(self, kind: EventKind | str | int, chan: int, value: int = 0, span: int = -1) -> None:
        """Send an event to the host; it arrives with this tick (or the next, between ticks)."""
        if isinstance(kind, str):
            try:
                kind = EventKind[kind.upper()]
            except KeyError:
                raise InvalidArgument(f"{self.uri}: unknown event kind {kind!r}") from None
        self._call(self._lib.vb_simdev_post(self._handle(), int(kind), _c_int(_index(chan, "channel")),
                                            _c_int(_index(span, "span")), _c_int(_index(value, "value"))))

    def set_alarms(self, span: int, alarms: int | set[str] | list[str]) -> None:
        """Set a span's alarm bits; ALARM_SET/ALARM_CLEAR events go out for each change."""
        try:
            bits = alarm_bits(alarms)
        except ValueError as exc:
            raise InvalidArgument(f"{self.uri} span {span}: {exc}") from None
        if not 0 <= bits < 2**31:
            raise InvalidArgument(f"{self.uri} span {span}: alarm bits {bits} out of range")
        self._call(self._lib.vb_simdev_set_alarms(self._handle(), _c_int(_index(span, "span")), bits))

    def add_counter(self, span: int, name: str, n: int = 1) -> None:
        """Add n to a span counter: crc4, ebit, fas, bpv or slips."""
        key = _COUNTER_ALIASES.get(name, name)
        if key not in SPAN_COUNTERS:
            raise InvalidArgument(f"{self.uri} span {span}: unknown counter {name!r} "
                                  f"(known: {', '.join(SPAN_COUNTERS)})")
        n = _index(n, "n")
        if n < 0:
            raise InvalidArgument(f"{self.uri} span {span}: counter {name} can only grow (n={n})")
        self._call(self._lib.vb_simdev_add_counter(self._handle(), _c_int(_index(span, "span")),
                                                   SPAN_COUNTERS.index(key), n))

    def set_clock(self, start: datetime) -> None:
        """The simulated wall clock hosts read (`Board.clock_start`): tick 0 is `start` (aware).

        Set it right after create(), before a host starts the board."""
        off = start.utcoffset()
        if off is None:
            raise InvalidArgument(f"{self.uri}: clock start {start.isoformat()} needs a UTC offset")
        us = (start - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
        self._call(self._lib.vb_simdev_set_clock(self._handle(), us, int(off.total_seconds())))

    def remove(self) -> None:
        """Simulate the card vanishing: the host gets BOARD_LOST, then BoardLost.

        The current tick (or a new one) is published with the BOARD_LOST event;
        every later device call raises BoardLost."""
        self._call(self._lib.vb_simdev_remove(self._handle()))
        self.removed = True

    def stats(self) -> dict[str, int]:
        st = self._ffi.new("vb_stats_t *")
        self._call(self._lib.vb_simdev_stats(self._handle(), st))
        return {"ticks": st.ticks, "late_ticks": st.late_ticks, "overruns": st.overruns,
                "underruns": st.underruns, "events_lost": st.events_lost}
