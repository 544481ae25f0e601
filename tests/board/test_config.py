"""boarddrv.config: channel configuration, every validation error located."""
from __future__ import annotations

import pathlib
import textwrap
from types import SimpleNamespace

import pytest

from boarddrv import config
from boarddrv.config import channel_map, check_board, format_ranges, parse_ranges
from boarddrv.tomlconfig import ConfigError, loads

EXAMPLES = pathlib.Path(config.__file__).parent / "examples"

E1 = textwrap.dedent('''
    [[boards]]
    uri = "sim://e1"

    [[boards.spans]]
    span = 0
    kind = "e1"
    framing = "cas"

    [[boards.spans]]
    span = 1
    kind = "e1"
    framing = "ccs"
    crc4 = true

    [[boards.spans]]
    span = 2
    kind = "analog"
    ports = 4

    [[boards.channels]]
    span = 0
    channels = "1-15,17-31"
    signalling = "e1_cas"

    [[boards.channels]]
    span = 1
    channels = "1-15,17-31"
    signalling = "bearer"

    [[boards.channels]]
    span = 1
    channels = "16"
    signalling = "dchan"

    [[boards.channels]]
    span = 2
    channels = "1-4"
    signalling = "fxo_ks"
''').lstrip("\n")


def parse(text: str, file: str = "t.toml") -> config.SystemConfig:
    return config.parse(loads(text, file))


def replace(text: str, old: str, new: str, count: int = 1) -> str:
    assert old in text, old
    return text.replace(old, new, count)


def error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as ei:
        parse(text)
    return ei.value


# -- ranges ---------------------------------------------------------------------

def test_parse_ranges():
    assert parse_ranges("1-15,17-31", 1, 31) == list(range(1, 16)) + list(range(17, 32))
    assert parse_ranges(" 3 , 5-6", 1, 8) == [3, 5, 6]
    assert parse_ranges(7, 1, 8) == [7]
    assert format_ranges(parse_ranges("1-15,17-31", 1, 31)) == "1-15,17-31"


@pytest.mark.parametrize("text,msg", [
    ("1-3,,7", "empty item"),
    ("15-1", "runs backwards"),
    ("a-3", "bad range item 'a-3'"),
    ("0-3", "0 is out of range 1..8"),
    ("1-9", "9 is out of range 1..8"),
    ("1-4,3", "3 is listed twice"),
    (True, "expected a range string"),
])
def test_parse_ranges_errors(text, msg):
    with pytest.raises(ValueError, match=msg):
        parse_ranges(text, 1, 8)


# -- good configs -------------------------------------------------------------------

def test_examples_load():
    hot = config.load(EXAMPLES / "hotline.toml").board("sim://hotline")
    assert [c.signalling for c in hot.channels] == ["fxo_ls"] * 4 + ["fxs_ks"] * 4
    assert hot.channels[4].tx_gain == -3.0 and hot.law == "alaw" and hot.tone_zone == "cn"
    site = config.load(EXAMPLES / "e1-site.toml").board("sim://e1site")
    assert len(site.spans) == 4 and len(site.channels) == 4 * 30
    assert all(c.cas_variant == "china" and c.signalling == "e1_cas" for c in site.channels)
    assert 16 not in [c.member for c in site.channels]
    assert [s.timing for s in site.spans] == [1, 2, 3, 4] and all(s.crc4 for s in site.spans)


def test_defaults_and_lines():
    b = parse(E1).boards[0]
    s0 = b.span(0)
    assert (s0.coding, s0.crc4, s0.timing, s0.lbo, s0.size) == ("hdb3", False, 0, 0, 31)
    assert b.law == "alaw" and b.tone_zone == "cn"
    assert b.channels[0].line == 22 and b.channels[0].cas_variant == "china"
    assert b.span(2).size == 4 and b.span(2).framing is None
    assert len(b.channels) == 30 + 31 + 4


def test_board_lookup_error_names_configured_boards():
    with pytest.raises(KeyError, match="configured: sim://e1"):
        parse(E1).board("sim://other")


# -- every validation error, located --------------------------------------------------

def test_unknown_signalling():
    e = error(replace(E1, 'signalling = "fxo_ks"', 'signalling = "fxo_kss"'))
    assert e.line == 38 and e.key == "boards[0].channels[3].signalling"
    assert "expected one of fxo_ks, fxo_ls, fxs_ks, fxs_ls, e1_cas, bearer, dchan, got 'fxo_kss'" in str(e)


