"""The event catalogue: one typed list in code, every kind documented, nothing else published."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from voiceserver.core.events import EventBus, ServerEventKind

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "events.md"


def documented() -> set[str]:
    """Kinds named in the first column of docs/events.md's tables."""
    kinds: set[str] = set()
    for line in DOC.read_text().splitlines():
        m = re.match(r"\| (`[a-z_.]+`(?: / `[a-z_.]+`)*) \|", line)
        if m:
            kinds |= set(re.findall(r"`([a-z_.]+)`", m.group(1)))
    return kinds


def test_docs_list_every_kind_and_no_other():
    in_code = {k.value for k in ServerEventKind}
    docs = documented()
    assert not in_code - docs, f"docs/events.md misses {sorted(in_code - docs)}"
    assert not docs - in_code, f"docs/events.md names kinds the server never publishes: {sorted(docs - in_code)}"


def test_every_kind_is_published_somewhere_and_only_through_the_catalogue():
    """Each member is used by a publisher (no dead kinds), and no event kind is a bare string."""
    used: set[str] = set()
    bare: list[str] = []
    for path in (REPO / "voiceserver").rglob("*.py"):
        if path.name == "events.py" and path.parent.name == "core":
            continue                                    # the catalogue itself
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id == "ServerEventKind"):
                used.add(node.attr)
            if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                    and node.value in ServerEventKind._value2member_map_):
                bare.append(f"{path.relative_to(REPO)}:{node.lineno} {node.value!r}")
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "publish" and len(node.args) > 1
                    and isinstance(node.args[1], ast.Constant)):    # a kind outside the catalogue
                bare.append(f"{path.relative_to(REPO)}:{node.lineno} {node.args[1].value!r}")
    assert {k.name for k in ServerEventKind} <= used, sorted({k.name for k in ServerEventKind} - used)
    assert not bare, "event kinds written as strings: " + ", ".join(bare)


def test_the_bus_refuses_a_kind_outside_the_catalogue():
    bus = EventBus()
    with pytest.raises(ValueError):
        bus.publish(1, "call.answerd", chan=1)
    ev = bus.publish(2, "call.answer", chan=1)        # the name as a string is the member
    assert ev.kind is ServerEventKind.CALL_ANSWER and ev.as_dict()["kind"] == "call.answer"
    assert bus.last_seq == ev.seq == 1                 # the refused kind took no number


def documented_fields() -> dict[str, set[str]]:
    """kind -> the fields the third column of its docs/events.md row names (backticked)."""
    fields: dict[str, set[str]] = {}
    for line in DOC.read_text().splitlines():
        m = re.match(r"\| (`[a-z_.]+`(?: / `[a-z_.]+`)*) \|(.*)\|(.*)\|\s*$", line)
        if m:
            names = set(re.findall(r"`([a-z_]+)`", m.group(3))) - {"board"}
            for kind in re.findall(r"`([a-z_.]+)`", m.group(1)):
                fields[kind] = names
    return fields


def test_the_docs_name_each_kinds_fields_as_the_catalogue_does():
    from voiceserver.core.events import EVENT_FIELDS
    docs = documented_fields()
    wrong = {k.value: {"code": sorted(v), "docs": sorted(docs.get(k.value, set()))}
             for k, v in EVENT_FIELDS.items() if set(v) != docs.get(k.value, set())}
    assert not wrong, f"docs/events.md and EVENT_FIELDS differ: {wrong}"


def test_each_kind_has_a_json_schema_that_takes_its_events_and_refuses_a_stray_field():
    from voiceserver.core.events import EVENT_FIELDS, event_schema, unknown_fields
    for kind, fields in EVENT_FIELDS.items():
        schema = event_schema(kind)
        assert schema["properties"]["kind"] == {"const": kind.value}
        assert set(schema["properties"]) >= set(fields) and schema["additionalProperties"] is False
        assert unknown_fields(kind, {f: 1 for f in fields}) == []
        assert unknown_fields(kind, {"no_such_field": 1}) == ["no_such_field"]
