"""`voiceboard r2trace`: an E1 R2 call's line and register signals as a timeline.

    voiceboard r2trace --config server.toml                 # the last call with R2 signals
    voiceboard r2trace --config server.toml pbx1-3-000118   # that call
    voiceboard r2trace --log serve.log pbx1-3-000118 --json # from `voiceboard serve`'s event log

Each `call.signal` event of the call (docs/events.md) is one line: the time
since the seizure, the direction (`->` the server sent it, `<-` the far end
did), the ABCD bits or the MF signal, and what it means; the call's
offer (DNIS, ANI, category), answer and end are shown where they happened.
Read from the event journal (`[storage] events` of the config, or
`--journal FILE`) or from an event log (`--log FILE`: the JSON lines
`voiceboard serve` writes). `--json`: one JSON object per signal.
Exit status 2 when the file cannot be read or the call has no signals.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
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
    return ap


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
    try:
        events = _log_events(args.log) if args.log else _journal_events(args)
        call_id, rows = timeline(events, args.call)
    except (ValueError, OSError) as exc:
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
