"""`voiceboard events`: a running (or stopped) server's events from its journal.

    voiceboard events --config server.toml                  # the last 20, as a table
    voiceboard events --config server.toml --since 1200 --json --follow
    voiceboard events --config server.toml --kind call.digit --call pbx1-3-000118

Reads the SQLite event journal that `[storage] events` names (docs/events.md):
every event after `--since SEQ`, oldest first, with a `journal.gap` line where
events are gone (pruned, or lost to a kill). `--follow` then keeps going: over
the server's network API when the config has [api] (the WebSocket stream,
with the admin's token from [api] token_file or `--user`'s, over TLS when
[api] has tls_cert; it resumes by itself when the server restarts), else
by reading the journal again. The last `seq` printed is where a later run
resumes. Filters (kind, call, channel) apply to events;
gaps always show. Exit status: 0, 2 an error (a refused stream too), 3 the
server ended the stream for good (1008: a reload removed the user or
changed it; the reason and the seq to resume from on stderr).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from typing import Any

from voiceserver.core.events import EventFilter, ServerEventKind

PROG = "voiceboard events"
GAP = ServerEventKind.JOURNAL_GAP.value
POLL_S = 0.2


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    ap.add_argument("--config", metavar="SERVER.toml", help="the server's config: its [storage] names the journal")
    ap.add_argument("--journal", metavar="FILE", help="the journal file (default: from --config)")
    ap.add_argument("--server-id", help="whose events (default: [storage] server_id, else the host name)")
    ap.add_argument("--since", type=int, metavar="SEQ",
                    help="events after SEQ (default: the last --last ones)")
    ap.add_argument("--last", type=int, default=20, metavar="N", help="without --since: the last N (default 20)")
    ap.add_argument("--kind", action="append", metavar="KIND",
                    help="only this kind (repeat for several; a prefix ending in '.' takes a family: call.)")
    ap.add_argument("--call", metavar="CALL_ID", help="only this call's events")
    ap.add_argument("--channel", metavar="[BOARD:]CHAN", help="only this channel's events")
    ap.add_argument("--queue", metavar="QUEUE", help="only this queue's events: those naming it, and its "
                    "callers' calls from joining it to their end")
    ap.add_argument("--agent", metavar="AGENT", help="only this agent's events: those naming it, and the calls "
                    "offered to it from the offer to their end")
    ap.add_argument("--follow", "-f", action="store_true",
                    help="keep going as the server adds events (Ctrl-C ends): over the network API when the "
                         "config has [api], else by reading the journal again")
    ap.add_argument("--poll", action="store_true", help="with --follow: read the journal file, not the API")
    ap.add_argument("--user", metavar="NAME",
                    help="with --follow: the API alone (not the journal file) as this [[api.user]] (its token "
                         "file; an agent user gets its own events only), from --since or from now")
    ap.add_argument("--json", action="store_true", help="one JSON object per line")
    return ap


def _where(args: argparse.Namespace) -> tuple[str, str]:
    from voiceserver.core.callids import default_server_id
    path, server_id = args.journal, args.server_id
    if args.config:
        from voiceserver.config.server import load_storage_settings
        st = load_storage_settings(args.config)
        if st is None:
            raise ValueError(f"{args.config} has no [storage] (nor [recording]): the server keeps no journal")
        path = path or st.events
        server_id = server_id or st.server_id
    if not path:
        raise ValueError("which journal? give --config SERVER.toml (or --journal FILE)")
    return path, server_id or default_server_id()


def format_line(ev: dict[str, Any]) -> str:
    if ev["kind"] == GAP:
        return f"{'':>8}  {'':23}  -- events {ev['from']} to {ev['to']} are gone: {ev['reason']}"
    rest = {k: v for k, v in ev.items()
            if k not in ("seq", "tick", "kind", "chan", "call_id", "time", "board", "server_id")}
    where = f"{ev.get('board') or ''}:{ev['chan']}" if ev.get("chan") is not None else ""
    fields = " ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in rest.items())
    return f"{ev['seq']:>8}  {ev['time']:23}  {ev['kind']:<24} {where:<12} {ev.get('call_id') or '':<16} {fields}"


def _api(args: argparse.Namespace) -> Any:
    """The network API's client (voiceserver.cli.apiclient: the address, TLS and the token from the
    config's [api], the admin's or --user's), or None (no [api]: poll the file)."""
    if not args.config:
        return None
    from voiceserver.cli.apiclient import client_from_config
    return client_from_config(args.config, args.user)


async def _follow_api(api: Any, after: int | None, args: argparse.Namespace) -> int:
    from voiceserver.api.client import EventClient
    shown = 0
    async with EventClient(api.base_url, api.token, since=after, kinds=args.kind, call=args.call,
                           channel=args.channel, queue=args.queue, agent=args.agent,
                           ssl=api.ssl_context()) as events:
        async for ev in events:
            print(json.dumps(ev, ensure_ascii=False) if args.json else format_line(ev), flush=True)
            shown += 1
    return shown


def main(argv: list[str] | None = None) -> int:
    from voiceserver.api.token import TokenFileError
    from voiceserver.core.journal import JournalError, read_since, stored_range
    ap = _parser()
    args = ap.parse_args(argv)
    if args.user is not None and (not args.follow or args.poll or not args.config):
        ap.error("--user goes with --follow and --config (the API; the journal file is the server's user's)")
    try:
        flt = EventFilter(args.kind or [], args.call, args.channel, args.queue, args.agent)
        api = _api(args) if args.follow and not args.poll else None
        # another user than the admin sees what its role may, from the API alone (not the file)
        api_only = api is not None and args.user not in (None, "admin")
        after = args.since
        shown = 0
        if not args.json:
            print(f"{'seq':>8}  {'time (UTC)':23}  {'kind':<24} {'channel':<12} {'call':<16} fields")
        if not api_only:
            path, server_id = _where(args)
            if not os.path.exists(path) and api is None:
                raise ValueError(f"{path}: no such journal (has the server run with this [storage]?)")
            if after is None:
                top = stored_range(path, server_id)[1] if os.path.exists(path) else 0
                after = max(0, top - args.last)
        while not api_only:
            if api is not None and not os.path.exists(path):
                break
            batch = read_since(path, server_id, after)
            for ev in batch:
                if flt.wants_dict(ev):
                    print(json.dumps(ev, ensure_ascii=False) if args.json else format_line(ev))
                    shown += 1
                after = ev["seq"] if ev["seq"] is not None else ev["to"]
            sys.stdout.flush()
            if not args.follow or (api is not None and not batch):
                break           # caught up with the file: the API from here
            if not batch:
                time.sleep(POLL_S)
        if api is not None:
            from voiceserver.api.client import StreamRefused, StreamRevoked
            try:
                shown += asyncio.run(_follow_api(api, after, args))
            except StreamRefused as exc:
                print(f"{PROG}: the server's API refused the stream: {exc}", file=sys.stderr)
                return 2
            except StreamRevoked as exc:
                resume = f"; resume with --since {exc.resume}" if exc.resume is not None else ""
                print(f"{PROG}: the server ended the stream (1008, policy violation): "
                      f"{exc.reason or 'no reason given'}{resume}", file=sys.stderr)
                return 3
    except (ValueError, JournalError, OSError, TokenFileError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:              # `voiceboard events | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    if shown == 0:
        print(f"{PROG}: no events after {args.since if args.since is not None else after}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
