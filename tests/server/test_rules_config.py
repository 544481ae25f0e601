"""[recording] in the server config: a rules file next to it, or the rules inline."""
from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from boarddrv.tomlconfig import ConfigError
from voiceserver.cli.rules import main as rules_main
from voiceserver.config.server import load_config, reload_config
from voiceserver.recording.rules import CallFacts

MINIMAL = """\
[[boards]]
uri = "sim://hotline"

[channels]
inbound = "hotline:0-3"
agents = "hotline:4-7"

[ivr]
default_flow = "day"

[ivr.flows.day]
start = "main"

[ivr.menus.main]
greeting = ["welcome"]

[ivr.menus.main.options]
"1" = { action = "queue", queue = "service" }
"""

MON = dt.datetime(2026, 11, 23, 10, tzinfo=ZoneInfo("Asia/Shanghai"))


def write(tmp_path: Path, text: str, name: str = "server.toml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text), encoding="utf-8")
    return p


def test_no_recording_section_means_no_rules(tmp_path: Path):
    assert load_config(write(tmp_path, MINIMAL)).recording is None


def test_rules_file_relative_to_the_config_uses_the_server_numbering(tmp_path: Path):
    (tmp_path / "rec").mkdir()
    write(tmp_path, '[exclude]\nnumbers = ["6512 3456"]\nagents = "1-3,!2"\n', "rec/rules.toml")
    cfg = load_config(write(tmp_path, MINIMAL + '\n[numbering]\nlocal_area = "10"\n'
                                                '\n[recording]\nrules = "rec/rules.toml"\n'))
    r = cfg.recording
    assert r is not None and r.file == str(tmp_path / "rec" / "rules.toml")
    assert r.plan.local_area == "10"
    # "6512 3456" in the rules is Beijing's local number: the same as 010 6512 3456
    assert not r.decide(CallFacts("c1", caller="01065123456"), MON).record
    assert r.decide(CallFacts("c1", agent="2"), MON).record
    d = r.decide(CallFacts("c1", agent="3"), MON)
    assert not d.record and d.rule.key == "exclude.agents" and d.rule.line == 3


def test_inline_rules_have_server_file_lines_and_full_keys(tmp_path: Path):
    text = MINIMAL + textwrap.dedent("""
        [recording]
        min_seconds = 3
        [recording.exclude]
        agents = "1001"
        [[recording.window]]
        name = "day"
        days = "mon-fri"
        from = "09:00"
        to = "09:00"
        """)
    e = pytest.raises(ConfigError, load_config, write(tmp_path, text)).value
    lines = text.splitlines()
    assert e.key == "recording.window[0].to" and e.line == lines.index('to = "09:00"') + 1
    cfg = load_config(write(tmp_path, text.replace('to = "09:00"', 'to = "18:00"')))
    r = cfg.recording
    d = r.decide(CallFacts("c1", agent="1001"), MON)
    assert not d.record and d.rule.key == "recording.exclude.agents"
    assert d.rule.line == lines.index('agents = "1001"') + 1 and d.rule.file == cfg.file
    assert r.keep(r.decide(CallFacts("c2"), MON), 2).rule.key == "recording.min_seconds"


def test_recording_errors_and_warnings(tmp_path: Path):
    e = pytest.raises(ConfigError, load_config,
                      write(tmp_path, MINIMAL + '\n[recording]\nrules = "nope.toml"\n')).value
    assert e.key == "recording.rules" and "does not exist" in e.message
    e = pytest.raises(ConfigError, load_config,
                      write(tmp_path, MINIMAL + '\n[recording]\nrules = "r.toml"\nformat = "x"\n')
                      ).value
    assert e.key == "recording.rules" and "not both" in e.message
    e = pytest.raises(ConfigError, load_config,
                      write(tmp_path, MINIMAL + '\n[recording]\nlayuot = "mono"\n')).value
    assert e.key == "recording.layuot" and "did you mean 'layout'?" in e.message
    write(tmp_path, "[sampling]\noutbound = 0\n", "r.toml")
    cfg = load_config(write(tmp_path, MINIMAL + '\n[recording]\nrules = "r.toml"\n'))
    assert any("sampling outbound is 0%" in w and "r.toml:2: key 'sampling.outbound'" in w
               for w in cfg.warnings)


def test_a_bad_rules_file_fails_a_reload_and_keeps_the_running_config(tmp_path: Path):
    rules = write(tmp_path, '[exclude]\nagents = "1001"\n', "r.toml")
    path = write(tmp_path, MINIMAL + '\n[recording]\nrules = "r.toml"\n')
    cfg = load_config(path)
    rules.write_text('[exclude]\nagents = "1001-"\n')
    same, err = reload_config(path, cfg)
    assert same is cfg and err is not None and err.file == str(rules) and err.line == 2


def test_rules_check_accepts_a_server_config(tmp_path: Path, capsys):
    write(tmp_path, "[sampling]\ninbound = 0\n", "r.toml")
    path = write(tmp_path, MINIMAL + '\n[recording]\nrules = "r.toml"\n')
    assert rules_main(["check", str(path)]) == 0
    out = capsys.readouterr().out
    assert "r.toml:2: key 'sampling.inbound': warning: sampling inbound is 0%" in out
    assert rules_main(["check", str(write(tmp_path, MINIMAL, "plain.toml"))]) == 1
    assert "has no [recording] section" in capsys.readouterr().out
