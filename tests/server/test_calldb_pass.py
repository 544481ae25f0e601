"""A writer pass of call rows (CallDb.upsert_calls) against a reference model.

The model re-states the documented upsert rules with a dict per call id, no
code shared with voiceserver.recording.calldb: a `new` row on a taken id is
refused, a row of another server run is refused, any other row fills in the
fields it knows (None = keep), and the duration runs from the answer (or the
start) to the end; rows of one call and run that follow each other are merged
(a `new` row never into the one before it). Hypothesis interleaves the rows of
several calls and runs, over a table that already holds other runs' rows, the
way a writer pass sees them; the pass must give the model's refusals and table,
and, where no id is taken twice, the same as writing the rows one by one.
"""
from __future__ import annotations

import datetime as dt
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from voiceserver.recording.calldb import CallDb, CallIdInUse, CallRow

T0 = dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.UTC)
IDS = ["c0", "c1", "c2", "c3"]
RUNS = [("s", 1), ("s", 2), (None, None)]          # two runs of this server, and a tool's rows
STORED = {"c2": ("other", 7), "c3": (None, None)}   # already there: another server's, a pre-schema-4 row
FIELDS = {
    "start": st.none() | st.integers(0, 5),
    "answer": st.none() | st.integers(5, 10),
    "end": st.none() | st.integers(10, 60),
    "caller": st.none() | st.sampled_from(["", "13800138000", "+86 10 1234 5678", "anonymous"]),
    "agent": st.none() | st.sampled_from(["1001", "1002"]),
    "ivr_path": st.none() | st.lists(st.sampled_from(["main", "account", "queue"]), max_size=3),
    "disposition": st.none() | st.sampled_from(["caller hung up", "server stopped"]),
    "last_seen": st.none() | st.integers(0, 60),
}
TIMES = ("start", "answer", "end", "last_seen")


def utc(seconds: int | None) -> dt.datetime | None:
    return None if seconds is None else T0 + dt.timedelta(seconds=seconds, microseconds=seconds * 7)


@st.composite
def passes(draw: st.DrawFn) -> list[tuple[str, dict[str, Any], tuple[str | None, int | None], bool]]:
    """(call id, fields, (server, run), new) rows; a server's row may be `new` (its first write
    of a call, or a call id taken twice)."""
    rows = []
    for _ in range(draw(st.integers(1, 14))):
        cid = draw(st.sampled_from(IDS))
        run = draw(st.sampled_from(RUNS))
        new = run[0] is not None and draw(st.booleans())
        fields = {k: draw(s) for k, s in FIELDS.items()}
        rows.append((cid, fields, run, new))
    return rows


def call_row(cid: str, fields: dict[str, Any], run: tuple[str | None, int | None]) -> CallRow:
    return CallRow(cid, server_id=run[0], run=run[1],
                   **{k: utc(v) if k in TIMES else v for k, v in fields.items()})


def seeded() -> CallDb:
    db = CallDb(":memory:")
    for cid, (server, run) in STORED.items():
        db.upsert_call(CallRow(cid, start=utc(1), caller="95588", server_id=server, run=run), new=True)
    return db


def model(rows: list) -> tuple[list[bool], dict[str, dict[str, Any]]]:
    """The refusals, row by row, and each call's stored fields.

    A pass merges a row into the row before it when both are of the same call and
    run and it is not `new`: it then shares that row's fate (refused with it)."""
    table: dict[str, dict[str, Any]] = {
        cid: {"start": 1, "caller": "95588", "server_id": server, "run": run}
        for cid, (server, run) in STORED.items()}
    refused: list[bool] = []
    for i, (cid, fields, (server, run), new) in enumerate(rows):
        old = table.get(cid)
        merged = i > 0 and not new and rows[i - 1][0] == cid and rows[i - 1][2] == (server, run)
        no = (refused[-1] if merged else
              old is not None and (new or server is not None
                                   and (old.get("server_id"), old.get("run")) != (server, run)))
        refused.append(no)
        if no:
            continue
        stored = table.setdefault(cid, {})
        stored.update({k: v for k, v in fields.items() if v is not None})
        if server is not None:
            stored["server_id"], stored["run"] = server, run
    return refused, table


def columns(db: CallDb) -> dict[str, dict[str, Any]]:
    keep = ("start", "answer", "end", "caller", "caller_norm", "agent", "ivr_path", "disposition",
            "last_seen", "server_id", "run", "duration")
    return {r["call_id"]: {k: r[k] for k in keep} for r in db.query("SELECT * FROM calls")}


