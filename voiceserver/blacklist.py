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
- a number in another country: ``+`` country code and number
  (``+12125550100``);
- service numbers (``110``, ``95588``) and anything else: digits as given.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["NumberingPlan", "normalize_number", "Match", "BlockAction", "BlacklistEntry", "Blacklist"]


@dataclass(frozen=True)
class NumberingPlan:
    """The national plan the normaliser applies. Defaults: China (+86, trunk 0, intl 00)."""

    country_code: str = "86"
    trunk_prefix: str = "0"
    international_prefix: str = "00"
    local_area: str = ""          # e.g. "10": 8-digit local numbers are in Beijing
    local_lengths: tuple[int, ...] = (7, 8)


def normalize_number(number: str, plan: NumberingPlan = NumberingPlan(), *,
                     prefix: bool = False) -> str:
    """The normal form of `number` under `plan` (see the module docstring).

    Spaces, dashes, dots and parentheses are ignored. ``prefix=True`` is for
    the start of a number (a blacklist prefix): it is never taken for a local
    number, so ``"6"`` does not become ``"106"``. Raises ValueError for
    characters that cannot be in a phone number.
    """
    raw = number.strip()
    plus = raw.startswith("+")
    digits = "".join(c for c in raw[1:] if c not in " -.()") if plus else \
        "".join(c for c in raw if c not in " -.()")
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
    if (not prefix and plan.local_area and len(digits) in plan.local_lengths
            and digits[0] != "0"):
        return plan.local_area + digits
    return digits


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
    """An ordered list of entries; the longest match wins (exact beats prefix).

    Anonymous callers (no caller ID) never match: a rule for them belongs
    to a future 'anonymous' policy, not to a number pattern.
    """

    entries: tuple[BlacklistEntry, ...] = ()
    plan: NumberingPlan = NumberingPlan()

    def match(self, caller: str | None) -> BlacklistEntry | None:
        """The entry that blocks `caller`, or None. Unparseable caller IDs never match."""
        if not caller:
            return None
        try:
            norm = normalize_number(caller, self.plan)
        except ValueError:
            return None
        best: BlacklistEntry | None = None
        for e in self.entries:
            if e.match is Match.EXACT and norm == e.normalized:
                return e
            if e.match is Match.PREFIX and norm.startswith(e.normalized):
                if best is None or len(e.normalized) > len(best.normalized):
                    best = e
        return best
