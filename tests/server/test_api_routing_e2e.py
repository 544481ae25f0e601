"""Routing from outside on the real server, end to end: hwsim (a separate lockstep process)
plays the caller on hotline:0 and the agents' phones (1001 on hotline:4, 1002 on hotline:5,
both in queue `service`, top-down: 1001 first); the test is the ACD program, over real HTTP
and the WebSocket event stream on loopback.

- The route to an agent: a caller listening to a menu is routed to agent 1002, whose phone
  alone rings; it answers and talks to the caller.
- External routing: every caller the IVR sends to `service` waits for a route decision. A
  client following the event stream answers the route.request in time (agent 1002); a client
  too slow answers after the deadline, when the caller has gone to the queue by itself
  (1001 first, as top-down says), and gets a 409 saying so.
The same at the event level: test_api_routing.py.
"""
from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from apiscriptkit import FLOW_TO_MENU, FLOW_TO_QUEUE, ApiScript, after, trunk_call

from acdkit import HEAD, HWSIM, caller, data, phone, rings, scenario, server_config

ACD = """
[agents.1001]
phone = "hotline:4"

[agents.1002]
phone = "hotline:5"

[queues.service]
strategy = "top-down"
members = ["1001", "1002"]

[api]

[[api.user]]
name = "acd"
role = "integration"
token_file = "acd-token"

[[api.user]]
name = "desk1001"
role = "agent"
agent = 1001
token_file = "desk1001-token"
"""


class Router:
    """An ACD program on the event stream: for each route.request, wait `delay` (seconds of
    the wall clock, or until route.decided when "late"), then POST `decision` to the call's
    route; the requests, the answers and every event seen are kept."""

    def __init__(self, decision: dict[str, Any], late: bool = False) -> None:
        self.decision = decision
        self.late = late
        self.events: list[dict[str, Any]] = []
        self.answers: list[tuple[int, dict[str, Any]]] = []
        self.task: asyncio.Task | None = None

    def __call__(self, server: Any) -> bool:
        """From the run's `until`: start following once the API listens."""
        if self.task is None and server.api_port:
            acd, = [u for u in server.cfg.api.users if u.name == "acd"]
            token = Path(acd.token_file).read_text().strip()
            self.task = asyncio.get_running_loop().create_task(self._follow(server.api_port, token))
        return self.task is not None

    async def _follow(self, port: int, token: str) -> None:
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as s, \
                s.ws_connect(f"{base}/v1/events?since=0&kind=route.&kind=acd.") as ws:
            waiting: dict[str, asyncio.Event] = {}
            async for msg in ws:
                ev = json.loads(msg.data)
                self.events.append(ev)
                if ev["kind"] == "route.decided" and ev["call_id"] in waiting:
                    waiting[ev["call_id"]].set()
                if ev["kind"] != "route.request":
                    continue
                if self.late:          # answer only once the server has decided by itself
                    waiting[ev["call_id"]] = asyncio.Event()
                    asyncio.get_running_loop().create_task(self._answer(s, base, ev, waiting[ev["call_id"]]))
                else:
                    await self._answer(s, base, ev, None)

    async def _answer(self, s: aiohttp.ClientSession, base: str, ev: dict[str, Any],
                      after: asyncio.Event | None) -> None:
        if after is not None:
            await after.wait()
        async with s.post(f"{base}/v1/calls/{ev['call_id']}/route", json=self.decision) as r:
            self.answers.append((r.status, await r.json()))

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()


def test_a_caller_in_the_ivr_routed_to_agent_1002_rings_that_agent_alone(e2e, tmp_path):
    script = ApiScript((after("call.play"), [("acd", "POST", "/v1/calls/{call}/route", {"agent": 1002})]))
    script.call_of = trunk_call
    sc = scenario(phone("zhang", answer_after=1.0, talk=3.0), phone("li", answer_after=1.0, talk=3.0),
                  caller(1.0, 0, "13911110080", hangup_after=None), duration=120.0)
    cfg = server_config(tmp_path, ACD, head=HEAD.replace(FLOW_TO_QUEUE, FLOW_TO_MENU))
    try:
        r = e2e.run(scenario=sc, server_config=cfg, hwsim_config=HWSIM, api_port=0, max_sim_seconds=100,
                    until=lambda s: script(s) and len(s.records) >= 1 and e2e.all_idle(s))
    finally:
        script.stop()
    ((routed,),) = script.answers
    call_id = routed[1]["call_id"]
    assert routed == (200, {"call_id": call_id, "agent": "1002", "queue": "service"})
    decision, = [d for d in data(r, "acd.decision") if d["call_id"] == call_id]
    assert decision["strategy"] == "direct" and decision["chosen"] == ["1002"]
    assert rings(r, "li") and not rings(r, "zhang")
    bridge, = [e for e in r.events("call.bridge") if e.call_id == call_id]
    assert bridge.data["agent"] == "1002"
    rec, = r.server.records
    assert rec.agent == "1002" and rec.ivr_path[-1] == "routed:network API (acd)"
    # agent 1001's own stream (the script follows desk1001's) has nothing of 1002's call
    assert not any(e.get("call_id") == call_id for e in script.stream)


