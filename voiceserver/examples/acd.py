"""An example ACD program on the network API: a screen pop for every caller, and call routing.

    python -m voiceserver.examples.acd --url http://127.0.0.1:8750 --token-file acd-token \\
        --queue service [--route-to AGENT] [--state acd-state.json] [--calls N]

It follows the server's event stream with voiceserver's EventClient (which
reconnects and resumes by itself) and, for each inbound call:

- on `call.callerid` (the caller's number, received while the line rings)
  prints a screen-pop line: ``POP <number> <name> call=<id> line=<board:chan>``;
- when the IVR starts playing to the caller (`call.play`), routes the call
  to `--queue` with ``POST /v1/calls/<id>/route`` (the server answers 200,
  or 409 if the caller has left the IVR meanwhile): ``ROUTE call=<id> queue=<q> -> <status> ...``;
- with external routing (`[queues] external_routing`), answers each `route.request`
  before its deadline: to agent `--route-to` if given, else to `--queue`:
  ``DECIDE call=<id> agent=<a> -> <status> ...`` (or ``queue=<q>``);
- prints ``AGENT <agent> call=<id>`` when an agent is connected (`call.bridge`),
  ``LEG-END call=<id> line=<board:chan> reason=<why>`` when another leg than the
  caller's ends (the agent hung up) and ``END call=<id> reason=<why>`` when the
  caller's line does.

With `--state FILE` it keeps the last seq it handled there and resumes from it
when started again: nothing missed while it was down, nothing handled twice.
Its user needs the `integration` role ([[api.user]] in the server config,
docs/api.md). docs/acd-example.md walks through it.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import aiohttp

from voiceserver.api.client import EventClient, StreamRefused, StreamRevoked
from voiceserver.core.events import ServerEventKind as K

KINDS = [K.CALL_CALLERID, K.CALL_PLAY, K.CALL_BRIDGE, K.CALL_END, K.ROUTE_REQUEST]   # what this program needs


class Acd:
    """What the program knows of each call and does about it."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, queue: str,
                 route_to: str | None = None) -> None:
        self.session = session
        self.base_url = base_url
        self.queue = queue
        self.route_to = route_to               # the agent each route.request is answered with
        self.routed: set[str] = set()          # calls this program has asked to route
        self.lines: dict[str, str] = {}        # call id -> the caller's line (board:chan)
        self.ended: set[str] = set()           # calls whose caller's line has hung up

    async def handle(self, ev: dict[str, Any]) -> None:
        kind, call_id = ev["kind"], ev.get("call_id")
        if kind == K.JOURNAL_GAP:
            say(f"GAP {ev['from']}..{ev['to']}: {ev['reason']}")
        elif kind == K.CALL_CALLERID and call_id:
            line = self.lines[call_id] = f"{ev.get('board')}:{ev.get('chan')}"
            say(f"POP {ev.get('caller') or 'unknown'} {ev.get('name') or '-'} call={call_id} line={line}")
        elif kind == K.CALL_PLAY and call_id and call_id not in self.routed and call_id not in self.ended:
            self.routed.add(call_id)
            await self.route(call_id)
        elif kind == K.ROUTE_REQUEST and call_id:
            await self.decide(call_id)
        elif kind == K.CALL_BRIDGE and ev.get("agent"):
            say(f"AGENT {ev['agent']} call={call_id}")
        elif kind == K.CALL_END and call_id:          # each leg of the call (the caller's, an agent's)
            line = f"{ev.get('board')}:{ev.get('chan')}"
            if self.lines.get(call_id, line) != line:
                say(f"LEG-END call={call_id} line={line} reason={ev.get('reason')}")
            else:
                self.ended.add(call_id)
                self.lines.pop(call_id, None)
                say(f"END call={call_id} reason={ev.get('reason')}")

    async def route(self, call_id: str) -> None:
        """The caller, in the IVR, to the queue (POST /v1/calls/ID/route)."""
        async with self.session.post(f"{self.base_url}/v1/calls/{call_id}/route",
                                     json={"queue": self.queue}) as r:
            body = await r.json()
        say(f"ROUTE call={call_id} queue={self.queue} -> {r.status} {body.get('error', '')}".rstrip())


    async def decide(self, call_id: str) -> None:
        """Answer a route.request: the caller to agent `route_to`, or to the queue."""
        target = {"agent": self.route_to} if self.route_to else {"queue": self.queue}
        async with self.session.post(f"{self.base_url}/v1/calls/{call_id}/route", json=target) as r:
            body = await r.json()
        (what, name), = target.items()
        say(f"DECIDE call={call_id} {what}={name} -> {r.status} {body.get('error', '')}".rstrip())


def say(line: str) -> None:
    print(line, flush=True)


def load_state(path: Path | None) -> int | None:
    """The last seq handled by an earlier run (None: start with the next event)."""
    if path is None or not path.exists():
        return None
    return int(json.loads(path.read_text())["last_seq"])


def save_state(path: Path | None, seq: int | None) -> None:
    if path is not None and seq is not None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"last_seq": seq}))
        tmp.replace(path)


async def run(url: str, token: str, queue: str, since: int | None, state: Path | None,
              calls: int | None, route_to: str | None = None) -> int:
    """Follow the stream until `calls` calls have ended (None: for ever)."""
    url = url.rstrip("/")
    since = load_state(state) if since is None else since
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session, \
            EventClient(url, token, since=since, kinds=KINDS) as events:
        acd = Acd(session, url, queue, route_to)
        say(f"READY {url} queue={queue} since={since}")
        async for ev in events:
            await acd.handle(ev)
            save_state(state, events.last_seq)
            if calls is not None and len(acd.ended) >= calls:
                return 0
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", required=True, help="the network API, http://HOST:PORT ([api] bind)")
    ap.add_argument("--token-file", required=True, type=Path, help="the token of a user with the "
                    "integration role")
    ap.add_argument("--queue", required=True, help="the queue the callers are routed to")
    ap.add_argument("--route-to", metavar="AGENT", help="answer each route.request (external routing) "
                    "with this agent (default: with --queue)")
    ap.add_argument("--since", type=int, help="start after this seq (default: --state's, or now)")
    ap.add_argument("--state", type=Path, help="a file keeping the last seq handled, to resume from")
    ap.add_argument("--calls", type=int, help="stop after this many calls have ended")
    args = ap.parse_args(argv)
    token = args.token_file.read_text().strip()
    try:
        return asyncio.run(run(args.url, token, args.queue, args.since, args.state, args.calls, args.route_to))
    except KeyboardInterrupt:
        return 0
    except (StreamRefused, StreamRevoked) as exc:   # a token the server no longer takes: say so, stop
        resume = f" (resume with --since {exc.resume})" if isinstance(exc, StreamRevoked) and exc.resume else ""
        print(f"acd: {exc}{resume}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
