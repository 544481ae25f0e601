"""Glare on an FXO line: a caller armed with `glare = true` seizes the line at the
moment the host goes off-hook on it to call out (sans-I/O world)."""
from __future__ import annotations

import pytest

from boarddrv.tomlconfig import ConfigError
from hwsim.parties import Action
from hwsim.scenario import Scenario, load_scenario

from worldkit import make


def test_host_seizure_meets_the_armed_caller(hotline_cfg):
    sc = Scenario().caller(1.0, "hotline:2", "13911112222", glare=True,
                           script=[Action(after=1.0, hangup=True)])
    h = make(hotline_cfg, sc)
    h.run(3)                                   # armed at 1 s; nothing happens until a seizure
    assert h.kinds(2) == []
    h.send("HOOK", 2, 1)                       # the host seizes line 2 to call out at tick 151
    h.run(2)
    # no dial tone: the exchange's ring starts at once, the off-hook trips it 0.2 s later
    assert h.kinds(2) == [(151, "RING_START"), (161, "RING_STOP")]
    h.send("HOOK", 2, 0)
    h.run(1)
    call, = h.world.calls
    assert call.direction == "in" and call.glare and call.number == "13911112222"
    assert call.ring == [3.02] and call.answer == 3.22 and call.who_hung_up == "caller"
    assert call.dialled is None and "glare" in call.notes[0]


def test_armed_glare_caller_does_not_touch_other_lines_and_gives_up(hotline_cfg):
    sc = Scenario().caller(0.5, "hotline:2", "135", glare=True, give_up=2.0)
    h = make(hotline_cfg, sc)
    h.send("HOOK", 3, 1)                       # another line: ordinary dial tone, no ring
    h.run(4)
    assert h.kinds(3) == [] and h.kinds(2) == []
    assert h.world.lines[3].state == "dialtone"
    gave_up, = h.world.calls
    assert gave_up.channel == 2 and gave_up.who_hung_up == "abandoned" and gave_up.answer is None
    h.send("HOOK", 2, 1)                       # disarmed: an ordinary seizure now
    h.run(1)
    assert h.world.lines[2].state == "dialtone"


def test_glare_caller_in_a_scenario_file_needs_one_line(tmp_path):
    ok = tmp_path / "ok.toml"
    ok.write_text('[[caller]]\nat = 1.0\nline = "hotline:1"\nglare = true\n')
    assert load_scenario(ok).callers[0].glare
    bad = tmp_path / "bad.toml"
    bad.write_text('[[caller]]\nat = 1.0\nline = "hotline:0-1"\nglare = true\n')
    with pytest.raises(ConfigError, match=r"bad.toml:3: key 'caller\[0\].line': a glare caller needs one line"):
        load_scenario(bad)