def external(deadline: float) -> str:
    """The ACD above with external routing, `deadline` seconds."""
    return ACD.replace("[queues.service]", f"[queues]\nexternal_routing = true\nrouting_deadline = {deadline}\n\n"
                                           "[queues.service]", 1)


def test_a_client_on_the_stream_answers_the_route_request_in_time(e2e, tmp_path):
    router = Router({"agent": "1002"})
    sc = scenario(phone("zhang", answer_after=1.0, talk=3.0), phone("li", answer_after=1.0, talk=3.0),
                  caller(1.0, 0, "13911110081", hangup_after=None), duration=120.0)
    try:
        r = e2e.run(scenario=sc, server_config=server_config(tmp_path, external(10.0)), hwsim_config=HWSIM,
                    api_port=0, max_sim_seconds=100,
                    until=lambda s: router(s) and len(s.records) >= 1 and e2e.all_idle(s))
    finally:
        router.stop()
    request, = data(r, "route.request")
    call_id = request["call_id"]
    assert request["queue"] == "service" and request["caller"] == "13911110081"
    assert request["deadline_ms"] == 10_000
    assert router.answers == [(200, {"call_id": call_id, "agent": "1002", "queue": "service"})]
    decided, = data(r, "route.decided")
    assert decided["decided_by"] == "client" and decided["by"] == "network API (acd)"
    assert decided["agent"] == "1002" and decided["waited_ms"] < 10_000
    assert rings(r, "li") and not rings(r, "zhang")
    rec, = r.server.records
    assert rec.call_id == call_id and rec.agent == "1002"
    # the client saw its request and the decision on the stream, in order
    kinds = [e["kind"] for e in router.events if e.get("call_id") == call_id]
    assert kinds.index("route.request") < kinds.index("route.decided") < kinds.index("acd.decision")


def test_a_client_too_slow_finds_the_caller_gone_to_its_queue(e2e, tmp_path):
    router = Router({"queue": "service"}, late=True)
    sc = scenario(phone("zhang", answer_after=1.0, talk=3.0), phone("li", answer_after=1.0, talk=3.0),
                  caller(1.0, 0, "13911110082", hangup_after=None), duration=120.0)
    try:
        r = e2e.run(scenario=sc, server_config=server_config(tmp_path, external(2.0)), hwsim_config=HWSIM,
                    api_port=0, max_sim_seconds=100,
                    until=lambda s: router(s) and router.answers and len(s.records) >= 1 and e2e.all_idle(s))
    finally:
        router.stop()
    request, = data(r, "route.request")
    call_id = request["call_id"]
    decided, = data(r, "route.decided")
    assert decided["decided_by"] == "fallback" and decided["reason"] == "no decision within 2000 ms"
    assert decided["queue"] == "service" and decided["by"] is None
    # on the engines' ticks: 2 s of simulated time after the request
    assert (decided["tick"] - request["tick"]) * 0.02 == pytest.approx(2.0, abs=0.05)
    assert rings(r, "zhang") and not rings(r, "li")          # the queue's top-down: 1001
    rec, = r.server.records
    assert rec.agent == "1001"
    (status, body), = router.answers
    assert status == 409 and body["error"] == (f"call {call_id} is not in the IVR: its route was decided "
                                               "already (decided by fallback: queue service)")


def test_a_client_choosing_an_unknown_agent_sends_the_caller_to_its_queue_at_once(e2e, tmp_path):
    router = Router({"agent": "nobody"})
    sc = scenario(phone("zhang", answer_after=1.0, talk=3.0), phone("li", answer_after=1.0, talk=3.0),
                  caller(1.0, 0, "13911110083", hangup_after=None), duration=120.0)
    try:
        r = e2e.run(scenario=sc, server_config=server_config(tmp_path, external(10.0)), hwsim_config=HWSIM,
                    api_port=0, max_sim_seconds=100,
                    until=lambda s: router(s) and len(s.records) >= 1 and e2e.all_idle(s))
    finally:
        router.stop()
    (status, body), = router.answers
    assert status == 404 and body["error"].startswith("no agent 'nobody'")
    assert body["error"].endswith(": the caller went to queue service (the fallback)")
    decided, = data(r, "route.decided")
    assert decided["decided_by"] == "fallback" and decided["reason"].startswith("the client's choice failed")
    assert decided["waited_ms"] < 10_000                   # at once, not at the deadline
    # agent 1001's phone rings from the decision on (hwsim's clock: ticks of 20 ms from 0)
    assert 0 <= rings(r, "zhang")[0]["offered"] - decided["tick"] * 0.02 < 0.1
    assert not rings(r, "li")
    rec, = r.server.records
    assert rec.agent == "1001"
