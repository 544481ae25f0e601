"""Host side: open a board by URI and move one block of all channels per tick.

Per tick the Python work is a handful of cffi calls (wait_tick, commit, and
one read_events) plus list lookups: the rx/tx numpy views of the whole ring
are built once at start(), so `board.rx` is a view, never a copy.  cffi
releases the GIL during each C call.
"""
from __future__ import annotations

import datetime as dt
import operator
import os
import warnings
import weakref
from typing import Any, NamedTuple

import numpy as np

from . import _ffi
from .errors import BoardError, InvalidArgument, _check
from .events import (
    CHAN_COUNTERS,
    CLOCKS,
    CODINGS,
    FRAMINGS,
    HOOK_STATES,
    LAWS,
    SPAN_COUNTERS,
    SPAN_KINDS,
    ChannelType,
    Event,
    EventKind,
    alarm_names,
    name_of,
)

# Every open Board/SimDevice, so tests can fail a test that leaks one.
_open_handles: weakref.WeakSet[Any] = weakref.WeakSet()

_EVENT_KINDS = {int(k): k for k in EventKind}
_EVBUF = 256
_SHM_DIR = "/dev/shm"
_SHM_PREFIX = "voiceboard."


def open_handles() -> list[Any]:
    """Boards and simulated devices opened and not yet closed (live objects only)."""
    return [h for h in list(_open_handles) if not h.closed]


class BoardInfo(NamedTuple):
    name: str
    uri: str
    driver: str
    law: str          # "alaw" | "ulaw"
    nspans: int
    nchan: int
    clock: str        # "lockstep" | "realtime"


class SpanInfo(NamedTuple):
    index: int  # type: ignore[assignment]  # shadows tuple.index; the public field name
    kind: str         # "analog" | "e1"
    nchan: int
    first_chan: int
    framing: str      # "none" | "cas" | "ccs"
    coding: str       # "none" | "hdb3" | "ami"
    crc4: bool
    timing: int       # clock source priority, 0 = never the clock


class ChannelInfo(NamedTuple):
    index: int  # type: ignore[assignment]  # shadows tuple.index; the public field name
    span: int
    type: ChannelType
    timeslot: int     # E1: timeslot 1..31; analog: port number from 1


def _index(value: Any, what: str) -> int:
    try:
        v = operator.index(value)
    except TypeError:
        raise InvalidArgument(f"{what} must be an integer, not {type(value).__name__}") from None
    return v


def _c_int(v: int) -> int:
    """Clamp to C int range so out-of-range numbers reach the C range check."""
    return max(-2**31, min(2**31 - 1, v))


def _timeout_ms(timeout: float | None) -> int:
    if timeout is None:
        return -1
    if timeout < 0:
        raise InvalidArgument(f"timeout {timeout} must be >= 0 seconds (or None to wait forever)")
    return min(int(timeout * 1000 + 0.5), 2**31 - 1)


