"""Memory stays flat over a long run: what the server retains does not grow with calls.

hwsim (lockstep, the 240-line board) sends two bursts of short calls; the
server (in this process, with [storage] and [recording]: call rows,
recordings) answers them all. When each burst is over and every line is
idle, the test counts the objects the server holds: everything reachable
from the VoiceServer object through attributes and containers (not through
classes, modules or functions), leaving out the two rings that are bounded
by design, the event journal and the recent records, whose bounds are
checked apart. A per-call leak of even one object would add one per call
between the two counts; the second count may differ from the first by far
less than that (timers still on an engine's heap, and the like).
"""
from __future__ import annotations

import concurrent.futures
import gc
import sqlite3
import types
from collections import Counter
from typing import Any

from servekit import CONFIGS

BURST = 400          # calls per burst
RECENT = 50          # the server keeps this many finished records in memory
CONFIG_EXTRA = """
[storage]
database = "calls.db"

[recording]
layout = "mono"
"""
SCENARIO = f"""
[scenario]
duration = 900.0
seed = 21

[[arrivals]]
lines = "e1size_e2e"
rate = 40.0
start = 0.5
limit = {BURST}
number_prefix = "1391"
hangup_after = 1.0
give_up = 30.0

[[arrivals]]
lines = "e1size_e2e"
rate = 40.0
start = 40.0
limit = {BURST}
number_prefix = "1392"
hangup_after = 1.0
give_up = 30.0
"""
# not followed: code and classes; an sqlite3 connection's own cursor list (CPython prunes it
# every 200 cursors: bounded, but it would blur the count)
# nor the event loop's thread pool, made once at the first off-loop load (rules watch, reload)
SKIP = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.CodeType,
        types.FrameType, sqlite3.Connection, concurrent.futures.ThreadPoolExecutor)


def retained(server: Any) -> Counter:
    """Objects reachable from `server` by type, without the bounded rings."""
    gc.collect()
    # the bounded rings, and the call-progress detector's state: one fixed record per
    # channel (whether a line is mid-silence when counted varies, not with calls)
    bounded = {id(server.bus.journal), id(server.records),
               *(id(rt.engine.progress._chans) for rt in server.boards)}
    seen: set[int] = set(bounded)
    count: Counter = Counter()
    todo = [server]
    while todo:
        o = todo.pop()
        if id(o) in seen or isinstance(o, SKIP):
            continue
        seen.add(id(o))
        count[type(o).__qualname__] += 1
        todo.extend(gc.get_referents(o))
    return count


def test_retained_objects_do_not_grow_with_calls(e2e, tmp_path):
    cfg = tmp_path / "server.toml"
    cfg.write_text((CONFIGS / "server-e1size.toml").read_text() + CONFIG_EXTRA)
    counts: list[Counter] = []

    quiet_since: list[int] = []

    def until(s) -> bool:
        # counted once every call's recording is closed too (files finish on the writer),
        # and 10 simulated seconds later: the timers the last calls armed (ring_gone, 6 s)
        # have run out of the engine's heap by then
        tick = s.boards[0].engine.tick
        if s.totals.calls >= BURST * (len(counts) + 1) and e2e.all_idle(s) \
                and not s.recording.calls and not s.recording._handles:
            if len(quiet_since) == len(counts):
                quiet_since.append(tick)
            elif tick >= quiet_since[-1] + 500:
                counts.append(retained(s))
        return len(counts) == 2

    run = e2e.run(scenario=SCENARIO, hwsim_config="hwsim-e1size.toml", server_config=str(cfg),
                  max_sim_seconds=400, until=until, recent_records=RECENT)
    s = run.server
    assert s.totals.calls == 2 * BURST and s.totals.answered == 2 * BURST
    assert len(s.records) == RECENT and len(s.bus.journal) <= s.bus.journal.maxlen
    assert not s.legs and not s.recording.calls and not s.recording._handles
    first, second = counts
    grown = {k: second[k] - first[k] for k in second if second[k] > first[k]}
    total = sum(second.values()) - sum(first.values())
    assert total < BURST // 10, f"{total} more objects after {BURST} more calls: {grown}"
    # and the calls are all in the database, not in memory
    from voiceserver.recording.calldb import CallDb
    with CallDb(run.workdir / "calls.db") as db:
        assert db.query("SELECT COUNT(*) FROM calls")[0][0] == 2 * BURST


def test_totals_count_end_reasons_in_bounded_space():
    """Distinct end reasons past MAX_REASONS are counted together, not each kept."""
    import datetime as dt

    from voiceserver.core.calltotals import MAX_REASONS, OTHER_REASONS, CallTotals
    from voiceserver.core.server import CallRecord
    t0 = dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.UTC)
    totals = CallTotals()
    for i in range(MAX_REASONS + 50):
        answered = i % 2 == 0
        totals.add(CallRecord(f"c{i}", "b", 0, "inbound", "1", "2", t0,
                              t0 + dt.timedelta(seconds=1) if answered else None,
                              t0 + dt.timedelta(seconds=1 + i % 7), f"reason {i}",
                              ["rejected"] if i % 5 == 0 else [], "12", 3, "chen" if i % 3 == 0 else None))
    n = MAX_REASONS + 50
    assert len(totals.end_reasons) == MAX_REASONS + 1 and totals.end_reasons[OTHER_REASONS] == 50
    assert sum(totals.end_reasons.values()) == totals.calls == n
    assert (totals.answered, totals.rejected, totals.to_agent) == (n // 2, n // 5, (n + 2) // 3)
    assert (totals.digits, totals.prompts_played) == (2 * n, 3 * n)
    talks = [i % 7 for i in range(0, n, 2)]
    assert totals.talk_seconds_max == max(talks)
    assert abs(totals.talk_seconds_avg - sum(talks) / len(talks)) < 1e-9
