"""Scenarios (Poisson arrivals, TOML) and config files: determinism and located errors."""
from __future__ import annotations

import numpy as np
import pytest

from boarddrv.tomlconfig import ConfigError
from hwsim.config import config_from_text, load_config
from hwsim.scenario import ArrivalSpec, Scenario, Target, load_scenario

from worldkit import HOTLINE, make


def test_poisson_mean_rate_and_exponential_gaps():
    spec = ArrivalSpec(Target("b"), rate=0.5, stop=20000.0)
    times = np.array(list(spec.times(np.random.default_rng(1))))
    # 10000 expected; Poisson sd 100: 5 sd either side
    assert 9500 < len(times) < 10500
    gaps = np.diff(times)
    assert gaps.mean() == pytest.approx(2.0, rel=0.05)
    assert np.std(gaps) == pytest.approx(2.0, rel=0.05)        # exponential: sd == mean


def test_arrivals_deterministic_from_seed(hotline_cfg):
    def offered(seed):
        sc = Scenario(seed=seed).poisson("hotline:0-3", rate=0.2, hangup_after=5.0)
        h = make(hotline_cfg, sc)
        t = 0
        while len(h.world.calls) < 6 and t < 200:
            h.run(5)
            t += 5
            for ch in range(4):   # answer whatever rings, hang up when the caller has gone
                line = h.world.lines[ch]
                if line.state == "alerting" and not line.host_offhook:
                    h.send("HOOK", ch, 1)
                elif line.state == "cleared":
                    h.send("HOOK", ch, 0)
        return [(c.offered, c.number, c.channel) for c in h.world.calls]

    a, b, c = offered(3), offered(3), offered(4)
    assert a == b and len(a) >= 6
    assert a != c
    assert all(n.startswith("138") and len(n) == 11 for _, n, _ in a)


def test_hotline_and_e1_example_configs_load():
    import os

    import hwsim
    base = os.path.join(os.path.dirname(hwsim.__file__), "configs")
    hot = load_config(os.path.join(base, "hotline.toml")).board("hotline")
    assert [c.type for c in hot.channels] == ["FXO"] * 4 + ["FXS"] * 4
    assert hot.law == "alaw" and hot.fxo[0].ring_cadence == (1.0, 4.0) and hot.fxo[0].ring_hz == 25.0
    site = load_config(os.path.join(base, "e1-site.toml")).boards[0]
    assert len(site.spans) == 4 and site.nchan == 120
    big = load_config(os.path.join(base, "e1-32.toml")).boards[0]
    assert len(big.spans) == 32 and big.nchan == 960


def _line(text, needle):
    return text.splitlines().index(needle) + 1


@pytest.mark.parametrize("old,new,key,what", [
    ('disconnect = "loop-drop"', 'disconnect = "hangup"', "board[0].fxo[0].disconnect",
     "expected one of loop-drop, battery-reversal, busy-tone, got 'hangup'"),
    ('channels = "2-3"', 'channels = "2-9"', "board[0].fxo[2].channels", "channel 8 out of range 0..7"),
    ('channels = "4-7"', 'channels = "3-7"', "board[0].fxs[0].channels", "channel 3 is already an fxo port"),
    ('callerid = "fsk"', 'callerid_ = "fsk"', "board[0].fxo[0].callerid_", "unknown key (did you mean 'callerid'?)"),
])
def test_config_errors_name_file_line_and_key(old, new, key, what):
    text = HOTLINE.replace(old, new, 1)
    with pytest.raises(ConfigError) as ei:
        config_from_text(text, "site.toml")
    assert str(ei.value) == f"site.toml:{_line(text, new)}: key '{key}': {what}"


def test_config_channel_not_wired():
    text = HOTLINE.replace('channels = "4-7"', 'channels = "4-6"')
    with pytest.raises(ConfigError, match=r"site.toml:\d+: key 'board\[0\]': channel 7 of analog span 0 is neither"):
        config_from_text(text, "site.toml")


def test_scenario_file_loads_and_errors_are_located(tmp_path):
    good = tmp_path / "s.toml"
    good.write_text("""
[scenario]
duration = 60.0
seed = 5
[[caller]]
at = 1.0
line = "hotline:0"
number = "13800138000"
script = [{ after_silence = 1.0, digits = "1" }, { at = 9.0, hangup = true }]
[[arrivals]]
lines = "hotline:0-3"
rate_per_hour = 360
[[agent]]
phones = "hotline:4-7"
answer_after = 1.5
[[fault]]
at = 30.0
kind = "board-removed"
board = "hotline"
""")
    sc = load_scenario(good)
    assert sc.duration == 60.0 and sc.seed == 5
    assert sc.callers[0].script[0].after_silence == 1.0 and sc.callers[0].script[1].hangup
    assert sc.arrivals[0].rate == pytest.approx(0.1) and sc.arrivals[0].lines.chans == (0, 1, 2, 3)
    assert sc.boards() == {"hotline"}
    bad = tmp_path / "bad.toml"
    bad.write_text('[[caller]]\nat = 1.0\nline = "hotline:0"\nscript = [{ at = 2.0, digits = "1x" }]\n')
    with pytest.raises(ConfigError, match=r"bad.toml:4: key 'caller\[0\].script\[0\].digits': expected DTMF"):
        load_scenario(bad)
    bad.write_text('[[caller]]\nat = 1.0\nline = "hotline:6"\n')
    cfg = config_from_text(HOTLINE).boards[0]
    with pytest.raises(ConfigError,
                       match=r"bad.toml:1: key 'caller\[0\]': channel 6 of board 'hotline' is not an FXO line"):
        make(cfg, load_scenario(bad))


