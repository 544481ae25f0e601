"""`voiceboard calls` in a real process over a real SQLite call database.

The database is filled through CallDb (as the recorder's writer fills it):
eight calls over four days, on two E1 boards and an FXS board, inbound,
outbound and internal, with and without recordings (kept, discarded, still
recording, recovered, a call with two files), numbers written in the three
forms of one Beijing number. Each test runs the CLI as a subprocess and
checks which calls come back (by id, hand-written: not recomputed by the
test) and what the table, JSON, CSV and XLSX say.
"""
from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from voiceserver.cli.calls import COLUMNS
from voiceserver.recording.calldb import CallDb, CallRow

UTC = dt.UTC
HEADINGS = [h for _, h in COLUMNS]
ALL = ["c1", "c2", "c3", "c4", "c5", "c8", "c6", "c7"]       # in start order
BEIJING = ["c1", "c3", "c4"]     # "+86 10 1234 5678", "01012345678", "1012345678": one number
# the recording decision on the call (calldb schema 2)
DECISION = "recording_note" in {f.name for f in dataclasses.fields(CallRow)}
NOTE_C5 = "not recorded: internal calls are not sampled (sampling.internal = 0)"


def t(day: int, hh: int, mm: int, ss: float = 0.0) -> dt.datetime:
    return dt.datetime(2026, 11, day, hh, mm, tzinfo=UTC) + dt.timedelta(seconds=ss)


def _call(db: CallDb, call_id: str, start: dt.datetime, answer_after: float | None, length: float | None,
          **kw) -> CallRow:
    if not DECISION:
        kw.pop("recording_rule", None)
        kw.pop("recording_note", None)
    answer = None if answer_after is None else start + dt.timedelta(seconds=answer_after)
    end = None if length is None else (answer or start) + dt.timedelta(seconds=length)
    row = CallRow(call_id, start=start, answer=answer, end=end, **kw)
    db.upsert_call(row)
    return row


def _recording(db: CallDb, row: CallRow, name: str, *, status: str, duration: float = 0.0,
               fmt: str = "pcm16", layout: str = "stereo", **kw) -> None:
    rid = db.begin_recording(row, path=f"/rec/2026/11/{name}.wav", fmt=fmt, layout=layout,
                             started=row.answer or row.start)
    if status != "recording":
        db.end_recording(rid, status=status, duration=duration, **kw)


@pytest.fixture(scope="module")
def db_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("calls") / "calls.db"
    with CallDb(path) as db:
        r = _call(db, "c1", t(20, 9, 0), 5, 120, board="e1a", channel=3, direction="inbound",
                  caller="+86 10 1234 5678", called="95500", agent="agent-7", queue="sales",
                  ivr_path=["main", "sales"], disposition="caller hung up", digits_count=2,
                  recording_rule="rules.toml:1 default", recording_note="kept: call end")
        _recording(db, r, "c1", status="kept", duration=120.0, stop_reason="call end", nbytes=3_840_000)
        r = _call(db, "c2", t(21, 10, 30), 3, 30, board="e1a", channel=4, direction="inbound",
                  caller="13800138000", called="95500", agent="agent-8", disposition="agent hung up")
        _recording(db, r, "c2", status="discarded", stop_reason="call end",
                   discard_reason="shorter than min_seconds (60 s)")
        r = _call(db, "c3", t(21, 23, 59, 59), 10, 45, board="e1b", channel=3, direction="outbound",
                  caller="95500", called="01012345678", agent="agent-7", disposition="far end hung up")
        _recording(db, r, "c3", status="kept", duration=45.0, fmt="alaw", layout="mono",
                   stop_reason="call end", nbytes=360_000)
        r = _call(db, "c4", t(22, 8, 0), 2, 600, board="e1a", channel=3, direction="inbound",
                  caller="1012345678", called="95501", agent="agent-9", disposition="Caller Hung Up")
        _recording(db, r, "c4", status="kept", duration=600.0, stop_reason="recovered after crash",
                   recovered=True, gaps=[{"start": 10.0, "end": 12.5, "why": "overrun"}], dropped_blocks=125)
        _call(db, "c5", t(22, 12, 0), None, 20, board="fxs", channel=0, direction="internal",
              caller="8001", called="8002", disposition="no answer",
              recording_rule="rules.toml:12 sampling.internal", recording_note=NOTE_C5)
        r = _call(db, "c8", t(22, 15, 0), 4, 300, board="e1b", channel=7, direction="outbound",
                  caller="95500", called="13912345678", agent="agent-9", disposition="agent hung up")
        _recording(db, r, "c8-a", status="kept", duration=300.0, stop_reason="call end", nbytes=9_600_000)
        _recording(db, r, "c8-b", status="failed", stop_reason="disk full")
        r = _call(db, "c6", t(23, 9, 0), 1, None, board="e1b", channel=5, direction="inbound",
                  caller=None, called="95500", agent="agent-8")        # in progress, anonymous
        _recording(db, r, "c6", status="recording")
        _call(db, "c7", t(23, 9, 10), None, 0.5, board="e1a", channel=6, direction="inbound",
              caller="02087654321", called="95500", disposition="blacklisted: rejected")
    return path


