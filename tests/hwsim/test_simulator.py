"""The simulator on real shared memory, driven by a real boarddrv host."""
from __future__ import annotations

import itertools
import os

import numpy as np
import pytest

from boarddrv import BoardLost, EventKind, open_board
from hwsim.config import config_from_text
from hwsim.parties import Action
from hwsim.scenario import Scenario
from hwsim.simulator import Simulator

from sigtools import on_runs, peak_freqs
from worldkit import E1, HOTLINE

_n = itertools.count()


def unique(text: str, old: str) -> tuple[str, str]:
    """Board names are global (/dev/shm): make ours unique to this test process."""
    name = f"hwt{os.getpid()}n{next(_n)}"
    return text.replace(f'name = "{old}"', f'name = "{name}"'), name


class Driver:
    """A host loop: ticks, events and rx kept per tick."""

    def __init__(self, board):
        self.b = board
        self.events = []
        self.rx = {}

    def run(self, ticks, tx=None, keep=()):
        for _ in range(ticks):
            t = self.b.wait_tick(timeout=5.0)
            self.events += self.b.events()
            for ch in keep:
                self.rx.setdefault(ch, []).append(self.b.rx[ch].copy())
            if tx is not None:
                tx(t, self.b.tx)
            self.b.commit()

    def until(self, pred, limit=2000, **kw):
        for _ in range(limit):
            if pred():
                return
            self.run(1, **kw)
        raise AssertionError("condition not reached")

    def kinds(self, chan):
        return [e.kind for e in self.events if e.chan == chan]

    def heard(self, ch):
        return np.concatenate(self.rx[ch])


@pytest.fixture
def hotline():
    text, name = unique(HOTLINE, "hotline")
    cfg = config_from_text(text)
    def make(scenario_fn):
        sc = scenario_fn(name)
        return Simulator(cfg, sc).start(), name
    sims = []
    def factory(scenario_fn=lambda name: None):
        sim, n = make(scenario_fn)
        sims.append(sim)
        return sim, n
    yield factory
    for s in sims:
        s.stop()
    assert not os.path.exists(f"/dev/shm/voiceboard.{name}")


def test_analog_board_every_event_and_control(hotline):
    sim, name = hotline(lambda n: Scenario()
                        .caller(0.5, f"{n}:0", "13800138000", script=[Action(after=0.5, digits="7")],
                                hangup_after=2.0)
                        .caller(0.5, f"{n}:1", "139", hangup_after=1.0)
                        .agent(f"{n}:4", answer_after=1.0,
                               script=[Action(at=0.5, flash=True), Action(after=0.5, hangup=True)]))
    with open_board(f"sim://{name}") as b:
        assert [c.type.name for c in b.channels] == ["FXO"] * 4 + ["FXS"] * 4
        b.start(block=160)
        d = Driver(b)
        d.until(lambda: EventKind.RING_START in d.kinds(0) and EventKind.RING_START in d.kinds(1))
        b.hook(0, "offhook")
        b.hook(1, "offhook")
        b.ring(4, True)
        t = np.arange(160) / 8000
        tone = (4000 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)

        def tx(tick, out):
            out[0] = tone
        d.run(200, tx=tx, keep=(0,))
        b.ring(4, False)
        d.run(100)
        assert d.kinds(0) == [EventKind.RING_START, EventKind.RING_STOP, EventKind.LOOP_DROP,
                              EventKind.LOOP_RESTORE]
        assert d.kinds(1) == [EventKind.RING_START, EventKind.RING_STOP, EventKind.BATTERY_REVERSAL]
        assert d.kinds(4) == [EventKind.HOOK_OFF, EventKind.FLASH, EventKind.HOOK_ON]
        runs = on_runs(d.heard(0))
        assert len(runs) == 1 and runs[0][1] == pytest.approx(0.1, abs=0.02)      # the caller's '7'
        st = b.channel_status(0)
        assert st["hook"] in ("offhook", 1)
        b.hook(0, "onhook")
        b.hook(1, "onhook")
        d.run(2)
    calls = {c.channel: c for c in sim.calls}
    assert calls[0].who_hung_up == "caller" and calls[0].digits[0]["digits"] == "7"
    assert peak_freqs(calls[0].heard) == [pytest.approx(1000, abs=5)]            # it heard our tone
    assert calls[0].heard_seconds == pytest.approx(2.0, abs=0.05)
    assert calls[4].who_hung_up == "agent" and calls[4].flashes


