"""The E1 busy hour: hwsim's China No.1 exchange calling `voiceboard serve` over E1 R2 spans.

    .venv/bin/python bench/r2_load.py                                  # 16 spans, 30 calls/s, 10 minutes
    .venv/bin/python bench/r2_load.py --spans 2 --rate 2 --minutes 1   # a small one
    .venv/bin/python bench/r2_load.py --json out.json --keep out/r2    # JSON to a file as well, files kept

Real processes: `python -m hwsim --clock lockstep` with one board of `--spans`
E1 CAS spans (China No.1 exchange behind every channel, the default
`signalling = "r2"`), and `voiceboard serve --lockstep-sync` with an
`[r2.groups]` trunk group over all the spans' channels. The exchange's
callers are Poisson arrivals at `--rate` calls/s for `--minutes` simulated
minutes (seeded, handed to hwsim as explicit [[caller]] lists), each with a
unique ANI, a DNIS from NUMBERS (one-stage dialling: the DNIS chooses the
IVR flow) and a calling-party category from CATEGORIES. The IVR plays its
greeting and hangs up (clear-back; the exchange clears forward). After the
last arrival the run goes on TAIL simulated seconds, then both stop.

Checks (exit status 1 if one fails): every call the exchange offered is in
the server's call database exactly once (joined on the ANI), with the DNIS,
ANI and category the exchange sent, and ended; no row without its caller.
Figures: offered, rows, outcomes (the exchange's `result`, the server's
`reason`), the register-signalling time (the exchange's seizure to the B
signal, from its call records), server CPU per call, wall time.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from hwsim.spawn import spawn_hwsim, stop_process  # noqa: E402
from voiceserver.core.e1 import REGISTER_GIVE_UP as GAVE_UP  # noqa: E402  (the reason of a register give-up)

CHANNELS_PER_SPAN = 30
NUMBERS = {"95588": "greet", "95599": "hours"}      # DNIS -> IVR flow
CATEGORIES = ["national_subscriber", "national_priority_subscriber", "test_equipment"]
UNALLOCATED = "99999"  # not a number of the trunk group: refused (B-5)
MIX = {3: "unallocated", 7: "gives-up", 5: "clears-forward"}    # --mix: caller k's kind by k % 10
TAIL = 40.0            # simulated s after the last arrival: every call ends within it
GIVE_UP = 20.0         # s a caller waits for the answer


def scenario(board: str, spans: int, rate: float, seconds: float, seed: int,
             simultaneous: int = 0, mix: bool = False) -> tuple[str, list[dict]]:
    """The scenario TOML and the callers (at, ani, dnis, category, kind), Poisson at `rate`/s;
    or `simultaneous` callers all at 1.0 s. `mix`: of every 10 callers one dials an unallocated
    number, one gives up during the register phase, one clears forward while the IVR speaks."""
    rng = random.Random(seed)
    out = ["[scenario]", f"duration = {seconds + TAIL + 5.0:.1f}", f"seed = {seed}", ""]
    callers = []
    dnis_list = list(NUMBERS)
    t, k = 0.5, 0
    while True:
        t = 1.0 if simultaneous else t + rng.expovariate(rate)
        if t >= seconds or (simultaneous and k >= simultaneous):
            break
        k += 1
        kind = MIX.get(k % 10, "ivr") if mix else "ivr"
        c = {"at": round(t, 3), "ani": f"139{k:08d}",
             "dnis": UNALLOCATED if kind == "unallocated" else dnis_list[k % len(dnis_list)],
             "category": CATEGORIES[k % len(CATEGORIES)], "kind": kind}
        callers.append(c)
        give_up = 2.5 if kind == "gives-up" else GIVE_UP
        hangup_after = 1.0 if kind == "clears-forward" else 60.0
        out += ["[[caller]]", f"at = {c['at']:.3f}", f'line = "{board}:0-{spans * CHANNELS_PER_SPAN - 1}"',
                f'number = "{c["ani"]}"', f'called = "{c["dnis"]}"', f'category = "{c["category"]}"',
                f"give_up = {give_up}", f"hangup_after = {hangup_after}", ""]
    return "\n".join(out), callers


def hwsim_config(board: str, spans: int) -> str:
    return "\n".join(["[clock]", "start = 2026-11-23T10:00:00+08:00", "",
                      "[[board]]", f'name = "{board}"', 'law = "alaw"', "",
                      "[[board.span]]", 'kind = "e1"', f"count = {spans}", 'framing = "cas"',
                      'coding = "hdb3"', "crc4 = true", ""])


def server_config(board: str, spans: int, store: Path, api_port: int | None = None) -> str:
    chans = spans * CHANNELS_PER_SPAN
    trace = api_port is not None            # the signal trace (call.signal events) for r2trace
    out = [] if api_port is None else ["[api]", f'bind = "127.0.0.1:{api_port}"', ""]
    out += ["[[boards]]", f'uri = "sim://{board}"', 'name = "e1"', "",
           "[storage]", f'database = "{store / "calls.db"}"', f'recordings = "{store / "rec"}"',
           f'voicemail = "{store / "vm"}"', f'rules_audit = "{store / "rules-audit.jsonl"}"', "",
           "[r2.groups.ct]", f'channels = "e1:0-{chans - 1}"', 'variant = "cn"',
           'release_control = "mutual"', 'direction = "in"', f"trace = {str(trace).lower()}", ""]
    for number, flow in NUMBERS.items():
        out += [f'[r2.groups.ct.numbers."{number}"]', f'flow = "{flow}"', ""]
    out += ["[prompts]", 'default_lang = "zh"', 'languages = ["zh"]', "",
            "[ivr]", 'default_flow = "greet"', "",
            "[ivr.flows.greet]", 'start = "greet"', 'lang = "zh"', "",
            "[ivr.flows.hours]", 'start = "hours"', 'lang = "zh"', "",
            "[ivr.actions.greet]", 'action = "play"', 'prompts = ["welcome"]',
            'then = { action = "hangup" }', "",
            "[ivr.actions.hours]", 'action = "play"', 'prompts = ["business_hours"]',
            'then = { action = "hangup" }', ""]
    return "\n".join(out)


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a live process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentiles(xs: list[float]) -> dict[str, float | None]:
    if not xs:
        return {"p50": None, "p95": None, "p99": None, "max": None}
    s = sorted(xs)

    def at(q: float) -> float:
        return round(s[min(len(s) - 1, int(q * len(s)))], 3)
    return {"p50": at(0.50), "p95": at(0.95), "p99": at(0.99), "max": round(s[-1], 3)}


def register_phase(record: dict) -> tuple[float, float] | None:
    """(the exchange's seizure to the B signal it received, the longest wait between two signals
    meanwhile) of one call: its register phase; None if it had none."""
    seize = b = last = None
    gap = 0.0
    for s in record.get("r2") or []:
        sig = s.get("signal", "")
        if seize is None:
            if s.get("dir") == "tx" and "0011" in sig:
                seize = last = s["at"]
            continue
        gap, last = max(gap, s["at"] - last), s["at"]
        if s.get("dir") == "rx" and sig.startswith("MF B-"):
            b = s["at"]
            break
    return None if seize is None or b is None else (round(b - seize, 3), round(gap, 3))


def peak_busy(records: list[dict]) -> int:
    """The most channels the exchange's calls held at once (seizure to release)."""
    edges = sorted([(r["offered"], 1) for r in records]
                   + [(r.get("released") or r.get("hangup") or r["offered"], -1) for r in records])
    busy = peak = 0
    for _, step in edges:
        busy += step
        peak = max(peak, busy)
    return peak


