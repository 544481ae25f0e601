"""The media engine: one tick per block for all channels, on its own thread.

Each tick: read rx of every channel -> batch detectors -> events to the
control plane -> tx = tones + prompts + DTMF + bridged and conference audio
-> recording capture (one kernel call, `voiceserver.recording.recorder.Recorder.capture`) -> commit.
Every per-sample step is one kernel call over all channels; Python work in
a tick grows with the events and commands of that tick, never with the
channel count.

The control plane talks to the engine only through `Engine` methods, which
queue commands (thread-safe); they take effect at the next tick boundary,
or within the current tick when issued while the engine waits for the
control plane to handle that tick's events (lockstep: that wait makes a
run deterministic, the same seed giving the same calls tick for tick).
"""
from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from boarddrv import BoardError, BoardLost, Event, EventKind
from dsp.callerid import CallerIdDetector
from dsp.dtmf import DtmfDetector, DtmfGenerator
from dsp.level import VoiceActivityDetector
from dsp.mix import AudioBank, Player, Segment, add_rows
from dsp.tones import CallProgressDetector, ToneGenerator, TonePlan
from voiceserver.core import linestate

RATE = 8000


@dataclass(frozen=True)
class PlayDone:
    """A channel's playlist finished (not sent when it was stopped)."""
    chan: int
    token: Any


@dataclass(frozen=True)
class DtmfSent:
    """The digits queued with send_dtmf on a channel have all been sent."""
    chan: int


@dataclass(frozen=True)
class Timer:
    chan: int
    token: Any


@dataclass(frozen=True)
class EngineStopped:
    """The engine left its loop; `error` says why when it was not asked to.

    `lost`: the board was lost (device gone, card removed): only that
    board's calls end, and the server opens it again when it is back."""
    error: str | None
    lost: bool = False


@dataclass
class EngineStats:
    ticks: int = 0
    late_ticks: int = 0          # ticks whose processing overran the block period (real time)
    worst_tick_ms: float = 0.0
    events: int = 0
    commands: int = 0
    hardware_bridges: int = 0    # bridges the card switched (TDM cross-connect)
    busy_seconds: float = 0.0    # thread CPU spent in the tick loop
    wall_seconds: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return dict(self.__dict__)


@dataclass
class _Bridges:
    """Audio routing done in the engine: each dst hears the sum of its sources.

    A two-party bridge is two rows (a hears b, b hears a); a conference (a
    supervisor listening, whispering, barged in, or three parties and more)
    gives a channel several sources. The rows are flattened into two index
    arrays when they change, so a tick mixes every row of every bridge and
    conference in one kernel call (`dsp.mix.add_rows`)."""
    pairs: dict[int, tuple[int, ...]] = field(default_factory=dict)  # dst -> its sources
    dst: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    src: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))

    def set(self, dst: int, src: int | None) -> None:
        self.hear(dst, () if src is None else (src,))

    def hear(self, dst: int, srcs: tuple[int, ...]) -> None:
        """`dst` hears exactly `srcs` (empty: no bridged audio)."""
        if srcs:
            self.pairs[dst] = tuple(srcs)
        else:
            self.pairs.pop(dst, None)
        rows = [(d, s) for d, ss in self.pairs.items() for s in ss]
        self.dst = np.fromiter((d for d, _ in rows), np.int32, len(rows))
        self.src = np.fromiter((s for _, s in rows), np.int32, len(rows))


Handler = Callable[[int, list], None]


