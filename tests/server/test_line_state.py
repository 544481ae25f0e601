"""Line state across a stop and a crash, with the real `voiceboard serve` and hwsim processes.

A card keeps what its host told it last. SIGTERM with calls up: every call
ends "server stopped" (event, record, SQLite row) and every line is back
on-hook and un-cross-connected before the board is closed, as the card's
registers and the far ends (hwsim's report) both show. `kill -9` with a
caller bridged to an agent leaves the line off-hook and cross-connected;
the next server finds it at start, releases it (`line.released`, a note on
the call's row), and the line takes the next caller. Waits are guards
against a wedged process, never timing checks.
"""
from __future__ import annotations

import os
import signal
import sqlite3

from voiceserver.recording.calldb import CRASHED

from prockit import card, events, hwsim, kill_all, serve, server_config, stop_hwsim, wait_for

TWO_CALLERS = """
[scenario]
duration = 900.0
seed = 5

[[agent]]
phones = "BOARD:5"
answer_after = 2.0

[[caller]]
at = 1.0
line = "BOARD:0"
number = "13911110000"
hangup_after = 600.0
script = [{ after_silence = 0.6, digits = "0" }]

[[caller]]
at = 1.0
line = "BOARD:1"
number = "13911110001"
hangup_after = 600.0
script = [{ after_silence = 0.6, digits = "0" }]
"""


def test_sigterm_with_calls_up_ends_every_call_and_releases_every_line(tmp_path):
    name = f"stop{os.getpid()}"
    hw, report_dir = hwsim(tmp_path, name, TWO_CALLERS)
    cfg = server_config(tmp_path, name)
    log = tmp_path / "serve.log"
    srv = None
    try:
        srv = serve(cfg, log, "--lockstep-sync")
        # one caller talks to the agent (a cross-connect), the other waits in the queue
        wait_for(lambda: len(events(log, "call.bridge")) == 1 and len(events(log, "call.queue")) == 2,
                 "a caller bridged to the agent and another queued", [hw, srv])
        srv.send_signal(signal.SIGTERM)
        assert srv.wait(60) == 0, log.read_text()[-3000:]
        ends = {e["call_id"]: e["reason"] for e in events(log, "call.end") if e["chan"] < 4}  # trunks
        calls = {e["call_id"] for e in events(log, "call.start")}
        assert len(calls) == 2 and {ends.get(c) for c in calls} == {"server stopped"}
        # the card: every line on-hook, no cross-connect, no phone rung
        regs = card(name)
        assert [c for c, st in regs.items() if c < 4 and st["hook"]] == []
        assert [c for c, st in regs.items() if st["xconnect"] is not None] == []
        assert [c for c, st in regs.items() if c >= 4 and st["ringing"]] == []
        report = stop_hwsim(hw, report_dir)
        # the far ends: the host hung up both callers, nobody was left on a seized line
        inbound = sorted((c for c in report["calls"] if c["kind"] == "fxo"), key=lambda c: c["channel"])
        assert [(c["channel"], c["number"], c["who_hung_up"], c["never_released"]) for c in inbound] == [
            (0, "13911110000", "host", False), (1, "13911110001", "host", False)]
        assert all(c["released"] is not None and c["released"] >= c["answer"] for c in inbound)
        con = sqlite3.connect(tmp_path / "calls.db")
        rows = con.execute('SELECT caller, disposition, "end" FROM calls ORDER BY caller').fetchall()
        con.close()
        assert [(r[0], r[1]) for r in rows] == [("13911110000", "server stopped"),
                                                 ("13911110001", "server stopped")]
        assert all(r[2] is not None for r in rows)
    finally:
        kill_all(srv, hw)


CRASH = """
[scenario]
duration = 300.0
seed = 7

[[agent]]
phones = "BOARD:5"
answer_after = 2.0
hangup_after = 60.0

[[caller]]
at = 1.0
line = "BOARD:0"
number = "13911110000"
hangup_after = 600.0
script = [{ after_silence = 0.6, digits = "0" }]

[[caller]]                    # after the crash, to the line the crash left seized
at = 150.0
line = "BOARD:0"
number = "13911110002"
hangup_after = 5.0
"""


def test_kill_9_leaves_the_line_seized_and_the_restart_releases_it_for_the_next_caller(tmp_path):
    name = f"crash{os.getpid()}"
    hw, report_dir = hwsim(tmp_path, name, CRASH)
    cfg = server_config(tmp_path, name)
    log1, log2 = tmp_path / "serve1.log", tmp_path / "serve2.log"
    first = second = None
    try:
        first = serve(cfg, log1, "--lockstep-sync")
        wait_for(lambda: events(log1, "call.bridge"), "the caller bridged to the agent", [hw, first])
        first.send_signal(signal.SIGKILL)
        assert first.wait(30) == -signal.SIGKILL
        call_id = events(log1, "call.bridge")[0]["call_id"]
        regs = card(name)           # what the crash left: line 0 seized, cross-connected to the phone
        assert regs[0]["hook"] and regs[0]["xconnect"] == 5 and regs[5]["xconnect"] == 0
        from boarddrv import open_board
        with open_board(f"sim://{name}") as b:
            crashed_at = b.stats()["ticks"] * 160 / 8000
        assert crashed_at < 150.0, "the second caller came before the crash: the test proves nothing"

        second = serve(cfg, log2, "--lockstep-sync")
        wait_for(lambda: events(log2, "board.start"), "the restarted server's board.start", [hw, second])
        # the crashed call's row has the note, and crash recovery completed it
        con = sqlite3.connect(tmp_path / "calls.db")
        con.row_factory = sqlite3.Row
        row = dict(con.execute("SELECT * FROM calls WHERE call_id = ?", (call_id,)).fetchone())
        con.close()
        assert row["caller"] == "13911110000" and row["disposition"] == CRASHED
        assert row["notes"] == "line found off-hook, cross-connected with 5 at server start: released"

        def next_call() -> dict | None:
            offer = [e for e in events(log2, "call.offer") if e.get("caller") == "13911110002"]
            ends = [e for e in events(log2, "call.end") if offer and e["call_id"] == offer[0]["call_id"]]
            return offer[0] if ends else None
        wait_for(next_call, "the next caller's call on line 0, to its end", [hw, second])
        second.send_signal(signal.SIGTERM)
        assert second.wait(60) == 0, log2.read_text()[-3000:]

        released = {e["chan"]: e for e in events(log2, "line.released")}
        assert set(released) == {0, 5}
        assert (released[0]["state"], released[0]["released"], released[0]["when"]) == (
            "off-hook, cross-connected with 5", True, "server start")
        assert released[0]["call_id"] == call_id
        assert released[5]["state"] == "cross-connected with 0, phone lifted"
        # released before the boards ticked: before board.start in the log
        kinds = [e["kind"] for e in events(log2)]
        assert kinds.index("line.released") < kinds.index("board.start")
        # the next caller was answered on line 0 by the new server
        nxt = next_call()
        assert nxt["chan"] == 0
        assert any(e["call_id"] == nxt["call_id"] for e in events(log2, "call.answer"))

        report = stop_hwsim(hw, report_dir)
        by_number = {c["number"]: c for c in report["calls"] if c["kind"] == "fxo"}
        crashed, after = by_number["13911110000"], by_number["13911110002"]
        assert crashed["who_hung_up"] == "host" and crashed["released"] >= crashed_at
        assert after["answer"] is not None and after["who_hung_up"] == "caller"
        assert not any(c["who_hung_up"] == "blocked" for c in report["calls"])
    finally:
        kill_all(first, second, hw)
