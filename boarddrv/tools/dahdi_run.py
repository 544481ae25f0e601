"""`voiceboard dahdi-run sim://NAME [...] -- PROGRAM ARGS`: run a DAHDI program on simulated boards.

The program (dahdi_scan, dahdi_cfg, dahdi_test, r2test, or anything that
opens /dev/dahdi/*) runs unmodified with the DAHDI device emulator
(boarddrv/libvbdahdi.so, built by `make build`) preloaded: the boards'
spans appear as DAHDI spans 1, 2, ... in the order given.  What dahdi_cfg
configures is kept in a state file shared by later programs (default
/dev/shm/voiceboard-dahdi.FIRSTBOARD), the way the kernel keeps it.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from ._output import fail

PROG = "voiceboard dahdi-run"
EMULATOR = Path(__file__).resolve().parent.parent / "libvbdahdi.so"


def emulator_path() -> Path:
    """The emulator library; a clear error when it was not built."""
    if not EMULATOR.is_file():
        raise FileNotFoundError(f"DAHDI emulator not built ({EMULATOR} is missing): run `make build`")
    return EMULATOR


def board_names(uris: list[str]) -> list[str]:
    """sim://NAME -> NAME; only simulated boards can be served as DAHDI spans."""
    names = []
    for uri in uris:
        if not uri.startswith("sim://") or not uri[len("sim://"):]:
            raise ValueError(f"{uri!r}: dahdi-run serves simulated boards only (sim://NAME)")
        names.append(uri[len("sim://"):])
    return names


def emulator_env(uris: list[str], state: str | None = None, pace: str = "card",
                 base: dict[str, str] | None = None, block: int = 80) -> dict[str, str]:
    """Environment that makes a program see these boards as /dev/dahdi."""
    names = board_names(uris)
    env = dict(os.environ if base is None else base)
    pre = env.get("LD_PRELOAD", "")
    env["LD_PRELOAD"] = f"{emulator_path()}{' ' + pre if pre else ''}"
    env["VB_DAHDI_BOARDS"] = ",".join(names)
    env["VB_DAHDI_STATE"] = state or f"/dev/shm/voiceboard-dahdi.{names[0]}"
    env["VB_DAHDI_PACE"] = pace
    env["VB_DAHDI_BLOCK"] = str(block)
    return env


def _check_boards(uris: list[str]) -> str:
    """Fail early, naming the board, when one is not being served; their system.conf."""
    from boarddrv.board import open_board
    from boarddrv.dahdiconf import system_conf
    boards = [open_board(uri) for uri in uris]
    try:
        return system_conf(boards)
    finally:
        for b in boards:
            b.close()


def configure(conf: str, env: dict[str, str], path: str) -> subprocess.CompletedProcess[str]:
    """dahdi_cfg with this system.conf, under the emulator (as at a card's bring-up)."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(conf)
    cfg = shutil.which("dahdi_cfg", path="/usr/sbin:/sbin:" + os.environ.get("PATH", "")) or "dahdi_cfg"
    return subprocess.run([cfg, "-c", path], env=env, capture_output=True, text=True, timeout=120)


def main(argv: list[str]) -> int:
    if "--" not in argv:
        return fail(PROG, "usage: voiceboard dahdi-run [--state FILE] [--configure] [--pace card|free|lockstep] "
                          "sim://NAME [sim://NAME ...] -- PROGRAM [ARGS...]", 2)
    cut = argv.index("--")
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    ap.add_argument("uris", nargs="+", metavar="sim://NAME", help="boards, in DAHDI span order")
    ap.add_argument("--state", help="DAHDI configuration state file (default /dev/shm/voiceboard-dahdi.FIRST)")
    ap.add_argument("--configure", action="store_true",
                    help="first run dahdi_cfg with a system.conf made from the boards (like dahdi_genconf)")
    ap.add_argument("--pace", default="card",
                    choices=("card", "free", "lockstep"),
                    help="card: lockstep boards tick at real time like a card (default); free: as fast as "
                         "hwsim; lockstep: as fast as the program reads and writes")
    ap.add_argument("--block", type=int, choices=(80, 160, 320), default=80,
                    help="the simulated board's block in samples (default 80: 10 ms)")
    args = ap.parse_args(argv[:cut])
    cmd = argv[cut + 1:]
    if not cmd:
        return fail(PROG, "no program after --", 2)
    if not shutil.which(cmd[0]):
        return fail(PROG, f"program {cmd[0]!r} not found (dahdi_scan/dahdi_cfg/dahdi_test: "
                          "apt-get install dahdi; r2test: apt-get install libopenr2-bin)", 2)
    try:
        env = emulator_env(args.uris, args.state, args.pace, block=args.block)
        conf = _check_boards(args.uris)
    except (ValueError, FileNotFoundError) as exc:
        return fail(PROG, str(exc), 2)
    except Exception as exc:  # BoardError: no such board, bad shared memory
        return fail(PROG, str(exc), 1)
    if args.configure:
        r = configure(conf, env, env["VB_DAHDI_STATE"] + ".system.conf")
        if r.returncode != 0:
            return fail(PROG, f"dahdi_cfg failed (exit {r.returncode}): {r.stderr.strip() or r.stdout.strip()}", 1)
    sys.stdout.flush()
    os.execvpe(cmd[0], cmd, env)
    return 127  # not reached
