"""SQLite call records: schema versions, upserts, recordings, mailboxes and permissions."""
from __future__ import annotations

import datetime as dt
import sqlite3

import pytest

from voiceserver import calldb
from voiceserver.calldb import CallDb, CallDbError, CallRow

T0 = dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.timezone.utc)


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


def test_from_record_maps_server_call_records():
    class Rec:   # the fields of voiceserver.server.CallRecord
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
    assert calldb.parse_time("2026-01-02") == dt.datetime(2026, 1, 2, tzinfo=dt.timezone.utc)
    with pytest.raises(ValueError, match="not an ISO-8601"):
        calldb.parse_time("tuesday")
