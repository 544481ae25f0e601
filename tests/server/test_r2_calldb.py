"""The call database keeps what an E1 R2 trunk signalled: DNIS, ANI, category (schema 6)."""
from __future__ import annotations

import datetime as dt
import sqlite3
import unittest.mock

from voiceserver.core.runtime import CallRecord
from voiceserver.recording import calldb
from voiceserver.recording.calldb import CallDb, CallRow

T0 = dt.datetime(2026, 12, 3, 9, 30, tzinfo=dt.UTC)


def test_a_version_5_database_gains_the_r2_columns_and_keeps_its_rows(tmp_path):
    path = tmp_path / "calls.db"
    with unittest.mock.patch.object(calldb, "MIGRATIONS", calldb.MIGRATIONS[:5]):
        with CallDb(path) as db:
            assert db.version == 5
    con = sqlite3.connect(path)          # a row written by the program of schema 5
    con.execute("INSERT INTO calls (call_id, start, caller, disposition) VALUES "
                "('old1', '2026-12-03T09:30:00.000000Z', '100', 'caller hung up')")
    con.commit()
    con.close()
    with CallDb(path) as db:
        assert db.version == calldb.SCHEMA_VERSION == 6
        old = db.call("old1")
        assert (old["caller"], old["disposition"]) == ("100", "caller hung up")
        assert (old["dnis"], old["ani"], old["category"]) == (None, None, None)


def test_a_record_with_dnis_ani_and_category_is_stored_and_kept_on_update(tmp_path):
    rec = CallRecord("e1call", "e1", 1, "inbound", "01062345678", "95566", T0, T0, T0 + dt.timedelta(seconds=9),
                     "caller cleared forward", dnis="95566", ani="01062345678", category="national_subscriber")
    with CallDb(tmp_path / "calls.db") as db:
        db.upsert_call(CallRow.from_record(rec))
        db.upsert_call(CallRow("e1call", disposition="caller cleared forward"))   # a later update
        row = db.call("e1call")
    assert (row["dnis"], row["ani"], row["category"]) == ("95566", "01062345678", "national_subscriber")
