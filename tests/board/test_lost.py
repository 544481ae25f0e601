"""A device that is removed, closed or killed: BOARD_LOST then BoardLost, never a hang."""
from __future__ import annotations

import multiprocessing as mp
import os
import signal

import pytest

from boarddrv import BoardLost, Event, EventKind, NoSuchBoard, open_board
from boarddrv.simdev import SimDevice, SpanSpec

from boardkit import FXO0, DeviceThread, mixed_board


def test_removed_card_sends_board_lost_then_fails(name):
    def on_tick(dev, tick):
        if tick == 3:
            dev.remove()

    with mixed_board(name) as dev, open_board(dev.uri) as board:
        with DeviceThread(dev, on_tick, max_ticks=4):
            board.start()
            for _ in range(3):
                board.wait_tick(timeout=5)
                assert board.events() == []
                board.commit()
            assert board.wait_tick(timeout=5) == 3      # the final tick carries the news
            assert board.events() == [Event(3, EventKind.BOARD_LOST, -1, -1, 0)]
            board.commit()
            with pytest.raises(BoardLost, match=f"board {dev.uri} lost: the device was removed"):
                board.wait_tick(timeout=5)
        with pytest.raises(BoardLost):
            board.hook(FXO0, "offhook")
        assert board.events() == []                     # told once
        with pytest.raises(NoSuchBoard):                # the card is gone from /dev/shm
            open_board(dev.uri)


def test_remove_between_ticks(name):
    with mixed_board(name) as dev, open_board(dev.uri) as board:
        board.start()
        dev.remove()
        assert board.wait_tick(timeout=5) == 0
        assert [e.kind for e in board.events()] == [EventKind.BOARD_LOST]
        with pytest.raises(BoardLost):
            board.wait_tick(timeout=5)
        dev.remove()                                    # twice is harmless
        with pytest.raises(BoardLost, match="removed"):
            dev.next_tick(1)


def test_closed_device_is_lost_with_a_synthesized_event(name):
    with mixed_board(name) as dev, open_board(dev.uri) as board:
        board.start()
        dev.close()
        with pytest.raises(BoardLost, match="stopped or died"):
            board.wait_tick(timeout=None)               # must not wait forever
        evs = board.events()
        assert [e.kind for e in evs] == [EventKind.BOARD_LOST]
        assert board.events() == []


def _serve(name: str, ready) -> None:
    dev = SimDevice.create(name, spans=[SpanSpec(kind="analog", nchan=4)])
    ready.set()
    dev.wait_host(30)
    while True:                                         # until SIGKILL
        if dev.next_tick(1) is not None:
            dev.publish()


def _spawn_device(name: str):
    ctx = mp.get_context("fork")
    ready = ctx.Event()
    proc = ctx.Process(target=_serve, args=(name, ready), daemon=True)
    proc.start()
    assert ready.wait(30), "device process did not come up"
    return proc


def test_killed_device_process_raises_board_lost_not_a_hang(name):
    proc = _spawn_device(name)
    try:
        with open_board(f"sim://{name}") as board:
            board.start()
            for _ in range(5):
                board.wait_tick(timeout=5)
                board.commit()
            os.kill(proc.pid, signal.SIGKILL)
            proc.join(10)
            with pytest.raises(BoardLost, match="stopped or died"):
                for _ in range(10):                     # a tick may already be published
                    board.wait_tick(timeout=None)
                    board.commit()
            assert [e.kind for e in board.events()] == [EventKind.BOARD_LOST]
    finally:
        if proc.is_alive():
            proc.kill()
            proc.join()
    # The dead device left its shared memory behind: it reads as no board ...
    with pytest.raises(NoSuchBoard, match=f"stale: device pid {proc.pid} gone"):
        open_board(f"sim://{name}")
    assert f"sim://{name}" not in __import__("boarddrv").list_boards()
    # ... and a new device replaces it.
    with mixed_board(name) as dev, open_board(dev.uri) as board:
        assert board.info.nchan == 34


def test_host_of_a_dead_host_can_be_taken_over(name):
    """A host that died holding the board does not lock it forever."""
    with mixed_board(name) as dev:
        ctx = mp.get_context("fork")
        proc = ctx.Process(target=_claim_and_die, args=(dev.uri,))
        proc.start()
        proc.join(30)
        assert proc.exitcode == 0
        with open_board(dev.uri) as board:
            board.start()                               # taken over, not BoardBusy
            assert dev.host_attached


def test_device_notices_a_dead_host(name):
    with mixed_board(name) as dev:
        proc = mp.get_context("fork").Process(target=_claim_and_die, args=(dev.uri,))
        proc.start()
        proc.join(30)
        assert not dev.host_attached                    # the claim of a dead pid is dropped
        assert dev.wait_host(0) is False


def _claim_and_die(uri: str) -> None:
    board = open_board(uri)
    board.start()
    os._exit(0)                                         # no close(): like a crash


def _close_inherited(dev_and_board) -> None:
    dev, board = dev_and_board
    board.close()
    dev.close()
    os._exit(0)


def test_a_fork_child_closing_inherited_handles_leaves_the_board_alone(name):
    with mixed_board(name) as dev, open_board(dev.uri) as board:
        board.start()
        proc = mp.get_context("fork").Process(target=_close_inherited, args=((dev, board),))
        proc.start()
        proc.join(30)
        assert proc.exitcode == 0
        assert dev.host_attached
        dev.next_tick(5)
        dev.publish()
        assert board.wait_tick(timeout=5) == 0
        board.commit()
        with open_board(dev.uri) as again:
            assert again.info.nchan == 34
