"""`voiceboard calls`: search the call records, print a table, export CSV / XLSX / JSON.

Filters combine with AND. Times are ISO-8601 (a date alone means its
midnight); without a zone they are UTC, like the stored times. `--number`
matches either side of the call after normalising both (voiceserver.ivr.blacklist
.normalize_number), so "+86 10 1234 5678" finds "01012345678".

One line per call, with one of its recordings: the latest kept one, else the
latest (a call whose first file failed and second was kept shows the kept
one). CSV, XLSX and JSON carry the same columns (COLUMNS); the table a
subset. The database is only read: a file that is not an SQLite database is
refused, never initialised. Exit status: 0; 2 for usage (a bad option or
value, no database file at the path or not an SQLite file); 1 for a database
(e.g. a newer schema) or an export file that cannot be used.
Guide: docs/calls.md.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path
from typing import Any

from boarddrv.chanref import ChannelRefError, parse_channel_ref
from voiceserver.recording.calldb import (
    DEFAULT_PATH,
    CallDb,
    CallDbError,
    iso,
    parse_time,
)
from voiceserver.recording.rules import DIRECTIONS

PROG = "voiceboard calls"
ENV_DB = "VOICEBOARD_CALLS_DB"
TIMES = ("start", "answer", "agent_answer", "end")   # ISO-8601 UTC text in the database
SQLITE_MAGIC = b"SQLite format 3\0"

# (column, heading) of the export; the table shows a subset
COLUMNS = [
    ("call_id", "call_id"), ("start", "start"), ("answer", "answer"),
    ("agent_answer", "agent_answer"), ("end", "end"),
    ("duration", "duration_s"), ("board", "board"), ("channel", "channel"),
    ("direction", "direction"), ("caller", "caller"), ("called", "called"), ("agent", "agent"),
    ("queue", "queue"), ("ivr_path", "ivr_path"), ("disposition", "disposition"),
    ("digits_count", "digits"), ("rec_status", "recording"), ("rec_path", "recording_path"),
    ("rec_format", "format"), ("rec_layout", "layout"), ("rec_duration", "recording_s"),
    ("rec_reason", "recording_reason"), ("rec_recovered", "recovered"), ("rec_gaps", "gaps"),
    # the recording decision, on the call (schema 2: recorded or not, which rule, what became of it)
    ("recording_rule", "recording_rule"), ("recording_note", "recording_note"),
    # which server took the call (schema 4: several servers may write one database)
    ("server_id", "server"),
]
TABLE = [("start", "start (UTC)"), ("call_id", "call"), ("channel", "chan"), ("direction", "dir"),
         ("caller", "caller"), ("called", "called"), ("agent", "agent"), ("duration", "secs"),
         ("disposition", "disposition"), ("rec_status", "recording")]


class UsageError(Exception):
    pass


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog=PROG, description="Search call records (SQLite) and export them.")
    ap.add_argument("--db", help=f"call database (default: ${ENV_DB} or {DEFAULT_PATH})")
    ap.add_argument("--from", dest="since", metavar="T", help="calls that started at or after T")
    ap.add_argument("--to", dest="until", metavar="T", help="calls that started before T")
    ap.add_argument("--channel", metavar="C", help="channel number, or BOARD:CHANNEL")
    ap.add_argument("--agent", metavar="A", help="agent (as recorded, e.g. board:chan)")
    ap.add_argument("--number", metavar="N", help="caller or called number (normalised)")
    ap.add_argument("--direction", choices=DIRECTIONS, help="inbound | outbound | internal")
    ap.add_argument("--min-duration", type=float, metavar="S", help="at least S seconds (answer to end)")
    ap.add_argument("--max-duration", type=float, metavar="S", help="at most S seconds")
    ap.add_argument("--disposition", metavar="X", help="end reason contains X (case-insensitive)")
    ap.add_argument("--recorded", choices=["yes", "no"], help="with / without a kept recording")
    ap.add_argument("--csv", metavar="FILE", help="write CSV (- for stdout instead of the table)")
    ap.add_argument("--xlsx", metavar="FILE", help="write an Excel workbook")
    ap.add_argument("--json", action="store_true", help="JSON on stdout instead of the table")
    return ap


def _time_arg(text: str, flag: str) -> str:
    try:
        when = iso(parse_time(text))
        if when is None:
            raise ValueError("no time given")
        return when
    except ValueError as exc:
        raise UsageError(f"{flag}: {exc}") from None


def build_query(args: argparse.Namespace) -> tuple[str, list[Any]]:
    """SQL over calls + one recording each (the latest kept one, else the latest), from the options."""
    where: list[str] = []
    vals: list[Any] = []
    if args.since:
        where.append("c.start >= ?")
        vals.append(_time_arg(args.since, "--from"))
    if args.until:
        where.append("c.start < ?")
        vals.append(_time_arg(args.until, "--to"))
    if args.channel:
        try:
            board, chan = parse_channel_ref(args.channel, default_board="")
        except ChannelRefError:
            raise UsageError(f"--channel: expected N or BOARD:N, got {args.channel!r}") from None
        where.append("c.channel = ?")
        vals.append(chan)
        if board:
            where.append("c.board = ?")
            vals.append(board)
    if args.agent:
        where.append("c.agent = ?")
        vals.append(args.agent)
    if args.number:
        try:
            from voiceserver.ivr.blacklist import normalize_number
            num = normalize_number(args.number)
        except ValueError as exc:
            raise UsageError(f"--number: {exc}") from None
        where.append("(c.caller_norm = ? OR c.called_norm = ?)")
        vals += [num, num]
    if args.direction:
        where.append("c.direction = ?")
        vals.append(args.direction)
    for flag, op, v in (("--min-duration", ">=", args.min_duration), ("--max-duration", "<=", args.max_duration)):
        if v is not None:
            if v < 0:
                raise UsageError(f"{flag}: must not be negative ({v})")
            where.append(f"c.duration {op} ?")
            vals.append(v)
    if args.disposition:
        where.append("LOWER(c.disposition) LIKE ? ESCAPE '\\'")   # % and _ are plain text
        text = args.disposition.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        vals.append(f"%{text}%")
    if args.recorded:
        has = "EXISTS (SELECT 1 FROM recordings k WHERE k.call_id = c.call_id AND k.status = 'kept')"
        where.append(has if args.recorded == "yes" else f"NOT {has}")
    sql = ("SELECT c.*, r.status AS rec_status, r.path AS rec_path, r.format AS rec_format, "
           "r.layout AS rec_layout, r.duration AS rec_duration, "
           "COALESCE(r.discard_reason, r.stop_reason) AS rec_reason, r.recovered AS rec_recovered, "
           "r.gaps AS rec_gaps FROM calls c LEFT JOIN recordings r ON r.id = "
           "(SELECT x.id FROM recordings x WHERE x.call_id = c.call_id "
           "ORDER BY x.status = 'kept' DESC, x.id DESC LIMIT 1)")
    if where:
        sql += " WHERE " + " AND ".join(where)
    return sql + " ORDER BY c.start, c.call_id", vals


def _rows(db: CallDb, args: argparse.Namespace) -> list[dict[str, Any]]:
    sql, vals = build_query(args)
    out = []
    for r in db.query(sql, vals):
        d = {k: r[k] for k in r.keys()}
        d["ivr_path"] = json.loads(d["ivr_path"]) if d.get("ivr_path") else []
        d["rec_gaps"] = json.loads(d["rec_gaps"]) if d.get("rec_gaps") else []
        d["rec_recovered"] = None if d["rec_recovered"] is None else bool(d["rec_recovered"])
        out.append({k: d.get(k) for k, _ in COLUMNS})
    return out


def _cell(key: str, v: Any) -> str:
    if v is None:
        return ""
    if key in TIMES and isinstance(v, str):
        return v[:19].replace("T", " ")
    if isinstance(v, float):
        return f"{v:.1f}"
    if isinstance(v, list):
        return json.dumps(v) if v and isinstance(v[0], dict) else " > ".join(map(str, v))
    return str(v)


def format_table(rows: list[dict[str, Any]]) -> str:
    cells = [[h for _, h in TABLE]]
    for r in rows:
        line = []
        for k, _ in TABLE:
            v = r[k]
            if k == "channel" and r.get("board"):
                v = f"{r['board']}:{v}"
            if k == "rec_status" and v == "kept":
                v = f"{r['rec_duration']:.1f}s {r['rec_layout']}" + (" recovered" if r["rec_recovered"] else "")
            elif k == "rec_status" and v:
                # rows written before the fix say "discarded: why" in the reason itself
                why = (r["rec_reason"] or "").removeprefix(f"{v}: ")
                v = f"{v}: {why}".rstrip(": ")
            elif k == "rec_status":        # never recorded: the rules' sentence, if the server wrote one
                v = r.get("recording_note")
            line.append(_cell(k, v))
        cells.append(line)
    widths = [max(len(c[i]) for c in cells) for i in range(len(TABLE))]
    text = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip() for row in cells]
    text.insert(1, "  ".join("-" * w for w in widths))
    text.append(f"{len(rows)} call{'s' if len(rows) != 1 else ''}")
    return "\n".join(text)


def write_csv(rows: list[dict[str, Any]], stream: Any) -> None:
    w = csv.writer(stream)
    w.writerow([h for _, h in COLUMNS])
    for r in rows:
        w.writerow([_export(k, r[k]) for k, _ in COLUMNS])


def _export(key: str, v: Any) -> Any:
    if isinstance(v, list):
        return json.dumps(v) if v and isinstance(v[0], dict) else " > ".join(map(str, v))
    return "" if v is None else v


def write_xlsx(rows: list[dict[str, Any]], path: str) -> None:
    try:
        from openpyxl import Workbook
    except ImportError:
        raise UsageError("--xlsx needs openpyxl (pip install openpyxl)") from None
    wb = Workbook()
    ws = wb.active
    ws.title = "calls"
    ws.append([h for _, h in COLUMNS])
    for r in rows:
        ws.append([_xlsx_value(k, r[k]) for k, _ in COLUMNS])
    ws.freeze_panes = "A2"
    wb.save(path)


def _xlsx_value(key: str, v: Any) -> Any:
    if v is None:
        return None                                  # an empty cell, not an empty string
    if key in TIMES and v:
        t = parse_time(v)
        return t.replace(tzinfo=None) if t is not None else None   # Excel has no zones: UTC
    return _export(key, v)


def as_json(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows under the export's column names (as CSV and XLSX), with JSON types."""
    return [{h: r[k] for k, h in COLUMNS} for r in rows]


