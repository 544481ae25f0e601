"""The event journal: every event of the bus in SQLite, kept across restarts.

A consumer of the event stream (the ACD, a wallboard, `voiceboard events`)
that was away resumes from the last `seq` it saw: `since(seq)` gives every
event after it, in order, and where events are gone, one `journal.gap`
event in their place naming the range and why (older than the journal
keeps, or not stored because the server was killed). Nothing is skipped
silently.

Sequence numbers are the bus's, per server, strictly increasing for the
life of the journal (not consecutive: a restart may skip some). The journal
hands them out in blocks of `RESERVE` and commits a block before the bus
reaches it, so a `kill -9` can skip numbers but a later run never reuses
one a client may have seen. The next block is asked of the writer thread
when the bus is half-way through the current one, and the writer commits
it with its next transaction, ahead of the rows still queued, so that the
loop does not wait on SQLite; it waits only if the bus overtakes the
writer by half a block.

Events older than the last `keep` are deleted a little at a time, in each
commit (at most `PRUNE_CHUNK` more numbers than it stores), never in one
long transaction that would hold up the writer (and a bus waiting on it).

The loop does not wait on SQLite: events are buffered for FLUSH_INTERVAL
(voiceserver.core.events: a few ticks' events) and committed by the journal's own thread,
at most one transaction every COMMIT_INTERVAL (a commit per turn cost about
a millisecond of CPU per call at 12 calls/s). A `kill -9` loses what was
not committed yet (at most about that interval's events);
`since` names that range as a gap (each run's start and clean stop are
recorded, so a run that never stopped is one that was killed). Several
servers may share one journal file: each writes and reads its own rows.
"""
from __future__ import annotations

import json
import queue
import sqlite3
import threading
import time
from collections.abc import Iterator
from typing import Any

from voiceserver.core.events import ServerEvent, ServerEventKind, flush_soon, utc_now

RESERVE = 100_000            # sequence numbers reserved (committed) ahead of the bus: at 5,000
                             # events/s the writer may lag 10 s before the bus waits for it
KEEP = 1_000_000             # events kept per server (~40,000 calls); older ones are deleted
PRUNE_EVERY = 1              # commits between two prunes (each deletes a bounded range)
PRUNE_CHUNK = 1_000          # numbers a prune may delete beyond twice what its commit stored
COMMIT_INTERVAL = 0.1        # s: the writer thread commits at most this often (when it keeps up)
BATCH = 2_500                # rows: a writer that is behind commits about this many at a time

SCHEMA = """
CREATE TABLE IF NOT EXISTS journal_servers (
    server_id TEXT PRIMARY KEY,
    reserved  INTEGER NOT NULL              -- every seq up to this one may have been handed out
);
CREATE TABLE IF NOT EXISTS journal_runs (
    server_id TEXT NOT NULL,
    first_seq INTEGER NOT NULL,             -- the run's first number
    started   TEXT NOT NULL,
    stopped   TEXT,                         -- NULL: the run is going, or was killed
    last_seq  INTEGER,                      -- the last number it handed out (a clean stop)
    PRIMARY KEY (server_id, first_seq)
);
CREATE TABLE IF NOT EXISTS journal_events (
    server_id TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    time      TEXT NOT NULL,                -- UTC, ISO 8601, when published
    kind      TEXT NOT NULL,
    call_id   TEXT,
    chan      INTEGER,
    body      TEXT NOT NULL,                -- the event as JSON (ServerEvent.as_dict)
    PRIMARY KEY (server_id, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS journal_events_call ON journal_events (server_id, call_id);
"""

# A commit's rows as one JSON array in one statement, not `executemany` (a statement per row).
# The sqlite3 module lets go of the GIL for each statement it steps and must win it back
# after: with the event loop's thread busy publishing, each win waits up to the
# interpreter's switch interval (5 ms), so a batch of 2,500 rows took the writer seconds.
# It fell behind, and the bus, overtaking the numbers it had reserved, waited in
# `_reserve` for the writer's transaction: publishes of up to a second (bench/events.py).
INSERT_BATCH = ("INSERT OR REPLACE INTO journal_events (server_id, seq, time, kind, call_id, chan, body) "
                "SELECT ?, json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'), "
                "json_extract(value, '$[3]'), json_extract(value, '$[4]'), json_extract(value, '$[5]') "
                "FROM json_each(?)")
