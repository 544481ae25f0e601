"""The network API's event stream on a real loopback socket, with aiohttp's WebSocket client.

The bus and the journal are the server's own classes; the test publishes
events as the server would and is the client: it drops connections
mid-stream, restarts the "server" (a new bus and journal on the same file),
reads slowly, and sends requests the door must refuse.
"""
from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voiceserver.api.network import NetworkApi
from voiceserver.core.events import EventBus, ServerEventKind
from voiceserver.core.journal import EventJournal

K = ServerEventKind
TOKEN = "t0k3n-for-the-test"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
GUARD = 30.0          # seconds: a guard against a wedged socket, never a timing check


class Server:
    """A bus (+ journal) and the network API on a free loopback port."""

    def __init__(self, tmp: Path, journal: bool = True, buffer: int | None = None, port: int = 0) -> None:
        self.tmp, self.use_journal, self.buffer, self.port = tmp, journal, buffer, port
        self.bus = EventBus()
        self.journal: EventJournal | None = None
        self.api: NetworkApi | None = None

    async def start(self) -> Server:
        if self.use_journal:
            self.journal = EventJournal(str(self.tmp / "events.db"), "pbx1")
            self.bus.start_at(self.journal.open())
            self.bus.subscribe(self.journal, first=True)
        self.api = await NetworkApi(self.bus, host="127.0.0.1", port=self.port, token=TOKEN,
                                    audit_log=str(self.tmp / "audit.jsonl"),
                                    journal=(str(self.tmp / "events.db"), "pbx1") if self.use_journal else None,
                                    buffer=self.buffer).start()
        return self

    def url(self, **query: Any) -> str:
        q = "&".join(f"{k}={v}" for k, vs in query.items() for v in (vs if isinstance(vs, list) else [vs]))
        return f"http://127.0.0.1:{self.api.port}/v1/events" + (f"?{q}" if q else "")

    def publish(self, n: int, call: str = "c1", chan: int = 1) -> list[int]:
        return [self.bus.publish(i, K.CALL_DIGIT, chan=chan, call_id=call, board="hotline",
                                 digit=str(i % 10), masked=False).seq for i in range(n)]

    async def stop(self, killed: bool = False) -> None:
        await self.api.close()
        if self.journal is not None:
            if killed:
                self.journal._queue.put(None)        # the process dies: nothing more is written
            else:
                self.journal.close()


async def receive(ws: aiohttp.ClientWebSocketResponse, n: int) -> list[dict[str, Any]]:
    out = []
    while len(out) < n:
        msg = await asyncio.wait_for(ws.receive(), GUARD)
        if msg.type != aiohttp.WSMsgType.TEXT:
            break
        out.append(json.loads(msg.data))
    return out


def run(coro) -> Any:
    return asyncio.run(coro)


def test_live_events_arrive_in_order_and_carry_the_bus_fields(tmp_path):
    async def main() -> None:
        srv = await Server(tmp_path).start()
        async with aiohttp.ClientSession() as s, s.ws_connect(srv.url(), headers=AUTH) as ws:
            await asyncio.sleep(0)
            seqs = srv.publish(5)
            got = await receive(ws, 5)
        await srv.stop()
        assert [e["seq"] for e in got] == seqs
        assert got[0] == {"seq": seqs[0], "time": got[0]["time"], "server_id": None, "tick": 0,
                          "kind": "call.digit", "chan": 1, "call_id": "c1", "board": "hotline", "digit": "0",
                          "masked": False}
        assert got[0]["time"].endswith("Z") and got[0]["time"] <= got[-1]["time"]
    run(main())


def test_a_client_dropped_mid_stream_resumes_with_nothing_lost_or_doubled(tmp_path):
    async def main() -> None:
        srv = await Server(tmp_path).start()
        async with aiohttp.ClientSession() as s:
            ws = await s.ws_connect(srv.url(since=0), headers=AUTH)
            first = srv.publish(100)
            got = await receive(ws, 40)
            ws._response.connection.transport.abort()       # the client dies: no close handshake
            more = srv.publish(100)
            await asyncio.sleep(0.05)
            assert srv.api.stream.clients == 0                # the server let it go
            async with s.ws_connect(srv.url(since=got[-1]["seq"]), headers=AUTH) as ws2:
                rest = await receive(ws2, 160)
        await srv.stop()
        assert [e["seq"] for e in got + rest] == first + more
    run(main())


