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
import threading
import time
from collections import deque
from typing import Any

from boarddrv import BoardError, ChannelType, open_board
from boarddrv.events import alarm_bits
from dsp.mix import AudioBank, Segment
from voiceserver.acd.link import AcdLink, default_settings
from voiceserver.config.server import ConfigError, ServerConfig
from voiceserver.core import linestate, media, sdnotify
from voiceserver.core.callids import CallIds, default_server_id
from voiceserver.core.calltotals import CallTotals
from voiceserver.core.channels import FxoTrunk, FxsPhone
from voiceserver.core.controller import RECENT_RECORDS, CallController
from voiceserver.core.e1 import E1R2Trunk, group_policy
from voiceserver.core.engine import Engine, EngineStopped
from voiceserver.core.events import EventBus, ServerEventKind
from voiceserver.core.journal import EventJournal
from voiceserver.core.media import MediaCommand
from voiceserver.core.runtime import RATE, BoardRuntime, CallRecord, Conflict, Key, Leg
from voiceserver.ivr.blacklist import normalize_number
from voiceserver.ivr.prompts import PromptLibrary
from voiceserver.recording.service import RecordingService

log = logging.getLogger("voiceserver")

REOPEN_FIRST = 0.25      # seconds before the first try to open a lost board again
REOPEN_MAX = 2.0         # ... doubling up to this (a failed open is one cheap shm_open)
REOPEN_LOG_EVERY = 60.0  # a board still lost is logged again at most this often (or when why changes)