_JSON_ROWS = json.JSONEncoder(ensure_ascii=False)
ENCODE_CHUNK = 250           # rows encoded at a time: the C encoder keeps the GIL until it is done


def _rows_json(rows: list[tuple[Any, ...]]) -> str:
    """A batch's rows as one JSON array, made a chunk at a time so that the loop's thread
    gets the GIL back between chunks (a whole batch in one encode held it for milliseconds)."""
    return "[" + ",".join(_JSON_ROWS.encode(rows[i:i + ENCODE_CHUNK])[1:-1]
                          for i in range(0, len(rows), ENCODE_CHUNK)) + "]"


class JournalError(Exception):
    """The journal file cannot be opened or written (path, and what SQLite said)."""


def _connect(path: str, readonly: bool = False) -> sqlite3.Connection:
    try:
        if readonly:
            con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        else:
            con = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")
        con.execute("PRAGMA busy_timeout=5000")
        if not readonly:
            con.executescript(SCHEMA)
        return con
    except sqlite3.Error as exc:
        raise JournalError(f"event journal {path}: {exc}") from None


def gap(first: int, last: int, reason: str) -> dict[str, Any]:
    """The event that stands for the events `first`..`last` a reader will not get."""
    return {"seq": None, "kind": ServerEventKind.JOURNAL_GAP.value, "from": first, "to": last, "reason": reason}