def expected_columns(table: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out = {}
    for cid, f in table.items():
        row = {k: f.get(k) for k in ("caller", "agent", "disposition", "server_id", "run")}
        for k in TIMES:
            t = utc(f.get(k))
            row[k] = None if t is None else t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        row["ivr_path"] = None if f.get("ivr_path") is None else json.dumps(f["ivr_path"])
        caller = f.get("caller")
        row["caller_norm"] = {"+86 10 1234 5678": "1012345678"}.get(caller, caller)
        since = f.get("answer") if f.get("answer") is not None else f.get("start")
        row["duration"] = (None if f.get("end") is None or since is None else
                           round((utc(f["end"]) - utc(since)).total_seconds(), 6))
        out[cid] = row
    return out


@settings(max_examples=150, deadline=None)
@given(passes())
def test_a_pass_of_interleaved_rows_gives_the_models_refusals_and_table(rows):
    refused, table = model(rows)
    one = seeded()
    got = one.upsert_calls([(call_row(cid, f, run), new) for cid, f, run, new in rows])
    assert [isinstance(e, CallIdInUse) for e in got] == refused
    assert all(e is None or isinstance(e, CallIdInUse) for e in got)
    assert columns(one) == expected_columns(table)

    if any(new and any(r[0] == cid for r in rows[:i]) for i, (cid, _, _, new) in enumerate(rows)):
        return      # a taken id's `new` row: the rows merged into it are refused with it
    each = seeded()
    for cid, f, run, new in rows:
        try:
            each.upsert_call(call_row(cid, f, run), new=new)
        except CallIdInUse:
            pass
    assert [tuple(r) for r in one.query("SELECT * FROM calls ORDER BY call_id")] == \
        [tuple(r) for r in each.query("SELECT * FROM calls ORDER BY call_id")]


def test_a_taken_id_in_a_pass_names_its_owner_and_leaves_the_row_and_the_pass_goes_on():
    """A `new` row is inserted without reading first: the refused INSERT must change nothing,
    name the row's owner, and leave the transaction to the other rows."""
    db = seeded()
    before = [tuple(r) for r in db.query("SELECT * FROM calls WHERE call_id IN ('c2', 'c3') ORDER BY call_id")]
    got = db.upsert_calls([
        (CallRow("c0", start=utc(0), server_id="s", run=1), True),
        (CallRow("c2", start=utc(3), caller="1", server_id="s", run=1), True),
        (CallRow("c3", start=utc(3), caller="2", server_id="s", run=1), True),
        (CallRow("c0", end=utc(30), server_id="s", run=1), False)])
    assert got[0] is None and got[3] is None
    assert "server other run 7 (started 2026-11-23T09:30:01.000007Z)" in str(got[1])
    assert "a server before schema 4" in str(got[2])
    assert [tuple(r) for r in db.query("SELECT * FROM calls WHERE call_id IN ('c2', 'c3') "
                                       "ORDER BY call_id")] == before
    assert db.call("c0")["duration"] == 30.0 + 30 * 7e-6


def test_an_update_leaves_out_the_indexed_columns_it_would_not_change():
    """A call's later rows send its server, run, board, start and numbers again: the UPDATE
    leaves those indexed columns out (SQLite then rewrites none of their index entries), and
    writes an indexed column that does change."""
    db = CallDb(":memory:")
    db.upsert_call(CallRow("c0", start=utc(0), board="b", caller="13800138000", server_id="s", run=1),
                   new=True)
    updates: list[str] = []
    db._conn.set_trace_callback(lambda sql: updates.append(sql) if sql.startswith("UPDATE") else None)
    db.upsert_calls([(CallRow("c0", start=utc(0), answer=utc(2), board="b", caller="13800138000",
                              agent="1001", server_id="s", run=1), False)])
    db.upsert_call(CallRow("c0", end=utc(30), caller="13900000000", server_id="s", run=1))
    first, second = updates
    for column in ("start", "board", "caller_norm", "server_id", "run"):
        assert f'"{column}" = ' not in first
    assert '"answer" = ' in first and '"agent" = ' in first and '"caller" = ' in first
    assert '"end" = ' in second and '"caller_norm" = ' in second
    c0 = db.call("c0")
    assert (c0["start"], c0["board"], c0["caller_norm"], c0["server_id"], c0["run"], c0["agent"]) == \
        (iso_of(0), "b", "13900000000", "s", 1, "1001")
    assert c0["duration"] == round((utc(30) - utc(2)).total_seconds(), 6)


def iso_of(seconds: int) -> str:
    t = utc(seconds)
    assert t is not None
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
