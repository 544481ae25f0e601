"""Number normalisation and blacklist matching."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voiceserver.blacklist import (Blacklist, BlacklistEntry, BlockAction, Match, NumberingPlan,
                                   normalize_number)

CN = NumberingPlan()
BEIJING = NumberingPlan(local_area="10")


@pytest.mark.parametrize("text", ["+86 10 12345678", "010 12345678", "1012345678", "01012345678",
                                  "+86-10-1234-5678", "008610 12345678", "+86 (0)10 12345678"])
def test_beijing_fixed_line_forms_are_equal(text):
    assert normalize_number(text.replace("(0)", "0"), CN) == "1012345678"


@pytest.mark.parametrize("text", ["13812345678", "+86 138 1234 5678", "+8613812345678",
                                  "008613812345678"])
def test_mobile_forms_are_equal(text):
    assert normalize_number(text, CN) == "13812345678"


def test_local_number_gets_configured_area():
    assert normalize_number("12345678", BEIJING) == "1012345678"
    assert normalize_number("12345678", CN) == "12345678"  # no local area: as given
    assert normalize_number("95588", BEIJING) == "95588"   # service numbers are not local
    assert normalize_number("110", BEIJING) == "110"


def test_foreign_numbers_keep_country_code():
    assert normalize_number("+1 212 555 0100", CN) == "+12125550100"
    assert normalize_number("001 212 555 0100", CN) == "+12125550100"


def test_prefix_mode_never_adds_area():
    assert normalize_number("2345", BEIJING, prefix=True) == "2345"
    assert normalize_number("+86 138", BEIJING, prefix=True) == "138"


def test_garbage_is_an_error():
    with pytest.raises(ValueError, match="not a phone number"):
        normalize_number("12ab", CN)


def test_other_plan():
    uk = NumberingPlan(country_code="44", trunk_prefix="0", international_prefix="00")
    assert normalize_number("+44 20 7946 0000", uk) == normalize_number("020 7946 0000", uk)


@given(st.text("0123456789", min_size=3, max_size=12).filter(lambda s: s[0] not in "0"))
def test_property_national_forms_agree(nsn):
    assert normalize_number("0" + nsn, CN) == normalize_number("+86" + nsn, CN) == \
        normalize_number("0086" + nsn, CN) == nsn


def entry(number, match=Match.EXACT, action=BlockAction.REJECT, plan=CN, prompts=()):
    return BlacklistEntry(number, normalize_number(number, plan, prefix=match is Match.PREFIX),
                          match, action, prompts)


def test_blacklist_exact_and_prefix():
    bl = Blacklist((entry("+86 10 12345678"), entry("0755", Match.PREFIX),
                    entry("+86 755 8888", Match.PREFIX, BlockAction.PLAY, prompts=("blocked",))), CN)
    assert bl.match("01012345678").number == "+86 10 12345678"
    assert bl.match("1012345679") is None
    assert bl.match("075512340000").number == "0755"
    assert bl.match("+86 755 8888 0000").action is BlockAction.PLAY  # longest prefix wins
    assert bl.match("") is None and bl.match(None) is None
    assert bl.match("not-a-number?") is None


def test_blacklist_local_caller_id_matches_national_entry():
    bl = Blacklist((entry("010 87654321", plan=BEIJING),), BEIJING)
    assert bl.match("87654321") is not None


BLACKLIST = """
[[blacklist.entries]]
number = "+86 10 6512 3456"
match = "exact"
action = "reject"
note = "repeated nuisance calls"

[storage]
"""
REJECTED = """
[scenario]
duration = 60.0
seed = 3

[[caller]]
at = 1.0
line = "hotline_e2e:0"
number = "01065123456"
give_up = 12.0
"""


def test_a_rejected_call_is_recorded_as_rejected_by_its_blacklist_entry(e2e, tmp_path):
    """Not answered, the caller gives up ringing: the record and the call row say the
    blacklist rejected it, which entry (number, match, FILE:LINE) and its note."""
    from servekit import CONFIGS

    from voiceserver.calldb import CallDb
    cfg = tmp_path / "server.toml"
    text = (CONFIGS / "server-hotline.toml").read_text()
    cfg.write_text(text + BLACKLIST)
    line = (text + BLACKLIST).splitlines().index('number = "+86 10 6512 3456"') + 1
    run = e2e.run(scenario=REJECTED, server_config=str(cfg), max_sim_seconds=40,
                  until=lambda s: s.totals.calls >= 1 and e2e.all_idle(s))
    rec, = run.server.records
    where = f"{run.workdir / 'server.toml'}:{line}"
    assert rec.answer is None and rec.caller == "01065123456"
    assert rec.reason == (f"rejected by blacklist: entry +86 10 6512 3456 (exact match, {where}): "
                          f"repeated nuisance calls")
    assert run.server.totals.rejected == 1
    with CallDb(run.workdir / "calls.db") as db:
        row, = db.query("SELECT disposition, answer FROM calls")
    assert (row["disposition"], row["answer"]) == (rec.reason, None)
