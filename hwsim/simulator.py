"""The simulator: each configured board as a SimDevice, served by a world.

`Simulator(config, scenario).start()` creates every board (they exist when
start() returns) and serves each on its own thread: wait for a host, then
per tick read the host's commands and tx, step the board's world, write rx,
post events, publish. The same class runs inside `voiceboard hwsim` and
inside unit tests.

Time: a board's world starts when its first host calls start(); scenario
time 0 is that moment, and the world counts the device's ticks from there.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from boarddrv.events import ChannelType
from hwsim.cable import CableEnd, CableLink
from hwsim.calls import CallRecord
from hwsim.config import BoardConfig, SimConfig, load_config
from hwsim.report import ReportWriter
from hwsim.scenario import Scenario, load_scenario
from hwsim.simtime import SimClock
from hwsim.world import AddCounter, BoardWorld, HostCommand, Post, Remove, SetAlarms

# Events the C device emits itself when hwsim changes a register.
_DEVICE_MADE = {"ALARM_SET", "ALARM_CLEAR"}


class Simulator:
    """Serve the boards of `config` with the world of `scenario`."""

    def __init__(self, config: SimConfig | str | os.PathLike[str],
                 scenario: Scenario | str | os.PathLike[str] | None = None,
                 *, clock: str = "lockstep", report_dir: str | os.PathLike[str] | None = None,
                 seed: int | None = None, keep_audio: bool | None = None,
                 callerid_audio: dict[str, Callable[..., np.ndarray]] | None = None) -> None:
        self.config = config if isinstance(config, SimConfig) else load_config(config)
        if scenario is not None and not isinstance(scenario, Scenario):
            scenario = load_scenario(scenario)
        self.scenario = scenario
        if scenario is not None and seed is not None:
            scenario.seed = seed
        if scenario is not None:
            known = {b.name for b in self.config.boards}
            for name, where in scenario.targets():
                if name not in known:
                    raise where.error(f"no board {name!r} in {self.config.file} "
                                      f"(boards: {', '.join(sorted(known))})")
        if scenario is not None:     # scenario vs config errors now, not when a host arrives
            for b in self.config.boards:
                BoardWorld(b, SimClock(160, self.config.start), scenario.for_board(b.name))
        if clock not in ("lockstep", "realtime"):
            raise ValueError(f"clock must be lockstep or realtime, got {clock!r}")
        self.clock = clock
        self.start_time: datetime = (scenario.start if scenario is not None and scenario.start
                                     else self.config.start)
        if self.start_time.tzinfo is None:   # a naive start from the Python API: UTC, as in the files
            self.start_time = self.start_time.replace(tzinfo=UTC)
        self.keep_audio = keep_audio if keep_audio is not None else report_dir is None
        self.report = ReportWriter(report_dir, self.keep_audio) if report_dir is not None else None
        self.callerid_audio = callerid_audio
        self.devices: dict[str, Any] = {}
        self.worlds: dict[str, BoardWorld] = {}
        self.calls: list[CallRecord] = []
        self.errors: list[str] = []      # a board's loop failed
        self.notes: list[str] = []       # things worth knowing that are not failures
        self._calls_lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._ended: set[str] = set()
        self._cond = threading.Condition()
        self.ticks: dict[str, int] = {}
        # cables between spans of two boards: one link each, an end per board
        self.cable_ends: dict[str, list[CableEnd]] = {b.name: [] for b in self.config.boards}
        links: dict[tuple[tuple[str, int], tuple[str, int]], CableLink] = {}
        for b in self.config.boards:
            for span, other in sorted(b.linked.items()):
                here = (b.name, span)
                first, second = sorted([here, other])
                link = links.setdefault((first, second), CableLink(f"{first[0]}:{first[1]}-{second[0]}:{second[1]}"))
                self.cable_ends[b.name].append(CableEnd(link, 0 if here == first else 1, span))

    @property
    def uris(self) -> dict[str, str]:
        return {name: f"sim://{name}" for name in self.devices}

    def ready_info(self) -> dict[str, Any]:
        """What the ready file holds: boards and URIs, clock, simulated start."""
        return {"boards": self.uris, "clock": self.clock, "start": self.start_time.isoformat(),
                "pid": os.getpid(), "scenario": self.scenario.file if self.scenario else None}

    # ------------------------------------------------------------ lifecycle
    def start(self) -> Simulator:
        """Create every board, then serve each on a thread. Boards exist on return."""
        from boarddrv.simdev import ChanSpec, SimDevice, SpanSpec
        try:
            for b in self.config.boards:
                spans = [SpanSpec(kind=s.kind, nchan=s.nchan, framing=s.framing or None,
                                  coding=s.coding or None, crc4=s.crc4, timing=s.timing)
                         for s in b.spans]
                chans = [ChanSpec(type=ChannelType[c.type], span=c.span, timeslot=c.timeslot)
                         for c in b.channels]
                dev = self.devices[b.name] = SimDevice.create(b.name, spans, chans, law=b.law, clock=self.clock)
                dev.set_clock(self.start_time)   # hosts run their schedules on the simulated day
        except BaseException:
            self._close_devices()
            raise
        for b in self.config.boards:
            t = threading.Thread(target=self._serve, args=(b,), name=f"hwsim-{b.name}", daemon=True)
            self._threads.append(t)
            t.start()
        return self

    def stop(self, timeout: float = 5.0) -> str | None:
        """Stop serving, close the calls in progress, unlink the boards, write the
        report. Returns the report path (or None without --report)."""
        self._stop.set()
        for t in self._threads:
            t.join(timeout)
        for w in self.worlds.values():
            w.finish()
        self._close_devices()
        if self.report is not None:
            return self.report.close(self.summary())
        return None

    def _close_devices(self) -> None:
        for dev in self.devices.values():
            dev.close()

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the scenario's duration has passed on every board (or a board was removed)."""
        with self._cond:
            return self._cond.wait_for(
                lambda: len(self._ended) == len(self.config.boards) or self._stop.is_set(), timeout)

    @property
    def ended(self) -> bool:
        return len(self._ended) == len(self.config.boards)

    def summary(self) -> dict[str, Any]:
        sc = self.scenario
        return {"config": self.config.file, "scenario": sc.file if sc else None,
                "seed": sc.seed if sc else None, "clock": self.clock,
                "start": self.start_time.isoformat(), "boards": self.uris,
                "ticks": dict(self.ticks), "errors": list(self.errors), "notes": list(self.notes),
                "cable_underruns": {e.link.name: sum(e.link.underruns)
                                    for ends in self.cable_ends.values() for e in ends},
                "block": {n: w.clock.block for n, w in self.worlds.items()}}

    # ------------------------------------------------------------ serving
    def _call_end(self, rec: CallRecord) -> None:
        with self._calls_lock:
            self.calls.append(rec)
        if self.report is not None:
            self.report.add(rec)

    def _mark_ended(self, name: str) -> None:
        with self._cond:
            self._ended.add(name)
            self._cond.notify_all()

    def _serve(self, cfg: BoardConfig) -> None:
        dev = self.devices[cfg.name]
        try:
            self._serve_loop(cfg, dev)
        except Exception as exc:  # a dying board must say why, not vanish silently
            import traceback
            self.errors.append(f"board {cfg.name}: {exc!r}\n{traceback.format_exc()}")
            self._mark_ended(cfg.name)

    def _serve_loop(self, cfg: BoardConfig, dev: Any) -> None:
        world: BoardWorld | None = None
        wtick = 0
        removed = False
        while not self._stop.is_set() and not removed:
            if not dev.wait_host(0.1):
                continue
            cabled = False          # this host's cables are attached (a new host attaches them again)
            while not self._stop.is_set():
                tick = dev.next_tick(0.1)
                if tick is None:
                    if not dev.host_attached:
                        for end in self.cable_ends[cfg.name]:
                            end.link.detach(end.side)     # the other board hears nothing now
                        break
                    continue
                if world is None or world.clock.block != dev.block:
                    if world is not None:   # a new host chose another block: a new world
                        world.finish()
                        self.notes.append(f"board {cfg.name}: host changed block to {dev.block}; "
                                           f"world restarted at tick {wtick}")
                    # Device tick t is at start + t blocks, for the host too (Board.clock_start).
                    begin = self.start_time + timedelta(seconds=tick * dev.block / 8000)
                    world = BoardWorld(cfg, SimClock(dev.block, begin),
                                       self.scenario.for_board(cfg.name) if self.scenario else None,
                                       callerid_audio=self.callerid_audio, on_call_end=self._call_end,
                                       cable_ends=self.cable_ends[cfg.name])
                    self.worlds[cfg.name] = world
                    wtick = 0
                    cabled = False
                if not cabled:
                    for end in world.cable_ends:
                        end.link.attach(end.side, dev.block)
                    cabled = True
                for end in world.cable_ends:        # keep in step with the board at the other end
                    end.link.wait_ready(end.side, dev.block, self._stop)
                wtick += 1
                cmds = [HostCommand(c.kind.name, c.chan, c.value) for c in dev.commands()]
                stopped = any(c.kind == "STOP" for c in cmds)
                for out in world.step(wtick, dev.tx, cmds, dev.rx):
                    if isinstance(out, Post):
                        if out.kind not in _DEVICE_MADE:
                            dev.post(out.kind, out.chan, out.value, out.span)
                    elif isinstance(out, SetAlarms):
                        dev.set_alarms(out.span, out.bits)
                    elif isinstance(out, AddCounter):
                        dev.add_counter(out.span, out.name, out.n)
                    elif isinstance(out, Remove):
                        removed = True
                if removed:
                    dev.remove()
                    world.finish()
                    self._mark_ended(cfg.name)
                    break
                dev.publish()
                self.ticks[cfg.name] = wtick
                if world.ended and cfg.name not in self._ended:
                    self._mark_ended(cfg.name)
                if stopped:
                    break
