"""Number normalisation and blacklist matching."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voiceserver.ivr.blacklist import Blacklist, BlacklistEntry, BlockAction, Match, NumberingPlan, normalize_number

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


# ---------------------------------------------------------------- the forms sites use
# The same Beijing fixed line and the same mobile as a site's caller IDs, trunks and
# spreadsheets write them: FSK caller ID, E1 ANI with the country code and no prefix,
# the country code with the trunk prefix kept, international forms, typed forms.
FIXED = ["01065231234", "1065231234", "010-6523-1234", "(010) 6523 1234", "+86 10 6523 1234",
         "+86 010 6523 1234", "0086 10 65231234", "861065231234", "8601065231234",
         "65231234"]
MOBILE = ["13800138000", "138 0013 8000", "+8613800138000", "+86 138 0013 8000",
          "008613800138000", "8613800138000", "86013800138000"]


@pytest.mark.parametrize("text", FIXED)
def test_every_site_form_of_a_fixed_line_is_one_number(text):
    assert normalize_number(text, BEIJING) == "1065231234"


@pytest.mark.parametrize("text", MOBILE)
def test_every_site_form_of_a_mobile_is_one_number(text):
    assert normalize_number(text, BEIJING) == "13800138000"


def test_the_country_code_without_a_prefix_needs_a_national_length():
    # 8 digits starting 86 are a local number, 5 digits a service number: not +86 numbers
    assert normalize_number("86123456", BEIJING) == "1086123456"
    assert normalize_number("86123456", CN) == "86123456"
    assert normalize_number("86110", CN) == "86110"
    # a plan whose national numbers have other lengths says so
    short = NumberingPlan(national_lengths=(9,))
    assert normalize_number("86123456789", short) == "123456789"
    assert normalize_number("861012345678", short) == "861012345678"
    assert normalize_number("861012345678", NumberingPlan(national_lengths=())) == "861012345678"


@given(st.text("0123456789", min_size=10, max_size=11).filter(lambda s: s[0] != "0"))
def test_property_ani_forms_agree(nsn):
    assert normalize_number("86" + nsn, CN) == normalize_number("860" + nsn, CN) == \
        normalize_number("+86" + nsn, CN) == nsn


@pytest.mark.parametrize("caller", FIXED + MOBILE)
def test_blacklist_blocks_every_form(caller):
    bl = Blacklist((entry("8601065231234", plan=BEIJING), entry("+86 138 0013 8000", plan=BEIJING)),
                   BEIJING)
    assert bl.match(caller) is not None


def test_recording_rules_match_every_form():
    import datetime as dt

    from voiceserver.recording.rules import CallFacts, loads_rules
    rules = loads_rules('[numbering]\nlocal_area = "10"\n[exclude]\n'
                        'numbers = ["861065231234", "008613800138000"]\n')
    at = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    for caller in FIXED + MOBILE:
        d = rules.decide(CallFacts("c1", caller=caller), at)
        assert not d.record and d.rule.key == "exclude.numbers", (caller, d.reason)
    assert rules.decide(CallFacts("c2", caller="13800138001"), at).record


def test_numbering_section_takes_national_lengths(tmp_path):
    from boarddrv.tomlconfig import ConfigError, loads
    from voiceserver.config.sections import parse_numbering
    plan = parse_numbering(loads('[numbering]\nnational_lengths = [9]\n').table("numbering"))
    assert plan.national_lengths == (9,)
    with pytest.raises(ConfigError, match=r"<string>:2: key 'numbering.national_lengths\[0\]'"):
        parse_numbering(loads('[numbering]\nnational_lengths = [0]\n').table("numbering"))


# ---------------------------------------------------------------- the long list form and the index
def reference_match(entries, listed, caller, plan=CN):
    """The blacklist's rule spelt out: exact beats prefix, the longest prefix wins, the file's
    first entry of a number wins; listed numbers are reject entries after the tables."""
    try:
        norm = normalize_number(caller, plan)
    except ValueError:
        return None
    every = list(entries) + [
        (n[:-1] if n.endswith("*") else n, Match.PREFIX if n.endswith("*") else Match.EXACT)
        for n in listed]
    pairs = [(e.normalized, e.match) if isinstance(e, BlacklistEntry) else e for e in every]
    for norm_e, m in pairs:
        if m is Match.EXACT and norm_e == norm:
            return norm_e, m
    best = None
    for norm_e, m in pairs:
        if m is Match.PREFIX and norm.startswith(norm_e) and (best is None or len(norm_e) > len(best[0])):
            best = (norm_e, m)
    return best


@given(st.lists(st.tuples(st.text("0123", min_size=1, max_size=4), st.booleans()), max_size=8),
       st.lists(st.tuples(st.text("0123", min_size=1, max_size=4), st.booleans()), max_size=8),
       st.lists(st.text("0123", min_size=1, max_size=6), min_size=1, max_size=10))
def test_property_the_index_agrees_with_the_rule(table_entries, numbers, callers):
    from voiceserver.ivr.numberindex import PatternIndex
    entries = tuple(entry("5" + n, Match.PREFIX if p else Match.EXACT) for n, p in table_entries)
    listed = ["5" + n + ("*" if p else "") for n, p in numbers]
    bl = Blacklist(entries, CN, PatternIndex.of(listed))
    for c in callers:
        got = bl.match("5" + c)
        want = reference_match(entries, listed, "5" + c)
        assert (got.normalized, got.match) == want if want else got is None, (c, got, want)


def test_numbers_list_in_the_config(tmp_path):
    from boarddrv.tomlconfig import ConfigError
    from voiceserver.config.server import load_config
    base = Path(__file__).resolve().parent / "configs" / "server-hotline.toml"
    text = base.read_text() + """
[blacklist]
numbers = ["8601065231234", "+86 138 0013 8000", "400*", "95588"]

[[blacklist.entries]]
number = "4008001234"
action = "play"
prompts = ["goodbye"]
"""
    path = tmp_path / "server.toml"
    path.write_text(text)
    bl = load_config(path).blacklist
    for caller in FIXED:
        e = bl.match(caller)
        assert e.number == "8601065231234" and e.match is Match.EXACT and e.action is BlockAction.REJECT
    assert bl.match("13800138000").number == "+86 138 0013 8000"
    assert bl.match("4001234567").match is Match.PREFIX and bl.match("4001234567").number == "400*"
    assert bl.match("4008001234").action is BlockAction.PLAY      # the exact entry beats 400*
    assert bl.match("95588") is not None and bl.match("955881") is None
    bad = text.replace('"400*", "95588"', '"400*", "95588", "12ab", "13*8"')
    path.write_text(bad)
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    numbers = 'numbers = ["8601065231234", "+86 138 0013 8000", "400*", "95588", "12ab", "13*8"]'
    line = bad.splitlines().index(numbers) + 1
    assert [(e.line, e.key) for e in exc.value.errors] == [(line, "blacklist.numbers[4]"),
                                                          (line, "blacklist.numbers[5]")]


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
    from voiceserver.recording.calldb import CallDb

    from servekit import CONFIGS
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
