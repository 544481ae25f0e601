"""The server's side of recording: rules at answer, one recorder per board, call rows,
voicemail storage, and the rules' hot reload.

`VoiceServer` owns one `RecordingService` when its config has storage
([storage], or [recording], which brings default storage with it). At start
(`open`) it opens the call database, repairs what a crash left
(`voiceserver.recording.recorder.recover`), and gives every board's engine a
`Recorder` whose `capture` runs in the engine tick; the recorders write the
files on their own threads. The server calls the hooks below from its
control plane as calls happen; nothing here touches audio or a file on the
control plane, except the rules watcher's poll (a stat every few seconds).

Per answered inbound call (`CallRecording`): the rules' `Decision` on the
call's facts, its `PauseControl`, and the recorder handle. Sides in stereo:
left = the caller (the trunk's rx); right = what the server sends the caller
(prompts, music on hold, tones) until a party is bridged in, then that
party's line (the agent's phone or the transfer trunk, its rx), and back to
what the server sends when they leave. One file runs across queue music,
agents and transfers. docs/recording.md is the reference.

Call rows (every trunk call, recorded or not: `recording_rule`,
`recording_note` say why) are written as the call goes, so that a crash
loses as little as possible: created when the call starts (its id is new:
an existing row is never overwritten), then at answer, at each step of the
IVR path, when it joins a queue, when an agent takes it, and at the end;
every `SEEN_INTERVAL_S` the board's calls in progress get `last_seen`, the
end crash recovery gives them (voiceserver.recording.recorder.recover_calls). All of
it goes through the board's recorder, so its writer thread does the SQLite
work, never the tick or the control plane.

Threads: everything runs on the control plane (the server's asyncio loop)
except `_recorder_callback`, which the recorders call from their writer and
engine threads: it stores voicemail rows there (a database write, never on
the loop) and hands every event to the loop.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import os
import re
import sqlite3
import threading
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from boarddrv.chanref import ChannelRefError, parse_channel_ref
from boarddrv.tomlconfig import ConfigError
from voiceserver.core.callids import claim_server_id
from voiceserver.core.events import ServerEventKind
from voiceserver.ivr import flows as ivrmod
from voiceserver.recording.calldb import (
    CRASHED,
    CallDb,
    CallDbError,
    CallRow,
    iso,
    parse_time,
)
from voiceserver.recording.decision import RuleRef
from voiceserver.recording.recorder import (
    SILENCE,
    Recorder,
    RecorderEvent,
    recover_calls,
    recover_files,
)
from voiceserver.recording.rules import (
    CallFacts,
    Decision,
    PauseChange,
    PauseControl,
    RecordingRules,
    load_rules,
)
from voiceserver.recording.watch import ReloadEvent, RulesWatcher

if TYPE_CHECKING:
    from voiceserver.config.server import ServerConfig, StorageSettings
    from voiceserver.core.runtime import BoardRuntime, CallRecord, Leg, RecordingHost

log = logging.getLogger("voiceserver.recording.service")

FORMATS = {"wav-pcm16": "pcm16", "wav-alaw": "alaw"}   # rules' names -> the recorder's
VOICEMAIL_FORMAT = "pcm16"
RESUME_HOLD_MS = 2000     # a resume waits for the DTMF tone to end, at most this long
SEEN_INTERVAL_S = 5.0     # calls in progress get last_seen this often (crash recovery's end)
SEEN_TOKEN = ("calls", "seen")   # the engine timer that writes last_seen
API_RULE = RuleRef("api", None, "record-start")   # the "rule" of a recording started on demand
API_REASON = "api"               # its reason (recording.decision) and its stop's (recording.stopped)
_UNSAFE = re.compile(r"[^A-Za-z0-9+._@-]+")

Key = tuple[int, int]   # (board index, channel)


@dataclass
class CallRecording:
    """A call's recording as the control plane sees it (one per answered inbound call)."""

    call_id: str
    board: int                          # board index
    chan: int                           # the caller's trunk
    rules: RecordingRules | None        # the rules the decision was made under
    decision: Decision | None           # None: no [recording] rules
    facts: CallFacts
    answer_tick: int = 0
    handle: int | None = None           # the recorder's handle, once started
    started: int | None = None          # tick the recording started
    ended: int | None = None            # tick it ended before the call did
    end_rule: str | None = None         # and the rule / sentence for the call row
    end_note: str | None = None
    pause: PauseControl | None = None
    paused: bool = False
    resume_pending: PauseChange | None = None   # a resume held while a DTMF tone sounds
    resume_by: int | None = None        # ... but no later than this tick
    tones: set[int] = field(default_factory=set)   # channels with a DTMF tone on now
    other: int | None = None            # the channel on the right (bridged); None: the trunk's tx
    timer_at: int | None = None         # pause-control deadline armed (tick)
    path_written: int = 0               # IVR path entries already in the call row
    queue_written: str | None = None    # the queue already in the call row
    api: str | None = None              # who started it on demand (record-start): the rules no longer decide

    @property
    def recording(self) -> bool:
        return self.handle is not None and self.ended is None

    @property
    def live(self) -> int:
        """The recorder's handle of a recording that has started (`handle` is set)."""
        assert self.handle is not None, f"{self.call_id}: no recording started"
        return self.handle


@dataclass
class _Voicemail:
    board: int
    handle: int
    call_id: str
    mailbox: str
    chan: int
    caller: str | None
    when: dt.datetime
    reason: str = ""
    result: dict[str, Any] | None = None   # set by the writer thread when the file is done


