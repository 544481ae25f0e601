"""boarddrv.tomlconfig: positions for every TOML construct, syntax errors, typed readers."""
from __future__ import annotations

import textwrap

import pytest

from boarddrv.tomlconfig import ConfigError, format_key, load, loads, locate, parse_key


def doc(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


# -- positions ----------------------------------------------------------------

POSITIONS = doc('''
    # comment line 1
    title = "x"                 # 2
    [board]                     # 3
    uri = "sim://a"             # 4
    law.name = "alaw"           # 5  dotted key
    "quoted key" = 1            # 6
    'lit.key' = 2               # 7

    [[spans]]                   # 9
    framing = "cas"             # 10
    [[spans]]                   # 11
    framing = "ccs"             # 12
    [spans.extra]               # 13  sub-table of the last [[spans]]
    a = 1                       # 14
    [[spans.groups]]            # 15
    b = 2                       # 16
    [[spans.groups]]            # 17
    b = 3                       # 18
    [[spans]]                   # 19
    framing = "cas"             # 20
    inline = { x = 1, y = { z = 2 } }   # 21
    ports = [                   # 22
      1,                        # 23
      2, 3,                     # 24
      # a comment inside
      4                         # 26
    ]
    chans = [                   # 28
      { range = "1-15", sig = "cas" },   # 29
      { range = "17-31", sig = "cas" },  # 30
      { range = "32", sig = "x" },       # 31
    ]
    text = """                  # not a comment: inside a string
    [not.a.table]
    key = 1
    """                         # 36
    after = 'literal # not a comment'   # 37
    raw = \'\'\'a ]] }
    \'\'\'                      # 39
    dt = 1979-05-27 07:32:00Z   # 40
    last = true                 # 41
    [a."b.c".d]                 # 42
    e = 1                       # 43
''')


@pytest.mark.parametrize("path,line", [
    ("title", 2),
    ("board", 3),
    ("board.uri", 4),
    ("board.law", 5),
    ("board.law.name", 5),
    (("board", "quoted key"), 6),
    (("board", "lit.key"), 7),
    ('board."lit.key"', 7),
    ("spans", 9),
    ("spans[0]", 9),
    ("spans[0].framing", 10),
    ("spans[1]", 11),
    ("spans[1].framing", 12),
    ("spans[1].extra", 13),
    ("spans[1].extra.a", 14),
    ("spans[1].groups[0].b", 16),
    ("spans[1].groups[1]", 17),
    ("spans[1].groups[1].b", 18),
    ("spans[2].framing", 20),
    ("spans[2].inline.x", 21),
    ("spans[2].inline.y.z", 21),
    ("spans[2].ports", 22),
    ("spans[2].ports[0]", 23),
    ("spans[2].ports[2]", 24),
    ("spans[2].ports[3]", 26),
    ("spans[2].chans[0].sig", 29),
    ("spans[2].chans[1]", 30),
    ("spans[2].chans[1].range", 30),
    ("spans[2].chans[1].sig", 30),
    ("spans[2].chans[2].sig", 31),
    ("spans[2].text", 33),
    ("spans[2].after", 37),
    ("spans[2].raw", 38),
    ("spans[2].dt", 40),
    ("spans[2].last", 41),
    ('a."b.c".d', 42),
    ('a."b.c".d.e', 43),
])
def test_line_of_each_construct(path, line):
    cfg = loads(POSITIONS, "pos.toml")
    assert cfg.line_of(path) == line


def test_strings_do_not_create_tables():
    lines = locate(POSITIONS)
    assert ("not",) not in lines and ("spans", 2, "key") not in lines


def test_missing_key_falls_back_to_its_table_header():
    cfg = loads(POSITIONS, "pos.toml")
    assert cfg.line_of("spans[1].coding") == 11
    assert cfg.line_of("spans[1].extra.nothing") == 13
    assert cfg.line_of("nothing.at.all") is None


def test_crlf_and_tabs():
    cfg = loads("a = 1\r\n[t]\r\n\tb\t=\t2\r\n", "crlf.toml")
    assert cfg.line_of("t.b") == 3
    assert cfg.table("t").get_int("b") == 2


def test_multiline_basic_string_with_escaped_quotes_and_trailing_quotes():
    text = 's = """a \\""" b\n c"""""\nafter = 1\n'
    cfg = loads(text)
    assert cfg.data["s"].endswith('c""')
    assert cfg.line_of("after") == 3


def test_key_path_round_trip():
    for s in ["spans[2].framing", 'boards."sim://a".law', "a[0][1].b", "x-y_z"]:
        assert format_key(parse_key(s)) == s
    assert parse_key("spans[2].framing") == ("spans", 2, "framing")


# -- errors: syntax, files ---------------------------------------------------

def test_syntax_error_reports_file_and_line(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text("a = 1\n[t]\nb = \n")
    with pytest.raises(ConfigError) as ei:
        load(p)
    err = ei.value
    assert err.file == str(p) and err.line == 3 and err.key is None
    assert str(err).startswith(f"{p}:3: TOML syntax error: ")


def test_duplicate_key_is_a_located_error():
    with pytest.raises(ConfigError) as ei:
        loads("a = 1\n\na = 2\n", "dup.toml")
    assert ei.value.line == 3 and "dup.toml:3:" in str(ei.value)


def test_unterminated_string_at_end():
    with pytest.raises(ConfigError) as ei:
        loads('a = 1\nb = """never closed\n', "end.toml")
    assert ei.value.line is not None and ei.value.line >= 2
    assert str(ei.value).startswith("end.toml:")


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError) as ei:
        load(tmp_path / "nope.toml")
    assert "cannot read config" in str(ei.value) and "nope.toml" in str(ei.value)


def test_bad_utf8_line(tmp_path):
    p = tmp_path / "enc.toml"
    p.write_bytes(b"a = 1\nb = '\xff'\n")
    with pytest.raises(ConfigError) as ei:
        load(p)
    assert ei.value.line == 2 and "UTF-8" in str(ei.value)


def test_error_str_format():
    e = ConfigError("site.toml", 14, ("spans", 2, "framing"), "expected one of cas, ccs, got 'cass'")
    assert str(e) == "site.toml:14: key 'spans[2].framing': expected one of cas, ccs, got 'cass'"
    assert str(ConfigError("f.toml", None, None, "m")) == "f.toml: m"
    assert isinstance(e, ValueError)


def test_error_pickles_with_its_fields():
    import pickle
    e = pickle.loads(pickle.dumps(ConfigError("f.toml", 3, ("a", 0, "b"), "bad")))
    assert (e.file, e.line, e.key, e.message) == ("f.toml", 3, "a[0].b", "bad")
    assert str(e) == "f.toml:3: key 'a[0].b': bad"


# -- typed readers ---------------------------------------------------------------

READ = doc('''
    [[spans]]
    framing = "cas"
    [[spans]]
    framing = "cass"
    crc4 = "yes"
    count = 40
    flag = 1
    level = -10
    names = ["a", 2]
    sub = 3
''')


def test_choices_error_message_and_position():
    cfg = loads(READ, "site.toml")
    spans = cfg.sections("spans")
    assert spans[0].get_str("framing", choices=("cas", "ccs")) == "cas"
    with pytest.raises(ConfigError) as ei:
        spans[1].get_str("framing", choices=("cas", "ccs"))
    assert str(ei.value) == "site.toml:4: key 'spans[1].framing': expected one of cas, ccs, got 'cass'"


def test_type_errors():
    s = loads(READ, "r.toml").sections("spans")[1]
    with pytest.raises(ConfigError, match=r"r.toml:5: key 'spans\[1\].crc4': expected true or false, got string 'yes'"):
        s.get_bool("crc4")
    with pytest.raises(ConfigError, match=r":7: key 'spans\[1\].flag': expected true or false, got int 1"):
        s.get_bool("flag")
    with pytest.raises(ConfigError, match=r"expected an integer, got string"):
        s.get_int("framing")
    with pytest.raises(ConfigError, match=r":9: key 'spans\[1\].names\[1\]': expected a string, got int 2"):
        s.get_list("names", item=str)
    with pytest.raises(ConfigError, match=r"expected a table, got int 3"):
        s.table("sub")
    with pytest.raises(ConfigError, match=r"expected an array of tables"):
        s.tables("sub")


def test_bool_is_not_an_int():
    cfg = loads("b = true\n", "b.toml")
    with pytest.raises(ConfigError, match="expected an integer, got boolean true"):
        cfg.get_int("b")


def test_ranges_and_defaults():
    s = loads(READ, "r.toml").sections("spans")[1]
    with pytest.raises(ConfigError, match=r":6: key 'spans\[1\].count': expected between 1 and 31, got 40"):
        s.get_int("count", min=1, max=31)
    assert s.get_int("count", min=1) == 40
    with pytest.raises(ConfigError, match="expected at most 0"):
        s.get_float("count", max=0)
    assert s.get_float("level", min=-60.0, max=3.0) == -10.0
    assert s.get_str("missing", default="x") == "x"
    assert s.get_int("missing", default=None) is None
    with pytest.raises(ConfigError, match=r"r.toml:3: key 'spans\[1\].coding': missing \(required, a string\)"):
        s.get_str("coding")


def test_optional_and_required_tables():
    cfg = loads(READ, "r.toml")
    empty = cfg.section("board")
    assert empty.data == {} and empty.get_str("uri", default="sim://x") == "sim://x"
    with pytest.raises(ConfigError, match="missing \\(required table\\)"):
        cfg.section("board", required=True)
    assert cfg.sections("nothing") == []
    with pytest.raises(ConfigError, match=r"at least one \[\[ports\]\]"):
        cfg.sections("ports", required=True)


def test_unknown_key_with_suggestion():
    cfg = loads('[span]\nframing = "cas"\nframng = "cas"\n', "u.toml")
    with pytest.raises(ConfigError) as ei:
        cfg.section("span").check_keys({"framing", "coding", "crc4"})
    assert str(ei.value) == "u.toml:3: key 'span.framng': unknown key (did you mean 'framing'?)"


def test_unknown_key_without_close_match_lists_allowed():
    cfg = loads('zzz = 1\n', "u.toml")
    with pytest.raises(ConfigError, match=r"u.toml:1: key 'zzz': unknown key \(allowed here: a, b\)"):
        cfg.check_keys(["b", "a"])
    cfg.check_keys(["zzz"])  # known key: no error


def test_node_error_for_validator_checks():
    cfg = loads(READ, "r.toml")
    s = cfg.sections("spans")[1]
    e = s.error("count", "overlaps span 0")
    assert str(e) == "r.toml:6: key 'spans[1].count': overlaps span 0"
    assert str(s.error(None, "whole span")) == "r.toml:3: key 'spans[1]': whole span"
    assert s.error(("names", 0), "x").line == 9


# -- property: every key of a generated document is found on the line that wrote it ----

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_keys = st.sampled_from(["a", "b", "spans", "x-y", "k_1", "a b", "x.y", 'q"t', "ключ"])
_scalars = (st.integers(-10**6, 10**6) | st.booleans() | st.floats(allow_nan=False, allow_infinity=False)
            | st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=8))
