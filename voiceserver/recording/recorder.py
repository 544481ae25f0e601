"""Call recording: capture in the media tick, file I/O on a writer thread, recovery on restart.

Why this split: the tick must never wait for a disk. `capture(tick, rx, tx)`
runs in the media engine's tick and does one kernel call
(`dsp._capture.capture_block`) that copies every recorded channel of the tick
into a preallocated ring (`int16[ring_ticks, max_slots, 2*block]`); which
channel feeds which slot is held in index arrays that change only when a
recording starts, pauses, resumes, is retargeted or stops. Python work per
tick is O(commands), not O(recordings). The writer thread empties the ring
into files: encoding (A-law), the WAV header, fsync, renames, SQLite.

If the writer falls behind and the ring is full, the tick is not stored:
its blocks are counted as dropped, an alarm event goes out, and the writer
later writes that stretch as silence (so the file keeps the call's time
line) and lists it in the recording's gaps (why = "overrun").

Control-plane calls (`start`, `pause`, `resume`, `retarget`, `stop`,
`log_call`) are thread-safe: they are queued and take effect at the next
tick boundary, in order, and reach the writer in the same order as the
audio, tagged with the tick they apply before.

Layouts: "stereo" = left the caller (the trunk's rx), right the agent side
(the trunk's tx: prompts, music, the bridged agent or transfer target);
"mono" = both summed with saturation. Formats: "pcm16" and "alaw" (WAV
format tag 6). Crash safety and the file life cycle: docs/recording.md.
"""
from __future__ import annotations

import datetime as dt
import errno
import heapq
import itertools
import logging
import os
import re
import sqlite3
import string
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dsp import g711
from dsp._capture import MONO, PAUSED, STEREO, capture_block
from voiceserver.core.events import ServerEventKind
from voiceserver.recording import wavfile as wavwriter
from voiceserver.recording.calldb import CRASHED, RECOVERED, CallDb, CallDbError, CallRow, parse_time
from voiceserver.recording.wavfile import PART, WavFile

log = logging.getLogger("voiceserver.recording.recorder")

RATE = 8000
LAYOUTS = {"mono": 1, "stereo": 2}
FORMATS = tuple(wavwriter.FORMATS)
DEFAULT_TEMPLATE = "{date}-{time}_ch{channel}_{call_id}"
PLACEHOLDERS = ("date", "time", "channel", "call_id", "caller", "called", "agent")
Source = tuple[str, int]    # ("rx" | "tx", channel), or SILENCE
SILENCE: Source = ("silence", -1)   # a side with nothing on it (voicemail: the caller alone)


class RecorderError(Exception):
    """A recorder that cannot start (bad directory, template, sizes); the message says which."""


@dataclass(frozen=True)
class RecorderEvent:
    """Something the control plane should know or alarm on.

    kinds: recording.started (file created), recording.stopped (kept or
    discarded: detail has path, duration, status, reason), recording.failed
    (alarm: disk full, directory not writable, database error, no free slot),
    recording.overrun (alarm: ring full, blocks dropped), recording.overrun_end,
    recording.max_duration (stopped at its limit; the call goes on),
    recording.recovered (a file repaired at start-up).
    """
    kind: str
    handle: int | None
    call_id: str | None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def alarm(self) -> bool:
        return self.kind in (ServerEventKind.RECORDING_FAILED, ServerEventKind.RECORDING_OVERRUN)


@dataclass
class RecorderStats:
    ticks: int = 0             # ticks stored in the ring
    dropped_ticks: int = 0     # ticks not stored (ring full) while something was recording
    dropped_blocks: int = 0    # recording-blocks lost that way (ticks x active recordings)
    bytes_written: int = 0     # audio bytes the writer wrote
    kept: int = 0
    discarded: int = 0
    failed: int = 0
    active: int = 0            # recordings with a slot right now

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class _Ctl:
    """Tick-side state of one recording (the engine thread owns it)."""
    handle: int
    slot: int
    stereo: bool
    paused: bool = False


@dataclass
class _Rec:
    """Writer-side state of one recording (the writer thread owns it)."""
    handle: int
    slot: int
    call: CallRow
    channels: int
    fmt: str
    when: dt.datetime
    width: int = 0                 # samples per tick in the ring row (block * channels)
    root: Path | None = None       # folder for this recording instead of the recorder's root
    db_id: int | None = None
    path: str | None = None        # the final .wav (the file is this + PART until it is kept)
    wav: WavFile | None = None
    done: bool = False             # finished (kept, discarded or failed); data is ignored
    gaps: list[dict[str, Any]] = field(default_factory=list)
    pause_at: int | None = None    # frame where the open pause began
    dropped_blocks: int = 0
    last_header: float = 0.0
    last_sync: float = 0.0
    pos: int = 0                   # ring sequence of its next block to write (from its start)

    @property
    def frames(self) -> int:
        return self.wav.frames if self.wav is not None else 0


def _src_index(src: Source, nchan: int, what: str) -> int:
    if tuple(src) == SILENCE:
        return -1
    try:
        side, chan = src
    except (TypeError, ValueError):
        raise ValueError(f"{what}: expected ('rx'|'tx', channel), got {src!r}") from None
    if side not in ("rx", "tx") or not isinstance(chan, (int, np.integer)) or not 0 <= chan < nchan:
        raise ValueError(f"{what}: expected ('rx'|'tx', channel 0..{nchan - 1}), got {src!r}")
    return int(chan) + (nchan if side == "tx" else 0)


