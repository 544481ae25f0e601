"""R2 variant tables: the line bits, timers and MF signal meanings of a country.

The tables are TOML files in ``voiceserver/r2/variants/`` (package data):
``itu.toml`` holds the ITU-T values and each country file names it as its
``base`` and lists only what differs. A span can change any value of its
variant with an override table (``[spans.r2]`` in a server config, or a
plain dict), merged over the variant and checked by the same reader, so a
bad value is reported at its own file and line::

    variant = load_variant("cn", override=span_node.table("r2"))

Signal numbers are 1-15 (ITU-T Q.441 order, 10 is digit 0); 0 means the
variant has no such signal.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from importlib import resources
from typing import Any

from boarddrv.tomlconfig import Config, ConfigError, Node, loads

__all__ = ["Variant", "LineBits", "Timers", "RegisterRules", "GroupA", "GroupB", "GroupC", "GroupI",
           "GroupII", "RELEASE_CONTROLS", "VARIANTS", "load_variant", "variant_names"]

RELEASE_CONTROLS = ("mutual", "calling", "called")
VARIANTS = ("itu", "cn", "mx", "br", "ar")


@dataclass(frozen=True)
class LineBits:
    """A and B bits ("10") of each line signal, the fixed C and D, release control."""
    cd: str
    idle: str
    seize: str
    seize_ack: str
    answer: str
    clear_back: str
    clear_forward: str
    blocked: str
    forced_release: str
    release_control: str
    double_answer: bool

    def abcd(self, ab: str) -> str:
        """The four bits sent for A and B bits `ab`."""
        return ab + self.cd


@dataclass(frozen=True)
class Timers:
    """Line and register timers in milliseconds (see itu.toml for each one's meaning)."""
    persistence: int
    seize_ack: int
    glare_hold: int
    answer: int
    answer_delay: int
    double_answer: int
    clear_back_hold: int
    clear_forward_hold: int
    release_wait: int
    release_guard: int
    mf_back_cycle: int
    mf_pulse: int
    mf_fwd_safety: int
    offer: int


@dataclass(frozen=True)
class RegisterRules:
    max_dnis: int
    max_ani: int
    ani_after_dnis_digits: int
    dnis_end: str          # "signal" (I-15) or "timeout"


@dataclass(frozen=True)
class GroupA:
    next_dnis: int
    dnis_minus_1: int
    dnis_minus_2: int
    dnis_minus_3: int
    all_dnis_again: int
    next_ani: int
    category: int
    category_and_change_to_c: int
    change_to_b: int
    address_complete_charge: int
    congestion: int


@dataclass(frozen=True)
class GroupB:
    accept_charge: int
    accept_no_charge: int
    special_info: int
    busy: int
    congestion: int
    unallocated: int
    out_of_order: int
    number_changed: int


@dataclass(frozen=True)
class GroupC:
    next_ani: int
    change_to_b: int
    next_dnis_change_to_a: int
    congestion: int


@dataclass(frozen=True)
class GroupI:
    end_of_dnis: int
    end_of_ani: int
    ani_restricted: int


@dataclass(frozen=True)
class GroupII:
    national_subscriber: int
    national_priority_subscriber: int
    test_equipment: int
    international_subscriber: int
    international_priority_subscriber: int
    collect_call: int
    pay_phone: int

    def signal_of(self, category: str) -> int:
        """The group II signal of a category name; ValueError if this variant has none."""
        signal = getattr(self, category, 0) if category in _names(GroupII) else 0
        if not signal:
            raise ValueError(f"category {category!r} has no group II signal in this variant "
                             f"(have: {', '.join(n for n in _names(GroupII) if getattr(self, n))})")
        return int(signal)

    def name_of(self, signal: int) -> str:
        """The category name of a group II signal ("unknown-N" if the variant has none)."""
        for name in _names(GroupII):
            if getattr(self, name) == signal:
                return name
        return f"unknown-{signal}"


@dataclass(frozen=True)
class Variant:
    name: str
    country: str
    line: LineBits
    timers: Timers
    register: RegisterRules
    group_a: GroupA
    group_b: GroupB
    group_c: GroupC
    group_i: GroupI
    group_ii: GroupII


def _names(cls: type) -> list[str]:
    return [f.name for f in fields(cls)]


_SECTIONS: dict[str, type] = {"line": LineBits, "timers": Timers, "register": RegisterRules,
                              "group_a": GroupA, "group_b": GroupB, "group_c": GroupC,
                              "group_i": GroupI, "group_ii": GroupII}
_AB_KEYS = ("idle", "seize", "seize_ack", "answer", "clear_back", "clear_forward", "blocked", "forced_release")


def _read_section(node: Node, cls: type, base: Any) -> Any:
    """One table read over `base` (a dataclass of the same kind, or None: every key required)."""
    node.check_keys(_names(cls))
    values: dict[str, Any] = {}
    for name in _names(cls):
        default = getattr(base, name) if base is not None else ...
        kw = {} if default is ... else {"default": default}
        if cls is LineBits:
            if name == "release_control":
                values[name] = node.get_str(name, choices=RELEASE_CONTROLS, **kw)
            elif name == "double_answer":
                values[name] = node.get_bool(name, **kw)
            else:
                v = node.get_str(name, **kw)
                if len(v) != 2 or set(v) - {"0", "1"}:
                    raise node.error(name, f"expected two bits like \"10\", got {v!r}")
                values[name] = v
        elif cls is Timers:
            values[name] = node.get_int(name, min=0, max=600000, **kw)
        elif cls is RegisterRules:
            if name == "dnis_end":
                values[name] = node.get_str(name, choices=("signal", "timeout"), **kw)
            else:
                values[name] = node.get_int(name, min=0, max=32, **kw)
        else:
            values[name] = node.get_int(name, min=0, max=15, **kw)
    return cls(**values)


def _check(node: Node, v: Variant) -> None:
    """Rules across keys: what the state machines could not work with."""
    line = v.line
    if line.seize == line.idle or line.answer in (line.idle, line.seize, line.seize_ack):
        raise node.error(("line",), "idle, seize, seize_ack and answer must be different bit patterns")
    if v.timers.persistence >= v.timers.seize_ack:
        raise node.error(("timers", "persistence"), "the debounce time must be shorter than the seize ack timer")
    if v.register.max_dnis < 1:
        raise node.error(("register", "max_dnis"), "at least 1 digit")
    if not v.group_a.next_dnis or not v.group_a.change_to_b:
        raise node.error(("group_a",), "next_dnis and change_to_b are required (non-zero)")
    if not (v.group_a.category or v.group_a.category_and_change_to_c):
        raise node.error(("group_a",), "one of category or category_and_change_to_c is required")
    if v.group_a.category_and_change_to_c and not v.group_c.next_ani:
        raise node.error(("group_c", "next_ani"), "category_and_change_to_c needs group C's next_ani")
    if v.register.dnis_end == "signal" and not v.group_i.end_of_dnis:
        raise node.error(("register", "dnis_end"), "\"signal\" needs group_i.end_of_dnis (non-zero)")
    b = v.group_b
    accepts = {s for s in (b.accept_charge, b.accept_no_charge, b.special_info) if s}
    fails = {s for s in (b.busy, b.congestion, b.unallocated, b.out_of_order, b.number_changed) if s}
    if not b.accept_charge or accepts & fails:
        raise node.error(("group_b",), "accept_charge is required and no accept signal may also "
                                       f"mean a failure (both: {sorted(accepts & fails)})")
    for d in range(1, 11):
        if d in (v.group_i.end_of_dnis, v.group_i.end_of_ani, v.group_i.ani_restricted):
            raise node.error(("group_i",), f"signal {d} is a digit; end and restricted signals are 11-15")


def _read_variant(node: Node, base: Variant | None) -> Variant:
    node.check_keys(["name", "country", "base", *_SECTIONS])
    parts: dict[str, Any] = {}
    for key, cls in _SECTIONS.items():
        parts[key] = _read_section(node.table(key, required=base is None), cls,
                                   getattr(base, key) if base is not None else None)
    if base is None:
        name, country = node.get_str("name"), node.get_str("country", "")
    else:
        name, country = node.get_str("name", base.name), node.get_str("country", base.country)
    variant = Variant(name=name, country=country, **parts)
    _check(node, variant)
    return variant


def variant_names() -> list[str]:
    """The variants shipped in the package."""
    return list(VARIANTS)


def _load_file(name: str, seen: tuple[str, ...] = ()) -> Variant:
    if name in seen:
        raise ConfigError(f"{seen[-1]}.toml", None, "base", f"base loop: {' -> '.join((*seen, name))}")
    if name not in VARIANTS:
        raise ValueError(f"unknown R2 variant {name!r} (have: {', '.join(VARIANTS)})")
    text = resources.files("voiceserver.r2").joinpath("variants", f"{name}.toml").read_text("utf-8")
    cfg = loads(text, f"voiceserver/r2/variants/{name}.toml")
    base_name = cfg.get_str("base", "")
    base = _load_file(base_name, (*seen, name)) if base_name else None
    return _read_variant(cfg, base)


def load_variant(name: str, override: Node | dict[str, Any] | None = None) -> Variant:
    """A shipped variant, with a span's override merged over it.

    `override` has the same tables as a variant file (``line``, ``timers``,
    ``register``, ``group_a`` ...), each key optional. Given as a Node (a
    table of a config file) its errors name that file and line; a plain dict
    is checked the same way, without a line.
    """
    variant = _load_file(name)
    if override is None:
        return variant
    node = override if isinstance(override, Node) else Config("<override>", "", dict(override))
    for key in ("name", "base"):
        if key in node:
            raise node.error(key, "a span override cannot rename or rebase its variant")
    return _read_variant(node, variant)