_values = st.recursive(
    _scalars | st.lists(st.integers(0, 9), max_size=3),
    lambda inner: (st.dictionaries(_keys, inner, max_size=3)
                   | st.lists(st.dictionaries(_keys, inner, max_size=3), min_size=1, max_size=3)),
    max_leaves=12)


def _q(k: str) -> str:
    import json
    import re
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k, ensure_ascii=False)


def _val(v) -> str:
    import json
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    return "[" + ", ".join(_val(x) for x in v) + "]"


def _is_aot(v) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)


def _emit(d: dict, path: tuple, keys: tuple, lines: list, expect: dict) -> None:
    for k, v in d.items():
        if not isinstance(v, dict) and not _is_aot(v):
            lines.append(f"{_q(k)} = {_val(v)}")
            expect[path + (k,)] = len(lines)
    for k, v in d.items():
        if isinstance(v, dict):
            lines.append("[" + ".".join(_q(x) for x in keys + (k,)) + "]   # table")
            expect[path + (k,)] = len(lines)
            _emit(v, path + (k,), keys + (k,), lines, expect)
    for k, v in d.items():
        if _is_aot(v):
            for i, el in enumerate(v):
                lines.append("[[" + ".".join(_q(x) for x in keys + (k,)) + "]]")
                expect[path + (k, i)] = len(lines)
                _emit(el, path + (k, i), keys + (k,), lines, expect)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(_keys, _values, max_size=5))