def test_example_scenarios_load_against_their_configs():
    import os

    import hwsim
    from hwsim.simtime import SimClock
    from hwsim.world import BoardWorld
    base = os.path.dirname(hwsim.__file__)
    for cfg_name, sc_name in (("hotline.toml", "hotline-morning.toml"), ("e1-site.toml", "e1-alarms.toml")):
        cfg = load_config(os.path.join(base, "configs", cfg_name))
        sc = load_scenario(os.path.join(base, "scenarios", sc_name))
        assert sc.boards() == {b.name for b in cfg.boards}
        for b in cfg.boards:
            BoardWorld(b, SimClock(160), sc.for_board(b.name))   # targets resolve


def test_hotline_morning_runs_with_an_answering_host():
    """Ten simulated minutes of the example scenario with a host that answers
    every ring, rings a phone, and hangs up on far-end clear or busy tone."""
    import os

    import hwsim
    from hwsim.simtime import SimClock
    from hwsim.world import BoardWorld

    from worldkit import Host
    base = os.path.dirname(hwsim.__file__)
    cfg = load_config(os.path.join(base, "configs", "hotline.toml")).boards[0]
    sc = load_scenario(os.path.join(base, "scenarios", "hotline-morning.toml"))
    h = Host(BoardWorld(cfg, SimClock(320), sc.for_board("hotline")))
    states = {}
    while not h.world.ended:
        h.run(ticks=25)
        states[round(h.world.seconds)] = h.world.lines[3].state
        for ch, line in h.world.lines.items():
            if line.state == "alerting" and not line.host_offhook:
                h.send("HOOK", ch, 1)
            elif line.state == "cleared":
                h.send("HOOK", ch, 0)
    h.world.finish()
    calls = h.world.calls
    inbound = [c for c in calls if c.kind == "fxo" and c.direction == "in"]
    # 180/h for ~590 s: about 30 random callers + 2 named ones (seeded: always the same)
    assert 15 < len(inbound) < 50
    assert any(c.number == "13800138000" and c.digits[0]["digits"] == "1" for c in inbound)
    assert "caller" in {c.who_hung_up for c in inbound}
    # line 3 is cut from 300 s to 330 s
    assert states[298] != "cut" and states[302] == states[328] == "cut" and states[332] != "cut"
    assert len({c.channel for c in inbound}) >= 3


def test_e1_load_scenario_runs_on_960_channels():
    """The bench load for two simulated minutes with a host that acknowledges
    and answers every seizure and returns to idle on clear-forward."""
    import os

    import hwsim
    from hwsim.simtime import SimClock
    from hwsim.world import BoardWorld

    from worldkit import Host
    base = os.path.dirname(hwsim.__file__)
    cfg = load_config(os.path.join(base, "configs", "e1-32.toml")).boards[0]
    sc = load_scenario(os.path.join(base, "scenarios", "e1-load.toml"))
    sc.duration = 120.0
    h = Host(BoardWorld(cfg, SimClock(320), sc.for_board("e1x32")))
    peak = 0
    while not h.world.ended:
        seen = len(h.events)
        h.run(ticks=1)
        for _, e in h.events[seen:]:
            if e.kind == "CAS" and e.value == 0b0011:
                h.send("CAS", e.chan, 0b1111)
                h.send("CAS", e.chan, 0b0111)
            elif e.kind == "CAS" and e.value == 0b1011:
                h.send("CAS", e.chan, 0b1011)
        peak = max(peak, len(h.world.live))
    calls = h.world.calls
    # 2/s for 120 s: ~240 arrivals (sd ~15); nearly all still up (mean hold 120 s)
    assert 190 < len(calls) + len(h.world.live) < 290
    assert peak > 150 and len({c for c in h.world.live}) == len(h.world.live)
    assert all(c.kind == "e1" and c.answer is not None for c in calls)
    assert {c.who_hung_up for c in calls} == {"caller"}


def test_scenario_naming_an_unknown_board_is_located(tmp_path):
    from hwsim.simulator import Simulator
    bad = tmp_path / "sc.toml"
    bad.write_text('[scenario]\nseed = 1\n\n[[agent]]\nphones = "hotlin:4"\n')
    with pytest.raises(ConfigError,
                       match=r"sc.toml:4: key 'agent\[0\]': no board 'hotlin' in hot.toml \(boards: hotline\)"):
        Simulator(config_from_text(HOTLINE, "hot.toml"), str(bad))