def test_bad_framing_message_format():
    e = error(replace(E1, 'framing = "ccs"', 'framing = "cass"'))
    assert str(e) == "t.toml:12: key 'boards[0].spans[1].framing': expected one of cas, ccs, got 'cass'"


def test_typo_key_did_you_mean():
    e = error(replace(E1, 'crc4 = true', 'crc = true'))
    assert e.line == 13 and "did you mean 'crc4'?" in str(e)


def test_fxs_signalling_on_e1_channel():
    e = error(replace(E1, 'signalling = "e1_cas"', 'signalling = "fxs_ks"'))
    assert e.line == 23 and e.key == "boards[0].channels[0].signalling"
    assert "fxs_ks signalling is for analog channels, but span 0 is e1 (use one of e1_cas)" in str(e)


def test_e1_signalling_on_analog():
    e = error(replace(E1, 'signalling = "fxo_ks"', 'signalling = "e1_cas"'))
    assert "span 2 is analog" in str(e) and e.line == 38


def test_cas_on_ccs_span_and_bearer_on_cas_span():
    e = error(replace(E1, 'signalling = "bearer"', 'signalling = "e1_cas"'))
    assert "e1_cas needs a cas span, but span 1 has framing = 'ccs' (use bearer, dchan)" in str(e)
    e = error(replace(E1, 'signalling = "e1_cas"', 'signalling = "bearer"'))
    assert "bearer needs a ccs span" in str(e) and e.line == 23


def test_channel_out_of_range():
    e = error(replace(E1, 'channels = "1-4"', 'channels = "1-5"'))
    assert e.line == 37 and e.key == "boards[0].channels[3].channels"
    assert "5 is out of range 1..4" in str(e) and "ports of span 2 are 1..4" in str(e)
    e = error(replace(E1, '"1-15,17-31"', '"1-15,17-32"'))
    assert "32 is out of range 1..31" in str(e) and "timeslots of span 0" in str(e)


def test_timeslot_16_on_cas_span():
    e = error(replace(E1, '"1-15,17-31"', '"1-31"'))
    assert e.line == 22 and "timeslot 16 carries the CAS signalling" in str(e)


def test_overlapping_groups_name_the_first():
    text = E1 + '\n[[boards.channels]]\nspan = 2\nchannels = "4"\nsignalling = "fxs_ks"\n'
    e = error(text)
    assert e.line == 42 and "port 4 of span 2 is already configured at line 37" in str(e)


def test_overlap_within_group():
    e = error(replace(E1, 'channels = "1-4"', 'channels = "1-3,2"'))
    assert "2 is listed twice" in str(e)


def test_undeclared_span():
    e = error(replace(E1, 'span = 2\nchannels', 'span = 7\nchannels'))
    assert e.line == 36 and "span 7 is not configured" in str(e) and "configured: 0, 1, 2" in str(e)


def test_duplicate_span_and_timing_priority():
    e = error(replace(E1, "span = 1\nkind", "span = 0\nkind"))
    assert e.line == 10 and "span 0 is configured twice (first at line 4)" in str(e)
    text = replace(E1, 'framing = "cas"', 'framing = "cas"\ntiming = 1')
    text = replace(text, 'crc4 = true', 'crc4 = true\ntiming = 1')
    e = error(text)
    assert e.line == 15 and "timing priority 1 is already used by span 0 (line 8)" in str(e)


def test_ccs_needs_one_dchan():
    text = replace(E1, 'channels = "16"\nsignalling = "dchan"', 'channels = "16"\nsignalling = "bearer"')
    e = error(text)
    assert e.line == 12 and "exactly one dchan" in str(e) and "has no D channel" in str(e)
    e = error(replace(E1, 'channels = "16"', 'channels = "16-17"'))
    assert "a dchan is one timeslot" in str(e)


def test_kind_specific_keys():
    e = error(replace(E1, "ports = 4", "ports = 4\nframing = \"cas\""))
    assert e.line == 19 and "'framing' applies to e1 spans only" in str(e)
    e = error(replace(E1, 'crc4 = true', 'crc4 = true\nports = 30'))
    assert "'ports' applies to analog spans only" in str(e)


def test_cas_variant_rules():
    e = error(replace(E1, 'signalling = "fxo_ks"', 'signalling = "fxo_ks"\ncas_variant = "china"'))
    assert "cas_variant applies to e1_cas channels, not fxo_ks" in str(e)
    e = error(replace(E1, 'signalling = "e1_cas"', 'signalling = "e1_cas"\ncas_variant = "chna"'))
    assert "expected one of china, itu, got 'chna'" in str(e)