class Engine:
    """Owns a started board and the per-channel DSP state for all its channels."""

    def __init__(self, board: Any, bank: AudioBank, *, zone: str = "cn",
                 handler: Handler, sync: bool = True, hardware_bridging: bool = True,
                 dtmf_level_dbm0: tuple[float, float] = (-9.0, -11.0),
                 recorder: Any = None, tick_base: int = 0) -> None:
        self.board = board
        self.nchan = board.info.nchan
        self.block = board.block
        self.bank = bank
        self.handler = handler
        self.sync = sync
        plan = TonePlan.load(zone)
        self.dtmf_rx = DtmfDetector(self.nchan)
        self.dtmf_tx = DtmfGenerator(self.nchan, level_dbm0=dtmf_level_dbm0)
        self.progress = CallProgressDetector(self.nchan, plan)
        self.vad = VoiceActivityDetector(self.nchan)
        # Caller ID costs a demodulator per channel: armed only on analog
        # lines while idle or ringing (arm_callerid), fed our own DTMF digits.
        self.callerid = CallerIdDetector(self.nchan, dtmf=False, armed=False)
        self._dtmf_sending: set[int] = set()
        self.tones = ToneGenerator(self.nchan, plan)
        self.player = Player(self.nchan, bank)
        self._tokens: list[Any] = [None] * self.nchan
        self._bridges = _Bridges()
        self.hardware_bridging = hardware_bridging
        self._xconnected: dict[int, int] = {}
        self._commands: deque[Callable[[], object]] = deque()
        self._timers: list[tuple[int, int, int, Any]] = []
        self._seq = itertools.count()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._later: list = []  # PlayDone found while writing tx: delivered after commit
        # voiceserver.recording.recorder.Recorder of this board (set before start): capture(tick, rx, tx)
        # once per tick, after tx is complete and before commit.
        self.recorder = recorder
        self.stats = EngineStats()
        # The server's ticks for this board = the card's + tick_base: a board opened
        # again after a loss starts counting at 0, the server's clock goes on.
        self.tick_base = tick_base
        self.tick = tick_base
        self.released: list = []   # lines released at a clean stop (voiceserver.core.linestate)
        self.r2mf: Any = None      # voiceserver.core.e1.R2Media, made by the first E1 R2 command

    # -- control plane side (any thread) ---------------------------------
    def play(self, chan: int, segments: list[Segment], *, token: Any = None,
             gain_db: float = 0.0, loop: bool = False) -> None:
        def cmd() -> None:
            self._tokens[chan] = token
            self.player.play(chan, segments, gain_db=gain_db, loop=loop)
        self._queue(cmd)

    def stop_play(self, chan: int) -> None:
        self._queue(lambda: self.player.stop(chan))

    def tone(self, chan: int, name: str | None) -> None:
        """Play a call-progress tone of the zone (None stops it)."""
        self._queue(lambda: self.tones.stop(chan) if name is None else self.tones.play(chan, name))

    def arm_callerid(self, chan: int, on: bool) -> None:
        self._queue(lambda: self.callerid.arm(chan) if on else self.callerid.disarm(chan))

    def send_dtmf(self, chan: int, digits: str) -> None:
        """Dial digits on a channel; a DtmfSent event follows the last one."""
        def cmd() -> None:
            self.dtmf_tx.send(chan, digits)
            self._dtmf_sending.add(chan)
        self._queue(cmd)

    def bridge(self, a: int, b: int) -> None:
        """Each side hears the other.

        The card's TDM cross-connect when it has one (no per-tick cost, and
        the host still receives both lines for detection and recording),
        else the engine mixes each side's rx into the other's tx.
        """
        def cmd() -> None:
            self._bridges.set(a, None)     # a conference's rows (a supervisor's) end here
            self._bridges.set(b, None)
            if self.hardware_bridging:
                try:
                    self.board.xconnect(a, b)
                    self._xconnected[a] = b
                    self._xconnected[b] = a
                    self.stats.hardware_bridges += 1
                    return
                except BoardError:
                    pass  # the card cannot switch these two: mix in the engine
            self._bridges.set(a, b)
            self._bridges.set(b, a)
        self._queue(cmd)

    def unbridge(self, a: int) -> None:
        def cmd() -> None:
            peer = self._xconnected.pop(a, None)
            if peer is not None:
                self._xconnected.pop(peer, None)
                self.board.xdisconnect(a)
                return
            srcs = self._bridges.pairs.get(a, ())
            self._bridges.set(a, None)
            if len(srcs) == 1 and self._bridges.pairs.get(srcs[0]) == (a,):
                self._bridges.set(srcs[0], None)
        self._queue(cmd)

    def mix(self, rows: dict[int, tuple[int, ...]]) -> None:
        """Each channel of `rows` hears the sum of its sources (a conference: a supervisor
        listening, whispering or barged in; an empty tuple: nothing bridged).

        Always mixed in the engine: a card's cross-connect joins two lines only, so one
        between these channels is undone first (both sides are in `rows`)."""
        def cmd() -> None:
            for chan in rows:
                peer = self._xconnected.pop(chan, None)
                if peer is not None:
                    self._xconnected.pop(peer, None)
                    self.board.xdisconnect(chan)
            for chan, srcs in rows.items():
                self._bridges.hear(chan, srcs)
        self._queue(cmd)

    def bridged_with(self, chan: int) -> int | None:
        """The channel `chan` hears (hardware or engine bridge), for status views."""
        peer = self._xconnected.get(chan)
        if peer is not None:
            return peer
        srcs = self._bridges.pairs.get(chan)
        return srcs[0] if srcs else None

    def call_at(self, tick: int, chan: int, token: Any) -> None:
        """A Timer event at `tick` (simulated time: deterministic in lockstep)."""
        self._queue(lambda: heapq.heappush(self._timers, (tick, next(self._seq), chan, token)))

    def board_call(self, method: str, *args: Any) -> None:
        """hook/ring/set_cas/xconnect/... on the board, from the engine thread."""
        self._queue(lambda: getattr(self.board, method)(*args))

    def mf_listen(self, chan: int, forward: bool | None) -> None:
        """E1 R2: run the MF receiver of one set on `chan` (None: stop); R2MfEvents follow."""
        self._queue(lambda: self._r2().listen(chan, forward))

    def mf_send(self, chan: int, signal: int, forward: bool) -> None:
        """E1 R2: send MF signal 1-15 on `chan` until the next mf_send (0: silence)."""
        self._queue(lambda: self._r2().send(chan, signal, forward))

    def _r2(self) -> Any:
        if self.r2mf is None:
            from voiceserver.core.e1 import R2Media
            self.r2mf = R2Media(self.nchan)
        return self.r2mf

    def _queue(self, cmd: Callable[[], object]) -> None:
        self._commands.append(cmd)

    # -- the loop --------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="media-engine", daemon=True)
        self._thread.start()

    def request_stop(self) -> None:
        """Ask the tick loop to end after the tick in progress (returns at once)."""
        self._stop.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _apply_commands(self) -> None:
        while self._commands:
            self._commands.popleft()()
            self.stats.commands += 1

    def _run(self) -> None:
        error: str | None = None
        lost = False
        period = self.block / RATE
        cpu0, wall0 = time.thread_time(), time.monotonic()
        try:
            while not self._stop.is_set():
                try:
                    tick = self.board.wait_tick(timeout=0.5) + self.tick_base
                except TimeoutError:
                    continue
                t0 = time.monotonic()
                self.tick = tick
                self.run_tick(tick)
                spent = time.monotonic() - t0
                self.stats.worst_tick_ms = max(self.stats.worst_tick_ms, spent * 1000.0)
                if spent > period:
                    self.stats.late_ticks += 1
            self._release_lines()
        except BoardLost as exc:
            error = str(exc)
            lost = True
        except Exception as exc:  # noqa: BLE001 - reported to the control plane, not swallowed
            error = f"media engine failed: {exc!r}"
            raise
        finally:
            self.stats.busy_seconds = time.thread_time() - cpu0
            self.stats.wall_seconds = time.monotonic() - wall0
            self._deliver(self.tick, [EngineStopped(error, lost)])

    def _release_lines(self, ticks: int = 10) -> None:
        """A clean stop: the commands still queued (the calls' hang-ups), then every
        line the card still has seized released, and ticks until the card has read
        them (it reads commands at the start of a tick: wait for one that began
        after they were sent). The board is closed after this."""
        self._apply_commands()
        self.released = linestate.release_all(self.board)
        sent = self.board.stats()["ticks"]     # the tick the card may be in now was this one
        for _ in range(ticks):
            try:
                tick = self.board.wait_tick(timeout=0.5)
            except TimeoutError:
                return                         # the card is not ticking: nothing reads them
            self.board.commit()
            if tick > sent:
                return

    def run_tick(self, tick: int) -> None:
        board = self.board
        rx = board.rx
        self._apply_commands()
        events: list = board.events()
        digits = self.dtmf_rx.rx(rx)
        events += digits
        events += self.progress.rx(rx)
        events += self.vad.rx(rx)
        events += self.callerid.rx(rx)
        events += self.callerid.dtmf_events(digits, self.callerid.pos)  # O(digits + open frames)
        if self.r2mf is not None:   # E1 R2: the channels in register signalling
            events += self.r2mf.rx(rx)
        while self._timers and self._timers[0][0] <= tick:
            _, _, chan, token = heapq.heappop(self._timers)
            events.append(Timer(chan, token))
        if events:
            self.stats.events += len(events)
            self._deliver(tick, events)
            self._apply_commands()
        tx = board.tx
        tx.fill(0)
        self.tones.tx(tx)
        for chan in self.player.tx(tx):
            self._later.append(PlayDone(chan, self._tokens[chan]))
        self.dtmf_tx.tx(tx)
        if self.r2mf is not None:
            self.r2mf.tx(tx)
        if self._dtmf_sending:  # O(channels dialling), not O(channels)
            for chan in [c for c in self._dtmf_sending if not self.dtmf_tx.busy(c)]:
                self._dtmf_sending.discard(chan)
                self._later.append(DtmfSent(chan))
        if len(self._bridges.dst):
            add_rows(tx, rx, self._bridges.dst, self._bridges.src)
        if self.recorder is not None:    # tx is complete: what the lines get this tick
            self.recorder.capture(tick, rx, tx)
        board.commit()
        self.stats.ticks += 1
        if self._later:
            later, self._later = self._later, []
            self._deliver(tick, later)

    def _deliver(self, tick: int, events: list) -> None:
        self.handler(tick, events)


def is_board_event(ev: Any) -> bool:
    return isinstance(ev, Event)


__all__ = ["Engine", "EngineStats", "PlayDone", "DtmfSent", "Timer", "EngineStopped", "is_board_event",
           "Event", "EventKind"]
