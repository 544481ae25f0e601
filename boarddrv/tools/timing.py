"""`voiceboard test URI`: how well does the board's tick clock keep time (like dahdi_test).

A card that ticks late or unevenly makes clicks on every call and, on E1,
slips; the integrator runs this once after installing a card. We claim the
board as host, take a monotonic timestamp at each tick for N seconds, and
report what dahdi_test reports (one accuracy figure per second, best, worst,
average, cumulative) plus what dahdi_test does not: interval mean, worst
jitter, ticks that came late, ticks the host missed, and the board's own
late/overrun/underrun counters.

Accuracy of one pass (one second of ticks) is, as in dahdi_test,
``100 * (1 - |elapsed - expected| / expected)`` where expected is the
number of ticks the device counted times the block period.

A lockstep board has no clock: the device advances as soon as the host
commits. There the tool says so and measures throughput (ticks per second,
times real time) instead of accuracy.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from ._output import fail, print_json, print_kv, print_table

RATE = 8000
LATE_FRACTION = 0.5   # a tick later than half a block after its due time is late


@dataclass
class TimingReport:
    """What one run measured. Times are in milliseconds unless named _s."""
    uri: str
    clock: str
    block: int
    seconds: float
    ticks: int = 0
    ticks_per_s: float = 0.0
    x_realtime: float = 0.0
    mean_interval_ms: float = 0.0
    nominal_interval_ms: float = 0.0
    worst_jitter_ms: float = 0.0
    late_ticks: int = 0
    missed_ticks: int = 0
    passes: list[float] = field(default_factory=list)   # % accuracy per second
    best: float | None = None
    worst: float | None = None
    average: float | None = None
    cumulative: float | None = None
    board_stats: dict[str, int] = field(default_factory=dict)


def analyze(ticks: list[int], times: list[float], block: int, uri: str = "",
            clock: str = "realtime") -> TimingReport:
    """Turn (device tick number, arrival time in seconds) pairs into a report.

    Pure so that the arithmetic is tested without a clock: the tests feed
    made-up arrival times and check every figure."""
    if len(ticks) != len(times):
        raise ValueError(f"ticks and times differ in length ({len(ticks)} vs {len(times)})")
    period = block / RATE
    rep = TimingReport(uri=uri, clock=clock, block=block, seconds=0.0,
                       nominal_interval_ms=period * 1e3)
    if len(ticks) < 2:
        return rep
    t0, n0 = times[0], ticks[0]
    elapsed = times[-1] - t0
    counted = ticks[-1] - n0                  # device ticks between first and last
    rep.seconds = elapsed
    rep.ticks = counted
    rep.missed_ticks = counted - (len(ticks) - 1)
    rep.ticks_per_s = counted / elapsed if elapsed > 0 else float("inf")
    rep.x_realtime = rep.ticks_per_s * period
    rep.mean_interval_ms = elapsed / counted * 1e3 if counted else 0.0
    if clock == "lockstep":
        return rep
    worst = 0.0
    late = 0
    for i in range(1, len(ticks)):
        steps = ticks[i] - ticks[i - 1]
        jitter = abs((times[i] - times[i - 1]) - steps * period)
        worst = max(worst, jitter)
        due = t0 + (ticks[i] - n0) * period
        if times[i] - due > LATE_FRACTION * period:
            late += 1
    rep.worst_jitter_ms = worst * 1e3
    rep.late_ticks = late
    # one pass per second of device ticks, as dahdi_test reads 8000 samples per pass
    per_pass = max(1, round(1.0 / period))
    start = 0
    for i in range(1, len(ticks)):
        if ticks[i] - ticks[start] >= per_pass:
            expected = (ticks[i] - ticks[start]) * period
            got = times[i] - times[start]
            rep.passes.append(100.0 * (1.0 - abs(got - expected) / expected))
            start = i
    if rep.passes:
        rep.best, rep.worst = max(rep.passes), min(rep.passes)
        rep.average = sum(rep.passes) / len(rep.passes)
    expected = counted * period
    rep.cumulative = 100.0 * (1.0 - abs(elapsed - expected) / expected)
    return rep


def run(board: Any, seconds: float, block: int) -> tuple[list[int], list[float]]:
    """Host loop: wait for each tick, timestamp it, commit silence. Returns the samples."""
    ticks: list[int] = []
    times: list[float] = []
    board.start(block=block)
    clock = time.perf_counter
    end = None
    while True:
        tick = board.wait_tick(timeout=2.0)
        now = clock()
        board.commit()
        ticks.append(int(tick))
        times.append(now)
        if end is None:
            end = now + seconds
        if now >= end:
            return ticks, times


def _clock_name(board: Any) -> str:
    clock = getattr(board.info, "clock", "realtime")
    return str(getattr(clock, "name", clock)).lower()


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="voiceboard test", description=__doc__.split("\n")[0])
    ap.add_argument("uri", metavar="URI", help="board to test, e.g. sim://hotline")
    ap.add_argument("--seconds", type=float, default=5.0, help="how long to measure (default 5)")
    ap.add_argument("--block", type=int, default=160, choices=(80, 160, 320),
                    help="samples per tick (default 160 = 20 ms)")
    ap.add_argument("--json", action="store_true", help="print one JSON document")
    args = ap.parse_args(argv)
    if args.seconds <= 0:
        return fail("voiceboard test", f"--seconds must be positive, got {args.seconds}", 2)

    from boarddrv import BoardError, open_board
    try:
        with open_board(args.uri) as board:
            clock = _clock_name(board)
            ticks, times = run(board, args.seconds, args.block)
            rep = analyze(ticks, times, args.block, uri=args.uri, clock=clock)
            rep.board_stats = {k: int(v) for k, v in board.stats().items()}
    except BoardError as exc:
        return fail("voiceboard test", str(exc))
    if args.json:
        print_json(asdict(rep))
    else:
        show(rep)
    return 0


def show(rep: TimingReport) -> None:
    if rep.clock == "lockstep":
        print(f"{rep.uri} runs a lockstep clock: the device ticks as soon as the host commits, "
              f"so there is no accuracy to measure; throughput instead.")
        print_kv(f"lockstep throughput of {rep.uri}", [
            ("ticks", rep.ticks), ("seconds", f"{rep.seconds:.3f}"),
            ("ticks/s", f"{rep.ticks_per_s:,.0f}"), ("x real time", f"{rep.x_realtime:,.1f}"),
            ("mean interval", f"{rep.mean_interval_ms * 1e3:.1f} us"),
        ])
        return
    print(f"Measuring tick accuracy of {rep.uri} ({rep.block} samples = "
          f"{rep.nominal_interval_ms:g} ms per tick):")
    for i in range(0, len(rep.passes), 5):
        print(" ".join(f"{p:.6f}%" for p in rep.passes[i:i + 5]))
    if rep.passes:
        print(f"--- Results after {len(rep.passes)} passes ---")
        print(f"Best: {rep.best:.3f}% -- Worst: {rep.worst:.3f}% -- Average: {rep.average:.6f}%")
        print(f"Cumulative accuracy (not per pass): {rep.cumulative:.3f}%")
    print_table(None, ["measure", "value"], [
        ("ticks", rep.ticks),
        ("mean interval", f"{rep.mean_interval_ms:.4f} ms (nominal {rep.nominal_interval_ms:g})"),
        ("worst jitter", f"{rep.worst_jitter_ms:.3f} ms"),
        ("late ticks (> half a block)", rep.late_ticks),
        ("ticks missed by this host", rep.missed_ticks),
        *[(f"board {k}", v) for k, v in rep.board_stats.items()],
    ])
