"""[r2] in the server config: trunk groups, numbers, release control; errors name file, line and key."""
from __future__ import annotations

from pathlib import Path

import pytest

from boarddrv.tomlconfig import ConfigError
from voiceserver.config.server import load_config
from voiceserver.r2.actions import Cause

CONFIG = Path(__file__).parent / "configs" / "server-r2.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "server.toml"
    path.write_text(text)
    return path


def test_a_trunk_group_is_inbound_and_an_outbound_hunt_group_with_its_numbers():
    cfg = load_config(CONFIG)
    (group,) = cfg.r2
    assert group.name == "ct" and group.variant.name == "cn" and group.variant.line.cd == "11"
    assert group.variant.line.release_control == "mutual" and group.answer_alarm_ms == 20_000
    assert [c.chan for c in cfg.channels.inbound] == [1, 2, 3, 4]
    assert [c.chan for c in cfg.channels.outbound["ct"]] == [1, 2, 3, 4]
    assert group.decide("95566", "123", "national_subscriber") == (True, Cause.NORMAL, True, "hotline", 1)
    assert group.decide("8000", "123", "national_subscriber") == (True, Cause.NORMAL, False, "extension", 2)
    assert group.decide("999", "123", "national_subscriber")[:2] == (False, Cause.UNALLOCATED)
    assert group.decide("95566", "123", "x", screen=lambda ani: False)[:2] == (False, Cause.BUSY)


def test_overrides_change_the_variant_for_the_group(tmp_path):
    text = CONFIG.read_text().replace('answer_alarm = 20', 'answer_alarm = 15\ndefault_flow = "hotline"')
    text += '\n[r2.groups.ct.override.timers]\nmf_back_cycle = 3000\n[r2.groups.ct.override.group_b]\nunallocated = 6\n'
    (group,) = load_config(write(tmp_path, text)).r2
    assert group.variant.timers.mf_back_cycle == 3000 and group.variant.group_b.unallocated == 6
    assert group.answer_alarm_ms == 15_000 and group.decide("1", "", "")[3] == "hotline"


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize("old,new,needle,message", [
    ('release_control = "mutual"', 'release_control = "both"', "release_control",
     "key 'r2.groups.ct.release_control': expected one of mutual, calling, called, got 'both'"),
    ('variant = "cn"', 'variant = "zz"', "variant =", "key 'r2.groups.ct.variant': expected one of"),
    ('channels = "e1:1-4"', 'channels = "e2:1-4"', "channels =", "no board named 'e2'"),
    ('answer_alarm = 20', 'answer_alarm = 0', "answer_alarm", "expected between 1.0 and 600.0"),
    ('ani = "01062345678"', 'ani = "0106x"', "ani =", "key 'r2.groups.ct.ani': expected up to"),
    ('flow = "hotline"', 'flow = "hotlin"', 'flow = "hotlin"', "no such flow 'hotlin'"),
    ('stage = 2', 'stage = 3', "stage = 3", "expected between 1 and 2"),
])
def test_errors_name_the_file_line_and_key(tmp_path, old, new, needle, message):
    text = CONFIG.read_text().replace(old, new)
    assert text != CONFIG.read_text()
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert f"{path}:{line_of(text, needle)}:" in str(err.value) and message in str(err.value), str(err.value)


def test_a_two_stage_number_needs_a_flow_that_collects_digits(tmp_path):
    text = CONFIG.read_text().replace('flow = "extension"', 'flow = "hotline"')
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match="two-stage number answers and collects an extension") as err:
        load_config(path)
    assert f"{path}:{line_of(text, 'stage = 2')}:" in str(err.value)


def test_a_variant_override_error_names_its_line(tmp_path):
    text = CONFIG.read_text() + '\n[r2.groups.ct.override.group_b]\nbusy = 22\n'
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert f"{path}:{line_of(text, 'busy = 22')}:" in str(err.value) and "busy" in str(err.value)


def test_an_agent_phone_cannot_be_an_e1_trunk(tmp_path):
    text = CONFIG.read_text().replace("[prompts]", '[channels]\nagents = "e1:4"\n\n[prompts]')
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match="e1:4 is both an agent phone and an E1 trunk"):
        load_config(path)
