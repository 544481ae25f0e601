"""Controls host -> card: each arrives as a Command, keeps the status registers, is checked."""
from __future__ import annotations

import numpy as np
import pytest

from boarddrv import BadChannel, BoardError, Command, CommandKind, InvalidArgument, open_board

from boardkit import CAS0, FXO0, FXO1, FXS0, FXS1, mixed_board

C = CommandKind


@pytest.fixture
def rig(name):
    with mixed_board(name) as dev, open_board(dev.uri) as board:
        board.start(block=80)
        assert dev.commands() == [Command(0, C.START, -1, 80)]
        yield board, dev


def _tick(board, dev):
    t = dev.next_tick(5)
    dev.publish()
    board.wait_tick(timeout=5)
    return t


def test_hook_states_reach_the_card_and_the_registers(rig):
    board, dev = rig
    t = _tick(board, dev)
    board.hook(FXO0, "offhook")
    board.hook(FXO0, "flash")
    st = board.channel_status(FXO0)
    assert st["hook"] is True                    # a flash leaves the line offhook
    board.hook(FXO0, "onhook")
    assert dev.commands() == [Command(t, C.HOOK, FXO0, 1), Command(t, C.HOOK, FXO0, 2),
                              Command(t, C.HOOK, FXO0, 0)]
    st = board.channel_status(FXO0)
    assert st["hook"] is False
    assert st["counters"]["commands"] == 3 and st["counters"]["hook_changes"] == 2
    board.commit()


def test_commands_carry_the_host_tick(rig):
    board, dev = rig
    for _ in range(3):
        _tick(board, dev)
        board.commit()
    t = _tick(board, dev)
    board.ring(FXS1, True)
    board.commit()
    board.ring(FXS1, False)                      # between ticks: stamped with the next one
    assert dev.commands() == [Command(t, C.RING, FXS1, 1), Command(t + 1, C.RING, FXS1, 0)]
    assert board.channel_status(FXS1)["ringing"] is False
    assert board.channel_status(FXS1)["counters"]["rings"] == 1


def test_cas_out(rig):
    board, dev = rig
    _tick(board, dev)
    board.set_cas(CAS0 + 3, 0b0011)
    assert [(c.kind, c.chan, c.value) for c in dev.commands()] == [(C.CAS, CAS0 + 3, 0b0011)]
    st = board.channel_status(CAS0 + 3)
    assert st["cas_tx"] == 0b0011 and st["cas_rx"] == 0b1011


def test_xconnect_pairs_and_unpairs(rig):
    board, dev = rig
    board.xconnect(FXO0, FXS0)
    assert board.channel_status(FXO0)["xconnect"] == FXS0
    assert board.channel_status(FXS0)["xconnect"] == FXO0
    board.xconnect(FXO0, FXS1)                   # re-pairing frees the old peer
    assert board.channel_status(FXS0)["xconnect"] is None
    assert board.channel_status(FXS1)["xconnect"] == FXO0
    board.xdisconnect(FXS1)
    assert board.channel_status(FXO0)["xconnect"] is None
    assert board.channel_status(FXS1)["xconnect"] is None
    assert [(c.kind, c.chan, c.value) for c in dev.commands()] == [
        (C.XCONNECT, FXO0, FXS0), (C.XCONNECT, FXO0, FXS1), (C.XCONNECT, FXS1, -1)]
    with pytest.raises(InvalidArgument, match="cannot connect to itself"):
        board.xconnect(FXO1, FXO1)