def run_cli(*args: str, db: Path | None = None, env: dict[str, str] | None = None,
            entry: list[str] | None = None) -> subprocess.CompletedProcess:
    cmd = (entry or [sys.executable, "-m", "voiceserver.cli.calls"]) + ([f"--db={db}"] if db else []) + list(args)
    full_env = {k: v for k, v in os.environ.items() if k != "VOICEBOARD_CALLS_DB"}
    full_env.update(env or {})
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=full_env,
                          cwd=Path(__file__).resolve().parents[2])


def ids(db: Path, *args: str) -> list[str]:
    p = run_cli("--json", *args, db=db)
    assert p.returncode == 0, p.stderr
    assert p.stderr == ""
    return [r["call_id"] for r in json.loads(p.stdout)]


# ---------------------------------------------------------------- filters
@pytest.mark.parametrize("args, expected", [
    ((), ALL),
    # time range: --from inclusive, --to exclusive; a date alone is its midnight; no zone = UTC
    (("--from", "2026-11-21"), ["c2", "c3", "c4", "c5", "c8", "c6", "c7"]),
    (("--to", "2026-11-22"), ["c1", "c2", "c3"]),
    (("--from", "2026-11-22T08:00:00"), ["c4", "c5", "c8", "c6", "c7"]),
    (("--to", "2026-11-22T08:00"), ["c1", "c2", "c3"]),
    (("--from", "2026-11-22T16:00+08:00", "--to", "2026-11-22T20:00+08:00"), ["c4"]),
    (("--from", "2026-11-21T23:59:59Z", "--to", "2026-11-22 00:00"), ["c3"]),
    # channel: N on any board, or BOARD:N
    (("--channel", "3"), ["c1", "c3", "c4"]),
    (("--channel", "e1a:3"), ["c1", "c4"]),
    (("--channel", "fxs:0"), ["c5"]),
    (("--agent", "agent-7"), ["c1", "c3"]),
    (("--agent", "agent"), []),                       # exact, not a substring
    # number: caller or called, normalised
    (("--number", "010 1234 5678"), BEIJING),
    (("--number", "+86 10 1234 5678"), BEIJING),
    (("--number", "1012345678"), BEIJING),
    (("--number", "(010) 1234-5678"), BEIJING),
    (("--number", "95500"), ["c1", "c2", "c3", "c8", "c6", "c7"]),
    (("--number", "13912345678"), ["c8"]),
    (("--direction", "outbound"), ["c3", "c8"]),
    (("--direction", "internal"), ["c5"]),
    # duration: answer (or start) to end; a call still going has none
    (("--min-duration", "45"), ["c1", "c3", "c4", "c8"]),
    (("--max-duration", "30"), ["c2", "c5", "c7"]),
    (("--min-duration", "30", "--max-duration", "120"), ["c1", "c2", "c3"]),
    (("--min-duration", "0"), ["c1", "c2", "c3", "c4", "c5", "c8", "c7"]),
    # disposition: substring, any case, % and _ are plain characters
    (("--disposition", "hung up"), ["c1", "c2", "c3", "c4", "c8"]),
    (("--disposition", "CALLER"), ["c1", "c4"]),
    (("--disposition", "%"), []),
    (("--disposition", "_"), []),
    (("--disposition", "blacklisted:"), ["c7"]),
    # recorded: has a kept recording (discarded, failed, in progress: no)
    (("--recorded", "yes"), ["c1", "c3", "c4", "c8"]),
    (("--recorded", "no"), ["c2", "c5", "c6", "c7"]),
    # combined: AND
    (("--agent", "agent-7", "--recorded", "yes", "--direction", "inbound"), ["c1"]),
    (("--number", "+86 10 12345678", "--channel", "3", "--from", "2026-11-21"), ["c3", "c4"]),
    (("--channel", "e1b:3", "--recorded", "no"), []),
    (("--from", "2026-11-21", "--to", "2026-11-23", "--direction", "inbound", "--min-duration", "60",
      "--disposition", "hung up", "--recorded", "yes"), ["c4"]),
])
def test_filters(db_path, args, expected):
    assert ids(db_path, *args) == expected


