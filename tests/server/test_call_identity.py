"""Call ids and call rows across restarts, crashes and servers sharing one database.

Real processes: hwsim in lockstep and `voiceboard serve`, one SQLite file read
here by a connection of its own. hwsim's simulated time stands still while no
server runs (lockstep), so each run's callers arrive in that run: the gaps
between them (100+ simulated seconds) leave the test time to stop the server
between calls.

- SIGTERM, then `kill -9`, then a third start: every call keeps its own row
  and id (SERVER-RUN-SEQ, the run from the database), every recording row
  points at its own call, and the call the crash cut keeps the agent, queue
  and IVR path written as it went, with an end estimated from the last time
  the server saw it.
- Two servers (two configs, two hwsim boards) writing one database: no id is
  handed out twice, no row is written by the other server.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import signal

from voiceserver.core.callids import default_server_id
from voiceserver.recording.calldb import CRASHED, parse_time
from voiceserver.recording.service import SEEN_INTERVAL_S

from servekit import events, hwsim, rows, serve, server_config, stop, wait_for

RECORD_ALL = '[recording]\nlayout = "stereo"\n'
NUMBERS = {0: "13911110000", 1: "13911110001", 2: "13911110002"}   # line -> caller

RESTARTS = f"""
[scenario]
duration = 900.0
seed = 5

[[agent]]
phones = "BOARD:5"
answer_after = 2.0

[[caller]]          # run 1: a short call; the server then stops (SIGTERM)
at = 1.0
line = "BOARD:0"
number = "{NUMBERS[0]}"
hangup_after = 4.0

[[caller]]          # run 2: into queue service, agent chen takes it; the server is killed
at = 120.0
line = "BOARD:1"
number = "{NUMBERS[1]}"
hangup_after = 600.0
script = [{{ after_silence = 0.6, digits = "0" }}]

