"""``voiceboard rules``: check a recording rules file, explain a decision.

    voiceboard rules check FILE [--server-config SERVER.toml] [--json]
    voiceboard rules explain FILE [--server-config SERVER.toml] --channel BOARD:N [--span S] [--agent A]
        [--caller N] [--called M] [--at TIME] [--duration S]
        [--direction inbound|outbound|internal] [--queue Q] [--ivr-path a,b]
        [--call-id ID] [--json]

FILE is a rules file, or a server config whose ``[recording]`` section
holds or names the rules (then the whole server config is validated, as
the server would). Exit status: 0 fine (check: warnings only), 1 the rules
do not load, 2 bad command line.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from dataclasses import replace
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from boarddrv.chanref import ChannelRefError, parse_channel_ref
from boarddrv.tomlconfig import ConfigError, ConfigErrors
from boarddrv.tomlconfig import load as load_toml
from voiceserver.recording.rules import (
    DIRECTIONS,
    CallFacts,
    Decision,
    Keep,
    RecordingRules,
    agent_warnings,
    load_rules,
)

__all__ = ["main", "load_any"]


def load_any(path: str, server_config: str | None = None) -> RecordingRules:
    """Rules from a rules file or from a server config's [recording]; ConfigError if bad.

    A server config's rules are checked against its own [agents]. With
    ``server_config``, a rules file is read under that server's [numbering]
    and its agent lists checked against that server's [agents] (warnings).
    """
    from voiceserver.config.server import agent_ids, load_config
    cfg = load_toml(path)
    if "recording" in cfg or "ivr" in cfg:
        server = load_config(path)
        rules = getattr(server, "recording", None)
        if rules is None:
            raise ConfigError(path, None, None, "this server config has no [recording] section")
        return rules
    if server_config is None:
        return load_rules(path)
    server = load_config(server_config)
    rules = load_rules(path, server.numbering)
    found = agent_warnings(rules, agent_ids(server.acd), server_config)
    return replace(rules, warnings=rules.warnings + tuple(found))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="voiceboard rules",
                                description="check recording rules; explain a decision")
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check", help="validate a rules file: errors and warnings")
    c.add_argument("file")
    c.add_argument("--server-config", metavar="SERVER.toml",
                   help="the server config the rules run under: its [numbering] applies and "
                        "agent lists are checked against its [agents]")
    c.add_argument("--json", action="store_true", help="machine-readable output")
    e = sub.add_parser("explain", help="would this call be recorded and kept, and why")
    e.add_argument("file")
    e.add_argument("--server-config", metavar="SERVER.toml",
                   help="read the rules under this server config's [numbering]")
    e.add_argument("--channel", help="BOARD:N (board channel index)")
    e.add_argument("--span", type=int, help="the channel's E1 span (for span rules)")
    e.add_argument("--agent")
    e.add_argument("--caller")
    e.add_argument("--called")
    e.add_argument("--at", help="'2026-11-23 10:00' (rules timezone) or ISO 8601 with offset; "
                                "default: now")
    e.add_argument("--duration", type=float, help="recording length in seconds: also say "
                                                  "whether it is kept")
    e.add_argument("--direction", default="inbound", choices=DIRECTIONS)
    e.add_argument("--queue")
    e.add_argument("--ivr-path", default="", help="menus the call went through: a,b")
    e.add_argument("--call-id", default="explain", help="the call id (sampling depends on it)")
    e.add_argument("--json", action="store_true")
    return p


def main(argv: list[str] | None = None, *, out: TextIO | None = None,
         err: TextIO | None = None) -> int:
    """Entry point of ``voiceboard rules``."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if args.cmd == "check":
        return _check(args, out)
    return _explain(args, out, err)


# ------------------------------------------------------------------ check
def _check(args: argparse.Namespace, out: TextIO) -> int:
    try:
        rules = load_any(args.file, args.server_config)
    except ConfigError as exc:
        errors = exc.errors if isinstance(exc, ConfigErrors) else [exc]
        if args.json:
            json.dump({"file": args.file, "ok": False,
                       "errors": [{"file": e.file, "line": e.line, "key": e.key,
                                   "message": e.message} for e in errors], "warnings": []},
                      out, indent=2)
            out.write("\n")
        else:
            shown = [_error_text(e) for e in errors[:ConfigErrors.LIMIT]]
            if len(errors) > ConfigErrors.LIMIT:
                shown.append(f"... and {len(errors) - ConfigErrors.LIMIT} more")
            n = len(errors)
            out.write("\n".join(shown) + f"\n{args.file}: FAILED ({n} error{'s' if n != 1 else ''})\n")
        return 1
    summary = {"windows": len(rules.windows),
               "lists": len(rules.never) + len(rules.force) + len(rules.exclude),
               "pause_rules": (len(rules.pause_on_ivr) + len(rules.pause_while_collecting)
                               + len(rules.pause_dtmf))}
    if args.json:
        json.dump({"file": args.file, "ok": True, "errors": [],
                   "warnings": [w.as_dict() for w in rules.warnings], "summary": summary,
                   "rules": rules.describe()}, out, indent=2, ensure_ascii=False)
        out.write("\n")
        return 0
    for w in rules.warnings:
        where = w.file if w.line is None else f"{w.file}:{w.line}"
        out.write(f"{where}: key '{w.key}': warning: {w.message}\n")
    nw = len(rules.warnings)
    out.write(f"{args.file}: OK ({summary['windows']} windows, {summary['lists']} lists, "
              f"{summary['pause_rules']} pause rules; {nw} warning{'s' if nw != 1 else ''})\n")
    return 0


