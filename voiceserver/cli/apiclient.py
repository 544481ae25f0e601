"""The one client of the server's loopback API that the CLI commands share.

`voiceboard queues`, `voiceboard agent` and `voiceboard reload` find the
server the same way (`--config` names its config, whose `[api]` gives the
address, port + 1, and the admin token file; `--api` and `--token-file`
override), send the admin token the same way, and report an unreachable
server the same way (`StatusUnreachable`, exit status 2 in each command).
"""
from __future__ import annotations

import argparse
import http.client
import json
from typing import Any

__all__ = ["StatusUnreachable", "add_api_options", "api_from_args", "request", "post", "fetch"]


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
