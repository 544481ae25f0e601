"""`voiceboard queues`: queues and agents of a running server, from its status API.

    voiceboard queues --config SERVER.toml [--api HOST:PORT] [--token-file F]
                      [--json] [--once] [--interval S]

A live table (rich) refreshed every ``--interval`` seconds until Ctrl-C;
``--once`` prints it once; ``--json`` prints the raw ``/queues`` and
``/agents`` documents. A server that cannot be reached is an error on
stderr with exit status 2, so scripts can tell "no server" from "no calls".

The API wants the admin token (admin_token.py): ``--config`` names the
server's config, whose ``[api]`` gives the address (port + 1) and the
token file; ``--api`` and ``--token-file`` override them. The same options
serve ``voiceboard reload`` and ``voiceboard agent`` (``add_api_options``,
``api_from_args``).
"""
from __future__ import annotations

import argparse
import http.client
import json
import sys
import time
from typing import Any

from voiceserver.api.token import TokenFileError

__all__ = ["main", "fetch", "post", "StatusUnreachable", "render", "add_api_options",
           "api_from_args"]


class StatusUnreachable(Exception):
    """The status API did not answer (no server, wrong port) or answered with an error."""


def add_api_options(ap: argparse.ArgumentParser) -> None:
    """--config / --api / --token-file: where the server's status API is and its token."""
    ap.add_argument("--config", metavar="SERVER.toml",
                    help="the server's config: its [api] gives the address (port + 1) and the token file")
    ap.add_argument("--api", metavar="HOST:PORT",
                    help="the server's status API (default: from --config; needed without it)")
    ap.add_argument("--token-file", metavar="FILE",
                    help="the admin token file (default: [api] token_file of --config)")


def api_from_args(args: argparse.Namespace) -> tuple[str, str]:
    """(HOST:PORT, token) from the options; ValueError (or TokenFileError,
    ConfigError) with a message naming what is missing or wrong."""
    from voiceserver.api.token import read_token
    api, token_file = args.api, args.token_file
    if args.config:
        from voiceserver.config.server import load_api_settings
        settings = load_api_settings(args.config)
        host = f"[{settings.host}]" if ":" in settings.host else settings.host
        api = api or f"{host}:{settings.port + 1}"
        token_file = token_file or settings.token_file
    if api is None:
        raise ValueError("where is the server? give --config SERVER.toml (or --api HOST:PORT)")
    _split(api)
    if token_file is None:
        raise ValueError("the status API needs the admin token: give --config SERVER.toml "
                         "(its [api] token_file) or --token-file FILE")
    return api, read_token(token_file)


def _split(api: str) -> tuple[str, int]:
    host, sep, port = api.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"--api: expected HOST:PORT, got {api!r}")
    return host.strip("[]"), int(port)


def request(method: str, api: str, path: str, timeout: float,
            token: str | None = None) -> tuple[int, Any]:
    """One request to the status API at `api` ("HOST:PORT"): (HTTP status, decoded JSON)."""
    host, port = _split(api)
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        conn.request(method, path, body=b"" if method == "POST" else None, headers=headers)
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


def post(api: str, path: str, timeout: float = 10.0,
         token: str | None = None) -> tuple[int, dict[str, Any]]:
    """POST an admin action; (HTTP status, the answer): a refusal is the caller's to report."""
    return request("POST", api, path, timeout, token)


def fetch(api: str, path: str, timeout: float = 3.0, token: str | None = None) -> Any:
    """GET `path` and decode the JSON; anything but 200 is StatusUnreachable."""
    status, doc = request("GET", api, path, timeout, token)
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
    add_api_options(ap)
    ap.add_argument("--json", action="store_true", help="print the raw JSON and exit")
    ap.add_argument("--once", action="store_true", help="print the table once and exit")
    ap.add_argument("--interval", type=float, default=1.0, help="refresh period, seconds")
    args = ap.parse_args(argv)
    try:
        api, token = api_from_args(args)
    except (ValueError, TokenFileError) as exc:   # ConfigError is a ValueError; each names the file
        print(f"voiceboard queues: {exc}", file=sys.stderr)
        return 2

    def get() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        return (fetch(api, "/queues", token=token)["queues"],
                fetch(api, "/agents", token=token)["agents"])

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
