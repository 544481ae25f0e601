"""`voiceboard serve` and `voiceboard demo`.

The demo starts hwsim as a separate process (the way a card would already
be there), waits for its ready file, and runs the server against the board
URIs it names: the server never imports hwsim.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from boarddrv.tomlconfig import ConfigError

HERE = Path(__file__).resolve().parent.parent
DEMO_CONFIG = HERE / "configs" / "demo.toml"
REPO = HERE.parent
HOTLINE = REPO / "hwsim" / "configs" / "hotline.toml"


def _build(config: str):
    from voiceserver.config.server import load_config
    from voiceserver.core.server import VoiceServer
    from voiceserver.ivr.prompts import PromptError, PromptLibrary
    cfg = load_config(config)
    try:
        library = PromptLibrary(cfg.prompts.directory, languages=cfg.prompts.languages,
                                fallback=cfg.prompts.default_lang)
    except PromptError as exc:
        raise ConfigError(config, None, "prompts", str(exc)) from None
    load_config(config, library=library)  # every prompt a flow names exists
    return cfg, library, VoiceServer


def _status_port(text: str) -> int:
    """--status-port: 0..65535, or -1 for no status API."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not -1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} out of range: 0..65535, or -1 for none")
    return port


def serve_main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="voiceboard serve", description="Run the voice server.")
    ap.add_argument("--config", required=True, help="server config (TOML)")
    ap.add_argument("--block", type=int, default=160, choices=(80, 160, 320))
    ap.add_argument("--lockstep-sync", action="store_true",
                    help="wait for the control plane every tick that has events (deterministic runs)")
    ap.add_argument("--api-port", type=_status_port, default=None,
                    help="the network API's port (default: [api] bind when the config has [api], "
                         "else none; 0: any free port; -1: none)")
    ap.add_argument("--ami-port", type=_status_port, default=None,
                    help="the AMI-compatible feed's port (default: [api] ami_bind, else none; 0: any free "
                         "port; -1: none)")
    ap.add_argument("--status-port", type=_status_port, default=None,
                    help="loopback port of the status/admin API (default: the [api] port + 1; -1: none)")
    ap.add_argument("--log-level", default="info")
    args = ap.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(message)s")
    try:
        cfg, library, VoiceServer = _build(args.config)
    except ConfigError as exc:
        print(f"voiceboard serve: {exc}", file=sys.stderr)
        return 2
    port = cfg.api.port + 1 if args.status_port is None else args.status_port
    api_port = (cfg.api.port if cfg.api.network else -1) if args.api_port is None else args.api_port
    ami_port = (cfg.api.ami_port if cfg.api.ami_port is not None else -1) if args.ami_port is None else args.ami_port
    server = VoiceServer(cfg, library, sync=args.lockstep_sync, block=args.block,
                         status_port=None if port < 0 else port, api_port=None if api_port < 0 else api_port,
                         ami_port=None if ami_port < 0 else ami_port)
    event_log = None
    if logging.getLogger().isEnabledFor(logging.INFO):   # the JSON event lines of the log
        from voiceserver.core.events import EventLog
        event_log = EventLog(sys.stderr)
        server.bus.subscribe(event_log)

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGHUP, lambda: server.reload_soon(args.config))
        await server.run(stop)
        return 0 if server.error is None else 1
    try:
        return asyncio.run(main())
    except Exception as exc:  # open/start errors name the board
        print(f"voiceboard serve: {exc}", file=sys.stderr)
        return 1
    finally:
        if event_log is not None:   # the last loop turn's lines
            event_log.flush()


def reload_main(argv: list[str]) -> int:
    """Ask a running server to reload its config file (like SIGHUP, over its API: the admin's)."""
    from voiceserver.api.token import TokenFileError
    from voiceserver.cli.apiclient import StatusUnreachable, add_api_options, api_from_args
    ap = argparse.ArgumentParser(prog="voiceboard reload", description=reload_main.__doc__)
    add_api_options(ap)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    try:
        client = api_from_args(args)
        status, body = client.reload()
    except (StatusUnreachable, ValueError, TokenFileError) as exc:
        print(f"voiceboard reload: {exc}", file=sys.stderr)
        return 1
    if status != 200:
        print(f"voiceboard reload: {client.base_url}: HTTP {status} {body.get('error', '')}",
              file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(body))
    elif body.get("reloaded"):
        print(f"reloaded {body['file']}")
    else:
        print(f"voiceboard reload: rejected, the running config stays:\n{body.get('error')}", file=sys.stderr)
    return 0 if body.get("reloaded") else 1