class Board:
    """An open board. Use open_board(); close it (or use `with`)."""

    def __init__(self, handle: Any, uri: str) -> None:
        self._ffi, self._lib = _ffi.load()
        self._h = handle
        self._uri = uri
        self._block = 0
        self._tick = -1
        self._rx_views: list[np.ndarray] = []
        self._tx_views: list[np.ndarray] = []
        self._evbuf = self._ffi.new("vb_event_t[]", _EVBUF)
        self._tickp = self._ffi.new("uint64_t *")
        _open_handles.add(self)
        try:
            self.info, self.spans, self.channels = self._describe()
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------ lifecycle
    @property
    def closed(self) -> bool:
        return self._h is None

    @property
    def uri(self) -> str:
        return self._uri

    def close(self) -> None:
        """Release the board (and the host claim). Views from rx/tx die with it."""
        h, self._h = self._h, None
        if h is not None:
            self._rx_views = self._tx_views = []
            self._lib.vb_close(h)

    def __enter__(self) -> Board:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_h", None) is not None:
            warnings.warn(f"{self!r} was not closed; close it or use `with open_board(...)`",
                          ResourceWarning, stacklevel=2)
            self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else (f"started, block {self._block}" if self._block else "open")
        return f"<Board {self._uri} ({state})>"

    # ------------------------------------------------------------ helpers
    def _handle(self) -> Any:
        if self._h is None:
            raise BoardError(f"board {self._uri} is closed")
        return self._h

    def _err(self) -> str:
        return _ffi.text(self._ffi, self._lib.vb_errmsg(self._h))

    def _call(self, rc: int) -> int:
        if rc < 0:
            _check(rc, self._err())
        return rc

    def _describe(self) -> tuple[BoardInfo, list[SpanInfo], list[ChannelInfo]]:
        ffi, lib, h = self._ffi, self._lib, self._h
        bi = ffi.new("vb_board_info_t *")
        self._call(lib.vb_board_info(h, bi))
        info = BoardInfo(_ffi.text(ffi, bi.name), self._uri, _ffi.text(ffi, bi.driver),
                         name_of(LAWS, bi.law), bi.nspans, bi.nchan, name_of(CLOCKS, bi.clock))
        si = ffi.new("vb_span_info_t *")
        spans = []
        for s in range(bi.nspans):
            self._call(lib.vb_span_info(h, s, si))
            spans.append(SpanInfo(si.index, name_of(SPAN_KINDS, si.kind), si.nchan, si.first_chan,
                                  name_of(FRAMINGS, si.framing), name_of(CODINGS, si.coding),
                                  bool(si.crc4), si.timing))
        ci = ffi.new("vb_chan_info_t *")
        chans = []
        for c in range(bi.nchan):
            self._call(lib.vb_chan_info(h, c, ci))
            chans.append(ChannelInfo(ci.index, ci.span, ChannelType(ci.type), ci.timeslot))
        return info, spans, chans

    def clock_start(self) -> dt.datetime | None:
        """The card's own wall clock at tick 0, or None: the card keeps real time (use the host's).

        A simulated card (hwsim) runs on simulated time: its scenario's day,
        not today. Tick t is at clock_start() + t * block / 8000 s; the
        datetime carries the simulated zone's UTC offset."""
        bi = self._ffi.new("vb_board_info_t *")
        self._call(self._lib.vb_board_info(self._handle(), bi))
        if not bi.sim_clock:
            return None
        zone = dt.timezone(dt.timedelta(seconds=bi.clock_utcoff_s))
        return dt.datetime(1970, 1, 1, tzinfo=dt.UTC).astimezone(zone) + \
            dt.timedelta(microseconds=bi.clock_start_us)

    # ------------------------------------------------------------ ticks
    @property
    def block(self) -> int:
        """Samples per channel per tick (0 until start())."""
        return self._block

    @property
    def tick(self) -> int:
        """The current tick (-1 before the first wait_tick)."""
        return self._tick

    def start(self, block: int = 160) -> None:
        """Claim the board as its host (BoardBusy if another host has it)."""
        block = _index(block, "block")
        h = self._handle()
        self._call(self._lib.vb_start(h, _c_int(block)))
        rxp = self._ffi.new("int16_t **")
        txp = self._ffi.new("int16_t **")
        stride = self._ffi.new("size_t *")
        self._call(self._lib.vb_rings(h, self._ffi.cast("const int16_t **", rxp), txp, stride))
        nchan, slots = self.info.nchan, self._lib.VB_RING_SLOTS
        nbytes = slots * stride[0] * 2
        strides = (stride[0] * 2, block * 2, 2)
        rx = np.ndarray((slots, nchan, block), np.int16, self._ffi.buffer(rxp[0], nbytes), 0, strides)
        tx = np.ndarray((slots, nchan, block), np.int16, self._ffi.buffer(txp[0], nbytes), 0, strides)
        rx.flags.writeable = False
        self._rx_views = [rx[i] for i in range(slots)]
        self._tx_views = [tx[i] for i in range(slots)]
        self._block = block

    def wait_tick(self, timeout: float | None = 1.0) -> int:
        """Wait for the next rx block; BoardLost if the device died, TickTimeout if none came."""
        h = self._handle()
        rc = self._lib.vb_wait_tick(h, _timeout_ms(timeout), self._tickp)
        if rc < 0:
            _check(rc, self._err())
        t: int = self._tickp[0]
        self._tick = t
        return t

    @property
    def rx(self) -> np.ndarray:
        """int16[nchan, block] received this tick (read-only view of the ring)."""
        if self._tick < 0 or self._h is None:
            raise BoardError(f"no tick on {self._uri}: call start() and wait_tick() first "
                             f"(or the board is closed)")
        return self._rx_views[self._tick & 7]

    @property
    def tx(self) -> np.ndarray:
        """int16[nchan, block] to send this tick (writable view; zeroed at wait_tick)."""
        if self._tick < 0 or self._h is None:
            raise BoardError(f"no tick on {self._uri}: call start() and wait_tick() first "
                             f"(or the board is closed)")
        return self._tx_views[self._tick & 7]

    def commit(self) -> None:
        """tx of this tick is written (lockstep: the device may advance)."""
        rc = self._lib.vb_commit(self._handle())
        if rc < 0:
            _check(rc, self._err())

    def events(self) -> list[Event]:
        """Events up to the current tick, oldest first (drained)."""
        h = self._handle()
        out: list[Event] = []
        kinds = _EVENT_KINDS
        while True:
            n = self._lib.vb_read_events(h, self._evbuf, _EVBUF)
            if n <= 0:
                if n < 0:
                    _check(n, self._err())
                return out
            for e in self._evbuf[0:n]:
                out.append(Event(e.tick, kinds[e.kind], e.chan, e.span, e.value))
            if n < _EVBUF:
                return out

    # ------------------------------------------------------------ control
    def _chan(self, chan: Any) -> int:
        return _c_int(_index(chan, "channel"))

    def hook(self, chan: int, state: str) -> None:
        """FXO: go offhook, onhook, or flash."""
        try:
            code = HOOK_STATES[state]
        except (KeyError, TypeError):
            raise InvalidArgument(f"hook state {state!r} for channel {chan} on {self._uri}: "
                                  f"expected {', '.join(HOOK_STATES)}") from None
        self._call(self._lib.vb_hook(self._handle(), self._chan(chan), code))

    def ring(self, chan: int, on: bool) -> None:
        """FXS: ringing voltage on or off."""
        self._call(self._lib.vb_ring(self._handle(), self._chan(chan), 1 if on else 0))

    def set_cas(self, chan: int, abcd: int) -> None:
        """E1 CAS: the ABCD bits sent on chan (A is bit 3)."""
        self._call(self._lib.vb_set_cas(self._handle(), self._chan(chan), _c_int(_index(abcd, "abcd"))))

    def xconnect(self, a: int, b: int) -> None:
        """Cross-connect a and b on the card (each hears the other's line)."""
        self._call(self._lib.vb_xconnect(self._handle(), self._chan(a), self._chan(b)))

    def xdisconnect(self, a: int) -> None:
        self._call(self._lib.vb_xconnect(self._handle(), self._chan(a), -1))

    def loopback(self, chan: int, on: bool) -> None:
        """The card returns chan's tx as its rx (next tick on)."""
        self._call(self._lib.vb_loopback(self._handle(), self._chan(chan), 1 if on else 0))

    # ------------------------------------------------------------ status
    def channel_status(self, chan: int) -> dict[str, Any]:
        """Status registers of one channel (what `voiceboard scan` shows)."""
        st = self._ffi.new("vb_chan_status_t *")
        self._call(self._lib.vb_chan_status(self._handle(), self._chan(chan), st))
        cas = self.channels[chan].type == ChannelType.E1_CAS
        return {
            "hook": bool(st.hook),          # True: offhook
            "ringing": bool(st.ringing),
            "cas_rx": st.cas_rx if cas else None,
            "cas_tx": st.cas_tx if cas else None,
            "xconnect": st.xconnect if st.xconnect >= 0 else None,
            "loopback": bool(st.loopback),
            "battery": bool(st.battery),
            "reversed": bool(st.reversed),
            "counters": {name: st.counters[i] for i, name in enumerate(CHAN_COUNTERS)},
        }

    def span_status(self, span: int) -> dict[str, Any]:
        """Alarms (set of LOS/LOF/AIS/RAI) and line error counters of one span."""
        st = self._ffi.new("vb_span_status_t *")
        self._call(self._lib.vb_span_status(self._handle(), _c_int(_index(span, "span")), st))
        return {
            "alarms": alarm_names(st.alarms),
            "counters": {name: st.counters[i] for i, name in enumerate(SPAN_COUNTERS)},
        }

    def stats(self) -> dict[str, int]:
        """ticks (produced by the card), late_ticks, overruns, underruns, events_lost."""
        st = self._ffi.new("vb_stats_t *")
        self._call(self._lib.vb_stats(self._handle(), st))
        return {"ticks": st.ticks, "late_ticks": st.late_ticks, "overruns": st.overruns,
                "underruns": st.underruns, "events_lost": st.events_lost}


def open_board(uri: str) -> Board:
    """Attach to the board at uri (sim://NAME; dahdi://... is not built yet)."""
    if not isinstance(uri, str):
        raise InvalidArgument(f"board URI must be a string like 'sim://NAME', not {type(uri).__name__}")
    ffi, lib = _ffi.load()
    err = ffi.new("char[]", 512)
    out = ffi.new("vb_board_t **")
    rc = lib.vb_open(uri.encode("utf-8", "replace"), out, err, 512)
    if rc < 0:
        _check(rc, _ffi.text(ffi, err))
    return Board(out[0], uri)


def list_boards() -> list[str]:
    """URIs of the simulated boards that a live device serves right now."""
    try:
        names = sorted(os.listdir(_SHM_DIR))
    except OSError:
        return []
    found = []
    for n in names:
        if not n.startswith(_SHM_PREFIX):
            continue
        uri = "sim://" + n[len(_SHM_PREFIX):]
        try:
            open_board(uri).close()
        except BoardError:
            continue            # stale or half-made: not a board
        found.append(uri)
    return found
