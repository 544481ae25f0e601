"""voiceserver.core.linestate against a real simulated card: what a dead host left, read back and released.

A host process seizes lines (FXO off-hook, a cross-connect, a phone rung,
loopback, CAS bits) and is killed with SIGKILL; the card's registers keep
all of it. The next host reads it with `line_states` and puts it back with
`release_all`; the device receives the matching commands and the registers
are idle again.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import signal
import threading

from boarddrv import ChannelType, open_board
from boarddrv.simdev import ChanSpec, SimDevice, SpanSpec
from voiceserver.core.linestate import CAS_IDLE, LineState, line_states, release_all

FXO0, FXO1, FXS0, FXS1, CAS0 = 0, 1, 2, 3, 4


def _board(name: str) -> SimDevice:
    spans = [SpanSpec(kind="analog", nchan=4), SpanSpec(kind="e1", nchan=30, framing="cas")]
    chans = ([ChanSpec(ChannelType.FXO, 0)] * 2 + [ChanSpec(ChannelType.FXS, 0)] * 2
             + [ChanSpec(ChannelType.E1_CAS, 1)] * 30)
    return SimDevice.create(name, spans=spans, channels=chans)


def _seize_and_die(uri: str, ready) -> None:
    board = open_board(uri)
    board.start()
    board.hook(FXO0, "offhook")
    board.xconnect(FXO0, FXS0)
    board.ring(FXS1, True)
    board.loopback(FXO1, True)
    board.set_cas(CAS0, 0b0011)
    ready.set()
    os.kill(os.getpid(), signal.SIGKILL)


def test_what_a_killed_host_seized_is_read_back_and_released(tmp_path):
    name = f"ls{os.getpid()}"
    dev = _board(name)
    try:
        ctx = mp.get_context("fork")
        ready = ctx.Event()
        host = ctx.Process(target=_seize_and_die, args=(dev.uri, ready))
        host.start()
        host.join(60)
        assert ready.is_set() and host.exitcode == -signal.SIGKILL
        dev.post("HOOK_OFF", FXS0)                  # the agent's phone is lifted
        dev.commands()                              # what the dead host sent: not the point here
        with open_board(dev.uri) as board:
            board.start()                           # takes over the dead host's claim
            found = {s.chan: s for s in line_states(board)}
            assert found == {
                FXO0: LineState(FXO0, "FXO", offhook=True, xconnect=FXS0),
                FXO1: LineState(FXO1, "FXO", loopback=True),
                FXS0: LineState(FXS0, "FXS", xconnect=FXO0, phone_offhook=True),
                FXS1: LineState(FXS1, "FXS", ringing=True),
                CAS0: LineState(CAS0, "E1_CAS", cas_tx=0b0011),
            }
            assert found[FXO0].describe() == "off-hook, cross-connected with 2"
            assert found[FXS0].describe() == "cross-connected with 0, phone lifted"
            assert found[CAS0].describe() == "sending CAS 0011"
            release_all(board)
            sent = [(c.kind.name, c.chan, c.value) for c in dev.commands() if c.kind.name != "START"]
            assert sent == [("HOOK", FXO0, 0), ("XCONNECT", FXO0, -1), ("LOOPBACK", FXO1, 0),
                            ("RING", FXS1, 0), ("CAS", CAS0, CAS_IDLE)]   # one XCONNECT: both ends
            # idle now, but for the phone still lifted: that is the person's, not the host's
            assert line_states(board) == [LineState(FXS0, "FXS", phone_offhook=True)]
            assert not line_states(board)[0].seized
    finally:
        dev.close()


def test_an_idle_card_has_nothing_to_release(tmp_path):
    dev = _board(f"ls{os.getpid()}i")
    try:
        with open_board(dev.uri) as board:
            board.start()
            assert line_states(board) == [] and release_all(board) == []
            assert [c.kind.name for c in dev.commands()] == ["START"]
    finally:
        dev.close()


def test_more_seized_lines_than_the_command_queue_holds_are_all_released(tmp_path):
    """960 E1 channels each looped back and sending CAS: 1920 commands to undo, the card's
    queue holds 1024: the release gives the card ticks to drain it (lockstep: it only
    ticks when the host commits) instead of failing with a full queue."""
    from voiceserver.core import linestate
    spans = [SpanSpec(kind="e1", nchan=30, framing="cas") for _ in range(32)]
    chans = [ChanSpec(ChannelType.E1_CAS, s) for s in range(32) for _ in range(30)]
    dev = SimDevice.create(f"ls{os.getpid()}big", spans=spans, channels=chans)
    drained: list = []
    stop = threading.Event()

    def card() -> None:                             # ticks when the host commits; drains commands
        while not stop.is_set():
            if dev.next_tick(0.05) is not None:
                drained.extend(dev.commands())
                dev.publish()
    device = threading.Thread(target=card, daemon=True)
    device.start()
    try:
        with open_board(dev.uri) as first:      # a host that seizes everything and goes
            first.start()
            for c in range(960):
                linestate._send(first, first.set_cas, c, 0b0011)
                linestate._send(first, first.loopback, c, True)
        with open_board(dev.uri) as board:
            board.start()
            assert len(line_states(board)) == 960
            assert len(release_all(board)) == 960
            assert line_states(board) == []
            board.wait_tick(timeout=5)          # the card reads the last of them
            board.commit()
            board.wait_tick(timeout=5)
        stop.set()
        device.join(10)
        undone = [(c.kind.name, c.value) for c in drained if c.kind.name in ("CAS", "LOOPBACK")][-1920:]
        assert undone.count(("CAS", CAS_IDLE)) == 960 and undone.count(("LOOPBACK", 0)) == 960
    finally:
        stop.set()
        device.join(10)
        dev.close()


def test_the_note_goes_to_the_call_a_crash_left_on_that_line_only(tmp_path):
    import datetime as dt

    from voiceserver.recording.calldb import RECOVERED, CallDb, CallRow
    t = dt.datetime(2026, 11, 23, 10, 0)
    with CallDb(tmp_path / "calls.db") as db:
        db.upsert_call(CallRow("old", start=t, end=t, board="b", channel=0, disposition="caller hung up"))
        db.upsert_call(CallRow("open", start=t + dt.timedelta(minutes=1), board="b", channel=0))
        db.upsert_call(CallRow("rec", start=t, end=t, board="b", channel=1, disposition=RECOVERED))
        db.upsert_call(CallRow("done", start=t, end=t, board="b", channel=2, disposition="caller hung up"))
        assert db.note_line_released("b", 0, "line found off-hook at server start: released") == "open"
        assert db.note_line_released("b", 0, "again") == "open"
        assert db.note_line_released("b", 1, "line found off-hook at board back: released") == "rec"
        assert db.note_line_released("b", 2, "x") is None      # its call ended: not that call's doing
        assert db.note_line_released("other", 0, "x") is None
        notes = {r["call_id"]: r["notes"] for r in db.query("SELECT call_id, notes FROM calls")}
        assert notes == {"old": None, "open": "line found off-hook at server start: released\nagain",
                         "rec": "line found off-hook at board back: released", "done": None}
