"""answer = "api" on E1 R2 lines end to end: hwsim's China No.1 exchange (hwsim/r2far.py, its
own R2 side) calls `VoiceServer` over an E1 CAS span; the integration user answers over the real
network API (HTTP); the call database is read from SQLite.

Two callers on channels of [channels] answer_api: the first is accepted (B-1), gets our
ringback (the engine's tone) and the answer signal only when the API answers it 6 s later; the
second clears forward while it waits, and the API's answer after that is a 404.
"""
from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from apiscriptkit import ApiScript

TICK = 0.02
ANSWERED = ("13911110001", "95566")        # ANI, DNIS: answered by the API
GIVES_UP = ("13911110002", "95566")        # clears forward 8 s after its seizure, unanswered
WAIT_TICKS = 300                           # the API answers 6 s after the call waits for it

HWSIM = """
[clock]
start = 2026-11-23T10:00:00+08:00

[[board]]
name = "e1size_e2e"
law = "alaw"

[[board.span]]
kind = "e1"
count = 1
framing = "cas"
coding = "hdb3"
crc4 = true
"""


def server_toml(store: Path) -> str:
    return f"""
[[boards]]
uri = "sim://e1size_e2e"
name = "e1"

[channels]
answer_api = "e1:0-1"

[storage]
database = "{store / 'calls.db'}"
recordings = "{store / 'rec'}"
voicemail = "{store / 'vm'}"
rules_audit = "{store / 'rules-audit.jsonl'}"

[api]

[[api.user]]
name = "acd"
role = "integration"
token_file = "acd-token"

[[api.user]]
name = "mon"
role = "monitor"
token_file = "mon-token"

[r2.groups.ct]
channels = "e1:0-29"
variant = "cn"
release_control = "mutual"
direction = "in"

[r2.groups.ct.numbers."95566"]
flow = "greet"

[prompts]
default_lang = "zh"
languages = ["zh"]

[ivr]
default_flow = "greet"

[ivr.flows.greet]
start = "greet"
lang = "zh"

[ivr.actions.greet]
action = "play"
prompts = ["welcome"]
then = {{ action = "hangup" }}
"""


def scenario() -> str:
    out = ["[scenario]", "duration = 60.0", "seed = 1", ""]
    for (ani, dnis), line, give_up in ((ANSWERED, 0, 60.0), (GIVES_UP, 1, 8.0)):
        out += ["[[caller]]", "at = 1.0", f'line = "e1size_e2e:{line}"', f'number = "{ani}"',
                f'called = "{dnis}"', 'category = "national_subscriber"', f"give_up = {give_up}",
                "hangup_after = 30.0", ""]
    return "\n".join(out)


class Script(ApiScript):
    """ApiScript whose paths name the call they act on: "{chan0}" / "{chan1}", the call id of
    the first call.api_answer on that channel. It follows the event stream as the integration."""

    async def _stream(self, user: str) -> None:
        await super()._stream("acd")

    async def _send(self, server: Any, requests: list[tuple[str, str, str, Any]]) -> list[tuple[int, Any]]:
        ids = {f"chan{e.chan}": e.call_id for e in reversed(server.bus.journal) if e.kind == "call.api_answer"}
        out = []
        async with aiohttp.ClientSession() as s:
            for user, method, path, body in requests:
                async with s.request(method, self.base + path.format(**ids), json=body,
                                     headers={"Authorization": f"Bearer {self.tokens[user]}"}) as r:
                    out.append((r.status, await r.json()))
        return out


def waited(chan: int, ticks: int) -> Callable[[Any], bool]:
    """Once the call on `chan` has waited `ticks` for the API's answer."""
    def when(s: Any) -> bool:
        seen = [e.tick for e in s.bus.journal if e.kind == "call.api_answer" and e.chan == chan]
        return bool(seen) and s.boards[0].engine.tick >= seen[0] + ticks
    return when


def ended(chan: int) -> Callable[[Any], bool]:
    return lambda s: any(e.kind == "call.end" and e.chan == chan for e in s.bus.journal)


