"""Call records in SQLite: calls, their recordings, voicemail messages and mailboxes.

Why SQLite in WAL mode: embedded (nothing to install), one writer (the
recorder's writer thread) with readers (the `voiceboard calls` CLI) at the
same time, and a commit that is durable without an fsync per row. A
recording's row is committed *before* its file gets a byte (status
'recording'), so after a crash `voiceserver.recording.recorder.recover` finds every
file that was being written and the call it belongs to.

Times are stored as UTC ISO-8601 text with microseconds ("2026-11-23T09:30:00.000000Z"):
fixed width, so text order is time order. A naive datetime is taken as UTC.

Schema: versioned in `schema_version`; `MIGRATIONS[i]` takes a database from
version i to i+1, each in its own transaction. A database newer than this
code is refused (never guessed at).

Call rows belong to a server run (schema 4): `server_id` and `run` say which
server took the call and which of its starts (`start_run` numbers them; the
call id holds both, voiceserver.core.callids). A row is created once
(`upsert_call(row, new=True)`: an existing row with that id is an error,
`CallIdInUse`, never an overwrite) and then completed only by writes of the
same run; a write that names another run's row is refused the same way.
Rows written without a server and run (tools, tests, databases from before
schema 4) merge as they always did.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

DEFAULT_PATH = "/var/lib/voiceboard/calls.db"

MIGRATIONS: list[str] = [
    # 0 -> 1
    """
    CREATE TABLE calls (
        call_id      TEXT PRIMARY KEY,
        start        TEXT,
        answer       TEXT,
        "end"        TEXT,
        duration     REAL,             -- seconds from answer (or start, if unanswered) to end
        board        TEXT,
        channel      INTEGER,
        direction    TEXT,
        caller       TEXT,
        called       TEXT,
        caller_norm  TEXT,             -- voiceserver.ivr.blacklist.normalize_number, for searches
        called_norm  TEXT,
        agent        TEXT,
        queue        TEXT,
        ivr_path     TEXT,             -- JSON list
        disposition  TEXT,             -- end reason ('caller hung up', 'recovered after crash', ...)
        digits_count INTEGER
    );
    CREATE INDEX calls_start ON calls(start);
    CREATE INDEX calls_caller ON calls(caller_norm);
    CREATE INDEX calls_called ON calls(called_norm);
    CREATE TABLE recordings (
        id             INTEGER PRIMARY KEY AUTOINCREMENT,
        call_id        TEXT NOT NULL REFERENCES calls(call_id),
        path           TEXT NOT NULL UNIQUE,   -- the final .wav; '.part' is appended while recording
        format         TEXT NOT NULL,          -- pcm16 | alaw
        layout         TEXT NOT NULL,          -- mono | stereo (left = caller, right = agent side)
        started        TEXT NOT NULL,
        duration       REAL NOT NULL DEFAULT 0,
        status         TEXT NOT NULL,          -- recording | kept | discarded | failed
        stop_reason    TEXT,                   -- call end, max duration, disk full, ...
        discard_reason TEXT,
        recovered      INTEGER NOT NULL DEFAULT 0,
        gaps           TEXT NOT NULL DEFAULT '[]',  -- JSON [{start, end, why}] in seconds from the file start
        dropped_blocks INTEGER NOT NULL DEFAULT 0,
        bytes          INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX recordings_call ON recordings(call_id);
    CREATE INDEX recordings_status ON recordings(status);
    CREATE TABLE mailboxes (
        mailbox     TEXT PRIMARY KEY,
        owner_agent TEXT,
        description TEXT
    );
    CREATE TABLE mailbox_supervisors (
        mailbox TEXT NOT NULL REFERENCES mailboxes(mailbox),
        user    TEXT NOT NULL,
        PRIMARY KEY (mailbox, user)
    );
    CREATE TABLE voicemail (
        id       INTEGER PRIMARY KEY AUTOINCREMENT,
        mailbox  TEXT NOT NULL REFERENCES mailboxes(mailbox),
        call_id  TEXT REFERENCES calls(call_id),
        caller   TEXT,
        path     TEXT NOT NULL,
        duration REAL NOT NULL DEFAULT 0,
        created  TEXT NOT NULL,
        heard    INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX voicemail_mailbox ON voicemail(mailbox, heard);
    """,
    # 1 -> 2: the recording decision of every call, recorded or not (docs/recording.md)
    """
    ALTER TABLE calls ADD COLUMN recording_rule TEXT;   -- the rule that decided (FILE:LINE key)
    ALTER TABLE calls ADD COLUMN recording_note TEXT;   -- what became of the recording, in a sentence
    """,
    # 2 -> 3: when an agent took the call (time to agent = agent_answer - answer)
    """
    ALTER TABLE calls ADD COLUMN agent_answer TEXT;     -- the agent's phone answered (first time)
    """,
    # 3 -> 4: call ids unique across restarts and servers; the row is written as the call goes
    """
    CREATE TABLE servers (
        server_id  TEXT PRIMARY KEY,       -- [storage] server_id (default: the host name)
        runs       INTEGER NOT NULL,       -- starts so far: each start's call ids hold its number
        last_start TEXT
    );
    ALTER TABLE calls ADD COLUMN server_id TEXT;   -- the server that took the call (NULL: schema < 4)
    ALTER TABLE calls ADD COLUMN run INTEGER;      -- which start of that server
    ALTER TABLE calls ADD COLUMN last_seen TEXT;   -- the last time the server saw the call going
    CREATE INDEX calls_run ON calls(server_id, run);
    CREATE INDEX calls_open ON calls(server_id, run, board) WHERE "end" IS NULL;
    """,
    # 4 -> 5: what the server found after the call (its line left seized by a crash), one a line
    """
    ALTER TABLE calls ADD COLUMN notes TEXT;
    """,
    # 5 -> 6: what an E1 R2 trunk signalled (docs/r2.md); NULL on analog lines
    """
    ALTER TABLE calls ADD COLUMN dnis TEXT;       -- the number dialled, as the register received it
    ALTER TABLE calls ADD COLUMN ani TEXT;        -- the calling number, as signalled
    ALTER TABLE calls ADD COLUMN category TEXT;   -- the calling party category (national_subscriber ...)
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)

RECOVERED = "recovered after crash"
# the disposition crash recovery gives a call the server never finished: its end is an
# estimate, the last time the server was known to see the call going (`last_seen`)
CRASHED = "server crashed: end estimated (the last time the call was seen)"


class CallDbError(Exception):
    """The database cannot be opened or used; the message names the file."""


class CallIdInUse(CallDbError):
    """A call row exists under this id for another call: it is left as it is."""


def iso(t: dt.datetime | None) -> str | None:
    """Fixed-width UTC text for a datetime (naive = UTC)."""
    if t is None:
        return None
    if t.tzinfo is not None:
        if t.tzinfo is not dt.UTC:
            t = t.astimezone(dt.UTC)
        t = t.replace(tzinfo=None)
    if t.year < 1000:       # strftime's %Y does not pad a year below 1000; isoformat would
        return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return t.isoformat(timespec="microseconds") + "Z"    # the same text, at half the cost


@overload
def parse_time(s: str) -> dt.datetime: ...
@overload
def parse_time(s: None) -> None: ...
@overload
def parse_time(s: str | None) -> dt.datetime | None: ...
def parse_time(s: str | None) -> dt.datetime | None:
    """Stored text back to an aware UTC datetime; also accepts any ISO-8601 the CLI is given."""
    if s is None:
        return None
    text = s.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        t = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not an ISO-8601 date/time: {s!r} (e.g. 2026-11-23 or 2026-11-23T09:30)") from None
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)