def read_report(report: Path) -> list[dict]:
    """hwsim's call records (report.json's calls)."""
    return json.loads((report / "report.json").read_text()).get("calls", [])


def account(callers: list[dict], records: list[dict], db: Path) -> dict[str, Any]:
    """Every offered caller against the call database's rows: exactly once, with its DNIS, ANI and
    category. A caller who gave up before the register offered the call has a row with what it had
    sent so far (GAVE_UP: partial DNIS and ANI, the category if it came): it is found by its channel
    and seizure time instead, and what the row has must be the start of what the caller sent."""
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    rows = [dict(r) for r in con.execute('SELECT call_id, channel, start, ani, dnis, category, disposition, "end" '
                                         'FROM calls')]
    con.close()
    numbered = [r for r in rows if r["ani"] and r["disposition"] != GAVE_UP]
    by_ani = Counter(r["ani"] for r in numbered)
    row_of = {r["ani"]: r for r in numbered}
    seized = {(r["number"]): (r["channel"], dt.datetime.fromisoformat(r["wallclock"])) for r in records}
    unnumbered = [r for r in rows if not r["ani"] or r["disposition"] == GAVE_UP]
    early: list[str] = []                        # callers who gave up in the register phase, their row found
    partial_wrong: list[str] = []                # ... whose row has digits or a category they did not send
    for c in callers:
        if by_ani[c["ani"]] or c["ani"] not in seized:
            continue
        chan, at = seized[c["ani"]]
        match = [r for r in unnumbered if r["channel"] == chan and r["start"]
                 and abs((dt.datetime.fromisoformat(r["start"]) - at).total_seconds()) < 0.1]
        if len(match) == 1:
            r = match[0]
            unnumbered.remove(r)
            early.append(c["ani"])
            if r["disposition"] == GAVE_UP and not (c["dnis"].startswith(r["dnis"] or "")
                                                    and c["ani"].startswith(r["ani"] or "")
                                                    and r["category"] in (None, c["category"])):
                partial_wrong.append(c["ani"])
    missing = [c["ani"] for c in callers if by_ani[c["ani"]] == 0 and c["ani"] not in early]
    doubled = [c["ani"] for c in callers if by_ani[c["ani"]] > 1]
    offered = {c["ani"] for c in callers}
    orphans = [r["call_id"] for r in numbered if r["ani"] not in offered]
    orphans += [r["call_id"] for r in unnumbered]
    wrong = [c["ani"] for c in callers if by_ani[c["ani"]] == 1 and (
        row_of[c["ani"]]["dnis"] != c["dnis"] or row_of[c["ani"]]["category"] != c["category"])]
    wrong += partial_wrong
    open_rows = [r["call_id"] for r in rows if not r["end"]]
    gave_up_rows = [r for r in rows if r["disposition"] == GAVE_UP]
    return {"rows": len(rows), "missing": missing, "doubled": doubled, "orphans": orphans,
            "wrong_dnis_or_category": wrong, "not_ended": open_rows, "gave_up_in_register": len(early),
            "gave_up_with_digits": sum(1 for r in gave_up_rows if r["dnis"] or r["ani"]),
            "reasons": dict(Counter((r["disposition"] or "").split(":")[0] for r in rows).most_common())}


