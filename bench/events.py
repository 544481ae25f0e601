"""The event stream's latency and throughput: bus publish -> a WebSocket client on loopback.

    .venv/bin/python bench/events.py                   # 1,000 / 5,000 / 20,000 events/s, 10 s each
    .venv/bin/python bench/events.py --rates 5000 --seconds 30 --json

This process is the server side: the server's EventBus with the SQLite
journal subscribed (as `voiceboard serve` has it with [storage]) and, in
turn, the network API (voiceserver.api.network, the WebSocket stream) and
the AMI-compatible feed (voiceserver.api.ami) on a free loopback port. A publisher
task publishes call events at the target rate in 20 ms ticks (rate/50
events per tick, as a board's tick hands them over) and notes when each
was published. The client is a separate process (aiohttp's WebSocket
client, or a plain socket reading AMI messages), so it does not share the
server's loop; it notes when
each event arrived. Both read CLOCK_MONOTONIC (time.perf_counter), the same
clock in both processes on Linux.

Printed per rate: events/s delivered, latency publish -> client (p50, p99,
max, ms), the server process's CPU per event (µs: bus, journal, stream,
aiohttp), events lost or doubled (must be 0 on the WebSocket stream),
overflows (the client was too slow: on the stream it resumes and loses
nothing; an AMI client is cut off, and what it missed counts as lost).

    .venv/bin/python bench/events.py --sim-minutes 10      # 5,000/s for 10 simulated minutes

`--sim-minutes` runs "a slow and a fast client at 5,000 events/s" (`--rates`,
the first one) for that many simulated minutes (3,000,000 events for 10),
faster than real time: the events carry the simulated time, and the
simulated clock advances as fast as the fast client keeps up (never more
than `WINDOW` events ahead of what it has read). Two client processes on the
WebSocket stream: the fast one reads everything as it comes; the slow one
stops reading for `--slow-pause` simulated seconds (that many seconds' events
published) after every `--slow-every` events, so the server cuts it off
(`stream.overflow`, with a per-client buffer of `--buffer` events) and it resumes with
`since=resume`, from the journal when the server's memory (`--bus-memory`
events) no longer reaches back. Each client checks that it got every seq
exactly once and in order (the numbers of one run are consecutive). Printed:
the real time, events/s, the longest single `publish` (the bus, the journal,
the stream's queues) and the longest 20 ms tick's worth of publishing, each
client's overflows and reconnects, the resumes served from the journal.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TICK_S = 0.020
TOKEN = "bench-token"


async def client(port: int, out: Path, expect: int) -> None:
    """The client process: receive `expect` events (resuming after an overflow), note arrival times."""
    import aiohttp
    got: dict[int, float] = {}
    doubled = overflows = 0
    since: int | None = None
    async with aiohttp.ClientSession() as s:
        while len(got) < expect:
            url = f"http://127.0.0.1:{port}/v1/events" + (f"?since={since}" if since is not None else "")
            async with s.ws_connect(url, headers={"Authorization": f"Bearer {TOKEN}"}) as ws:
                Path(str(out) + ".ready").touch()
                async for msg in ws:
                    now = time.perf_counter()
                    ev = json.loads(msg.data)
                    if ev["kind"] == "stream.overflow":
                        overflows += 1
                        since = ev["resume"]
                        break
                    if ev["seq"] is None:
                        continue
                    if ev["seq"] in got:
                        doubled += 1
                    got[ev["seq"]] = now
                    since = ev["seq"]
                    if len(got) >= expect:
                        break
    out.write_text(json.dumps({"got": got, "doubled": doubled, "overflows": overflows}))


async def ami_client(port: int, out: Path, expect: int) -> None:
    """The AMI client process: log in, read messages, note when each event's Seq arrived."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await reader.readline()                                   # the greeting
    writer.write(f"Action: Login\r\nUsername: bench\r\nSecret: {TOKEN}\r\nActionID: 1\r\n\r\n".encode())
    got: dict[int, float] = {}
    doubled = cut_off = 0
    while len(got) < expect:
        try:
            block = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):   # cut off: AMI has no resume
            cut_off = 1
            break
        now = time.perf_counter()
        if block.startswith(b"Response:"):
            Path(str(out) + ".ready").touch()
            continue
        if block.startswith(b"Event: DTMFBegin"):      # a digit is two AMI events; its End counts
            continue
        i = block.find(b"\r\nSeq: ")
        if i < 0:
            continue
        seq = int(block[i + 7:block.index(b"\r\n", i + 7)])
        if seq in got:
            doubled += 1
        got[seq] = now
    writer.close()
    out.write_text(json.dumps({"got": got, "doubled": doubled, "overflows": cut_off}))


