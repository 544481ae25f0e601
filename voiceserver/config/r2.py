"""[r2] of the server config: E1 trunk groups with R2 signalling (docs/r2.md).

::

    [r2.groups.ct]                     # a trunk group: its name is also its hunt group's
    channels = "e1:1-15,17-31"         # BOARD:RANGE, or a list of them (E1 CAS channels)
    variant = "cn"                     # voiceserver/r2/variants: cn itu mx br ar
    release_control = "calling"        # mutual | calling | called (default: the variant's)
    answer_alarm = 20                  # s: call.answer_alarm when not answered by then
    ani = "01062345678"                # what our outgoing calls send as ANI
    category = "national_subscriber"   # and as calling party category
    direction = "both"                 # both | in | out
    default_flow = "main"              # a DNIS not in numbers (absent: unallocated)
    trace = true                       # call.signal events (voiceboard r2trace)

    [r2.groups.ct.numbers."95566"]     # one-stage: the DNIS chooses the flow
    flow = "hotline"
    [r2.groups.ct.numbers."8000"]      # two-stage: answered, the flow collects an extension
    flow = "extension"
    stage = 2
    charge = false                     # accept without charge (B-7 in China)

    [r2.groups.ct.override.timers]     # the variant's tables, changed for this group
    mf_back_cycle = 3000

Errors name the file, the line and the key, as everywhere in the config.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from boarddrv.chanref import ChannelRef
from boarddrv.tomlconfig import ConfigError, Node
from voiceserver.r2.actions import Cause
from voiceserver.r2.variants import Variant, load_variant, variant_names

__all__ = ["R2Number", "R2Group", "parse_r2", "RELEASE_CONTROLS"]

RELEASE_CONTROLS = ("mutual", "calling", "called")
DIRECTIONS = ("both", "in", "out")
REFUSE_CAUSES = ("busy", "congestion", "unallocated", "out-of-order")


@dataclass(frozen=True)
class R2Number:
    """A DNIS of a trunk group: the flow it reaches, one- or two-stage, charged or not."""
    dnis: str
    flow: str
    stage: int = 1
    charge: bool = True


@dataclass(frozen=True)
class R2Group:
    name: str
    channels: tuple[ChannelRef, ...]
    variant: Variant
    answer_alarm_ms: int = 20_000
    ani: str = ""
    category: str = "national_subscriber"
    direction: str = "both"
    default_flow: str | None = None
    trace: bool = True
    numbers: Mapping[str, R2Number] = field(default_factory=dict)
    unknown_cause: str = "unallocated"     # a DNIS with no number and no default_flow

    def decide(self, dnis: str, ani: str, category: str, screen: Callable[[str], bool] | None = None
               ) -> tuple[bool, Cause, bool, str | None, int]:
        """(accept, cause when refused, charge, flow, stage) for an incoming call.

        `screen(ani)`: False refuses the caller (the blacklist's reject) as busy."""
        if screen is not None and not screen(ani):
            return False, Cause.BUSY, True, None, 1
        number = self.numbers.get(dnis)
        if number is not None:
            return True, Cause.NORMAL, number.charge, number.flow, number.stage
        if self.default_flow is not None:
            return True, Cause.NORMAL, True, self.default_flow, 1
        return False, Cause(self.unknown_cause), True, None, 1


def parse_r2(node: Node, refs: Callable[[Node, str], tuple[ChannelRef, ...]]) -> tuple[R2Group, ...]:
    """[r2]: its trunk groups. `refs` reads BOARD:RANGE keys (the [channels] reader).
    The flows they name are checked by `check_flows`, once the IVR is read."""
    node.check_keys({"groups"})
    groups_node = node.table("groups", required=True)
    out: list[R2Group] = []
    seen: dict[ChannelRef, str] = {}
    for name in groups_node.keys():
        g = groups_node.table(name)
        g.check_keys({"channels", "variant", "release_control", "answer_alarm", "ani", "category",
                      "direction", "default_flow", "trace", "numbers", "override", "unknown_cause"})
        channels = refs(g, "channels")
        if not channels:
            raise g.error("channels", "a trunk group needs at least one channel")
        for ref in channels:
            if ref in seen:
                raise g.error("channels", f"channel {ref[0]}:{ref[1]} is already in trunk group "
                                          f"'{seen[ref]}'")
            seen[ref] = name
        vname = g.get_str("variant", "cn", choices=variant_names())
        override = g.table("override")
        if "release_control" in g:
            rc = g.get_str("release_control", choices=RELEASE_CONTROLS)
            data = dict(override.data)
            data["line"] = {**dict(data.get("line", {})), "release_control": rc}
            override = Node(override.config, override.keypath, data)
        try:
            variant = load_variant(vname, override if override.data else None)
        except ValueError as exc:
            if isinstance(exc, ConfigError):
                raise
            raise g.error("variant", str(exc)) from None
        category = g.get_str("category", "national_subscriber")
        try:
            variant.group_ii.signal_of(category)
        except ValueError as exc:
            raise g.error("category", str(exc)) from None
        ani = g.get_str("ani", "")
        if any(c not in "0123456789" for c in ani) or len(ani) > variant.register.max_ani:
            raise g.error("ani", f"expected up to {variant.register.max_ani} digits 0-9, got {ani!r}")
        default_flow = g.get_str("default_flow") if "default_flow" in g else None
        numbers: dict[str, R2Number] = {}
        nums = g.table("numbers")
        for dnis in nums.keys():
            if not dnis.isdigit() or len(dnis) > variant.register.max_dnis:
                raise nums.error(dnis, f"a number is up to {variant.register.max_dnis} digits 0-9, "
                                       f"got {dnis!r}")
            n = nums.table(dnis)
            n.check_keys({"flow", "stage", "charge"})
            flow = n.get_str("flow")
            stage = n.get_int("stage", 1, min=1, max=2)
            numbers[dnis] = R2Number(dnis, flow, stage, n.get_bool("charge", True))
        out.append(R2Group(
            name=name, channels=channels, variant=variant,
            answer_alarm_ms=int(g.get_float("answer_alarm", 20.0, min=1.0, max=600.0) * 1000),
            ani=ani, category=category, direction=g.get_str("direction", "both", choices=DIRECTIONS),
            default_flow=default_flow, trace=g.get_bool("trace", True),
            numbers=MappingProxyType(numbers),
            unknown_cause=g.get_str("unknown_cause", "unallocated", choices=REFUSE_CAUSES)))
    return tuple(out)


def check_flows(node: Node, groups: tuple[R2Group, ...], flows: set[str],
                collects: Callable[[str], bool]) -> None:
    """Every flow a group names exists; a two-stage number's flow starts with a menu that
    takes input (`collects`): it answers and collects the extension by DTMF."""
    known = ", ".join(sorted(flows))
    for g in groups:
        gn = node.table("groups").table(g.name)
        if g.default_flow is not None and g.default_flow not in flows:
            raise gn.error("default_flow", f"no such flow '{g.default_flow}' (flows: {known})")
        for dnis, number in g.numbers.items():
            n = gn.table("numbers").table(dnis)
            if number.flow not in flows:
                raise n.error("flow", f"no such flow '{number.flow}' (flows: {known})")
            if number.stage == 2 and not collects(number.flow):
                raise n.error("stage", f"a two-stage number answers and collects an extension by "
                                       f"DTMF: flow '{number.flow}' must start with a menu that "
                                       f"takes input")


def group_of(groups: tuple[R2Group, ...], ref: ChannelRef) -> R2Group | None:
    for g in groups:
        if ref in g.channels:
            return g
    return None


def describe(groups: tuple[R2Group, ...]) -> list[dict[str, Any]]:
    """The trunk groups as plain data (status views)."""
    return [{"name": g.name, "variant": g.variant.name, "channels": len(g.channels),
             "release_control": g.variant.line.release_control, "numbers": sorted(g.numbers)}
            for g in groups]