def run(spans: int, rate: float, minutes: float, seed: int, work: Path, *, simultaneous: int = 0, mix: bool = False,
        api_port: int | None = None, while_up: Callable[[Path], None] | None = None) -> dict[str, Any]:
    """One run; `simultaneous`: that many callers at once instead of Poisson ones; `api_port`: the
    server's network API there (and the signal trace on); `while_up(work)`: called once hwsim has
    ended, while the server still runs."""
    board = f"r2load{os.getpid()}"
    seconds = minutes * 60.0
    store = work / "store"
    store.mkdir(parents=True, exist_ok=True)
    text, callers = scenario(board, spans, rate, seconds, seed, simultaneous, mix)
    (work / "scenario.toml").write_text(text)
    (work / "hwsim.toml").write_text(hwsim_config(board, spans))
    (work / "server.toml").write_text(server_config(board, spans, store, api_port))
    report = work / "report"
    wall0 = time.monotonic()
    hw = spawn_hwsim(work / "hwsim.toml", scenario=work / "scenario.toml", clock="lockstep",
                     ready=work / "ready.json", log=work / "hwsim.log", stdout_to_log=True, timeout=60.0,
                     report=report)
    log = open(work / "serve.log", "w")
    server = subprocess.Popen([sys.executable, "-m", "boarddrv.cli", "serve", "--config", str(work / "server.toml"),
                               "--lockstep-sync", "--status-port", "-1", "--log-level", "warning"],
                              stdout=subprocess.DEVNULL, stderr=log, cwd=REPO)
    server_cpu = 0.0
    try:
        # the scenario's duration ends hwsim; the server waits for its board's ticks
        limit = time.monotonic() + max(600.0, (seconds + TAIL) * 20)
        while hw.poll() is None:
            if server.poll() is not None:
                raise RuntimeError(f"voiceboard serve exited ({server.returncode}); see {work / 'serve.log'}")
            if time.monotonic() > limit:
                raise RuntimeError("the run did not finish in time")
            try:
                server_cpu = proc_cpu(server.pid)
            except OSError:
                pass
            time.sleep(0.5)
        if while_up is not None:
            while_up(work)
    finally:
        try:
            server_cpu = max(server_cpu, proc_cpu(server.pid))
        except OSError:
            pass
        stop_process(server, timeout=60.0)
        hw.stop(timeout=60.0)
        log.close()
    wall = time.monotonic() - wall0
    records = read_report(report)
    acc = account(callers, records, store / "calls.db")
    phases = [x for x in (register_phase(r) for r in records) if x is not None]
    offered = len(callers)
    calls = sum(1 for r in records if r.get("called"))
    return {
        "spans": spans, "channels": spans * CHANNELS_PER_SPAN, "rate": rate, "minutes": minutes, "seed": seed,
        "offered": offered, "exchange_calls": calls, **acc,
        "accounted": offered - len(acc["missing"]) - len(acc["doubled"]) - len(acc["wrong_dnis_or_category"]),
        "mix": mix,
        "exchange_results": dict(Counter(r.get("result") or "?" for r in records).most_common()),
        "register_seconds": percentiles([t for t, _ in phases]),
        "register_calls": len(phases),
        "peak_busy_channels": peak_busy(records),
        "register_longest_wait_seconds": max((g for _, g in phases), default=None),
        "server_cpu_seconds": round(server_cpu, 2),
        "server_ms_per_call": round(server_cpu / max(1, acc["rows"]) * 1e3, 2),
        "wall_seconds": round(wall, 1), "x_realtime": round((seconds + TAIL) / wall, 2),
    }