class RecordingService:
    """Recorders, rules and call rows for one server (see the module docstring)."""

    def __init__(self, server: RecordingHost, storage: StorageSettings,
                 rules: RecordingRules | None, *, poll_interval: float = 5.0) -> None:
        self.s = server
        self.storage = storage
        self.rules = rules
        self.poll_interval = poll_interval
        self.db: CallDb | None = None
        self.run: int | None = None                 # this start's number in the database (call ids)
        self._lock: Any = None                      # the server id's lock file, held while running
        self.recorders: dict[int, Recorder] = {}
        self.calls: dict[str, CallRecording] = {}
        self.recovered: list[dict[str, Any]] = []
        self.recovered_calls: list[dict[str, Any]] = []
        self._ringing_at_crash: dict[tuple[str, int], dict[str, Any]] = {}   # (board, chan) -> call
        self._unsure: dict[str, dict[str, Any]] = {}   # call id -> the crashed call it may continue
        self.watcher: RulesWatcher | None = None
        self._by_trunk: dict[Key, str] = {}        # the caller's trunk -> call id
        self._by_other: dict[Key, str] = {}        # the bridged party's line -> call id
        self._handles: dict[Key, tuple[str, int]] = {}   # (board, handle) -> (call id, channel)
        self._vm: dict[Key, _Voicemail] = {}       # (board, handle) -> voicemail being recorded
        self._vm_calls: dict[str, _Voicemail] = {}
        self._vm_lock = threading.Lock()
        self._pending: deque[tuple[int, RecorderEvent]] = deque()   # recorder threads -> loop
        self._closed = False

    # -- life cycle -------------------------------------------------------------
    def open(self) -> None:
        """Database, crash recovery, directories, one recorder per board, the rules watcher.

        Call after the boards are open and before their engines start.
        CallDbError (the database cannot be opened) stops the server; a
        recordings directory that cannot be made is an alarm only: calls go
        on, unrecorded, and each failed recording says why.
        """
        st = self.storage
        sid = self.s.server_id
        self.db = CallDb(st.database)
        try:   # one running server per server id and database: recovery may then take its rows
            self._lock = claim_server_id(st.database, sid)
        except BaseException:
            self.db.close()
            raise
        self.run = self.db.start_run(sid, self.s.start_time)
        # rows left 'recording' (calls and voicemail alike), then stray .part files under both
        # roots; then the calls left open get their end (this server's rows only)
        self.recovered = (recover_files(st.recordings, self.db, sid)
                          + recover_files(st.voicemail, self.db, sid))
        self.recovered_calls = recover_calls(self.db, sid)
        self._ringing_at_crash = {(c["board"], c["channel"]): c for c in self.recovered_calls
                                  if c["direction"] == "inbound" and not c["answered"]
                                  and c["disposition"] == CRASHED}
        for r in self.recovered:
            self._recovered_voicemail(r)
            log.warning("recovered after a crash: %s (%s, %.1f s) of call %s",
                        r.get("path") or "(no audio)", r.get("status"), r.get("duration") or 0.0,
                        r.get("call_id"))
            self.s.bus.publish(0, ServerEventKind.RECORDING_RECOVERED, call_id=r.get("call_id"),
                               **{k: v for k, v in r.items() if k != "call_id"})
        for c in self.recovered_calls:
            log.warning("call %s left open by a crash: ended at %s (an estimate: %s)",
                        c["call_id"], c["end"], c["disposition"])
            self.s.bus.publish(0, ServerEventKind.CALL_RECOVERED, **c)
        for what, folder in (("recordings", st.recordings), ("voicemail", st.voicemail),
                             ("rules audit log", os.path.dirname(st.rules_audit))):
            try:
                os.makedirs(folder, exist_ok=True)
            except OSError as exc:
                reason = f"{what} directory {folder} cannot be made: {exc.strerror or exc}"
                log.error("%s", reason)
                self.s.bus.publish(0, ServerEventKind.RECORDING_FAILED, alarm=True, reason=reason)
        for rt in self.s.boards:
            self.board_back(rt)
        if self.rules is not None:
            self._watch(self.rules, None, "start")

    def board_back(self, rt: BoardRuntime) -> None:
        """A recorder for the board's engine (at start, and when a lost board is back)."""
        st = self.storage
        assert self.db is not None, "board_back before open()"
        rec = Recorder(self.db, st.recordings, nchan=rt.board.info.nchan, block=rt.board.block,
                       template=st.template, on_event=self._recorder_callback(rt.index),
                       recover_at_start=False,
                       backpressure=rt.board.info.clock == "lockstep")
        self.recorders[rt.index] = rec
        rt.engine.recorder = rec
        rt.engine.call_at(rt.tick_at(SEEN_INTERVAL_S * 1000), 0, SEEN_TOKEN)

    def board_lost(self, board: int) -> None:
        """The board's engine is gone: finish its files (kept) and rows, close its recorder.
        Call after its calls were ended (their rows are queued on the recorder)."""
        rec = self.recorders.get(board)
        if rec is not None:
            rec.close("board lost")

    def close(self) -> None:
        """After the engines stopped: complete the rows of calls still up, drain, close."""
        if self._closed:
            return
        for cr in list(self.calls.values()):
            rt = self.s.boards[cr.board]
            rec = self.recorders.get(cr.board)
            if rec is None:
                continue
            tick = rt.engine.tick
            note = cr.end_note
            if cr.recording:
                note = "kept: the server stopped during the call"
            rec.log_call(self._row(cr.call_id, end=self.s.time_at(rt, tick), disposition="server stopped",
                                   recording_note=note))
        for index, rec in self.recorders.items():   # calls not answered, outbound legs: end them too
            rt = self.s.boards[index]
            end = self.s.time_at(rt, rt.engine.tick)
            rec.db_write("ending the calls in progress", None,
                         functools.partial(_finish_open_calls, server_id=self.s.server_id, run=self.run,
                                           board=rt.name, end=end))
        self._closed = True
        finished = [rec.close() for rec in self.recorders.values()]
        self._drain_events()      # the last files' events: published before the server returns
        if self.db is not None and all(finished):   # a hung disk: its writer still holds the db
            self.db.close()
        if self._lock is not None and all(finished):
            self._lock.close()
            self._lock = None

    async def watch(self) -> None:
        """Poll the rules file every `poll_interval` seconds (a task on the server's loop)."""
        if self.poll_interval <= 0:
            return
        while True:
            await asyncio.sleep(self.poll_interval)
            if self.watcher is None:
                continue
            try:     # the file is read and validated in a worker thread: calls go on meanwhile
                await self.watcher.poll_async()
            except OSError as exc:     # the audit log cannot be written
                self._audit_failed(exc)

    def poll_rules(self) -> ReloadEvent | None:
        if self.watcher is None:
            return None
        try:
            return self.watcher.poll()
        except OSError as exc:     # the audit log cannot be written
            self._audit_failed(exc)
            return None

    def _audit_failed(self, exc: OSError) -> None:
        log.error("recording rules reload: %s", exc)
        self.s.bus.publish(self.s.tick, ServerEventKind.RECORDING_RULES_AUDIT_FAILED, alarm=True, error=str(exc))

    # -- time -------------------------------------------------------------------
    def _now(self) -> dt.datetime:
        """The rules watcher's clock, read as it applies a load (between ticks, after the
        worker thread): the control plane's clock caught up, so what it publishes is now."""
        rt = self.s.boards[0] if self.s.boards else None
        return self.s.start_time if rt is None else self.s.time_at(rt, self.s.catch_up_clock())

    # -- call rows ------------------------------------------------------------------
    def _row(self, call_id: str, **fields: Any) -> CallRow:
        """A write to the row of one of this run's calls (a row of another run is refused)."""
        return CallRow(call_id, server_id=self.s.server_id, run=self.run, **fields)

    def call_started(self, rt: BoardRuntime, tick: int, chan: int, call: Any) -> None:
        """A trunk call began (rings in, or the server seizes the line): its row, new."""
        at = self.s.time_at(rt, tick)
        old = self._rung_before_crash(rt, chan, call, at)
        if old is not None and old.get("caller") and not call.caller:
            self._unsure[call.call_id] = old   # the caller ID decides, at the offer (`offered`)
            old = None
        if old is not None:
            self._adopt(call, old)
        self.recorders[rt.index].log_call(self._row(
            call.call_id, start=self._start_of(rt, call), board=rt.name, channel=chan,
            direction=call.direction, caller=call.caller, called=call.called, last_seen=at), new=True)
        if old is not None:
            self._drop_crashed(rt, tick, chan, call, old)

    def offered(self, rt: BoardRuntime, tick: int, chan: int, call: Any) -> None:
        """The call is offered to the IVR, its caller ID heard or none to come: a call that may
        continue the crashed run's ringing call (`call_started`) does if no other number came.

        A caller can give up while the server restarts and another ring the line
        at once: only the number tells them apart."""
        old = self._unsure.pop(call.call_id, None)
        if old is None or (call.caller and call.caller != old["caller"]):
            return
        self._adopt(call, old)
        self.recorders[rt.index].log_call(self._row(call.call_id, start=self._start_of(rt, call),
                                                    caller=call.caller))
        self._drop_crashed(rt, tick, chan, call, old)

    def _adopt(self, call: Any, old: dict[str, Any]) -> None:
        """The same caller still ringing: one row, from the first ring, with its caller ID."""
        if old.get("start"):
            call.data["first_ring"] = parse_time(old["start"])
        call.caller = call.caller or old["caller"]

    def _drop_crashed(self, rt: BoardRuntime, tick: int, chan: int, call: Any, old: dict[str, Any]) -> None:
        self.recorders[rt.index].db_write(
            "dropping the row of a call that rang before the crash", old["call_id"],
            lambda db: db.drop_ringing_crashed(old["call_id"], call.call_id))
        self.s.bus.publish(tick, ServerEventKind.CALL_CONTINUED, chan=chan, call_id=call.call_id, board=rt.name,
                           before_crash=old["call_id"])

    def line_released(self, rt: BoardRuntime, chan: int, note: str) -> str | None:
        """A line the card had seized (a killed run's, or before a board reset) was put back:
        `note` on the row of the call that had it; its id, or None.

        A seized line's call was answered, or being answered, when the server
        died, even if its row never got the answer: it was not ringing, so the
        next call ringing on that line is a new caller, never its continuation."""
        self._ringing_at_crash.pop((rt.name, chan), None)
        if self.db is None:
            return None
        return self.db.note_line_released(rt.name, chan, note)

    def _start_of(self, rt: BoardRuntime, call: Any) -> dt.datetime:
        """The call's start: its first ring, which may have come before a crash."""
        return call.data.get("first_ring") or self.s.time_at(rt, call.start_tick)

    def _rung_before_crash(self, rt: BoardRuntime, chan: int, call: Any,
                           at: dt.datetime) -> dict[str, Any] | None:
        """The crashed run's call that was ringing on this line, if `call` (the line's first
        call since the restart) is that caller still ringing: inbound, within a ring cycle of
        when the call was last seen, and no other caller ID."""
        old = self._ringing_at_crash.pop((rt.name, chan), None)
        if old is None or call.direction != "inbound" or old.get("end") is None:
            return None
        if call.caller and old["caller"] and call.caller != old["caller"]:
            return None
        ch = rt.channels.get(chan)
        ring_gone = getattr(getattr(ch, "t", None), "ring_gone_ms", 6000) / 1000 + SEEN_INTERVAL_S
        gap = (parse_time(str(iso(at))) - parse_time(str(iso(old["end"])))).total_seconds()
        return old if 0 <= gap <= ring_gone else None

    def progress(self, rt: BoardRuntime, tick: int, leg: Leg) -> None:
        """After the IVR's commands: the call row gets the IVR path and the queue, if they changed."""
        cr = self.calls.get(leg.call.call_id)
        if cr is None or (cr.path_written == len(leg.path) and cr.queue_written == cr.facts.queue):
            return
        cr.path_written, cr.queue_written = len(leg.path), cr.facts.queue
        self.recorders[rt.index].log_call(self._row(
            cr.call_id, ivr_path=list(leg.path), queue=cr.facts.queue,
            last_seen=self.s.time_at(rt, tick)))

    def _seen(self, rt: BoardRuntime, tick: int) -> None:
        """Every SEEN_INTERVAL_S: the board's calls in progress are alive now (one UPDATE)."""
        rt.engine.call_at(tick + max(1, rt.tick_at(SEEN_INTERVAL_S * 1000)), 0, SEEN_TOKEN)
        rec = self.recorders.get(rt.index)
        if rec is None or self._closed:
            return
        at = self.s.time_at(rt, tick)
        run = self.run
        assert run is not None, "a recorder without a run of the call database"
        rec.db_write("marking the calls in progress seen", None,
                     lambda db: db.mark_seen(self.s.server_id, run, rt.name, at))

    # -- hooks: the server calls these from its control plane ---------------------
    def answered(self, rt: BoardRuntime, tick: int, chan: int, leg: Leg) -> None:
        """The server answered an inbound call: decide, start recording, write the call row."""
        call = leg.call
        facts = CallFacts(call.call_id, call.direction, rt.name, chan, self._span(rt, chan),
                          call.caller, call.called)
        rules = self.rules
        at = self.s.time_at(rt, tick)
        # the decision's rule and reason go out; its chain of checks is `rules explain`'s
        d = rules.decide(facts, at, explain=False) if rules is not None else None
        cr = CallRecording(call.call_id, rt.index, chan, rules, d, facts, answer_tick=tick)
        self.calls[call.call_id] = cr
        self._by_trunk[(rt.index, chan)] = call.call_id
        if d is not None:
            self.s.bus.publish(tick, ServerEventKind.RECORDING_DECISION, chan=chan, call_id=call.call_id,
                               board=rt.name, record=d.record, rule=str(d.rule), reason=d.reason)
        if d is not None and d.record:
            self._start(rt, tick, cr)
        self.recorders[rt.index].log_call(self._row(
            call.call_id, start=self._start_of(rt, call), answer=at, last_seen=at,
            board=rt.name,
            channel=chan, direction=call.direction, caller=call.caller, called=call.called,
            recording_rule=None if d is None else str(d.rule),
            recording_note=None if d is None else
            (f"recording: {d.reason}" if d.record else f"not recorded: {d.reason}")))

    def ivr_commands(self, rt: BoardRuntime, tick: int, leg: Leg, cmds: list) -> None:
        """Every IVR command as the server carries it out: pauses, IVR branches, queues."""
        cr = self.calls.get(leg.call.call_id)
        if cr is None:
            return
        t = rt.ms_at(tick)
        changed = False
        for cmd in cmds:
            if isinstance(cmd, ivrmod.Log) and cmd.step.what == "menu" \
                    and cmd.step.detail not in cr.facts.ivr_path:
                cr.facts = replace(cr.facts, ivr_path=cr.facts.ivr_path + (cmd.step.detail,))
                changed = True
            elif isinstance(cmd, ivrmod.Queue) and cmd.name != cr.facts.queue:
                cr.facts = replace(cr.facts, queue=cmd.name)
                changed = True
            if cr.recording and cr.pause is not None and cr.pause.hears_ivr:
                self._pause_changes(rt, tick, cr, cr.pause.ivr_command(cmd, t))
        if changed:
            self._recheck(rt, tick, cr, self._rules_for(cr), "the call changed")
        self._arm(rt, tick, cr)

    def digit(self, rt: BoardRuntime, tick: int, chan: int, leg: Leg, d: str, *,
              secret: bool = False) -> None:
        """A DTMF digit began on `chan` (the caller's trunk or a bridged phone); `secret`:
        masked input (voiceserver.core.masking), which the pause control must not keep."""
        cr = self.calls.get(leg.call.call_id)
        if cr is None:
            return
        cr.tones.add(chan)
        if cr.recording and cr.pause is not None and cr.pause.hears_keys:
            self._pause_changes(rt, tick, cr, cr.pause.digit(d, rt.ms_at(tick), secret=secret))
            self._arm(rt, tick, cr)

    def digit_end(self, rt: BoardRuntime, tick: int, chan: int, leg: Leg | None) -> None:
        """A DTMF tone ended on `chan`: a resume held back for it goes through now."""
        cr = self.calls.get(leg.call.call_id) if leg is not None else None
        if cr is None:
            return
        cr.tones.discard(chan)
        if cr.resume_pending is not None and not cr.tones:
            change, cr.resume_pending = cr.resume_pending, None
            self._pause_changes(rt, tick, cr, [change])

    def timer(self, rt: BoardRuntime, tick: int, token: tuple) -> None:
        """Token ("rec", call_id): a pause-control deadline (a [[pause_dtmf]] timeout), or
        the latest moment for a resume held back by a DTMF tone; SEEN_TOKEN: last_seen."""
        if token == SEEN_TOKEN:
            self._seen(rt, tick)
            return
        cr = self.calls.get(token[1])
        if cr is None or cr.pause is None or not cr.recording:
            return
        if cr.resume_pending is not None and cr.resume_by is not None and tick >= cr.resume_by:
            cr.tones.clear()          # a release that never came: do not stay paused for good
            change, cr.resume_pending = cr.resume_pending, None
            self._pause_changes(rt, tick, cr, [change])
        if cr.timer_at is not None and tick >= cr.timer_at:
            cr.timer_at = None
        self._pause_changes(rt, tick, cr, cr.pause.tick(rt.ms_at(tick)))
        self._arm(rt, tick, cr)

    def bridged(self, rt: BoardRuntime, tick: int, caller_chan: int, other_chan: int,
                agent: str | None) -> None:
        """An agent (or a transfer's callee) was bridged to the caller: they go on the right."""
        cid = self._by_trunk.get((rt.index, caller_chan))
        cr = self.calls.get(cid) if cid is not None else None
        if cr is None:
            return
        if cr.other is not None:
            self._by_other.pop((rt.index, cr.other), None)
        cr.other = other_chan
        self._by_other[(rt.index, other_chan)] = cr.call_id
        if cr.recording:
            self.recorders[rt.index].retarget(cr.live, agent=("rx", other_chan))
        if agent and agent != cr.facts.agent:
            cr.facts = replace(cr.facts, agent=agent)
            self._recheck(rt, tick, cr, self._rules_for(cr), "the call changed")
            leg = self.s.legs.get((rt.index, caller_chan))
            took = leg.call.data.get("agent_answer_tick") if leg is not None else None
            self.recorders[rt.index].log_call(self._row(
                cr.call_id, agent=agent, last_seen=self.s.time_at(rt, tick),
                agent_answer=None if took is None else self.s.time_at(rt, took)))

    def leg_gone(self, rt: BoardRuntime, tick: int, chan: int) -> None:
        """A leg ended on `chan`: if it was on the right of a recording, the trunk's tx goes back."""
        cid = self._by_other.pop((rt.index, chan), None)
        cr = self.calls.get(cid) if cid is not None else None
        if cr is None or cr.other != chan:
            return
        cr.other = None
        cr.tones.discard(chan)
        if cr.recording:
            self.recorders[rt.index].retarget(cr.live, agent=("tx", cr.chan))

    def call_ended(self, rt: BoardRuntime, record: CallRecord, end_tick: int) -> None:
        """A trunk call ended (any: answered or not, inbound or outbound): keep or discard, row."""
        row = CallRow.from_record(record)
        row.server_id, row.run = self.s.server_id, self.run
        old = self._unsure.pop(record.call_id, None)
        if old is not None and (not record.caller or record.caller == old["caller"]):
            # gone before its offer, no other caller ID heard: the crashed call's caller
            row.start = parse_time(old["start"]) if old.get("start") else row.start
            row.caller = row.caller or old["caller"]
            self._drop_crashed(rt, end_tick, record.chan, record, old)
        cr = self.calls.pop(record.call_id, None)
        if cr is not None:
            self._by_trunk.pop((cr.board, cr.chan), None)
            if cr.other is not None:
                self._by_other.pop((cr.board, cr.other), None)
            row.queue = cr.facts.queue
            # the server answered the line then (the same as record.answer: an agent's
            # phone keeps its own answer apart, in record.agent_answer)
            row.answer = self.s.time_at(rt, cr.answer_tick)
            row.recording_rule, row.recording_note = self._settle(rt, cr, end_tick)
        rec = self.recorders.get(rt.index)
        if rec is not None:
            rec.log_call(row)

    def voicemail_record(self, rt: BoardRuntime, tick: int, key: Key, call_id: str,
                         mailbox: str, max_ms: int) -> dict[str, Any]:
        """Record the caller alone (mono) into the mailbox's folder; the row comes at the end."""
        leg = self.s.legs.get(key)
        caller = leg.call.caller if leg is not None else None
        folder = Path(self.storage.voicemail) / (_UNSAFE.sub("_", mailbox).strip("._") or "mailbox")
        when = self.s.time_at(rt, tick)
        h = self.recorders[rt.index].start(
            self._row(call_id, board=rt.name, channel=key[1], caller=caller), chan=key[1],
            layout="mono", fmt=VOICEMAIL_FORMAT, caller=("rx", key[1]), agent=SILENCE,
            max_seconds=max_ms / 1000.0 if max_ms > 0 else None, when=when, root=folder)
        vm = _Voicemail(rt.index, h, call_id, mailbox, key[1], caller, when)
        with self._vm_lock:
            self._vm[(rt.index, h)] = vm
            self._vm_calls[call_id] = vm
        self._handles[(rt.index, h)] = (call_id, key[1])
        return {"stored": True, "directory": str(folder)}

    def voicemail_stop(self, rt: BoardRuntime, tick: int, key: Key, call_id: str,
                       mailbox: str, reason: str) -> bool:
        """End the message; `voicemail.record_stop` follows once the file and its row are stored."""
        with self._vm_lock:
            vm = self._vm_calls.get(call_id)
        if vm is None or vm.mailbox != mailbox:
            return False
        vm.reason = reason
        self.recorders[vm.board].stop(vm.handle, reason=f"voicemail: {reason}")
        return True

    def _call_recording(self, target: str) -> CallRecording | None:
        """The call of a command: its id, or BOARD:CHANNEL of its trunk."""
        cr = self.calls.get(target)
        if cr is None and ":" in target:
            try:
                ref = parse_channel_ref(target)
            except ChannelRefError:
                ref = None
            for rt in self.s.boards:
                if ref is not None and rt.name == ref.board:
                    cid = self._by_trunk.get((rt.index, ref.chan))
                    cr = self.calls.get(cid) if cid is not None else None
        return cr

    def pause_command(self, target: str, pause: bool, who: str = "api") -> dict[str, Any]:
        """Pause or resume a call's recording by command (call id, or BOARD:CHANNEL)."""
        cr = self._call_recording(target)
        if cr is None:
            raise LookupError(f"no call {target!r} in progress (give a call id or BOARD:CHANNEL)")
        out: dict[str, Any] = {"call_id": cr.call_id, "recording": cr.recording,
                               "paused": cr.paused, "changed": False}
        if not cr.recording or cr.pause is None:
            out["why"] = cr.end_note or ("not recorded: " + cr.decision.reason
                                         if cr.decision is not None else "no recording rules")
            return out
        rt = self.s.boards[cr.board]
        # between ticks (the status API): the engine's tick, not the last tick with events;
        # the recorder applies the change at its next tick
        tick = max(self.s.tick, rt.engine.tick)
        changes = cr.pause.command(pause, rt.ms_at(tick), who)
        self._pause_changes(rt, tick, cr, changes)
        out.update(paused=cr.pause.paused, changed=bool(changes))
        if not changes:
            if cr.rules is not None and not cr.rules.pause_by_command:
                out["why"] = f"refused: pause_by_command = false ({cr.rules.ref('pause_by_command')})"
            elif not pause and cr.pause.paused:
                out["why"] = "a rule's pause is on: a command cannot lift it"
            else:
                out["why"] = "already " + ("paused" if pause else "running")
        return out

    def record_command(self, target: str, start: bool, who: str = "api") -> dict[str, Any]:
        """Start or stop a call's recording on demand (the API's record-start, record-stop):
        call id or BOARD:CHANNEL. A start makes a recording whose decision's reason is "api"
        (the rules' layout, format and limit; from then on the rules no longer start or stop
        it); a stop finishes the file and its row (reason "api") whoever started it; a start
        after a stop makes a new file. An answered call the rules never saw (an originated
        one) is recorded too. LookupError: no such call answered."""
        cr = self._call_recording(target) or self._adopt_answered(target)
        if cr is None:
            raise LookupError(f"no answered call {target!r} in progress (give a call id or BOARD:CHANNEL)")
        rt = self.s.boards[cr.board]
        tick = max(self.s.tick, rt.engine.tick)     # between ticks: the engine's tick
        out: dict[str, Any] = {"call_id": cr.call_id, "recording": cr.recording, "changed": False}
        if start == cr.recording:
            out["why"] = "already recording" if start else "not recording"
            return out
        if start:
            rules = cr.rules or self.rules or RecordingRules(file="(no rules)")
            cr.rules, cr.api, cr.ended = rules, who, None
            cr.decision = Decision(True, API_RULE, API_REASON, rules.format, rules.layout, rules.max_seconds,
                                   facts=cr.facts, at=self.s.time_at(rt, tick))
            cr.paused, cr.resume_pending, cr.tones = False, None, set()
            self.s.bus.publish(tick, ServerEventKind.RECORDING_DECISION, chan=cr.chan, call_id=cr.call_id,
                               board=rt.name, record=True, rule=str(API_RULE), reason=API_REASON)
            self._start(rt, tick, cr)
            self.recorders[rt.index].log_call(self._row(
                cr.call_id, recording_rule=str(API_RULE), recording_note=f"recording: {API_REASON} ({who})"))
        else:
            self.recorders[rt.index].stop(cr.live, reason=API_REASON)
            cr.ended = tick
            cr.end_rule, cr.end_note = str(API_RULE), f"{API_REASON}: stopped by {who}"
        out.update(recording=cr.recording, changed=True)
        return out

    def _adopt_answered(self, call_id: str) -> CallRecording | None:
        """A CallRecording for an answered trunk call the rules never saw (an originated call),
        so that the API may record it."""
        for (board, chan), leg in self.s.legs.items():
            call = leg.call
            if call.call_id != call_id or call.answer_tick is None or call.chan != chan:
                continue
            rt = self.s.boards[board]
            facts = CallFacts(call.call_id, call.direction, rt.name, chan, self._span(rt, chan),
                              call.caller, call.called)
            cr = self.calls[call_id] = CallRecording(call_id, board, chan, None, None, facts,
                                                     answer_tick=call.answer_tick)
            self._by_trunk[(board, chan)] = call_id
            return cr
        return None

    # -- config reload (SIGHUP / the admin command) ----------------------------------
    def config_reloaded(self, cfg: ServerConfig) -> None:
        """The server config was reloaded: its rules apply as an operator's reload."""
        if cfg.storage is not None and cfg.storage != self.storage:
            log.warning("[storage] changed in %s: it takes effect when the server restarts", cfg.file)
            self.s.bus.publish(self.s.tick, ServerEventKind.RECORDING_STORAGE_UNCHANGED, file=cfg.file,
                               reason="[storage] takes effect at restart")
        new = cfg.recording
        if new is None:
            if self.rules is not None:
                log.warning("recording rules removed from %s: new calls are not recorded", cfg.file)
                seq = None
                if self.watcher is not None:     # the audit log shows recording switched off
                    seq = self.watcher.removed("command", str(cfg.file)).seq
                self.s.bus.publish(self.s.tick, ServerEventKind.RECORDING_RULES_REMOVED, file=cfg.file,
                                   reload=seq, audit_log=self.storage.rules_audit)
            self.rules = None
            self.watcher = None
            return
        if self.watcher is not None and os.path.abspath(self.watcher.path) == os.path.abspath(new.file):
            try:     # the rules the config reload loaded (off the loop): not read again
                self.watcher.reload("command", loaded=new)
            except OSError as exc:
                log.error("recording rules reload: %s", exc)
        else:
            self._watch(new, self.rules, "command")

    def config_rejected(self, err: ConfigError) -> None:
        """A config reload failed; if the rules file is at fault, the audit log says so too."""
        errors = getattr(err, "errors", [err])
        if self.watcher is not None and any(
                e.file is not None and os.path.abspath(str(e.file)) == os.path.abspath(self.watcher.path)
                for e in errors):
            try:
                self.watcher.reload("command", loaded=err)
            except OSError as exc:
                log.error("recording rules reload: %s", exc)

    # -- internals ---------------------------------------------------------------------
    def _span(self, rt: BoardRuntime, chan: int) -> int | None:
        """The E1 span of a channel (for span rules); None on analog spans."""
        try:
            info = rt.board.channels[chan]
            return info.span if rt.board.spans[info.span].kind == "e1" else None
        except (IndexError, AttributeError):
            return None

    def _rules_for(self, cr: CallRecording) -> RecordingRules | None:
        """A changed fact is checked under the rules in force (a reload has rechecked the call)."""
        return self.rules if self.rules is not None else cr.rules

    def _start(self, rt: BoardRuntime, tick: int, cr: CallRecording) -> None:
        d = cr.decision
        assert d is not None and cr.rules is not None
        row = self._row(cr.call_id, board=rt.name, channel=cr.chan, direction=cr.facts.direction,
                        caller=cr.facts.caller, called=cr.facts.called, agent=cr.facts.agent)
        h = self.recorders[rt.index].start(
            row, chan=cr.chan, layout=d.layout, fmt=FORMATS.get(d.format, "pcm16"),
            agent=("rx", cr.other) if cr.other is not None else None,
            max_seconds=d.max_seconds if d.max_seconds else None, when=self.s.time_at(rt, tick))
        cr.handle, cr.started = h, tick
        cr.pause = cr.rules.pause_control()
        self._handles[(rt.index, h)] = (cr.call_id, cr.chan)

    def _pause_changes(self, rt: BoardRuntime, tick: int, cr: CallRecording,
                       changes: list[PauseChange]) -> None:
        rec = self.recorders[rt.index]
        for c in changes:
            if not cr.recording:
                return
            if c.paused:
                cr.resume_pending = None
                if not cr.paused:
                    rec.pause(cr.live)
            elif cr.tones:
                # The digit that ended the collection still sounds: resume when it stops,
                # so no tail of a card number's last digit reaches the file.
                if cr.resume_pending is None:
                    cr.resume_by = tick + rt.tick_at(RESUME_HOLD_MS)
                    rt.engine.call_at(cr.resume_by, cr.chan, ("rec", cr.call_id))
                cr.resume_pending = c
                continue
            elif cr.paused:
                rec.resume(cr.live)
            cr.paused = c.paused
            kind = ServerEventKind.RECORDING_PAUSED if c.paused else ServerEventKind.RECORDING_RESUMED
            self.s.bus.publish(tick, kind,
                               chan=cr.chan, call_id=cr.call_id, board=rt.name, reason=c.reason,
                               rule=str(c.rule))

    def _arm(self, rt: BoardRuntime, tick: int, cr: CallRecording) -> None:
        dl = cr.pause.deadline if cr.pause is not None and cr.recording else None
        if dl is None:
            return
        at = max(rt.tick_at(dl), tick + 1)
        if cr.timer_at == at:
            return
        cr.timer_at = at
        rt.engine.call_at(at, cr.chan, ("rec", cr.call_id))

    def _seconds(self, rt: BoardRuntime, cr: CallRecording, end_tick: int) -> float:
        assert cr.started is not None
        s = max(0, end_tick - cr.started) * rt.ms_per_tick / 1000.0
        d = cr.decision
        return min(s, d.max_seconds) if d is not None and d.max_seconds else s

    def _recheck(self, rt: BoardRuntime, tick: int, cr: CallRecording,
                 rules: RecordingRules | None, source: str) -> None:
        """Re-ask the rules (the call changed, or new rules): stop, or start by a force rule.
        A recording started on demand (`api`) is the API's to stop."""
        if rules is None or cr.decision is None or cr.api is not None:
            return
        was = cr.decision
        d = rules.recheck(was, cr.facts, self.s.time_at(rt, tick))
        cr.decision = d
        if d.stopped and not was.stopped and cr.recording:
            k = rules.keep(d, self._seconds(rt, cr, tick))
            self.recorders[rt.index].stop(cr.live, reason=f"{source}: {d.reason}",
                                          discard=None if k.keep else _why_discarded(k.reason))
            cr.ended = tick
            cr.end_rule, cr.end_note = str(d.rule), f"{source}: {k.reason}"
            self.s.bus.publish(tick, ServerEventKind.RECORDING_RULES_STOP, chan=cr.chan, call_id=cr.call_id,
                               board=rt.name, rule=str(d.rule), reason=d.reason, source=source,
                               keep=k.keep, keep_reason=k.reason)
        elif d.record and d.started_mid_call and cr.handle is None:
            cr.rules = rules
            self._start(rt, tick, cr)
            self.s.bus.publish(tick, ServerEventKind.RECORDING_DECISION, chan=cr.chan, call_id=cr.call_id,
                               board=rt.name, record=True, rule=str(d.rule), reason=d.reason)

    def _settle(self, rt: BoardRuntime, cr: CallRecording, end_tick: int
                ) -> tuple[str | None, str | None]:
        """At the call's end: keep or discard; (rule, note) for the call row."""
        d = cr.decision
        if d is None:
            return None, None
        if cr.handle is None:
            return str(d.rule), f"not recorded: {d.reason}"
        if cr.ended is not None:           # stopped early: rules, failure, the API (the note says)
            return cr.end_rule, cr.end_note
        if cr.api is not None:             # started on demand: kept whatever the rules' minimum
            self.recorders[rt.index].stop(cr.live, reason="call end")
            cr.ended = end_tick
            return str(API_RULE), f"recording: {API_REASON} ({cr.api})"
        assert cr.rules is not None
        k = cr.rules.keep(d, self._seconds(rt, cr, end_tick))
        self.recorders[rt.index].stop(cr.live, reason="call end",
                                      discard=None if k.keep else _why_discarded(k.reason))
        cr.ended = end_tick
        return str(k.rule), k.reason

    def _watch(self, rules: RecordingRules, current: RecordingRules | None, source: str) -> None:
        path = os.path.abspath(rules.file)
        self.watcher = RulesWatcher(path, self._loader(path), self._rules_applied,
                                    self._rules_rejected, audit_path=self.storage.rules_audit,
                                    clock=self._now, current=current)
        try:   # the audit log's "start" entry, or the switch to another file; loaded already
            self.watcher.reload("start" if current is None else source, loaded=rules)
        except OSError as exc:
            log.error("recording rules audit log %s: %s", self.storage.rules_audit, exc)
        if self.watcher.current is None:      # the start load failed: the config's rules run
            self.watcher.current = rules

    def _loader(self, path: str):
        if path == os.path.abspath(self.s.cfg.file):   # inline [recording]: the server config
            def load_inline(p: str) -> RecordingRules:
                from voiceserver.config.server import load_config
                rules = load_config(p).recording
                if rules is None:
                    raise ConfigError(p, None, "recording",
                                      "the [recording] section is gone (a config reload turns "
                                      "recording off; the running rules stay)")
                return rules
            return load_inline
        plan = self.s.cfg.numbering
        return lambda p: load_rules(p, plan)

    def _rules_applied(self, new: RecordingRules, old: RecordingRules | None,
                       ev: ReloadEvent) -> None:
        self.rules = new
        if old is None:
            log.info("recording rules from %s in force (audit log: %s)", ev.file,
                     self.storage.rules_audit)
        else:
            log.info("%s", ev.summary())
        for w in ev.warnings:
            log.warning("recording rules: %s", w)
        self.s.bus.publish(self.s.tick, ServerEventKind.RECORDING_RULES_RELOADED, reload=ev.seq, source=ev.source,
                           file=ev.file, changes=[c.text() for c in ev.changes],
                           warnings=list(ev.warnings), audit_log=self.storage.rules_audit)
        if old is None:
            return
        for cr in list(self.calls.values()):     # calls in progress: unless excluded now, unchanged
            rt = self.s.boards[cr.board]
            self._recheck(rt, max(self.s.tick, cr.answer_tick), cr, new, "rules reload")

    def _rules_rejected(self, err: ConfigError, ev: ReloadEvent) -> None:
        log.error("%s", ev.summary())
        self.s.bus.publish(self.s.tick, ServerEventKind.RECORDING_RULES_REJECTED, reload=ev.seq, source=ev.source,
                           file=ev.file, error=str(err), audit_log=self.storage.rules_audit)

    # -- recorder events ---------------------------------------------------------------
    def _recorder_callback(self, board: int):
        def callback(ev: RecorderEvent) -> None:     # the recorder's threads
            ended = (ServerEventKind.RECORDING_STOPPED, ServerEventKind.RECORDING_FAILED)
            if ev.handle is not None and ev.kind in ended:
                with self._vm_lock:
                    vm = self._vm.get((board, ev.handle))
                if vm is not None:
                    self._store_voicemail(vm, ev)
            self._pending.append((board, ev))
            loop = self.s.loop
            if loop is None:
                return
            try:
                loop.call_soon_threadsafe(self._drain_events)
            except RuntimeError:     # the loop has closed (shutdown): the log has it
                log.info("recorder event after shutdown: %s %s", ev.kind, ev.detail)
        return callback

    def _drain_events(self) -> None:
        """The loop: handle the recorders' events in the order they came."""
        while self._pending:
            board, ev = self._pending.popleft()
            try:
                self._recorder_event(board, ev)
            except Exception:  # noqa: BLE001 - one bad event must not lose the others
                log.exception("recorder event %s failed", ev.kind)

    def _store_voicemail(self, vm: _Voicemail, ev: RecorderEvent) -> None:
        """Writer thread: the message's row, once its file is final."""
        path = ev.detail.get("path")
        # a message cut short by a failure (disk full) keeps what was said: the owner gets it
        if ev.detail.get("status") == "kept" and path:
            try:
                self._ensure_mailbox(vm.mailbox)
                assert self.db is not None          # voicemail is stored only with a database
                mid = self.db.add_voicemail(vm.mailbox, path=path, created=vm.when,
                                            duration=float(ev.detail.get("duration")
                                                           or ev.detail.get("seconds") or 0.0),
                                            call_id=vm.call_id, caller=vm.caller)
                duration = ev.detail.get("duration", ev.detail.get("seconds"))
                vm.result = {"stored": True, "path": path, "message_id": mid, "duration": duration}
                if ev.kind == ServerEventKind.RECORDING_FAILED:
                    vm.result["cut_short"] = ev.detail.get("reason")
            except (CallDbError, sqlite3.Error) as exc:
                vm.result = {"stored": False, "path": path, "error": f"database error: {exc}"}
        elif ev.kind == ServerEventKind.RECORDING_STOPPED:
            vm.result = {"stored": False, "error": ev.detail.get("discard_reason") or "no audio"}
        else:
            vm.result = {"stored": False, "error": ev.detail.get("reason"),
                         "path": ev.detail.get("path")}

    def _ensure_mailbox(self, mailbox: str) -> None:
        assert self.db is not None
        if self.db.query("SELECT 1 FROM mailboxes WHERE mailbox = ?", (mailbox,)):
            return
        owner = None
        acd = self.s.cfg.acd
        box = acd.voicemail.mailboxes.get(mailbox) if acd is not None else None
        if box is not None:
            owner = box.owner
        self.db.add_mailbox(mailbox, owner_agent=owner, description="made by the voice server "
                                                                    "for its first message")

    def _recovered_voicemail(self, r: dict[str, Any]) -> None:
        """A voicemail message a crash interrupted: its file is recovered, give it its row."""
        path = r.get("path")
        if r.get("status") != "kept" or not path:
            return
        try:
            rel = Path(path).resolve().relative_to(Path(self.storage.voicemail).resolve())
        except ValueError:
            return
        if len(rel.parts) < 2:
            return
        mailbox = rel.parts[0]
        assert self.db is not None
        rows = self.db.query("SELECT r.started, c.caller FROM recordings r LEFT JOIN calls c "
                             "ON c.call_id = r.call_id WHERE r.path = ?", (path,))
        if not rows:
            return
        from voiceserver.recording.calldb import parse_time
        try:
            self._ensure_mailbox(mailbox)
            r["message_id"] = self.db.add_voicemail(
                mailbox, path=path, created=parse_time(rows[0]["started"]),
                duration=float(r.get("duration") or 0.0), call_id=r.get("call_id"),
                caller=rows[0]["caller"])
            r["mailbox"] = mailbox
        except (CallDbError, sqlite3.Error) as exc:
            log.error("recovered voicemail %s: no row: %s", path, exc)

    def _recorder_event(self, board: int, ev: RecorderEvent) -> None:
        """The loop: publish, and keep the call's state in step (max duration, failures)."""
        rt = self.s.boards[board]
        key = (board, ev.handle) if ev.handle is not None else None
        known = self._handles.get(key) if key is not None else None
        if key is not None and known and ev.kind in (ServerEventKind.RECORDING_STOPPED,
                                                     ServerEventKind.RECORDING_FAILED):
            del self._handles[key]           # the recording's last word
        call_id = ev.call_id or (known[0] if known else None)
        detail = dict(ev.detail)
        detail.pop("call_id", None)
        if "tick" in detail:
            detail["at_tick"] = detail.pop("tick")
        with self._vm_lock:
            vm = self._vm.get(key) if key else None
        cr = self.calls.get(call_id) if call_id is not None else None
        if cr is not None and cr.handle != ev.handle:
            cr = None
        chan = known[1] if known else None
        tick = self.s.tick
        self.s.bus.publish(tick, ev.kind, chan=chan, call_id=call_id, board=rt.name,
                           alarm=ev.alarm, voicemail=vm is not None, **detail)
        if ev.alarm:
            log.warning("recording alarm on %s: %s %s", rt.name, ev.kind, detail)
        if vm is not None and ev.kind in (ServerEventKind.RECORDING_STOPPED, ServerEventKind.RECORDING_FAILED):
            if ev.kind == ServerEventKind.RECORDING_FAILED and not self._closed:
                self.recorders[board].stop(vm.handle, reason=detail.get("reason") or "failed")
            with self._vm_lock:
                if key is not None:
                    self._vm.pop(key, None)
                if self._vm_calls.get(vm.call_id) is vm:
                    del self._vm_calls[vm.call_id]
            self.s.bus.publish(tick, ServerEventKind.VOICEMAIL_RECORD_STOP, chan=vm.chan, call_id=vm.call_id,
                               mailbox=vm.mailbox, reason=vm.reason or detail.get("reason"),
                               **(vm.result or {"stored": False, "error": "unknown"}))
            return
        if ev.kind == ServerEventKind.RECORDING_MAX_DURATION and cr is not None and cr.ended is None:
            d = cr.decision
            cr.end_rule = str(cr.rules.ref("max_seconds")) if cr.rules is not None else None
            cr.end_note = (f"kept: stopped at max_seconds = {d.max_seconds:g} (the call went on)"
                           if d is not None and d.max_seconds else "kept: stopped at its maximum length")
            cr.ended = tick
        elif ev.kind == ServerEventKind.RECORDING_FAILED and ev.handle is not None:
            reason = detail.get("reason") or "failed"
            note = f"recording failed: {reason}" + (
                f" after {detail['seconds']:g} s (kept what was written)" if detail.get("seconds") else "")
            if cr is not None and cr.ended is None:
                cr.ended = tick
                cr.end_rule, cr.end_note = (str(cr.decision.rule) if cr.decision else None), note
                if not self._closed:
                    self.recorders[board].stop(cr.live, reason=reason)   # frees the slot
            elif cr is None and call_id is not None and not self._closed:
                # the call has already ended (its row was written): correct the row
                self.recorders[board].log_call(self._row(call_id, recording_note=note))


def _why_discarded(reason: str) -> str:
    """The recording row's discard_reason: the rules' sentence without its "discarded: "
    (the row's status says that; `voiceboard calls` shows "discarded: WHY")."""
    return reason.removeprefix("discarded: ")


__all__ = ["RecordingService", "CallRecording", "FORMATS", "VOICEMAIL_FORMAT"]


def _finish_open_calls(db: CallDb, *, server_id: str, run: int | None, board: str, end: dt.datetime) -> Any:
    """The rows of a board's calls still open at stop: ended "server stopped" (the writer thread)."""
    assert run is not None, "a recorder without a run of the call database"
    return db.finish_open_calls(server_id, run, board, end, "server stopped")
