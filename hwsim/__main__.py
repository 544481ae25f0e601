"""`voiceboard hwsim`: serve simulated boards from a config, optionally with a scenario.

Writes --ready-file (JSON: boards and URIs, clock, simulated start) once
every board exists, so a test or `voiceboard demo` can wait for it; removes
it on exit. SIGTERM/SIGINT: clean shutdown (calls closed, shared memory
unlinked, report written). Exits when the scenario's duration has passed.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="voiceboard hwsim", description=__doc__.split("\n")[0])
    p.add_argument("--config", required=True, help="boards TOML (see hwsim/configs/)")
    p.add_argument("--scenario", help="scenario TOML: callers, agents, faults (see hwsim/scenarios/)")
    p.add_argument("--clock", choices=("lockstep", "realtime"), default="lockstep",
                   help="lockstep: advance only when the host committed (default); realtime: every block period")
    p.add_argument("--ready-file", help="write this JSON file when every board exists")
    p.add_argument("--report", metavar="DIR", help="write per-call JSON + WAV and report.json here")
    p.add_argument("--seed", type=int, help="override the scenario's seed")
    return p


def _write_ready(path: str, info: dict) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(info, f, indent=1)
    os.replace(tmp, path)       # readers never see a half-written file


def _say_waiting(sim, scenario: bool) -> None:
    """hwsim does nothing until a host starts each board: say so, and how to get one."""
    uris = ", ".join(sim.uris.values())
    first = next(iter(sim.uris.values()))
    print(f"voiceboard hwsim: waiting for a host to start {uris}"
          + (": the scenario's time starts at the host's first tick" if scenario else "")
          + f".\n  Run the voice server on it: `voiceboard serve --config SERVER.toml` whose [[boards]]"
          f" has uri = \"{first}\" (voiceserver/configs/demo.toml serves hwsim/configs/hotline.toml),"
          "\n  or `voiceboard demo`, which runs hwsim, the server and simulated callers together.",
          file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from boarddrv import BoardError
    from boarddrv.tomlconfig import ConfigError
    from hwsim.simulator import Simulator
    try:
        sim = Simulator(args.config, args.scenario, clock=args.clock, report_dir=args.report,
                        seed=args.seed)
    except (ConfigError, ValueError, OSError) as exc:
        print(f"voiceboard hwsim: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()
    old = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        try:
            sim.start()
        except BoardError as exc:
            print(f"voiceboard hwsim: {exc}", file=sys.stderr)
            return 1
        if args.ready_file:
            _write_ready(args.ready_file, sim.ready_info())
        print(f"voiceboard hwsim: serving {', '.join(sim.uris.values())} ({args.clock})", file=sys.stderr)
        _say_waiting(sim, args.scenario is not None)
        hosted: set[str] = set()
        while not stop.is_set() and not sim.ended and not sim.errors:
            stop.wait(0.1)
            for name in sorted(set(sim.worlds) - hosted):   # a board's first host arrived
                hosted.add(name)
                print(f"voiceboard hwsim: sim://{name}: a host started the board"
                      + ("; the scenario runs" if args.scenario else ""), file=sys.stderr, flush=True)
    finally:
        report = sim.stop()
        for s, h in old.items():
            signal.signal(s, h)
        if args.ready_file and os.path.exists(args.ready_file):
            os.unlink(args.ready_file)
    for err in sim.errors:
        print(f"voiceboard hwsim: {err}", file=sys.stderr)
    print(f"voiceboard hwsim: {len(sim.calls)} calls; ticks {sim.ticks}"
          + (f"; report {report}" if report else ""), file=sys.stderr)
    return 1 if sim.errors else 0


if __name__ == "__main__":
    sys.exit(main())
