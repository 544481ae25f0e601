"""Output shared by the integrator tools: rich tables for people, --json for scripts.

Every tool prints either tables (stdout) or one JSON document (stdout), and
errors go to stderr with a non-zero exit, so `voiceboard scan --json | jq`
never has a warning mixed into its input.
"""
from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table


def console() -> Console:
    """A console on the current stdout (tests swap sys.stdout; capture follows)."""
    return Console(file=sys.stdout, highlight=False, soft_wrap=False, width=160)


def print_table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]],
                justify_right: Iterable[str] = (), header: bool = True) -> None:
    """One rich table; columns named in `justify_right` are numbers.

    The title is a line of its own: rich wraps a title to the table's width,
    which breaks a long URI over lines in a narrow table."""
    right = set(justify_right)
    out = console()
    if title:
        out.print(f"[bold]{title}[/bold]")
    table = Table(show_header=header, header_style="bold")
    for col in columns:
        table.add_column(col, justify="right" if col in right else "left", no_wrap=True)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    out.print(table)


def print_kv(title: str, items: Iterable[tuple[str, Any]]) -> None:
    """A two-column 'name value' table (board summary, results)."""
    print_table(title, ["", ""], items, header=False)


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2, sort_keys=False, default=_jsonable)
    sys.stdout.write("\n")


def _jsonable(x: Any) -> Any:
    if isinstance(x, (set, frozenset)):
        return sorted(x)
    if hasattr(x, "name"):         # enums
        return x.name
    if hasattr(x, "tolist"):       # numpy scalars/arrays
        return x.tolist()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def fail(prog: str, message: str, code: int = 1) -> int:
    """Print `prog: message` to stderr and return the exit code."""
    print(f"{prog}: {message}", file=sys.stderr)
    return code