class VoiceServer:
    def __init__(self, cfg: ServerConfig, library: PromptLibrary, *, sync: bool = True,
                 block: int = 160, start_time: dt.datetime | None = None,
                 hardware_bridging: bool = True, status_port: int | None = None, api_port: int | None = None,
                 ami_port: int | None = None,
                 rules_poll: float = 5.0, recent_records: int = RECENT_RECORDS) -> None:
        self.cfg = cfg
        self.library = library
        self.sync = sync
        self.block = block
        self.hardware_bridging = hardware_bridging
        self.status_port = status_port   # loopback status/admin API; None: none, 0: any free port
        self.api_port = api_port         # the network API ([api] bind); None: none, 0: any free port
        self.ami_port = ami_port         # the AMI-compatible feed ([api] ami_bind); None: none, 0: any
        self.start_time = start_time or dt.datetime.now(dt.UTC)
        self._start_given = start_time is not None   # else each board's clock (see _board_clock)
        self.bus = EventBus()
        self.journal: EventJournal | None = None     # [storage] events: opened by run()
        self.bank = AudioBank()
        # finished calls: the most recent in memory, sums of all (every one: the call database)
        # call ids SERVER-RUN-SEQ: the run comes from the call database at start (voiceserver.core.callids)
        self.server_id = (cfg.storage.server_id if cfg.storage is not None else None) or default_server_id()
        self.bus.server_id = self.server_id
        self.call_ids: CallIds | None = None
        self.boards: list[BoardRuntime] = []
        self.error: str | None = None
        self.reload_error: str | None = None   # why the last reload was rejected
        self.network: Any = None               # the network API (voiceserver.api.network), while it serves
        self.ami: Any = None                   # the AMI feed (voiceserver.api.ami), while it serves
        self.api_reload: dict[str, Any] = {}   # what the last reload did to its users and TLS certificate
        self._reloads: set[asyncio.Task] = set()   # reload_soon's tasks in flight
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None
        self._segments: dict[tuple[str, str], Segment] = {}
        # recordings, call rows in SQLite, voicemail files: with [storage] (or [recording]);
        # rules_poll: seconds between looks at the recording rules file (0: only on reload)
        self.recording: RecordingService | None = (
            RecordingService(self, cfg.storage, cfg.recording, poll_interval=rules_poll)
            if cfg.storage is not None else None)
        self._load_bank()
        # the call logic, without I/O: this server runs the engines and the loop around it
        self.calls = CallController(cfg, self.boards, self.bus, self.segment, self._segments,
                                    recording=self.recording, recent_records=recent_records)

    # -- what the controller holds (the API, the recording service and tests read it here)
    @property
    def legs(self) -> dict[Key, Leg]:
        return self.calls.legs

    @property
    def records(self) -> deque[CallRecord]:
        return self.calls.records

    @property
    def totals(self) -> CallTotals:
        return self.calls.totals

    @property
    def acd(self) -> AcdLink | None:
        return self.calls.acd

    def channel_rows(self) -> list[dict[str, Any]]:
        return self.calls.channel_rows()

    def wallclock(self, rt: BoardRuntime) -> dt.datetime:
        return self.calls.wallclock(rt)

    def time_at(self, rt: BoardRuntime, tick: int) -> dt.datetime:
        """The date and time of `tick` on board `rt` (call records, file names, rules)."""
        return self.calls.time_at(rt, tick)

    def _apply(self, commands: list[MediaCommand]) -> None:
        """Carry out the controller's media commands on the boards' engines, in order."""
        for cmd in commands:
            media.apply(cmd, self.boards[cmd.board].engine)

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
                _read_spans(rt, board)
                tps = RATE / board.block
                types = {c.index: c.type for c in board.channels}
                for _, chan in (r for r in roles.inbound if r[0] == entry.name):
                    rt.channels[chan] = FxoTrunk(chan, tps)
                for group in roles.outbound.values():
                    for _, chan in (r for r in group if r[0] == entry.name):
                        rt.channels.setdefault(chan, FxoTrunk(chan, tps))
                for _, chan in (r for r in roles.agents if r[0] == entry.name):
                    rt.channels[chan] = FxsPhone(chan, tps)
                for group in self.cfg.r2:      # E1 R2 trunk groups: their channels speak R2
                    for _, chan in (r for r in group.channels if r[0] == entry.name):
                        if types.get(chan) is not ChannelType.E1_CAS:
                            raise ValueError(f"{self.cfg.file}: {entry.name}:{chan} is in E1 R2 trunk group "
                                             f"{group.name} but the board says it is "
                                             f"{types[chan].name if chan in types else 'missing'}")
                        rt.channels[chan] = self._r2_trunk(chan, tps, group)
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

    def _r2_trunk(self, chan: int, tps: float, group: Any) -> E1R2Trunk:
        """An E1 R2 trunk of `group`: its calls are decided by the group's numbers."""
        return E1R2Trunk(chan, tps, group.variant, group=group.name, ani=group.ani,
                         category=group.category, answer_alarm_ms=group.answer_alarm_ms,
                         trace=group.trace, policy=group_policy(lambda: self.cfg, group))

    # -- run ---------------------------------------------------------------
    async def run(self, stop: asyncio.Event | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = stop or asyncio.Event()
        self._open_journal()
        try:
            self._open_boards()
        except BaseException:   # the boards opened before the one that failed
            for rt in self.boards:
                rt.board.close()
            raise
        settings = self.cfg.acd or default_settings(self.cfg)
        numbering = self.cfg.numbering
        self.calls.acd = AcdLink(self.calls, settings.build(
            self.cfg.channels.outbound, default_lang=self.cfg.prompts.default_lang,
            normalize=lambda n: normalize_number(n, numbering)),
            feature_codes=dict(settings.feature_codes))
        for rt in self.boards:
            for ch in rt.channels.values():
                if isinstance(ch, FxsPhone):
                    ch.recall_ms = settings.hold_recall_ms
        status = None
        network = None
        ami = None
        watch = None
        watchdog = None
        try:
            if self.recording is not None:   # crash recovery, then a recorder per board
                self.recording.open()
                watch = asyncio.create_task(self.recording.watch())
            self._issue_call_ids()
            if self.status_port is not None:
                from voiceserver.api.status import StatusApi
                from voiceserver.api.token import ensure_token
                acd = self.calls.acd.acd
                status = StatusApi(queues=lambda: acd.queue_rows(self.live_ms()),
                                   agents=lambda: acd.agent_rows(self.live_ms()),
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
            if self.api_port is not None:
                from voiceserver.api.network import NetworkApi
                from voiceserver.api.token import api_users
                st, api = self.cfg.storage, self.cfg.api
                network = NetworkApi(self.bus, host=api.host, port=self.api_port, users=api_users(api),
                                     audit_log=api.audit_log,
                                     journal=(st.events, self.server_id) if self.journal is not None and st else None,
                                     tls=(api.tls_cert, api.tls_key) if api.tls_cert and api.tls_key else None,
                                     backend=self)
                await network.start()
                self.network = network
                self.api_port = network.port
                self.bus.publish(0, ServerEventKind.API_LISTENING, host=self.cfg.api.host, port=network.port,
                                 protocol="http")
            if self.ami_port is not None:
                from voiceserver.api.ami import AmiFeed
                from voiceserver.api.token import api_users
                ami = AmiFeed(self.bus, host=self.cfg.api.ami_host, port=self.ami_port,
                              users=api_users(self.cfg.api), audit_log=self.cfg.api.audit_log, backend=self)
                await ami.start()
                self.ami, self.ami_port = ami, ami.port
                self.bus.publish(0, ServerEventKind.API_LISTENING, host=self.cfg.api.ami_host, port=ami.port,
                                 protocol="ami")
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
            self.calls.stopping = True
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
            if network is not None:
                self.network = None
                await network.close()
            if ami is not None:
                self.ami = None
                await ami.close()
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
            if self.journal is not None:     # the last events, and a clean stop: no gap after it
                self.journal.close()
                if self.journal.error:
                    log.error("%s", self.journal.error)

    def _open_journal(self) -> None:
        """The event journal ([storage] events): this run's numbers continue the last run's.
        A journal that cannot be opened stops the server (JournalError), like the call database."""
        st = self.cfg.storage
        if st is None or not st.events:
            return
        journal = EventJournal(st.events, self.server_id, keep=st.events_keep)
        self.bus.start_at(journal.open())
        self.bus.subscribe(journal, first=True)
        self.journal = journal

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

    def _reloaded(self, path: str, new: ServerConfig, err: ConfigError | None) -> bool:
        self.catch_up_clock()     # between ticks: what it publishes is stamped now
        self.reload_error = None if err is None else str(err)
        if err is not None:
            log.error("config reload rejected, keeping the running config: %s", err)
            self.bus.publish(self.tick, ServerEventKind.CONFIG_RELOAD_FAILED, error=str(err))
            if self.recording is not None:
                self.recording.config_rejected(err)
            return False
        self.cfg = self.calls.cfg = new
        self.bus.publish(self.tick, ServerEventKind.CONFIG_RELOADED, file=str(path))
        self.api_reload = self._reload_api_access(new)
        if self.recording is not None:   # the rules too (audit log); [storage] at restart
            self.recording.config_reloaded(new)
        elif new.storage is not None:
            log.warning("%s: [storage]/[recording] take effect when the server restarts", path)
        return True

    def _reload_api_access(self, new: ServerConfig) -> dict[str, Any]:
        """The network API's users and TLS certificate as the reloaded config names them
        (voiceserver.api.network.NetworkApi.reload_access); what it did, errors included."""
        if self.network is None and self.ami is None:
            return {}
        from voiceserver.api.token import TokenFileError, api_users
        api = new.api
        tls = (api.tls_cert, api.tls_key) if api.tls_cert and api.tls_key else None
        users: tuple[Any, ...] | None
        try:
            users = api_users(api)
        except TokenFileError as exc:       # the users as they were; the certificate still
            users, error = None, f"{exc}; the users before the reload stay"
        done = self.network.reload_access(users, tls) if self.network is not None else {}
        if users is None:
            done["users"] = {"error": error}
        elif self.ami is not None:          # the AMI feed logs in the same users
            done["ami"] = self.ami.reload_users(users)
        for part in ("users", "tls"):
            if "error" in done.get(part, {}):
                log.error("config reload: network API %s: %s", part, done[part]["error"])
        return done

    async def admin_reload(self) -> dict[str, Any]:
        """The admin command's reload of the file the running config came from (loaded in a
        worker thread, as SIGHUP's: calls go on meanwhile). `api`: the network API's users and
        TLS certificate reloaded (with `error` where one could not be)."""
        self.api_reload = {}
        ok = await self.reload_async(self.cfg.file)
        out = {"reloaded": ok, "file": self.cfg.file, "error": self.reload_error}
        if self.api_reload:
            out["api"] = self.api_reload
        return out

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

    def agent_control(self, agent: str, action: str, by: str = "admin API",
                      reason: str | None = None) -> dict[str, Any]:
        """Log an agent in/out or set it ready/not ready (`reason`: its reason code) from
        outside a tick (the API)."""
        if self.acd is None or not self.boards:
            raise LookupError("the server has not started")
        self.catch_up_clock()          # the ACD acts at the engines' ticks
        row, commands = self.calls.agent_control(agent, action, by, reason)
        self._apply(commands)
        return row

    def queue_member(self, agent: str, queue: str, join: bool, by: str, tier: int = 1,
                     penalty: int = 0) -> dict[str, Any]:
        """An agent joins (at `tier`, with `penalty`) or leaves a queue from outside a tick (AMI
        QueueAdd/QueueRemove, the network API's queue membership)."""
        if self.acd is None or not self.boards:
            raise LookupError("the server has not started")
        self.catch_up_clock()
        row, commands = self.calls.queue_member(agent, queue, join, by, tier, penalty)
        self._apply(commands)
        return row

    # -- what the network API asks of the server (voiceserver.api.network) --------
    def views(self) -> dict[str, Any]:
        """The network API's GET /v1/queues, /v1/agents, /v1/channels."""
        if self.acd is None:
            return {"channels": self.channel_rows}
        acd = self.acd.acd
        return {"queues": lambda: acd.queue_rows(self.live_ms()), "agents": lambda: acd.agent_rows(self.live_ms()),
                "channels": self.channel_rows}

    def call_agents(self, call_id: str) -> set[str]:
        """The agents a call is offered (ringing) or connected to: an agent user's own calls."""
        if self.acd is None:
            return set()
        out = {r.agent for r in self.acd.rings.values() if r.call_id == call_id and r.agent}
        call = self.acd.acd.calls.get(call_id)
        if call is not None and call.agent:
            out.add(call.agent)
        return out

    def call_command(self, call_id: str, command: str, by: str, **args: Any) -> dict[str, Any]:
        """A call command of the network API: answer, hold, retrieve, record-pause, record-resume,
        record-start, record-stop, mute and unmute (`party`), bridge (`call`), unbridge, route
        (`queue`, or `agent` with an optional `queue`), transfer (`number`, `trunk`), ivr (`menu`
        or `action`), play and collect (`prompts`, `say`, `lang`; play's `barge_in`, collect's
        `spec` and `secret`). ValueError: a prompt missing or a bad collect spec; LookupError: no
        such call; Conflict: not now."""
        if command in ("route", "transfer"):
            from voiceserver.ivr import flows
            self.catch_up_clock()
            try:
                if command == "route" and args.get("agent") is not None:
                    row, commands = self.calls.route_to_agent(call_id, args["agent"], args.get("queue"), by)
                else:
                    to = (flows.Queue(args["queue"]) if command == "route"
                          else flows.Transfer(args["number"], args["trunk"]))
                    row, commands = self.calls.take_from_ivr(call_id, to, by)
            except (LookupError, Conflict):     # a route decision that failed fell back: its media now
                self._apply(self.calls.media.take())
                raise
            self._apply(commands)
            return row
        if command == "ivr":
            self.catch_up_clock()
            row, commands = self.calls.ivr_jump(call_id, args.get("menu"), args.get("action"), by)
            self._apply(commands)
            return row
        if command in ("record-pause", "record-resume"):
            if self.recording is None:
                raise LookupError("nothing is recorded: the config has no [storage]/[recording]")
            return self.recording.pause_command(call_id, command == "record-pause", who=by)
        if command in ("hold", "retrieve"):
            self.catch_up_clock()
            row, commands = self.calls.hold_call(call_id, command == "hold", by)
            self._apply(commands)
            return row
        if command in ("record-start", "record-stop"):
            if self.recording is None:
                raise LookupError("nothing is recorded: the config has no [storage]")
            self.catch_up_clock()
            return self.recording.record_command(call_id, command == "record-start", who=by)
        if command == "answer":
            self.catch_up_clock()
            row, commands = self.calls.answer_call(call_id, by)
            self._apply(commands)
            return row
        if command in ("mute", "unmute"):
            self.catch_up_clock()
            row, commands = self.calls.mute(call_id, args.get("party", "agent"), command == "mute", by)
            self._apply(commands)
            return row
        if command in ("bridge", "unbridge"):
            self.catch_up_clock()
            row, commands = (self.calls.bridge_calls(call_id, args["call"], by) if command == "bridge"
                             else self.calls.unbridge_calls(call_id, by))
            self._apply(commands)
            return row
        if command in ("play", "collect"):
            from voiceserver.ivr import flows
            from voiceserver.ivr.collect import CollectSpec
            items: list[flows.PlayItem] = [flows.Prompt(name) for name in args.get("prompts", ())]
            items += [flows.Say(kind, value) for kind, value in args.get("say", ())]
            self.catch_up_clock()
            if command == "play":
                row, commands = self.calls.api_play(call_id, items, args.get("barge_in", True), args.get("lang"), by)
            else:
                row, commands = self.calls.api_collect(call_id, CollectSpec(**args["spec"]), args.get("secret", False),
                                                       items, args.get("lang"), by)
            self._apply(commands)
            return row
        raise LookupError(f"no call command {command!r}")

    def originate(self, trunk: str, number: str, then: dict[str, str], by: str) -> dict[str, Any]:
        """The network API's originate: dial `number` on a free line of trunk group `trunk`,
        then `then` once answered (voiceserver.core.controller.CallController.originate)."""
        if self.acd is None or not self.boards:
            raise LookupError("the server has not started")
        self.catch_up_clock()
        row, commands = self.calls.originate(trunk, number, then, by)
        self._apply(commands)
        return row

    def supervise(self, call_id: str, mode: str, supervisor: str, by: str) -> dict[str, Any]:
        """The network API's listen, whisper, barge, intercept and conference: `supervisor`'s
        phone joins a connected agent call (voiceserver.core.controller.CallController.supervise)."""
        self.catch_up_clock()
        row, commands = self.calls.supervise(call_id, mode, supervisor, by)
        self._apply(commands)
        return row

    def consult(self, call_id: str, action: str, party: str | None, by: str) -> dict[str, Any]:
        """The network API's consultative transfer: start (`party`), complete, cancel
        (voiceserver.core.controller.CallController.consult)."""
        self.catch_up_clock()
        row, commands = self.calls.consult(call_id, action, party, by)
        self._apply(commands)
        return row

    def hang_up(self, call_id: str, reason: str) -> dict[str, Any]:
        """End one call from outside a tick (the API); LookupError: no such call in progress."""
        self.catch_up_clock()
        self._apply(self.calls.hang_up(call_id, reason))
        return {"hung_up": call_id, "reason": reason}

    def stop(self) -> None:
        if self._loop is not None and self._stopped is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)

    def _engine_handler(self, index: int):
        def handler(tick: int, events: list) -> None:
            loop = self._loop
            if loop is None or loop.is_closed():
                return
            # Lockstep: the engine waits until the loop has handled the tick. A held lock
            # that the loop releases is the cheapest hand-back: an Event's set() was 4 %
            # of the loop thread's CPU in bench/server_mixed.py.
            done = threading.Lock()
            done.acquire()

            def run() -> None:
                try:
                    self._handle(index, tick, events)
                except Exception:  # a bug in a handler must not wedge the engine
                    log.exception("control plane failed on tick %d", tick)
                    self.error = "control plane error (see log)"
                    if self._stopped is not None:
                        self._stopped.set()
                finally:
                    done.release()
            try:
                loop.call_soon_threadsafe(run)
            except RuntimeError:  # loop closed during shutdown
                return
            if self.sync:
                while not done.acquire(timeout=0.5):
                    if self._stopped is not None and self._stopped.is_set():
                        return
        return handler

    # -- time --------------------------------------------------------------
    @property
    def tick(self) -> int:
        """The control plane's tick: the last one it handled (see `catch_up_clock`)."""
        return self.calls.tick

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
        self.calls.catch_up({rt.index: rt.engine.tick for rt in self.boards if rt.lost is None})
        return self.calls.tick

    def live_ms(self) -> int:
        """The first board's clock now, ticks without events too (the status views' time)."""
        rt = self.boards[0]
        return rt.ms_at(max(self.calls.tick, rt.engine.tick))

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
            if line.seized and self.recording is not None:
                call_id = self.recording.line_released(rt, line.chan, f"line found {what} at {when}: released")
            ch = rt.channels.get(line.chan)
            if line.phone_offhook and isinstance(ch, FxsPhone):
                ch.found_offhook(tick)      # busy tone until the agent hangs up
                self.calls.carry_out(rt, tick, ch)
                self._apply(self.calls.media.take())
            log.warning("%s:%d was %s at %s%s", rt.name, line.chan, what, when,
                        ": released" if line.seized else "")
            self.bus.publish(tick, ServerEventKind.LINE_RELEASED, chan=line.chan, call_id=call_id, board=rt.name,
                             when=when, state=what, released=line.seized)
        return lines

    def _handle(self, index: int, tick: int, events: list) -> None:
        """A tick's events from board `index`'s engine: the controller's, except an engine's end."""
        stopped = [ev for ev in events if ev.__class__ is EngineStopped]
        if stopped:
            events = [ev for ev in events if ev.__class__ is not EngineStopped]
        self._apply(self.calls.handle(index, tick, events))
        for ev in stopped:
            self._engine_stopped(self.boards[index], tick, ev)

    def _engine_stopped(self, rt: BoardRuntime, tick: int, ev: EngineStopped) -> None:
        if ev.lost and not self.calls.stopping:   # only this board's calls end; it is opened again
            self._board_lost(rt, tick, ev.error or "board lost")
            return
        if ev.error is not None and not ev.lost:   # fatal: the server stops (exit status 1)
            self.error = ev.error
        self.bus.publish(tick, ServerEventKind.BOARD_STOPPED, board=rt.name, error=ev.error)
        if self._stopped is not None:
            self._stopped.set()

    def end_all_calls(self, reason: str, rt: BoardRuntime | None = None) -> None:
        """End every call (of one board, or of all) with `reason`: records, rows, hang-ups."""
        self.catch_up_clock()
        self._apply(self.calls.end_all_calls(reason, rt))

    def _board_lost(self, rt: BoardRuntime, tick: int, error: str) -> None:
        """A board is gone: its calls end ("board lost"), its lines block, an alarm, and a task
        opens it again when it is back. The other boards go on."""
        rt.lost = error
        log.error("board %s lost: %s; its calls end, it is opened again when it is back", rt.name, error)
        self._apply(self.calls.board_lost(rt, tick, error))
        rt.reopen = asyncio.create_task(self._reopen(rt, tick))

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
        _read_spans(rt, board)
        for chan in rt.callerid_chans:
            engine.arm_callerid(chan, True)
        if self.recording is not None:
            self.recording.board_back(rt)
        self.release_lines(rt, tick, "board back")
        self._apply(self.calls.board_back(rt, tick))
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




def _read_spans(rt: BoardRuntime, board: Any) -> None:
    """Which channels each span carries, and its alarms now (the controller follows them by events)."""
    rt.span_chans = {}
    for c in board.channels:
        rt.span_chans.setdefault(c.span, []).append(c.index)
    rt.span_alarms = {sp.index: alarm_bits(board.span_status(sp.index)["alarms"]) for sp in board.spans}
