"""Trunk hunt groups: which line of a group an outbound call seizes, and glare.

Selection methods (DAHDI's dial-string group letters, plus least-used):

============================= ======= ==========================================
method                        DAHDI   picks
============================= ======= ==========================================
ascending                     g       the lowest free line
descending                    G       the highest free line
round-robin                   r       the next free line after the one used last
round-robin-descending        R       the same, going down
least-used                    -       the free line seized fewest times (then lowest)
============================= ======= ==========================================

Lines in alarm, blocked or busy are skipped, each with the reason.

Glare: on an analog or CAS trunk both ends can seize the same idle line at
the same moment; our outbound seizure then meets the exchange's inbound
ring. The inbound call wins the line (the exchange already committed it),
and the outbound call is retried on another line of the group, up to
``max_retries`` times (``Seizure``). Nothing here does I/O: the caller
reports line states and glare, and carries out the choices.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from boarddrv.chanref import ChannelRef

__all__ = ["METHODS", "ALIASES", "LINE_STATES", "HuntGroup", "HuntChoice", "Seizure",
           "canonical_method"]

METHODS = ("ascending", "descending", "round-robin", "round-robin-descending", "least-used")
ALIASES = {"g": "ascending", "G": "descending", "r": "round-robin", "R": "round-robin-descending"}
LINE_STATES = ("idle", "busy", "alarm", "blocked")


def canonical_method(name: str) -> str:
    m = ALIASES.get(name, name)
    if m not in METHODS:
        raise ValueError(f"unknown hunt method {name!r} (known: {', '.join(METHODS)}; "
                         f"DAHDI letters g G r R)")
    return m


def _ref(line: ChannelRef) -> str:
    return f"{line[0]}:{line[1]}"


@dataclass(frozen=True)
class HuntChoice:
    """A hunt's result: the line (None: none free), the order tried and the lines skipped."""

    group: str
    line: ChannelRef | None
    order: tuple[ChannelRef, ...]
    skipped: tuple[tuple[ChannelRef, str], ...]

    def explain(self) -> dict[str, object]:
        return {"group": self.group, "line": _ref(self.line) if self.line else None,
                "order": [_ref(x) for x in self.order],
                "skipped": [{"line": _ref(x), "why": w} for x, w in self.skipped]}


class HuntGroup:
    """A named group of trunk lines and its selection method (with round-robin memory)."""

    def __init__(self, name: str, lines: Sequence[ChannelRef], method: str = "ascending") -> None:
        if not lines:
            raise ValueError(f"hunt group {name}: no lines")
        if len(set(lines)) != len(lines):
            raise ValueError(f"hunt group {name}: a line is listed twice")
        self.name = name
        self.lines = tuple(sorted(lines))
        self.method = canonical_method(method)
        self.last: ChannelRef | None = None
        self.used: dict[ChannelRef, int] = {x: 0 for x in self.lines}

    def _order(self) -> list[ChannelRef]:
        lines = list(self.lines)
        m = self.method
        if m == "descending":
            return lines[::-1]
        if m == "least-used":
            return sorted(lines, key=lambda x: (self.used[x], x))
        if m in ("round-robin", "round-robin-descending"):
            if m == "round-robin-descending":
                lines.reverse()
            if self.last in lines:
                i = lines.index(self.last) + 1
                lines = lines[i:] + lines[:i]
        return lines

    def pick(self, status: Callable[[ChannelRef], str], exclude: Sequence[ChannelRef] = ()) -> HuntChoice:
        """The first line in method order whose status is idle and that is not excluded.

        ``status(line)`` is one of LINE_STATES. Does not seize: call ``seized``
        when the line is actually used (so a hunt can be explained without
        moving the round-robin pointer).
        """
        order = self._order()
        skipped: list[tuple[ChannelRef, str]] = []
        for line in order:
            st = status(line)
            if line in exclude:
                skipped.append((line, "glare on this line: not retried"))
            elif st != "idle":
                skipped.append((line, st))
            else:
                return HuntChoice(self.name, line, tuple(order), tuple(skipped))
        return HuntChoice(self.name, None, tuple(order), tuple(skipped))

    def seized(self, line: ChannelRef) -> None:
        if line not in self.used:
            raise ValueError(f"hunt group {self.name}: {_ref(line)} is not in the group")
        self.used[line] += 1
        self.last = line


@dataclass
class Seizure:
    """One outbound call's hunt with glare retry.

    ``start`` picks a line; ``glare(line)`` (the line rang inbound while we
    seized it) picks another, excluding every line that glared, until
    ``max_retries`` retries are used up (then None).
    """

    group: HuntGroup
    max_retries: int = 2
    line: ChannelRef | None = None
    glared: list[ChannelRef] = field(default_factory=list)
    choices: list[HuntChoice] = field(default_factory=list)

    def start(self, status: Callable[[ChannelRef], str]) -> ChannelRef | None:
        choice = self.group.pick(status, self.glared)
        self.choices.append(choice)
        self.line = choice.line
        if self.line is not None:
            self.group.seized(self.line)
        return self.line

    def glare(self, line: ChannelRef, status: Callable[[ChannelRef], str]) -> ChannelRef | None:
        """Glare on `line`: retry elsewhere, or None when out of retries or lines."""
        if line != self.line:
            raise ValueError(f"glare on {_ref(line)}, but this call seized "
                             f"{_ref(self.line) if self.line else 'nothing'}")
        self.glared.append(line)
        self.line = None
        if len(self.glared) > self.max_retries:
            return None
        return self.start(status)
