"""Server config: errors name the file, line and key; reload keeps the old config."""
from __future__ import annotations

import datetime as dt
import textwrap
import tomllib
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest
import soundfile as sf

from boarddrv.tomlconfig import ConfigError, ConfigErrors
from voiceserver.config.server import load_config, reload_config
from voiceserver.ivr.blacklist import BlockAction
from voiceserver.ivr.flows import (
    Hangup,
    LookupAction,
    Play,
    Prompt,
    QueueAction,
    RefAction,
    Say,
    SubmenuAction,
    TransferAction,
)

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "voiceserver" / "configs" / "demo.toml"
SH = ZoneInfo("Asia/Shanghai")

MINIMAL = """\
[[boards]]
uri = "sim://hotline"

[channels]
inbound = "hotline:0-3"
agents = "hotline:4-7"

[channels.outbound]
pstn = "hotline:0-3"

[ivr]
default_flow = "day"

[ivr.flows.day]
start = "main"

[ivr.menus.main]
greeting = ["welcome"]

[ivr.menus.main.options]
"1" = { action = "submenu", menu = "main" }
"2" = { action = "queue", queue = "service" }
"""


def write(tmp_path: Path, text: str, name: str = "server.toml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text), encoding="utf-8")
    return p


def error_of(tmp_path: Path, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, text))
    return exc.value


