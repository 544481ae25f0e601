"""The board contract on any URI: `make test-hardware URI=dahdi://` on a machine with a card.

Like python-can's back-to-back tests, these run only when VB_TEST_URI names a
board (skipped otherwise). They touch nothing outside the board: a loopback
on the card, hook and CAS bits that return to idle at the end. CI runs them
on `dahdi://` through the DAHDI emulator (tests/board/test_dahdi_backend.py).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

URI = os.environ.get("VB_TEST_URI", "")
pytestmark = pytest.mark.skipif(not URI, reason="set VB_TEST_URI (make test-hardware URI=...)")
BLOCK = 160
LIMIT = 5.0           # seconds for one tick: a guard against a dead card, not a timing check


@pytest.fixture
def board():
    from boarddrv import open_board
    with open_board(URI) as b:
        yield b


def first(board, *types: str) -> int | None:
    return next((c.index for c in board.channels if c.type.name in types), None)


def run_ticks(board, n: int, fill=None) -> list[np.ndarray]:
    got = []
    for _ in range(n):
        board.wait_tick(LIMIT)
        if fill is not None:
            fill(board.tx)
        got.append(board.rx.copy())
        board.commit()
    return got


def test_layout_is_consistent(board):
    assert board.info.nspans == len(board.spans) >= 1
    assert board.info.nchan == len(board.channels) >= 1
    nxt = 0
    for s in board.spans:
        assert s.first_chan == nxt
        chans = board.channels[s.first_chan:s.first_chan + s.nchan]
        assert all(c.span == s.index for c in chans)
        kinds = {"analog": {"FXO", "FXS"}, "e1": {"E1_CAS", "E1_BEARER", "E1_DCHAN"}}[s.kind]
        assert {c.type.name for c in chans} <= kinds
        nxt += s.nchan
    for s in board.spans:
        st = board.span_status(s.index)
        assert set(st["counters"]) == {"crc4", "ebit", "fas", "bpv", "slips"}


def test_scan_shows_the_board(board):
    r = subprocess.run([sys.executable, "-m", "boarddrv.cli", "scan", "--json", URI],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    desc = json.loads(r.stdout)["boards"][0]
    assert desc["nchan"] == board.info.nchan and len(desc["spans"]) == board.info.nspans


def test_ticks_come_one_after_another(board):
    board.start(BLOCK)
    ticks = []
    for _ in range(30):
        ticks.append(board.wait_tick(LIMIT))
        assert board.rx.shape == (board.info.nchan, BLOCK)
        board.commit()
    assert ticks == list(range(ticks[0], ticks[0] + 30))
    assert board.stats()["ticks"] >= 30


def test_loopback_returns_what_was_sent(board):
    chan = first(board, "FXO", "FXS", "E1_CAS", "E1_BEARER")
    board.start(BLOCK)
    board.loopback(chan, True)
    t = np.arange(BLOCK)
    tone = (8000 * np.sin(2 * np.pi * 1000 * t / 8000)).astype(np.int16)   # 1 kHz: a whole cycle per 8 samples

    def send(tx):
        tx[chan] = tone
    got = run_ticks(board, 40, send)
    board.loopback(chan, False)
    run_ticks(board, 2)
    heard = np.concatenate([g[chan] for g in got[-10:]]).astype(np.float64)
    assert np.sqrt(np.mean(heard ** 2)) > 2000, "the tone did not come back through the loopback"
    others = [c.index for c in board.channels if c.index != chan]
    if others:
        assert max(np.abs(g[others[0]]).max() for g in got[-10:]) < 2000 * 4


def test_second_host_is_refused(board):
    from boarddrv import BoardBusy, open_board
    board.start(BLOCK)
    run_ticks(board, 2)
    with open_board(URI) as again:
        with pytest.raises(BoardBusy):
            again.start(BLOCK)


def test_fxo_hook_shows_in_status(board):
    chan = first(board, "FXO")
    if chan is None:
        pytest.skip("no FXO port")
    board.start(BLOCK)
    board.hook(chan, "offhook")
    run_ticks(board, 3)
    assert board.channel_status(chan)["hook"] is True
    board.hook(chan, "onhook")
    run_ticks(board, 3)
    assert board.channel_status(chan)["hook"] is False


def test_cas_bits_show_in_status(board):
    chan = first(board, "E1_CAS")
    if chan is None:
        pytest.skip("no E1 CAS channel")
    board.start(BLOCK)
    board.set_cas(chan, 0b1101)
    run_ticks(board, 3)
    assert board.channel_status(chan)["cas_tx"] == 0b1101
    board.set_cas(chan, 0b1011)
    run_ticks(board, 3)