async def serve_rate(rate: int, seconds: float, work: Path, feed: str = "websocket") -> dict[str, Any]:
    from voiceserver.api.network import NetworkApi
    from voiceserver.core.events import EventBus, ServerEventKind
    from voiceserver.core.journal import EventJournal
    bus = EventBus()
    journal = EventJournal(str(work / f"events-{rate}.db"), "bench")
    bus.start_at(journal.open())
    bus.subscribe(journal, first=True)
    if feed == "ami":
        from voiceserver.api.ami import AmiFeed
        api: Any = await AmiFeed(bus, host="127.0.0.1", port=0, token=TOKEN).start()
    else:
        api = await NetworkApi(bus, host="127.0.0.1", port=0, token=TOKEN,
                               journal=(str(work / f"events-{rate}.db"), "bench")).start()
    per_tick = max(1, round(rate * TICK_S))
    ticks = int(seconds / TICK_S)
    total = per_tick * ticks
    out = work / f"client-{feed}-{rate}.json"
    proc = subprocess.Popen([sys.executable, __file__, "--client", str(api.port), str(out), str(total), feed])
    ready = Path(str(out) + ".ready")
    deadline = time.monotonic() + 60            # a guard against a client that never comes
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the client process did not connect")
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)
    published: dict[int, float] = {}
    cpu0 = time.process_time()
    start = time.perf_counter()
    for t in range(ticks):
        due = start + t * TICK_S
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        for i in range(per_tick):
            now = time.perf_counter()
            ev = bus.publish(t, ServerEventKind.CALL_DIGIT, chan=i % 240, call_id=f"b-{t}-{i % 30}",
                             board="bench", digit=str(i % 10), masked=False)
            published[ev.seq] = now
    while proc.poll() is None:
        await asyncio.sleep(0.05)
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu0
    await api.close()
    journal.close()
    res = json.loads(out.read_text())
    got = {int(k): v for k, v in res["got"].items()}
    lat = sorted((got[s] - published[s]) * 1e3 for s in published if s in got)
    return {"feed": feed, "rate": rate, "events": total, "seconds": round(wall, 2),
            "delivered_per_s": round(len(got) / wall), "lost": len(set(published) - set(got)),
            "doubled": res["doubled"], "overflows": res["overflows"],
            "p50_ms": round(statistics.median(lat), 3) if lat else None,
            "p99_ms": round(lat[int(len(lat) * 0.99) - 1], 3) if lat else None,
            "max_ms": round(lat[-1], 3) if lat else None,
            "server_cpu_us_per_event": round(cpu / total * 1e6, 1)}


SLOW_RCVBUF = 16_384       # bytes: the slow client's socket receive buffer
WINDOW = 5_000             # events the simulated clock may run ahead of the fast client
SIM_EPOCH_NS = 1_798_761_600 * 10**9      # 2027-01-01T00:00:00Z: the simulated clock's start