def line_of(text: str, needle: str) -> int:
    for i, line in enumerate(textwrap.dedent(text).splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError(needle)


def test_minimal_loads(tmp_path):
    cfg = load_config(write(tmp_path, MINIMAL))
    assert cfg.boards[0].name == "hotline" and cfg.boards[0].uri == "sim://hotline"
    assert cfg.channels.outbound["pstn"][0] == ("hotline", 0)
    assert cfg.prompts.default_lang == "zh"
    assert cfg.ivr.flows["day"].lang == "zh"
    menu = cfg.ivr.menus["main"]
    assert menu.collect.max_digits == 1 and menu.collect.choices == ("1", "2")
    assert cfg.flow_at(dt.datetime(2026, 1, 1, tzinfo=SH)) == "day"
    assert cfg.warnings == ()


def test_unknown_action_did_you_mean_with_line(tmp_path):
    text = MINIMAL.replace('"1" = { action = "submenu"', '"1" = { action = "sub_menu"')
    err = error_of(tmp_path, text)
    assert str(err) == (f"{tmp_path / 'server.toml'}:{line_of(text, 'sub_menu')}: key "
                        f"'ivr.menus.main.options.1': unknown action 'sub_menu' "
                        f"(did you mean 'submenu'?)")


def test_missing_menu_reference(tmp_path):
    text = MINIMAL.replace('menu = "main" }', 'menu = "mian" }')
    err = error_of(tmp_path, text)
    assert err.line == line_of(text, '"mian"')
    assert err.key == "ivr.menus.main.options.1.menu"
    assert "no such menu 'mian' (did you mean 'main'?)" in err.message


def test_unknown_section_named(tmp_path):
    text = MINIMAL + '\n[queuez]\nstrategy = "ring-all"\n'
    err = error_of(tmp_path, text)
    assert err.line == line_of(text, "[queuez]")
    assert "unknown section [queuez]" in err.message
    err = error_of(tmp_path, MINIMAL + "\n[schedul]\n")
    assert "did you mean 'schedule'" in err.message


def test_unknown_key_in_menu(tmp_path):
    text = MINIMAL.replace('greeting = ["welcome"]', 'greeting = ["welcome"]\nretrys = 3')
    err = error_of(tmp_path, text)
    assert err.line == line_of(text, "retrys") and err.key == "ivr.menus.main.retrys"
    assert "did you mean 'retries'" in err.message


def test_transfer_needs_known_trunk_group(tmp_path):
    text = MINIMAL.replace('"2" = { action = "queue", queue = "service" }',
                           '"2" = { action = "transfer", number = "95588", trunk = "pstm" }')
    err = error_of(tmp_path, text)
    assert err.key == "ivr.menus.main.options.2.trunk" and err.line == line_of(text, "pstm")
    assert "did you mean 'pstn'" in err.message


def test_bad_channel_ranges_and_overlap(tmp_path):
    err = error_of(tmp_path, MINIMAL.replace('agents = "hotline:4-7"', 'agents = "hotline:3-7"'))
    assert err.key == "channels.agents" and "both an agent phone and a trunk" in err.message
    err = error_of(tmp_path, MINIMAL.replace('inbound = "hotline:0-3"', 'inbound = "hotlin:0-3"'))
    assert "no board named 'hotlin' (did you mean 'hotline'?)" in err.message
    err = error_of(tmp_path, MINIMAL.replace('inbound = "hotline:0-3"', 'inbound = "hotline:3-0"'))
    assert "runs backwards" in err.message


def test_schedule_errors_located(tmp_path):
    base = MINIMAL.replace('[ivr]\ndefault_flow = "day"\n', "") + textwrap.dedent("""
        [ivr.flows.night]
        start = "main"

        [schedule]
        day_flow = "day"
        night_flow = "night"
        hours = [
          { days = "mon-fri", from = "09:00", to = "18:00" },
          { days = "sat", from = "9:00", to = "12:00" },
        ]
        holidays = ["2026-10-01..2026-10-07", "2026-13-01"]
        """)
    err = error_of(tmp_path, base)
    assert err.key == "schedule.hours[1].from" and err.line == line_of(base, '"9:00"')
    fixed = base.replace('"9:00"', '"09:00"')
    err = error_of(tmp_path, fixed)
    assert err.key == "schedule.holidays[1]" and "2026-10-01" in err.message
    cfg = load_config(write(tmp_path, fixed.replace(', "2026-13-01"', "")))
    assert cfg.flow_at(dt.datetime(2026, 10, 2, 10, tzinfo=SH)) == "night"
    assert cfg.flow_at(dt.datetime(2026, 10, 8, 10, tzinfo=SH)) == "day"
    err = error_of(tmp_path, fixed.replace('night_flow = "night"', 'night_flow = "nite"'))
    assert err.key == "schedule.night_flow" and "did you mean 'night'" in err.message
    err = error_of(tmp_path, fixed.replace('day_flow = "day"',
                                           'day_flow = "day"\ntimezone = "Asia/Beijing"'))
    assert err.key == "schedule.timezone"


def test_no_flow_source_is_an_error(tmp_path):
    err = error_of(tmp_path, MINIMAL.replace('default_flow = "day"\n', ""))
    assert err.key == "ivr" and "which flow answers calls" in err.message


def test_unreachable_menu_and_unused_flow_are_warnings(tmp_path):
    text = MINIMAL + textwrap.dedent("""
        [ivr.menus.orphan]
        greeting = []
        options = { "1" = "main" }

        [ivr.flows.spare]
        start = "main"
        """)
    cfg = load_config(write(tmp_path, text))
    assert any(f":{line_of(text, '[ivr.menus.orphan]')}: key 'ivr.menus.orphan': menu 'orphan' "
               f"is unreachable" in w for w in cfg.warnings)
    assert any("flow 'spare' is never used" in w for w in cfg.warnings)


def test_say_items_and_variables(tmp_path):
    text = MINIMAL.replace('"2" = { action = "queue", queue = "service" }',
                           '"2" = { action = "play", prompts = [{ say = "amout", value = "$x" }] }')
    err = error_of(tmp_path, text)
    assert err.key == "ivr.menus.main.options.2.prompts[0].say"
    assert "did you mean 'amount'" in err.message
    err = error_of(tmp_path, text.replace("amout", "amount"))
    assert err.key == "ivr.menus.main.options.2.prompts[0].value"
    assert "variable $x is never set" in err.message
    err = error_of(tmp_path, text.replace("amout", "number").replace("$x", "12abc"))
    assert err.key == "ivr.menus.main.options.2.prompts[0].value"
    assert "say_number cannot say '12abc'" in err.message
    cfg = load_config(write(tmp_path, text.replace("amout", "digits").replace("$x", "$caller")))
    play = cfg.ivr.menus["main"].options["2"]
    assert play.items == (Say("digits", "$caller"),)


def test_language_checked(tmp_path):
    text = MINIMAL.replace('start = "main"', 'start = "main"\nlang = "fr"')
    err = error_of(tmp_path, text)
    assert err.key == "ivr.flows.day.lang" and "not in prompts.languages" in err.message


def test_menu_needs_options_or_input(tmp_path):
    text = MINIMAL.replace('[ivr.menus.main.options]\n"1" = { action = "submenu", menu = "main" }\n'
                           '"2" = { action = "queue", queue = "service" }\n', "")
    err = error_of(tmp_path, text)
    assert err.key == "ivr.menus.main" and "neither" in err.message


def test_blacklist_parsing_and_errors(tmp_path):
    text = MINIMAL + textwrap.dedent("""
        [numbering]
        local_area = "10"

        [[blacklist.entries]]
        number = "+86 10 6512 3456"

        [[blacklist.entries]]
        number = "0755"
        match = "prefix"
        action = "play"
        prompts = ["blocked"]
        """)
    cfg = load_config(write(tmp_path, text))
    assert cfg.blacklist.match("65123456").action is BlockAction.REJECT
    assert cfg.blacklist.match("075512345678").prompts == ("blocked",)
    assert "blocked" in cfg.prompt_uses
    bad = text.replace('number = "0755"', 'number = "07x5"')
    err = error_of(tmp_path, bad)
    assert err.key == "blacklist.entries[1].number" and err.line == line_of(bad, "07x5")
    err = error_of(tmp_path, text.replace('action = "play"', 'action = "drop"'))
    assert err.key == "blacklist.entries[1].action"


def test_new_call_routes_blacklist_and_flow(tmp_path):
    text = MINIMAL + textwrap.dedent("""
        [[blacklist.entries]]
        number = "010 6512 3456"

        [[blacklist.entries]]
        number = "0755"
        match = "prefix"
        action = "play"
        prompts = ["blocked"]
        """)
    cfg = load_config(write(tmp_path, text))
    now = dt.datetime(2026, 11, 23, 10, tzinfo=SH)
    assert cfg.new_call("+861065123456", "4008001234", now) is None
    call = cfg.new_call("0755 1234 5678", "4008001234", now)
    out = call.call_started("075512345678", "4008001234", 0)
    play = [c for c in out if isinstance(c, Play)][0]
    assert play.items == (Prompt("blocked"),)
    assert Hangup("hangup action") in call.prompt_done(play.id, 2000)
    call = cfg.new_call("13812345678", "4008001234", now)
    out = call.call_started("13812345678", "4008001234", 0)
    assert [c for c in out if isinstance(c, Play)][0].items == (Prompt("welcome"),)


def test_reload_keeps_running_config_on_error(tmp_path):
    path = write(tmp_path, MINIMAL)
    current = load_config(path)
    path.write_text(MINIMAL.replace("queue = \"service\"", "queue = \"sales\""), encoding="utf-8")
    new, err = reload_config(path, current)
    assert err is None and new.ivr.menus["main"].options["2"] == QueueAction("sales")
    assert current.ivr.menus["main"].options["2"] == QueueAction("service")  # untouched
    path.write_text(MINIMAL.replace("[[boards]]", "[[boards]\n"), encoding="utf-8")
    kept, err = reload_config(path, new)
    assert kept is new and err is not None and "TOML syntax error" in str(err)
    assert str(err).startswith(f"{path}:1:")


def test_syntax_error_and_missing_file(tmp_path):
    err = error_of(tmp_path, 'x = "unterminated\n')
    assert err.line == 1
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "nope.toml")


