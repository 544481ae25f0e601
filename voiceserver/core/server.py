"""The voice server: boards, media engines, channels, IVR calls and the event bus.

Threads: one media engine per board (the tick loop) and the asyncio loop
(this control plane). An engine hands each tick's events to `_handle` on
the loop; in lockstep (`sync=True`) it waits until they are handled, so a
simulated run is the same tick for tick from the same seed.

Time: the control plane's clock is the board's tick count. `now_ms` is the
milliseconds since the board's tick 0; `wallclock` adds the board's clock
start (schedules, call records and file names use it): a simulated card's
own clock (`Board.clock_start`: hwsim's scenario day), else the host's clock
when the server was made; an explicit `start_time` overrides both.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from boarddrv import BoardError, ChannelType, Event, EventKind, open_board
from dsp.callerid import CallerIdEvent
from dsp.dtmf import DtmfEvent
from dsp.level import SpeechEvent
from dsp.mix import AudioBank, Segment
from dsp.tones import ToneEvent
from voiceserver.ivr import flows as ivrmod
from voiceserver.core import channels as chanmod
from voiceserver.core import linestate, sdnotify
from voiceserver.ivr import saynumber
from voiceserver.core.channels import Call, Channel, FxoTrunk, FxsPhone, State
from voiceserver.config.server import ServerConfig
from voiceserver.acd.link import AcdLink, AgentConflict, default_settings
from voiceserver.ivr.blacklist import normalize_number
from voiceserver.core.callids import CallIds, default_server_id
from voiceserver.core.calltotals import CallTotals
from voiceserver.core.engine import DtmfSent, Engine, EngineStopped, PlayDone, Timer
from voiceserver.core.events import ServerEventKind, EventBus
from voiceserver.core.masking import MASK, SecretKeys, masked, pause_menus
from voiceserver.core.runtime import RATE, BoardRuntime, CallRecord, Key, Leg
from voiceserver.ivr.prompts import PromptLibrary
from voiceserver.recording.service import RecordingService
from voiceserver.recording.rules import RecordingRules

log = logging.getLogger("voiceserver")

ALARM_NAMES = {1: "LOS", 2: "LOF", 4: "AIS", 8: "RAI"}
RECENT_RECORDS = 1000   # finished calls kept in memory (VoiceServer.records); all: the call database
REOPEN_FIRST = 0.25      # seconds before the first try to open a lost board again
REOPEN_MAX = 2.0         # ... doubling up to this (a failed open is one cheap shm_open)
REOPEN_LOG_EVERY = 60.0  # a board still lost is logged again at most this often (or when why changes)


class VoiceServer:
    def __init__(self, cfg: ServerConfig, library: PromptLibrary, *, sync: bool = True,
                 block: int = 160, start_time: dt.datetime | None = None,
                 hardware_bridging: bool = True, status_port: int | None = None,
                 rules_poll: float = 5.0, recent_records: int = RECENT_RECORDS) -> None:
        self.cfg = cfg
        self.library = library
        self.sync = sync
        self.block = block
        self.hardware_bridging = hardware_bridging
        self.status_port = status_port   # loopback status/admin API; None: none, 0: any free port
        self.start_time = start_time or dt.datetime.now(dt.timezone.utc)
        self._start_given = start_time is not None   # else each board's clock (see _board_clock)
        self.bus = EventBus()
        self.bank = AudioBank()
        # finished calls: the most recent in memory, sums of all (every one: the call database)
        self.records: deque[CallRecord] = deque(maxlen=recent_records)
        self.totals = CallTotals()
        # call ids SERVER-RUN-SEQ: the run comes from the call database at start (voiceserver.core.callids)
        self.server_id = (cfg.storage.server_id if cfg.storage is not None else None) or default_server_id()
        self.call_ids: CallIds | None = None
        self.boards: list[BoardRuntime] = []
        self.legs: dict[tuple[int, int], Leg] = {}
        self.acd: AcdLink | None = None                # queues and agents, once boards are open
        self.error: str | None = None
        self.reload_error: str | None = None   # why the last reload was rejected
        self._reloads: set[asyncio.Task] = set()   # reload_soon's tasks in flight
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None
        self._segments: dict[tuple[str, str], Segment] = {}
        self._tick = 0
        self._stopping = False   # stop(): calls end, events are no longer acted on
        # recordings, call rows in SQLite, voicemail files: with [storage] (or [recording]);
        # rules_poll: seconds between looks at the recording rules file (0: only on reload)
        self.recording: RecordingService | None = (
            RecordingService(self, cfg.storage, cfg.recording, poll_interval=rules_poll)
            if cfg.storage is not None else None)
        self._load_bank()

    # -- setup -------------------------------------------------------------
    def _load_bank(self) -> None:
        """Every prompt of every language goes into one bank once, at start."""
        for lang in self.cfg.prompts.languages:
            for name in self.library.names(lang):
                self._segments[(lang, name)] = self.bank.add(self.library.get(name, lang))
        if "default" in self.library.moh_names():
            self._segments[("moh", "default")] = self.bank.add(self.library.music_on_hold("default"))

    def segment(self, name: str, lang: str) -> Segment:
        seg = self._segments.get((lang, name))
        if seg is None:  # a fallback language (checked at config load)
            key = (lang, name)
            self._segments[key] = seg = self.bank.add(self.library.get(name, lang))
        return seg

    def _open_boards(self) -> None:
        roles = self.cfg.channels
        for index, entry in enumerate(self.cfg.boards):
            board = open_board(entry.uri)
            try:
                board.start(block=self.block)
                engine = Engine(board, self.bank, handler=self._engine_handler(index), sync=self.sync,
                                hardware_bridging=self.hardware_bridging)
                rt = BoardRuntime(index, entry.name, board, engine)
                rt.clock_start = self._board_clock(board, index)
                tps = RATE / board.block
                types = {c.index: c.type for c in board.channels}
                for _, chan in (r for r in roles.inbound if r[0] == entry.name):
                    rt.channels[chan] = FxoTrunk(chan, tps)
                for group in roles.outbound.values():
                    for _, chan in (r for r in group if r[0] == entry.name):
                        rt.channels.setdefault(chan, FxoTrunk(chan, tps))
                for _, chan in (r for r in roles.agents if r[0] == entry.name):
                    rt.channels[chan] = FxsPhone(chan, tps)
                for chan, ch in rt.channels.items():
                    want = ChannelType.FXS if isinstance(ch, FxsPhone) else None
                    have = types.get(chan)
                    if have is None:
                        raise ValueError(f"{self.cfg.file}: board {entry.name} ({entry.uri}) has no channel {chan}")
                    if want is ChannelType.FXS and have is not ChannelType.FXS:
                        raise ValueError(f"{self.cfg.file}: {entry.name}:{chan} is an agent phone "
                                         f"but the board says it is {have.name}")
            except Exception:
                board.close()
                raise
            for chan, ch in rt.channels.items():
                if isinstance(ch, FxoTrunk) and types.get(chan) is ChannelType.FXO:
                    rt.callerid_chans.add(chan)
                    engine.arm_callerid(chan, True)
            self.boards.append(rt)

    # -- run ---------------------------------------------------------------
    async def run(self, stop: asyncio.Event | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = stop or asyncio.Event()
        try:
            self._open_boards()
        except BaseException:   # the boards opened before the one that failed
            for rt in self.boards:
                rt.board.close()
            raise
        settings = self.cfg.acd or default_settings(self.cfg)
        numbering = self.cfg.numbering
        self.acd = AcdLink(self, settings.build(
            self.cfg.channels.outbound, default_lang=self.cfg.prompts.default_lang,
            normalize=lambda n: normalize_number(n, numbering)),
            feature_codes=dict(settings.feature_codes))
        for rt in self.boards:
            for ch in rt.channels.values():
                if isinstance(ch, FxsPhone):
                    ch.recall_ms = settings.hold_recall_ms
        status = None
        watch = None
        watchdog = None
        try:
            if self.recording is not None:   # crash recovery, then a recorder per board
                self.recording.open()
                watch = asyncio.create_task(self.recording.watch())
            self._issue_call_ids()
            if self.status_port is not None:
                from voiceserver.api.token import ensure_token
                from voiceserver.api.status import StatusApi
                status = StatusApi(queues=lambda: self.acd.acd.queue_rows(self.live_ms()),
                                   agents=lambda: self.acd.acd.agent_rows(self.live_ms()),
                                   channels=self.channel_rows,
                                   admin={"reload": self.admin_reload},
                                   admin_arg={"record-pause": lambda c: self.admin_record(c, True),
                                              "record-resume": lambda c: self.admin_record(c, False),
                                              **{f"agent-{act}": self._admin_agent(act) for act in
                                                 ("login", "logout", "ready", "not-ready")}},
                                   host=self.cfg.api.host, port=self.status_port,
                                   token=ensure_token(self.cfg.api.token_file),
                                   audit_log=self.cfg.api.audit_log)
                try:
                    await status.start()
                except OSError as exc:
                    raise OSError(f"status API: cannot listen on {self.cfg.api.host}:"
                                  f"{self.status_port}: {exc.strerror}") from None
                self.status_port = status.port
                self.bus.publish(0, ServerEventKind.STATUS_LISTENING, host=status.host, port=status.port)
            for rt in self.boards:   # what a crashed or stopped server left seized on the card
                self.release_lines(rt, 0, "server start")
            for rt in self.boards:
                rt.engine.start()
                self.bus.publish(0, ServerEventKind.BOARD_START, board=rt.name, channels=len(rt.channels))
            sdnotify.notify(f"READY=1\nSTATUS=serving {len(self.boards)} board(s)")
            every = sdnotify.watchdog_interval()
            if every is not None:
                watchdog = asyncio.create_task(self._watchdog(every))
            await self._stopped.wait()
        finally:
            sdnotify.notify("STOPPING=1")
            self._stopping = True
            try:    # the engines' last ticks put the lines on-hook
                self.end_all_calls("server stopped")
            except Exception:   # a bug here must not keep the boards and files open
                log.exception("ending the calls at stop failed")
                self.error = self.error or "ending the calls at stop failed (see log)"
            for rt in self.boards:
                if rt.reopen is not None:
                    rt.reopen.cancel()
                    await asyncio.gather(rt.reopen, return_exceptions=True)
            if watchdog is not None:
                watchdog.cancel()
                await asyncio.gather(watchdog, return_exceptions=True)
            if watch is not None:
                watch.cancel()
                await asyncio.gather(watch, return_exceptions=True)
            if status is not None:
                await status.close()
            # Stop the engines without blocking this loop: an engine's last tick
            # (and its EngineStopped) hands events to the loop and, in lockstep,
            # waits until they are handled; joining it on the loop would make
            # that handler wait out its timeout on every stop.
            for rt in self.boards:
                rt.engine.request_stop()
            for rt in self.boards:
                await asyncio.to_thread(rt.engine.stop)
            if self.recording is not None:   # after the engines: the files get every tick
                self.recording.close()
            for rt in self.boards:
                rt.board.close()

    def reload(self, path: str) -> bool:
        """Swap in a new config for new calls; calls in progress keep theirs.

        A config that fails validation is rejected: the running one stays,
        and the reason goes to the log and the event bus. Validation is that
        of start: prompts present, channels on the boards actually open.
        """
        from voiceserver.config.server import reload_config
        new, err = reload_config(path, self.cfg, library=self.library,
                                 open_boards=self.open_boards())
        return self._reloaded(path, new, err)

    async def reload_async(self, path: str) -> bool:
        """``reload`` with the loading and validation in a worker thread: calls go on meanwhile."""
        from voiceserver.config.server import reload_config
        cfg, boards = self.cfg, self.open_boards()
        new, err = await asyncio.to_thread(reload_config, path, cfg, library=self.library,
                                           open_boards=boards)
        return self._reloaded(path, new, err)

    def reload_soon(self, path: str) -> None:
        """Start ``reload_async`` from a signal handler (SIGHUP); the task is kept until done."""
        task = asyncio.get_running_loop().create_task(self.reload_async(path))
        self._reloads.add(task)
        task.add_done_callback(self._reloads.discard)

    def open_boards(self) -> dict[str, Any] | None:
        """The boards this server has open (config.OpenBoard), for a reload; None before start."""
        from voiceserver.config.server import OpenBoard
        if not self.boards:
            return None
        return {rt.name: OpenBoard(rt.board.uri, {c.index: c.type.name for c in rt.board.channels})
                for rt in self.boards}

    def _reloaded(self, path: str, new: ServerConfig, err: Exception | None) -> bool:
        self.catch_up_clock()     # between ticks: what it publishes is stamped now
        self.reload_error = None if err is None else str(err)
        if err is not None:
            log.error("config reload rejected, keeping the running config: %s", err)
            self.bus.publish(self._tick, ServerEventKind.CONFIG_RELOAD_FAILED, error=str(err))
            if self.recording is not None:
                self.recording.config_rejected(err)
            return False
        self.cfg = new
        self.bus.publish(self._tick, ServerEventKind.CONFIG_RELOADED, file=str(path))
        if self.recording is not None:   # the rules too (audit log); [storage] at restart
            self.recording.config_reloaded(new)
        elif new.storage is not None:
            log.warning("%s: [storage]/[recording] take effect when the server restarts", path)
        return True

    async def admin_reload(self) -> dict[str, Any]:
        """The admin command's reload of the file the running config came from (loaded in a
        worker thread, as SIGHUP's: calls go on meanwhile)."""
        ok = await self.reload_async(self.cfg.file)
        return {"reloaded": ok, "file": self.cfg.file, "error": self.reload_error}

    def admin_record(self, target: str, pause: bool) -> dict[str, Any]:
        """Pause (or resume) the recording of a call: call id or BOARD:CHANNEL."""
        if self.recording is None:
            raise LookupError("nothing is recorded: the config has no [storage]/[recording]")
        return self.recording.pause_command(target, pause, who="admin API")

    def _admin_agent(self, action: str):
        def act(agent: str) -> dict[str, Any]:
            """POST /admin/agent-ACTION/AGENT: 404 no such agent, 409 not possible now."""
            return self.agent_control(agent, action, by="admin API")
        return act

    def agent_control(self, agent: str, action: str, by: str = "admin API") -> dict[str, Any]:
        """Log an agent in/out or set it ready/not ready from outside a tick (the API)."""
        if self.acd is None or not self.boards:
            raise LookupError("the server has not started")
        rt = self.boards[0]
        self._tick = max(self._tick, rt.engine.tick)   # the ACD acts at the engine's tick
        row = self.acd.agent_control(self._tick, agent, action, by)
        for r in self.boards:   # rings, bridges and tones the change caused
            self.settle(r, self._tick, set(r.channels))
        return row

    def stop(self) -> None:
        if self._loop is not None and self._stopped is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)

    def _engine_handler(self, index: int):
        def handler(tick: int, events: list) -> None:
            loop = self._loop
            if loop is None or loop.is_closed():
                return
            done = threading.Event()

            def run() -> None:
                try:
                    self._handle(index, tick, events)
                except Exception:  # a bug in a handler must not wedge the engine
                    log.exception("control plane failed on tick %d", tick)
                    self.error = "control plane error (see log)"
                    if self._stopped is not None:
                        self._stopped.set()
                finally:
                    done.set()
            try:
                loop.call_soon_threadsafe(run)
            except RuntimeError:  # loop closed during shutdown
                return
            if self.sync:
                while not done.wait(0.5):
                    if self._stopped is not None and self._stopped.is_set():
                        return
        return handler

    # -- time --------------------------------------------------------------
    @property
    def tick(self) -> int:
        """The control plane's tick: the last one it handled (see `catch_up_clock`)."""
        return self._tick

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        return self._loop

    def _board_clock(self, board: Any, index: int) -> dt.datetime:
        """When tick 0 of `board` was: an explicit start_time, else a simulated
        card's own clock (hwsim's scenario day), else the host's. Each board
        keeps its own; the first one's is also the server's start_time."""
        if self._start_given:
            return self.start_time
        sim = board.clock_start()
        if sim is not None and index == 0:
            self.start_time = sim
        return sim if sim is not None else self.start_time

    def catch_up_clock(self) -> int:
        """Bring the control plane's clock to the engine's tick, for work between
        ticks (the status/admin API, a reload, the rules file watch): `_tick`
        otherwise holds the last tick that had events, seconds ago in real
        time on an idle line. Call once at the start of such an action, so the
        whole action sees one tick. Returns it."""
        if self.boards:
            self._tick = max(self._tick, self.boards[0].engine.tick)
        return self._tick

    def now_ms(self, rt: BoardRuntime) -> int:
        return rt.ms_at(self._tick)

    def live_ms(self) -> int:
        """The first board's clock now, ticks without events too (the status views' time)."""
        rt = self.boards[0]
        return rt.ms_at(max(self._tick, rt.engine.tick))

    def wallclock(self, rt: BoardRuntime) -> dt.datetime:
        return rt.clock_start + dt.timedelta(milliseconds=self.now_ms(rt))

    def time_at(self, rt: BoardRuntime, tick: int) -> dt.datetime:
        """The date and time of `tick` on board `rt` (call records, file names, rules)."""
        return rt.clock_start + dt.timedelta(milliseconds=tick * rt.ms_per_tick)

    # -- events from the engine ---------------------------------------------
    def _handle(self, index: int, tick: int, events: list) -> None:
        rt = self.boards[index]
        if self._stopping:   # the calls were ended: only an engine's end still matters
            events = [ev for ev in events if isinstance(ev, EngineStopped)]
        self._tick = max(self._tick, tick) if self._stopping else tick
        touched: set[int] = set()
        for ev in events:
            chan = self._dispatch(rt, tick, ev)
            if chan is not None:
                touched.add(chan)
        # Carrying out actions can touch other channels (an agent rung for
        # a caller); loop until every outbox is empty.
        while touched:
            chan = touched.pop()
            ch = rt.channels.get(chan)
            if ch is not None:
                touched |= self._carry_out(rt, tick, ch)

    def _dispatch(self, rt: BoardRuntime, tick: int, ev: Any) -> int | None:
        if isinstance(ev, Event):
            return self._board_event(rt, tick, ev)
        chan = getattr(ev, "chan", None)
        if isinstance(ev, Timer) and ev.token in (("acd",), ("beep_off",)):
            if ev.token == ("acd",):
                self.acd.timer(tick)
            else:
                rt.engine.tone(ev.chan, None)
            return None
        if isinstance(ev, Timer) and isinstance(ev.token, tuple) and ev.token[:1] in (("rec",), ("calls",)):
            if self.recording is not None:   # a recording's pause deadline; the call rows' last_seen
                self.recording.timer(rt, tick, ev.token)
            return None
        ch = rt.channels.get(chan) if chan is not None else None
        if isinstance(ev, EngineStopped):
            if ev.lost and not self._stopping:   # only this board's calls end; it is opened again
                self._board_lost(rt, tick, ev.error or "board lost")
                return None
            if ev.error is not None and not ev.lost:   # fatal: the server stops (exit status 1)
                self.error = ev.error
            self.bus.publish(tick, ServerEventKind.BOARD_STOPPED, board=rt.name, error=ev.error)
            if self._stopped is not None:
                self._stopped.set()
            return None
        if ch is None:
            return None
        if isinstance(ev, DtmfEvent):
            if ev.end is None:
                self._digit(rt, tick, ch, ev.digit)
            elif self.recording is not None:   # a pause's end waits for the tone to stop
                self.recording.digit_end(rt, tick, ch.chan, self.legs.get((rt.index, ch.chan)))
        elif isinstance(ev, ToneEvent):
            if ev.end is None and isinstance(ch, FxoTrunk):
                ch.tone(tick, ev.tone)
        elif isinstance(ev, SpeechEvent):
            if ev.end is None and isinstance(ch, FxoTrunk):
                ch.speech(tick)
            leg = self.legs.get((rt.index, ch.chan))
            if leg is not None and self.acd.knows(leg.call.call_id):
                self.acd.speech(tick, leg.call.call_id, ev.end is None)
        elif isinstance(ev, CallerIdEvent):
            if isinstance(ch, FxoTrunk) and ev.callerid is not None:
                ch.caller_id(tick, ev.callerid.number, ev.callerid.name,
                             before_ring=ev.standard == "dtmf")
        elif isinstance(ev, DtmfSent):
            if isinstance(ch, FxoTrunk):
                ch.dtmf_sent(tick)
        elif isinstance(ev, PlayDone) and isinstance(ev.token, tuple):
            if ev.token[0] == "acd":
                self.acd.play_done(tick, ev.token[1])
        elif isinstance(ev, PlayDone):
            leg = self.legs.get((rt.index, ch.chan))
            if leg is not None and leg.ivr is not None and ev.token == leg.play_id:
                leg.play_id = None
                self._ivr_commands(rt, tick, ch, leg, leg.ivr.prompt_done(ev.token, self.now_ms(rt)))
        elif isinstance(ev, Timer):
            if ev.token and ev.token[0] == "ivr":
                leg = self.legs.get((rt.index, ch.chan))
                if leg is not None and leg.ivr is not None:
                    self._ivr_commands(rt, tick, ch, leg, leg.ivr.tick(self.now_ms(rt)))
            else:
                ch.timer(tick, ev.token)
        return ch.chan

    def _board_event(self, rt: BoardRuntime, tick: int, ev: Event) -> int | None:
        kind = ev.kind
        if kind in (EventKind.ALARM_SET, EventKind.ALARM_CLEAR):
            name = ALARM_NAMES.get(ev.value, str(ev.value))
            self.bus.publish(tick, ServerEventKind.SPAN_ALARM, board=rt.name, span=ev.span, alarm=name,
                             set=kind is EventKind.ALARM_SET)
            span_chans = [c.index for c in rt.board.channels if c.span == ev.span]
            for chan in span_chans:
                ch = rt.channels.get(chan)
                if ch is None:
                    continue
                if kind is EventKind.ALARM_SET:
                    self._leg_gone(rt, tick, ch)
                    ch.block(tick, name)
                elif not rt.board.span_status(ev.span)["alarms"]:
                    ch.unblock(tick)
                self._carry_out(rt, tick, ch)
            return None
        if kind is EventKind.BOARD_LOST:   # the engine stops next: _board_lost says it
            return None
        if kind is EventKind.EVENTS_LOST:
            self.bus.publish(tick, ServerEventKind.BOARD_EVENTS_LOST, board=rt.name, count=ev.value)
            return None
        ch = rt.channels.get(ev.chan)
        if ch is None:
            return None
        if isinstance(ch, FxoTrunk):
            if kind is EventKind.RING_START:
                ch.ring_start(tick)
            elif kind is EventKind.RING_STOP:
                ch.ring_stop(tick)
            elif kind is EventKind.LOOP_DROP:
                ch.loop_drop(tick)
            elif kind is EventKind.BATTERY_REVERSAL:
                ch.battery_reversal(tick)
        elif isinstance(ch, FxsPhone):
            if kind is EventKind.HOOK_OFF:
                ch.hook_off(tick)
            elif kind is EventKind.HOOK_ON:
                ch.hook_on(tick)
            elif kind is EventKind.FLASH:
                ch.flash(tick)
        return ch.chan

    def _digit(self, rt: BoardRuntime, tick: int, ch: Channel, digit: str) -> None:
        leg = self.legs.get((rt.index, ch.chan))
        if leg is not None:
            secret = self._secret_key(rt, leg, digit)
            shown = MASK if secret else digit       # the cleartext goes to the IVR/ACD only
            leg.digits += shown
            self.bus.publish(tick, ServerEventKind.CALL_DIGIT, chan=ch.chan, call_id=leg.call.call_id,
                             digit=shown, masked=secret)
            if self.recording is not None:   # [[pause_dtmf]] key sequences
                self.recording.digit(rt, tick, ch.chan, leg, digit, secret=secret)
            if leg.ivr is not None and not leg.ivr.done:
                self._ivr_commands(rt, tick, ch, leg, leg.ivr.digit(digit, self.now_ms(rt)))
            elif self.acd.knows(leg.call.call_id):
                self.acd.digit(tick, leg.call.call_id, digit)
        if isinstance(ch, FxsPhone):
            ch.digit(tick, digit)
            action = self.acd.features.get(ch.dialed) if ch.state is State.DIALING else None
            if action is not None:
                self._feature(rt, tick, ch, action)

    def _pause_rules(self) -> RecordingRules | None:
        """The recording rules in force (None: none): their pauses make input secret."""
        return self.recording.rules if self.recording is not None else None

    def _secret_key(self, rt: BoardRuntime, leg: Leg, digit: str) -> bool:
        """Must this key leave the server masked? (voiceserver.core.masking says when.)

        The call's SecretKeys live in ``call.data``: the caller's and the
        agent's legs share the call, and a [[pause_dtmf]] spans both sides.
        """
        keys = leg.call.data.get("secret_keys")
        if keys is None:
            keys = leg.call.data["secret_keys"] = SecretKeys(self._pause_rules())
        ivr_secret = leg.ivr is not None and leg.ivr.secret_input
        return keys.key(digit, self.now_ms(rt), ivr_secret=ivr_secret)

    def _feature(self, rt: BoardRuntime, tick: int, ch: FxsPhone, action: str) -> None:
        """A feature code dialled on an agent's phone: the agent's state changes at once."""
        code = ch.dialed
        agent = self.acd.agent_at((rt.index, ch.chan))
        ok = agent is not None
        if agent is not None:
            try:
                self.acd.agent_control(tick, agent, action, by=f"phone {rt.name}:{ch.chan} ({code})")
            except LookupError:
                ok = False
            except AgentConflict as exc:   # ready/not ready while logged out
                ok = False
                log.info("feature code %s on %s:%d refused: %s", code, rt.name, ch.chan, exc)
        else:
            self.bus.publish(tick, ServerEventKind.AGENT_STATE_REFUSED, chan=ch.chan, board=rt.name,
                             action=action, why="no agent at this phone")
        ch.feature(tick, code, ok)

    # -- actions of the channel state machines --------------------------------
    def _carry_out(self, rt: BoardRuntime, tick: int, ch: Channel) -> set[int]:
        eng = rt.engine
        more: set[int] = set()
        for act in ch.take():
            match act:
                case chanmod.Hook(state):
                    eng.board_call("hook", ch.chan, state)
                case chanmod.Ring(on):
                    eng.board_call("ring", ch.chan, bool(on))
                case chanmod.Tone(name):
                    eng.tone(ch.chan, name)
                case chanmod.SendDtmf(digits):
                    eng.send_dtmf(ch.chan, digits)
                case chanmod.StopPlay():
                    eng.stop_play(ch.chan)
                case chanmod.Timer(when, token):
                    eng.call_at(when, ch.chan, token)
                case chanmod.Emit(kind, data):
                    self.bus.publish(tick, kind, chan=ch.chan, board=rt.name, **data)
                    more |= self._on_channel_event(rt, tick, ch, kind, data)
        return more

    def _on_channel_event(self, rt: BoardRuntime, tick: int, ch: Channel, kind: str,
                          data: dict[str, Any]) -> set[int]:
        key = (rt.index, ch.chan)
        if kind == ServerEventKind.CHANNEL_STATE and ch.chan in rt.callerid_chans:
            # The FSK demodulator is the engine's dearest detector: run it only
            # where caller ID can come (idle: DTMF before the first ring; ringing).
            listen = data.get("new") in (State.IDLE.value, State.RINGING.value)
            if listen != (data.get("old") in (State.IDLE.value, State.RINGING.value)):
                rt.engine.arm_callerid(ch.chan, listen)
        if kind == ServerEventKind.CALL_START and isinstance(ch, FxoTrunk) and ch.call is not None:
            self.legs.setdefault(key, Leg(ch.call))  # every trunk call gets a record
            if self.recording is not None:   # its row in SQLite, from the start
                self.recording.call_started(rt, tick, ch.chan, ch.call)
            return set()
        if kind == ServerEventKind.CALL_OFFER and isinstance(ch, FxoTrunk) and ch.call is not None:
            call = ch.call
            leg = self.legs.setdefault(key, Leg(call))
            if leg.ivr is not None or "rejected" in leg.path:
                return set()  # offered again at the next ring: already decided
            ivr = self.cfg.new_call(call.caller, call.called or "", self.wallclock(rt))
            if ivr is None:
                leg.path.append("rejected")
                leg.rejected = self._rejected_by(call.caller)
                self.bus.publish(tick, ServerEventKind.CALL_REJECTED, chan=ch.chan, call_id=call.call_id,
                                 caller=call.caller, reason="blacklist")
                return set()
            ch.answer(tick)
            ivr.secret_menus |= pause_menus(self._pause_rules())   # their input is secret too
            leg.ivr = ivr
            if self.recording is not None:   # rules decide; recording starts with this tick
                self.recording.answered(rt, tick, ch.chan, leg)
            cmds = ivr.call_started(call.caller or "", call.called or "", self.now_ms(rt))
            self._ivr_commands(rt, tick, ch, leg, cmds)
            return {ch.chan}
        if kind == ServerEventKind.CALL_FLASH and isinstance(ch, FxsPhone):
            return self._flash(rt, tick, ch)
        if kind == ServerEventKind.CALL_ANSWER and isinstance(ch, FxsPhone) and data.get("recall"):
            return self._hold(rt, tick, ch, False, "recall answered")
        if kind == ServerEventKind.CALL_RECALL_TIMEOUT and isinstance(ch, FxsPhone):
            leg = self.legs.get(key)
            if leg is not None and leg.partner is not None:
                caller = rt.channels[leg.partner[1]]
                caller.hangup(tick, "held call not picked up after hold recall")
                return {caller.chan}
            return set()
        if kind == ServerEventKind.CALL_ANSWER and self.acd.answered(tick, key):
            return set()
        if kind == ServerEventKind.CALL_ANSWER and isinstance(ch, FxoTrunk) and key in self.legs:
            return self._transfer_answered(rt, tick, ch)
        if kind == ServerEventKind.CALL_END:
            return self._leg_gone(rt, tick, ch, data.get("reason", ""))
        if kind == ServerEventKind.CHANNEL_STATE:
            self.acd.line_state(tick, key, ch.state)
        return set()

    # -- IVR commands ---------------------------------------------------------
    def _ivr_commands(self, rt: BoardRuntime, tick: int, ch: Channel, leg: Leg,
                      cmds: list) -> None:
        eng = rt.engine
        if self.recording is not None:   # pauses, IVR branches and queues for the rules
            self.recording.ivr_commands(rt, tick, leg, cmds)
        for cmd in cmds:
            if isinstance(cmd, ivrmod.Play):
                segs = self._play_segments(cmd)
                leg.play_id = cmd.id
                leg.prompts += len(cmd.items)
                eng.play(ch.chan, segs, token=cmd.id)
                self.bus.publish(tick, ServerEventKind.CALL_PLAY, chan=ch.chan, call_id=leg.call.call_id,
                                 items=[_item_name(i) for i in cmd.items], lang=cmd.lang)
            elif isinstance(cmd, ivrmod.StopPlay):
                if leg.play_id == cmd.id:
                    leg.play_id = None
                    eng.stop_play(ch.chan)
            elif isinstance(cmd, ivrmod.Log):
                leg.path.append(f"{cmd.step.what}:{cmd.step.detail}" if cmd.step.detail else cmd.step.what)
            elif isinstance(cmd, ivrmod.Hangup):
                ch.hangup(tick, f"ivr: {cmd.reason}")
            elif isinstance(cmd, ivrmod.Queue):
                self.bus.publish(tick, ServerEventKind.CALL_QUEUE, chan=ch.chan, call_id=leg.call.call_id, queue=cmd.name)
                self.acd.queue(rt, tick, ch.chan, leg, cmd.name, self._lang(leg))
            elif isinstance(cmd, ivrmod.Voicemail):
                self.acd.voicemail(rt, tick, ch.chan, leg, cmd.mailbox, self._lang(leg))
            elif isinstance(cmd, ivrmod.Transfer):
                self._transfer(rt, tick, ch, leg, cmd)
            # Collect and ClearDigits need nothing here: the interpreter
            # runs its own collector and type-ahead buffer.
        if leg.ivr is not None and leg.ivr.deadline is not None:
            at = rt.tick_at(leg.ivr.deadline)
            eng.call_at(max(at, tick + 1), ch.chan, ("ivr", at))
        for c in {ch.chan}:
            self._carry_out(rt, tick, rt.channels[c])
        if self.recording is not None:   # the IVR path and queue so far, in the call row
            self.recording.progress(rt, tick, leg)

    def _play_segments(self, cmd: ivrmod.Play) -> list[Segment]:
        segs: list[Segment] = []
        for item in cmd.items:
            lang = item.lang or cmd.lang
            if isinstance(item, ivrmod.Prompt):
                segs.append(self.segment(item.name, lang))
            else:
                fn = getattr(saynumber, f"say_{item.kind}")
                segs += [self.segment(n, lang) for n in fn(item.value, lang)]
        return segs

    # -- helpers for the ACD link ------------------------------------------
    def _lang(self, leg: Leg) -> str:
        return leg.ivr.lang if leg.ivr is not None else self.cfg.prompts.default_lang

    def new_leg(self, call: Call, partner: tuple[int, int] | None = None) -> Leg:
        return Leg(call, partner=partner)

    def settle(self, rt: BoardRuntime, tick: int, chans: set[int]) -> None:
        """Carry out the outboxes of `chans` and of every channel that touches."""
        touched = set(chans)
        while touched:
            ch = rt.channels.get(touched.pop())
            if ch is not None:
                touched |= self._carry_out(rt, tick, ch)

    def moh_segment(self, name: str = "default") -> Segment | None:
        return self._segments.get(("moh", name)) or self._segments.get(("moh", "default"))

    def play_moh(self, rt: BoardRuntime, chan: int, music: str = "default", token: Any = None) -> None:
        """Music on hold to `chan`, looped, 6 dB under the prompts (queue, hold, a transfer ringing)."""
        seg = self.moh_segment(music)
        if seg is not None:
            rt.engine.play(chan, [seg], loop=True, gain_db=-6.0, token=token)

    def connect(self, tick: int, caller: tuple[int, int], line: tuple[int, int], agent: str | None) -> None:
        """Bridge a waiting caller with the agent (or number) that answered."""
        leg = self.legs.get(caller)
        if caller[0] != line[0]:
            self.bus.publish(tick, ServerEventKind.CALL_BRIDGE_FAILED, chan=caller[1],
                             call_id=leg.call.call_id if leg else None,
                             reason="caller and agent are on different boards")
            return
        rt = self.boards[caller[0]]
        rt.engine.stop_play(caller[1])
        rt.engine.bridge(caller[1], line[1])
        if leg is not None:
            leg.partner = line
            leg.agent = agent or f"{rt.name}:{line[1]}"
        if self.recording is not None:   # the agent's line goes on the right of the file
            self.recording.bridged(rt, tick, caller[1], line[1], leg.agent if leg else agent)
        other = self.legs.get(line)
        if other is not None:
            other.partner = caller
        self.bus.publish(tick, ServerEventKind.CALL_BRIDGE, chan=caller[1], call_id=leg.call.call_id if leg else None,
                         agent=agent, line=line[1])

    def voicemail_record(self, tick: int, key: tuple[int, int], call_id: str, mailbox: str,
                         max_ms: int) -> None:
        """Record the caller's message (with [storage]: a mono file in the mailbox's folder)."""
        info: dict[str, Any] = {"stored": False}   # no storage: the event says so plainly
        if self.recording is not None:
            info = self.recording.voicemail_record(self.boards[key[0]], tick, key, call_id,
                                                   mailbox, max_ms)
        self.bus.publish(tick, ServerEventKind.VOICEMAIL_RECORD_START, chan=key[1], call_id=call_id,
                         mailbox=mailbox, max_ms=max_ms, **info)

    def voicemail_stop(self, tick: int, key: tuple[int, int], call_id: str, mailbox: str,
                       reason: str) -> None:
        if self.recording is not None and self.recording.voicemail_stop(
                self.boards[key[0]], tick, key, call_id, mailbox, reason):
            return   # voicemail.record_stop follows once stored (stored, path, message_id)
        self.bus.publish(tick, ServerEventKind.VOICEMAIL_RECORD_STOP, chan=key[1], call_id=call_id,
                         mailbox=mailbox, reason=reason, stored=False)

    # -- hold (hook flash on an agent's phone) ------------------------------
    def _flash(self, rt: BoardRuntime, tick: int, phone: FxsPhone) -> set[int]:
        leg = self.legs.get((rt.index, phone.chan))
        if leg is None or leg.partner is None or phone.state is not State.CONNECTED:
            return set()       # a flash with nobody bridged: nothing to hold
        return self._hold(rt, tick, phone, not phone.on_hold, "flash")

    def _hold(self, rt: BoardRuntime, tick: int, phone: FxsPhone, on: bool, why: str) -> set[int]:
        """Put the caller bridged with `phone` on hold (music) or take it off (bridged again).

        While held the agent hears silence (no consultation dialling yet); the
        recording keeps going: the caller left, the music on the right."""
        leg = self.legs.get((rt.index, phone.chan))
        if leg is None or leg.partner is None:
            return set()
        cchan = leg.partner[1]
        caller_leg = self.legs.get(leg.partner)
        call_id = leg.call.call_id
        phone.hold(on)
        if on:
            rt.engine.unbridge(cchan)
            self.play_moh(rt, cchan, token=("hold",))
            if self.recording is not None:   # the right side: what the caller hears (music)
                self.recording.leg_gone(rt, tick, phone.chan)
        else:
            rt.engine.stop_play(cchan)
            rt.engine.bridge(cchan, phone.chan)
            if self.recording is not None:   # the agent on the right again, same file
                self.recording.bridged(rt, tick, cchan, phone.chan,
                                       caller_leg.agent if caller_leg else None)
        self.bus.publish(tick, ServerEventKind.CALL_HOLD if on else ServerEventKind.CALL_UNHOLD, chan=cchan, call_id=call_id,
                         phone=phone.chan, agent=caller_leg.agent if caller_leg else None, why=why)
        return {phone.chan}

    def _transfer(self, rt: BoardRuntime, tick: int, ch: Channel, leg: Leg, cmd: ivrmod.Transfer) -> None:
        # The group's hunt ([queues] trunk_hunt) picks the line; on glare the
        # ACD link retries on another line of the group (voiceserver.acd.link).
        if self.acd.transfer(tick, (rt.index, ch.chan), leg, cmd.number, cmd.trunk):
            self.play_moh(rt, ch.chan)
            return
        self.bus.publish(tick, ServerEventKind.CALL_TRANSFER_FAILED, chan=ch.chan, call_id=leg.call.call_id,
                         trunk=cmd.trunk, reason="no free line in the group")
        ch.hangup(tick, f"transfer failed: no free line in {cmd.trunk}")

    def _transfer_answered(self, rt: BoardRuntime, tick: int, trunk: FxoTrunk) -> set[int]:
        leg = self.legs.get((rt.index, trunk.chan))
        if leg is None or leg.partner is None or "transfer_of" not in leg.call.data:
            return set()   # only the transfer's own outbound leg (not its caller) answers it
        _, cchan = leg.partner
        rt.engine.stop_play(cchan)
        rt.engine.bridge(cchan, trunk.chan)
        if self.recording is not None:   # the callee on the right: the same file goes on
            self.recording.bridged(rt, tick, cchan, trunk.chan, None)
        self.bus.publish(tick, ServerEventKind.CALL_BRIDGE, chan=cchan, call_id=leg.call.call_id, trunk=trunk.chan)
        return set()

    def _leg_gone(self, rt: BoardRuntime, tick: int, ch: Channel, reason: str = "") -> set[int]:
        """A call ended on `ch`: record it, and end what it was bridged to."""
        key = (rt.index, ch.chan)
        leg = self.legs.pop(key, None)
        if leg is None:
            return set()
        if leg.ivr is not None and not leg.ivr.done:
            for cmd in leg.ivr.hangup(self.now_ms(rt)):
                if isinstance(cmd, ivrmod.Log):
                    leg.path.append(cmd.step.what)
        rt.engine.unbridge(ch.chan)
        if self.recording is not None:   # was on the right of a recording: the trunk's tx again
            self.recording.leg_gone(rt, tick, ch.chan)
        if isinstance(ch, FxoTrunk):  # agent phone legs belong to the trunk's call
            self._record(rt, ch, leg, reason)
        touched: set[int] = set()
        self.acd.leg_ended(tick, key, reason)
        if leg.partner is not None:
            _, pchan = leg.partner
            other = rt.channels.get(pchan)
            pleg = self.legs.get((rt.index, pchan))
            if pleg is not None:
                pleg.partner = None
            if isinstance(other, FxsPhone):
                if other.state is State.RINGING and other.recalling:
                    # the held caller left while the phone rang back: the agent's
                    # leg ends here (the ACD hears it from the caller's side)
                    self.legs.pop((rt.index, pchan), None)
                    self.acd.rings.pop((rt.index, pchan), None)
                    other.stop_ringing(tick, "held caller hung up")
                elif other.state is State.RINGING:
                    self.legs.pop((rt.index, pchan), None)
                    other.stop_ringing(tick, "caller hung up")
                else:
                    other.hangup(tick, "caller hung up")
                touched.add(pchan)
            elif isinstance(other, FxoTrunk):
                other.hangup(tick, "other party hung up")
                touched.add(pchan)
        return touched

    def _record(self, rt: BoardRuntime, ch: Channel, leg: Leg, reason: str) -> None:
        call = leg.call

        def at(t: int | None) -> dt.datetime | None:
            return None if t is None else self.time_at(rt, t)
        rec = CallRecord(
            call.call_id, rt.name, ch.chan, call.direction, call.caller, call.called,
            call.data.get("first_ring") or at(call.start_tick),   # first_ring: rang before a crash
            at(call.answer_tick), at(call.end_tick or self._tick),
            leg.rejected or reason or call.end_reason or "", leg.path, leg.digits, leg.prompts,
            leg.agent, at(call.data.get("agent_answer_tick")))
        self.records.append(rec)
        self.totals.add(rec)
        if self.recording is not None:   # keep/discard the recording; the call row in SQLite
            self.recording.call_ended(rt, rec, call.end_tick or self._tick)

    def _rejected_by(self, caller: str | None) -> str:
        """The record's reason for a call the blacklist rejected: which entry."""
        entry = self.cfg.blacklist.match(caller)
        if entry is None:   # new_call refused it for another reason
            return "rejected"
        where = f", {entry.where}" if entry.where else ""
        note = f": {entry.note}" if entry.note else ""
        return f"rejected by blacklist: entry {entry.number} ({entry.match.value} match{where}){note}"

    def _issue_call_ids(self) -> None:
        """Every channel takes its call ids from this run's CallIds (never repeated in the database)."""
        run = self.recording.run if self.recording is not None else None
        self.call_ids = (CallIds(self.server_id, run) if run is not None
                         else CallIds.without_database(self.server_id, self.start_time))
        for rt in self.boards:
            for ch in rt.channels.values():
                ch.new_call_id = self.call_ids.next

    # -- line state, stop, board loss ------------------------------------------
    def release_lines(self, rt: BoardRuntime, tick: int, when: str) -> list[linestate.LineState]:
        """Release every line the card has seized that this server did not seize (call before
        the board's engine starts): `line.released` for each, and a note on the call row of
        the call that had it when the call database knows one."""
        lines = linestate.release_all(rt.board)
        for line in lines:
            what = line.describe()
            call_id = None
            if line.seized and self.recording is not None and self.recording.db is not None:
                call_id = self.recording.db.note_line_released(
                    rt.name, line.chan, f"line found {what} at {when}: released")
            ch = rt.channels.get(line.chan)
            if line.phone_offhook and isinstance(ch, FxsPhone):
                ch.found_offhook(tick)      # busy tone until the agent hangs up
                self._carry_out(rt, tick, ch)
            log.warning("%s:%d was %s at %s%s", rt.name, line.chan, what, when,
                        ": released" if line.seized else "")
            self.bus.publish(tick, ServerEventKind.LINE_RELEASED, chan=line.chan, call_id=call_id, board=rt.name,
                             when=when, state=what, released=line.seized)
        return lines

    def end_all_calls(self, reason: str, rt: BoardRuntime | None = None) -> None:
        """End every call (of one board, or of all) with `reason`: records, rows, hang-ups.

        Trunks first: ending a trunk's call ends the agent phone legs bridged or ringing for it.
        """
        for r in ([rt] if rt is not None else self.boards):
            tick = max(self._tick, r.engine.tick)
            chans = sorted(r.channels.items(), key=lambda c: isinstance(c[1], FxsPhone))
            for _, ch in chans:
                if isinstance(ch, FxsPhone) and ch.state is State.RINGING:
                    ch.stop_ringing(tick, reason)
                else:
                    ch.hangup(tick, reason)
                self.settle(r, tick, {ch.chan})

    def _board_lost(self, rt: BoardRuntime, tick: int, error: str) -> None:
        """A board is gone: its calls end ("board lost"), its lines block, an alarm, and a task
        opens it again when it is back. The other boards go on."""
        rt.lost = error
        log.error("board %s lost: %s; its calls end, it is opened again when it is back", rt.name, error)
        self.bus.publish(tick, ServerEventKind.BOARD_LOST, board=rt.name, error=error, alarm=True,
                         calls=sum(1 for k in self.legs if k[0] == rt.index))
        self.end_all_calls("board lost", rt)
        for ch in rt.channels.values():
            ch.block(tick, "board lost")
            self._carry_out(rt, tick, ch)
        rt.reopen = asyncio.create_task(self._reopen(rt, tick))
        if self.acd is not None:     # its engine may have held the ACD's timer
            self.acd.rearm(tick)

    async def _reopen(self, rt: BoardRuntime, tick: int) -> None:
        """Try to open a lost board again, with backoff, until it is back or the server stops."""
        old = rt.engine
        await asyncio.to_thread(old.stop)
        rt.board.close()
        if self.recording is not None:   # its files end here (kept), a new recorder when back
            await asyncio.to_thread(self.recording.board_lost, rt.index)
        lost_at = time.monotonic()
        delay, tries, said, said_at = REOPEN_FIRST, 0, None, 0.0
        while True:
            await asyncio.sleep(delay)
            tries += 1
            try:
                board = self._open_again(rt)
            except (BoardError, ValueError) as exc:
                why = str(exc)
                if why != said or time.monotonic() - said_at >= REOPEN_LOG_EVERY:
                    log.warning("board %s still lost (try %d): %s; trying again every %.1f s at most",
                                rt.name, tries, why, REOPEN_MAX)
                    said, said_at = why, time.monotonic()
                delay = min(delay * 2, REOPEN_MAX)
                continue
            down = time.monotonic() - lost_at
            base = old.tick + 1
            if board.info.clock == "realtime":   # the card's time went on while it was away
                base += int(down * RATE / board.block)
            self._resume(rt, board, base, tries, down)
            return

    def _open_again(self, rt: BoardRuntime) -> Any:
        """Open and start the board of `rt` again; ValueError if it is not the same card."""
        board = open_board(rt.board.uri)
        try:
            before = [(c.index, c.type) for c in rt.board.channels]
            now = [(c.index, c.type) for c in board.channels]
            if now != before:
                raise ValueError(f"{rt.board.uri} came back with other channels "
                                 f"({len(now)} now, {len(before)} before): not opened")
            board.start(block=self.block)
        except BaseException:
            board.close()
            raise
        return board

    def _resume(self, rt: BoardRuntime, board: Any, tick: int, tries: int, down: float) -> None:
        """The lost board is back: a new engine, stray lines released, lines unblocked."""
        engine = Engine(board, self.bank, handler=self._engine_handler(rt.index), sync=self.sync,
                        hardware_bridging=self.hardware_bridging, tick_base=tick)
        rt.board, rt.engine, rt.lost, rt.reopen = board, engine, None, None
        for chan in rt.callerid_chans:
            engine.arm_callerid(chan, True)
        if self.recording is not None:
            self.recording.board_back(rt)
        self.release_lines(rt, tick, "board back")
        for ch in rt.channels.values():
            ch.unblock(tick)
            self._carry_out(rt, tick, ch)
        if self.acd is not None:     # the ACD's timer goes to the first board that is up
            self.acd.rearm(tick)
        log.warning("board %s is back after %.1f s (%d tries)", rt.name, down, tries)
        self.bus.publish(tick, ServerEventKind.BOARD_BACK, board=rt.name, tries=tries, down_seconds=round(down, 1))
        engine.start()

    async def _watchdog(self, every: float) -> None:
        """WATCHDOG=1 to systemd every `every` s while every board's engine ticks (a lost
        board being opened again counts as alive): a stuck tick or loop stops the pings."""
        seen: dict[int, tuple[int, int]] = {}
        while True:
            await asyncio.sleep(every)
            stuck = []
            for rt in self.boards:
                if rt.lost is not None:
                    continue
                now = (id(rt.engine), rt.engine.stats.ticks)
                if seen.get(rt.index) == now:
                    stuck.append(rt.name)
                seen[rt.index] = now
            if not stuck:
                sdnotify.notify("WATCHDOG=1")

    # -- views -------------------------------------------------------------
    def channel_rows(self) -> list[dict[str, Any]]:
        rows = []
        for rt in self.boards:
            for chan, ch in sorted(rt.channels.items()):
                leg = self.legs.get((rt.index, chan))
                rows.append({
                    "board": rt.name, "chan": chan, "kind": ch.kind, "state": ch.state.value,
                    "call_id": leg.call.call_id if leg else None,
                    "caller": leg.call.caller if leg else None,
                    "menu": (leg.path[-1] if leg and leg.path else ""),
                    "digits": leg.digits if leg else "",
                })
        return rows


def _item_name(item: Any) -> str:
    if isinstance(item, ivrmod.Prompt):
        return item.name
    return f"say_{item.kind}({masked(item.value) if item.secret else item.value})"