# ------------------------------------------------------------------ demo
# What the demo's simulated callers do, in turn (the demo IVR is
# voiceserver/configs/demo.toml: 1 Chinese / 2 English, then the main menu).
DEMO_CALLERS: list[dict[str, Any]] = [
    {"number": "13800000001", "script": [
        {"after_silence": 0.6, "digits": "1"}, {"after_silence": 0.6, "digits": "1"},
        {"after_silence": 0.6, "digits": "12345678"}, {"after_silence": 0.8, "hangup": True}]},
    {"number": "13800000002", "script": [
        {"after_silence": 0.6, "digits": "2"}, {"after_silence": 0.6, "digits": "2"},
        {"after_silence": 0.8, "hangup": True}]},
    {"number": "13800000003", "script": [
        {"after_silence": 0.6, "digits": "1"}, {"after_silence": 0.6, "digits": "0"},
        {"after": 12.0, "hangup": True}]},
    {"number": "13800000004", "script": [
        {"after_silence": 0.6, "digits": "2"}, {"after_silence": 0.6, "digits": "9"},
        {"after_silence": 0.6, "digits": "2"}, {"after_silence": 0.8, "hangup": True}]},
    {"number": "13800000005", "script": [{"after": 90.0, "hangup": True}]},   # says nothing
    {"number": "01065123456", "script": [], "give_up": 12.0},                 # blacklisted
]


def demo_board(pid: int) -> str:
    """The demo's own board name: a run never meets a hotline someone else serves."""
    return f"hotline-demo-{pid}"


def demo_hwsim_config(board: str) -> str:
    """hwsim's hotline config with the board named `board`."""
    text = HOTLINE.read_text()
    renamed = text.replace('name = "hotline"', f'name = "{board}"', 1)
    if renamed == text:
        raise RuntimeError(f'{HOTLINE}: no `name = "hotline"` to rename for the demo')
    return renamed


def demo_scenario(calls: int, minutes: float | None, seed: int, board: str = "hotline") -> str:
    """TOML for hwsim: `calls` callers on the 4 lines of `board`, a few seconds apart."""
    start = "2026-11-23T10:00:00+08:00"  # a Monday in business hours
    spacing = 15.0  # 4 lines, calls of 30-50 s: few callers find every line busy
    duration = (minutes * 60.0) if minutes else spacing * calls + 300.0  # the demo stops when every call ended
    out = ["[scenario]", f"start = {start}", f"duration = {duration:.1f}", f"seed = {seed}", "",
           "[[agent]]", f'phones = "{board}:4-7"', "answer_after = 2.0",
           'script = [{ after = 6.0, hangup = true }]', ""]
    for i in range(calls):
        c = DEMO_CALLERS[i % len(DEMO_CALLERS)]
        out += ["[[caller]]", f"at = {1.0 + i * spacing:.1f}", f'line = "{board}"',
                f'number = "{c["number"]}"']
        if "give_up" in c:
            out.append(f"give_up = {c['give_up']}")
        script = ", ".join("{ " + ", ".join(
            f"{k} = {json.dumps(v) if not isinstance(v, bool) else str(v).lower()}"
            for k, v in step.items()) + " }" for step in c["script"])
        out += [f"script = [{script}]", ""]
    return "\n".join(out)