def test_database_from_the_environment(db_path):
    p = run_cli("--json", "--agent", "agent-9", env={"VOICEBOARD_CALLS_DB": str(db_path)})
    assert p.returncode == 0, p.stderr
    assert [r["call_id"] for r in json.loads(p.stdout)] == ["c4", "c8"]


def test_the_voiceboard_entry_point(db_path):
    exe = Path(sys.executable).parent / "voiceboard"
    if not exe.exists():
        pytest.skip("the voiceboard console script is not installed next to this Python")
    p = run_cli("--channel", "e1a:3", db=db_path, entry=[str(exe), "calls"])
    assert p.returncode == 0, p.stderr
    assert "2 calls" in p.stdout and "c1" in p.stdout and "c4" in p.stdout


# ---------------------------------------------------------------- output
def test_table(db_path):
    p = run_cli(db=db_path)
    assert p.returncode == 0 and p.stderr == ""
    lines = p.stdout.splitlines()
    assert lines[0].split() == ["start", "(UTC)", "call", "chan", "dir", "caller", "called", "agent", "secs",
                                "disposition", "recording"]
    assert set(lines[1]) == {"-", " "}
    assert lines[-1] == "8 calls"
    body = {line.split()[2]: line for line in lines[2:-1]}
    assert list(body) == ALL
    assert body["c1"].split()[:5] == ["2026-11-20", "09:00:00", "c1", "e1a:3", "inbound"]
    assert "+86 10 1234 5678" in body["c1"] and "120.0" in body["c1"] and body["c1"].endswith("120.0s stereo")
    assert body["c2"].endswith("discarded: shorter than min_seconds (60 s)")
    assert body["c3"].endswith("45.0s mono")
    assert body["c4"].endswith("600.0s stereo recovered") and "Caller Hung Up" in body["c4"]
    assert body["c8"].endswith("300.0s stereo")          # the kept file, not the later failed one
    assert body["c6"].endswith("recording")              # in progress: no duration, no disposition
    if DECISION:     # never recorded: the rules' sentence
        assert body["c5"].endswith(NOTE_C5) and "no answer" in body["c5"]
    assert body["c7"].endswith("blacklisted: rejected")  # nothing to say: no recording column
    # columns line up: every row's "chan" field starts where the heading does
    col = lines[0].index("chan")
    assert all(line[col:].split()[0] == cell for line, cell in
               zip(lines[2:-1], ["e1a:3", "e1a:4", "e1b:3", "e1a:3", "fxs:0", "e1b:7", "e1b:5", "e1a:6"],
                   strict=True))


def test_table_with_no_match_says_zero(db_path):
    p = run_cli("--agent", "nobody", db=db_path)
    assert p.returncode == 0
    assert p.stdout.splitlines()[-1] == "0 calls"