@pytest.mark.parametrize("killed", [False, True], ids=["stopped", "killed"])
def test_after_a_server_restart_the_client_resumes_from_the_journal(tmp_path, killed):
    async def main() -> tuple[list[int], list[int], list[dict[str, Any]]]:
        srv = await Server(tmp_path).start()
        before = srv.publish(50)
        if killed:
            assert srv.journal.drain()
        await srv.stop(killed=killed)
        srv = await Server(tmp_path).start()               # the same journal file: numbers go on
        after = srv.publish(20)
        async with aiohttp.ClientSession() as s, s.ws_connect(srv.url(since=before[9]), headers=AUTH) as ws:
            got = await receive(ws, 40 + 20 + (1 if killed else 0))
        await srv.stop()
        return before, after, got
    before, after, got = run(main())
    assert [e["seq"] for e in got if e["seq"] is not None] == before[10:] + after
    gaps = [e for e in got if e["kind"] == "journal.gap"]
    if killed:               # what the killed run may have published and not stored: one explicit gap
        assert [(g["from"], g["to"]) for g in gaps] == [(before[-1] + 1, after[0] - 1)]
    else:
        assert gaps == []


def test_without_a_journal_what_memory_no_longer_holds_is_a_gap(tmp_path):
    async def main() -> list[dict[str, Any]]:
        srv = Server(tmp_path, journal=False)
        srv.bus.journal = type(srv.bus.journal)(maxlen=10)   # a small memory
        await srv.start()
        srv.publish(30)
        async with aiohttp.ClientSession() as s, s.ws_connect(srv.url(since=5), headers=AUTH) as ws:
            got = await receive(ws, 11)
        await srv.stop()
        return got
    got = run(main())
    assert (got[0]["kind"], got[0]["from"], got[0]["to"]) == ("journal.gap", 6, 20)
    assert [e["seq"] for e in got[1:]] == list(range(21, 31))


def test_a_catch_up_waits_for_the_journal_to_commit_what_memory_no_longer_holds(tmp_path):
    """The journal commits behind the bus (here once a second); a client resuming from a seq
    the memory (10 events) no longer holds, before the journal has it, gets it all the same:
    never the memory's events with a silent hole before them."""
    async def main() -> list[dict[str, Any]]:
        srv = Server(tmp_path)
        srv.bus.journal = type(srv.bus.journal)(maxlen=10)
        srv.journal = EventJournal(str(tmp_path / "events.db"), "pbx1", commit_interval=1.0)
        srv.use_journal = False                         # started here, with the slow commits
        srv.bus.start_at(srv.journal.open())
        srv.bus.subscribe(srv.journal, first=True)
        await srv.start()
        srv.api.stream.journal = (str(tmp_path / "events.db"), "pbx1")
        seqs = srv.publish(30)
        async with aiohttp.ClientSession() as s, s.ws_connect(srv.url(since=seqs[4]), headers=AUTH) as ws:
            got = await receive(ws, 25)
        await srv.stop()
        return got
    got = run(main())
    assert [e["seq"] for e in got] == list(range(6, 31))


