"""Caller blacklist, and the phone-number normaliser it compares with.

Caller IDs reach us in whatever form the line delivered them: FSK caller ID
on a Beijing line says ``01012345678`` or ``1012345678``, an E1 trunk's ANI
may carry ``861012345678``, and an administrator types ``+86 10 1234 5678``
into the config. ``normalize_number`` maps all of them to one form under a
national numbering plan so exact and prefix rules compare like with like.
It is a plain function of (number, plan) so recording rules and call
records can use the same comparison.

Normal form:
- a number in our country: its national significant number, digits only,
  without the trunk prefix (``1012345678``, ``13812345678``);
- a local number without area code (7 or 8 digits by default, not starting 0)
  when the plan names a ``local_area``: that area code prepended;
- the country code without ``+`` or ``00`` before a national number
  (``861012345678`` from an E1 ANI, ``8601065231234`` with the trunk
  prefix kept): the national number, told apart by its length
  (``national_lengths``, 10 or 11 digits in China);
- a number in another country: ``+`` country code and number
  (``+12125550100``);
- service numbers (``110``, ``95588``) and anything else: digits as given.
"""
from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from voiceserver.ivr.numberindex import PatternIndex

__all__ = ["SEPARATORS", "NumberingPlan", "normalize_number", "Match", "BlockAction",
           "BlacklistEntry", "Blacklist"]


@dataclass(frozen=True)
class NumberingPlan:
    """The national plan the normaliser applies. Defaults: China (+86, trunk 0, intl 00)."""

    country_code: str = "86"
    trunk_prefix: str = "0"
    international_prefix: str = "00"
    local_area: str = ""          # e.g. "10": 8-digit local numbers are in Beijing
    local_lengths: tuple[int, ...] = (7, 8)
    # Lengths of a national significant number (area code + number, or a mobile): a number
    # that is the country code and then one of these (``861012345678``, an E1 ANI) or the
    # country code, the trunk prefix and one of these (``8601065231234``) is national.
    national_lengths: tuple[int, ...] = (10, 11)


SEPARATORS = str.maketrans("", "", " -.()")   # ignored in a number as written


def normalize_number(number: str, plan: NumberingPlan = NumberingPlan(), *,
                     prefix: bool = False) -> str:
    """The normal form of `number` under `plan` (see the module docstring).

    Spaces, dashes, dots and parentheses are ignored. ``prefix=True`` is for
    the start of a number (a blacklist prefix): it is never taken for a local
    number, so ``"6"`` does not become ``"106"``. Raises ValueError for
    characters that cannot be in a phone number.
    """
    if number.isdigit():
        plus, digits = False, number
    else:
        raw = number.strip()
        plus = raw.startswith("+")
        digits = (raw[1:] if plus else raw).translate(SEPARATORS)
    if not digits.isdigit() and digits:
        bad = sorted({c for c in digits if not c.isdigit()})
        raise ValueError(f"not a phone number: {number!r} (unexpected {''.join(bad)!r})")
    if not plus and plan.international_prefix and digits.startswith(plan.international_prefix):
        plus, digits = True, digits[len(plan.international_prefix):]
    if plus:
        if digits.startswith(plan.country_code):
            digits = digits[len(plan.country_code):]
            # "+86 010 ..." is a common mistake: drop a trunk prefix after the code too.
            if plan.trunk_prefix and digits.startswith(plan.trunk_prefix):
                digits = digits[len(plan.trunk_prefix):]
            return digits
        return "+" + digits
    if plan.trunk_prefix and digits.startswith(plan.trunk_prefix):
        return digits[len(plan.trunk_prefix):]
    national = _after_country_code(digits, plan) if not prefix else None
    if national is not None:
        return national
    if (not prefix and plan.local_area and len(digits) in plan.local_lengths
            and digits[0] != "0"):
        return plan.local_area + digits
    return digits


