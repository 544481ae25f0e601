"""Secret input, without a board: the IVR masks a secret menu's keys in its path and keeps
the cleartext only in the variable the flow uses; [[pause_dtmf]] keys are secret from the
start sequence to the stop key; `secret = true` is a validated config option.

The end-to-end proof that the keys appear nowhere is test_e2e_secrets.py."""
from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import pytest

from boarddrv.tomlconfig import ConfigError
from voiceserver.config.server import load_config
from voiceserver.core.apicommands import item_name
from voiceserver.core.masking import MASK, SecretKeys, masked, pause_menus
from voiceserver.ivr.collect import CollectSpec
from voiceserver.ivr.flows import (
    Flow,
    HangupAction,
    IvrCall,
    IvrConfig,
    LookupAction,
    Menu,
    Play,
    PlayAction,
    Prompt,
    QueueAction,
    Say,
    SubmenuAction,
)
from voiceserver.recording.rules import loads_rules

ACCOUNT = "90817263"          # never in any table or config below


def P(*names):
    return tuple(Prompt(n) for n in names)


def make_ivr(secret: bool = True) -> IvrConfig:
    """main: 1 account entry (secret unless told), 2 hours info; the account is looked up,
    then read back (say digits) before the call goes to the queue."""
    menus = {
        "main": Menu("main", P("welcome"), CollectSpec(max_digits=1, choices=("1", "2")),
                     options={"1": SubmenuAction("account"),
                              "2": PlayAction(P("hours"), then=SubmenuAction("account"))}),
        "account": Menu("account", P("enter_account"),
                        CollectSpec(max_digits=8, min_digits=6, terminators="#",
                                    first_timeout=5000, inter_timeout=3000),
                        invalid=P("bad"), retries=1, fallback=HangupAction(),
                        input_store="account", secret=secret,
                        input_then=LookupAction(
                            "accounts", "account",
                            found=HangupAction(),
                            missing=PlayAction((Prompt("you_typed"), Say("digits", "$account")),
                                               then=QueueAction("service")))),
    }
    return IvrConfig(flows={"day": Flow("day", SubmenuAction("main"), "zh")}, menus=menus,
                     tables={"accounts": {"11111111": {"balance": "1"}}})


def type_keys(call: IvrCall, keys: str, t: int) -> list:
    out = []
    for i, k in enumerate(keys):
        out += call.digit(k, t + 100 * i)
    return out


@pytest.fixture
def holders(reachable_strings):
    """holders(obj, secret): the strings reachable from obj that contain secret."""
    return lambda obj, secret: [s for s in reachable_strings(obj) if secret in s]


# ---------------------------------------------------------------- the IVR
def test_secret_input_is_masked_in_the_path_and_kept_only_in_its_variable(holders):
    call = IvrCall(make_ivr(), "day")
    call.call_started("13900000000", "95588", 0)
    assert not call.secret_input                     # main collects: not secret
    call.digit("1", 100)
    assert call.secret_input                         # the account menu collects now
    out = type_keys(call, ACCOUNT, 200)             # max_digits: no "#" (it would skip the read-back)
    steps = [(s.what, s.detail) for s in call.path]
    assert ("key", "1") in steps                                   # a menu key stays readable
    assert ("input", f"account={MASK * 8}") in steps
    assert call.vars["account"] == ACCOUNT                         # the flow has it for the lookup
    assert ("lookup", "accounts:missing") in steps
    play, = [c for c in out if isinstance(c, Play)]
    said = play.items[1]
    assert said == Say("digits", ACCOUNT, secret=True)             # spoken in full ...
    assert item_name(said) == f"say_digits({MASK * 8})"           # ... shown masked
    # while in the IVR, the variable is the only holder (the Play is the one being spoken)
    assert holders(call, ACCOUNT) == [ACCOUNT]
    call.prompt_done(play.id, 5000)                                # -> queue: the IVR is done
    assert call.done and "account" not in call.vars
    assert holders(call, ACCOUNT) == []
    assert ACCOUNT not in repr(call.path)


def test_invalid_and_partial_secret_input_is_masked_too():
    call = IvrCall(make_ivr(), "day")
    call.call_started("", "", 0)
    call.digit("1", 100)
    type_keys(call, "123#", 200)          # too short: invalid
    type_keys(call, "98", 1000)
    call.tick(1100 + 3000)                # inter-digit timeout with "98" typed: the fallback
    steps = [(s.what, s.detail) for s in call.path]
    assert ("invalid", MASK * 3) in steps
    assert ("invalid", MASK * 2) in steps or ("timeout", MASK * 2) in steps
    assert not any(c in s.detail for s in call.path for c in "0123456789" if s.what != "key")


def test_a_menu_the_rules_pause_in_is_secret_without_the_config_saying_so():
    call = IvrCall(make_ivr(secret=False), "day")
    call.secret_menus |= pause_menus(loads_rules('pause_while_collecting = ["account"]', "r.toml"))
    call.call_started("", "", 0)
    call.digit("1", 100)
    type_keys(call, ACCOUNT + "#", 200)
    assert ("input", f"account={MASK * 8}") in [(s.what, s.detail) for s in call.path]
    plain = IvrCall(make_ivr(secret=False), "day")      # no rule, no secret = true: in clear
    plain.call_started("", "", 0)
    plain.digit("1", 100)
    type_keys(plain, ACCOUNT + "#", 200)
    assert ("input", f"account={ACCOUNT}") in [(s.what, s.detail) for s in plain.path]
    assert not plain.secret_input                      # done (queued), and nothing was secret