def test_a_slow_client_is_cut_off_with_its_resume_point_and_a_fast_one_gets_everything(tmp_path):
    """Buffer 200 events a client: the slow client stops reading its socket while 40,000 events
    go out (the kernel's buffers fill, then the server's 200); the fast one reads them all as
    they come. The slow one gets `stream.overflow` and a close (1013), resumes with
    `since=resume`, and has every event once; the bus never waited."""
    total = 40_000

    async def main() -> tuple[list[int], list[int], list[int], dict[str, Any], int | None]:
        srv = await Server(tmp_path, buffer=200).start()
        async with aiohttp.ClientSession() as s:
            slow = await s.ws_connect(srv.url(since=0), headers=AUTH, max_msg_size=0)
            fast = await s.ws_connect(srv.url(since=0), headers=AUTH)
            slow._response.connection.transport.pause_reading()     # it stops reading its socket
            fast_got: list[int] = []

            async def read_fast() -> None:
                while len(fast_got) < total:
                    msg = await asyncio.wait_for(fast.receive(), GUARD)
                    assert msg.type == aiohttp.WSMsgType.TEXT, (msg.type, msg.data, msg.extra, len(fast_got))
                    fast_got.append(json.loads(msg.data)["seq"])
            reader = asyncio.ensure_future(read_fast())
            seqs: list[int] = []
            for _ in range(total // 100):       # a tick's worth at a time, as fast as the fast one reads
                seqs += srv.publish(100)
                while len(fast_got) < len(seqs) and not reader.done():
                    await asyncio.sleep(0)
            await asyncio.wait_for(reader, GUARD)
            slow._response.connection.transport.resume_reading()
            slow_got: list[dict[str, Any]] = []
            while True:
                msg = await asyncio.wait_for(slow.receive(), GUARD)
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                slow_got.append(json.loads(msg.data))
            code = slow.close_code
            notice = slow_got.pop()
            async with s.ws_connect(srv.url(since=notice["resume"]), headers=AUTH) as again:
                rest = await receive(again, total - len(slow_got))
            await fast.close()
        await srv.stop()
        return seqs, fast_got, [e["seq"] for e in slow_got + rest], notice, code
    seqs, fast_got, slow_all, notice, code = run(main())
    assert fast_got == seqs
    assert notice["kind"] == "stream.overflow" and code == 1013
    assert notice["resume"] < seqs[-1]          # it was cut off before the end
    assert slow_all == seqs


def test_filters_by_kind_family_call_and_channel(tmp_path):
    async def main() -> list[dict[str, Any]]:
        srv = await Server(tmp_path).start()
        srv.publish(3, call="a", chan=1)
        srv.bus.publish(5, K.CALL_END, chan=2, call_id="b", board="hotline")
        srv.bus.publish(6, K.SPAN_ALARM, board="e1", span=1, alarm="red", set=True)
        srv.publish(2, call="b", chan=2)
        async with aiohttp.ClientSession() as s:
            async with s.ws_connect(srv.url(since=0, kind="call.", channel="hotline:2"), headers=AUTH) as ws:
                got = await receive(ws, 3)
            async with s.ws_connect(srv.url(since=0, kind=["span.alarm", "call.end"]), headers=AUTH) as ws:
                got += await receive(ws, 2)
        await srv.stop()
        return got
    got = run(main())
    assert [(e["kind"], e["call_id"]) for e in got] == [("call.end", "b"), ("call.digit", "b"), ("call.digit", "b"),
                                                        ("call.end", "b"), ("span.alarm", None)]


def test_filters_by_queue_and_agent_follow_the_calls_they_name(tmp_path):
    """queue=Q: the events naming the queue and its callers' calls from joining it to their
    end; agent=A: the events naming the agent and the calls offered to it. Resumed from the
    journal (since=0) a filter learns the calls as a live one does."""
    def script(bus: EventBus) -> None:
        bus.publish(1, K.CALL_START, chan=1, call_id="a", board="hotline", direction="inbound")
        bus.publish(2, K.CALL_QUEUE, chan=1, call_id="a", queue="service")
        bus.publish(3, K.CALL_QUEUE, chan=2, call_id="b", queue="sales")
        bus.publish(4, K.ACD_DECISION, call_id="a", queue="service", chosen=["1001"], mode="ring")
        bus.publish(5, K.ACD_ALL_BUSY, queue="service", busy=True, waiting=1)
        bus.publish(6, K.CALL_DIGIT, chan=1, call_id="a", board="hotline", digit="5", masked=False)
        bus.publish(7, K.CALL_DIGIT, chan=2, call_id="b", board="hotline", digit="6", masked=False)
        bus.publish(8, K.ACD_AGENT, agent="1001", state="on_call")
        bus.publish(9, K.CALL_END, chan=1, call_id="a", board="hotline", reason="caller hung up")
        bus.publish(10, K.CALL_DIGIT, chan=1, call_id="a", board="hotline", digit="7", masked=False)
        # the last event every filter wants: whatever one let through wrongly came before it
        bus.publish(11, K.ACD_DECISION, call_id="a2", queue="service", chosen=["1001"], mode="ring")
        bus.publish(12, K.CALL_DIGIT, chan=3, call_id="a2", board="hotline", digit="8", masked=False)

    queries = [("queue", {"queue": "service"}, 7), ("agent", {"agent": "1001"}, 6),
               ("both", {"queue": "service", "agent": "1001", "kind": "call."}, 3)]

    async def resumed() -> dict[str, list[tuple[str, str | None]]]:
        srv = await Server(tmp_path / "resumed").start()
        script(srv.bus)
        got = {}
        async with aiohttp.ClientSession() as s:
            for name, query, n in queries:
                async with s.ws_connect(srv.url(since=0, **query), headers=AUTH) as ws:
                    got[name] = [(e["kind"], e["call_id"]) for e in await receive(ws, n)]
        await srv.stop()
        return got

    async def live() -> dict[str, list[tuple[str, str | None]]]:
        srv = await Server(tmp_path / "live").start()
        async with aiohttp.ClientSession() as s:
            sockets = [await s.ws_connect(srv.url(**query), headers=AUTH) for _, query, _ in queries]
            while srv.api.stream.clients < len(sockets):    # each stream subscribed before the events come
                await asyncio.sleep(0.01)
            script(srv.bus)
            got = {name: [(e["kind"], e["call_id"]) for e in await receive(ws, n)]
                   for (name, _, n), ws in zip(queries, sockets, strict=True)}
            for ws in sockets:
                await ws.close()
        await srv.stop()
        return got
    (tmp_path / "resumed").mkdir()
    (tmp_path / "live").mkdir()
    got = run(resumed())
    assert run(live()) == got
    last = [("acd.decision", "a2"), ("call.digit", "a2")]
    assert got["queue"] == [("call.queue", "a"), ("acd.decision", "a"), ("acd.all_busy", None),
                            ("call.digit", "a"), ("call.end", "a"), *last]
    assert got["agent"] == [("acd.decision", "a"), ("call.digit", "a"), ("acd.agent", None), ("call.end", "a"),
                            *last]
    assert got["both"] == [("call.digit", "a"), ("call.end", "a"), ("call.digit", "a2")]


def test_requests_the_door_refuses_and_bad_queries(tmp_path):
    async def main() -> list[tuple[int, str]]:
        srv = await Server(tmp_path).start()
        srv.publish(3)
        out = []
        async with aiohttp.ClientSession() as s:
            for url, headers in [
                (srv.url(), {}),                                               # no token
                (srv.url(), {"Authorization": "Bearer nope"}),                 # a wrong one
                (srv.url(), {**AUTH, "Host": "evil.example:80"}),              # DNS rebinding
                (srv.url(), {**AUTH, "Origin": "http://evil.example"}),        # a web page
                (srv.url(since="abc"), AUTH),
                (srv.url(since=99), AUTH),                                     # after the newest
                (srv.url(channel="x:y"), AUTH),
            ]:
                async with s.get(url, headers=headers) as r:
                    out.append((r.status, (await r.json())["error"]))
        await srv.stop()
        return out
    (no, wrong, host, origin, since, future, chan) = run(main())
    assert no[0] == 401 and "token is missing" in no[1]
    assert wrong[0] == 401 and "token is wrong" in wrong[1]
    assert host[0] == 403 and "Host" in host[1]
    assert origin[0] == 403 and "cross-origin" in origin[1]
    assert since == (400, "since='abc': expected a seq (0 or more)")
    assert future[0] == 400 and "after the newest event (3)" in future[1]
    assert chan[0] == 400 and "BOARD:CHAN" in chan[1]
    audit = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert audit and audit[0]["result"] == "refused" and audit[0]["status"] == 401


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.dictionaries(st.sampled_from(["since", "kind", "call", "channel", "queue", "agent", "x"]),
                             st.text(alphabet=st.characters(codec="ascii", exclude_categories=("Cc",)),
                                     max_size=12), max_size=4))