_UNSAFE = re.compile(r"[^A-Za-z0-9+._@-]+")


def _safe(value: Any) -> str:
    text = "" if value is None else str(value)
    text = _UNSAFE.sub("_", text).strip("._") or "unknown"
    return text[:64]


def check_template(template: str) -> None:
    """ValueError naming an unknown placeholder or a path separator in the template."""
    names = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    bad = [n for n in names if n not in PLACEHOLDERS]
    if bad:
        raise ValueError(f"recording file name template {template!r}: unknown placeholder "
                         f"{{{bad[0]}}} (known: {', '.join('{' + p + '}' for p in PLACEHOLDERS)})")
    if "/" in template or "\\" in template or not names and not template.strip():
        raise ValueError(f"recording file name template {template!r}: a file name, not a path "
                         "(files go under YYYY/MM/DD/ by date)")


def _errno_reason(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return "disk full"
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR):
            return "directory not writable"
        return f"write error: {exc.strerror or exc}"
    if isinstance(exc, (sqlite3.Error, CallDbError)):
        return f"database error: {exc}"
    return f"error: {exc!r}"


class Recorder:
    """Records calls of one board: `capture` in its media tick, a writer thread for the files.

    `backpressure=True` is for a lockstep (simulated) clock only: there a full
    ring makes `capture` wait for the writer, because simulated time costs
    nothing to wait for and a deterministic run must not lose audio to the
    speed of the machine. On a real-time board leave it False: the tick drops.
    """

    def __init__(self, db: CallDb | str | os.PathLike, root: str | os.PathLike, *, nchan: int,
                 block: int = 160, max_slots: int | None = None, ring_seconds: float = 1.0,
                 template: str = DEFAULT_TEMPLATE, max_seconds: float = 4 * 3600.0,
                 header_interval: float = 1.0, fsync_interval: float = 5.0, poll: float = 0.2,
                 on_event: Callable[[RecorderEvent], None] | None = None,
                 recover_at_start: bool = True, backpressure: bool = False,
                 close_timeout: float = 30.0) -> None:
        if nchan <= 0 or block <= 0:
            raise RecorderError(f"nchan and block must be positive (got {nchan}, {block})")
        check_template(template)
        self.nchan, self.block = nchan, block
        self.max_slots = nchan if max_slots is None else int(max_slots)
        if self.max_slots <= 0:
            raise RecorderError(f"max_slots must be positive, not {max_slots}")
        self.ring_ticks = max(4, int(round(ring_seconds * RATE / block)))
        self.root = Path(root)
        self.template = template
        self.max_seconds = float(max_seconds)
        self.header_interval, self.fsync_interval, self.poll = header_interval, fsync_interval, poll
        self.close_timeout = close_timeout
        self.fsync_budget = 0.1          # s of fsync per writer pass (see _housekeeping)
        self._own_db = not isinstance(db, CallDb)
        self.db: CallDb = db if isinstance(db, CallDb) else CallDb(db)
        self._on_event = on_event
        self._events: deque[RecorderEvent] = deque(maxlen=10000)
        self.recovered: list[dict[str, Any]] = recover(self.root, self.db) if recover_at_start else []
        for r in self.recovered:
            self._emit(RecorderEvent(ServerEventKind.RECORDING_RECOVERED, None, r.get("call_id"), r))
        # ring and slot tables (the kernel's inputs)
        self._shape = (nchan, block)
        self._ring = np.zeros((self.ring_ticks, self.max_slots, 2 * block), np.int16)
        self._src_a = np.full(self.max_slots, -1, np.int32)
        self._src_b = np.full(self.max_slots, -1, np.int32)
        self._mode = np.zeros(self.max_slots, np.uint8)
        self._hi = 0                                   # slots >= _hi are all free
        self._free = list(range(self.max_slots))       # heap: lowest free slot first
        self._ctl: dict[int, _Ctl] = {}
        self._deadlines: list[tuple[int, int]] = []    # (clock tick, handle) heap
        self._clock = 0                                # ticks seen (stored + dropped)
        self._head = 0                                 # next ring sequence number to store
        self._tail = 0                                 # next one the writer reads
        self._dropped_run = 0
        self._overrun_blocks = 0
        self._cmds: deque[tuple] = deque()             # control plane -> tick
        self._msgs: deque[tuple] = deque()             # tick -> writer: (tag seq, kind, *args)
        self._handles = itertools.count(1)
        self._last_handle = 0                          # handles 1.._last_handle were given out
        self.stats = RecorderStats()
        # writer side
        self._recs: dict[int, _Rec] = {}
        self._wake = threading.Event()
        self._space = threading.Event()
        # audio is written in runs of at least this many ticks (or all of it at a poll, a
        # flush, the close, or before a recording's start/stop/pause): a wake for call rows
        # alone writes the rows, not one tick of every recording (see _drain)
        self.batch_ticks = max(1, self.ring_ticks // 2)
        self._flushing = False
        self._all_audio = True        # this writer pass writes all the audio there is
        self.backpressure = backpressure
        self._closing = False
        self._writer_error: str | None = None
        self._thread = threading.Thread(target=self._writer, name="recording-writer", daemon=True)
        self._thread.start()

    # -- control plane side (any thread) --------------------------------------
    def start(self, call: CallRow, *, chan: int, layout: str = "stereo", fmt: str = "pcm16",
              caller: Source | None = None, agent: Source | None = None,
              max_seconds: float | None = None, when: dt.datetime | None = None,
              root: str | os.PathLike | None = None) -> int:
        """Record the call on trunk `chan` from the next tick; returns a handle for the other calls.

        Defaults: caller = ("rx", chan), agent = ("tx", chan); SILENCE for a
        side leaves it silent. `when` (the server's wall clock) names the file
        and dates the recording. `root`: another folder than the recorder's
        (voicemail: one per mailbox); files still go under YYYY/MM/DD/ in it.
        """
        if layout not in LAYOUTS:
            raise ValueError(f"recording layout must be one of {', '.join(LAYOUTS)}, not {layout!r}")
        if fmt not in FORMATS:
            raise ValueError(f"recording format must be one of {', '.join(FORMATS)}, not {fmt!r}")
        if not 0 <= chan < self.nchan:
            raise ValueError(f"channel {chan} out of range 0..{self.nchan - 1}")
        a = _src_index(caller or ("rx", chan), self.nchan, "caller source")
        b = _src_index(agent or ("tx", chan), self.nchan, "agent source")
        limit = self.max_seconds if max_seconds is None else float(max_seconds)
        if not limit > 0:
            raise ValueError(f"max_seconds must be positive, not {max_seconds}")
        when = when or call.answer or call.start or dt.datetime.now(dt.UTC)
        if call.channel is None:
            call.channel = chan
        h = next(self._handles)
        self._last_handle = h
        ticks = max(1, int(round(limit * RATE / self.block)))
        self._cmds.append(("start", h, layout == "stereo", a, b, ticks, call, fmt, when,
                           None if root is None else Path(root)))
        return h

    def _known(self, handle: int) -> None:
        if not isinstance(handle, (int, np.integer)) or not 0 < handle <= self._last_handle:
            raise ValueError(f"no recording with handle {handle!r}")

    def pause(self, handle: int) -> None:
        """Silence from the next tick on, listed in the recording's gaps (why = "pause")."""
        self._known(handle)
        self._cmds.append(("pause", handle))

    def resume(self, handle: int) -> None:
        self._known(handle)
        self._cmds.append(("resume", handle))

    def retarget(self, handle: int, *, caller: Source | None = None, agent: Source | None = None) -> None:
        """Take the caller or agent side from another channel (a transfer): the same file goes on."""
        self._known(handle)
        a = None if caller is None else _src_index(caller, self.nchan, "caller source")
        b = None if agent is None else _src_index(agent, self.nchan, "agent source")
        self._cmds.append(("retarget", handle, a, b))

    def stop(self, handle: int, *, discard: str | None = None, reason: str = "call end") -> None:
        """End the recording; with `discard` (the rules' reason) the file is deleted and the row says why."""
        self._known(handle)
        self._cmds.append(("stop", handle, discard, reason))

    def log_call(self, row: CallRow, *, new: bool = False) -> None:
        """Store (or complete) a call record, from the writer thread, in order with the recordings.

        `new`: the call's first row (an existing row with its id is an error, not overwritten)."""
        self._cmds.append(("row", row, new))   # the writer writes a pass's rows in one transaction

    def db_write(self, what: str, call_id: str | None, write: Callable[[CallDb], Any]) -> None:
        """Run `write(db)` on the writer thread, in order with the recordings.

        A database error becomes a recording.failed event (an alarm) saying `what` failed."""
        self._cmds.append(("call", what, call_id, write))

    def events(self) -> list[RecorderEvent]:
        """Drain the events (when no on_event callback was given)."""
        out = []
        while self._events:
            out.append(self._events.popleft())
        return out

    def _emit(self, ev: RecorderEvent) -> None:
        if self._on_event is not None:
            try:
                self._on_event(ev)
            except Exception:  # noqa: BLE001 - a handler bug must not stop the tick or the writer
                log.exception("recorder event handler failed")
        else:
            self._events.append(ev)

    # -- the tick ----------------------------------------------------------------
    def capture(self, tick: int, rx: np.ndarray, tx: np.ndarray) -> None:
        """Store this tick's audio of every recording (call after tx is complete, before commit)."""
        if rx.shape != self._shape or tx.shape != self._shape:
            raise ValueError(f"capture: rx and tx must be int16{list(self._shape)}, "
                             f"got {rx.shape} and {tx.shape}")
        self._clock += 1
        if self._cmds:
            self._apply()
        if self._deadlines and self._deadlines[0][0] <= self._clock:
            self._expire()
        seq = self._head
        if self.backpressure:       # simulated clock: waiting costs no real time, losing audio would
            while seq - self._tail >= self.ring_ticks and self._thread.is_alive():
                self._space.clear()
                self._wake.set()
                self._space.wait(0.05)
        if seq - self._tail >= self.ring_ticks:          # the writer is behind: drop, never wait
            active = len(self._ctl)
            if active:
                if not self._dropped_run and not self._overrun_blocks:
                    self._emit(RecorderEvent(ServerEventKind.RECORDING_OVERRUN, None, None,
                                             {"tick": tick, "active": active}))
                self.stats.dropped_ticks += 1
                self.stats.dropped_blocks += active
                self._overrun_blocks += active
            self._dropped_run += 1
            self._wake.set()
            return
        if self._dropped_run:
            self._flush_drops(tick)
        if self._hi:
            capture_block(rx, tx, self._ring[seq % self.ring_ticks], self._src_a, self._src_b,
                          self._mode, self._hi)
        self._head = seq + 1
        self.stats.ticks += 1
        if seq - self._tail >= self.ring_ticks // 2:
            self._wake.set()

    def _flush_drops(self, tick: int) -> None:
        self._msgs.append((self._head, "gap", self._dropped_run))
        if self._overrun_blocks:
            self._emit(RecorderEvent(ServerEventKind.RECORDING_OVERRUN_END, None, None,
                                     {"tick": tick, "dropped_blocks": self._overrun_blocks}))
        self._dropped_run = 0
        self._overrun_blocks = 0

    def _apply(self) -> None:
        """Control-plane commands, in order, at this tick boundary (O(commands))."""
        if self._dropped_run:   # drops so far belong to the recordings active before these commands
            self._flush_drops(-1)
        tag = self._head
        while self._cmds:
            cmd = self._cmds.popleft()
            kind = cmd[0]
            if kind == "start":
                _, h, stereo, a, b, ticks, call, fmt, when, root = cmd
                if not self._free:
                    self.stats.failed += 1
                    self._emit(RecorderEvent(ServerEventKind.RECORDING_FAILED, h, call.call_id, {
                        "reason": f"no free recording slot (max_slots={self.max_slots})"}))
                    continue
                slot = heapq.heappop(self._free)
                self._ctl[h] = _Ctl(h, slot, stereo)
                self._src_a[slot], self._src_b[slot] = a, b
                self._mode[slot] = STEREO if stereo else MONO
                self._hi = max(self._hi, slot + 1)
                heapq.heappush(self._deadlines, (self._clock + ticks, h))
                rec = _Rec(h, slot, call, 2 if stereo else 1, fmt, when,
                           width=self.block * (2 if stereo else 1), root=root)
                self._msgs.append((tag, "start", rec))
                self.stats.active = len(self._ctl)
                continue
            if kind == "call" or kind == "row":
                self._msgs.append((tag, *cmd))
                continue
            c = self._ctl.get(cmd[1])
            if c is None:   # already stopped (max duration, no slot): nothing to do
                continue
            if kind == "pause" and not c.paused:
                c.paused = True
                self._mode[c.slot] |= PAUSED
                self._msgs.append((tag, "pause", c.handle))
            elif kind == "resume" and c.paused:
                c.paused = False
                self._mode[c.slot] &= ~np.uint8(PAUSED)
                self._msgs.append((tag, "resume", c.handle))
            elif kind == "retarget":
                if cmd[2] is not None:
                    self._src_a[c.slot] = cmd[2]
                if cmd[3] is not None:
                    self._src_b[c.slot] = cmd[3]
            elif kind == "stop":
                self._end(c, cmd[2], cmd[3])
        self._wake.set()

    def _end(self, c: _Ctl, discard: str | None, reason: str) -> None:
        if self._dropped_run:   # the drops so far include this recording
            self._flush_drops(-1)
        del self._ctl[c.handle]
        self._mode[c.slot] = 0
        self._src_a[c.slot] = self._src_b[c.slot] = -1
        heapq.heappush(self._free, c.slot)
        while self._hi and self._mode[self._hi - 1] == 0:
            self._hi -= 1
        self._msgs.append((self._head, "stop", c.handle, discard, reason))
        self.stats.active = len(self._ctl)
        if not self._ctl:
            self._deadlines.clear()
        elif len(self._deadlines) > 2 * len(self._ctl) + 64:
            # the ended recordings' max-duration deadlines (hours away): dropped now and then,
            # so that the heap holds about the recordings going, not every one since the start
            self._deadlines = [d for d in self._deadlines if d[1] in self._ctl]
            heapq.heapify(self._deadlines)

    def _expire(self) -> None:
        while self._deadlines and self._deadlines[0][0] <= self._clock:
            _, h = heapq.heappop(self._deadlines)
            c = self._ctl.get(h)
            if c is not None:
                self._end(c, None, "max duration")
                self._emit(RecorderEvent(ServerEventKind.RECORDING_MAX_DURATION, h, None, {}))
        self._wake.set()

    # -- shutdown ------------------------------------------------------------------
    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until the writer has written everything captured so far (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        self._flushing = True         # the writer writes all it has at each wake, not a batch
        try:
            while self._thread.is_alive() and (self._tail < self._head or self._msgs):
                self._wake.set()
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.005)
            return True
        finally:
            self._flushing = False

    def close(self, reason: str = "server stopped") -> bool:
        """Stop every recording (files kept), drain the writer, close. Call after the engine stopped.

        False: the writer is still busy after `close_timeout` (a hung disk) and
        still uses the database, so the caller must not close it.
        """
        if self._closing:
            return not self._thread.is_alive()
        if self._cmds:
            self._apply()
        for c in list(self._ctl.values()):
            self._end(c, None, reason)
        if self._dropped_run:
            self._flush_drops(-1)
        self._closing = True
        self._wake.set()
        self._thread.join(self.close_timeout)
        if self._thread.is_alive():     # a hung disk (dead NFS): do not hang the server's exit
            log.error("recording writer still busy after %.0f s; giving up on it, "
                      "unfinished files are recovered at the next start", self.close_timeout)
            return False
        if self._own_db:
            self.db.close()
        return True

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writer thread -----------------------------------------------------------
    def _writer(self) -> None:
        try:
            while True:
                woken = self._wake.wait(self.poll)
                self._wake.clear()
                closing = self._closing
                self._all_audio = not woken or closing or self._flushing
                self._drain()
                self._housekeeping()
                if closing and self._tail >= self._head and not self._msgs:
                    break
        except Exception as exc:  # noqa: BLE001 - reported, then the files are closed
            log.exception("recording writer failed")
            self._writer_error = repr(exc)
            self._emit(RecorderEvent(ServerEventKind.RECORDING_FAILED, None, None,
                                     {"reason": f"writer failed: {exc!r}"}))
        finally:
            for rec in list(self._recs.values()):
                if not rec.done:
                    self._finish(rec, None, "server stopped")

    def _drain(self) -> None:
        """The messages in order, each recording's audio written up to a message that needs
        it (its start, stop, pause, resume; a gap); then the audio of every recording up to
        the head if `_all_audio` (a poll, a flush, the close) or `batch_ticks` of it wait.

        Each recording has its own written position (`_Rec.pos`): a message about one
        recording writes that one's audio only, and call-row messages ("row", "call": database
        only) none, so the call rows and the starts and ends of other calls that come with
        most ticks do not make the writer write every recording one tick at a time. The
        ring is free up to the lowest position of the recordings going (`_tail`)."""
        head = self._head
        msgs = self._msgs
        moved = False                      # a recording's position moved, or one ended
        while msgs:
            m = msgs.popleft()
            if m[1] == "row":
                rows = [m]
                while msgs and msgs[0][1] == "row":
                    rows.append(msgs.popleft())
                self._call_rows(rows)
                continue
            moved = moved or m[1] != "call"
            # the call rows right after a recording's start or stop (its call's answer or end)
            # go in the commit of the recording's row: a commit less, in the same order
            rows = []
            if m[1] in ("start", "stop"):
                while msgs and msgs[0][1] == "row":
                    rows.append(msgs.popleft())
            if not self._message(m, rows) and rows:
                self._call_rows(rows)
        if self._all_audio or head - self._tail >= self.batch_ticks:
            for rec in list(self._recs.values()):
                self._catch_up(rec, head)
            tail = head
        elif moved:
            tail = min(min((rec.pos for rec in self._recs.values() if not rec.done), default=head), head)
        else:
            return
        if tail > self._tail:
            self._tail = tail
            self._space.set()

    def _catch_up(self, rec: _Rec, upto: int) -> None:
        """Write `rec`'s audio from its position up to ring sequence `upto`.

        A stretch that runs past the ring's end is copied into one buffer and written at
        once (a write per piece cost a system call more, about one catch-up in three),
        except where the whole would pass the WAV size limit and only the first piece fits."""
        s = rec.pos
        if s >= upto:
            return                         # written up to there already (most calls)
        R = self.ring_ticks
        pieces = []
        while s < upto:
            r0 = s % R
            e = min(upto, s + (R - r0))
            pieces.append(self._ring[r0:r0 + (e - s), rec.slot, :rec.width])
            s = e
        wav = rec.wav
        if pieces and not rec.done and wav is not None:
            if len(pieces) == 1:
                self._append(rec, pieces[0])
            elif wav.data_bytes + (upto - rec.pos) * self.block * wav.frame_bytes <= wavwriter.MAX_DATA:
                self._append(rec, np.concatenate(pieces))
            else:
                for piece in pieces:
                    if rec.done:
                        break
                    self._append(rec, piece)
        rec.pos = max(rec.pos, upto)

    def _append(self, rec: _Rec, data: np.ndarray) -> None:
        buf = g711.alaw_encode(data) if rec.fmt == "alaw" else np.ascontiguousarray(data, "<i2")
        assert rec.wav is not None, "audio for a recording whose file is not open"
        try:
            rec.wav.write(buf)
        except OSError as exc:
            self._fail(rec, exc)
            return
        self.stats.bytes_written += buf.nbytes

    def _call_rows(self, msgs: list[tuple]) -> None:
        """Call rows that came one after another: one transaction (CallDb.upsert_calls)."""
        self._row_errors(msgs, self.db.upsert_calls([(m[2], m[3]) for m in msgs]))

    def _row_errors(self, msgs: list[tuple], errors: list[Exception | None]) -> None:
        """An alarm for each call row refused or not written (errors: one per row, in order)."""
        what = "storing the call record"
        for m, exc in zip(msgs, errors, strict=True):
            if exc is not None:
                self._emit(RecorderEvent(ServerEventKind.RECORDING_FAILED, None, m[2].call_id,
                                         {"reason": f"database error {what}: {exc}"}))

    def _rows_after(self, rows: list[tuple], errors: list[Exception | None] | None) -> None:
        """The call rows that came right after a recording's start or stop, once it is done:
        their alarms if they went in its commit (`errors`), else written now, as they came."""
        if errors is not None:
            self._row_errors(rows, errors)
        elif rows:
            self._call_rows(rows)

    def _message(self, m: tuple, rows: list[tuple]) -> bool:
        """One message; True if it also wrote `rows` (the call rows that came right after a
        start or stop), with the recording's row or after it."""
        kind = m[1]
        if kind == "start":
            m[2].pos = m[0]                # its audio begins at the tick of its start
            self._open(m[2], rows)
            return True
        elif kind == "call":
            _, _, what, call_id, write = m
            try:
                write(self.db)
            except (sqlite3.Error, CallDbError) as exc:
                self._emit(RecorderEvent(ServerEventKind.RECORDING_FAILED, None, call_id,
                                         {"reason": f"database error {what}: {exc}"}))
        elif kind == "gap":
            for open_rec in list(self._recs.values()):
                self._catch_up(open_rec, m[0])
                if open_rec.done or open_rec.wav is None:
                    continue
                at = open_rec.frames
                n = m[2]
                self._append(open_rec, np.zeros((n, open_rec.width), np.int16))
                open_rec.dropped_blocks += n
                self._add_gap(open_rec, at, open_rec.frames, "overrun")
        else:
            rec = self._recs.get(m[2])
            if rec is None:
                return False
            self._catch_up(rec, m[0])      # its audio before the pause, resume or stop
            if kind == "pause":
                rec.pause_at = rec.frames
            elif kind == "resume":
                self._close_pause(rec)
            elif kind == "stop":
                self._close_pause(rec)
                del self._recs[rec.handle]
                if not rec.done:
                    self._finish(rec, m[3], m[4], rows=rows)
                    return True
        return False

    def _add_gap(self, rec: _Rec, a: int, b: int, why: str) -> None:
        if b > a:
            rec.gaps.append({"start": round(a / RATE, 3), "end": round(b / RATE, 3), "why": why})

    def _close_pause(self, rec: _Rec) -> None:
        if rec.pause_at is not None:
            self._add_gap(rec, rec.pause_at, rec.frames, "pause")
            rec.pause_at = None

    def _pick_path(self, rec: _Rec) -> str:
        """ROOT/YYYY/MM/DD/NAME.wav, NAME-1.wav ... if taken (as a .wav or a .part)."""
        w = rec.when
        c = rec.call
        day, clock = w.strftime("%Y%m%d %H%M%S").split(" ")
        name = self.template.format(
            date=day, time=clock, channel=_safe(c.channel),
            call_id=_safe(c.call_id), caller=_safe(c.caller), called=_safe(c.called), agent=_safe(c.agent))
        # plain strings: a Path per piece cost more than the two stats below
        folder = _join(rec.root or self.root, day[:-4], day[-4:-2], day[-2:])
        path = os.path.join(folder, f"{name}.wav")
        n = 1
        while os.path.exists(path) or os.path.exists(path + PART):
            path = os.path.join(folder, f"{name}-{n}.wav")
            n += 1
        return path

    def _open(self, rec: _Rec, rows: list[tuple]) -> None:
        """DB row first (committed), then the .part file with its header; `rows` (the call rows
        that came right after the start) in the row's commit, or after the file if that failed."""
        self._recs[rec.handle] = rec
        path = self._pick_path(rec)
        errors = None
        begin: dict[str, Any] = dict(path=path, fmt=rec.fmt, layout="stereo" if rec.channels == 2 else "mono",
                     started=rec.when)
        try:
            if rows:
                try:
                    rec.db_id, errors = self.db.begin_recording_then_calls(
                        rec.call, **begin, calls=[(m[2], m[3]) for m in rows])
                except (sqlite3.Error, CallDbError):
                    pass        # nothing written: the recording's row alone, the rows after it
            if rec.db_id is None:
                rec.db_id = self.db.begin_recording(rec.call, **begin)
        except (sqlite3.Error, CallDbError) as exc:   # no row, so no file either: no recording
            rec.done = True
            self.stats.failed += 1
            self._emit(RecorderEvent(ServerEventKind.RECORDING_FAILED, rec.handle, rec.call.call_id,
                                     {"reason": _errno_reason(exc)}))
            self._rows_after(rows, errors)
            return
        rec.path = path
        try:
            rec.wav = _create_wav(path + PART, rec.fmt, rec.channels)
        except OSError as exc:
            self._fail(rec, exc)
            self._rows_after(rows, errors)
            return
        rec.last_header = rec.last_sync = time.monotonic()
        self._emit(RecorderEvent(ServerEventKind.RECORDING_STARTED, rec.handle, rec.call.call_id, {"path": path}))
        self._rows_after(rows, errors)

    def _fail(self, rec: _Rec, exc: BaseException) -> None:
        """Disk full, not writable...: keep what audio landed, stop cleanly, alarm."""
        reason = _errno_reason(exc)
        self.stats.failed += 1
        seconds = round(rec.frames / RATE, 3)
        # the file is final before the alarm goes out, so the alarm can say whether audio was kept
        status = self._finish(rec, None, reason, failed=True)
        self._emit(RecorderEvent(ServerEventKind.RECORDING_FAILED, rec.handle, rec.call.call_id, {
            "reason": reason, "error": str(exc), "path": rec.path,
            "seconds": seconds, "status": status}))

    def _finish(self, rec: _Rec, discard: str | None, reason: str, *, failed: bool = False,
                rows: list[tuple] | None = None) -> str:
        """Close the file: keep it (rename .part -> .wav) only if it holds audio and is wanted.

        Returns the recording's status: kept, discarded or failed. `rows`: the call rows that
        came right after the stop, in the commit of the recording's end (or after it, if that
        failed).
        """
        rows = rows or []
        rec.done = True
        self._close_pause(rec)
        frames, nbytes = rec.frames, 0
        part = rec.path + PART if rec.path is not None else None
        keep = discard is None and frames > 0
        if rec.wav is not None:
            try:
                if keep:
                    rec.wav.close()
                    frames = rec.wav.frames
                    nbytes = rec.wav.data_bytes
                else:
                    rec.wav.abort()
            except OSError:
                rec.wav.abort()
                assert part is not None          # an open file has a path
                try:
                    info = wavwriter.repair(part)
                    frames, nbytes = info.frames, info.data_bytes
                except (OSError, wavwriter.WavError):
                    keep = False
                keep = keep and frames > 0
        if part is not None:
            try:
                if keep:
                    assert rec.path is not None
                    os.rename(part, rec.path)
                elif os.path.exists(part):
                    os.unlink(part)
                wavwriter.fsync_dir(os.path.dirname(part))
            except OSError as exc:
                log.error("recording %s: cannot finish the file: %s", part, exc)
                keep = False
                try:
                    os.unlink(part)
                except OSError:
                    pass
        if keep:
            status, why = "kept", None
            self.stats.kept += 1
        elif discard is not None:
            status, why = "discarded", discard
            self.stats.discarded += 1
        elif failed:
            status, why = "failed", None
        else:
            status, why = "discarded", "no audio"
            self.stats.discarded += 1
        duration = frames / RATE if keep else 0.0
        errors = None
        if rec.db_id is not None:
            end: dict[str, Any] = dict(status=status, duration=duration, stop_reason=reason, discard_reason=why,
                       gaps=rec.gaps, dropped_blocks=rec.dropped_blocks, nbytes=nbytes if keep else 0)
            try:
                if rows:
                    try:
                        errors = self.db.end_recording_then_calls(
                            rec.db_id, **end, calls=[(m[2], m[3]) for m in rows])
                    except sqlite3.Error:
                        pass    # nothing written: the recording's end alone, the rows after it
                if errors is None:
                    self.db.end_recording(rec.db_id, **end)
            except sqlite3.Error as exc:
                self._emit(RecorderEvent(ServerEventKind.RECORDING_FAILED, rec.handle, rec.call.call_id,
                                         {"reason": _errno_reason(exc)}))
        if not failed:
            self._emit(RecorderEvent(ServerEventKind.RECORDING_STOPPED, rec.handle, rec.call.call_id, {
                "path": rec.path if keep else None, "status": status, "duration": duration,
                "reason": reason, "discard_reason": why}))
        self._rows_after(rows, errors)
        return status

    def _housekeeping(self) -> None:
        """Publish header sizes about every second, fsync at a bounded rate.

        fsyncs of one pass stop after `fsync_budget` seconds and the rest wait
        for the next pass: thousands of recordings that started together
        would otherwise fall due together and block the writer for seconds
        while the ring fills (measured by bench/recording.py on ext4).
        """
        now = time.monotonic()
        budget_end = now + self.fsync_budget
        for rec in self._recs.values():
            if rec.done or rec.wav is None:
                continue
            try:
                if now - rec.last_header >= self.header_interval:
                    rec.wav.update_header()
                    rec.last_header = now
                if now - rec.last_sync >= self.fsync_interval and time.monotonic() < budget_end:
                    rec.wav.sync()
                    rec.last_sync = time.monotonic()
            except OSError as exc:
                self._fail(rec, exc)


def _join(folder: Path, *names: str) -> str:
    """str(folder / name / ...) without building a Path per piece (pathlib drops a '.' folder)."""
    base = os.fspath(folder)
    return os.path.join(*names) if base == "." else os.path.join(base, *names)


def _create_wav(part: str, fmt: str, channels: int) -> WavFile:
    """The new .part file; its folder is made first when missing (the folder of a day's
    recordings is there but for the first: a mkdir per recording cost more than the open)."""
    try:
        return WavFile(part, fmt=fmt, channels=channels)
    except (FileNotFoundError, NotADirectoryError):
        pass
    Path(part).parent.mkdir(parents=True, exist_ok=True)
    return WavFile(part, fmt=fmt, channels=channels)


# -- recovery ----------------------------------------------------------------------
def recover(root: str | os.PathLike, db: CallDb, server_id: str | None = None) -> list[dict[str, Any]]:
    """After a crash: repair the recordings left in progress, then complete the calls left open.

    `recover_files`, then `recover_calls`; returns what was done to the files.
    """
    done = recover_files(root, db, server_id)
    recover_calls(db, server_id)
    return done


def recover_files(root: str | os.PathLike, db: CallDb,
                  server_id: str | None = None) -> list[dict[str, Any]]:
    """Repair every recording left in progress; one dict per file.

    Run at start-up before recording (the Recorder does it by default). For each
    row still 'recording': the `.part` file's header is set from its length,
    the file renamed to its final name, the row marked kept and recovered=1
    (or discarded, if no audio had been written). Stray `.part` files under
    `root` with no row are repaired and given one; empty ones are deleted.
    `server_id`: only the recordings of that server's calls (and of calls from
    before schema 4): another server sharing the database may be recording
    now, and its files are left alone. None: every row.
    """
    root = Path(root)
    done: list[dict[str, Any]] = []
    rows = db.recordings(status="recording")
    known = {str(row.path) + PART for row in rows}     # any server's: never adopted as strays
    if server_id is not None:
        ours = {r["call_id"] for r in db.query(
            "SELECT DISTINCT c.call_id FROM recordings r JOIN calls c ON c.call_id = r.call_id "
            "WHERE r.status = 'recording' AND (c.server_id = ? OR c.server_id IS NULL)", (server_id,))}
        rows = [row for row in rows if row.call_id in ours]
    for row in rows:
        path = Path(row.path)
        part = Path(str(path) + PART)
        result: dict[str, Any] = {"id": row.id, "call_id": row.call_id, "path": str(path)}
        frames, nbytes = 0, 0
        try:
            if part.exists():
                info = wavwriter.repair(part)
                frames, nbytes = info.frames, info.data_bytes
                if frames > 0:
                    os.rename(part, path)
                else:
                    part.unlink()
            elif path.exists():       # crashed between the rename and the row update
                info = wavwriter.repair(path)
                frames, nbytes = info.frames, info.data_bytes
        except (OSError, wavwriter.WavError) as exc:
            result["error"] = str(exc)
            try:
                part.unlink()
            except OSError:
                pass
            frames = 0
        duration = frames / RATE
        if frames > 0:
            db.end_recording(row.id, status="kept", duration=duration, stop_reason=RECOVERED,
                             gaps=row.gaps, nbytes=nbytes, recovered=True)
            result.update(status="kept", duration=duration)
        else:
            db.end_recording(row.id, status="discarded", duration=0.0, stop_reason=RECOVERED,
                             discard_reason="no audio before the crash", recovered=True)
            result.update(status="discarded", duration=0.0, path=None)
        done.append(result)
    if root.is_dir():
        for part in sorted(root.rglob("*.wav" + PART)):
            if str(part) in known:
                continue
            done.append(_adopt_orphan(db, part))
    return done


def recover_calls(db: CallDb, server_id: str | None = None) -> list[dict[str, Any]]:
    """Give every call a crash left open an end; what was done, one dict per call.

    The real end is not known: the end is the last moment the server is known
    to have seen the call going (the call's `last_seen`, the end of its
    recorded audio, its answer or start, whichever is latest), so the
    recorded duration is never longer than the call was; the disposition
    says it is an estimate (`CRASHED`). What the row already holds (agent,
    queue, IVR path: written as the call went) stays. `server_id` as for
    `recover_files`. Run after `recover_files` (the audio's end counts).
    """
    done: list[dict[str, Any]] = []
    for call in db.open_calls(server_id):
        seen = [parse_time(str(call[k])) for k in ("last_seen", "answer", "start") if call.get(k)]
        seen += [r.started + dt.timedelta(seconds=r.duration) for r in db.recordings(call["call_id"])]
        end = max(seen) if seen else None
        disposition = call["disposition"] or CRASHED
        db.upsert_call(CallRow(call["call_id"], end=end, disposition=disposition))
        done.append({"call_id": call["call_id"], "end": end, "disposition": disposition,
                     "agent": call["agent"], "queue": call["queue"], "ivr_path": call["ivr_path"],
                     "board": call["board"], "channel": call["channel"], "direction": call["direction"],
                     "start": call["start"],
                     "caller": call["caller"], "answered": call["answer"] is not None})
    return done


def _adopt_orphan(db: CallDb, part: Path) -> dict[str, Any]:
    """A .part file no row knows (the database was replaced?): keep its audio under a new call."""
    path = Path(str(part)[:-len(PART)])
    try:
        info = wavwriter.repair(part)
    except (OSError, wavwriter.WavError) as exc:
        part.unlink(missing_ok=True)
        return {"id": None, "call_id": None, "path": None, "status": "deleted", "error": str(exc)}
    if info.frames == 0:
        part.unlink()
        return {"id": None, "call_id": None, "path": None, "status": "deleted", "duration": 0.0}
    os.rename(part, path)
    mtime = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
    duration = info.frames / RATE
    started = mtime - dt.timedelta(seconds=duration)
    call_id = f"orphan-{path.stem}"
    rid = db.begin_recording(CallRow(call_id, start=started, end=mtime, disposition=RECOVERED),
                             path=str(path), fmt=info.fmt,
                             layout="stereo" if info.channels == 2 else "mono", started=started)
    db.end_recording(rid, status="kept", duration=duration, stop_reason=RECOVERED,
                     nbytes=info.data_bytes, recovered=True)
    return {"id": rid, "call_id": call_id, "path": str(path), "status": "kept", "duration": duration}


__all__ = ["Recorder", "RecorderEvent", "RecorderStats", "RecorderError", "Source", "SILENCE", "recover",
           "recover_files", "recover_calls",
           "check_template", "DEFAULT_TEMPLATE", "PLACEHOLDERS", "LAYOUTS", "FORMATS"]