def test_channel_config_file_checked(tmp_path):
    chan = write(tmp_path, '[[boards]]\nuri = "sim://other"\n[[boards.spans]]\nspan = 0\n'
                           'kind = "analog"\nports = 8\n[[boards.channels]]\nspan = 0\n'
                           'channels = "1-8"\nsignalling = "fxo_ls"\n', name="chan.toml")
    text = MINIMAL.replace('uri = "sim://hotline"', f'uri = "sim://hotline"\nconfig = "{chan.name}"')
    err = error_of(tmp_path, text)
    assert err.key == "boards[0].config" and "no [[boards]] entry for sim://hotline" in err.message
    err = error_of(tmp_path, MINIMAL.replace('uri = "sim://hotline"',
                                             'uri = "sim://hotline"\nconfig = "missing.toml"'))
    assert "does not exist" in err.message
    # errors inside the channel config name that file
    broken = write(tmp_path, '[[boards]]\nuri = "sim://hotline"\n', name="broken.toml")
    err = error_of(tmp_path, MINIMAL.replace('uri = "sim://hotline"',
                                             f'uri = "sim://hotline"\nconfig = "{broken.name}"'))
    assert err.file == str(broken)


# ----------------------------------------------------------------- the demo
def test_demo_loads_clean():
    cfg = load_config(DEMO)
    assert cfg.warnings == ()
    assert set(cfg.ivr.flows) == {"day", "night"}
    assert len(cfg.channels.inbound) == 4 and len(cfg.channels.agents) == 4
    assert isinstance(cfg.ivr.actions["balance"], LookupAction)
    assert cfg.ivr.menus["main"].options["1"] == SubmenuAction("account")
    assert cfg.ivr.menus["main"].options["3"] == RefAction("leave_message")
    assert isinstance(cfg.ivr.menus["main"].options["8"], TransferAction)
    # schedule: a make-up Saturday is open, National Day is closed, evenings are night
    assert cfg.flow_at(dt.datetime(2026, 10, 10, 10, tzinfo=SH)) == "day"
    assert cfg.flow_at(dt.datetime(2026, 10, 2, 10, tzinfo=SH)) == "night"
    assert cfg.flow_at(dt.datetime(2026, 11, 23, 18, 30, tzinfo=SH)) == "night"
    # blacklist: the exact entry rejects a caller ID given in local form
    now = dt.datetime(2026, 11, 23, 10, tzinfo=SH)
    assert cfg.new_call("65123456", "4008001234", now) is None


