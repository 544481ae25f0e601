"""`voiceboard queues`: queues and agents of a running server, from its status API.

    voiceboard queues [--api HOST:PORT] [--json] [--once] [--interval S]

A live table (rich) refreshed every ``--interval`` seconds until Ctrl-C;
``--once`` prints it once; ``--json`` prints the raw ``/queues`` and
``/agents`` documents. A server that cannot be reached is an error on
stderr with exit status 2, so scripts can tell "no server" from "no calls".
"""
from __future__ import annotations

import argparse
import http.client
import json
import sys
import time
from typing import Any

__all__ = ["main", "fetch", "StatusUnreachable", "render", "DEFAULT_API"]

DEFAULT_API = "127.0.0.1:8751"


class StatusUnreachable(Exception):
    """The status API did not answer (no server, wrong port) or answered with an error."""


def _split(api: str) -> tuple[str, int]:
    host, sep, port = api.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"--api: expected HOST:PORT, got {api!r}")
    return host.strip("[]"), int(port)


def request(method: str, api: str, path: str, timeout: float) -> tuple[int, Any]:
    """One request to the status API at `api` ("HOST:PORT"): (HTTP status, decoded JSON)."""
    host, port = _split(api)
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=b"" if method == "POST" else None)
        resp = conn.getresponse()
        data = resp.read()
    except (OSError, http.client.HTTPException) as exc:
        raise StatusUnreachable(f"cannot reach the status API at {api} ({exc}); "
                                f"is `voiceboard serve` running?") from None
    finally:
        conn.close()
    try:
        return resp.status, json.loads(data)
    except ValueError:
        raise StatusUnreachable(f"{api}{path}: not a status API (answer is not JSON)") from None


def post(api: str, path: str, timeout: float = 10.0) -> tuple[int, dict[str, Any]]:
    """POST an admin action; (HTTP status, the answer): a refusal is the caller's to report."""
    return request("POST", api, path, timeout)


def fetch(api: str, path: str, timeout: float = 3.0) -> Any:
    """GET `path` and decode the JSON; anything but 200 is StatusUnreachable."""
    status, doc = request("GET", api, path, timeout)
    if status != 200:
        raise StatusUnreachable(f"{api}{path}: HTTP {status}: {doc.get('error', doc)}")
    return doc


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
    for col in ("queue", "strategy", "waiting", "longest", "ready/in", "answered",
                "abandoned", "overflow", "voicemail", "ASA"):
        qt.add_column(col, justify="left" if col in ("queue", "strategy") else "right")
    for q in queues:
        st = q["stats"]
        qt.add_row(q["name"], q["strategy"], str(q["waiting"]), _secs(q["longest_wait_ms"]),
                   f"{q['ready']}/{q['logged_in']}", str(st["answered"]), str(st["abandoned"]),
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
    ap.add_argument("--api", default=DEFAULT_API,
                    help=f"the server's status API, HOST:PORT (default {DEFAULT_API})")
    ap.add_argument("--json", action="store_true", help="print the raw JSON and exit")
    ap.add_argument("--once", action="store_true", help="print the table once and exit")
    ap.add_argument("--interval", type=float, default=1.0, help="refresh period, seconds")
    args = ap.parse_args(argv)
    try:
        _split(args.api)
    except ValueError as exc:
        print(f"voiceboard queues: {exc}", file=sys.stderr)
        return 2

    def get() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        return fetch(args.api, "/queues")["queues"], fetch(args.api, "/agents")["agents"]

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