def test_the_exchange_sees_the_answer_only_when_the_api_answers(e2e, tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    (tmp_path / "server.toml").write_text(server_toml(store))
    (tmp_path / "hwsim.toml").write_text(HWSIM)
    script = Script(
        (ended(1), [("acd", "POST", "/v1/calls/{chan1}/answer", None)]),        # gone: 404
        (waited(0, WAIT_TICKS), [("mon", "POST", "/v1/calls/{chan0}/answer", None),
                                 ("acd", "POST", "/v1/calls/{chan0}/answer", None),
                                 ("acd", "POST", "/v1/calls/{chan0}/answer", None)]),
    )
    tones: dict[str, str | None] = {}     # the tone the engine plays to the first caller

    def probe(s: Any) -> None:
        if "waiting" not in tones and waited(0, 100)(s):
            tones["waiting"] = s.boards[0].engine.tones.playing(0)
        answers = [e.tick for e in s.bus.journal if e.kind == "call.answer"]
        if "answered" not in tones and answers and s.boards[0].engine.tick >= answers[0] + 5:
            tones["answered"] = s.boards[0].engine.tones.playing(0)
    try:
        r = e2e.run(scenario=scenario(), server_config=str(tmp_path / "server.toml"),
                    hwsim_config=str(tmp_path / "hwsim.toml"), api_port=0, max_sim_seconds=50,
                    until=lambda s: probe(s) or (script(s) and len(s.records) >= 2 and e2e.all_idle(s)))
    finally:
        script.stop()
    (late,), (monitor, answered, again) = script.answers
    assert late[0] == 404 and "no call" in late[1]["error"], late
    assert monitor[0] == 403 and answered == (200, {"call_id": answered[1]["call_id"], "answered": True})
    assert again[0] == 409 and "not waiting for an answer" in again[1]["error"]

    assert tones == {"waiting": "ringback", "answered": None}, tones     # ringback while it waited
    # the server: each call waited (after its B signal: offered); the first answered by the API
    api = {(e.chan, e.data["state"]): e for e in r.events("call.api_answer")}
    assert set(api) == {(0, "waiting"), (1, "waiting"), (0, "answered")}
    assert api[(0, "answered")].data["why"] == "network API (acd)"
    offer0, = [e for e in r.events("call.offer") if e.chan == 0]
    assert (offer0.data["dnis"], offer0.data["ani"]) == (ANSWERED[1], ANSWERED[0])
    answer, = r.events("call.answer")
    assert answer.chan == 0 and answer.tick == api[(0, "answered")].tick
    assert answer.tick - api[(0, "waiting")].tick >= WAIT_TICKS
    end1, = [e for e in r.events("call.end") if e.chan == 1]
    assert (end1.data["reason"], end1.data["side"], end1.data["answered"]) == (
        "caller cleared forward", "caller", False)

    # hwsim's exchange: accepted with charge (B-1), then the answer bits only at the API's answer
    call0, = r.calls_on(0, "in")
    call1, = r.calls_on(1, "in")
    assert call0["result"] == "answer" and call0["answer"] is not None, call0
    b_signal = max(x["at"] for x in call0["r2"] if x["dir"] == "rx" and x["signal"].startswith("MF B-"))
    assert call0["answer"] - b_signal >= WAIT_TICKS * TICK, (b_signal, call0["answer"])
    assert abs(call0["answer"] - answer.tick * TICK) < 0.1          # the answer bits, seen then
    assert call1["answer"] is None and any(x["signal"].startswith("MF B-1") for x in call1["r2"]), call1

    # the call database: the answer time of the answered call, none for the other
    con = sqlite3.connect(store / "calls.db")
    rows = {ch: (start, ans, disp) for ch, start, ans, disp in
            con.execute('SELECT channel, start, answer, disposition FROM calls ORDER BY channel')}
    con.close()
    assert set(rows) == {0, 1}, rows
    start0, answer0, _ = rows[0]
    assert answer0 is not None
    assert abs(r.sim_s(dt.datetime.fromisoformat(answer0)) - call0["answer"]) < 0.1, (answer0, call0)
    assert (dt.datetime.fromisoformat(answer0) - dt.datetime.fromisoformat(start0)).total_seconds() >= 6.0 + 3.0
    assert rows[1][1] is None and rows[1][2] == "caller cleared forward"