class EventJournal:
    """A bus subscriber that stores every event, and the reader that gives them back."""

    def __init__(self, path: str, server_id: str, *, keep: int = KEEP,
                 commit_interval: float = COMMIT_INTERVAL) -> None:
        if keep < 1:
            raise ValueError(f"event journal: keep must be at least 1 event, got {keep}")
        self.path = path
        self.server_id = server_id
        self.keep = keep
        self.commit_interval = commit_interval
        self.first_seq = 0
        self.reserved = 0
        self.last_seq = 0                    # the last number seen on the bus
        self._con: sqlite3.Connection | None = None
        self._lock = threading.Lock()        # the connection: the writer thread and reserve()
        self._rows: list[tuple[Any, ...]] = []
        self._queue: queue.SimpleQueue[list[tuple[Any, ...]] | int | threading.Event | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._commits = 0
        self._ahead: int | None = None       # the next block asked of the writer thread, not committed yet
        self._pruned = 0                     # every seq up to this one is deleted (the writer's)
        self.error: str | None = None        # the last write that failed (the journal goes on)

    # -- life cycle -----------------------------------------------------------------
    def open(self) -> int:
        """Start a run: the first number the bus may hand out (after every earlier run's)."""
        con = _connect(self.path)
        self._con = con
        with self._lock:
            con.execute("BEGIN IMMEDIATE")
            row = con.execute("SELECT reserved FROM journal_servers WHERE server_id = ?",
                              (self.server_id,)).fetchone()
            top = con.execute("SELECT MAX(seq) FROM journal_events WHERE server_id = ?",
                              (self.server_id,)).fetchone()[0]
            self.first_seq = max(row[0] if row else 0, top or 0) + 1
            oldest = con.execute("SELECT MIN(seq) FROM journal_events WHERE server_id = ?",
                                 (self.server_id,)).fetchone()[0]
            self._pruned = (oldest or self.first_seq) - 1
            self.reserved = self.first_seq + RESERVE - 1
            con.execute("INSERT INTO journal_servers (server_id, reserved) VALUES (?, ?) "
                        "ON CONFLICT (server_id) DO UPDATE SET reserved = excluded.reserved",
                        (self.server_id, self.reserved))
            con.execute("INSERT INTO journal_runs (server_id, first_seq, started) VALUES (?, ?, ?)",
                        (self.server_id, self.first_seq, utc_now()))
            con.execute("COMMIT")
        self.last_seq = self.first_seq - 1
        self._thread = threading.Thread(target=self._writer, name="event-journal", daemon=True)
        self._thread.start()
        return self.first_seq

    def close(self) -> None:
        """A clean stop: everything written, the run marked stopped (no gap after it)."""
        if self._con is None:
            return
        self.flush()
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            try:
                self._con.execute("UPDATE journal_runs SET stopped = ?, last_seq = ? "
                                  "WHERE server_id = ? AND first_seq = ?",
                                  (utc_now(), self.last_seq, self.server_id, self.first_seq))
            except sqlite3.Error as exc:
                self.error = f"event journal {self.path}: {exc}"
            self._con.close()
        self._con = None

    # -- writing (the bus's subscriber) -----------------------------------------------
    def __call__(self, ev: ServerEvent) -> None:
        if ev.seq > self.reserved:       # before anyone else sees this number (the writer is behind)
            self._reserve(ev.seq)
        elif self._ahead is None and ev.seq > self.reserved - RESERVE // 2:
            self._ahead = self.reserved + RESERVE      # the writer commits it with its next rows
            self._queue.put(self._ahead)
        self.last_seq = ev.seq
        self._rows.append((ev.seq, ev.time or utc_now(), ev.kind, ev.call_id, ev.chan, ev.json))   # a StrEnum: its text
        if len(self._rows) == 1:
            flush_soon(self.flush)

    def flush(self) -> None:
        """Hand the buffered events to the writer thread (one transaction)."""
        rows, self._rows = self._rows, []
        if rows:
            self._queue.put(rows)

    def drain(self, timeout: float = 10.0) -> bool:
        """Flush, and wait until the writer thread has committed everything handed to it."""
        self.flush()
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout)

    def _reserve(self, seq: int) -> None:
        with self._lock:
            self.reserved = max(self.reserved, seq + RESERVE - 1)
            assert self._con is not None, "event journal: publish before open()"
            self._con.execute("UPDATE journal_servers SET reserved = MAX(reserved, ?) WHERE server_id = ?",
                              (self.reserved, self.server_id))

    def _writer(self) -> None:
        """Commit what comes within commit_interval of the first item in one transaction
        (rows, and a block of numbers to reserve); drain() and close() commit at once.
        A writer that is behind commits back to back, at most about BATCH rows at a time, and
        a block of numbers the bus asked for goes into the next of them, ahead of the rows
        queued before the ask (so the bus never waits for a backlog, see `__call__`)."""
        while True:
            item = self._queue.get()
            rows: list[tuple[Any, ...]] = []
            reserve: int | None = None
            done: threading.Event | None = None
            stop = False
            deadline = time.monotonic() + self.commit_interval
            while True:
                if item is None:
                    stop = True
                    break
                if isinstance(item, threading.Event):     # drain(): all before it is committed
                    done = item
                    break
                if isinstance(item, int):
                    reserve = max(reserve or 0, item)
                else:
                    rows += item
                    if len(rows) >= BATCH:
                        break
                wait = deadline - time.monotonic()
                try:
                    item = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
            ahead = self._ahead          # asked by the bus, maybe behind rows still queued
            if ahead is not None and ahead > self.reserved:
                reserve = max(reserve or 0, ahead)
            if rows or reserve is not None:
                self._write(rows, reserve)
            if done is not None:
                done.set()
            if stop:
                return

    def _write(self, rows: list[tuple[Any, ...]], reserve: int | None = None) -> None:
        with self._lock:
            con = self._con
            if con is None:
                return
            prune_to = self._pruned
            try:
                con.execute("BEGIN")
                if rows:        # one statement for the batch: see INSERT_BATCH
                    con.execute(INSERT_BATCH, (self.server_id, _rows_json(rows)))
                if reserve is not None:
                    con.execute("UPDATE journal_servers SET reserved = MAX(reserved, ?) WHERE server_id = ?",
                                (reserve, self.server_id))
                self._commits += 1
                if rows and self._commits % PRUNE_EVERY == 0:
                    prune_to = min(rows[-1][0] - self.keep, self._pruned + 2 * len(rows) + PRUNE_CHUNK)
                    if prune_to > self._pruned:
                        con.execute("DELETE FROM journal_events WHERE server_id = ? AND seq > ? AND seq <= ?",
                                    (self.server_id, self._pruned, prune_to))
                con.execute("COMMIT")
                self._pruned = max(self._pruned, prune_to)
                if reserve is not None:
                    self.reserved = max(self.reserved, reserve)
            except sqlite3.Error as exc:    # a full disk: the events are lost, the server goes on
                self.error = f"event journal {self.path}: {exc}"
                try:
                    con.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            finally:
                ahead = self._ahead
                if reserve is not None and ahead is not None and ahead <= reserve:
                    self._ahead = None      # committed, or to be asked again