def demo_main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="voiceboard demo",
                                 description="hwsim hotline + voice server + simulated callers")
    ap.add_argument("--calls", type=int, default=12, help="simulated callers (default 12)")
    ap.add_argument("--minutes", type=float, default=None, help="simulated minutes to run")
    ap.add_argument("--real-time", action="store_true", help="real-time clock instead of lockstep")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-live", action="store_true", help="no live table, summary only")
    ap.add_argument("--json", action="store_true", help="print the summary as JSON")
    ap.add_argument("--keep", metavar="DIR", help="keep hwsim's reports (what each caller heard) in DIR")
    args = ap.parse_args(argv)
    if args.calls < 1:
        print("voiceboard demo: --calls must be at least 1", file=sys.stderr)
        return 2
    workdir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="voiceboard-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    board = demo_board(os.getpid())
    hw_config = workdir / "hwsim-hotline.toml"
    hw_config.write_text(demo_hwsim_config(board))
    scen = workdir / "callers.toml"
    scen.write_text(demo_scenario(args.calls, args.minutes, args.seed, board))
    from hwsim.spawn import HwsimProcess  # only the demo runs hwsim (as a process)
    hw = HwsimProcess(hw_config, scenario=scen, clock="realtime" if args.real_time else "lockstep",
                      ready=workdir / "ready.json", report=workdir / "report",
                      log=workdir / "hwsim.log").start()
    proc = hw.popen
    assert proc is not None
    try:
        hw.wait_ready(timeout=30.0)
        cfg, library, VoiceServer = _build(str(DEMO_CONFIG))
        from dataclasses import replace
        cfg = replace(cfg, boards=[replace(cfg.boards[0], uri=f"sim://{board}")])
        if cfg.storage is not None:      # recordings and call rows go with this run's files
            cfg = replace(cfg, storage=replace(
                cfg.storage, recordings=str(workdir / "recordings"),
                database=str(workdir / "calls.db"), voicemail=str(workdir / "voicemail"),
                rules_audit=str(workdir / "rules-audit.jsonl"), events=str(workdir / "events.db")))
        # the server's clock is the board's: hwsim's simulated day (Board.clock_start)
        server = VoiceServer(cfg, library, sync=not args.real_time)
        t0 = time.monotonic()
        asyncio.run(_demo_run(server, proc, args))
        wall = time.monotonic() - t0
        # hwsim ending on its own (its scenario is over) is the normal end of
        # a run, not a lost board.
        scenario_over = proc.poll() == 0
    except (ConfigError, RuntimeError) as exc:
        print(f"voiceboard demo: {exc}", file=sys.stderr)
        print(f"  (hwsim log: {workdir / 'hwsim.log'})", file=sys.stderr)
        return 1
    finally:
        hw.stop(timeout=10.0)
    summary = demo_summary(server, wall)
    if scenario_over and server.error and "lost" in server.error:
        summary["error"] = None
    summary["blocked_at_exchange"] = _blocked_calls(workdir / "report" / "report.json")
    summary["recordings"] = _recordings(cfg.storage)
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        print_summary(summary)
        rec = summary["recordings"]
        if rec is not None:
            kept = rec["recordings"].get("kept", 0)
            others = ", ".join(f"{n} {k}" for k, n in sorted(rec["recordings"].items()) if k != "kept")
            print(f"\nrecordings: {kept} kept ({rec['seconds']} s of audio)"
                  f"{'; ' + others if others else ''}: {rec['directory']}")
            print(f"call records ({rec['calls']} calls): voiceboard calls --db {rec['database']}")
        print(f"\nhwsim reports (what each caller heard): {workdir / 'report'}")
    accounted = summary["calls"] + summary["blocked_at_exchange"]
    return 0 if accounted >= args.calls and summary["error"] is None else 1


def _recordings(storage: Any) -> dict[str, Any] | None:
    """What the run recorded, from its call database (None: the config records nothing)."""
    if storage is None or not Path(storage.database).exists():
        return None
    from voiceserver.recording.calldb import CallDb
    with CallDb(storage.database) as db:
        rows = db.recordings()
        calls = db.query("SELECT COUNT(*) AS n FROM calls")[0]["n"]
    by_status: dict[str, int] = {}
    for r in rows:
        by_status[r.status] = by_status.get(r.status, 0) + 1
    return {"calls": calls, "recordings": by_status, "directory": storage.recordings,
            "database": storage.database,
            "seconds": round(sum(r.duration for r in rows if r.status == "kept"), 1)}


