"""Ticks: lockstep ordering and determinism, rx/tx views, silence, realtime counters."""
from __future__ import annotations

import hashlib
import multiprocessing as mp
import os
import time

import numpy as np
import pytest

from boarddrv import BoardError, CommandKind, InvalidArgument, TickTimeout, open_board
from boarddrv.simdev import SimDevice

from boardkit import DeviceThread, mixed_board


def _s16(v: int) -> int:
    return (v + 32768) % 65536 - 32768


def _ramp(dev: SimDevice, tick: int) -> None:
    """rx[c, i] = tick*1000 + c*10 + i: each sample says where it came from."""
    n, b = dev.rx.shape
    dev.rx[:] = (tick * 1000 + np.arange(n)[:, None] * 10 + np.arange(b)[None, :]).astype(np.int16)


def test_lockstep_delivers_every_tick_in_order(name):
    with mixed_board(name) as dev, open_board(dev.uri) as board, DeviceThread(dev, _ramp):
        board.start(block=80)
        for want in range(50):
            tick = board.wait_tick(timeout=5)
            assert tick == want == board.tick
            rx = board.rx
            assert rx.shape == (34, 80) and rx.dtype == np.int16 and rx.flags.c_contiguous
            assert rx[3, 7] == _s16(want * 1000 + 37)
            board.commit()
        assert board.stats()["ticks"] >= 50


def test_tx_of_tick_n_reaches_the_device_at_tick_n_plus_1(name):
    seen: dict[int, np.ndarray] = {}

    def echo(dev, tick):
        seen[tick] = dev.tx.copy()
        dev.rx[:] = dev.tx

    with mixed_board(name) as dev, open_board(dev.uri) as board, DeviceThread(dev, echo) as loop:
        board.start(block=160)
        for _ in range(20):
            t = board.wait_tick(timeout=5)
            if t > 0:   # the device echoes what we sent in tick t-1
                assert (board.rx == (t - 1) * 3 + np.arange(34)[:, None]).all()
            board.tx[:] = t * 3 + np.arange(34)[:, None]
            board.commit()
        board.wait_tick(timeout=5)
        board.commit()
        loop.stop()
    assert (seen[0] == 0).all()                      # nothing was sent before tick 0
    for t in range(1, 20):
        assert (seen[t] == (t - 1) * 3 + np.arange(34)[:, None]).all()


def test_views_rx_read_only_and_tx_zeroed_each_tick(name):
    with mixed_board(name) as dev, open_board(dev.uri) as board, DeviceThread(dev, _ramp):
        with pytest.raises(BoardError, match="no tick on"):
            _ = board.rx
        board.start()
        board.wait_tick(timeout=5)
        with pytest.raises(ValueError, match="read-only"):
            board.rx[0, 0] = 1
        # Views are built once: the same slot gives the same array object.
        first_tx = board.tx
        first_tx[:] = 1234
        board.commit()
        for _ in range(8):
            board.wait_tick(timeout=5)
            board.commit()
        assert board.tx is first_tx                   # slot 8 ticks later
        assert not first_tx.any()                     # zeroed at wait_tick, not stale audio


def test_an_uncommitted_tick_goes_out_as_silence_and_counts(name):
    got = {}

    def keep(dev, tick):
        got[tick] = dev.tx.copy()

    with mixed_board(name) as dev, open_board(dev.uri) as board, DeviceThread(dev, keep) as loop:
        board.start()
        board.wait_tick(timeout=5)
        board.tx[:] = 7
        # no commit: the next wait_tick commits tick 0 as silence
        assert board.wait_tick(timeout=5) == 1
        board.commit()
        board.wait_tick(timeout=5)
        board.commit()
        loop.stop()
        assert board.stats()["underruns"] == 1
    assert not got[1].any()


def test_commit_needs_a_tick(name):
    with mixed_board(name) as dev, open_board(dev.uri) as board, DeviceThread(dev):
        with pytest.raises(BoardError, match="call start\\(\\) first"):
            board.commit()
        board.start()
        with pytest.raises(InvalidArgument, match="without a tick"):
            board.commit()
        board.wait_tick(timeout=5)
        board.commit()
        with pytest.raises(InvalidArgument, match="without a tick"):
            board.commit()


def test_lockstep_waits_for_the_host(name):
    """Without a commit the device does not advance past the host's tick."""
    with mixed_board(name) as dev, open_board(dev.uri) as board, DeviceThread(dev) as loop:
        board.start()
        assert board.wait_tick(timeout=5) == 0
        time.sleep(0.2)
        assert loop.ticks == [0]
        board.commit()
        assert board.wait_tick(timeout=5) == 1
        board.commit()


def test_wait_tick_times_out_when_no_tick_comes(name):
    with mixed_board(name) as dev, open_board(dev.uri) as board:
        board.start()
        with pytest.raises(TickTimeout, match=f"no tick from {dev.uri} within 100 ms"):
            board.wait_tick(timeout=0.1)
        with pytest.raises(InvalidArgument, match="timeout -1"):
            board.wait_tick(timeout=-1)


def _seeded_world(seed: int, nticks: int):
    """A device that posts random events and random audio, reproducible from seed."""
    rng = np.random.default_rng(seed)
    plan = {t: int(rng.integers(0, 3)) for t in range(nticks)}

    def world(dev, tick):
        r = np.random.default_rng(seed * 100003 + tick)
        dev.rx[:] = r.integers(-3000, 3000, size=dev.rx.shape, dtype=np.int16)
        for _ in range(plan.get(tick, 0)):
            dev.post("CAS", 4 + int(r.integers(0, 30)), int(r.integers(0, 16)))
        for c in dev.commands():
            if c.kind == CommandKind.CAS:
                dev.post("CAS", c.chan, 15 - c.value)
    return world


