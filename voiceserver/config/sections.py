"""TOML parts the server config and a recording rules file both have: [numbering] and date lists.

One parser each, so that `holidays = [...]` and `[numbering]` mean the same
and fail with the same FILE:LINE: key message in either file.
"""
from __future__ import annotations

import datetime as dt

from boarddrv.tomlconfig import Node
from voiceserver.ivr.blacklist import NumberingPlan

__all__ = ["parse_dates", "parse_numbering"]


def parse_numbering(n: Node) -> NumberingPlan:
    """A [numbering] table: how national, trunk-prefixed and local numbers compare."""
    n.check_keys({"country_code", "trunk_prefix", "international_prefix", "local_area",
                  "local_lengths", "national_lengths"})
    d = NumberingPlan()
    vals = {}
    for key in ("country_code", "trunk_prefix", "international_prefix", "local_area"):
        v = n.get_str(key, getattr(d, key))
        if v and not v.isdigit():
            raise n.error(key, f"expected digits, got {v!r}")
        vals[key] = v
    lengths = n.get_list("local_lengths", list(d.local_lengths), item=int)
    national = n.get_list("national_lengths", list(d.national_lengths), item=int)
    for key, values in (("local_lengths", lengths), ("national_lengths", national)):
        for i, x in enumerate(values):
            if not 1 <= x <= 15:
                raise n.error((key, i), f"a number length is 1 to 15 digits, got {x}")
    return NumberingPlan(local_lengths=tuple(lengths), national_lengths=tuple(national), **vals)


def parse_dates(node: Node, key: str) -> frozenset[dt.date]:
    """A list of dates and "FROM..TO" ranges (holidays, make-up workdays), expanded."""
    out: set[dt.date] = set()
    for i, v in enumerate(node.get_list(key, [])):
        try:
            if isinstance(v, dt.datetime):
                raise ValueError("expected a date, not a date-time")
            if isinstance(v, dt.date):
                out.add(v)
            elif isinstance(v, str) and ".." in v:
                a, b = (dt.date.fromisoformat(x.strip()) for x in v.split("..", 1))
                if b < a:
                    raise ValueError(f"range {v!r} runs backwards")
                out.update(a + dt.timedelta(days=k) for k in range((b - a).days + 1))
            elif isinstance(v, str):
                out.add(dt.date.fromisoformat(v))
            else:
                raise ValueError(f"expected a date, got {v!r}")
        except ValueError as exc:
            raise node.error((key, i), f"{exc} (write 2026-10-01 or "
                                       f"\"2026-10-01..2026-10-07\")") from None
    return frozenset(out)