def test_demo_prompts_are_in_the_catalogue():
    """Every prompt the demo names is in the prompt catalogue (prompts/prompts.toml)."""
    catalogue_file = REPO / "prompts" / "prompts.toml"
    if not catalogue_file.exists():
        pytest.skip("prompt catalogue not in this tree")
    data = tomllib.loads(catalogue_file.read_text(encoding="utf-8"))
    names = {n for group, entries in data.items() if group not in ("set", "tts")
             for n in entries}
    missing = set(load_config(DEMO).prompt_uses) - names
    assert not missing


def test_demo_balance_call_end_to_end():
    cfg = load_config(DEMO)
    call = cfg.new_call("13812345678", "4008001234", dt.datetime(2026, 11, 23, 10, tzinfo=SH))
    out = call.call_started("13812345678", "4008001234", 0)
    out = call.digit("2", 500)                         # English
    assert [c for c in out if isinstance(c, Play)][0].lang == "en"
    out = call.digit("1", 1000)                        # balance
    for d in "12345678":
        out = call.digit(d, 2000)
    play = [c for c in out if isinstance(c, Play)][0]
    assert play.items == (Prompt("account_balance_is"), Say("amount", "1234.50"))
    assert play.lang == "en"
    out = call.prompt_done(play.id, 5000)
    assert [c for c in out if isinstance(c, Play)][0].items[0] == Prompt("main_menu")
    out = call.digit("0", 6000)
    hold = [c for c in out if isinstance(c, Play)][0]
    out = call.prompt_done(hold.id, 7000)
    assert [type(c).__name__ for c in out if not type(c).__name__ == "Log"] == ["Queue"]
    assert [s.what for s in call.path] == [
        "flow", "menu", "key", "lang", "menu", "key", "menu", "input", "lookup", "play", "menu",
        "key", "play", "queue"]


def test_prompt_check_with_real_prompt_library(tmp_path):
    from voiceserver.ivr.prompts import PromptLibrary
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(4000) / 8000) * 32767).astype("int16")
    for lang in ("zh", "en"):
        (tmp_path / "p" / lang).mkdir(parents=True)
        sf.write(tmp_path / "p" / lang / "welcome.wav", tone, 8000, subtype="PCM_16")
    sf.write(tmp_path / "p" / "zh" / "extra.wav", tone, 8000, subtype="PCM_16")
    lib = PromptLibrary(tmp_path / "p", languages=["zh", "en"])
    path = write(tmp_path, MINIMAL)
    assert load_config(path, library=lib).ivr.menus["main"].greeting == (Prompt("welcome"),)
    missing = MINIMAL.replace('greeting = ["welcome"]', 'greeting = ["welcome", "extra"]\n'
                                                      'invalid = ["welcom"]')
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, missing), library=lib)
    f, line = tmp_path / "server.toml", missing.splitlines().index('invalid = ["welcom"]') + 1
    expect = f"{tmp_path / 'p'}"
    # every missing prompt, at the line of the key that names it, with the likely meant one
    assert str(exc.value).splitlines() == [
        f"{f}:{line}: key 'ivr.menus.main.invalid[0]': prompt 'welcom' has no audio for 'zh' "
        f"(expected {expect}/zh/welcom.wav) (did you mean 'welcome'?)",
        f"{f}:{line - 1}: key 'ivr.menus.main.greeting[1]': prompt 'extra' has no audio for 'en' "
        f"(expected {expect}/en/extra.wav) (known: welcome)",
        f"{f}:{line}: key 'ivr.menus.main.invalid[0]': prompt 'welcom' has no audio for 'en' "
        f"(expected {expect}/en/welcom.wav) (did you mean 'welcome'?)"]


