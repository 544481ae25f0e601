"""One fault must not stop everything: a lost board ends only its own calls.

Two hwsim processes (real time), one board each, one server. The device
of board `x` is killed (SIGKILL: the card vanishes) while a call is up on
each board: x's call ends "board lost" with a complete record and an
alarm, y's call goes on to its own end; hwsim is started again with the
same name (a card reset) and the server opens the board again by itself
and takes a new call on it. A fatal engine failure stops the server with
its error kept (exit status 1), not cleared by the other engines' clean
stop. Waits are guards against a wedged process, never timing checks.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
import soundfile as sf

from prockit import CONFIGS, hwsim, kill_all, stop_hwsim

STORAGE = """
[storage]
recordings = "recordings"
database = "calls.db"
voicemail = "voicemail"
rules_audit = "rules-audit.jsonl"

[recording]
layout = "stereo"
"""


def server_config(tmp, bx: str, by: str, storage: bool = False):
    """configs/server-two-hotlines.toml for boards `bx` and `by` (with [storage] here)."""
    cfg = tmp / "server.toml"
    text = (CONFIGS / "server-two-hotlines.toml").read_text()
    cfg.write_text(text.replace("hotline_x", bx).replace("hotline_y", by) + (STORAGE if storage else ""))
    return cfg


def caller(number: str, hangup_after: float) -> str:
    """One caller on line 3 (loop-drop: the server hears the hang-up at once), at 1 s."""
    return f"""
[scenario]
duration = 600.0

[[caller]]
at = 1.0
line = "BOARD:3"
number = "{number}"
hangup_after = {hangup_after}
"""


def run_until(server, steps, wall_limit: float = 120.0) -> None:
    """Run `server` and do `steps` in turn on its loop: each (what, pred, action) waits for
    pred(server), then calls action(). Raises if the server stops or a step never comes."""
    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(server.run(stop))
        t0 = time.monotonic()
        try:
            for what, pred, action in steps:
                while not (server.boards and pred(server)):
                    assert not task.done(), f"server stopped waiting for {what} (error: {server.error})"
                    assert time.monotonic() - t0 < wall_limit, f"never saw {what}"   # a wedge guard
                    await asyncio.sleep(0.01)
                if action is not None:
                    action()
        finally:
            stop.set()
            await task
    asyncio.run(main())


def kinds(server, kind: str) -> list:
    return [e for e in server.bus.journal if e.kind == kind]


def answered(server, board: int) -> bool:
    """The call on line 3 of board index `board` is up and answered (calls are told apart by
    board and line, not caller ID: a loaded machine can garble a real-time caller ID)."""
    leg = server.legs.get((board, 3))
    return leg is not None and leg.call.answer_tick is not None


def records(server, board: str) -> list:
    return [r for r in server.records if r.board == board]


def test_a_lost_board_ends_only_its_calls_and_is_opened_again_when_it_is_back(tmp_path, prompt_library):
    from voiceserver.config.server import load_config
    from voiceserver.core.server import VoiceServer
    bx, by = f"lossx{os.getpid()}", f"lossy{os.getpid()}"
    hx, _ = hwsim(tmp_path, bx, caller("1001", 600.0), clock="realtime", tag="x")
    hy, report_y = hwsim(tmp_path, by, caller("2001", 12.0), clock="realtime", tag="y")
    hx2 = None
    cfg_path = server_config(tmp_path, bx, by, storage=True)
    server = VoiceServer(load_config(cfg_path, library=prompt_library), prompt_library, sync=False,
                         start_time=dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC))
    seen: dict = {}

    def kill_x() -> None:
        hx.send_signal(signal.SIGKILL)
        hx.wait(10)

    def lost() -> None:
        seen["y_up_at_loss"] = answered(server, 1)

    def restart_x() -> None:
        nonlocal hx2
        hx2, seen["report_x2"] = hwsim(tmp_path, bx, caller("1002", 3.0), clock="realtime", tag="x2")

    try:
        run_until(server, [
            ("a call answered on each board, x's being recorded",
             lambda s: answered(s, 0) and answered(s, 1)
             and any(e.data.get("board") == "x" for e in kinds(s, "recording.started")), kill_x),
            ("board.lost", lambda s: kinds(s, "board.lost"), lost),
            ("x's call ended", lambda s: records(s, "x"), restart_x),
            ("board.back", lambda s: kinds(s, "board.back"), None),
            ("a new call on x and y's call, both to their end",
             lambda s: len(records(s, "x")) == 2 and records(s, "y"), None),
        ])
        assert server.error is None
        (gone, new), (kept,) = records(server, "x"), records(server, "y")
        # x's call: ended by the loss, a complete record
        assert (gone.board, gone.chan, gone.reason) == ("x", 3, "board lost")
        assert gone.answer is not None and gone.end >= gone.answer
        lost_ev, = kinds(server, "board.lost")
        assert lost_ev.data["board"] == "x" and lost_ev.data["alarm"] is True
        assert lost_ev.data["calls"] == 1 and "lost" in lost_ev.data["error"]
        # y's call was up at the loss and went on to the caller's own hang-up
        assert seen["y_up_at_loss"]
        assert (kept.chan, kept.reason) == (3, "far end hung up (loop current dropped)")
        # x is back: opened again by the server itself, and a new call on it is served
        back, = kinds(server, "board.back")
        assert back.data["board"] == "x" and back.data["tries"] >= 1
        assert back.seq > lost_ev.seq
        assert new.chan == 3 and new.answer is not None
        assert new.reason == "far end hung up (loop current dropped)"
        assert new.start > gone.end            # the board's clock went on across the loss
        # the rows: each call complete with its cause; the lost call's recording kept, readable
        con = sqlite3.connect(tmp_path / "calls.db")
        rows = {r[0]: r[1:] for r in con.execute(
            'SELECT call_id, disposition, "end" FROM calls WHERE board = ?', ("x",))}
        files = con.execute("SELECT path, status FROM recordings WHERE call_id = ?",
                            (gone.call_id,)).fetchall()
        con.close()
        assert rows[gone.call_id][0] == "board lost" and rows[gone.call_id][1] is not None
        assert rows[new.call_id][0] == "far end hung up (loop current dropped)"
        (path, status), = files
        assert status == "kept"
        audio, rate = sf.read(path, dtype="int16", always_2d=True)
        assert rate == 8000 and audio.shape[1] == 2 and len(audio) > 0
        report = stop_hwsim(hy, report_y)
        assert [(c["number"], c["who_hung_up"]) for c in report["calls"]] == [("2001", "caller")]
    finally:
        kill_all(hx, hy, hx2)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_fatal_engine_failure_stops_the_server_with_its_error(tmp_path, prompt_library):
    """A failure that is not a lost board stops the server; the other board's clean stop
    must not clear the error (the exit status would be 0)."""
    from voiceserver.config.server import load_config
    from voiceserver.core.server import VoiceServer
    bx, by = f"fatalx{os.getpid()}", f"fataly{os.getpid()}"
    hx, _ = hwsim(tmp_path, bx, caller("1001", 600.0), clock="realtime", tag="x")
    hy, _ = hwsim(tmp_path, by, caller("2001", 600.0), clock="realtime", tag="y")
    cfg_path = server_config(tmp_path, bx, by)
    server = VoiceServer(load_config(cfg_path, library=prompt_library), prompt_library, sync=False)

    def break_y() -> None:
        def boom(tick: int) -> None:
            raise RuntimeError("a bug in the tick")
        server.boards[1].engine.run_tick = boom

    try:
        with pytest.raises(AssertionError, match="server stopped waiting for the end"):
            run_until(server, [
                ("a call answered on each board", lambda s: answered(s, 0) and answered(s, 1), break_y),
                ("the end", lambda s: False, None),
            ])
        assert server.error == "media engine failed: RuntimeError('a bug in the tick')"
        assert sorted((r.board, r.chan, r.reason) for r in server.records) == [
            ("x", 3, "server stopped"), ("y", 3, "server stopped")]
    finally:
        kill_all(hx, hy)


def test_serve_exits_1_naming_a_board_it_cannot_open(tmp_path):
    cfg = server_config(tmp_path, f"nothere{os.getpid()}", "neither")
    p = subprocess.run([sys.executable, "-m", "boarddrv.cli", "serve", "--config", str(cfg),
                        "--status-port", "-1"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 1
    assert f"no such board 'sim://nothere{os.getpid()}'" in p.stderr


ACD = """
[agents.chen]
phone = "y:5"
start = "logged_out"