def normalize(number: str | None) -> str | None:
    """The searchable form of a number; the raw text when it is not a phone number."""
    if not number:
        return number
    from voiceserver.ivr.blacklist import normalize_number
    try:
        return normalize_number(number)
    except ValueError:
        return number


@dataclass
class CallRow:
    """One call, as known so far; `None` fields are left as they are on upsert."""
    call_id: str
    start: dt.datetime | None = None
    answer: dt.datetime | None = None
    end: dt.datetime | None = None
    board: str | None = None
    channel: int | None = None
    direction: str | None = None
    caller: str | None = None
    called: str | None = None
    agent: str | None = None
    queue: str | None = None
    ivr_path: list[str] | None = None
    disposition: str | None = None
    digits_count: int | None = None
    recording_rule: str | None = None   # the recording rule that decided ("FILE:LINE key")
    recording_note: str | None = None   # what became of the recording ("kept: ...", "not recorded: ...")
    agent_answer: dt.datetime | None = None   # when the agent's phone answered (answer: the line)
    server_id: str | None = None        # the server run the call belongs to (schema 4); None:
    run: int | None = None              # a tool's row, merged into whatever row has the id
    last_seen: dt.datetime | None = None   # the server saw the call going then (crash: its end)
    dnis: str | None = None             # E1 R2 (schema 6): DNIS, ANI and category signalled
    ani: str | None = None
    category: str | None = None

    @classmethod
    def from_record(cls, rec: Any) -> CallRow:
        """From voiceserver.core.server.CallRecord (duck-typed: the server module is not imported)."""
        return cls(call_id=rec.call_id, start=rec.start, answer=rec.answer, end=rec.end,
                   board=rec.board, channel=rec.chan, direction=rec.direction, caller=rec.caller,
                   called=rec.called, agent=rec.agent, queue=getattr(rec, "queue", None),
                   ivr_path=list(rec.ivr_path), disposition=rec.reason,
                   digits_count=len(rec.digits or ""),
                   agent_answer=getattr(rec, "agent_answer", None),
                   dnis=getattr(rec, "dnis", None), ani=getattr(rec, "ani", None),
                   category=getattr(rec, "category", None))