def _check_database_file(path: str) -> str | None:
    """Why `path` cannot be the call database, or None (the CLI never creates or converts a file)."""
    p = Path(path)
    if not p.is_file():
        return f"no call database at {path} (give --db PATH or set ${ENV_DB})"
    try:
        with open(p, "rb") as f:
            magic = f.read(len(SQLITE_MAGIC))
    except OSError as exc:
        return f"{path}: cannot read: {exc.strerror or exc}"
    if magic != SQLITE_MAGIC:
        return f"{path}: not an SQLite database (a call database is the server's calls.db)"
    return None


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    path = args.db or os.environ.get(ENV_DB) or DEFAULT_PATH
    problem = _check_database_file(path)
    if problem:
        print(f"{PROG}: {problem}", file=sys.stderr)
        return 2
    try:
        with CallDb(path) as db:
            rows = _rows(db, args)
        if args.xlsx:
            write_xlsx(rows, args.xlsx)
        if args.csv and args.csv != "-":
            with open(args.csv, "w", newline="", encoding="utf-8") as f:
                write_csv(rows, f)
    except UsageError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    except (CallDbError, OSError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    try:
        if args.json:
            json.dump(as_json(rows), sys.stdout, indent=1, ensure_ascii=False)
            sys.stdout.write("\n")
        elif args.csv == "-":
            write_csv(rows, sys.stdout)
        else:
            print(format_table(rows))
        sys.stdout.flush()
    except BrokenPipeError:             # `voiceboard calls | head`: the reader has gone, not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return 0


__all__ = ["main", "build_query", "format_table", "write_csv", "write_xlsx", "as_json", "COLUMNS"]


if __name__ == "__main__":
    sys.exit(main())
