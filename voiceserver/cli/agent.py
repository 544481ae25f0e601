"""`voiceboard agent`: log an agent in or out, or set it ready / not ready, on a running server.

    voiceboard agent login|logout|ready|not-ready AGENT --config SERVER.toml
                     [--reason CODE] [--user NAME] [--api URL] [--token-file FILE] [--json]

One ``POST /v1/agents/AGENT/ACTION`` to the server's network API (or, for
a config without ``[api]``, ``POST /admin/agent-ACTION/AGENT`` to the
loopback status API), with the admin's token or ``--user NAME``'s (an
agent user may change only its own agent): the client and options
``voiceboard queues`` and ``voiceboard reload`` use. ``--reason``: a
not-ready's reason code. Prints the agent's state after the change
(``--json``: the server's answer).
Errors go to stderr: exit status 1 for a change the server refused (no such
agent: HTTP 404; not possible in the agent's state, e.g. ready while logged
out: HTTP 409; refused by the API: 400, 401, 403, 429), 2 when no server
answers, the token cannot be read or the arguments are wrong.
"""
from __future__ import annotations

import argparse
import json
import sys

from voiceserver.api.token import TokenFileError
from voiceserver.cli.apiclient import StatusUnreachable, add_api_options, api_from_args

__all__ = ["main", "ACTIONS"]

ACTIONS = ("login", "logout", "ready", "not-ready")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="voiceboard agent",
                                 description="change an agent's state on a running voice server")
    ap.add_argument("action", choices=ACTIONS)
    ap.add_argument("agent", help="the agent's id ([agents.ID] in the server config: 1001, or a name)")
    ap.add_argument("--reason", metavar="CODE", help="not-ready: the reason code (break, lunch, training...)")
    add_api_options(ap)
    ap.add_argument("--json", action="store_true", help="print the server's JSON answer")
    args = ap.parse_args(argv)
    if args.reason is not None and args.action != "not-ready":
        ap.error("--reason goes with not-ready")
    try:
        client = api_from_args(args)
        status, body = client.agent(args.action, args.agent, args.reason)
    except (ValueError, TokenFileError) as exc:
        print(f"voiceboard agent: {exc}", file=sys.stderr)
        return 2
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
