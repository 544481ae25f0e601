"""The `voiceboard` command: a table of subcommands, each imported only when run.

The table names modules by string so that `voiceboard scan` does not import
the voice server and `voiceboard serve` does not import hwsim: the layers
stay as DESIGN.md draws them even though one console script fronts them all.
Each target is `main(argv: list[str]) -> int`.
"""
from __future__ import annotations

import importlib
import sys

# name -> (module:function, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "scan": ("boarddrv.tools.scan:main", "list boards, spans, channels, states, alarms, counters"),
    "test": ("boarddrv.tools.timing:main", "timing test of a board's tick clock (like dahdi_test)"),
    "loopback": ("boarddrv.tools.loopback:main", "send a tone through a channel loopback and measure it"),
    "config": ("boarddrv.tools.config_import:main",
               "config import: DAHDI system.conf [chan_dahdi.conf] as the channel TOML"),
    "dahdi-run": ("boarddrv.tools.dahdi_run:main",
                  "run a DAHDI program (dahdi_scan, dahdi_cfg, r2test...) on simulated boards"),
    "hwsim": ("hwsim.__main__:main", "run the hardware simulator (simulated boards and the world behind them)"),
    "dtmf": ("dsp.dtmf_cli:main", "list DTMF digits in a recording"),
    "cid": ("dsp.callerid_cli:main", "decode caller ID (FSK or DTMF) in a recording"),
    "tones": ("dsp.tones_cli:main", "name the call-progress tones in a recording"),
    "r2mf": ("dsp.r2mf_cli:main", "list MF R2 register signals (forward and backward) in a recording"),
    "audit": ("dsp.audit_cli:main", "audit recordings: --pci finds card numbers keyed as DTMF"),
    "serve": ("voiceserver.cli.serve:serve_main", "run the voice server"),
    "queues": ("voiceserver.cli.queues:main", "live table of queues and agents from a running server's status API"),
    "agent": ("voiceserver.cli.agent:main", "log an agent in/out or set it ready/not ready on a running server"),
    "reload": ("voiceserver.cli.serve:reload_main", "ask a running server to reload its config"),
    "rules": ("voiceserver.cli.rules:main",
              "check recording rules; explain whether a call is recorded and kept, and why"),
    "calls": ("voiceserver.cli.calls:main", "query call records and recordings; export CSV or XLSX"),
    "events": ("voiceserver.cli.events:main", "a server's events from its journal: since a seq, filtered, --follow"),
    "r2trace": ("voiceserver.cli.r2trace:main", "an E1 R2 call's line and register signals as a timeline"),
    "demo": ("voiceserver.cli.serve:demo_main", "hwsim + voice server + simulated callers, with a live table"),
}


def usage() -> str:
    width = max(len(n) for n in COMMANDS)
    lines = ["usage: voiceboard COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {n:<{width}}  {h}" for n, (_, h) in COMMANDS.items()]
    lines += ["", "`voiceboard COMMAND --help` for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"voiceboard: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    target, _ = COMMANDS[name]
    modname, funcname = target.split(":")
    try:
        module = importlib.import_module(modname)
    except ImportError as exc:  # a layer not built or not installed
        print(f"voiceboard {name}: cannot load {modname}: {exc}", file=sys.stderr)
        return 2
    func = getattr(module, funcname)
    try:
        return int(func(rest) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
