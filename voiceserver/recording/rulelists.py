"""The compact lists of recording rules: agents, channels and numbers, written by ranges.

Administrators write `agents = ["1001-1099", "chen"]`, `channels = ["hotline:1-4",
"e1a:span1"]` and number lists of hundreds of thousands of entries; each
parses once into a set that answers membership fast and describes itself by
its text (or by size and hash when long) in decisions and warnings.
"""
from __future__ import annotations

import array
import bisect
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from boarddrv.tomlconfig import Node
from voiceserver.acd.agentid import agent_id_problem, is_numeric_id
from voiceserver.ivr.blacklist import SEPARATORS, NumberingPlan, normalize_number
from voiceserver.ivr.numberindex import PatternIndex, literal_prefix
from voiceserver.recording.decision import RuleRef


def _split_items(value: Any, node: Node, key: str) -> list[tuple[str, Any]]:
    """A string "a,b,!c" or a list of such strings -> [(item, where)] for error messages."""
    if isinstance(value, str):
        return [(p.strip(), key) for p in value.split(",")]
    if isinstance(value, list):
        out: list[tuple[str, Any]] = []
        for i, v in enumerate(value):
            if isinstance(v, int) and not isinstance(v, bool):
                v = str(v)
            if not isinstance(v, str):
                raise node.error((key, i), f"expected a string, got {v!r}")
            if "," in v:
                out += [(p.strip(), (key, i)) for p in v.split(",")]
            else:
                out.append((v.strip(), (key, i)))
        return out
    if isinstance(value, int) and not isinstance(value, bool):
        return [(str(value), key)]
    raise node.error(key, "expected a list like \"1001-1005,!1003\" or [\"1001\", \"2001-2009\"]")