def _blocked_calls(report: Path) -> int:
    """Callers the simulated exchange turned away (every line busy): hwsim knows, not the server."""
    try:
        calls = json.loads(report.read_text()).get("calls", [])
    except (OSError, json.JSONDecodeError):
        return 0
    return sum(1 for c in calls if c.get("kind") == "fxo" and c.get("who_hung_up") == "blocked")


async def _demo_run(server, proc: subprocess.Popen, args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(server.run(stop))

    def finished() -> bool:
        return server.totals.calls >= args.calls or proc.poll() is not None or task.done()

    if args.no_live or not sys.stdout.isatty():
        while not finished():
            await asyncio.sleep(0.1)
    else:
        from rich.live import Live
        with Live(_table(server), refresh_per_second=8, transient=False) as live:
            while not finished():
                await asyncio.sleep(0.125)
                live.update(_table(server))
    stop.set()
    await task


def _table(server):
    from rich.table import Table
    t = Table(title=f"voiceboard demo — calls ended: {server.totals.calls}", expand=False)
    for col in ("board", "chan", "kind", "state", "call", "caller", "IVR step", "digits"):
        t.add_column(col)
    for r in server.channel_rows():
        t.add_row(r["board"], str(r["chan"]), r["kind"], r["state"], r["call_id"] or "",
                  r["caller"] or "", r["menu"], r["digits"])
    return t


def demo_summary(server, wall: float) -> dict[str, Any]:
    """Totals over every call (server.totals); "records": the most recent ones the server keeps."""
    t = server.totals
    stats = [rt.engine.stats.as_dict() for rt in server.boards]
    return {
        "calls": t.calls,
        "answered": t.answered,
        "rejected": t.rejected,
        "to_agent": t.to_agent,
        "digits": t.digits,
        "prompts_played": t.prompts_played,
        "talk_seconds_avg": round(t.talk_seconds_avg, 1),
        "talk_seconds_max": round(t.talk_seconds_max, 1),
        "end_reasons": dict(t.end_reasons),
        "wall_seconds": round(wall, 2),
        "engine": stats,
        "error": server.error,
        "records": [r.__dict__ for r in server.records],
    }


def _outcome(path: list[str]) -> str:
    """The IVR steps a person cares about: menus chosen, inputs, where the call went."""
    keep = ("lang:", "input:", "lookup:", "invalid", "timeout", "queue:", "transfer:", "voicemail",
            "rejected", "hangup")
    steps = [p.split(":", 1)[0] if p.startswith(("invalid", "timeout")) else p
             for p in path if p.startswith(keep)]
    return " > ".join(steps) or "-"


def print_summary(s: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table
    # Piped output (make demo | tee, CI logs) would otherwise wrap at 80 columns.
    con = Console(width=None if sys.stdout.isatty() else 160)
    t = Table(title="calls")
    for col in ("call", "chan", "caller", "answered", "keys", "IVR outcome", "prompts", "agent", "ended by"):
        t.add_column(col)
    for r in s["records"]:
        t.add_row(r["call_id"], str(r["chan"]), r["caller"] or "",
                  r["answer"].strftime("%H:%M:%S") if r["answer"] else "no",
                  r["digits"], _outcome(r["ivr_path"]), str(r["prompts_played"]),
                  r["agent"] or "", r["reason"])
    con.print(t)
    sim = sum(e["ticks"] for e in s["engine"]) * 0.02
    con.print(f"calls {s['calls']}  answered {s['answered']}  rejected {s['rejected']}  "
              f"blocked at the exchange {s.get('blocked_at_exchange', 0)}  "
              f"to an agent {s['to_agent']}  digits {s['digits']}  prompts {s['prompts_played']}")
    con.print(f"talk time avg {s['talk_seconds_avg']} s, max {s['talk_seconds_max']} s; "
              f"{sim:.0f} s simulated in {s['wall_seconds']} s wall")
    if s["error"]:
        con.print(f"[red]error: {s['error']}[/red]")
