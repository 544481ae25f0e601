"""SQLite call records: schema versions, upserts, recordings, mailboxes and permissions."""
from __future__ import annotations

import datetime as dt
import sqlite3

import pytest

from voiceserver.recording import calldb
from voiceserver.recording.calldb import CallDb, CallDbError, CallRow

T0 = dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.UTC)


def at(s: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=s)


def test_new_database_is_at_the_current_version_in_wal_mode(tmp_path):
    with CallDb(tmp_path / "sub" / "calls.db") as db:
        assert db.version == calldb.SCHEMA_VERSION
        assert db.query("PRAGMA journal_mode")[0][0] == "wal"
        tables = {r[0] for r in db.query("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"schema_version", "calls", "recordings", "voicemail", "mailboxes", "mailbox_supervisors"} <= tables


def test_migration_path_applies_new_steps_in_order_and_keeps_rows(tmp_path, monkeypatch):
    path = tmp_path / "calls.db"
    with CallDb(path) as db:
        db.upsert_call(CallRow("c1", start=at(0), caller="100"))
    step = "ALTER TABLE calls ADD COLUMN tag TEXT;\nUPDATE calls SET tag = 'migrated';"
    monkeypatch.setattr(calldb, "MIGRATIONS", calldb.MIGRATIONS + [step])
    with CallDb(path) as db:
        assert db.version == len(calldb.MIGRATIONS)
        assert db.query("SELECT call_id, tag FROM calls")[0][:] == ("c1", "migrated")


def test_failed_migration_rolls_back(tmp_path, monkeypatch):
    path = tmp_path / "calls.db"
    CallDb(path).close()
    monkeypatch.setattr(calldb, "MIGRATIONS", calldb.MIGRATIONS + ["ALTER TABLE calls ADD COLUMN x TEXT;\nBROKEN SQL;"])
    v = calldb.SCHEMA_VERSION
    with pytest.raises(CallDbError, match=f"migration to schema version {v + 1} failed .database left at {v}.*BROKEN"):
        CallDb(path)
    con = sqlite3.connect(path)
    assert con.execute("SELECT version FROM schema_version").fetchone()[0] == v
    assert "x" not in [r[1] for r in con.execute("PRAGMA table_info(calls)")]
    con.close()


def test_a_version_1_database_gains_the_recording_decision_columns(tmp_path):
    """Databases made before recording was wired in (schema 1) upgrade in place."""
    path = tmp_path / "calls.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    con.execute("INSERT INTO schema_version VALUES (0)")
    con.commit()
    con.close()
    old = calldb.MIGRATIONS[:1]
    import unittest.mock
    with unittest.mock.patch.object(calldb, "MIGRATIONS", old):
        with CallDb(path) as db:
            assert db.version == 1
    con = sqlite3.connect(path)
    con.execute("INSERT INTO calls (call_id, caller) VALUES ('c1', '100')")
    con.commit()
    con.close()
    with CallDb(path) as db:
        assert db.version == calldb.SCHEMA_VERSION
        db.upsert_call(CallRow("c1", recording_rule="r.toml:3 exclude.channels",
                               recording_note="not recorded"))
        row = db.call("c1")
    assert row["caller"] == "100" and row["recording_rule"] == "r.toml:3 exclude.channels"
    assert row["recording_note"] == "not recorded"


def test_newer_database_is_refused(tmp_path):
    path = tmp_path / "calls.db"
    CallDb(path).close()
    con = sqlite3.connect(path)
    con.execute("UPDATE schema_version SET version = 99")
    con.commit()
    con.close()
    with pytest.raises(CallDbError, match="schema version 99 is newer"):
        CallDb(path)


def test_not_a_database(tmp_path):
    bad = tmp_path / "calls.db"
    bad.write_bytes(b"hello, this is not sqlite" * 100)
    with pytest.raises(CallDbError, match="calls.db: not a usable call database"):
        CallDb(bad)


def test_upsert_merges_and_computes_duration_from_answer():
    db = CallDb(":memory:")
    db.upsert_call(CallRow("c1", start=at(0), caller="+86 10 1234 5678", called="10086",
                           direction="inbound", channel=3, board="b"))
    db.upsert_call(CallRow("c1", answer=at(4), end=at(34.25), disposition="caller hung up",
                           digits_count=2, ivr_path=["menu:main", "queue"], agent="b:5"))
    c = db.call("c1")
    assert c["caller"] == "+86 10 1234 5678" and c["caller_norm"] == "1012345678"
    assert c["called_norm"] == "10086"
    assert c["duration"] == 30.25 and c["disposition"] == "caller hung up"
    assert c["ivr_path"] == ["menu:main", "queue"] and c["digits_count"] == 2
    assert c["start"] == "2026-11-23T09:30:00.000000Z"
    db.upsert_call(CallRow("c2", start=at(0), end=at(5)))        # unanswered: from start
    assert db.call("c2")["duration"] == 5.0


def _writes(n_calls: int) -> list[tuple[CallRow, bool]]:
    """A writer pass's call rows: each call's first row, its IVR steps, its answer and end."""
    rows: list[tuple[CallRow, bool]] = []
    for k in range(n_calls):
        cid = f"c{k}"
        rows += [(CallRow(cid, start=at(k), caller=f"1380013{k:04d}", board="b", channel=k,
                          server_id="s", run=1), True),
                 (CallRow(cid, ivr_path=["main"], server_id="s", run=1), False),
                 (CallRow(cid, ivr_path=["main", "account"], queue="sales", server_id="s", run=1), False),
                 (CallRow(cid, answer=at(k + 2), end=at(k + 30), disposition="caller hung up",
                          server_id="s", run=1), False)]
    return rows


def test_a_pass_of_call_rows_is_one_transaction_with_the_rows_each_write_would_give():
    one, each = CallDb(":memory:"), CallDb(":memory:")
    rows = _writes(5)
    rows = rows[::4] + [r for i, r in enumerate(rows) if i % 4]   # every call's first row, then the rest
    rows += [(CallRow("c1", agent="1001", server_id="s", run=1), False),
             (CallRow("c1", end=at(40), server_id="s", run=1), False)]
    commits: list[str] = []
    one._conn.set_trace_callback(lambda sql: commits.append(sql) if sql == "COMMIT" else None)
    assert one.upsert_calls(rows) == [None] * len(rows)
    assert len(commits) == 1
    for row, new in rows:
        each.upsert_call(row, new=new)
    assert one.query("SELECT * FROM calls ORDER BY call_id") and \
        [tuple(r) for r in one.query("SELECT * FROM calls ORDER BY call_id")] == \
        [tuple(r) for r in each.query("SELECT * FROM calls ORDER BY call_id")]
    c1 = one.call("c1")
    assert c1["agent"] == "1001" and c1["duration"] == 37.0 and c1["ivr_path"] == ["main", "account"]


def test_a_refused_row_in_a_pass_is_named_and_the_others_are_written():
    db = CallDb(":memory:")
    db.upsert_call(CallRow("old", start=at(0), server_id="other", run=7), new=True)
    rows = _writes(2)
    rows[4:4] = [(CallRow("old", start=at(1), server_id="s", run=1), True),
                 (CallRow("old", end=at(2), server_id="s", run=1), False)]
    got = db.upsert_calls(rows)
    refused = [i for i, exc in enumerate(got) if exc is not None]
    assert refused == [4, 5] and "server other run 7" in str(got[4])
    assert db.call("old")["end"] is None and db.call("c0")["answer"] and db.call("c1")["answer"]


def test_a_database_error_in_a_pass_fails_only_its_own_row(call_row_write_fails):
    db = CallDb(":memory:")
    call_row_write_fails("c1")
    got = db.upsert_calls(_writes(2))
    assert got[:4] == [None] * 4 and all(isinstance(e, sqlite3.OperationalError) for e in got[4:])
    assert db.call("c0")["disposition"] == "caller hung up" and db.call("c1") is None


def test_from_record_maps_server_call_records():
    class Rec:   # the fields of voiceserver.core.server.CallRecord
        call_id, board, chan, direction, caller, called = "c9", "b", 2, "inbound", "1", "2"
        start, answer, end, reason = at(0), at(1), at(3), "ivr: done"
        ivr_path, digits, prompts_played, agent = ["main"], "12#", 3, None
    row = CallRow.from_record(Rec())
    assert (row.channel, row.disposition, row.digits_count, row.ivr_path) == (2, "ivr: done", 3, ["main"])


def test_recording_rows():
    db = CallDb(":memory:")
    rid = db.begin_recording(CallRow("c1", start=at(0)), path="/r/a.wav", fmt="alaw", layout="mono",
                             started=at(1))
    (r,) = db.recordings(status="recording")
    assert (r.id, r.call_id, r.format, r.layout, r.started) == (rid, "c1", "alaw", "mono", at(1))
    db.end_recording(rid, status="discarded", duration=0.0, stop_reason="call end",
                     discard_reason="min duration not met")
    (r,) = db.recordings("c1")
    assert (r.status, r.discard_reason, r.recovered) == ("discarded", "min duration not met", False)
    with pytest.raises(ValueError, match="status must be"):
        db.end_recording(rid, status="gone", duration=0, stop_reason=None)


def test_mailbox_permissions_and_voicemail():
    db = CallDb(":memory:")
    db.add_mailbox("200", owner_agent="alice", supervisors=["sup1", "sup2"])
    db.add_mailbox("300", owner_agent="bob")
    assert db.can_access("alice", "200") and db.can_access("sup2", "200")
    assert not db.can_access("bob", "200") and not db.can_access("alice", "300")
    assert not db.can_access("alice", "nope")
    db.add_mailbox("200", owner_agent="carol", supervisors=["sup1"])   # reassigned
    assert not db.can_access("alice", "200") and not db.can_access("sup2", "200")
    assert db.can_access("carol", "200")
    db.upsert_call(CallRow("c1", start=at(0)))
    m1 = db.add_voicemail("200", path="/vm/1.wav", created=at(10), duration=7.5, call_id="c1", caller="555")
    db.add_voicemail("200", path="/vm/2.wav", created=at(20), duration=3.0)
    assert [m["path"] for m in db.voicemail("200", user="sup1")] == ["/vm/1.wav", "/vm/2.wav"]
    db.mark_heard(m1, user="carol")
    assert [m["path"] for m in db.voicemail("200", user="carol", unheard_only=True)] == ["/vm/2.wav"]
    with pytest.raises(PermissionError, match="'bob' may not open mailbox '200'"):
        db.voicemail("200", user="bob")
    with pytest.raises(PermissionError):
        db.mark_heard(m1, user="bob")
    with pytest.raises(CallDbError, match="no mailbox 'x'"):
        db.add_voicemail("x", path="/vm/3.wav", created=at(0), duration=1.0)


def test_times_are_stored_as_fixed_width_utc():
    assert calldb.iso(dt.datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02T03:04:05.000000Z"
    cst = dt.timezone(dt.timedelta(hours=8))
    assert calldb.iso(dt.datetime(2026, 1, 2, 11, 4, 5, tzinfo=cst)) == "2026-01-02T03:04:05.000000Z"
    assert calldb.parse_time("2026-01-02") == dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
    with pytest.raises(ValueError, match="not an ISO-8601"):
        calldb.parse_time("tuesday")


# -- schema 4: server runs, rows that are never overwritten, rows written as the call goes --------
def _schema3(path) -> None:
    """A database as the server before schema 4 left it: one call, one recording, at version 3."""
    import unittest.mock
    with unittest.mock.patch.object(calldb, "MIGRATIONS", calldb.MIGRATIONS[:3]):
        with CallDb(path) as db:
            assert db.version == 3
    con = sqlite3.connect(path)
    con.execute("INSERT INTO calls (call_id, start, \"end\", duration, board, channel, caller, "
                "disposition) VALUES ('c000001', '2026-11-23T09:30:00.000000Z', "
                "'2026-11-23T09:30:10.000000Z', 9.0, 'b', 1, '100', 'caller hung up')")
    con.execute("INSERT INTO recordings (call_id, path, format, layout, started, duration, status) "
                "VALUES ('c000001', '/r/c000001.wav', 'pcm16', 'stereo', '2026-11-23T09:30:01.000000Z', "
                "9.0, 'kept')")
    con.commit()
    con.close()


def test_a_version_3_database_keeps_its_rows_and_gains_server_runs(tmp_path):
    path = tmp_path / "calls.db"
    _schema3(path)
    with CallDb(path) as db:
        assert db.version == calldb.SCHEMA_VERSION == 6
        old = db.call("c000001")
        assert (old["caller"], old["disposition"], old["duration"]) == ("100", "caller hung up", 9.0)
        assert (old["server_id"], old["run"], old["last_seen"]) == (None, None, None)
        assert [r.call_id for r in db.recordings()] == ["c000001"]
        assert db.start_run("pbx1", at(0)) == 1
        # a new call under an old id is an error; the old row stays as it was
        with pytest.raises(calldb.CallIdInUse, match="call id c000001 is already the call of a server "
                                                      "before schema 4.*left as it is"):
            db.upsert_call(CallRow("c000001", start=at(50), caller="200", server_id="pbx1", run=1),
                           new=True)
        with pytest.raises(calldb.CallIdInUse):      # and so is completing it as another run's call
            db.upsert_call(CallRow("c000001", end=at(60), server_id="pbx1", run=1))
        assert db.call("c000001") == old


def test_runs_count_up_per_server_and_never_below_a_stored_call(tmp_path):
    path = tmp_path / "calls.db"
    with CallDb(path) as db:
        assert [db.start_run("east", at(i)) for i in range(3)] == [1, 2, 3]
        assert db.start_run("west", at(5)) == 1
        db.upsert_call(CallRow("east-7-000001", start=at(0), server_id="east", run=7), new=True)
        assert db.start_run("east", at(6)) == 8       # a call of run 7 is stored: never 7 again
        db.query("SELECT 1")
    con = sqlite3.connect(path)                         # the servers table went back (a backup)
    con.execute("DELETE FROM servers")
    con.commit()
    con.close()
    with CallDb(path) as db:
        assert db.start_run("east", at(9)) == 8
        assert db.query("SELECT runs, last_start FROM servers WHERE server_id = 'east'")[0][:] == \
            (8, "2026-11-23T09:30:09.000000Z")


def test_a_call_row_is_created_once_and_completed_only_by_its_own_run():
    db = CallDb(":memory:")
    mine = dict(server_id="east", run=2)
    db.upsert_call(CallRow("east-2-000001", start=at(0), board="b", channel=3, **mine), new=True)
    with pytest.raises(calldb.CallIdInUse, match="already the call of server east run 2"):
        db.upsert_call(CallRow("east-2-000001", start=at(5), **mine), new=True)
    with pytest.raises(calldb.CallIdInUse):
        db.upsert_call(CallRow("east-2-000001", end=at(9), server_id="west", run=2))
    with pytest.raises(calldb.CallIdInUse):
        db.upsert_call(CallRow("east-2-000001", end=at(9), server_id="east", run=1))
    with pytest.raises(calldb.CallIdInUse):     # a recording cannot attach itself to it either
        db.begin_recording(CallRow("east-2-000001", server_id="west", run=1), path="/r/x.wav",
                           fmt="pcm16", layout="mono", started=at(1))
    assert db.recordings() == []
    db.upsert_call(CallRow("east-2-000001", answer=at(2), agent="chen", ivr_path=["menu:main"], **mine))
    c = db.call("east-2-000001")
    assert (c["start"], c["answer"], c["agent"], c["ivr_path"], c["end"]) == \
        ("2026-11-23T09:30:00.000000Z", "2026-11-23T09:30:02.000000Z", "chen", ["menu:main"], None)


def test_last_seen_and_finishing_the_open_calls_of_one_run_and_board():
    db = CallDb(":memory:")
    for cid, sid, run, board in (("e-1-1", "east", 1, "b1"), ("e-1-2", "east", 1, "b2"),
                                 ("e-2-1", "east", 2, "b1"), ("w-1-1", "west", 1, "b1")):
        db.upsert_call(CallRow(cid, start=at(0), board=board, server_id=sid, run=run), new=True)
    db.upsert_call(CallRow("e-1-3", start=at(0), end=at(3), board="b1", server_id="east", run=1), new=True)
    db.mark_seen("east", 1, "b1", at(20))
    seen = {r["call_id"]: r["last_seen"] for r in db.query("SELECT call_id, last_seen FROM calls")}
    assert seen == {"e-1-1": "2026-11-23T09:30:20.000000Z", "e-1-2": None, "e-2-1": None,
                    "w-1-1": None, "e-1-3": None}           # ended calls are not touched
    assert db.finish_open_calls("east", 1, "b1", at(30), "server stopped") == ["e-1-1"]
    c = db.call("e-1-1")
    assert (c["end"], c["disposition"], c["duration"]) == ("2026-11-23T09:30:30.000000Z", "server stopped", 30.0)
    assert {c["call_id"] for c in db.open_calls("east")} == {"e-1-2", "e-2-1"}
    assert {c["call_id"] for c in db.open_calls(None)} == {"e-1-2", "e-2-1", "w-1-1"}
    plan = db.query('EXPLAIN QUERY PLAN UPDATE calls SET last_seen = 1 WHERE server_id = ? AND run = ? '
                    'AND board = ? AND "end" IS NULL', ("east", 1, "b1"))
    assert "calls_open" in " ".join(str(r[3]) for r in plan)   # an index, not a scan of all calls


def test_a_crashed_ringing_row_is_dropped_for_its_continuation_and_its_discarded_recording_moves(tmp_path):
    """Found by the soak: the crash came as the recording began (a discarded recording row, no
    file, the answer not yet written). The restarted server's call continues it: the crashed
    row goes, the discarded recording row follows the call; a kept recording keeps the row."""
    with CallDb(tmp_path / "calls.db") as db:
        for cid in ("old", "new", "kept"):
            db.upsert_call(CallRow(cid, start=at(0), caller="100"))
        db.upsert_call(CallRow("old", end=at(2), disposition=calldb.CRASHED))
        db.upsert_call(CallRow("kept", end=at(2), disposition=calldb.CRASHED))
        with db._lock:
            for cid, status, path in (("old", "discarded", "/r/a.wav"), ("kept", "kept", "/r/b.wav")):
                db._conn.execute("INSERT INTO recordings (call_id, path, format, layout, started, status) "
                                 "VALUES (?, ?, 'alaw', 'mono', ?, ?)", (cid, path, calldb.iso(at(1)), status))
            db._conn.commit()
        assert db.drop_ringing_crashed("old", "new") is True
        assert db.call("old") is None and [r.call_id for r in db.recordings()] == ["new", "kept"]
        assert db.drop_ringing_crashed("kept", "new") is False and db.call("kept") is not None
