"""`voiceboard r2trace`: an E1 R2 call's line and register signals as a timeline.

    voiceboard r2trace --config server.toml                 # the last call with R2 signals
    voiceboard r2trace --config server.toml pbx1-3-000118   # that call
    voiceboard r2trace --log serve.log pbx1-3-000118 --json # from `voiceboard serve`'s event log
    voiceboard r2trace --api http://pbx1:8750 --token-file t # from a live server's network API

Each `call.signal` event of the call (docs/events.md) is one line: the time
since the seizure, the direction (`->` the server sent it, `<-` the far end
did), the ABCD bits or the MF signal, and what it means; the call's
offer (DNIS, ANI, category), answer and end are shown where they happened.
Read from the event journal (`[storage] events` of the config, or
`--journal FILE`), from an event log (`--log FILE`: the JSON lines
`voiceboard serve` writes), or from the running server's event stream
(the network API, `GET /v1/events`): with `--api`, or when the config has
`[api]` and its journal is not there to read (another machine's server,
a config without `[storage] events`). From the API a given call is read
until its `call.end` (a call in progress is followed until it ends, or
until `--wait` s pass); without a call id, the events the server still
has, until the stream is quiet for a moment or `--wait` s pass.
`--json`: one JSON object per signal. Exit status 2 when the journal,
log or API cannot be read or the call has no signals.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

from voiceserver.core.events import ServerEventKind

PROG = "voiceboard r2trace"
SIGNAL = ServerEventKind.CALL_SIGNAL.value
MILESTONES = {ServerEventKind.CALL_START.value: "call start", ServerEventKind.CALL_OFFER.value: "offered",
              ServerEventKind.CALL_ANSWER.value: "answered", ServerEventKind.CALL_END.value: "ended",
              ServerEventKind.CALL_ANSWER_ALARM.value: "ANSWER ALARM"}


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    ap.add_argument("call", nargs="?", metavar="CALL_ID", help="the call (default: the last one with R2 signals)")
    ap.add_argument("--config", metavar="SERVER.toml", help="the server's config: its [storage] names the journal")
    ap.add_argument("--journal", metavar="FILE", help="the event journal (default: from --config)")
    ap.add_argument("--server-id", help="whose events (default: [storage] server_id, else the host name)")
    ap.add_argument("--log", metavar="FILE", help="read `voiceboard serve`'s event log (JSON lines) instead")
    ap.add_argument("--json", action="store_true", help="one JSON object per signal")
    from voiceserver.cli.apiclient import add_api_options
    add_api_options(ap, config=False)       # --api, --user, --token-file, --cafile
    ap.add_argument("--wait", type=float, default=10.0, metavar="S",
                    help="from the API: stop reading after S seconds at most (default 10)")
    return ap


QUIET = 0.5        # s without an event: the API has sent what it had (no call id given)
KINDS = [SIGNAL, *MILESTONES]


def _api_client(args: argparse.Namespace) -> Any:
    """The network API to read from, or None (read the journal): --api, or the config's [api]
    when its journal cannot be read."""
    from voiceserver.cli.apiclient import api_from_args, client_from_config
    if args.api:
        client = api_from_args(args)
        if not client.network:
            raise ValueError("--api: the events are on the network API (http(s)://HOST:PORT), "
                             "not the status API")
        return client
    if not args.config or args.journal:
        return None
    try:
        from voiceserver.cli.events import _where
        path, _ = _where(args)
        if os.path.exists(path):
            return None
    except ValueError:
        pass                                   # no [storage] events: the API, if there is one
    return client_from_config(args.config, args.user)


def _api_events(client: Any, call_id: str | None, wait: float) -> list[dict[str, Any]]:
    """The call's events (or every call's) from the server's event stream, from the oldest it has."""
    from voiceserver.api.client import EventClient, StreamRefused, StreamRevoked
    from voiceserver.cli.apiclient import StatusUnreachable
    out: list[dict[str, Any]] = []

    async def read() -> None:
        deadline = time.monotonic() + wait
        async with EventClient(client.base_url, client.token, since=0, kinds=KINDS, call=call_id,
                               ssl=client.ssl_context(), retry=0.2) as events:
            it = events.__aiter__()
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                # a given call: until its end; any call: until the backlog is sent (the stream is quiet)
                timeout = left if call_id is not None else min(left, QUIET)
                try:
                    ev = await asyncio.wait_for(it.__anext__(), timeout)
                except (TimeoutError, StopAsyncIteration):
                    return
                out.append(ev)
                if call_id is not None and ev["kind"] == ServerEventKind.CALL_END.value:
                    return

    try:
        client.fetch("/v1/whoami")             # there and taking this token (the stream would retry forever)
        asyncio.run(read())
    except (StreamRefused, StreamRevoked) as exc:
        raise ValueError(f"{client.name} refused the event stream: {exc}") from None
    except StatusUnreachable as exc:
        raise ValueError(str(exc)) from None
    return out