def test_json_has_every_column_with_its_type(db_path):
    p = run_cli("--json", db=db_path)
    rows = {r["call_id"]: r for r in json.loads(p.stdout)}
    assert list(rows) == ALL
    assert all(list(r) == HEADINGS for r in rows.values())
    c1 = rows["c1"]
    assert c1["start"] == "2026-11-20T09:00:00.000000Z" and c1["answer"] == "2026-11-20T09:00:05.000000Z"
    assert c1["end"] == "2026-11-20T09:02:05.000000Z"
    assert c1["duration_s"] == 120.0 and c1["channel"] == 3 and c1["board"] == "e1a"
    assert c1["caller"] == "+86 10 1234 5678" and c1["queue"] == "sales" and c1["ivr_path"] == ["main", "sales"]
    assert c1["digits"] == 2
    assert c1["recording"] == "kept" and c1["recording_path"] == "/rec/2026/11/c1.wav"
    assert (c1["format"], c1["layout"], c1["recording_s"]) == ("pcm16", "stereo", 120.0)
    assert c1["recovered"] is False and c1["gaps"] == []
    c4 = rows["c4"]
    assert c4["recovered"] is True and c4["gaps"] == [{"start": 10.0, "end": 12.5, "why": "overrun"}]
    assert c4["recording_reason"] == "recovered after crash"
    assert rows["c2"]["recording_reason"] == "shorter than min_seconds (60 s)"
    c5 = rows["c5"]
    assert c5["answer"] is None and c5["duration_s"] == 20.0 and c5["recording"] is None and c5["agent"] is None
    c6 = rows["c6"]
    assert c6["end"] is None and c6["duration_s"] is None and c6["caller"] is None
    assert c6["recording"] == "recording"
    assert rows["c8"]["recording_path"] == "/rec/2026/11/c8-a.wav"


def test_a_discard_reason_is_shown_once_and_the_server_is_exported(tmp_path):
    """Rows written before the fix carry "discarded: why" as the reason: the table says
    "discarded:" once. Two servers' calls in one database: the export says whose."""
    db = tmp_path / "calls.db"
    with CallDb(db) as d:
        for cid, server, why in (("east-1-000001", "east", "discarded: 2 s is shorter than min_seconds = 3"),
                                 ("west-1-000001", "west", "2 s is shorter than min_seconds = 3")):
            row = _call(d, cid, t(23, 9, 0), 1, 2, board="b", channel=1, direction="inbound",
                        server_id=server, run=1)
            _recording(d, row, cid, status="discarded", stop_reason="call end", discard_reason=why)
    p = run_cli(db=db)
    assert p.returncode == 0, p.stderr
    lines = [x for x in p.stdout.splitlines() if "-1-000001" in x]
    assert len(lines) == 2 and all(x.endswith("  discarded: 2 s is shorter than min_seconds = 3")
                                   for x in lines), p.stdout
    rows = json.loads(run_cli("--json", db=db).stdout)
    assert [(r["call_id"], r["server"]) for r in rows] == [("east-1-000001", "east"),
                                                           ("west-1-000001", "west")]


@pytest.mark.skipif(not DECISION, reason="call database without the recording decision (schema 1)")
def test_the_recording_decision_is_exported(db_path, tmp_path):
    p = run_cli("--json", "--csv", str(tmp_path / "d.csv"), db=db_path)
    rows = {r["call_id"]: r for r in json.loads(p.stdout)}
    assert rows["c1"]["recording_rule"] == "rules.toml:1 default" and rows["c1"]["recording_note"] == "kept: call end"
    assert rows["c5"]["recording_rule"] == "rules.toml:12 sampling.internal"
    assert rows["c5"]["recording_note"] == NOTE_C5 and rows["c5"]["recording"] is None
    assert rows["c7"]["recording_rule"] is None and rows["c7"]["recording_note"] is None
    with open(tmp_path / "d.csv", newline="", encoding="utf-8") as f:
        by_id = {r["call_id"]: r for r in csv.DictReader(f)}
    assert by_id["c5"]["recording_note"] == NOTE_C5 and by_id["c7"]["recording_rule"] == ""