def test_generated_documents_locate_every_key(doc):
    lines: list[str] = ["# generated"]
    expect: dict = {}
    _emit(doc, (), (), lines, expect)
    text = "\n".join(lines) + "\n"
    cfg = loads(text, "gen.toml")
    assert cfg.data == doc                       # the writer wrote what we think it wrote
    for path, line in expect.items():
        assert cfg.line_of(path) == line, (path, text)


def test_lines_of_array_elements_long_lists_comments_and_escapes():
    text = ('a = [\n "x", # "not" an item, [nor] this\n "y" ,\n\'z\']\n'
            'b = ["q\\"", 1,\n [2, "w"]]\n'
            'big = [\n' + "".join(f'  "1380{i:07d}",\n' for i in range(5000)) + "]\n")
    cfg = loads(text)
    assert [cfg.line_of(("a", i)) for i in range(3)] == [2, 3, 4]
    assert cfg.line_of(("a", 3)) == 1          # no such element: the key's line
    assert [cfg.line_of(("b", i)) for i in range(3)] == [5, 5, 6]
    assert cfg.line_of(("b", 2, 1)) == 6
    assert cfg.line_of(("big", 0)) == 8 and cfg.line_of(("big", 4999)) == 5007
    assert cfg.data["big"][4999] == "13800004999"
    with pytest.raises(ConfigError) as exc:
        cfg.get_list("big", item=int)
    assert exc.value.line == 8