def test_any_query_is_answered_clearly_never_a_server_error(tmp_path, query):
    async def main() -> tuple[int, Any]:
        srv = await Server(tmp_path, journal=False).start()
        srv.publish(3)
        try:
            async with aiohttp.ClientSession() as s, s.get(
                    f"http://127.0.0.1:{srv.api.port}/v1/events", params=query, headers=AUTH) as r:
                return r.status, (await r.json() if r.content_type == "application/json" else None)
        finally:
            await srv.stop()
    status, body = run(main())
    assert status in (400, 426), (query, status, body)     # 426: a plain GET where a WebSocket belongs
    assert body["error"]


def test_the_openapi_document_names_exactly_the_routes_served(tmp_path):
    async def main() -> tuple[dict[str, Any], set[tuple[str, str]], int]:
        srv = await Server(tmp_path).start()
        served = {(r.method.lower(), r.resource.canonical) for r in srv.api._runner.app.router.routes()
                  if r.method != "HEAD"}
        async with aiohttp.ClientSession() as s:
            async with s.get(f"http://127.0.0.1:{srv.api.port}/v1/openapi.json", headers=AUTH) as r:
                doc = await r.json()
            async with s.get(f"http://127.0.0.1:{srv.api.port}/v1/openapi.json") as r:
                unauthenticated = r.status
        await srv.stop()
        return doc, served, unauthenticated
    doc, served, unauthenticated = run(main())
    documented = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert documented == served
    assert doc["openapi"].startswith("3.1") and doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for p, ops in doc["paths"].items():
        for m, op in ops.items():
            assert op["responses"] and all(r["description"] for r in op["responses"].values()), (m, p)
    assert unauthenticated == 401


