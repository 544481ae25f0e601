"""`voiceboard agent`: log an agent in or out, or set it ready / not ready, on a running server.

    voiceboard agent login|logout|ready|not-ready AGENT --config SERVER.toml
                     [--api HOST:PORT] [--token-file FILE] [--json]

One ``POST /admin/agent-ACTION/AGENT`` to the server's loopback status API
(the same port and admin token as ``voiceboard queues`` and ``voiceboard
reload``: ``--config`` or ``--api`` with ``--token-file``). Prints
the agent's state after the change (``--json``: the server's answer).
Errors go to stderr: exit status 1 for a change the server refused (no such
agent: HTTP 404; not possible in the agent's state, e.g. ready while logged
out: HTTP 409; refused by the API: 401, 403, 429), 2 when no server
answers, the token cannot be read or the arguments are wrong.
"""
from __future__ import annotations

import argparse
import json
import sys
import urllib.parse

from voiceserver.api.token import TokenFileError
from voiceserver.cli.apiclient import StatusUnreachable, add_api_options, api_from_args, post

__all__ = ["main", "ACTIONS"]

ACTIONS = ("login", "logout", "ready", "not-ready")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="voiceboard agent",
                                 description="change an agent's state on a running voice server")
    ap.add_argument("action", choices=ACTIONS)
    ap.add_argument("agent", help="the agent's name ([agents.NAME] in the server config)")
    add_api_options(ap)
    ap.add_argument("--json", action="store_true", help="print the server's JSON answer")
    args = ap.parse_args(argv)
    try:
        api, token = api_from_args(args)
    except (ValueError, TokenFileError) as exc:
        print(f"voiceboard agent: {exc}", file=sys.stderr)
        return 2
    path = f"/admin/agent-{args.action}/{urllib.parse.quote(args.agent, safe='')}"
    try:
        status, body = post(api, path, token=token)
    except StatusUnreachable as exc:
        print(f"voiceboard agent: {exc}", file=sys.stderr)
        return 2
    if status != 200:
        print(f"voiceboard agent: {args.action} {args.agent}: HTTP {status}: {body.get('error', '')}",
              file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(body, ensure_ascii=False))
    else:
        pending = f" (then {body['pending'].replace('_', ' ')} when the call ends)" if body.get("pending") else ""
        change = "" if body.get("changed") else " (no change)"
        print(f"{body['agent']}: {body['state']}{pending}{change}")
    return 0
