"""[agents], [queues] and [voicemail] in the server config: parsed into AcdSettings, or
refused with the file, line and key."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from boarddrv.tomlconfig import ConfigError
from voiceserver.acd.distributor import Ring
from voiceserver.acd.queues import Target
from voiceserver.config.server import load_config

# The server config the ACD settings are added to (shared with test_agent_control.py).
BASE = (Path(__file__).resolve().parent / "configs" / "server-acd-base.toml").read_text(encoding="utf-8")

HOTLINE = BASE + """
[agents.alice]
phone = "hotline:4"
skills = { billing = 5 }
wrapup = 10

[agents.bob]
phone = "hotline:5"
max_misses = 2

[agents.carol]
phone = "hotline:6"
start = "not_ready"

[agents.duty]
number = "13800138000"
trunk = "pstn"
weight = 3

[queues]
trunk_hunt = { pstn = "R" }
glare_retries = 1

[queues.service]
strategy = "rrmemory"
members = ["alice", "bob", { agent = "carol", tier = 2 }, { agent = "duty", tier = 3, penalty = 4 }]
tier_wait = 20
ring_timeout = 12.5
max_wait = 300
timeout = { voicemail = "queue" }
mailbox = "100"
exit_key = "0"
exit = { number = "13800138000", trunk = "pstn" }
announce_first = 15
announce_every = 45
vip = ["+86 10 6512 0000"]

[queues.service_vip]
into = "service"
priority = 5

[voicemail]
max_length = 90
silence = 4

[voicemail.mailboxes.100]
owner = "service"
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "server.toml"
    p.write_text(textwrap.dedent(text), encoding="utf-8")
    return p


def error_of(tmp_path: Path, text: str) -> ConfigError:
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, text))
    return exc.value


def line_of(text: str, needle: str) -> int:
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return i
    raise AssertionError(needle)


def test_hotline_sections_load(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, HOTLINE))
    s = cfg.acd
    assert [a.name for a in s.agents] == ["alice", "bob", "carol", "duty"]
    alice = s.agents[0]
    assert alice.phone == ("hotline", 4) and alice.wrapup_ms == 10_000
    assert dict(alice.skills) == {"billing": 5}
    assert s.agents[3].number == "13800138000" and s.agents[3].trunk == "pstn"
    q = s.queues[0]
    assert q.strategy == "round-robin" and q.ring_timeout_ms == 12_500
    assert [(m.agent, m.tier, m.penalty) for m in q.members] == [("alice", 1, 0), ("bob", 1, 0), ("carol", 2, 0),
                                                                 ("duty", 3, 4)]
    assert q.timeout_target == Target("voicemail", "queue") and q.mailbox == "100"
    assert q.exit_target == Target("number", number="13800138000", trunk="pstn")
    assert q.vip == frozenset({"1065120000"})
    assert dict(s.entries) == {"service_vip": ("service", 5)}
    assert dict(s.hunt) == {"pstn": "round-robin-descending"} and s.glare_retries == 1
    assert s.voicemail.max_ms == 90_000 and s.voicemail.strict
    assert "you_are_caller_number" in cfg.prompt_uses


def test_settings_build_a_working_acd(tmp_path: Path) -> None:
    from voiceserver.ivr.blacklist import normalize_number
    cfg = load_config(write(tmp_path, HOTLINE))
    acd = cfg.acd.build(cfg.channels.outbound, default_lang=cfg.prompts.default_lang,
                        normalize=lambda n: normalize_number(n, cfg.numbering))
    out = acd.call_arrived("c1", "service", "65120000", t=0)    # local number = the VIP
    assert acd.calls["c1"].priority == 10
    assert [c for c in out if isinstance(c, Ring)] == [Ring("alice", "c1", ("hotline", 4))]
    out = acd.call_arrived("c2", "service_vip", "555", t=1)
    assert acd.calls["c2"].priority == 5
    assert acd.hunt["pstn"].method == "round-robin-descending"


@pytest.mark.parametrize("change, needle, key, message", [
    (('phone = "hotline:4"', 'phone = "hotline:1"'), 'phone = "hotline:1"',
     "agents.alice.phone", "hotline:1 is not an agent phone"),
    (('phone = "hotline:5"', 'phone = "hotline:4"'), 'phone = "hotline:4"\nmax',
     "agents.bob.phone", "already agent alice's phone"),
    (('trunk = "pstn"\nweight', 'trunk = "pstm"\nweight'), 'trunk = "pstm"',
     "agents.duty.trunk", "no outbound trunk group 'pstm' in [channels.outbound] (did you mean 'pstn'?)"),
    (('strategy = "rrmemory"', 'strategy = "round_robin"'), "round_robin",
     "queues.service.strategy", "unknown strategy 'round_robin' (did you mean 'round-robin'?)"),
    (('"alice", "bob"', '"alice", "bobby"'), '"bobby"',
     "queues.service.members[1]", "no agent 'bobby' in [agents] (did you mean 'bob'?)"),
    (('exit_key = "0"', 'exit_key = "00"'), 'exit_key', "queues.service.exit_key",
     "expected one DTMF key"),
    (('timeout = { voicemail = "queue" }', 'timeout = { queue = "sales" }'), 'timeout = {',
     "queues.service.timeout.queue", "no queue 'sales'"),
    (('timeout = { voicemail = "queue" }', 'timeout = { voicemail = "101" }'), 'timeout = {',
     "queues.service.timeout.voicemail", "no mailbox '101' in [voicemail.mailboxes]"),
    (('into = "service"', 'into = "servce"'), 'into =', "queues.service_vip.into",
     "no queue 'servce' (did you mean 'service'?)"),
    (('trunk_hunt = { pstn = "R" }', 'trunk_hunt = { pstn = "X" }'), 'trunk_hunt',
     "queues.trunk_hunt.pstn", "unknown hunt method 'X'"),
    (('ring_timeout = 12.5', 'ring_timeout = 0'), 'ring_timeout', "queues.service.ring_timeout",
     "must be more than 0 seconds"),
    (('wrapup = 10', 'wrapup = -1'), 'wrapup', "agents.alice.wrapup", "expected at least 0, got -1"),
    (('tier_wait = 20', 'tier_wait = 20\nfoo = 1'), 'foo = 1', "queues.service.foo", "unknown key"),
    (('tier = 3, penalty = 4', 'tier = 3, penalty = -4'), 'penalty = -4', "queues.service.members[3].penalty",
     "expected between 0 and 1000000, got -4"),
])
def test_errors_name_line_and_key(tmp_path: Path, change: tuple[str, str], needle: str,
                                  key: str, message: str) -> None:
    text = HOTLINE.replace(*change)
    assert text != HOTLINE
    err = error_of(tmp_path, text)
    assert err.key == key, str(err)
    assert message in err.message, str(err)
    assert err.line == line_of(text, needle.split("\n")[0]) or needle.endswith("max")


