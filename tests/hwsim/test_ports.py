"""The protocols the parts of a board declare (hwsim.ports, hwsim.parties.PartyWorld)
match both sides: BoardWorld provides every member of each, and each part uses
exactly the members its protocol lists (so neither side drifts)."""
from __future__ import annotations

import ast
import inspect
from pathlib import Path
from typing import Protocol

import pytest

from hwsim.config import config_from_text
from hwsim.parties import PartyWorld
from hwsim.ports import LineWorld, PhoneWorld, R2World, SpanWorld, TrunkWorld
from hwsim.simtime import SimClock
from hwsim.world import BoardWorld

from worldkit import E1, HOTLINE

HWSIM = Path(__file__).resolve().parents[2] / "hwsim"

# protocol -> the module of the part that types its world with it
PARTS = {LineWorld: "lines", PhoneWorld: "phones", TrunkWorld: "trunks", SpanWorld: "e1", R2World: "r2far",
         PartyWorld: "parties"}


def protocol_members(proto: type) -> set[str]:
    """The names a protocol declares: methods, properties and annotated attributes (with its bases')."""
    names: set[str] = set()
    for cls in proto.__mro__:
        if cls in (object, Protocol) or not getattr(cls, "_is_protocol", False):
            continue
        names.update(inspect.get_annotations(cls))
        names.update(n for n, v in cls.__dict__.items()
                     if not n.startswith("_") and (callable(v) or isinstance(v, property)))
    return names


def world_uses(module: str) -> set[str]:
    """Attributes a part's source reads of its world: `self.world.X` and `w.X` (w = self.world)."""
    tree = ast.parse((HWSIM / f"{module}.py").read_text())
    out = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        v = node.value
        if (isinstance(v, ast.Attribute) and v.attr == "world") or (isinstance(v, ast.Name) and v.id == "w"):
            out.add(node.attr)
    return out


@pytest.fixture(scope="module")
def worlds() -> list[BoardWorld]:
    """A hotline (lines, phones) and an E1 site (spans, CAS trunks)."""
    return [BoardWorld(config_from_text(text, name).boards[0], SimClock(160))
            for text, name in ((HOTLINE, "hotline.toml"), (E1, "e1.toml"))]


@pytest.mark.parametrize("proto", list(PARTS), ids=lambda p: p.__name__)
def test_board_world_provides_every_member(proto, worlds):
    members = protocol_members(proto)
    assert members, f"{proto.__name__} declares nothing"
    for world in worlds:
        missing = sorted(m for m in members if not hasattr(world, m))
        assert not missing, f"BoardWorld lacks {proto.__name__} members {missing}"
    for name in members:
        declared = inspect.getattr_static(proto, name, None)
        actual = inspect.getattr_static(BoardWorld, name, None)
        if isinstance(declared, property):
            assert isinstance(actual, property), f"{proto.__name__}.{name} is a property, BoardWorld's is not"
        elif callable(declared):
            want = inspect.signature(declared).parameters
            have = inspect.signature(actual).parameters
            for p, param in want.items():
                assert p in have, f"BoardWorld.{name} has no parameter {p!r} ({proto.__name__})"
                assert have[p].kind == param.kind, f"BoardWorld.{name}({p}): {have[p].kind} vs {param.kind}"


@pytest.mark.parametrize("proto", list(PARTS), ids=lambda p: p.__name__)
def test_each_part_uses_exactly_its_protocol(proto):
    module = PARTS[proto]
    uses, members = world_uses(module), protocol_members(proto)
    assert uses - members == set(), f"hwsim/{module}.py uses world members its {proto.__name__} lacks"
    assert members - uses == set(), f"{proto.__name__} lists members hwsim/{module}.py never uses"


def test_protocol_members_sees_inherited_properties_and_attributes():
    assert {"timeline", "clock", "seconds", "party", "post", "set_dead"} <= protocol_members(PhoneWorld)
    assert "post" not in protocol_members(TrunkWorld)