def ok(r: dict[str, Any]) -> bool:
    return (r["accounted"] == r["offered"] and not r["orphans"] and not r["not_ended"]
            and r["rows"] == r["offered"])


def print_table(r: dict[str, Any]) -> None:
    short = lambda xs: f"{len(xs)}" + (f" (e.g. {', '.join(map(str, xs[:5]))})" if xs else "")  # noqa: E731
    print(f"E1 busy hour on lockstep hwsim: {r['spans']} spans ({r['channels']} channels), China No.1 "
          f"exchange calling at {r['rate']:g}/s for {r['minutes']:g} simulated min, voiceboard serve")
    print(f"  offered           {r['offered']}")
    print(f"  call rows         {r['rows']} ({r['accounted']} callers accounted for exactly once with "
          f"their DNIS, ANI and category)")
    print(f"  missing           {short(r['missing'])}")
    print(f"  doubled           {short(r['doubled'])}")
    print(f"  wrong DNIS/cat.   {short(r['wrong_dnis_or_category'])}")
    print(f"  rows not ended    {short(r['not_ended'])}")
    print(f"  rows w/o caller   {short(r['orphans'])}")
    if r["mix"]:
        print(f"  gave up early     {r['gave_up_in_register']} (before the register offered the call: "
              f"a row with the digits sent so far, {r['gave_up_with_digits']} with some; found by channel "
              "and seizure time)")
    print(f"  exchange results  {r['exchange_results']}")
    print(f"  busy channels     {r['peak_busy_channels']} at the peak")
    print(f"  server reasons    {r['reasons']}")
    reg = r["register_seconds"]
    print(f"  register (s)      p50 {reg['p50']}  p95 {reg['p95']}  p99 {reg['p99']}  max {reg['max']}"
          f"  (seizure to B signal, the exchange's clock; {r['register_calls']} calls; longest wait "
          f"between two signals {r['register_longest_wait_seconds']} s)")
    print(f"  server CPU        {r['server_cpu_seconds']:.1f} s, {r['server_ms_per_call']:.2f} ms per call")
    print(f"  wall              {r['wall_seconds']:.1f} s ({r['x_realtime']:.2f}x real time)")
    print(f"  all accounted     {'yes' if ok(r) else 'NO'}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--spans", type=int, default=16, help="E1 spans (30 channels each)")
    ap.add_argument("--rate", type=float, default=30.0, help="calls per second offered")
    ap.add_argument("--minutes", type=float, default=10.0, help="simulated minutes of arrivals")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--mix", action="store_true",
                    help="of every 10 callers one dials an unallocated number, one gives up during the "
                         "register phase, one clears forward while the IVR speaks")
    ap.add_argument("--json", nargs="?", const="-", metavar="FILE",
                    help="JSON instead of the table (to stdout), or to FILE as well as the table")
    ap.add_argument("--keep", metavar="DIR", help="keep the run's files (configs, logs, report, calls.db)")
    args = ap.parse_args(argv)
    if args.spans < 1 or args.rate <= 0 or args.minutes <= 0:
        ap.error("--spans, --rate and --minutes must be positive")
    if args.keep:
        Path(args.keep).mkdir(parents=True, exist_ok=True)
        r = run(args.spans, args.rate, args.minutes, args.seed, Path(args.keep), mix=args.mix)
    else:
        with tempfile.TemporaryDirectory(prefix="bench-r2load-") as tmp:
            r = run(args.spans, args.rate, args.minutes, args.seed, Path(tmp), mix=args.mix)
    r["cpus"] = os.cpu_count()
    r["ok"] = ok(r)
    if args.json == "-":
        print(json.dumps(r, indent=1))
    else:
        if args.json:
            Path(args.json).write_text(json.dumps(r, indent=1) + "\n")
        print_table(r)
    return 0 if r["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