[[caller]]          # run 3: a short call again
at = 240.0
line = "BOARD:2"
number = "{NUMBERS[2]}"
hangup_after = 4.0
"""


def _by_caller(db) -> dict[str, dict]:
    return {r["caller"]: r for r in rows(db, "SELECT * FROM calls") if r["caller"]}


def _killed_run(db_path, calls: list[tuple[int, dt.datetime, dt.timedelta, str | None]]) -> tuple[int, list[str]]:
    """Write what a `kill -9` left: one open inbound row (no answer) per (channel, start,
    last seen after the start, caller) on board "hotline", as the killed run (started at 01:59
    UTC; hwsim-hotline.toml's clock starts at 02:00) had them. Its run and the call ids."""
    from voiceserver.recording.calldb import CallDb, CallRow
    server = default_server_id()
    db = CallDb(str(db_path))
    run = db.start_run(server, dt.datetime(2026, 11, 23, 1, 59, tzinfo=dt.UTC))
    ids = [f"{server}-{run}-{n:06d}" for n in range(1, len(calls) + 1)]
    for cid, (chan, start, seen, caller) in zip(ids, calls, strict=True):
        db.upsert_call(CallRow(cid, start=start, board="hotline", channel=chan, direction="inbound",
                               caller=caller, server_id=server, run=run, last_seen=start + seen), new=True)
    db.close()
    return run, ids


def _serve_until_ended(cfg, db_path, hw, callers: tuple[str, ...], log) -> None:
    """`voiceboard serve` until the calls of `callers` have ended, then a clean stop (exit 0);
    hwsim is stopped too, whatever happens."""
    proc = None
    try:
        proc = serve(cfg, log)
        wait_for(lambda: all((_by_caller(db_path).get(n) or {}).get("end") for n in callers),
                 f"the ends of {', '.join(callers)}", [hw, proc])
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, log.read_text()[-3000:]
    finally:
        stop([proc, hw])


def test_sigterm_kill_9_and_restart_never_reuse_an_id_or_overwrite_a_row(tmp_path):
    board = f"ids{os.getpid()}"
    cfg = server_config(tmp_path / "server.toml", board, RECORD_ALL)
    db = tmp_path / "calls.db"
    hw = hwsim(tmp_path, board, RESTARTS)
    runs = []
    try:
        # run 1: the first call ends, then a clean stop
        log1 = tmp_path / "serve1.log"
        runs.append(serve(cfg, log1))
        wait_for(lambda: (_by_caller(db).get(NUMBERS[0]) or {}).get("end"), "the first call's end",
                 [hw, runs[-1]])
        runs[-1].send_signal(signal.SIGTERM)
        assert runs[-1].wait(60) == 0, log1.read_text()[-3000:]

        # run 2: killed while an agent has the call; what the row had by then is written
        log2 = tmp_path / "serve2.log"
        runs.append(serve(cfg, log2))

        def agent_seen() -> bool:
            r = _by_caller(db).get(NUMBERS[1]) or {}
            return bool(r.get("agent") and r.get("last_seen") and r["last_seen"] > r["agent_answer"])
        wait_for(agent_seen, "the agent in the second call's row, then a last_seen", [hw, runs[-1]])
        runs[-1].send_signal(signal.SIGKILL)
        assert runs[-1].wait(30) == -signal.SIGKILL
        cut = _by_caller(db)[NUMBERS[1]]
        assert cut["end"] is None and cut["queue"] == "service"

        # run 3: recovery completes the cut call; a new call gets a new id and row
        log3 = tmp_path / "serve3.log"
        runs.append(serve(cfg, log3))
        wait_for(lambda: (_by_caller(db).get(NUMBERS[2]) or {}).get("end"), "the third call's end",
                 [hw, runs[-1]])
        runs[-1].send_signal(signal.SIGTERM)
        assert runs[-1].wait(60) == 0, log3.read_text()[-3000:]
    finally:
        stop([*runs, hw])

    calls = rows(db, "SELECT * FROM calls ORDER BY start")
    assert [c["caller"] for c in calls] == [NUMBERS[0], NUMBERS[1], NUMBERS[2]]
    server = default_server_id()
    # one run per start, each call's id holding its server and run
    assert [(c["server_id"], c["run"]) for c in calls] == [(server, 1), (server, 2), (server, 3)]
    assert [c["call_id"] for c in calls] == [f"{server}-{run}-000001" for run in (1, 2, 3)]
    assert rows(db, "SELECT server_id, runs FROM servers") == [{"server_id": server, "runs": 3}]
    a, b, c = calls
    for done, line in ((a, 0), (c, 2)):          # ended normally, each by its own caller
        assert done["channel"] == line and done["disposition"].startswith("far end hung up"), done

    # the call the crash cut: agent, queue, IVR path as written; the end an estimate, never late
    assert (b["agent"], b["queue"], b["disposition"]) == ("chen", "service", CRASHED)
    assert json.loads(b["ivr_path"])[-2:] == ["key:0", "queue:service"]
    assert b["answer"] < b["agent_answer"] < b["last_seen"] <= b["end"]
    slack = dt.timedelta(seconds=SEEN_INTERVAL_S + 0.05)   # at most one last_seen period after it
    assert parse_time(b["end"]) <= parse_time(b["last_seen"]) + slack
    recovered, = events(log3, "call.recovered")
    assert (recovered["call_id"], recovered["agent"], recovered["queue"]) == (b["call_id"], "chen", "service")

    # every recording row points at its own call, on that call's line
    recs = rows(db, "SELECT * FROM recordings ORDER BY id")
    assert [r["call_id"] for r in recs] == [a["call_id"], b["call_id"], c["call_id"]]
    for r, call in zip(recs, calls, strict=True):
        assert f"_ch{call['channel']}_{call['call_id']}.wav" in r["path"]
        assert r["status"] == "kept" and bool(r["recovered"]) == (call is b)
        assert os.path.exists(r["path"])

    # the event journal ([storage] events): numbered on across the runs, every event the clean
    # runs logged stored, and the kill one gap: what run 2 may have published and not stored
    from voiceserver.core.journal import read_since
    journal = read_since(str(tmp_path / "events.db"), server, 0, limit=1_000_000)
    logged = [events(log) for log in (log1, log2, log3)]
    stored = {e["seq"]: e for e in journal if e["kind"] != "journal.gap"}
    seqs = [e["seq"] for e in journal if e["kind"] != "journal.gap"]
    assert seqs == sorted(set(seqs))
    for e in logged[0] + logged[2]:
        assert stored[e["seq"]] == {**e, "time": stored[e["seq"]]["time"]}, e
    gap, = [e for e in journal if e["kind"] == "journal.gap"]
    assert "killed" in gap["reason"]
    assert logged[0][-1]["seq"] < logged[1][0]["seq"] and logged[1][-1]["seq"] < logged[2][0]["seq"]
    assert gap["to"] == logged[2][0]["seq"] - 1
    for e in logged[1]:          # the killed run's: stored, or in the gap (its log lost the rest)
        assert e["seq"] in stored or gap["from"] <= e["seq"] <= gap["to"], e
    assert gap["from"] == max(s for s in seqs if s < logged[2][0]["seq"]) + 1


TWO = """
[scenario]
duration = 300.0
seed = {seed}

[[caller]]
at = 1.0
line = "BOARD:0"
number = "{n0}"
hangup_after = 3.0

[[caller]]
at = 1.5
line = "BOARD:1"
number = "{n1}"
hangup_after = 5.0
"""


def test_two_servers_writing_one_database_never_share_an_id(tmp_path):
    """Each server has its own config, board and recordings; the database is one file."""
    db = tmp_path / "shared" / "calls.db"
    db.parent.mkdir()
    procs = []
    numbers = {"east": ("13800000010", "13800000011"), "west": ("13800000020", "13800000021")}
    try:
        for i, name in enumerate(("east", "west")):
            board = f"{name}{os.getpid()}"
            n0, n1 = numbers[name]
            procs.append(hwsim(tmp_path / name, board, TWO.format(seed=i + 1, n0=n0, n1=n1)))
            cfg = server_config(tmp_path / name / "server.toml", board, RECORD_ALL)
            text = cfg.read_text()
            assert 'database = "calls.db"' in text          # [storage] of server-recording.toml
            cfg.write_text(text.replace('database = "calls.db"',
                                        f'database = "{db}"\nserver_id = "{name}"'))
            procs.append(serve(cfg, tmp_path / name / "serve.log"))
        ended = 'SELECT * FROM calls WHERE "end" IS NOT NULL'
        wait_for(lambda: len(rows(db, ended)) >= 4, "four ended calls", procs)
        for p in procs[1::2]:
            p.send_signal(signal.SIGTERM)
        for p, name in zip(procs[1::2], ("east", "west"), strict=True):
            assert p.wait(60) == 0, (tmp_path / name / "serve.log").read_text()[-3000:]
    finally:
        stop(procs)

    calls = rows(db, "SELECT * FROM calls ORDER BY call_id")
    assert len(calls) == 4 and len({c["call_id"] for c in calls}) == 4
    for name in ("east", "west"):
        mine = [c for c in calls if c["server_id"] == name]
        assert sorted(c["caller"] for c in mine) == sorted(numbers[name])
        assert all(c["call_id"].startswith(f"{name}-1-") and c["run"] == 1 for c in mine)
        assert all(c["disposition"].startswith("far end hung up") for c in mine)
    recs = rows(db, "SELECT r.*, c.server_id FROM recordings r JOIN calls c USING (call_id)")
    assert len(recs) == 4 and len({r["call_id"] for r in recs}) == 4
    for r in recs:    # each server's files under its own recordings directory, for its own calls
        assert r["path"].startswith(str(tmp_path / r["server_id"] / "recordings")) and r["status"] == "kept"


STILL_RINGING = """
[scenario]
duration = 120.0
seed = 5

[[caller]]          # the caller who was ringing when the last run was killed: rings on
at = 1.0
line = "BOARD:0"
number = "13911110010"
hangup_after = 4.0

[[caller]]          # a new caller on a line whose crashed call is long gone
at = 1.5
line = "BOARD:1"
number = "13911110011"
hangup_after = 4.0
"""


def test_a_call_ringing_when_the_server_was_killed_keeps_one_row_after_the_restart(tmp_path):
    """What `kill -9` leaves while a line rings: an open row, no answer, no caller ID yet
    (written here as the killed run left it). The restarted server hears the same caller
    ring on (within a ring cycle of when the row was last seen): one row for that call,
    from its first ring, with the caller ID heard after the restart; the killed run's row
    is dropped (`call.continued`). A crashed ringing row older than that stays."""
    board = f"ring{os.getpid()}"
    cfg = server_config(tmp_path / "server.toml", board, RECORD_ALL)
    db_path = tmp_path / "calls.db"
    starts = {0: dt.datetime(2026, 11, 23, 1, 59, 57, tzinfo=dt.UTC),
              1: dt.datetime(2026, 11, 23, 1, 50, 0, tzinfo=dt.UTC)}
    run, ids = _killed_run(db_path, [(chan, start, dt.timedelta(seconds=1), None)
                                     for chan, start in starts.items()])
    killed = {chan: (cid, starts[chan]) for chan, cid in zip(starts, ids, strict=True)}
    log = tmp_path / "serve.log"
    _serve_until_ended(cfg, db_path, hwsim(tmp_path, board, STILL_RINGING), ("13911110010", "13911110011"), log)
    line0 = rows(db_path, "SELECT * FROM calls WHERE channel = 0")
    assert len(line0) == 1, line0
    call = line0[0]
    assert call["caller"] == "13911110010" and call["run"] == run + 1
    assert parse_time(call["start"]) == killed[0][1], "the call's start is its first ring, before the crash"
    continued, = events(log, "call.continued")
    assert (continued["call_id"], continued["before_crash"]) == (call["call_id"], killed[0][0])
    line1 = rows(db_path, "SELECT * FROM calls WHERE channel = 1 ORDER BY start")
    assert [(c["call_id"], c["caller"]) for c in line1] == [(killed[1][0], None),
                                                           (line1[1]["call_id"], "13911110011")]
    assert line1[0]["disposition"] == CRASHED


ANSWERED_AS_KILLED = """
[scenario]
duration = 120.0
seed = 5

[[caller]]          # a new caller on the line the killed run had just answered
at = 1.0
line = "BOARD:0"
number = "13911110010"
hangup_after = 4.0
"""


def _seize_and_die(uri: str, chan: int, ready) -> None:
    """A server killed as it answered: the line off-hook on the card, nothing else done."""
    from boarddrv import open_board
    board = open_board(uri)
    board.start()
    board.hook(chan, "offhook")
    ready.set()
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_call_answered_as_the_server_was_killed_is_not_continued_by_the_next_caller(tmp_path):
    """`kill -9` just after the server answered: the card has the line off-hook, the row has
    the caller ID but not yet the answer. The restart releases the line (the caller is cut);
    the next caller ringing on it within a ring cycle is a new call with a row of its own,
    and the killed call keeps its row (the soak's exactly-once check found it dropped: the
    new call was taken for the old one still ringing, and the old caller had no row)."""
    import multiprocessing as mp
    board = f"ans{os.getpid()}"
    cfg = server_config(tmp_path / "server.toml", board, RECORD_ALL)
    db_path = tmp_path / "calls.db"
    start = dt.datetime(2026, 11, 23, 1, 59, 55, tzinfo=dt.UTC)
    run, (killed,) = _killed_run(db_path, [(0, start, dt.timedelta(seconds=4), "13911110009")])
    hw = hwsim(tmp_path, board, ANSWERED_AS_KILLED)
    log = tmp_path / "serve.log"
    try:
        ctx = mp.get_context("fork")
        ready = ctx.Event()
        host = ctx.Process(target=_seize_and_die, args=(f"sim://{board}", 0, ready))
        host.start()
        host.join(60)
        assert ready.is_set() and host.exitcode == -signal.SIGKILL
    except BaseException:
        stop([hw])
        raise
    _serve_until_ended(cfg, db_path, hw, ("13911110010",), log)
    released, = events(log, "line.released")
    assert (released["chan"], released["call_id"], released["released"]) == (0, killed, True)
    assert events(log, "call.continued") == []
    line0 = rows(db_path, "SELECT * FROM calls WHERE channel = 0 ORDER BY start")
    assert [(c["call_id"], c["caller"]) for c in line0] == [(killed, "13911110009"),
                                                           (line0[1]["call_id"], "13911110010")]
    old, new = line0
    assert old["disposition"] == CRASHED and "released" in (old["notes"] or "")
    assert parse_time(new["start"]) > parse_time(old["end"]), "the new call starts at its own first ring"
    assert new["run"] == run + 1


RINGING_ON_OR_NOT = """
[scenario]
duration = 120.0
seed = 5

[[caller]]          # the caller who was ringing at the kill rings on (caller ID again)
at = 1.0
line = "BOARD:0"
number = "13911110020"
hangup_after = 4.0

[[caller]]          # that line's caller gave up during the restart; another rings at once
at = 1.0
line = "BOARD:1"
number = "13911110022"
hangup_after = 4.0
"""


def test_a_call_ringing_at_the_kill_is_continued_only_by_the_same_caller_id(tmp_path):
    """Both killed calls were ringing with their caller ID heard. After the restart a call
    rings on each line within a ring cycle, its caller ID not heard yet when it starts: the
    offer decides. The same number continues the killed call (one row, from the first ring
    before the crash); another number is another caller, and the killed call keeps its row."""
    board = f"cid{os.getpid()}"
    cfg = server_config(tmp_path / "server.toml", board, RECORD_ALL)
    db_path = tmp_path / "calls.db"
    start = dt.datetime(2026, 11, 23, 1, 59, 56, tzinfo=dt.UTC)
    callers = {0: "13911110020", 1: "13911110021"}
    run, ids = _killed_run(db_path, [(chan, start, dt.timedelta(seconds=2), caller)
                                     for chan, caller in callers.items()])
    killed = {chan: (cid, callers[chan]) for chan, cid in zip(callers, ids, strict=True)}
    log = tmp_path / "serve.log"
    _serve_until_ended(cfg, db_path, hwsim(tmp_path, board, RINGING_ON_OR_NOT),
                       ("13911110020", "13911110022"), log)
    line0 = rows(db_path, "SELECT * FROM calls WHERE channel = 0")
    assert [(c["caller"], c["run"]) for c in line0] == [("13911110020", run + 1)], line0
    assert parse_time(line0[0]["start"]) == start, "one row, from the first ring before the crash"
    continued, = events(log, "call.continued")
    assert (continued["call_id"], continued["before_crash"]) == (line0[0]["call_id"], killed[0][0])
    line1 = rows(db_path, "SELECT * FROM calls WHERE channel = 1 ORDER BY start")
    assert [(c["call_id"], c["caller"]) for c in line1] == [(killed[1][0], "13911110021"),
                                                           (line1[1]["call_id"], "13911110022")]
    assert line1[0]["disposition"] == CRASHED and parse_time(line1[1]["start"]) > start