def _after_country_code(digits: str, plan: NumberingPlan) -> str | None:
    """The national number in ``86 1012345678`` or ``86 0 1065231234`` (no ``+``, no ``00``).

    Trunks deliver the country code without a prefix (E1 ANI), and sites
    store numbers that way too; the length tells such a number from a
    national one that happens to start with the same digits.
    """
    cc = plan.country_code
    if not cc or not digits.startswith(cc):
        return None
    rest = digits[len(cc):]
    tp = plan.trunk_prefix
    if tp and rest.startswith(tp) and len(rest) - len(tp) in plan.national_lengths:
        return rest[len(tp):]
    if len(rest) in plan.national_lengths and not (tp and rest.startswith(tp)):
        return rest
    return None


class Match(str, enum.Enum):
    EXACT = "exact"
    PREFIX = "prefix"


class BlockAction(str, enum.Enum):
    """What happens to a blacklisted call."""

    REJECT = "reject"   # do not answer (an FXO line keeps ringing; E1: clear back)
    PLAY = "play"       # answer, play the entry's prompts, hang up


@dataclass(frozen=True)
class BlacklistEntry:
    number: str               # as written in the config (kept for messages and logs)
    normalized: str
    match: Match = Match.EXACT
    action: BlockAction = BlockAction.REJECT
    prompts: tuple[str, ...] = ()
    note: str = ""
    where: str = ""           # FILE:LINE of the entry in the config (a rejected call's record names it)


@dataclass(frozen=True)
class Blacklist:
    """Entries, and a plain list of numbers; the longest match wins (exact beats prefix).

    ``entries``: [[blacklist.entries]] (each its action, prompts and note).
    ``numbers``: ``[blacklist] numbers = [...]``, the form for the long lists
    sites export (hundreds of thousands): rejected, ``400*`` a prefix, kept
    as a ``PatternIndex`` (no object per number); ``written``: a listed
    number as written, where it differs from its normal form.

    Anonymous callers (no caller ID) never match: a rule for them belongs
    to a future 'anonymous' policy, not to a number pattern.
    """

    entries: tuple[BlacklistEntry, ...] = ()
    plan: NumberingPlan = NumberingPlan()
    numbers: PatternIndex = PatternIndex()
    written: Mapping[str, str] = field(default_factory=dict, compare=False)
    _exact: Mapping[str, BlacklistEntry] = field(init=False, repr=False, compare=False)
    _prefix: Mapping[str, BlacklistEntry] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        exact: dict[str, BlacklistEntry] = {}
        prefix: dict[str, BlacklistEntry] = {}
        for e in self.entries:      # the first entry of a number wins, as in the file
            (exact if e.match is Match.EXACT else prefix).setdefault(e.normalized, e)
        object.__setattr__(self, "_exact", exact)
        object.__setattr__(self, "_prefix", prefix)

    def match(self, caller: str | None) -> BlacklistEntry | None:
        """The entry that blocks `caller`, or None. Unparseable caller IDs never match."""
        if not caller:
            return None
        try:
            norm = normalize_number(caller, self.plan)
        except ValueError:
            return None
        e = self._exact.get(norm)
        if e is not None:
            return e
        listed = self.numbers.match(norm)
        if listed == norm:
            return self._listed(listed)
        for n in range(len(norm), -1, -1):      # the longest prefix entry
            e = self._prefix.get(norm[:n])
            if e is not None:
                if listed is not None and len(listed) - 1 > n:   # a longer listed prefix
                    break
                return e
        return self._listed(listed) if listed is not None else None

    def _listed(self, pattern: str) -> BlacklistEntry:
        """The entry a listed number or prefix stands for (made when it matches)."""
        written = self.written.get(pattern, pattern)
        if pattern.endswith("*"):
            return BlacklistEntry(written, pattern[:-1], Match.PREFIX, note="[blacklist] numbers")
        return BlacklistEntry(written, pattern, note="[blacklist] numbers")
