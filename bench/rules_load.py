"""Loading large number lists: a recording rules file and a server config's blacklist.

    .venv/bin/python bench/rules_load.py [-n 100000 300000] [--json]

For each N, writes (in a temporary directory):

- a rules file whose ``[exclude] numbers`` holds N numbers, written the way
  sites keep them (mobiles, Beijing fixed lines with the trunk prefix,
  ``+86`` and E1 ANI forms), plus a few prefixes (``400*``) and wildcard
  patterns (``1380013800?``);
- a server config whose ``[blacklist] numbers`` holds the same N numbers,
  and one with them as ``[blacklist] entries = [{ number = ... }, ...]``.

Each load runs in a fresh child process (so one does not warm the next)
that reports the wall time of the load and how much its peak resident
memory grew during it (``ru_maxrss`` after minus the RSS before: the
parse, the validation and what stays), and, from a second load traced
with tracemalloc, what the loaded rules or config keep ("kept MB": what
the running server holds). The child also matches
``--matches`` caller IDs (half listed, half not; rules: a whole
``decide``) and reports the rate, to show the lists are not only small
but quick to consult.

Figures go in docs/recording-rules.md ("Large lists"). Compare a checkout
by pointing PYTHONPATH at it: the numbers files are the same.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

CHILD = textwrap.dedent("""
    import datetime as dt, json, resource, sys, time
    def rss_kb():
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    kind, path, n, m = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    from voiceserver.recording.rules import CallFacts, load_rules
    from voiceserver.config.server import load_config
    before = rss_kb()
    t0 = time.perf_counter()
    obj = load_rules(path) if kind == "rules" else load_config(path)
    load_s = time.perf_counter() - t0
    grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    callers = [f"1380{i * 7 % n:07d}" if i % 2 else f"1590{i:07d}" for i in range(m)]
    at = dt.datetime(2026, 11, 23, 10, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    t0 = time.perf_counter()
    if kind == "rules":
        hits = sum(not obj.decide(CallFacts("c", caller=c), at).record for c in callers)
    else:
        hits = sum(obj.blacklist.match(c) is not None for c in callers)
    match_s = time.perf_counter() - t0
    import gc, tracemalloc             # what a loaded list keeps: a second load, traced
    del obj
    gc.collect()
    tracemalloc.start()
    obj = load_rules(path) if kind == "rules" else load_config(path)
    gc.collect()
    kept, peak = tracemalloc.get_traced_memory()
    print(json.dumps({"load_s": load_s, "rss_growth_mb": grew / 1024, "hits": hits,
                      "matches_per_s": len(callers) / match_s, "kept_mb": kept / 1e6,
                      "traced_peak_mb": peak / 1e6}))
""")

SERVER = """\
[[boards]]
uri = "sim://bench"

[channels]
inbound = "bench:0-3"

[ivr]
default_flow = "day"

[ivr.flows.day]
start = { action = "hangup" }

[blacklist]
"""


def number_lines(n: int) -> list[str]:
    """N distinct numbers in the forms sites keep them in; all normalise to 1380NNNNNNN or 10..."""
    out = []
    for i in range(n):
        form = i % 5
        if form == 0:
            out.append(f'"1380{i:07d}"')                 # mobile
        elif form == 1:
            out.append(f'"+86 1380{i:07d}"')             # international
        elif form == 2:
            out.append(f'"861380{i:07d}"')               # E1 ANI: country code, no prefix
        elif form == 3:
            out.append(f'"010{60000000 + i:08d}"')       # Beijing fixed line, trunk prefix
        else:
            out.append(f'"1380{i:07d}"')
    return out


def write_files(work: Path, n: int) -> tuple[Path, Path]:
    nums = number_lines(n)
    rules = work / f"rules-{n}.toml"
    rules.write_text("[exclude]\nnumbers = [\n" + ",\n".join(nums)
                     + ',\n"400*", "95*", "1380013800?"\n]\n', encoding="utf-8")
    server = work / f"server-{n}.toml"
    server.write_text(SERVER + "numbers = [\n" + ",\n".join(nums) + ',\n"400*"\n]\n',
                      encoding="utf-8")
    entries = work / f"server-entries-{n}.toml"
    entries.write_text(SERVER + "entries = [\n" + ",\n".join(f"{{ number = {x} }}" for x in nums)
                       + ',\n{ number = "400", match = "prefix" }\n]\n', encoding="utf-8")
    return rules, server, entries


def measure(kind: str, path: Path, n: int, matches: int) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, kind, str(path), str(n), str(matches)],
                         capture_output=True, text=True, env=os.environ.copy())
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr else "failed"}
    return json.loads(out.stdout)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, nargs="+", default=[100000, 300000])
    ap.add_argument("--only", nargs="+", help="only files whose name has one of these "
                                              "(rules, server-1, server-entries)")
    ap.add_argument("--matches", type=int, default=20000,
                    help="caller IDs matched after the load (half listed), for the rate")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.n:
            rules, server, entries = write_files(Path(tmp), n)
            for kind, path in (("rules", rules), ("blacklist", server),
                               ("blacklist", entries)):
                if args.only and not any(o in path.name for o in args.only):
                    continue
                r = measure(kind, path, n, args.matches)
                name = "blacklist-entries" if path == entries else kind
                rows.append({"kind": name, "n": n, "file_mb": path.stat().st_size / 1e6, **r})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'list':<18} {'numbers':>8} {'file MB':>8} {'load s':>8} {'RSS +MB':>8} "
          f"{'kept MB':>8} {'matches/s':>10}")
    for r in rows:
        if "error" in r:
            print(f"{r['kind']:<18} {r['n']:>8} {r['file_mb']:>8.1f}  error: {r['error']}")
            continue
        print(f"{r['kind']:<18} {r['n']:>8} {r['file_mb']:>8.1f} {r['load_s']:>8.2f} "
              f"{r['rss_growth_mb']:>8.0f} {r['kept_mb']:>8.1f} {r['matches_per_s']:>10.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
