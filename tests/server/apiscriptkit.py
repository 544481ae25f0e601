"""The network API's end-to-end tests' side: an ACD program over real HTTP and WebSocket
(`ApiScript`), the waits it acts on, and what each party of a supervised call heard.

The server runs in the test (the `e2e` fixture: hwsim as a process, lockstep); an
ApiScript's steps fire between ticks when their condition holds. Each party of a
supervised call plays its own tone (`TONES`): what a far end heard is the set of tones
found in its recording (`heard_between`).
"""
from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

from dsp.audiofile import write_wav

TICK = 0.02

# ---------------------------------------------------------------- route: from the IVR to a queue
FLOW_TO_QUEUE = '''[ivr.flows.main]                   # answered at the first ring, straight into the queue
start = "q"
lang = "zh"
'''

FLOW_TO_MENU = '''[ivr.flows.main]                   # answered at the first ring, into a menu that waits a minute
start = "wait"
lang = "zh"

[ivr.menus.wait]
greeting = ["main_menu", "press_1_balance", "press_2_hours", "press_3_message"]
first_timeout = 60000
retries = 0

[ivr.menus.wait.options]
"9" = "q"
'''

class ApiScript:
    """Requests to the server's network API, step by step, from a run's `until` (on the
    server's event loop): a step starts once its condition holds and the step before has
    been answered. Each step is a list of (user, method, path, body); the answers are kept."""

    def __init__(self, *steps: tuple[Callable[[Any], bool], list[tuple[str, str, str, Any]]]) -> None:
        self.steps = list(steps)
        self.answers: list[list[tuple[int, Any]]] = []
        self.task: asyncio.Task | None = None
        self.stream: list[dict[str, Any]] = []
        self._follow: asyncio.Task | None = None
        self.tokens: dict[str, str] = {}
        self.call_of: Callable[[Any], str] = call_of

    def __call__(self, server: Any) -> bool:
        if not self.tokens and server.api_port:
            api = server.cfg.api
            self.tokens = {"admin": Path(api.token_file).read_text().strip(),
                           **{u.name: Path(u.token_file).read_text().strip() for u in api.users}}
            self.base = f"http://127.0.0.1:{server.api_port}"
            self._follow = asyncio.get_running_loop().create_task(self._stream("desk1001"))
        if self.task is not None and not self.task.done():
            return False
        if self.task is not None:
            self.answers.append(self.task.result())
            self.task = None
        if not self.steps:
            return True
        when, requests = self.steps[0]
        if self.tokens and when(server):
            self.steps.pop(0)
            self.task = asyncio.get_running_loop().create_task(self._send(server, requests))
        return False

    async def _send(self, server: Any, requests: list[tuple[str, str, str, Any]]) -> list[tuple[int, Any]]:
        out = []
        async with aiohttp.ClientSession() as s:
            for user, method, path, body in requests:
                path = path.format(call=self.call_of(server))
                async with s.request(method, self.base + path, json=body,
                                     headers={"Authorization": f"Bearer {self.tokens[user]}"}) as r:
                    out.append((r.status, await r.json()))
        return out

    async def _stream(self, user: str) -> None:
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {self.tokens[user]}"}) as s, \
                s.ws_connect(f"{self.base}/v1/events?since=0") as ws:
            async for msg in ws:
                self.stream.append(json.loads(msg.data))

    def stop(self) -> None:
        if self._follow is not None:
            self._follow.cancel()

def call_of(server: Any) -> str:
    """The call the ACD has (the one call of the test)."""
    return next(iter(server.acd.acd.calls), "none")

def trunk_call(server: Any) -> str:
    """The call on the caller's line hotline:0."""
    leg = server.legs.get((0, 0))
    return leg.call.call_id if leg is not None else "none"

def on_call(s: Any) -> bool:
    return s.acd.acd.agents["1001"].state.value == "on_call"

def after(kind: str, ticks: int = 50) -> Callable[[Any], bool]:
    """Once `kind` has been published and `ticks` more have passed (1 s: what the caller hears)."""
    def when(s: Any) -> bool:
        seen = [e.tick for e in s.bus.journal if e.kind == kind]
        return bool(seen) and s.boards[0].engine.tick >= seen[-1] + ticks
    return when


RATE = 8000

TONES = {"caller": 600.0, "agent": 1000.0, "supervisor": 1400.0, "party": 1800.0}

SUPERVISED_ACD = """
[agents.1001]
phone = "hotline:4"

[queues.service]
members = ["1001"]

[api]

[[api.user]]
name = "boss"
role = "supervisor"
token_file = "boss-token"

[[api.user]]
name = "acd"
role = "integration"
token_file = "acd-token"

[[api.user]]
name = "desk1001"
role = "agent"
agent = 1001
token_file = "desk1001-token"

[[api.user]]
name = "mon"
role = "monitor"
token_file = "mon-token"
"""

def tone_file(tmp: Path, who: str, seconds: float) -> str:
    """`seconds` of the party's tone at -12 dBFS, as a WAV hwsim plays into the line."""
    t = np.arange(int(seconds * RATE)) / RATE
    x = (0.25 * 32767 * np.sin(2 * np.pi * TONES[who] * t)).astype(np.int16)
    path = tmp / f"{who}.wav"
    write_wav(str(path), x)
    return str(path)

def tones_in(x: np.ndarray) -> set[str]:
    """Which parties' tones are in `x`: each tone's power (a few FFT bins around it) against
    the whole window's; a tone 20 dB under the loudest or weaker than -40 dBFS is not there."""
    x = x.astype(np.float64) * np.hanning(len(x))
    spec = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / RATE)
    power = {who: spec[np.abs(freqs - f) <= 15].sum() for who, f in TONES.items()}
    full_scale = (32767 * np.hanning(len(x)).sum() / 2) ** 2
    loudest = max(power.values())
    return {who for who, p in power.items() if p > loudest / 100 and p > full_scale * 1e-4}

def heard_between(r: Any, call: dict[str, Any], start_tick: int, end_tick: int) -> set[str]:
    """The tones a party heard between two server ticks (a margin inside each end)."""
    x = r.heard_alaw(call)
    a = int((start_tick * TICK - call["answer"] + 0.3) * RATE)
    b = int((end_tick * TICK - call["answer"] - 0.1) * RATE)
    assert 0 <= a and b - a >= RATE // 2 and b <= len(x), (a, b, len(x))
    return tones_in(x[a:b])

def later(kind: str, ticks: int, nth: int) -> Callable[[Any], bool]:
    """Once the `nth` event of `kind` (from 1) has been published and `ticks` more have passed."""
    def when(s: Any) -> bool:
        seen = [e.tick for e in s.bus.journal if e.kind == kind]
        return len(seen) >= nth and s.boards[0].engine.tick >= seen[nth - 1] + ticks
    return when