def _intervals(pairs: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Merge closed intervals into a sorted disjoint list."""
    out: list[tuple[int, int]] = []
    for a, b in sorted(pairs):
        if out and a <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _subtract(pos: list[tuple[int, int]], neg: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in pos:
        cur = [(a, b)]
        for c, d in neg:
            nxt = []
            for x, y in cur:
                if d < x or c > y:
                    nxt.append((x, y))
                    continue
                if x < c:
                    nxt.append((x, c - 1))
                if d < y:
                    nxt.append((d + 1, y))
            cur = nxt
        out += cur
    return _intervals(out)


def _in_intervals(iv: list[tuple[int, int]], n: int) -> bool:
    i = bisect.bisect_right(iv, (n, float("inf"))) - 1
    return i >= 0 and iv[i][0] <= n <= iv[i][1]


def _covered(iv: list[tuple[int, int]], a: int, b: int) -> bool:
    return any(x <= a and b <= y for x, y in iv)


@dataclass(frozen=True)
class AgentSet:
    """Agents by id: numeric ranges and names, with negation ("1001-1005,!1003")."""

    text: str = ""
    ranges: tuple[tuple[int, int], ...] = ()     # after negation, disjoint
    names: frozenset[str] = frozenset()
    items: tuple[tuple[str, Any, bool], ...] = ()  # (item text, where, negated) for warnings

    def __contains__(self, agent: object) -> bool:
        if not isinstance(agent, str) or not agent:
            return False
        if is_numeric_id(agent):
            return _in_intervals(list(self.ranges), int(agent))
        return agent in self.names

    def covers_item(self, item: str) -> bool:
        """True if every agent the (positive) item names is in this set."""
        lo, hi = agent_item(item)
        if lo is None:
            return item in self.names
        return _covered(list(self.ranges), lo, hi)  # type: ignore[arg-type]

    def __bool__(self) -> bool:
        return bool(self.ranges or self.names)


def agent_item(item: str) -> tuple[int | None, int | None]:
    a, sep, b = item.partition("-")
    if a.isdigit() and (not sep or b.isdigit()):
        lo, hi = int(a), int(b) if sep else int(a)
        return lo, hi
    return None, None


def _agent_item_problem(item: str) -> str | None:
    """Why a list item is not an agent id, a range of numeric ids or a name (voiceserver.acd.agentid)."""
    a, sep, b = item.partition("-")
    if a.isdigit() and sep and b.isdigit():
        return agent_id_problem(a) or agent_id_problem(b)
    if item.isdigit():
        return agent_id_problem(item)
    if is_numeric_id(item) or agent_id_problem(item) is None:
        return None
    return (f"bad agent {item!r} (an id like 1001, a range 1001-1005, a name starting with a "
            f"letter, or !item to leave it out)")


def parse_agents(value: Any, node: Node, key: str) -> AgentSet:
    """Agents "1001-1005,!1003", names ("alice") too; ValueError-free: errors are ConfigErrors."""
    pos: list[tuple[int, int]] = []
    neg: list[tuple[int, int]] = []
    pnames: set[str] = set()
    nnames: set[str] = set()
    items = []
    for item, where in _split_items(value, node, key):
        negated = item.startswith("!")
        body = item[1:].strip() if negated else item
        if not body:
            raise node.error(where, "empty item (write e.g. \"1001-1005,!1003\")")
        problem = _agent_item_problem(body)
        if problem is not None:
            raise node.error(where, problem)
        lo, hi = agent_item(body)
        if lo is not None:
            assert hi is not None
            if hi < lo:
                raise node.error(where, f"range {body!r} runs backwards")
            (neg if negated else pos).append((lo, hi))
        else:
            (nnames if negated else pnames).add(body)
        items.append((body, where, negated))
    text = value if isinstance(value, str) else ",".join(str(v) for v in value)
    return AgentSet(text, tuple(_subtract(_intervals(pos), _intervals(neg))),
                    frozenset(pnames - nnames), tuple(items))


@dataclass(frozen=True)
class ChanItem:
    """``board`` (all of it), ``board:spanA-B`` or ``board:A-B`` (channel indexes)."""

    board: str
    kind: str                    # "board" | "span" | "chan"
    ranges: tuple[tuple[int, int], ...] = ()

    def matches(self, board: str | None, chan: int | None, span: int | None) -> bool:
        if board != self.board:
            return False
        if self.kind == "board":
            return True
        n = span if self.kind == "span" else chan
        return n is not None and _in_intervals(list(self.ranges), n)

    def covers(self, other: ChanItem) -> bool:
        if other.board != self.board:
            return False
        if self.kind == "board":
            return True
        if self.kind != other.kind:
            return False
        return all(_covered(list(self.ranges), a, b) for a, b in other.ranges)

    def text(self) -> str:
        if self.kind == "board":
            return self.board
        body = ",".join(f"{a}-{b}" if a != b else str(a) for a, b in self.ranges)
        return f"{self.board}:{'span' if self.kind == 'span' else ''}{body}"


@dataclass(frozen=True)
class ChannelSet:
    """Channels: "hotline:0-3", "e1site:span2", "e1site", with negation "!hotline:2"."""

    text: str = ""
    positive: tuple[ChanItem, ...] = ()
    negative: tuple[ChanItem, ...] = ()
    items: tuple[tuple[ChanItem, Any, bool], ...] = ()

    def match(self, board: str | None, chan: int | None, span: int | None) -> ChanItem | None:
        """The positive item that names the channel, unless a negative one takes it out."""
        if any(n.matches(board, chan, span) for n in self.negative):
            return None
        for p in self.positive:
            if p.matches(board, chan, span):
                return p
        return None

    def covers_item(self, item: ChanItem) -> bool:
        if any(n.board == item.board for n in self.negative):
            return False  # conservative: a hole on that board may fall inside the item
        return any(p.covers(item) for p in self.positive)

    def __bool__(self) -> bool:
        return bool(self.positive)


_BOARD = re.compile(r"[A-Za-z][A-Za-z0-9_-]*\Z")


def _num_ranges(text: str) -> list[tuple[int, int]]:
    a, sep, b = text.partition("-")
    if not a.strip().isdigit() or (sep and not b.strip().isdigit()):
        raise ValueError(f"expected N or N-M, got {text!r}")
    lo, hi = int(a), int(b) if sep else int(a)
    if hi < lo:
        raise ValueError(f"range {text!r} runs backwards")
    return [(lo, hi)]


def parse_channels(value: Any, node: Node, key: str) -> ChannelSet:
    """Channel items; an item without BOARD: uses the board of the item before it."""
    pos: list[ChanItem] = []
    neg: list[ChanItem] = []
    items = []
    board: str | None = None
    for item, where in _split_items(value, node, key):
        negated = item.startswith("!")
        body = item[1:].strip() if negated else item
        if not body:
            raise node.error(where, "empty item (write e.g. \"hotline:0-3,!2\")")
        b, sep, rest = body.partition(":")
        if sep:
            board = b.strip()
            rest = rest.strip()
        elif _BOARD.match(body) and not body.startswith("span"):
            board, rest = body, ""
        else:
            if board is None:
                raise node.error(where, f"{body!r}: name the board (BOARD:RANGE, e.g. "
                                        f"\"hotline:0-3\", \"e1site:span2\", \"e1site\")")
            rest = body
        if not _BOARD.match(board or ""):
            raise node.error(where, f"bad board name {board!r} in {body!r}")
        assert board is not None
        try:
            if not rest:
                ci = ChanItem(board, "board")
            elif rest.startswith("span"):
                ci = ChanItem(board, "span", tuple(_num_ranges(rest[4:].strip())))
            else:
                ci = ChanItem(board, "chan", tuple(_num_ranges(rest)))
        except ValueError as exc:
            raise node.error(where, f"{body!r}: {exc}") from None
        (neg if negated else pos).append(ci)
        items.append((ci, where, negated))
    text = value if isinstance(value, str) else ",".join(str(v) for v in value)
    return ChannelSet(text, tuple(pos), tuple(neg), tuple(items))


@dataclass(frozen=True)
class NumberPattern:
    """A normalised number pattern: digits, ``*`` (any run) and ``?`` (one digit)."""

    written: str
    pattern: str

    @property
    def literal_prefix(self) -> str:
        return literal_prefix(self.pattern)

    def covers(self, other: NumberPattern) -> bool:
        """Conservative containment: equal, ``*``, or a prefix pattern over the other's start."""
        if self.pattern == other.pattern or self.pattern == "*":
            return True
        if self.pattern.endswith("*") and not any(c in "*?" for c in self.pattern[:-1]):
            return other.literal_prefix.startswith(self.pattern[:-1])
        return False


def _normalize_pattern(text: str, plan: NumberingPlan) -> str:
    """Normalise the number part of a pattern the way caller IDs are normalised."""
    if text.isdigit():     # the common case in a long list: nothing to strip, no wildcard
        return normalize_number(text, plan)
    raw = text.strip().translate(SEPARATORS)
    if raw in ("*",):
        return "*"
    first = len(literal_prefix(raw))
    if first == len(raw):
        return normalize_number(raw, plan)
    if "*" not in raw:
        # fixed length: normalise with the wildcards as digits, then put them back
        tail = len(raw) - first
        norm = normalize_number(raw.replace("?", "0"), plan)
        if len(norm) < tail:
            raise ValueError(f"a wildcard inside the national prefix of {text!r}")
        return norm[:-tail] + raw[first:]
    head, rest = raw[:first], raw[first:]
    if any(c not in "0123456789*?" for c in rest):
        raise ValueError(f"not a number pattern: {text!r}")
    return (normalize_number(head, plan, prefix=True) if head else "") + rest


_LONG_LIST = 64   # a list longer than this is described by its size and hash, not its text


@dataclass(frozen=True)
class NumberSet:
    """Number patterns with negation ("400*,!4008001234"), normalised under a plan.

    Kept compact for lists of hundreds of thousands of numbers: the patterns
    in two indexes, the written form only where it differs from the
    normalised one, and for ``rules check`` each item's position as one
    small integer (its index in the list) in an array.
    """

    text: str = ""
    positive: PatternIndex = PatternIndex()
    negative: PatternIndex = PatternIndex()
    written: Mapping[str, str] = field(default_factory=dict, compare=False)  # pattern -> as written
    key: str = ""
    patterns: tuple[str, ...] = ()                # every item, in order, normalised
    where: bytes = b""       # array("i") of each item's list index (-1: the string), as bytes
    negated: bytes = b""

    def match(self, normalised: str | None) -> NumberPattern | None:
        if not normalised or self.negative.match(normalised) is not None:
            return None
        p = self.positive.match(normalised)
        return None if p is None else NumberPattern(self.written.get(p, p), p)

    @property
    def items(self) -> Iterable[tuple[NumberPattern, Any, bool]]:
        """Each item as written, where (key or (key, index)) and whether negated."""
        for p, i, neg in zip(self.patterns, memoryview(self.where).cast("i"), self.negated, strict=False):
            yield (NumberPattern(self.written.get(p, p), p), self.key if i < 0 else (self.key, i),
                   bool(neg))

    def covers_item(self, item: NumberPattern) -> bool:
        if self.negative:
            return False  # conservative
        return self.positive.covers(item.pattern)

    def __bool__(self) -> bool:
        return bool(self.positive)


def parse_numbers(value: Any, node: Node, key: str, plan: NumberingPlan) -> NumberSet:
    """A list of number patterns, each normalised once; ConfigError (file, line, key) if bad."""
    pos: list[str] = []
    neg: list[str] = []
    written: dict[str, str] = {}
    patterns: list[str] = []
    where = array.array("i")
    negated = bytearray()
    for item, at in _split_items(value, node, key):
        is_neg = item.startswith("!")
        body = item[1:].strip() if is_neg else item
        if not body:
            raise node.error(at, "empty number pattern")
        try:
            norm = _normalize_pattern(body, plan)
        except ValueError as exc:
            raise node.error(at, f"{exc} (patterns: 13800138000, 400*, 1380013800?)") from None
        if not norm:
            raise node.error(at, f"empty number pattern {body!r}")
        if norm != body:
            written.setdefault(norm, body)
        (neg if is_neg else pos).append(norm)
        patterns.append(norm)
        where.append(at[1] if isinstance(at, tuple) else -1)
        negated.append(is_neg)
    if isinstance(value, str):
        text = value
    elif len(patterns) > _LONG_LIST:
        digest = hashlib.sha256("\n".join(str(v) for v in value).encode()).hexdigest()
        text = f"{len(patterns)} numbers (sha256 {digest[:16]})"
    else:
        text = ",".join(str(v) for v in value)
    return NumberSet(text, PatternIndex.of(pos), PatternIndex.of(neg), written, key,
                     tuple(patterns), where.tobytes(), bytes(negated))


@dataclass(frozen=True)
class ListRule:
    """One list (e.g. exclude.agents) and where it is written."""

    stage: str         # "never" | "force" | "exclude"
    key: str           # "agents" | "channels" | "numbers" | "callers" | "called"
    ref: RuleRef
    agents: AgentSet | None = None
    channels: ChannelSet | None = None
    numbers: NumberSet | None = None

    def describe(self) -> str:
        s = self.agents or self.channels or self.numbers
        return s.text if s is not None else ""
