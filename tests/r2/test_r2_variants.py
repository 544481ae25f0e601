"""R2 variant tables: what each ships with, per-span overrides, and located errors."""
from __future__ import annotations

import pytest

from boarddrv.tomlconfig import ConfigError, loads
from voiceserver.r2.variants import VARIANTS, load_variant, variant_names


def test_every_shipped_variant_loads() -> None:
    assert variant_names() == ["itu", "cn", "mx", "br", "ar"]
    for name in VARIANTS:
        v = load_variant(name)
        assert v.name == name and v.country


def test_china_table_matches_china_no1() -> None:
    v = load_variant("cn")
    line = v.line
    assert line.cd == "11"
    assert {k: line.abcd(getattr(line, k)) for k in ("idle", "seize", "seize_ack", "answer", "clear_back",
                                                      "clear_forward", "blocked")} == {
        "idle": "1011", "seize": "0011", "seize_ack": "1111", "answer": "0111", "clear_back": "1111",
        "clear_forward": "1011", "blocked": "1111"}
    a, b, i = v.group_a, v.group_b, v.group_i
    assert (a.next_dnis, a.dnis_minus_1, a.dnis_minus_2, a.dnis_minus_3) == (1, 2, 7, 8)
    assert (a.change_to_b, a.congestion, a.category, a.next_ani) == (3, 4, 6, 1)
    assert (b.accept_charge, b.accept_no_charge, b.busy, b.congestion, b.unallocated, b.out_of_order) == \
        (1, 7, 2, 4, 5, 8)
    assert (i.end_of_dnis, i.end_of_ani, i.ani_restricted) == (0, 15, 12)
    assert v.register.dnis_end == "timeout" and v.register.ani_after_dnis_digits == 1
    assert v.group_ii.national_subscriber == 1
    t = v.timers
    assert (t.mf_back_cycle, t.seize_ack, t.answer, t.answer_delay, t.double_answer) == (2000, 2000, 60000, 150, 400)


def test_itu_table_matches_q441() -> None:
    v = load_variant("itu")
    assert v.line.cd == "01" and v.line.abcd(v.line.idle) == "1001"
    assert (v.group_a.category, v.group_a.next_ani, v.group_a.address_complete_charge) == (5, 5, 6)
    assert (v.group_b.accept_charge, v.group_b.busy, v.group_b.unallocated) == (6, 3, 5)
    assert v.group_i.end_of_dnis == 15 and v.register.dnis_end == "signal"


def test_a_span_override_merges_over_the_variant() -> None:
    cfg = loads('[spans.r2.group_a]\nnext_dnis = 1\ncongestion = 5\n'
                '[spans.r2.group_b]\nunallocated = 0\n'
                '[spans.r2.line]\nrelease_control = "called"\n', "site.toml")
    v = load_variant("cn", cfg.table("spans").table("r2"))
    assert v.group_a.congestion == 5 and v.group_a.category == 6          # the rest is China's
    assert v.group_b.unallocated == 0 and v.line.release_control == "called"
    assert load_variant("cn").group_a.congestion == 4                      # the shipped table is unchanged


@pytest.mark.parametrize(("text", "message"), [
    ('[r2.timers]\nseize_ack = "2s"\n', "site.toml:2: key 'r2.timers.seize_ack': expected an integer"),
    ('[r2.group_b]\nbusy = 16\n', "site.toml:2: key 'r2.group_b.busy': expected between 0 and 15, got 16"),
    ('[r2.line]\nrelease_control = "both"\n', "site.toml:2: key 'r2.line.release_control': expected one of"),
    ('[r2.line]\nanswer = "012"\n', "site.toml:2: key 'r2.line.answer': expected two bits"),
    ('[r2.group_a]\nnext_dnsi = 1\n', "site.toml:2: key 'r2.group_a.next_dnsi': unknown key (did you mean"),
    ('[r2.group_b]\nbusy = 1\n', "site.toml:1: key 'r2.group_b': accept_charge is required and no accept signal"),
    ('[r2.register]\ndnis_end = "signal"\n', "site.toml:2: key 'r2.register.dnis_end': \"signal\" needs"),
    ('[r2]\nname = "xx"\n', "site.toml:2: key 'r2.name': a span override cannot rename"),
    ('[r2.group_i]\nend_of_ani = 3\n', "site.toml:1: key 'r2.group_i': signal 3 is a digit"),
])
def test_override_errors_name_the_file_line_and_key(text: str, message: str) -> None:
    cfg = loads(text, "site.toml")
    with pytest.raises(ConfigError) as err:
        load_variant("cn", cfg.table("r2"))
    assert str(err.value).startswith(message), str(err.value)


def test_a_plain_dict_override_is_checked_too() -> None:
    assert load_variant("itu", {"register": {"max_ani": 0}}).register.max_ani == 0
    with pytest.raises(ConfigError, match="register.max_ani"):
        load_variant("itu", {"register": {"max_ani": -1}})


def test_unknown_variant() -> None:
    with pytest.raises(ValueError, match="unknown R2 variant 'xx'"):
        load_variant("xx")