@dataclass
class RecordingRow:
    id: int
    call_id: str
    path: str
    format: str
    layout: str
    started: dt.datetime
    duration: float
    status: str
    stop_reason: str | None
    discard_reason: str | None
    recovered: bool
    gaps: list[dict[str, Any]] = field(default_factory=list)
    dropped_blocks: int = 0
    bytes: int = 0


class CallDb:
    """One connection, usable from several threads (serialised by a lock)."""

    def __init__(self, path: str | os.PathLike[str] = DEFAULT_PATH) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        try:
            if str(path) != ":memory:":
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None,
                                         timeout=10.0)
        except (OSError, sqlite3.Error) as exc:
            raise CallDbError(f"{path}: cannot open the call database: {exc}") from None
        self._conn.row_factory = sqlite3.Row
        try:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except CallDbError:
            self._conn.close()
            raise
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise CallDbError(f"{path}: not a usable call database: {exc}") from None

    # -- schema ---------------------------------------------------------------
    def _migrate(self) -> None:
        c = self._conn
        c.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = c.execute("SELECT version FROM schema_version").fetchone()
        version = row[0] if row else 0
        if row is None:
            c.execute("INSERT INTO schema_version VALUES (0)")
        if version > len(MIGRATIONS):
            raise CallDbError(f"{self.path}: schema version {version} is newer than this program "
                              f"understands ({len(MIGRATIONS)}); upgrade voiceboard")
        for v in range(version, len(MIGRATIONS)):
            c.execute("BEGIN IMMEDIATE")
            try:
                for stmt in _statements(MIGRATIONS[v]):
                    c.execute(stmt)
                c.execute("UPDATE schema_version SET version = ?", (v + 1,))
                c.execute("COMMIT")
            except sqlite3.Error as exc:
                c.execute("ROLLBACK")
                raise CallDbError(f"{self.path}: migration to schema version {v + 1} failed "
                                  f"(database left at {v}): {exc}") from None

    @property
    def version(self) -> int:
        return self._conn.execute("SELECT version FROM schema_version").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> CallDb:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _tx(self, stmts: Iterable[Any]) -> list[Any]:
        """Run statements ((sql, args) or a callable(conn)) in one transaction; each lastrowid."""
        with self._lock:
            c = self._conn
            c.execute("BEGIN IMMEDIATE")
            try:
                ids = [c.execute(*st).lastrowid if isinstance(st, tuple) else st(c) for st in stmts]
                c.execute("COMMIT")
            except BaseException:
                c.execute("ROLLBACK")
                raise
            return ids

    def query(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    # -- calls ----------------------------------------------------------------
    def upsert_call(self, row: CallRow, *, new: bool = False) -> None:
        """Insert the call, or fill in the fields `row` knows (None = unchanged).

        `new`: the call's first write; a row with its id already there is
        `CallIdInUse`. A row of another server run is never written either.
        """
        self._tx([lambda c: _upsert_call(c, row, new=new, where=self.path)])

    def upsert_calls(self, rows: Sequence[tuple[CallRow, bool]]) -> list[Exception | None]:
        """Several `upsert_call`s (row, new) in one transaction: what the recorder's writer
        has queued in one pass. A commit per row cost more than the row.

        Rows of one call that follow each other are merged first (the later one's fields
        win), so a call's IVR steps and its end in the same pass are one UPDATE. Each
        row's refusal (CallIdInUse) or database error is returned in its place and the
        others are written: after a database error each row is tried on its own."""
        merged = _merge_rows(rows)
        try:
            return [refused for refused, n in self._tx([lambda c: self._upsert_rows(c, merged)])[0]
                    for _ in range(n)]
        except sqlite3.Error:
            pass
        out: list[Exception | None] = []
        for row, new, n in merged:
            try:
                self.upsert_call(row, new=new)
                out += [None] * n
            except (CallIdInUse, sqlite3.Error) as exc:
                out += [exc] * n
        return out

    def _upsert_rows(self, c: sqlite3.Connection, merged: list[tuple[CallRow, bool, int]]
                     ) -> list[tuple[CallIdInUse | None, int]]:
        done: list[tuple[CallIdInUse | None, int]] = []
        for row, new, n in merged:
            try:
                _upsert_call(c, row, new=new, where=self.path)   # refuses before it writes
                done.append((None, n))
            except CallIdInUse as exc:
                done.append((exc, n))
        return done

    def note_line_released(self, board: str, channel: int, note: str) -> str | None:
        """Add `note` to the call that had (board, channel) when the server stopped without
        ending it (its row still open, or completed by crash recovery); its id, or None."""
        def add(c: sqlite3.Connection) -> str | None:
            row = c.execute('SELECT call_id FROM calls WHERE board = ? AND channel = ? '
                            'AND ("end" IS NULL OR disposition IN (?, ?)) ORDER BY start DESC LIMIT 1',
                            (board, channel, RECOVERED, CRASHED)).fetchone()
            if row is None:
                return None
            c.execute("UPDATE calls SET notes = CASE WHEN notes IS NULL OR notes = '' THEN ? "
                      "ELSE notes || char(10) || ? END WHERE call_id = ?", (note, note, row[0]))
            return row[0]
        return self._tx([add])[0]

    def drop_ringing_crashed(self, call_id: str, into: str) -> bool:
        """Delete the row crash recovery closed for a call that was never answered and kept
        no recording, because the restarted server took the same ringing call up under a new
        id (`into`); a discarded recording of it (no file: the crash came as it began) moves
        to `into`. True if it was deleted."""
        def drop(c: sqlite3.Connection) -> bool:
            crashed = c.execute('SELECT 1 FROM calls WHERE call_id = ? AND answer IS NULL '
                                'AND disposition = ? AND NOT EXISTS (SELECT 1 FROM recordings r '
                                "WHERE r.call_id = calls.call_id AND r.status != 'discarded')",
                                (call_id, CRASHED)).fetchone()
            if crashed is None:
                return False
            c.execute("UPDATE recordings SET call_id = ? WHERE call_id = ?", (into, call_id))
            c.execute("DELETE FROM calls WHERE call_id = ?", (call_id,))
            return True
        return self._tx([drop])[0]

    def call(self, call_id: str) -> dict[str, Any] | None:
        rows = self.query("SELECT * FROM calls WHERE call_id = ?", (call_id,))
        return _call_dict(rows[0]) if rows else None

    def start_run(self, server_id: str, when: dt.datetime) -> int:
        """The number of this start of `server_id`: one more than any before.

        Never less than the highest run of a call stored under the server id,
        so call ids cannot repeat even if the servers table went back (a
        restored backup) while calls rows stayed.
        """
        def take(c: sqlite3.Connection) -> int:
            row = c.execute("SELECT runs FROM servers WHERE server_id = ?", (server_id,)).fetchone()
            seen = c.execute("SELECT MAX(run) FROM calls WHERE server_id = ?", (server_id,)).fetchone()[0]
            run = max(row[0] if row else 0, seen or 0) + 1
            if row is None:
                c.execute("INSERT INTO servers (server_id, runs, last_start) VALUES (?, ?, ?)",
                          (server_id, run, iso(when)))
            else:
                c.execute("UPDATE servers SET runs = ?, last_start = ? WHERE server_id = ?",
                          (run, iso(when), server_id))
            return run
        return self._tx([take])[0]

    def mark_seen(self, server_id: str, run: int, board: str, when: dt.datetime) -> None:
        """The calls of this run on `board` still going were seen at `when` (crash recovery's end)."""
        self._tx([('UPDATE calls SET last_seen = ? WHERE server_id = ? AND run = ? AND board = ? '
                   'AND "end" IS NULL', (iso(when), server_id, run, board))])

    def finish_open_calls(self, server_id: str, run: int, board: str, end: dt.datetime,
                          disposition: str) -> list[str]:
        """End the calls of this run on `board` that have no end yet (the server stops); their ids."""
        def finish(c: sqlite3.Connection) -> list[str]:
            ids = [r[0] for r in c.execute('SELECT call_id FROM calls WHERE server_id = ? AND run = ? '
                                           'AND board = ? AND "end" IS NULL', (server_id, run, board))]
            for call_id in ids:
                _upsert_call(c, CallRow(call_id, end=end, disposition=disposition,
                                        server_id=server_id, run=run), where=self.path)
            return ids
        return self._tx([finish])[0]

    def open_calls(self, server_id: str | None) -> list[dict[str, Any]]:
        """Calls with no end: of `server_id` and of no server (schema < 4); None: all."""
        sql = 'SELECT * FROM calls WHERE "end" IS NULL'
        if server_id is None:
            return [_call_dict(r) for r in self.query(sql)]
        return [_call_dict(r) for r in self.query(sql + " AND (server_id = ? OR server_id IS NULL)",
                                                  (server_id,))]

    # -- recordings -------------------------------------------------------------
    def begin_recording(self, call: CallRow, *, path: str, fmt: str, layout: str,
                        started: dt.datetime) -> int:
        """The call row (created or completed) and a 'recording' row, in one commit; returns its id."""
        return self._tx([lambda c: self._begin_recording(c, call, path, fmt, layout, started)])[0]

    def begin_recording_then_calls(self, call: CallRow, *, path: str, fmt: str, layout: str,
                                   started: dt.datetime, calls: Sequence[tuple[CallRow, bool]]
                                   ) -> tuple[int, list[Exception | None]]:
        """`begin_recording`, then `upsert_calls(calls)`, in one commit: the recorder's writer
        with the call rows queued right after a recording's start (a commit less).

        A refused call row is returned in its place as by `upsert_calls`; any other
        error rolls both back and is raised, so the caller can write them apart."""
        return self._then_calls(lambda c: self._begin_recording(c, call, path, fmt, layout, started), calls)

    def _begin_recording(self, c: sqlite3.Connection, call: CallRow, path: str, fmt: str, layout: str,
                         started: dt.datetime) -> int:
        _upsert_call(c, call, where=self.path)
        rec_id = c.execute("INSERT INTO recordings (call_id, path, format, layout, started, status) "
                           "VALUES (?, ?, ?, ?, ?, 'recording')",
                           (call.call_id, path, fmt, layout, iso(started))).lastrowid
        assert rec_id is not None, "an INSERT gives its row id"
        return rec_id

    def end_recording(self, rec_id: int, *, status: str, duration: float, stop_reason: str | None,
                      discard_reason: str | None = None, gaps: list[dict[str, Any]] | None = None,
                      dropped_blocks: int = 0, nbytes: int = 0, recovered: bool = False) -> None:
        self._tx([_end_recording_sql(rec_id, status, duration, stop_reason, discard_reason, gaps,
                                     dropped_blocks, nbytes, recovered)])

    def end_recording_then_calls(self, rec_id: int, *, status: str, duration: float,
                                 stop_reason: str | None, discard_reason: str | None = None,
                                 gaps: list[dict[str, Any]] | None = None, dropped_blocks: int = 0,
                                 nbytes: int = 0, calls: Sequence[tuple[CallRow, bool]] = ()
                                 ) -> list[Exception | None]:
        """`end_recording`, then `upsert_calls(calls)`, in one commit (the call's end row comes
        right after its recording's stop); errors as in `begin_recording_then_calls`."""
        end = _end_recording_sql(rec_id, status, duration, stop_reason, discard_reason, gaps,
                                 dropped_blocks, nbytes, False)
        return self._then_calls(lambda c: c.execute(*end), calls)[1]

    def _then_calls(self, first: Callable[[sqlite3.Connection], Any],
                    calls: Sequence[tuple[CallRow, bool]]) -> tuple[Any, list[Exception | None]]:
        merged = _merge_rows(calls)
        value, done = self._tx([lambda c: (first(c), self._upsert_rows(c, merged))])[0]
        return value, [refused for refused, n in done for _ in range(n)]

    def recordings(self, call_id: str | None = None, status: str | None = None) -> list[RecordingRow]:
        where, args = [], []
        if call_id is not None:
            where.append("call_id = ?")
            args.append(call_id)
        if status is not None:
            where.append("status = ?")
            args.append(status)
        sql = "SELECT * FROM recordings" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id"
        return [_rec_row(r) for r in self.query(sql, args)]

    # -- voicemail + mailboxes (data model for the allocation issue) --------------
    def add_mailbox(self, mailbox: str, *, owner_agent: str | None = None,
                    supervisors: Iterable[str] = (), description: str | None = None) -> None:
        stmts: list[Any] = [(
            "INSERT INTO mailboxes (mailbox, owner_agent, description) VALUES (?, ?, ?) "
            "ON CONFLICT(mailbox) DO UPDATE SET owner_agent = excluded.owner_agent, "
            "description = excluded.description", (mailbox, owner_agent, description)),
            ("DELETE FROM mailbox_supervisors WHERE mailbox = ?", (mailbox,))]
        stmts += [("INSERT INTO mailbox_supervisors (mailbox, user) VALUES (?, ?)", (mailbox, s))
                  for s in sorted(set(supervisors))]
        self._tx(stmts)

    def can_access(self, user: str, mailbox: str) -> bool:
        """A mailbox is open to its owner agent and its supervisors; to no one if it does not exist."""
        rows = self.query(
            "SELECT 1 FROM mailboxes m WHERE m.mailbox = ? AND (m.owner_agent = ? OR EXISTS "
            "(SELECT 1 FROM mailbox_supervisors s WHERE s.mailbox = m.mailbox AND s.user = ?))",
            (mailbox, user, user))
        return bool(rows)

    def add_voicemail(self, mailbox: str, *, path: str, created: dt.datetime, duration: float,
                      call_id: str | None = None, caller: str | None = None) -> int:
        if not self.query("SELECT 1 FROM mailboxes WHERE mailbox = ?", (mailbox,)):
            raise CallDbError(f"{self.path}: no mailbox {mailbox!r}")
        return self._tx([("INSERT INTO voicemail (mailbox, call_id, caller, path, duration, created) "
                          "VALUES (?, ?, ?, ?, ?, ?)",
                          (mailbox, call_id, caller, path, duration, iso(created)))])[0]

    def voicemail(self, mailbox: str, *, user: str, unheard_only: bool = False) -> list[dict[str, Any]]:
        """A mailbox's messages, oldest first; PermissionError if `user` may not open it."""
        if not self.can_access(user, mailbox):
            raise PermissionError(f"{user!r} may not open mailbox {mailbox!r}")
        sql = "SELECT * FROM voicemail WHERE mailbox = ?" + (" AND heard = 0" if unheard_only else "")
        return [dict(r) for r in self.query(sql + " ORDER BY created, id", (mailbox,))]

    def mark_heard(self, message_id: int, *, user: str) -> None:
        rows = self.query("SELECT mailbox FROM voicemail WHERE id = ?", (message_id,))
        if not rows:
            raise CallDbError(f"{self.path}: no voicemail message {message_id}")
        if not self.can_access(user, rows[0]["mailbox"]):
            raise PermissionError(f"{user!r} may not open mailbox {rows[0]['mailbox']!r}")
        self._tx([("UPDATE voicemail SET heard = 1 WHERE id = ?", (message_id,))])


def _end_recording_sql(rec_id: int, status: str, duration: float, stop_reason: str | None,
                       discard_reason: str | None, gaps: list[dict[str, Any]] | None,
                       dropped_blocks: int, nbytes: int, recovered: bool) -> tuple[str, tuple[Any, ...]]:
    if status not in ("kept", "discarded", "failed"):
        raise ValueError(f"recording status must be kept, discarded or failed, not {status!r}")
    return ("UPDATE recordings SET status = ?, duration = ?, stop_reason = ?, discard_reason = ?, "
            "gaps = ?, dropped_blocks = ?, bytes = ?, recovered = ? WHERE id = ?",
            (status, round(duration, 4), stop_reason, discard_reason, json.dumps(gaps or []),
             dropped_blocks, nbytes, int(recovered), rec_id))


def _statements(script: str) -> list[str]:
    out, cur = [], []
    for line in script.splitlines():
        cur.append(line.split("--", 1)[0] if "--" in line else line)
        text = "\n".join(cur).strip()
        if text.endswith(";") and sqlite3.complete_statement(text):
            out.append(text)
            cur = []
    if "\n".join(cur).strip():
        out.append("\n".join(cur).strip())
    return out


def _merge_rows(rows: Sequence[tuple[CallRow, bool]]) -> list[tuple[CallRow, bool, int]]:
    """(row, new, how many rows it stands for): a row that updates the call of the row before
    it is folded into that one; a `new` row never is (it must meet the id's check itself)."""
    out: list[tuple[CallRow, bool, int]] = []
    for row, new in rows:
        if out and not new and out[-1][0].call_id == row.call_id \
                and (out[-1][0].server_id, out[-1][0].run) == (row.server_id, row.run):
            prev, prev_new, n = out[-1]
            later = {f.name: v for f in dataclasses.fields(row) if (v := getattr(row, f.name)) is not None}
            out[-1] = (dataclasses.replace(prev, **later), prev_new, n + 1)
        else:
            out.append((row, new, 1))
    return out


def _upsert_call(c: sqlite3.Connection, row: CallRow, *, new: bool = False,
                 where: Any = "call database") -> None:
    """Merge `row` into the stored call (None = keep), recompute duration; inside a transaction.

    CallIdInUse: `new` and the id is taken, or the stored row is another run's.
    A `new` row is inserted without reading first: the id is the calls table's
    primary key (its only constraint), so a taken id fails the INSERT, which
    changes nothing, and only then is the stored row read to name its owner.
    """
    old = None if new else c.execute(_STORED_SQL, (row.call_id,)).fetchone()
    if old is not None and row.server_id is not None and (old[0], old[1]) != (row.server_id, row.run):
        raise _in_use(row, old, where)
    # Only the fields `row` knows are written (and the duration): an UPDATE of every column
    # also rewrote every index of the table, several times in each call's life.
    fields: dict[str, Any] = {
        "start": iso(row.start), "answer": iso(row.answer), "end": iso(row.end),
        "board": row.board, "channel": row.channel, "direction": row.direction,
        "caller": row.caller, "called": row.called, "caller_norm": normalize(row.caller),
        "called_norm": normalize(row.called), "agent": row.agent, "queue": row.queue,
        "ivr_path": None if row.ivr_path is None else json.dumps(row.ivr_path),
        "disposition": row.disposition, "digits_count": row.digits_count,
        "recording_rule": row.recording_rule, "recording_note": row.recording_note,
        "agent_answer": iso(row.agent_answer), "server_id": row.server_id, "run": row.run,
        "last_seen": iso(row.last_seen), "dnis": row.dnis, "ani": row.ani, "category": row.category,
    }
    given = {k: v for k, v in fields.items() if v is not None}
    times = [given.get(k) or (old[k] if old is not None else None) for k in ("start", "answer", "end")]
    t0 = times[1] or times[0]
    given["duration"] = (None if times[2] is None or t0 is None else
                         round((parse_time(times[2]) - parse_time(t0)).total_seconds(), 6))
    if old is not None:
        # an indexed column given the value it holds (a row's server and run, its board, start
        # and numbers, sent again) is left out: SQLite then leaves that index's entry alone,
        # and a commit writes fewer pages (a third less in bench/server_mixed.py)
        for k in _INDEXED:
            if k in given and given[k] == old[k]:
                del given[k]
        c.execute(_update_sql(tuple(given)), list(given.values()) + [row.call_id])
        return
    try:
        c.execute(_insert_sql(tuple(given)), [row.call_id] + list(given.values()))
    except sqlite3.IntegrityError:
        taken = c.execute(_STORED_SQL, (row.call_id,)).fetchone() if new else None
        if taken is None:
            raise
        raise _in_use(row, taken, where) from None


# what _upsert_call needs of a stored row: whose it is, its times for the duration, and
# the columns of the calls table's indexes (_INDEXED: calls_start, calls_caller, calls_called,
# calls_run, and calls_open with its condition on "end")
_STORED_SQL = ('SELECT server_id, run, start, answer, "end", board, caller_norm, called_norm '
               'FROM calls WHERE call_id = ?')
_INDEXED = ("start", "end", "board", "caller_norm", "called_norm", "server_id", "run")


def _in_use(row: CallRow, old: sqlite3.Row, where: Any) -> CallIdInUse:
    owner = (f"server {old['server_id']} run {old['run']}" if old["server_id"] is not None
             else "a server before schema 4")
    return CallIdInUse(f"{where}: call id {row.call_id} is already the call of {owner} "
                       f"(started {old['start']}); that row is left as it is")


@functools.lru_cache(maxsize=64)
def _insert_sql(columns: tuple[str, ...]) -> str:
    """The INSERT of a call row with these columns (after call_id): built once, not per row."""
    cols = ("call_id",) + columns
    return f"INSERT INTO calls ({', '.join(f'{_q(k)}' for k in cols)}) VALUES ({', '.join('?' * len(cols))})"


@functools.lru_cache(maxsize=64)
def _update_sql(columns: tuple[str, ...]) -> str:
    return f"UPDATE calls SET {', '.join(f'{_q(k)} = ?' for k in columns)} WHERE call_id = ?"


def _q(name: str) -> str:
    return f'"{name}"'


def _call_dict(r: sqlite3.Row) -> dict[str, Any]:
    d = dict(r)
    d["ivr_path"] = json.loads(d["ivr_path"]) if d.get("ivr_path") else []
    return d


def _rec_row(r: sqlite3.Row) -> RecordingRow:
    return RecordingRow(id=r["id"], call_id=r["call_id"], path=r["path"], format=r["format"],
                        layout=r["layout"], started=parse_time(r["started"]), duration=r["duration"],
                        status=r["status"], stop_reason=r["stop_reason"],
                        discard_reason=r["discard_reason"], recovered=bool(r["recovered"]),
                        gaps=json.loads(r["gaps"] or "[]"), dropped_blocks=r["dropped_blocks"],
                        bytes=r["bytes"])


__all__ = ["CallDb", "CallDbError", "CallIdInUse", "CallRow", "RecordingRow", "DEFAULT_PATH",
           "SCHEMA_VERSION", "MIGRATIONS", "RECOVERED", "CRASHED", "iso", "parse_time", "normalize"]