def read_since(path: str, server_id: str, after: int, limit: int = 10_000) -> list[dict[str, Any]]:
    """The events of `server_id` after `after`, at most `limit` of them, oldest first; gaps as
    `journal.gap` events where numbers after `after` are gone (see the module's docstring)."""
    con = _connect(path, readonly=True)
    try:
        return list(_since(con, server_id, after, limit))
    except sqlite3.Error as exc:
        raise JournalError(f"event journal {path}: {exc}") from None
    finally:
        con.close()


def stored_range(path: str, server_id: str) -> tuple[int, int]:
    """(oldest, newest) seq stored for `server_id`; (0, 0) when there is none."""
    con = _connect(path, readonly=True)
    try:
        lo, hi = con.execute("SELECT MIN(seq), MAX(seq) FROM journal_events WHERE server_id = ?",
                             (server_id,)).fetchone()
    except sqlite3.Error as exc:
        raise JournalError(f"event journal {path}: {exc}") from None
    finally:
        con.close()
    return (lo or 0, hi or 0)


def _lost_ranges(con: sqlite3.Connection, server_id: str) -> list[tuple[int, int, str]]:
    """(first, last, reason) of the numbers of killed runs that have no stored event after the
    last one that was stored: what such a run may have published and never wrote."""
    runs = con.execute("SELECT first_seq, stopped FROM journal_runs WHERE server_id = ? ORDER BY first_seq",
                       (server_id,)).fetchall()
    out = []
    for (first, stopped), nxt in zip(runs, runs[1:], strict=False):
        if stopped is not None:
            continue
        top = con.execute("SELECT MAX(seq) FROM journal_events WHERE server_id = ? AND seq >= ? AND seq < ?",
                          (server_id, first, nxt[0])).fetchone()[0]
        start = (top or first - 1) + 1
        if start <= nxt[0] - 1:
            out.append((start, nxt[0] - 1, "the server was killed: events after "
                        f"{start - 1} were not stored (some of these numbers were never used)"))
    return out


def _since(con: sqlite3.Connection, server_id: str, after: int, limit: int) -> Iterator[dict[str, Any]]:
    oldest = con.execute("SELECT MIN(seq) FROM journal_events WHERE server_id = ?", (server_id,)).fetchone()[0]
    pruned_to = 0
    if oldest is not None:
        first_run = con.execute("SELECT MIN(first_seq) FROM journal_runs WHERE server_id = ?",
                                (server_id,)).fetchone()[0]
        if first_run is not None and oldest > first_run:
            pruned_to = oldest - 1       # everything before the oldest stored was deleted
    n = 0
    if after < pruned_to:
        yield gap(after + 1, pruned_to, "older than the journal keeps")
        after, n = pruned_to, 1
    lost = [r for r in _lost_ranges(con, server_id) if r[1] > after]
    rows = con.execute("SELECT seq, time, body FROM journal_events WHERE server_id = ? AND seq > ? "
                       "ORDER BY seq LIMIT ?", (server_id, after, limit))
    for seq, stamp, body in rows:
        while lost and lost[0][0] < seq:
            first, last, reason = lost.pop(0)
            yield gap(max(first, after + 1), last, reason)
            n += 1
        if n >= limit:
            return
        ev = json.loads(body)
        ev.setdefault("time", stamp)
        yield ev
        n += 1
    if n < limit:
        for first, last, reason in lost:
            yield gap(max(first, after + 1), last, reason)