def _read_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def test_csv_file(db_path, tmp_path):
    out = tmp_path / "calls.csv"
    p = run_cli("--csv", str(out), "--direction", "inbound", db=db_path)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[-1] == "5 calls"            # the table still goes to stdout
    with open(out, newline="", encoding="utf-8") as f:
        header = next(csv.reader(f))
        f.seek(0)
        rows = list(csv.DictReader(f))
    assert header == HEADINGS
    assert [r["call_id"] for r in rows] == ["c1", "c2", "c4", "c6", "c7"]
    c1 = rows[0]
    assert c1["start"] == "2026-11-20T09:00:00.000000Z" and float(c1["duration_s"]) == 120.0
    assert c1["channel"] == "3" and c1["ivr_path"] == "main > sales" and c1["recording"] == "kept"
    assert c1["gaps"] == "" and c1["recovered"] == "False"
    c4 = rows[2]
    assert json.loads(c4["gaps"]) == [{"start": 10.0, "end": 12.5, "why": "overrun"}]
    assert c4["recovered"] == "True"
    c6 = rows[3]
    assert c6["end"] == "" and c6["duration_s"] == "" and c6["caller"] == "" and c6["recording"] == "recording"


def test_csv_to_stdout(db_path):
    p = run_cli("--csv", "-", "--number", "01012345678", db=db_path)
    assert p.returncode == 0, p.stderr
    rows = _read_csv(p.stdout)
    assert [r["call_id"] for r in rows] == BEIJING
    assert [r["caller"] for r in rows] == ["+86 10 1234 5678", "95500", "1012345678"]
    assert [r["called"] for r in rows] == ["95500", "01012345678", "95501"]


def test_xlsx_file(db_path, tmp_path):
    from openpyxl import load_workbook
    out = tmp_path / "calls.xlsx"
    p = run_cli("--xlsx", str(out), "--from", "2026-11-22", db=db_path)
    assert p.returncode == 0, p.stderr
    ws = load_workbook(out).active
    assert ws.title == "calls"
    values = list(ws.iter_rows(values_only=True))
    assert list(values[0]) == HEADINGS
    rows = {r[0]: dict(zip(HEADINGS, r, strict=True)) for r in values[1:]}
    assert list(rows) == ["c4", "c5", "c8", "c6", "c7"]
    c4 = rows["c4"]
    assert c4["start"] == dt.datetime(2026, 11, 22, 8, 0) and c4["answer"] == dt.datetime(2026, 11, 22, 8, 0, 2)
    assert c4["end"] == dt.datetime(2026, 11, 22, 8, 10, 2)
    assert c4["duration_s"] == 600.0 and c4["channel"] == 3 and c4["caller"] == "1012345678"
    assert c4["recovered"] is True and json.loads(c4["gaps"])[0]["why"] == "overrun"
    assert c4["recording_s"] == 600.0 and c4["format"] == "pcm16"
    c5 = rows["c5"]
    assert c5["answer"] is None and c5["agent"] is None and c5["recording"] is None   # empty cells
    assert rows["c6"]["end"] is None and rows["c6"]["duration_s"] is None
    assert rows["c8"]["called"] == "13912345678" and rows["c8"]["recording_path"].endswith("c8-a.wav")
    assert ws.freeze_panes == "A2"


def test_csv_and_xlsx_hold_the_same_calls_as_json(db_path, tmp_path):
    from openpyxl import load_workbook
    args = ("--recorded", "yes", "--csv", str(tmp_path / "a.csv"), "--xlsx", str(tmp_path / "a.xlsx"))
    p = run_cli("--json", *args, db=db_path)
    assert p.returncode == 0, p.stderr
    from_json = [r["call_id"] for r in json.loads(p.stdout)]
    with open(tmp_path / "a.csv", newline="", encoding="utf-8") as f:
        from_csv = [r["call_id"] for r in csv.DictReader(f)]
    from_xlsx = [r[0] for r in load_workbook(tmp_path / "a.xlsx").active.iter_rows(min_row=2, values_only=True)]
    assert from_json == from_csv == from_xlsx == ["c1", "c3", "c4", "c8"]


