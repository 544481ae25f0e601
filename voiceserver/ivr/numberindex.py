"""Number patterns indexed for lists of hundreds of thousands (recording rules, the blacklist).

A pattern is a normalised number (``voiceserver.ivr.blacklist.normalize_number``)
with ``*`` (any run of digits) and ``?`` (one digit): ``13800138000``,
``400*``, ``1380013800?``. A site's list is almost all exact numbers and a
few prefixes, so those need no object and no regular expression each: one
frozenset of numbers, one of prefixes (probed at each prefix length in
use); only the rare patterns with ``?`` or an inner ``*`` are compiled.
"""
from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["PatternIndex", "literal_prefix"]


def literal_prefix(pattern: str) -> str:
    """The digits before the first wildcard (all of it for an exact number)."""
    if "*" not in pattern and "?" not in pattern:
        return pattern
    cut = min(i for i in (pattern.find("*"), pattern.find("?")) if i >= 0)
    return pattern[:cut]


@functools.lru_cache(maxsize=4096)
def _compile(pattern: str) -> re.Pattern[str]:
    out = "".join("[0-9+]*" if c == "*" else "[0-9]" if c == "?" else re.escape(c)
                  for c in pattern)
    return re.compile(out + r"\Z")


@dataclass(frozen=True)
class PatternIndex:
    """Patterns indexed for lists of hundreds of thousands: no object, no regex per number.

    Exact numbers are one frozenset; prefix patterns (``400*``) a frozenset of
    prefixes probed at each length used; only patterns with ``?`` or an inner
    ``*`` (few, in practice) are regular expressions.
    """

    exact: frozenset[str] = frozenset()
    prefixes: frozenset[str] = frozenset()      # "400" for "400*", "" for "*"
    other: tuple[str, ...] = ()
    prefix_lengths: tuple[int, ...] = ()        # longest first

    @classmethod
    def of(cls, patterns: Iterable[str]) -> PatternIndex:
        exact: set[str] = set()
        prefixes: set[str] = set()
        other: dict[str, None] = {}
        for p in patterns:
            head = literal_prefix(p)
            if head == p:
                exact.add(p)
            elif p == head + "*":
                prefixes.add(head)
            else:
                other[p] = None
        return cls(frozenset(exact), frozenset(prefixes), tuple(other),
                   tuple(sorted({len(x) for x in prefixes}, reverse=True)))

    def match(self, number: str) -> str | None:
        """The pattern that matches ``number`` (exact first, then the longest prefix), or None."""
        if number in self.exact:
            return number
        for n in self.prefix_lengths:
            if len(number) >= n and number[:n] in self.prefixes \
                    and not number[n:].strip("0123456789+"):
                return number[:n] + "*"
        for p in self.other:
            if _compile(p).match(number):
                return p
        return None

    def covers(self, pattern: str) -> bool:
        """Conservative: every number ``pattern`` matches is matched here (as NumberPattern.covers)."""
        if pattern in self.exact or pattern in self.other:
            return True
        head = literal_prefix(pattern)
        return any(n <= len(head) and head[:n] in self.prefixes for n in self.prefix_lengths)

    def __bool__(self) -> bool:
        return bool(self.exact or self.prefixes or self.other)
