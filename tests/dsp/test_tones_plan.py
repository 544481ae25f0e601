"""Tone plans as data: the built-in zones hold the published values; bad files get located errors."""
from __future__ import annotations

import pytest

from dsp.tomlconfig import ConfigError
from dsp.tones import CallProgressDetector, TonePlan, builtin_zones


def test_builtin_zones_load_and_have_the_basic_tones():
    assert {"cn", "us", "uk", "eu"} <= set(builtin_zones())
    for zone in builtin_zones():
        plan = TonePlan.load(zone)
        assert {"dial", "busy", "ringback", "congestion"} <= set(plan.tones), zone
        for t in plan.tones.values():
            assert len(t.cadence) % 2 == 0 and all(d > 0 for d in t.cadence)
            assert -40 <= t.level_dbm0 <= 0


def test_china_plan_matches_the_national_plan():
    p = TonePlan.load("cn")
    expect = {
        "dial": ((450,), ()),
        "busy": ((450,), (0.35, 0.35)),
        "ringback": ((450,), (1.0, 4.0)),
        "congestion": ((450,), (0.7, 0.7)),
        "call_waiting": ((450,), (0.4, 4.0)),
        "record_warning": ((950,), (0.4, 10.0)),
        "special_information": ((450,), (0.1, 0.1) * 3 + (0.4, 0.4)),
        "stutter_dial": ((450, 425), ()),
    }
    for name, (freqs, cad) in expect.items():
        assert p[name].freqs == freqs and p[name].cadence == cad, name


def test_other_zones_key_values():
    us, uk, eu = TonePlan.load("us"), TonePlan.load("uk"), TonePlan.load("eu")
    assert us["dial"].freqs == (350, 440) and us["ringback"].cadence == (2.0, 4.0)
    assert us["busy"].freqs == (480, 620) and us["busy"].cadence == (0.5, 0.5)
    assert us["congestion"].cadence == (0.25, 0.25)
    assert uk["dial"].freqs == (350, 450) and uk["ringback"].cadence == (0.4, 0.2, 0.4, 2.0)
    assert uk["busy"].cadence == (0.375, 0.375)
    assert uk["congestion"].cadence == (0.4, 0.35, 0.225, 0.525)
    assert eu["dial"].freqs == (425,) and eu["busy"].cadence == (0.5, 0.5)
    assert eu["ringback"].cadence == (1.0, 4.0) and eu["congestion"].cadence == (0.25, 0.25)


def test_aliases():
    assert TonePlan.load("etsi").zone == "eu"
    assert TonePlan.load("china").zone == "cn"


def test_unknown_zone_names_the_zone():
    with pytest.raises(ConfigError, match=r"key 'mars': no such tone zone \(zones here: cn, us"):
        TonePlan.load("mars")


def test_unknown_tone_name_lists_the_plan():
    with pytest.raises(KeyError, match="has no tone 'howl'"):
        TonePlan.load("cn")["howl"]


@pytest.mark.parametrize("body, key, message", [
    ('busy = { freqs = [450], cadence = [0.35] }', "site.tones.busy.cadence", "even count"),
    ('busy = { freqs = [4500], cadence = [] }', "site.tones.busy.freqs[0]", "outside 20..4000"),
    ('busy = { freqs = [], cadence = [] }', "site.tones.busy.freqs", "1 to 4 frequencies"),
    ('busy = { freq = [450], cadence = [] }', "site.tones.busy.freq", "did you mean 'freqs'"),
    ('busy = { freqs = ["x"], cadence = [] }', "site.tones.busy.freqs[0]", "expected a number"),
    ('busy = { freqs = [450], cadence = [0.35, 100] }', "site.tones.busy.cadence[1]", "0.02..60"),
])
def test_bad_plan_errors_name_file_line_and_key(tmp_path, body, key, message):
    f = tmp_path / "site.toml"
    f.write_text(f'[site]\nname = "x"\n[site.tones]\n{body}\n')
    with pytest.raises(ConfigError) as ei:
        TonePlan.load("site", f)
    err = ei.value
    assert err.file == str(f) and err.line == 4 and err.key == key
    assert message in str(err)


def test_site_plan_inherits_a_zone_and_overrides_a_tone(tmp_path):
    # A carrier whose busy tone is 0.5/0.5 and which adds a tone of its own.
    f = tmp_path / "carrier.toml"
    f.write_text('[acme]\nbase = "cn"\n[acme.tones]\n'
                 'busy = { freqs = [450], cadence = [0.5, 0.5] }\n'
                 'confirm = { freqs = [1400], cadence = [0.2, 0.2], level_dbm0 = -15 }\n')
    p = TonePlan.load("acme", f)
    assert p["busy"].cadence == (0.5, 0.5)
    assert p["ringback"].cadence == (1.0, 4.0)       # inherited
    assert p["busy"].level_dbm0 == TonePlan.load("cn")["busy"].level_dbm0
    assert p["confirm"].level_dbm0 == -15.0
    bad = tmp_path / "bad.toml"
    bad.write_text('[acme]\nbase = "xx"\n')
    with pytest.raises(ConfigError, match="key 'acme.base': no built-in zone 'xx'"):
        TonePlan.load("acme", bad)


def test_detector_refuses_a_tone_it_cannot_resolve():
    # 5 Hz apart would need a 400 ms window; 25 Hz (cn stutter dial) is resolved over 80 ms
    plan = TonePlan.from_toml('[z.tones]\nbeat = { freqs = [450, 445], cadence = [] }\n', "z")
    with pytest.raises(ValueError, match="445 and 450 Hz are closer than 8 frames"):
        CallProgressDetector(1, plan)
    plan = TonePlan.from_toml('[z.tones]\nbeat = { freqs = [450, 445], cadence = [], detect = false }\n'
                              'dial = { freqs = [450], cadence = [] }\n', "z")
    CallProgressDetector(1, plan)  # generated only: loads
    assert TonePlan.load("cn")["stutter_dial"].detect
