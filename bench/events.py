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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rates", type=int, nargs="+", default=[1000, 5000, 20000])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--feeds", nargs="+", default=["websocket", "ami"], choices=["websocket", "ami"])
    ap.add_argument("--client", nargs=4, metavar=("PORT", "OUT", "N", "FEED"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.client:
        run_client = ami_client if args.client[3] == "ami" else client
        asyncio.run(run_client(int(args.client[0]), Path(args.client[1]), int(args.client[2])))
        return 0
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