def test_typeahead_is_secret_when_the_ivr_has_a_secret_menu():
    """Keys typed over an information prompt may be for the account menu that follows:
    they are masked as they come (the IVR does not know yet what they are for)."""
    for secret in (True, False):
        call = IvrCall(make_ivr(secret=secret), "day")
        call.call_started("", "", 0)
        call.digit("2", 100)                            # hours info, then the account menu
        assert call.secret_input is secret              # no collection: type-ahead
        call.digit("9", 200)                            # barges in on the info
        barge = [s.detail for s in call.path if s.what == "barge_in"]
        assert barge == ([MASK] if secret else ["9"])
        assert call.secret_input is secret              # the account menu collects now


def test_masked_form():
    assert masked("4111#") == MASK * 5 and MASK not in "0123456789*#ABCD"


# ---------------------------------------------------------------- [[pause_dtmf]]
RULES = """\
pause_while_collecting = ["card"]
pause_on_ivr = ["pin"]
[[pause_dtmf]]
name = "card"
start = "*9"
stop = "#"
max_digits = 6
timeout_seconds = 10
"""


def test_keys_between_the_start_sequence_and_the_stop_key_are_secret(holders):
    keys = SecretKeys(loads_rules(RULES, "r.toml"))
    typed = "12*94111#5"
    secret = [keys.key(d, 100 * i) for i, d in enumerate(typed)]
    #                 1      2      *      9      4     1     1     1     #     5
    assert secret == [False, False, False, False, True, True, True, True, True, False]
    assert holders(keys._pause.__dict__ | {"rules": None}, "4111") == []


def test_a_dtmf_pause_ends_at_max_digits_and_at_its_timeout():
    keys = SecretKeys(loads_rules(RULES, "r.toml"))
    got = [keys.key(d, i) for i, d in enumerate("*9123456" + "7")]
    assert got == [False, False] + [True] * 6 + [False]         # the 6th key ends it, masked
    keys.key("*", 100)
    keys.key("9", 101)
    assert keys.key("4", 102)
    assert not keys.key("4", 101 + 10_000)                       # timed out: in clear again


def test_keys_that_are_ivr_secret_never_start_a_dtmf_pause_and_are_not_kept():
    keys = SecretKeys(loads_rules(RULES, "r.toml"))
    assert keys.key("*", 0, ivr_secret=True)
    assert not keys.key("9", 1)              # "*" was someone's card digit: no sequence
    assert not keys.key("5", 2)
    assert SecretKeys(None).key("5", 0, ivr_secret=True) and not SecretKeys(None).key("5", 0)


def test_a_recordings_pause_control_keeps_no_key_of_a_paused_collection(holders):
    pc = loads_rules(RULES, "r.toml").pause_control()
    pc.collecting("card", 0)
    for i, d in enumerate(ACCOUNT):
        pc.digit(d, i)
    state = lambda: vars(pc) | {"rules": None}      # noqa: E731 - what it holds besides its rules
    assert holders(state(), ACCOUNT[-2:]) == [] and pc.paused
    pc.collecting(None, 100)
    for i, d in enumerate("123"):
        pc.digit(d, 101 + i)
    assert holders(state(), "23") == ["23"]  # only what a start sequence needs: "*9" is 2 keys
    assert holders(state(), "123") == []


# ---------------------------------------------------------------- config
SERVER = """\
[[boards]]
uri = "sim://hotline"

[channels]
inbound = "hotline:0-3"

[ivr]
default_flow = "day"

[ivr.flows.day]
start = "account"

[ivr.menus.account]
greeting = ["enter_account"]
input = { store = "account", then = "main", SECRET }

[ivr.menus.main]
greeting = ["welcome"]
options = { "1" = "account" }
"""


def server(tmp_path: Path, secret: str) -> Path:
    p = tmp_path / "server.toml"
    p.write_text(textwrap.dedent(SERVER.replace(", SECRET", secret)))
    return p


def test_config_secret_option(tmp_path):
    cfg = load_config(server(tmp_path, ", secret = true"))
    assert cfg.ivr.menus["account"].secret and not cfg.ivr.menus["main"].secret
    assert not load_config(server(tmp_path, "")).ivr.menus["account"].secret
    with pytest.raises(ConfigError) as exc:
        load_config(server(tmp_path, ', secret = "yes"'))
    assert exc.value.line == 15 and exc.value.key == "ivr.menus.account.input.secret"
    with pytest.raises(ConfigError) as exc:
        load_config(server(tmp_path, ", secrets = true"))
    assert exc.value.key == "ivr.menus.account.input.secrets" and "secret" in exc.value.message


def test_the_demo_account_number_is_secret_by_its_pause_rule():
    from voiceserver.cli.serve import DEMO_CONFIG
    cfg = load_config(DEMO_CONFIG)
    monday_10am = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)   # the day flow
    call = cfg.new_call("13800000001", "", monday_10am)
    call.secret_menus |= pause_menus(cfg.recording)
    call.call_started("13800000001", "", 0)
    call.digit("1", 100)              # Chinese
    call.digit("1", 200)              # balance
    type_keys(call, "12345678#", 300)
    assert ("input", f"account={MASK * 8}") in [(s.what, s.detail) for s in call.path]
    assert call.ivr.menus["account"].secret is False     # by the rule, not the option