def test_loopback_and_xconnect_through_the_card(hotline):
    sim, name = hotline()
    with open_board(f"sim://{name}") as b:
        b.start(block=80)
        d = Driver(b)
        b.loopback(2, True)
        d.run(3, tx=lambda t, out: out.__setitem__(2, np.arange(80)), keep=(2,))
        assert np.all(d.heard(2)[-80:] == np.arange(80))
        b.loopback(2, False)
        d.run(3, keep=(2,))
        assert not np.any(d.heard(2)[-80:])
        b.xconnect(0, 5)
        d.run(2)
        assert sim.worlds[name].peer(0) == 5 and sim.worlds[name].peer(5) == 0
        b.xdisconnect(0)
        d.run(2)
        assert sim.worlds[name].peer(0) == -1 and sim.worlds[name].peer(5) == -1


def test_e1_cas_alarms_counters_and_board_removed():
    text, name = unique(E1, "e1site")
    sc = (Scenario().fault(0.2, "cas", f"{name}:5", abcd=0b0011)
          .fault(0.4, "alarm-set", f"{name}:1", alarm="LOS")
          .fault(0.6, "counter", f"{name}:1", counter="crc4", n=3)
          .fault(0.8, "alarm-clear", f"{name}:1", alarm="LOS")
          .fault(1.0, "board-removed", target=name))
    sim = Simulator(config_from_text(text), sc).start()
    try:
        with open_board(f"sim://{name}") as b:
            assert len(b.spans) == 2 and [c.timeslot for c in b.channels[14:17]] == [15, 17, 18]
            b.start(block=160)
            b.set_cas(7, 0b0011)
            d = Driver(b)
            d.run(35)
            assert b.span_status(1)["alarms"] and b.span_status(1)["counters"]["crc4"] == 3
            with pytest.raises(BoardLost):
                d.run(100)
        ev = [(e.kind, e.chan, e.span, e.value) for e in d.events]
        assert (EventKind.CAS, 5, 0, 0b0011) in ev
        assert ev.index((EventKind.ALARM_SET, -1, 1, 1)) < ev.index((EventKind.ALARM_CLEAR, -1, 1, 1))
        assert ev[-1][0] == EventKind.BOARD_LOST
        assert sim.worlds[name].spans[0].cas_tx[7] == 0b0011
    finally:
        sim.stop()


def test_one_simulator_serves_several_boards_each_with_its_own_host():
    text_a, a = unique(HOTLINE, "hotline")
    text_b, b_name = unique(E1, "e1site")
    cfg = config_from_text(text_a + text_b)
    sc = Scenario().caller(0.0, f"{a}:3", "1", give_up=None).fault(0.1, "cas", f"{b_name}:0", abcd=0b0011)
    with Simulator(cfg, sc) as sim:
        assert sim.ready_info()["boards"] == {a: f"sim://{a}", b_name: f"sim://{b_name}"}
        with open_board(f"sim://{a}") as ba, open_board(f"sim://{b_name}") as bb:
            ba.start(block=160)
            bb.start(block=320)
            da, db = Driver(ba), Driver(bb)
            for _ in range(10):          # interleave the two hosts: the boards tick independently
                da.run(1)
                db.run(1)
            assert da.kinds(3) == [EventKind.RING_START]
            assert db.kinds(0) == [EventKind.CAS]
            assert sim.worlds[a].clock.block == 160 and sim.worlds[b_name].clock.block == 320


def test_scenario_duration_ends_the_run_and_closes_live_calls(tmp_path):
    text, name = unique(HOTLINE, "hotline")
    sc = Scenario(duration=0.4).caller(0.0, f"{name}:2", "1", give_up=None)
    sim = Simulator(config_from_text(text), sc, report_dir=tmp_path / "rep").start()
    try:
        with open_board(f"sim://{name}") as b:
            b.start(block=160)
            d = Driver(b)
            d.run(18)          # lockstep: the device cannot be past tick 19 yet
            assert not sim.ended
            d.run(3)
            assert sim.wait(timeout=10.0)       # a guard against hanging; the end is tick 20
    finally:
        path = sim.stop()
    import json
    rep = json.load(open(path))
    assert rep["ticks"][name] >= 20 and rep["calls_by_end"] == {"end": 1}