[queues.service]
members = ["chen"]
max_wait = 3
timeout = "hangup"
"""


def test_the_acd_timer_lost_with_the_first_board_runs_again_when_it_is_back(tmp_path, prompt_library):
    """The ACD's timer lives on the first board's engine: a caller queued on the second
    board while the first is lost leaves at max_wait once the first board is back."""
    from voiceserver.config.server import load_config
    from voiceserver.core.server import VoiceServer
    bx, by = f"acdx{os.getpid()}", f"acdy{os.getpid()}"
    hx, _ = hwsim(tmp_path, bx, "[scenario]\nduration = 600.0\n", clock="realtime", tag="x")
    hy, _ = hwsim(tmp_path, by, caller("2001", 120.0).replace("hangup_after = 120.0", """hangup_after = 120.0
script = [{ after = 1.0, digits = "0" }]"""), clock="realtime", tag="y")
    hx2 = None
    cfg_path = server_config(tmp_path, bx, by)
    cfg_path.write_text(cfg_path.read_text()
                        .replace('inbound = ["x:0-3", "y:0-3"]', 'inbound = ["x:0-3", "y:0-3"]\nagents = "y:4-7"')
                        .replace('"1" = { action = "hangup" }', '''"1" = { action = "hangup" }
"0" = { action = "queue", queue = "service" }''') + ACD)
    server = VoiceServer(load_config(cfg_path, library=prompt_library), prompt_library, sync=False)

    def kill_x() -> None:
        hx.send_signal(signal.SIGKILL)
        hx.wait(10)

    def restart_x() -> None:
        nonlocal hx2
        hx2, _ = hwsim(tmp_path, bx, "[scenario]\nduration = 600.0\n", clock="realtime", tag="x2")

    try:
        run_until(server, [
            ("y's caller queued", lambda s: kinds(s, "call.queue"), kill_x),
            ("board.lost", lambda s: kinds(s, "board.lost"), restart_x),
            ("board.back", lambda s: kinds(s, "board.back"), None),
            ("y's call to its end", lambda s: records(s, "y"), None),
        ])
        (rec,) = records(server, "y")
        assert rec.reason.startswith("acd:"), rec.reason     # max_wait, not the caller's own hang-up
        back, = kinds(server, "board.back")
        end = next(e for e in server.bus.journal if e.kind == "call.end" and e.call_id == rec.call_id)
        assert end.seq > back.seq
    finally:
        kill_all(hx, hy, hx2)