def _host_digest(uri: str, nticks: int) -> str:
    """What the host saw, tick by tick (rx, events), as one digest."""
    h = hashlib.sha256()
    with open_board(uri) as board:
        board.start()
        for _ in range(nticks):
            t = board.wait_tick(timeout=5)
            h.update(board.rx.tobytes())
            for ev in board.events():
                h.update(repr(tuple(ev)).encode())
            if t % 7 == 3:
                board.set_cas(5, t % 16)
            board.commit()
    return h.hexdigest()


def _run_seeded(name: str, seed: int, nticks: int) -> str:
    with mixed_board(name) as dev, DeviceThread(dev, _seeded_world(seed, nticks)):
        return _host_digest(dev.uri, nticks)


def _serve_seeded(name: str, seed: int, nticks: int, ready) -> None:
    world = _seeded_world(seed, nticks)
    dev = mixed_board(name)
    ready.set()
    dev.wait_host(30)
    while True:
        t = dev.next_tick(0.05)
        if t is None:
            if not dev.host_attached:
                break
            continue
        world(dev, t)
        dev.publish()
    dev.close()
    os._exit(0)


def _run_seeded_in_process(name: str, seed: int, nticks: int) -> str:
    ctx = mp.get_context("fork")
    ready = ctx.Event()
    proc = ctx.Process(target=_serve_seeded, args=(name, seed, nticks, ready))
    proc.start()
    try:
        assert ready.wait(30)
        return _host_digest(f"sim://{name}", nticks)
    finally:
        proc.join(30)
        if proc.is_alive():
            proc.kill()
            proc.join()


def test_lockstep_is_deterministic(name):
    a = _run_seeded(name + "a", 42, 60)
    b = _run_seeded(name + "b", 42, 60)
    c = _run_seeded(name + "c", 43, 60)
    assert a == b
    assert a != c


def test_lockstep_across_processes_matches_in_process(name):
    """hwsim runs as its own process in CI: the same seed gives the same run there too."""
    assert _run_seeded_in_process(name + "p", 42, 60) == _run_seeded(name + "t", 42, 60)


def test_a_second_host_restarts_with_another_block(name):
    with mixed_board(name) as dev, DeviceThread(dev, _ramp):
        with open_board(dev.uri) as board:
            board.start(block=160)
            for _ in range(3):
                board.wait_tick(timeout=5)
                board.commit()
            board.wait_tick(timeout=5)       # left uncommitted on purpose
        with open_board(dev.uri) as board:
            board.start(block=80)
            t0 = board.wait_tick(timeout=5)
            assert t0 >= 4 and board.rx.shape == (34, 80)
            assert board.rx[1, 5] == _s16(t0 * 1000 + 15)
            board.commit()
            assert board.wait_tick(timeout=5) == t0 + 1


def test_realtime_ticks_in_order_and_counts_a_slow_host(name):
    """Real time: the card keeps its clock; a host asleep for > 8 blocks loses blocks."""
    with mixed_board(name, clock="realtime") as dev, open_board(dev.uri) as board, \
            DeviceThread(dev, _ramp):
        board.start(block=320)                       # 40 ms blocks: slack for a loaded CI box
        ticks = []
        for _ in range(5):
            ticks.append(board.wait_tick(timeout=5))
            assert board.rx[0, 0] == _s16(ticks[-1] * 1000)
            board.commit()
        assert ticks == list(range(ticks[0], ticks[0] + 5))
        before = board.stats()
        time.sleep(0.6)                              # ~15 blocks behind the card
        skipped_to = board.wait_tick(timeout=5)
        board.commit()
        after = board.stats()
        assert skipped_to > ticks[-1] + 8
        assert after["overruns"] - before["overruns"] == skipped_to - ticks[-1] - 1
        # The ticks we never committed went out as silence.
        assert after["underruns"] > before["underruns"]


def test_realtime_without_commits_counts_underruns_and_late_ticks(name):
    with mixed_board(name, clock="realtime") as dev, open_board(dev.uri) as board, \
            DeviceThread(dev):
        board.start(block=80)
        board.wait_tick(timeout=5)
        board.commit()
        t = board.wait_tick(timeout=5)
        while board.stats()["ticks"] < t + 3:       # let the card pass this tick
            time.sleep(0.01)
        board.commit()                                # too late
        st = board.stats()
        assert st["late_ticks"] >= 1
        assert st["underruns"] >= st["late_ticks"]


def test_realtime_card_catches_up_after_a_stall_instead_of_losing_the_time(name):
    """A real card's clock never stops. hwsim's device, descheduled for a while
    (a loaded machine), makes the ticks it owes at once rather than start a
    new schedule: its tick count keeps up with real time, so the host's clock
    (ticks) does not fall seconds behind over a run. Counted in ticks: the
    smallest shortfall over 20 ticks after a 25-tick stall (a late sample only
    makes one sample larger; a lost schedule makes every one ~25)."""
    def stall_once(dev, tick):
        if tick == 5:
            time.sleep(25 * 0.04)

    with mixed_board(name, clock="realtime") as dev, open_board(dev.uri) as board, \
            DeviceThread(dev, stall_once):
        board.start(block=320)                       # 40 ms blocks
        first = board.wait_tick(timeout=5)
        t0 = time.monotonic()
        board.commit()
        shortfall = []
        while True:
            t = board.wait_tick(timeout=5)
            board.commit()
            if t > 5:
                shortfall.append((time.monotonic() - t0) / 0.04 - (t - first))
            if len(shortfall) == 20:
                break
        assert min(shortfall) < 12, shortfall