def test_ivr_queue_must_exist(tmp_path: Path) -> None:
    text = HOTLINE.replace('queue = "service" }', 'queue = "servise" }')
    err = error_of(tmp_path, text)
    assert err.key == "ivr.menus.main.options.0"
    assert "not in [queues] (did you mean 'service'?)" in err.message


def test_ivr_mailbox_must_exist_when_mailboxes_are_listed(tmp_path: Path) -> None:
    text = HOTLINE.replace('mailbox = "100" }', 'mailbox = "200" }')
    err = error_of(tmp_path, text)
    assert err.key == "ivr.menus.main.options.3" and "mailbox '200'" in err.message


def test_agent_needs_a_way_to_be_reached(tmp_path: Path) -> None:
    text = HOTLINE.replace('[agents.carol]\nphone = "hotline:6"\n', '[agents.carol]\n')
    err = error_of(tmp_path, text)
    assert err.key == "agents.carol" and "how is this agent reached" in err.message


def test_without_the_sections_there_are_no_acd_settings(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, BASE))
    assert cfg.acd is None


def test_docs_hotline_example_loads(tmp_path: Path) -> None:
    """docs/queues.md's small-hotline example, appended to the demo config, loads and runs."""
    repo = Path(__file__).resolve().parents[2]
    doc = (repo / "docs" / "queues.md").read_text(encoding="utf-8")
    example = doc.split("```toml\n", 1)[1].split("```", 1)[0]
    demo = repo / "voiceserver" / "configs" / "demo.toml"
    text = demo.read_text(encoding="utf-8").replace(
        '"../../boarddrv/examples/hotline.toml"',
        repr(str(repo / "boarddrv" / "examples" / "hotline.toml")).replace("'", '"'))
    cfg = load_config(write(tmp_path, text + "\n" + example))
    s = cfg.acd
    assert [a.name for a in s.agents] == ["zhang", "li", "wang", "zhao"]
    assert s.queues[0].empty_target == Target("number", number="13800138000", trunk="pstn")
    acd = s.build(cfg.channels.outbound)
    out = acd.call_arrived("c1", "service", "100", t=0)
    assert [c.agent for c in out if isinstance(c, Ring)] == ["zhang"]
    assert "zhao" in {r["agent"] for r in acd.why_not("c1", 0)}


# ---------------------------------------------------------------- agent ids
def test_numeric_agent_ids_as_call_centres_number_agents(tmp_path):
    text = BASE.replace('"9" = { action = "queue", queue = "service_vip" }\n', "").replace(
        '"3" = { action = "voicemail", mailbox = "100" }\n', "") + """
[agents.1001]
phone = "hotline:4"

[agents."1002"]
phone = "hotline:5"

[agents.alice]
phone = "hotline:6"

[queues.service]
members = ["1001", 1002, { agent = 1001, tier = 2 }, "alice"]
"""
    with pytest.raises(ConfigError, match="listed twice"):
        load_config(write(tmp_path, text))
    cfg = load_config(write(tmp_path, text.replace('{ agent = 1001, tier = 2 }, ', '')))
    assert [a.name for a in cfg.acd.agents] == ["1001", "1002", "alice"]
    assert [m.agent for m in cfg.acd.queues[0].members] == ["1001", "1002", "alice"]


@pytest.mark.parametrize("key,message", [
    ("01001", "agent id '01001': a numeric id has no leading zero (write 1001"),
    ("0", "agent id '0': a numeric id starts at 1"),
    ('"al ice"', "agent id 'al ice': an agent id is a number without a leading zero"),
    ("_x", "agent id '_x': an agent id is a number"),
])
def test_bad_agent_ids_are_refused_with_the_line(tmp_path, key, message):
    text = BASE + f"\n[agents.{key}]\nphone = \"hotline:4\"\n"
    with pytest.raises(ConfigError) as exc:
        load_config(write(tmp_path, text))
    assert exc.value.line == text.splitlines().index(f"[agents.{key}]") + 1
    assert message in exc.value.message