def test_board_level_errors():
    assert "expected one of alaw, ulaw" in str(error(replace(E1, 'uri = "sim://e1"', 'uri = "sim://e1"\nlaw = "a"')))
    assert "expected a board URI" in str(error(replace(E1, 'sim://e1', 'e1')))
    e = error(E1 + E1.replace("[[boards]]\n", "[[boards]]\n", 1))
    assert "board 'sim://e1' is configured twice (first at line 2)" in str(e)
    e = error('[[boards]]\nuri = "sim://x"\n[[boards.spans]]\nspan = 0\nkind = "analog"\nports = 2\n')
    assert "at least one [[channels]]" in str(e)
    e = error(replace(E1, 'channels = "1-4"\n', ''))
    assert "channels': missing" in str(e)


def test_load_rejects_unknown_top_level(tmp_path):
    p = tmp_path / "x.toml"
    p.write_text("[[board]]\nuri = 'sim://x'\n")
    with pytest.raises(ConfigError, match=r"x.toml:1: key 'board': unknown key \(did you mean 'boards'\?\)"):
        config.load(p)


# -- against a board ---------------------------------------------------------------------
# check_board only reads .spans/.channels; these stand-ins have the SpanInfo/ChannelInfo shape
# (analog timeslot = port number from 1).
# tests/board/test_tools.py checks a config against a real simulated board.

def fake_board(spans, channels):
    return SimpleNamespace(
        spans=[SimpleNamespace(index=i, **s) for i, s in enumerate(spans)],
        channels=[SimpleNamespace(index=i, **c) for i, c in enumerate(channels)])


def hotline_board(types):
    return fake_board([dict(kind="analog", nchan=8, first_chan=0)],
                      [dict(span=0, type=t, timeslot=i + 1) for i, t in enumerate(types)])


def test_check_board_fits_and_maps():
    cfg = config.load(EXAMPLES / "hotline.toml").boards[0]
    board = hotline_board(["FXO"] * 4 + ["FXS"] * 4)
    assert check_board(cfg, board) == []
    m = channel_map(cfg, board)
    assert sorted(m) == list(range(8)) and m[0].member == 1 and m[7].signalling == "fxs_ks"


def test_check_board_reports_swapped_port_types():
    cfg = config.load(EXAMPLES / "hotline.toml").boards[0]
    probs = check_board(cfg, hotline_board(["FXS"] * 4 + ["FXO"] * 4))
    assert len(probs) == 8
    assert "port 1 of span 0 (channel 0) is FXS on sim://hotline, fxo_ls needs FXO" in str(probs[0])
    assert "DAHDI's system.conf uses the opposite words" in str(probs[0])
    assert probs[0].line == 19 and probs[4].line == 24
    assert probs[0].key == "boards[0].channels[0].signalling"


def test_check_board_missing_ports_and_spans():
    cfg = config.load(EXAMPLES / "hotline.toml").boards[0]
    board = fake_board([dict(kind="analog", nchan=4, first_chan=0)],
                       [dict(span=0, type="FXO", timeslot=i + 1) for i in range(4)])
    probs = [str(p) for p in check_board(cfg, board)]
    assert any("has 4 ports, config says 8" in p for p in probs)
    assert sum("has no channel on sim://hotline" in p for p in probs) == 4


def test_check_board_e1_framing_mismatch():
    cfg = parse(E1).boards[0]
    board = fake_board([dict(kind="e1", nchan=30, first_chan=0, framing="cas", coding="hdb3", crc4=False),
                        dict(kind="e1", nchan=31, first_chan=30, framing="cas", coding="hdb3", crc4=False)],
                       [dict(span=0, type="E1_CAS", timeslot=t) for t in list(range(1, 16)) + list(range(17, 32))]
                       + [dict(span=1, type="E1_CAS", timeslot=t) for t in range(1, 32)])
    probs = [str(p) for p in check_board(cfg, board)]
    assert ("t.toml:12: key 'boards[0].spans[1].framing': "
            "span 1 of sim://e1 runs framing = 'cas', config says 'ccs'") in probs[0]
    assert any("crc4" in p for p in probs)
    assert any("span 2 does not exist on sim://e1 (it has 2 span(s))" in p for p in probs)
    assert any("timeslot 1 of span 1 (channel 30) is E1_CAS on sim://e1, bearer needs E1_BEARER" in p
               for p in probs)