def test_demo_against_the_packaged_prompt_set():
    """The demo checks clean against the packaged prompt set (committed audio)."""
    from voiceserver.ivr.prompts import PromptLibrary
    cfg = load_config(DEMO, library=PromptLibrary())
    assert "choose_language" in cfg.prompt_uses


def test_single_board_table_and_api(tmp_path):
    text = MINIMAL.replace("[[boards]]", "[board]").replace('"hotline:', '"')
    cfg = load_config(write(tmp_path, text))
    assert cfg.channels.inbound[0] == ("hotline", 0)
    assert (cfg.api.host, cfg.api.port) == ("127.0.0.1", 8750)
    cfg = load_config(write(tmp_path, text + '\n[api]\nbind = "[::1]:9000"\n'))
    assert (cfg.api.host, cfg.api.port) == ("::1", 9000)
    err = error_of(tmp_path, text + '\n[api]\nbind = "localhost"\n')
    assert err.key == "api.bind" and "HOST:PORT" in err.message
    err = error_of(tmp_path, MINIMAL + '\n[board]\nuri = "sim://x"\n')
    assert "either [board]" in err.message


def test_loaded_config_is_read_only(tmp_path):
    cfg = load_config(write(tmp_path, MINIMAL))
    with pytest.raises(TypeError):
        cfg.ivr.menus["other"] = cfg.ivr.menus["main"]
    with pytest.raises(TypeError):
        cfg.ivr.menus["main"].options["9"] = QueueAction("x")
    with pytest.raises(AttributeError):
        cfg.ivr = None


# ----------------------------------------------------------------- every error at once
SEVERAL = MINIMAL + """
[ivr.menus.other]
greeting = ["welcome"]
retrys = 2
options = { "1" = { action = "jump" } }

[blacklist]
entries = [{ number = "12ab" }, { number = "13800138000", action = "play" }]

[agents.1001]
phone = "hotline:9"

[queues.service]
members = ["1001", "bob"]

[recordng]
"""


def test_every_error_in_a_file_is_reported_with_its_line(tmp_path):
    path = write(tmp_path, SEVERAL)
    with pytest.raises(ConfigErrors) as exc:
        load_config(path)
    lines = SEVERAL.splitlines()

    def at(text: str) -> int:
        return lines.index(text) + 1

    got = sorted((e.line, e.key, e.message.split(" (")[0]) for e in exc.value.errors)
    assert got == sorted([
        (at("[recordng]"), "recordng", "unknown section [recordng]"),
        (at("retrys = 2"), "ivr.menus.other.retrys", "unknown key"),
        (at('entries = [{ number = "12ab" }, { number = "13800138000", action = "play" }]'),
         "blacklist.entries[0].number", "not a phone number: '12ab'"),
        (at('entries = [{ number = "12ab" }, { number = "13800138000", action = "play" }]'),
         "blacklist.entries[1].prompts", "action 'play' needs prompts to play"),
        (at('phone = "hotline:9"'), "agents.1001.phone", "hotline:9 is not an agent phone"),
        (at('members = ["1001", "bob"]'), "queues.service.members[1]", "no agent 'bob' in [agents]"),
    ]), got
    text = str(exc.value)
    assert len(text.splitlines()) == 6 and all(ln.startswith(f"{path}:") for ln in text.splitlines())
    # the menu whose option names an unknown action is reported on its own, after the unknown key
    bad_action = SEVERAL.replace("retrys = 2\n", "")
    with pytest.raises(ConfigErrors) as exc:
        load_config(write(tmp_path, bad_action))
    assert any(e.key == "ivr.menus.other.options.1" and "unknown action 'jump'" in e.message
               for e in exc.value.errors)


def test_errors_beyond_the_limit_are_counted(tmp_path):
    entries = ", ".join(f'{{ number = "1380013800{i % 10}x{i}" }}' for i in range(25))
    path = write(tmp_path, MINIMAL + f"\n[blacklist]\nentries = [{entries}]\n")
    with pytest.raises(ConfigErrors) as exc:
        load_config(path)
    assert len(exc.value.errors) == 25
    shown = str(exc.value).splitlines()
    assert len(shown) == 21 and shown[-1] == "... and 5 more"
    assert all("not a phone number" in s for s in shown[:20])


def test_one_error_is_a_plain_config_error(tmp_path):
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, MINIMAL + "\n[recordng]\n"))
    assert not isinstance(exc.value, ConfigErrors)
    assert "unknown section [recordng] (did you mean 'recording'?)" in str(exc.value)