def test_loopback_returns_tx_as_rx(rig):
    board, dev = rig
    board.loopback(FXO1, True)
    assert board.channel_status(FXO1)["loopback"] is True
    sent = {}
    for _ in range(4):
        t = dev.next_tick(5)
        dev.rx[:] = 5                            # what the line would give
        dev.publish()
        assert board.wait_tick(timeout=5) == t
        if t - 1 in sent:                        # the card echoes last tick's tx
            assert (board.rx[FXO1] == sent[t - 1]).all()
            assert (board.rx[FXO0] == 5).all()
        sent[t] = (np.arange(80) * (t + 1)).astype(np.int16)
        board.tx[FXO1] = sent[t]
        board.commit()
    board.loopback(FXO1, False)
    t = _tick(board, dev)
    assert (board.rx[FXO1] == 0).all()           # device left its rx alone (zeros from ftruncate)
    assert board.channel_status(FXO1)["loopback"] is False
    kinds = [(c.kind, c.value) for c in dev.commands()]
    assert kinds == [(C.LOOPBACK, 1), (C.LOOPBACK, 0)]


def test_controls_check_channel_type_and_range(rig):
    board, dev = rig
    uri = board.uri
    with pytest.raises(InvalidArgument, match=f"hook applies to FXO channels; channel 2 on {uri} is FXS"):
        board.hook(FXS0, "offhook")
    with pytest.raises(InvalidArgument, match="hook state 'up'.*onhook, offhook, flash"):
        board.hook(FXO0, "up")
    with pytest.raises(InvalidArgument, match="ring applies to FXS channels; channel 0 .* is FXO"):
        board.ring(FXO0, True)
    with pytest.raises(InvalidArgument, match="set_cas applies to E1_CAS channels"):
        board.set_cas(FXO0, 1)
    with pytest.raises(InvalidArgument, match="CAS bits 16 for channel 4"):
        board.set_cas(CAS0, 16)
    with pytest.raises(BadChannel, match=f"channel 40 out of range 0..33 on {uri}"):
        board.loopback(40, True)
    with pytest.raises(BadChannel, match=f"channel 34 out of range 0..33 on {uri}"):
        board.xconnect(0, 34)
    assert dev.commands() == []                  # nothing half-sent


def test_controls_need_start(name):
    with mixed_board(name) as dev, open_board(dev.uri) as board:
        with pytest.raises(BoardError, match=f"hook on {dev.uri}: call start\\(\\) first"):
            board.hook(FXO0, "offhook")
        assert board.channel_status(FXO0)["hook"] is False


def test_close_tells_the_card(name):
    with mixed_board(name) as dev:
        with open_board(dev.uri) as board:
            board.start()
            assert dev.host_attached
        assert [c.kind for c in dev.commands()] == [C.START, C.STOP]
        assert not dev.host_attached


def test_controls_from_another_thread_while_ticking(rig):
    """The engine ticks on one thread while control calls come from others."""
    import threading
    board, dev = rig
    n = 300
    errors: list[BaseException] = []

    def hammer(chan):
        try:
            for i in range(n):
                board.set_cas(chan, i % 16)
        except BaseException as exc:   # reported below
            errors.append(exc)

    threads = [threading.Thread(target=hammer, args=(CAS0 + k,)) for k in range(3)]
    for th in threads:
        th.start()
    got = []
    while any(th.is_alive() for th in threads):
        _tick(board, dev)
        got += [c for c in dev.commands() if c.kind == C.CAS]
        board.commit()
    for th in threads:
        th.join()
    got += [c for c in dev.commands() if c.kind == C.CAS]
    assert not errors
    for k in range(3):
        mine = [c.value for c in got if c.chan == CAS0 + k]
        assert mine == [i % 16 for i in range(n)]      # none lost, none reordered
    assert board.channel_status(CAS0)["counters"]["commands"] == n


def test_a_full_command_queue_is_an_error_not_a_silent_drop(rig):
    board, dev = rig                        # the rig drained START
    for i in range(1024):
        board.loopback(FXO0, i % 2 == 0)    # ends with loopback off
    with pytest.raises(BoardError, match="command queue of .* full \\(1024 pending; is the device draining"):
        board.loopback(FXO0, True)
    st = board.channel_status(FXO0)
    assert st["loopback"] is False          # a refused command changes no register
    assert st["counters"]["commands"] == 1024
    assert len(dev.commands()) == 1024
    board.loopback(FXO0, True)              # room again once the device drained