def test_every_event_on_the_stream_validates_against_the_schema_served():
    """The schemas the API serves (GET /v1/schemas/events.json), checked on what it streams:
    each event's fields are named by its kind's schema, the common ones of the right type."""
    async def main(tmp: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        srv = await Server(tmp).start()
        async with aiohttp.ClientSession() as s:
            async with s.get(f"http://127.0.0.1:{srv.api.port}/v1/schemas/events.json", headers=AUTH) as r:
                schemas = await r.json()
            async with s.ws_connect(srv.url(), headers=AUTH) as ws:
                await asyncio.sleep(0)
                srv.bus.publish(1, K.CALL_START, chan=0, call_id="a", board="hotline", direction="inbound",
                                caller="13911110000", called=None)
                srv.bus.publish(2, K.ACD_JOINED, call_id="a", queue="service", caller="13911110000",
                                priority=0, position=1)
                srv.bus.publish(3, K.CALL_END, chan=0, call_id="a", board="hotline", reason="caller hung up",
                                answered=True)
                got = await receive(ws, 3)
        await srv.stop()
        return schemas, got
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        schemas, got = run(main(Path(tmp)))
    assert set(schemas) == {k.value for k in K}
    types = {"integer": int, "string": str, "null": type(None), "boolean": bool}
    for ev in got:
        schema = schemas[ev["kind"]]
        assert set(ev) <= set(schema["properties"]), (ev["kind"], set(ev) - set(schema["properties"]))
        for name, value in ev.items():
            want = schema["properties"][name].get("type")
            if want is not None:
                allowed = tuple(types[t] for t in ([want] if isinstance(want, str) else want))
                assert isinstance(value, allowed), (ev["kind"], name, value)
        assert schema["properties"]["kind"]["const"] == ev["kind"]


def test_the_bundled_client_resumes_by_itself_across_a_server_restart(tmp_path):
    """voiceserver.api.client.EventClient: the server stops and starts again (same port, same
    journal) under a client iterating events; the client reconnects and hands out every event
    once, in order."""
    from voiceserver.api.client import EventClient

    async def main() -> tuple[list[int], list[int], int]:
        srv = await Server(tmp_path).start()
        port = srv.api.port
        got: list[int] = []
        client = EventClient(f"http://127.0.0.1:{port}", TOKEN, since=0, retry=0.05)

        async def consume() -> None:
            async with client:
                async for ev in client:
                    got.append(ev["seq"])
        task = asyncio.ensure_future(consume())
        first = srv.publish(30)
        await until(lambda: len(got) >= 30)
        await srv.stop()
        await asyncio.sleep(0.2)                     # the client retries meanwhile
        srv = await Server(tmp_path, port=port).start()
        second = srv.publish(20)
        await until(lambda: len(got) >= 50)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await srv.stop()
        return first + second, got, client.reconnects
    sent, got, reconnects = run(main())
    assert got == sent and reconnects >= 1


def test_the_bundled_client_stops_on_a_refusal_it_cannot_fix(tmp_path):
    from voiceserver.api.client import EventClient, StreamRefused

    async def main() -> None:
        srv = await Server(tmp_path).start()
        try:
            async with EventClient(f"http://127.0.0.1:{srv.api.port}", "wrong", retry=0.05) as client:
                async for _ in client:
                    pass
        finally:
            await srv.stop()
    with pytest.raises(StreamRefused, match="401"):
        run(main())


async def until(pred, limit: float = GUARD) -> None:
    """Wait for `pred` (a guard against a wedged socket, not a timing check)."""
    deadline = asyncio.get_running_loop().time() + limit
    while not pred():
        assert asyncio.get_running_loop().time() < deadline, "never happened"
        await asyncio.sleep(0.01)