def sim_stamp(ns: int) -> str:
    """A simulated instant as events carry the time (voiceserver.core.events.utc_now's format)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + f".{ns // 10**6 % 1000:03d}Z"


async def sim_client(port: int, out: Path, expect: int, mode: str, slow_every: int) -> None:
    """A client process of the simulation: read `expect` events, resuming after each overflow,
    checking order and uniqueness as they come; the fast one prints its count every 1,000
    events (the simulated clock follows it); the slow one, after every `slow_every` events,
    prints `paused COUNT` and stops reading until a line comes on its stdin (the simulation
    sends it when the pause has lasted its simulated seconds)."""
    import aiohttp
    count = out_of_order = doubled = missing = gaps = overflows = reconnects = 0
    last: int | None = None
    first: int | None = None
    since: int | None = 0
    connector = None
    if mode == "slow":          # a small receive buffer: the kernel holds little for it while it pauses
        import socket

        def small_socket(addr_info: Any) -> socket.socket:
            family, type_, proto, _, _ = addr_info
            sock = socket.socket(family=family, type=type_, proto=proto)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SLOW_RCVBUF)
            return sock
        connector = aiohttp.TCPConnector(socket_factory=small_socket)
    async with aiohttp.ClientSession(connector=connector) as s:
        while count < expect:
            url = f"http://127.0.0.1:{port}/v1/events?since={since}"
            async with s.ws_connect(url, headers={"Authorization": f"Bearer {TOKEN}"},
                                    max_msg_size=0) as ws:
                if reconnects == 0:
                    Path(str(out) + ".ready").touch()
                async for msg in ws:
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        break
                    ev = json.loads(msg.data)
                    seq = ev["seq"]
                    if seq is None:
                        if ev["kind"] == "stream.overflow":
                            overflows += 1
                            since = ev["resume"]
                            break
                        gaps += 1                       # journal.gap: events lost (must not happen)
                        continue
                    if last is not None and seq <= last:
                        doubled += seq in range(first or 0, last + 1)
                        out_of_order += 1
                        continue
                    if last is not None and seq != last + 1:
                        missing += seq - last - 1
                    if first is None:
                        first = seq
                    last = since = seq
                    count += 1
                    if mode == "fast" and count % 1_000 == 0:
                        print(count, flush=True)
                    if mode == "slow" and count % slow_every == 0 and count < expect:
                        print(f"paused {count}", flush=True)     # not reading: the server's buffer fills
                        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
                    if count >= expect:
                        break
            reconnects += 1
    print(count, flush=True)
    out.write_text(json.dumps({"count": count, "first": first, "last": last, "out_of_order": out_of_order,
                               "doubled": doubled, "missing": missing, "gaps": gaps,
                               "overflows": overflows, "reconnects": reconnects - 1}))


async def simulate(rate: int, sim_seconds: float, work: Path, *, slow_every: int = 100_000,
                   slow_pause: float = 10.0, bus_memory: int = 5_000, buffer: int = 1_000,
                   quiet: bool = True) -> dict[str, Any]:
    """The run of `--sim-minutes` (see the module's docstring): its figures and each client's."""
    from voiceserver.api.network import NetworkApi
    from voiceserver.core.events import EventBus, ServerEventKind
    from voiceserver.core.journal import EventJournal
    sim_ns = [SIM_EPOCH_NS]
    bus = EventBus(journal_size=bus_memory, server_id="sim", clock=lambda: sim_stamp(sim_ns[0]))
    db = str(work / "events-sim.db")
    journal = EventJournal(db, "sim")
    first_seq = journal.open()
    bus.start_at(first_seq)
    bus.subscribe(journal, first=True)
    api = await NetworkApi(bus, host="127.0.0.1", port=0, token=TOKEN, journal=(db, "sim"),
                           buffer=buffer).start()
    per_tick = max(1, round(rate * TICK_S))
    ticks = int(sim_seconds / TICK_S)
    total = per_tick * ticks
    procs: dict[str, asyncio.subprocess.Process] = {}
    outs: dict[str, Path] = {}
    for mode in ("fast", "slow"):
        outs[mode] = work / f"sim-{mode}.json"
        procs[mode] = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--sim-client", str(api.port), str(outs[mode]), str(total), mode,
            str(slow_every), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    read = {"fast": 0, "slow": 0}
    published = 0
    pause_events = round(slow_pause * rate)        # the slow client's pause, in events of simulated time
    slow_paused_at: list[int] = []                 # published when the slow client paused (while it is)
    publishing = [True]

    def release_slow() -> None:
        slow_paused_at.clear()
        stdin = procs["slow"].stdin
        assert stdin is not None
        stdin.write(b"go\n")

    async def follow(mode: str) -> None:
        proc = procs[mode]
        assert proc.stdout is not None
        async for line in proc.stdout:
            words = line.split()
            read[mode] = int(words[-1])
            if words[0] == b"paused":
                slow_paused_at.append(published)
                if not publishing[0]:
                    release_slow()
    followers = [asyncio.ensure_future(follow(m)) for m in procs]
    deadline = time.monotonic() + 60          # a guard against a client that never comes
    while not all(Path(str(o) + ".ready").exists() for o in outs.values()):
        if any(p.returncode is not None for p in procs.values()) or time.monotonic() > deadline:
            raise RuntimeError("a client process did not connect")
        await asyncio.sleep(0.01)
    longest_publish = longest_tick = 0.0
    waits = over_1ms = over_10ms = 0
    slowest: list[tuple[float, int]] = []      # (ms, seq) of the publishes over 10 ms
    start = time.perf_counter()
    cpu0 = time.process_time()
    for t in range(ticks):
        while published - read["fast"] > WINDOW:      # the simulated clock waits for the fast client
            waits += 1
            await asyncio.sleep(0.001)
        sim_ns[0] = SIM_EPOCH_NS + t * int(TICK_S * 1e9)
        tick_start = time.perf_counter()
        for i in range(per_tick):
            t0 = time.perf_counter()
            ev = bus.publish(t, ServerEventKind.CALL_DIGIT, chan=i % 240, call_id=f"s-{t // 500}-{i % 30}",
                             board="sim", digit=str(i % 10), masked=False)
            took = time.perf_counter() - t0
            if took > 0.001:
                over_1ms += 1
                over_10ms += took > 0.010
                longest_publish = max(longest_publish, took)
                if took > 0.010:
                    slowest.append((round(took * 1e3, 1), ev.seq))
        longest_tick = max(longest_tick, time.perf_counter() - tick_start)
        published += per_tick
        if slow_paused_at and published - slow_paused_at[0] >= pause_events:
            release_slow()
        await asyncio.sleep(0)                         # a loop turn: the journal's flush, the sends
        if not quiet and t % 3000 == 0:
            print(f"  sim {t * TICK_S:6.0f} s  published {published:,}  fast {read['fast']:,}  "
                  f"slow {read['slow']:,}  real {time.perf_counter() - start:6.1f} s", flush=True)
    publish_wall = time.perf_counter() - start
    publish_cpu = time.process_time() - cpu0
    publishing[0] = False
    if slow_paused_at:
        release_slow()
    for proc in procs.values():
        await proc.wait()
    await asyncio.gather(*followers)
    wall = time.perf_counter() - start
    journal_pages = api.stream.journal_pages
    await api.close()
    journal.close()
    clients = {m: json.loads(o.read_text()) for m, o in outs.items()}
    ok = all(c["count"] == total and c["first"] == first_seq and c["last"] == first_seq + total - 1
             and c["out_of_order"] == c["doubled"] == c["missing"] == c["gaps"] == 0 for c in clients.values())
    return {"rate": rate, "sim_seconds": sim_seconds, "events": total, "real_seconds": round(wall, 1),
            "publish_real_seconds": round(publish_wall, 1), "events_per_s": round(total / publish_wall),
            "speedup": round(sim_seconds / publish_wall, 1),
            "server_cpu_us_per_event": round(publish_cpu / total * 1e6, 1),
            "longest_publish_ms": round(longest_publish * 1e3, 3), "longest_tick_ms": round(longest_tick * 1e3, 3),
            "publishes_over_1ms": over_1ms, "publishes_over_10ms": over_10ms,
            "slowest_publishes": sorted(slowest, reverse=True)[:10],
            "clock_waits": waits, "journal_pages": journal_pages, "clients": clients, "ok": ok}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rates", type=int, nargs="+", default=[1000, 5000, 20000])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--feeds", nargs="+", default=["websocket", "ami"], choices=["websocket", "ami"])
    ap.add_argument("--sim-minutes", type=float, help="a slow and a fast client for this many simulated "
                    "minutes at the first rate, faster than real time (see above)")
    ap.add_argument("--slow-every", type=int, default=100_000, help="--sim-minutes: the slow client pauses "
                    "after every this many events")
    ap.add_argument("--slow-pause", type=float, default=10.0, help="--sim-minutes: for this many simulated "
                    "seconds")
    ap.add_argument("--bus-memory", type=int, default=5_000, help="--sim-minutes: events the server keeps "
                    "in memory (older ones: from the journal)")
    ap.add_argument("--buffer", type=int, default=1_000, help="--sim-minutes: events the server queues "
                    "for one client before it cuts it off (the server's default: 10,000; less here so that "
                    "a pause of the slow client overflows it)")
    ap.add_argument("--sim-client", nargs=5, help=argparse.SUPPRESS)
    ap.add_argument("--client", nargs=4, metavar=("PORT", "OUT", "N", "FEED"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.client:
        run_client = ami_client if args.client[3] == "ami" else client
        asyncio.run(run_client(int(args.client[0]), Path(args.client[1]), int(args.client[2])))
        return 0
    if args.sim_client:
        port, out, n, mode, every = args.sim_client
        asyncio.run(sim_client(int(port), Path(out), int(n), mode, int(every)))
        return 0
    if args.sim_minutes:
        rate = args.rates[0] if args.rates != [1000, 5000, 20000] else 5000
        with tempfile.TemporaryDirectory(prefix="vb-events-") as tmp:
            res = asyncio.run(simulate(rate, args.sim_minutes * 60, Path(tmp), slow_every=args.slow_every,
                                       slow_pause=args.slow_pause, bus_memory=args.bus_memory,
                                       buffer=args.buffer,
                                       quiet=args.json))
        if args.json:
            print(json.dumps({"cores": os.cpu_count(), **res}, indent=1))
        else:
            print(f"{res['events']:,} events ({rate:,}/s for {res['sim_seconds']:.0f} simulated s) in "
                  f"{res['real_seconds']} s real ({res['publish_real_seconds']} s publishing: "
                  f"{res['events_per_s']:,} events/s, {res['speedup']}x real time); server "
                  f"{res['server_cpu_us_per_event']} µs/event; longest publish {res['longest_publish_ms']} ms, "
                  f"longest tick {res['longest_tick_ms']} ms, publishes over 1 ms "
                  f"{res['publishes_over_1ms']}, over 10 ms {res['publishes_over_10ms']}; "
                  f"journal pages read {res['journal_pages']}")
            print(f"  slowest publishes (ms, seq): {res['slowest_publishes']}")
            for mode, c in res["clients"].items():
                print(f"  {mode}: {c['count']:,} events, seq {c['first']}..{c['last']}, overflows "
                      f"{c['overflows']}, reconnects {c['reconnects']}, missing {c['missing']}, "
                      f"doubled {c['doubled']}, out of order {c['out_of_order']}, gaps {c['gaps']}")
            print("OK: both clients got every event once, in order" if res["ok"] else "FAILED")
        return 0 if res["ok"] else 1
    rows = []
    with tempfile.TemporaryDirectory(prefix="vb-events-") as tmp:
        for rate, feed in [(r, f) for r in args.rates for f in args.feeds]:
            rows.append(asyncio.run(serve_rate(rate, args.seconds, Path(tmp), feed)))
            if not args.json:
                r = rows[-1]
                print(f"{r['feed']:>9} {r['rate']:>7,}/s  delivered {r['delivered_per_s']:>7,}/s"
                      f"  latency p50 {r['p50_ms']:7.2f} ms  p99 {r['p99_ms']:7.2f} ms  max {r['max_ms']:7.2f} ms"
                      f"  server {r['server_cpu_us_per_event']:6.1f} µs/event"
                      f"  lost {r['lost']}  doubled {r['doubled']}  overflows {r['overflows']}", flush=True)
    if args.json:
        print(json.dumps({"cores": os.cpu_count(), "rows": rows}, indent=1))
    # the WebSocket stream must lose nothing; AMI, which cannot resume, is measured as it is
    return 0 if all(r["lost"] == 0 and r["doubled"] == 0 for r in rows if r["feed"] == "websocket") else 1


if __name__ == "__main__":
    sys.exit(main())
