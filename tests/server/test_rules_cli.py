"""`voiceboard rules check` and `voiceboard rules explain`: output, warnings, exit status."""
from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path

from voiceserver.cli.rules import main

RULES = """\
min_seconds = 5
max_seconds = 3600
holidays = ["2026-10-01..2026-10-07"]

[[window]]
name = "office"
days = "mon-fri"
from = "08:30"
to = "18:00"

[[window]]
name = "evening"
days = "fri"
from = "17:00"
to = "23:00"

[[window]]
name = "nowhere"
days = []
from = "01:00"
to = "02:00"

[sampling]
inbound = 30
internal = 0

[never]
agents = "9001-9009"
numbers = ["110", "400*"]

[force]
agents = "9005,2001"

[exclude]
agents = "1001-1005,!1003"
numbers = ["4008*", "13800138000"]
channels = ["hotline:0-1"]
"""


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    rc = main(list(argv), out=out, err=err)
    return rc, out.getvalue(), err.getvalue()


def write(tmp_path: Path, text: str, name: str = "rules.toml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text), encoding="utf-8")
    return p


def test_check_lists_each_kind_of_warning_with_its_line(tmp_path: Path):
    p = write(tmp_path, RULES)
    rc, out, _ = run("check", str(p))
    assert rc == 0
    lines = out.splitlines()
    f = str(p)
    assert f"{f}:11: key 'window[1]': warning: window 'evening' overlaps window 'office' " \
           f"(e.g. fri 17:00)" in lines
    assert f"{f}:19: key 'window[2].days': warning: window 'nowhere' is on no day: " \
           f"it never opens" in lines
    assert f"{f}:32: key 'force.agents': warning: '9005' is unreachable: never.agents covers " \
           f"it and never is checked first" in lines
    assert f"{f}:36: key 'exclude.numbers[0]': warning: '4008*' is unreachable: never.numbers " \
           f"covers it and never is checked first" in lines
    assert f"{f}:25: key 'sampling.internal': warning: sampling internal is 0%: no internal " \
           f"call is recorded (leave internal out of select.directions to say so)" in lines
    assert lines[-1] == f"{f}: OK (3 windows, 6 lists, 0 pause rules; 5 warnings)"
    assert len(lines) == 6
    assert [int(x.split(":")[1]) for x in lines[:-1]] == [11, 19, 25, 32, 36]   # in file order
    # an exclusion of 1001-1005 is not shadowed by never 9001-9009, nor 13800138000 by 400*
    assert "1001" not in out and "13800138000" not in out


def test_check_json(tmp_path: Path):
    p = write(tmp_path, RULES)
    rc, out, _ = run("check", str(p), "--json")
    doc = json.loads(out)
    assert rc == 0 and doc["ok"] and doc["errors"] == []
    assert {w["key"] for w in doc["warnings"]} == {"window[1]", "window[2].days", "force.agents",
                                                   "exclude.numbers[0]", "sampling.internal"}
    assert doc["rules"]["exclude.agents"] == "1001-1005,!1003"
    assert doc["rules"]["window.office"] == "mon,tue,wed,thu,fri 08:30-18:00"


def test_check_error_exits_non_zero_with_file_line_key(tmp_path: Path):
    p = write(tmp_path, RULES.replace('agents = "1001-1005,!1003"', 'agent = "1001-1005,!1003"'))
    rc, out, _ = run("check", str(p))
    assert rc == 1
    assert out.splitlines() == [f"{p}:35: key 'exclude.agent': error: unknown key "
                                f"(did you mean 'agents'?)", f"{p}: FAILED (1 error)"]
    rc, out, _ = run("check", str(p), "--json")
    doc = json.loads(out)
    assert rc == 1 and not doc["ok"]
    assert doc["errors"] == [{"file": str(p), "line": 35, "key": "exclude.agent",
                              "message": "unknown key (did you mean 'agents'?)"}]
    rc, out, _ = run("check", str(tmp_path / "missing.toml"))
    assert rc == 1 and "cannot read config" in out


def test_check_usage_errors_are_exit_2(tmp_path: Path):
    assert run()[0] == 2
    assert run("lint", "x")[0] == 2


def test_explain_not_recorded_outside_windows(tmp_path: Path):
    p = write(tmp_path, RULES)
    rc, out, _ = run("explain", str(p), "--channel", "hotline:5", "--agent", "1006",
                     "--caller", "01065123457", "--called", "95588",
                     "--at", "2026-11-23 21:00", "--duration", "120")
    assert rc == 0
    assert out.splitlines()[:6] == [
        "call explain: inbound, channel hotline:5, agent 1006, caller 01065123457, called 95588",
        "at Mon 2026-11-23 21:00 Asia/Shanghai",
        "",
        "NOT RECORDED",
        "  because: Mon 2026-11-23 21:00 Asia/Shanghai is outside every window",
        f"  rule:    {p}:5 window",
    ]
    assert "   7. window            no-record    Mon 2026-11-23 21:00 Asia/Shanghai is outside " \
           "every window  [rules.toml:5]" in out
    assert "DISCARDED: nothing was recorded" in out


def test_explain_recorded_and_kept_or_too_short(tmp_path: Path):
    p = write(tmp_path, RULES)
    args = ["explain", str(p), "--channel", "hotline:5", "--agent", "1003", "--caller",
            "+86 10 6512 3456", "--called", "95588", "--at", "2026-11-23T10:00:00+08:00",
            "--call-id", "c000011", "--duration"]
    rc, out, _ = run(*args, "120")
    assert rc == 0
    assert "RECORDED (wav-pcm16, stereo, max 3600 s, min 5 s)" in out
    assert "agent 1003" in out and "exclude.agents    pass" in out
    assert "call c000011 is in the 30% inbound sample" in out
    assert "KEPT: kept: 120 s, at least min_seconds = 5" in out
    rc, out, _ = run(*args, "3")
    assert "DISCARDED: discarded: 3 s is shorter than min_seconds = 5" in out
    assert f"  rule:    {p}:1 min_seconds" in out


def test_explain_json_has_the_whole_chain(tmp_path: Path):
    p = write(tmp_path, RULES)
    rc, out, _ = run("explain", str(p), "--channel", "hotline:1", "--agent", "2001",
                     "--at", "2026-11-23 10:00", "--json", "--duration", "60",
                     "--ivr-path", "main,account", "--queue", "sales", "--direction", "outbound")
    doc = json.loads(out)
    d = doc["decision"]
    assert rc == 0 and d["record"] is True
    assert d["rule"] == {"file": str(p), "line": 32, "key": "force.agents", "name": ""}
    assert d["reason"] == "agent 2001 is in force.agents (9005,2001)"
    assert [c["verdict"] for c in d["checks"]][:4] == ["pass", "pass", "record", "not reached"]
    assert d["facts"]["ivr_path"] == ["main", "account"] and d["facts"]["queue"] == "sales"
    assert doc["keep"]["keep"] is True


def test_explain_bad_arguments(tmp_path: Path):
    p = write(tmp_path, RULES)
    rc, _, err = run("explain", str(p), "--channel", "hotline", "--at", "2026-11-23 10:00")
    assert rc == 2 and "--channel: expected BOARD:N" in err
    rc, _, err = run("explain", str(p), "--at", "tomorrow")
    assert rc == 2 and "--at: expected" in err
    bad = write(tmp_path, "format = 1\n", "bad.toml")
    rc, _, err = run("explain", str(bad), "--at", "2026-11-23 10:00")
    assert rc == 1 and err.startswith(f"{bad}:1: key 'format': error: expected a string")


# ---------------------------------------------------------------- agents the server has
# the end-to-end tests' hotline server with three agents: two numbered, one named
SERVER = (Path(__file__).resolve().parent / "configs" / "server-hotline.toml").read_text() + """
[agents.1002]
phone = "hotline:4"

[agents.1003]
phone = "hotline:5"

[agents.alice]
phone = "hotline:6"

[queues.service]
members = ["1002", 1003, "alice"]
"""


def test_check_with_the_server_config_warns_for_agents_the_server_lacks(tmp_path: Path):
    server = write(tmp_path, SERVER, "server.toml")
    rules = write(tmp_path, '[never]\nagents = "2001"\n\n[exclude]\n'
                            'agents = "1001-1005,!1003,alice,bob,3000-3999"\n')
    rc, out, _ = run("check", str(rules), "--server-config", str(server))
    assert rc == 0
    f = str(rules)
    have = "(it has: 1002, 1003, alice)"
    assert out.splitlines() == [
        f"{f}:2: key 'never.agents': warning: 2001: no such agent in {server} [agents] {have}; "
        f"this item never applies",
        f"{f}:5: key 'exclude.agents': warning: bob: no such agent in {server} [agents] {have}; "
        f"this item never applies",
        f"{f}:5: key 'exclude.agents': warning: 3000-3999: no agent in {server} [agents] {have}; "
        f"this item never applies",
        f"{f}: OK (0 windows, 2 lists, 0 pause rules; 3 warnings)"]
    # without the server config nothing is known about agents: no such warning
    rc, out, _ = run("check", str(rules))
    assert rc == 0 and "no such agent" not in out and "3 warnings" not in out


def test_a_server_config_with_inline_rules_is_checked_against_its_own_agents(tmp_path: Path):
    server = write(tmp_path, SERVER + '\n[recording.exclude]\nagents = "1001-1005,!1003"\n'
                                      '\n[recording.never]\nagents = "2001"\n', "server.toml")
    rc, out, _ = run("check", str(server))
    assert rc == 0
    assert "2001: no such agent" in out and "1001-1005" not in out
    from voiceserver.config.server import load_config
    cfg = load_config(server)
    assert any("2001: no such agent" in w for w in cfg.warnings)   # the server logs it too
    # and the rules agree with the server on what an agent is: its numeric ids match
    rc, out, _ = run("explain", str(server), "--channel", "hotline:0", "--agent", "1002",
                     "--at", "2026-11-23 10:00")
    assert rc == 0 and "NOT RECORDED" in out and "exclude.agents" in out
    rc, out, _ = run("explain", str(server), "--channel", "hotline:0", "--agent", "1003",
                     "--at", "2026-11-23 10:00")
    assert rc == 0 and out.splitlines()[3].startswith("RECORDED")


def test_check_with_a_bad_server_config_fails(tmp_path: Path):
    server = write(tmp_path, SERVER.replace('[agents.1003]', '[agents.01003]'), "server.toml")
    rules = write(tmp_path, '[never]\nagents = "2001"\n')
    rc, out, _ = run("check", str(rules), "--server-config", str(server))
    assert rc == 1 and "no leading zero" in out and f"{server}:" in out


def test_check_reports_every_error_in_a_rules_file(tmp_path: Path):
    p = write(tmp_path, '[[window]]\nname = "a"\ndays = "mon-fry"\n\n[never]\nagents = "1005-1001"\n\n'
                        '[exclude]\nagents = "01001"\nnumbers = ["12ab", "13800138000", "1380?x"]\n\n'
                        '[[pause_dtmf]]\nstart = "*9x"\n')
    rc, out, _ = run("check", str(p))
    f = str(p)
    assert rc == 1
    lines = out.splitlines()
    assert [ln.split(" error: ")[0] for ln in lines[:-1]] == [
        f"{f}:3: key 'window[0].days':", f"{f}:6: key 'never.agents':",
        f"{f}:9: key 'exclude.agents':", f"{f}:10: key 'exclude.numbers[0]':",
        f"{f}:13: key 'pause_dtmf[0].start':"]
    assert lines[-1] == f"{f}: FAILED (5 errors)"
    rc, out, _ = run("check", str(p), "--json")
    assert rc == 1 and len(json.loads(out)["errors"]) == 5
