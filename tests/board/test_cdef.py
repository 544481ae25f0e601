"""The cffi declarations and the Python vocabularies agree with the C headers."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from boarddrv import errors
from boarddrv._ffi import load
from boarddrv.events import (
    CHAN_COUNTERS,
    CLOCKS,
    CODINGS,
    FRAMINGS,
    LAWS,
    SPAN_COUNTERS,
    SPAN_KINDS,
    ChannelType,
    CommandKind,
    EventKind,
)

EXT = Path(__file__).resolve().parents[2] / "ext"
ffi, lib = load()


def _strip_comments(text: str) -> str:
    return re.sub(r"/\*.*?\*/", "", text, flags=re.S)


def _header_enums() -> dict[str, int]:
    text = _strip_comments((EXT / "vb.h").read_text())
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"\b(VB_[A-Z0-9_]+)\s*=\s*(-?\d+)", text)}


def _header_functions(name: str) -> set[str]:
    text = _strip_comments((EXT / name).read_text())
    return set(re.findall(r"^[a-z][\w\s\*]*?\b(vb_\w+)\(", text, flags=re.M))


def test_cdef_has_no_preprocessor_lines():
    for line in (EXT / "vb_cdef.h").read_text().splitlines():
        assert not line.lstrip().startswith("#"), line


def test_every_header_constant_reaches_python_with_its_value():
    enums = _header_enums()
    assert len(enums) > 60
    for k, v in enums.items():
        assert getattr(lib, k) == v, k


@pytest.mark.parametrize("header", ["vb.h", "vb_simdev.h"])
def test_every_exported_function_is_declared(header):
    funcs = _header_functions(header)
    assert len(funcs) > 10
    for f in sorted(funcs):
        assert hasattr(lib, f), f


@pytest.mark.parametrize("enum, prefix", [
    (ChannelType, "VB_CHAN_"), (EventKind, "VB_EV_"), (CommandKind, "VB_CMD_")])
def test_python_enums_are_the_c_numbers(enum, prefix):
    for member in enum:
        assert getattr(lib, prefix + member.name) == member.value


@pytest.mark.parametrize("table, prefix", [
    (SPAN_KINDS, "VB_SPAN_"), (FRAMINGS, "VB_FRAMING_"), (CODINGS, "VB_CODING_"),
    (LAWS, "VB_LAW_"), (CLOCKS, "VB_CLOCK_")])
def test_name_tables_are_the_c_numbers(table, prefix):
    for name, value in table.items():
        assert getattr(lib, prefix + name.upper()) == value


def test_counter_tables_match_the_c_sizes():
    assert len(SPAN_COUNTERS) == lib.VB_SPAN_NCOUNTERS
    assert len(CHAN_COUNTERS) == lib.VB_CHAN_NCOUNTERS
    assert lib.VB_SCNT_BPV == SPAN_COUNTERS.index("bpv")
    assert lib.VB_CCNT_CAS_CHANGES == CHAN_COUNTERS.index("cas_changes")


@pytest.mark.parametrize("code, cls", [
    ("VB_EINVAL", errors.InvalidArgument), ("VB_ENOBOARD", errors.NoSuchBoard),
    ("VB_ELOST", errors.BoardLost), ("VB_ECHAN", errors.BadChannel),
    ("VB_ESCHEME", errors.UnknownScheme), ("VB_ENOBACKEND", errors.BackendUnavailable),
    ("VB_EBUSY", errors.BoardBusy), ("VB_ETIMEDOUT", errors.TickTimeout),
    ("VB_ESPAN", errors.BadChannel), ("VB_ESYS", errors.BoardError), ("VB_EAGAIN", errors.BoardError),
    ("VB_EPERM", errors.NotOwner)])
def test_each_code_raises_its_class(code, cls):
    rc = getattr(lib, code)
    with pytest.raises(cls, match="detail here") as ei:
        errors._check(rc, "detail here")
    assert type(ei.value) is cls and ei.value.code == rc
    assert errors._check(0, "fine") == 0 and errors._check(5, "fine") == 5


def test_strerror_names_every_code():
    for k, v in _header_enums().items():
        if k.startswith("VB_E") and v < 0:
            assert ffi.string(lib.vb_strerror(v)).decode() != "unknown error", k
    assert ffi.string(lib.vb_strerror(-999)) == b"unknown error"
