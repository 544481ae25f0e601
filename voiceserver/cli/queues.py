"""`voiceboard queues`: queues and agents of a running server, from its API.

    voiceboard queues --config SERVER.toml [--user NAME] [--api URL] [--token-file F]
                      [--json] [--once] [--interval S]

A live table (rich) refreshed every ``--interval`` seconds until Ctrl-C;
``--once`` prints it once; ``--json`` prints the raw ``/queues`` and
``/agents`` documents. A server that cannot be reached is an error on
stderr with exit status 2, so scripts can tell "no server" from "no calls".

The API wants a token: ``--config`` names the server's config, whose
``[api]`` gives the network API's address and the admin's token file (or
``--user NAME``'s); without ``[api]`` the loopback status API (port + 1).
``--api`` and ``--token-file`` override them. The same options serve
``voiceboard reload`` and ``voiceboard agent``: they share one client
(``voiceserver.cli.apiclient``).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from voiceserver.api.token import TokenFileError
from voiceserver.cli.apiclient import StatusUnreachable, add_api_options, api_from_args

__all__ = ["main", "render"]


def _secs(ms: Any) -> str:
    if ms is None:
        return "-"
    s = int(ms) // 1000
    return f"{s // 60}:{s % 60:02d}"


def render(queues: list[dict[str, Any]], agents: list[dict[str, Any]]) -> Any:
    """The two tables as one rich renderable."""
    from rich.console import Group
    from rich.table import Table

    qt = Table(title="queues", title_justify="left")
    for col in ("queue", "strategy", "waiting", "longest", "ready/in", "busy", "answered",
                "abandoned", "overflow", "voicemail", "ASA"):
        qt.add_column(col, justify="left" if col in ("queue", "strategy") else "right")
    for q in queues:
        st = q["stats"]
        # busy: every agent logged in to the queue is busy (acd.all_busy; an unstaffed queue is not)
        busy = "[red]yes[/]" if q.get("all_busy") else "-"
        qt.add_row(q["name"], q["strategy"], str(q["waiting"]), _secs(q["longest_wait_ms"]),
                   f"{q['ready']}/{q['logged_in']}", busy, str(st["answered"]), str(st["abandoned"]),
                   str(st["overflowed"]), str(st["voicemail"]), _secs(q["asa_ms"]))
    colours = {"ready": "green", "ringing": "yellow", "on_call": "cyan", "wrap_up": "blue",
               "not_ready": "red", "logged_out": "dim"}
    at = Table(title="agents", title_justify="left")
    for col in ("agent", "state", "for", "call", "calls", "talk", "misses", "queues", "why not"):
        at.add_column(col, justify="right" if col in ("for", "calls", "talk", "misses") else "left")
    for a in agents:
        st = a["state"]
        at.add_row(a["name"], f"[{colours.get(st, 'white')}]{st}[/]", _secs(a["since_ms"]),
                   a["call"] or "", str(a["calls"]), _secs(a["talk_ms"]), str(a["misses"]),
                   ",".join(a.get("queues", [])), a.get("why_unavailable") or "")
    return Group(qt, at)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="voiceboard queues",
                                 description="queues and agents of a running voice server")
    add_api_options(ap)
    ap.add_argument("--json", action="store_true", help="print the raw JSON and exit")
    ap.add_argument("--once", action="store_true", help="print the table once and exit")
    ap.add_argument("--interval", type=float, default=1.0, help="refresh period, seconds")
    args = ap.parse_args(argv)
    try:
        client = api_from_args(args)
    except (ValueError, TokenFileError) as exc:   # ConfigError is a ValueError; each names the file
        print(f"voiceboard queues: {exc}", file=sys.stderr)
        return 2

    def get() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        return client.view("queues"), client.view("agents")

    try:
        queues, agents = get()
        if args.json:
            print(json.dumps({"queues": queues, "agents": agents}, ensure_ascii=False, indent=2))
            return 0
        from rich.console import Console
        # Piped output (a log, a test) gets wide rows rather than wrapped cells.
        console = Console() if sys.stdout.isatty() else Console(width=160)
        if args.once:
            console.print(render(queues, agents))
            return 0
        from rich.live import Live
        with Live(render(queues, agents), console=console, auto_refresh=False) as live:
            while True:
                time.sleep(max(0.1, args.interval))
                live.update(render(*get()), refresh=True)
    except StatusUnreachable as exc:
        print(f"voiceboard queues: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