def _error_text(exc: ConfigError) -> str:
    where = exc.file if exc.line is None else f"{exc.file}:{exc.line}"
    key = f" key '{exc.key}':" if exc.key else ""
    return f"{where}:{key} error: {exc.message}"


# ---------------------------------------------------------------- explain
def parse_at(text: str | None, tz: str) -> dt.datetime:
    """'2026-11-23 10:00' in the rules' timezone, or ISO 8601 with an offset; None: now."""
    zone = ZoneInfo(tz)
    if text is None:
        return dt.datetime.now(zone)
    try:
        at = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"--at: expected '2026-11-23 10:00' or ISO 8601, got {text!r}") from None
    return at.replace(tzinfo=zone) if at.tzinfo is None else at


def _facts(args: argparse.Namespace) -> CallFacts:
    board = chan = None
    if args.channel:
        try:
            board, chan = parse_channel_ref(args.channel)
        except ChannelRefError:
            raise ValueError(f"--channel: expected BOARD:N (e.g. hotline:3), got {args.channel!r}") from None
    path = tuple(p.strip() for p in args.ivr_path.split(",") if p.strip())
    return CallFacts(args.call_id, args.direction, board, chan, args.span, args.caller,
                     args.called, args.agent, args.queue, path)


def _explain(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    try:
        rules = load_any(args.file, args.server_config)
    except ConfigError as exc:
        errors = exc.errors if isinstance(exc, ConfigErrors) else [exc]
        err.write("".join(f"{_error_text(e)}\n" for e in errors))
        return 1
    try:
        facts = _facts(args)
        at = parse_at(args.at, rules.timezone)
    except ValueError as exc:
        err.write(f"voiceboard rules explain: {exc}\n")
        return 2
    decision = rules.decide(facts, at)
    keep = rules.keep(decision, args.duration) if args.duration is not None else None
    if args.json:
        doc: dict[str, Any] = {"file": args.file, "decision": decision.as_dict(),
                               "keep": keep.as_dict() if keep else None}
        json.dump(doc, out, indent=2, ensure_ascii=False)
        out.write("\n")
        return 0
    out.write(explain_text(rules, decision, keep))
    return 0


def _where(rule: Any) -> str:
    if rule is None:
        return ""
    base = os.path.basename(rule.file)
    return f"{base}:{rule.line}" if rule.line is not None else base


def explain_text(rules: RecordingRules, d: Decision, keep: Keep | None) -> str:
    """The readable explanation: the facts, the verdict, the chain, the keep decision."""
    f = d.facts
    assert f is not None and d.at is not None
    local = d.at.astimezone(ZoneInfo(rules.timezone))
    lines = [f"call {f.call_id}: {f.direction}, channel {f.channel_text()}, agent "
             f"{f.agent or '-'}, caller {f.caller or '-'}, called {f.called or '-'}"
             + (f", queue {f.queue}" if f.queue else "")
             + (f", ivr {'>'.join(f.ivr_path)}" if f.ivr_path else ""),
             f"at {local:%a %Y-%m-%d %H:%M} {rules.timezone}", ""]
    if d.record:
        limit = f"max {d.max_seconds:g} s" if d.max_seconds is not None else "no max"
        lines.append(f"RECORDED ({d.format}, {d.layout}, {limit}, min {d.min_seconds:g} s)")
    else:
        lines.append("NOT RECORDED")
    lines.append(f"  because: {d.reason}")
    lines.append(f"  rule:    {d.rule}")
    for p in d.pending:
        lines.append(f"  pending: {p.stage}: kept only if the call reaches "
                     f"{', '.join(sorted(p.wanted)) or '(none)'}")
    lines += ["", "checks, in precedence order:"]
    w_stage = max(len(c.stage) for c in d.checks)
    w_verdict = max(len(c.verdict) for c in d.checks)
    for i, c in enumerate(d.checks, 1):
        where = _where(c.rule)
        lines.append(f"  {i:2d}. {c.stage:<{w_stage}}  {c.verdict:<{w_verdict}}  {c.reason}"
                     + (f"  [{where}]" if where else ""))
    if keep is not None:
        lines += ["", f"{'KEPT' if keep.keep else 'DISCARDED'}: {keep.reason}",
                  f"  rule:    {keep.rule}"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