def _journal_events(args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    from voiceserver.cli.events import _where
    from voiceserver.core.journal import read_since
    path, server_id = _where(args)
    if not os.path.exists(path):
        raise ValueError(f"{path}: no such journal (has the server run with this [storage]?)")
    after = 0
    while True:
        batch = read_since(path, server_id, after)
        if not batch:
            return
        for ev in batch:
            yield ev
            after = ev["seq"] if ev["seq"] is not None else ev["to"]


def _log_events(path: str) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            start = line.find("{")
            if start < 0:
                continue
            try:
                ev = json.loads(line[start:])
            except ValueError:
                continue            # a log line that is not an event
            if isinstance(ev, dict) and "kind" in ev:
                yield ev


def timeline(events: Iterable[dict[str, Any]], call_id: str | None) -> tuple[str | None, list[dict[str, Any]]]:
    """The call (given, or the last with signals) and its signals and milestones, in order."""
    by_call: dict[str, list[dict[str, Any]]] = {}
    last: str | None = None
    for ev in events:
        cid = ev.get("call_id")
        if cid is None or (call_id is not None and cid != call_id):
            continue
        if ev["kind"] == SIGNAL:
            last = cid
        if ev["kind"] == SIGNAL or ev["kind"] in MILESTONES:
            by_call.setdefault(cid, []).append(ev)
    chosen = call_id if call_id is not None else last
    rows = by_call.get(chosen or "", [])
    if not any(r["kind"] == SIGNAL for r in rows):
        return chosen, []
    t0 = min(r["ms"] for r in rows if r["kind"] == SIGNAL)
    # a milestone is placed at the last signal of its tick or before (a seizure's signals are
    # published with the call's start, in the same tick)
    at_tick: list[tuple[int, int]] = sorted((r.get("tick", 0), r["ms"]) for r in rows if r["kind"] == SIGNAL)
    out: list[tuple[int, int, int, dict[str, Any]]] = []
    for i, r in enumerate(rows):
        if r["kind"] == SIGNAL:
            out.append((r["ms"], 0, i, {"t_ms": r["ms"] - t0, "dir": r["dir"], "signal": r["signal"],
                                        "meaning": r["meaning"], "board": r.get("board"),
                                        "chan": r.get("chan"), "seq": r.get("seq")}))
        else:
            ms = max((m for t, m in at_tick if t <= r.get("tick", 0)), default=t0)
            detail = {k: r[k] for k in ("dnis", "ani", "category", "reason", "waited_ms") if r.get(k) is not None}
            out.append((ms, 1, i, {"t_ms": ms - t0, "dir": "", "signal": "", "meaning": MILESTONES[r["kind"]],
                                   "event": r["kind"], "detail": detail, "board": r.get("board"),
                                   "chan": r.get("chan"), "seq": r.get("seq")}))
    return chosen, [row for *_, row in sorted(out, key=lambda x: x[:3])]


def format_row(row: dict[str, Any]) -> str:
    arrow = {"tx": "->", "rx": "<-"}.get(row["dir"], "  ")
    if row.get("event"):
        detail = " ".join(f"{k}={v}" for k, v in row["detail"].items())
        return f"{row['t_ms'] / 1000:>9.3f}  {'':2}  {'':8}  [{row['meaning']}] {detail}".rstrip()
    return f"{row['t_ms'] / 1000:>9.3f}  {arrow}  {row['signal']:<8}  {row['meaning']}"


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from voiceserver.api.token import TokenFileError
    try:
        client = None if args.log else _api_client(args)
        if args.log:
            events: Iterable[dict[str, Any]] = _log_events(args.log)
        elif client is not None:
            events = _api_events(client, args.call, args.wait)
        else:
            events = _journal_events(args)
        call_id, rows = timeline(events, args.call)
    except (ValueError, OSError, TokenFileError) as exc:   # ConfigError is a ValueError
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    if not rows:
        which = f"call {call_id}" if call_id else "any call"
        print(f"{PROG}: no R2 signals for {which} (an E1 R2 trunk group with trace = true?)", file=sys.stderr)
        return 2
    try:
        if args.json:
            for row in rows:
                print(json.dumps({"call_id": call_id, **row}, ensure_ascii=False))
        else:
            first = rows[0]
            print(f"call {call_id} on {first.get('board')}:{first.get('chan')}")
            print(f"{'time (s)':>9}  {'':2}  {'signal':<8}  meaning")
            for row in rows:
                print(format_row(row))
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