# ---------------------------------------------------------------- errors
def _fails(p: subprocess.CompletedProcess, status: int, *words: str) -> None:
    assert p.returncode == status, (p.returncode, p.stdout, p.stderr)
    assert p.stdout == ""
    assert "Traceback" not in p.stderr
    for w in words:
        assert w in p.stderr, (w, p.stderr)


def test_missing_database(tmp_path):
    missing = tmp_path / "nowhere" / "calls.db"
    _fails(run_cli(db=missing), 2, "voiceboard calls:", "no call database at", str(missing))
    assert not missing.exists() and not missing.parent.exists()     # nothing was created


def test_missing_database_default_path_names_the_option(tmp_path):
    p = run_cli(env={"VOICEBOARD_CALLS_DB": str(tmp_path / "x.db")})
    _fails(p, 2, str(tmp_path / "x.db"), "--db")


@pytest.mark.parametrize("content", [b"", b"call_id,start\nc1,2026-11-20\n"])
def test_a_file_that_is_not_a_database_is_refused_and_left_alone(tmp_path, content):
    path = tmp_path / "calls.csv"
    path.write_bytes(content)
    _fails(run_cli(db=path), 2, str(path), "not an SQLite database")
    assert path.read_bytes() == content


@pytest.mark.parametrize("args, words", [
    (("--from", "yesterday"), ["--from", "'yesterday'", "ISO-8601"]),
    (("--to", "2026-13-01"), ["--to", "'2026-13-01'"]),
    (("--from", "2026-11-22", "--to", "22/11/2026"), ["--to", "'22/11/2026'"]),
    (("--channel", "e1a:x"), ["--channel", "'e1a:x'", "BOARD:N"]),
    (("--number", "138-abc"), ["--number", "not a phone number", "'138-abc'"]),
    (("--min-duration", "-5"), ["--min-duration", "negative"]),
])
def test_bad_values_exit_2_naming_the_option(db_path, args, words):
    _fails(run_cli(*args, db=db_path), 2, "voiceboard calls:", *words)


@pytest.mark.parametrize("args, words", [
    (("--colour",), ["unrecognized arguments: --colour"]),
    (("--direction", "sideways"), ["--direction", "invalid choice", "'sideways'"]),
    (("--recorded", "maybe"), ["--recorded", "invalid choice"]),
    (("--max-duration", "long"), ["--max-duration", "invalid float value", "'long'"]),
])
def test_usage_errors_exit_2(db_path, args, words):
    _fails(run_cli(*args, db=db_path), 2, "usage: voiceboard calls", *words)


def test_an_export_that_cannot_be_written_exits_1_naming_the_file(db_path, tmp_path):
    bad = tmp_path / "no-such-dir" / "calls.xlsx"
    _fails(run_cli("--xlsx", str(bad), db=db_path), 1, "voiceboard calls:", str(bad))
    bad = tmp_path / "no-such-dir" / "calls.csv"
    _fails(run_cli("--csv", str(bad), db=db_path), 1, "voiceboard calls:", str(bad))


def test_a_database_newer_than_the_program_exits_1(tmp_path):
    import sqlite3
    path = tmp_path / "calls.db"
    CallDb(path).close()
    con = sqlite3.connect(path)
    con.execute("UPDATE schema_version SET version = 99")
    con.commit()
    con.close()
    _fails(run_cli(db=path), 1, str(path), "schema version 99 is newer")


def test_help_lists_the_options():
    p = run_cli("--help")
    assert p.returncode == 0
    for opt in ("--db", "--from", "--to", "--channel", "--agent", "--number", "--direction",
                "--min-duration", "--max-duration", "--disposition", "--recorded", "--csv", "--xlsx", "--json"):
        assert opt in p.stdout
