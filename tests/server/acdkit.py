"""Shared by the ACD end-to-end tests (tests/server/test_e2e_acd_*.py).

Each test writes its own server config: a common head (the hwsim-acd board,
every inbound call straight into queue ``service``, no menu) plus the
``[agents]``/``[queues]``/``[voicemail]`` sections it is about. The file goes
to the test's tmp_path and its absolute path is handed to ``e2e.run`` (the
fixture joins config names onto tests/server/configs, and pathlib lets an
absolute path replace that), so the fixture's board renaming still applies.

Agents: zhang, li, wang, zhao on phones hotline:4-7 (hwsim ports 4-7, numbers
8001-8004). Lines hotline:0-3 take callers and form the trunk group ``pstn``.

Imported by name (``from acdkit import ...``), as the hwsim tests' worldkit.
"""
from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

HEAD = """
[[boards]]
uri = "sim://hotline_e2e"          # the fixture substitutes the run's board name
name = "hotline"

[channels]
inbound = "hotline:0-3"
agents = "hotline:4-7"

[channels.outbound]
pstn = "hotline:0-3"

[numbering]
country_code = "86"
trunk_prefix = "0"
international_prefix = "00"
local_area = "10"

[prompts]
default_lang = "zh"
languages = ["zh", "en"]

[ivr]
default_flow = "main"

[ivr.flows.main]                   # answered at the first ring, straight into the queue
start = "q"
lang = "zh"

[ivr.actions.q]
action = "queue"
queue = "service"
"""

PHONE = {"zhang": 4, "li": 5, "wang": 6, "zhao": 7}
HWSIM = "hwsim-acd.toml"
_n = itertools.count(1)


def agents(*names: str, **extra: str) -> str:
    """[agents.NAME] tables on their phones; `extra[name]` adds TOML lines to one."""
    out = []
    for name in names:
        out.append(f"[agents.{name}]\nphone = \"hotline:{PHONE[name]}\"\n{extra.get(name, '')}\n")
    return "\n".join(out)


def server_config(tmp_path: Path, acd: str, head: str = HEAD) -> str:
    path = tmp_path / f"server-acd-{next(_n)}.toml"
    path.write_text(head + "\n" + acd)
    return str(path.resolve())


def run(e2e: Any, tmp_path: Path, acd: str, scenario: str, *, until: Callable[[Any], bool],
        max_sim_seconds: float = 120, **kw: Any):
    return e2e.run(scenario=scenario, server_config=server_config(tmp_path, acd),
                   hwsim_config=HWSIM, until=until, max_sim_seconds=max_sim_seconds, **kw)


def done(e2e: Any, n_records: int) -> Callable[[Any], bool]:
    """`until`: this many trunk calls recorded and every channel idle again."""
    return lambda s: len(s.records) >= n_records and e2e.all_idle(s)


def data(run_: Any, kind: str) -> list[dict[str, Any]]:
    return [e.as_dict() for e in run_.events(kind)]


def decisions(run_: Any) -> list[dict[str, Any]]:
    return data(run_, "acd.decision")


def chosen(run_: Any) -> list[list[str]]:
    return [d["chosen"] for d in decisions(run_)]


def rings(run_: Any, agent: str) -> list[dict[str, Any]]:
    """hwsim's record of every time the host rang this agent's phone."""
    return run_.calls_on(PHONE[agent], "in")


def caller_record(run_: Any, number: str) -> Any:
    """The server's record of the call from `number`."""
    recs = [r for r in run_.server.records if r.caller == number and r.direction == "inbound"]
    assert len(recs) == 1, (number, run_.server.records)
    return recs[0]


def call_id_of(run_: Any, number: str) -> str:
    return caller_record(run_, number).call_id


def outcome(run_: Any, call_id: str) -> dict[str, Any]:
    out = [o for o in data(run_, "acd.outcome") if o["call_id"] == call_id]
    assert len(out) == 1, (call_id, out)
    return out[0]



# ---------------------------------------------------------------- scenario text
def scenario(*items: str, duration: float = 200.0, seed: int = 1) -> str:
    return f"[scenario]\nduration = {duration}\nseed = {seed}\n\n" + "\n".join(items)


def phone(name: str, answer_after: float | None = 1.0, talk: float | None = 1.0,
          script: str | None = None) -> str:
    """The person at `name`'s phone: answers after `answer_after` s of ringing
    (None: never), hangs up `talk` s after answering (None: waits for the caller)."""
    head = f'[[agent]]\nphones = "hotline_e2e:{PHONE[name]}"\n'
    if answer_after is None:
        return head + "never_answer = true\n"
    head += f"answer_after = {answer_after}\n"
    if script is not None:
        return head + f"script = {script}\n"
    if talk is not None:
        head += f"script = [{{ after = {talk}, hangup = true }}]\n"
    return head


def caller(at: float, line: int, number: str, *, hangup_after: float | None = 60.0,
           script: str | None = None, extra: str = "") -> str:
    """A caller on hotline:`line` at `at` s (DTMF caller ID: answered ~2.2 s later,
    at the first ring)."""
    out = f'[[caller]]\nat = {at}\nline = "hotline_e2e:{line}"\nnumber = "{number}"\n'
    if hangup_after is not None:
        out += f"hangup_after = {hangup_after}\n"
    if script is not None:
        out += f"script = {script}\n"
    return out + extra


# ---------------------------------------------------------------- the status API, live
class StatusProbe:
    """Read status API paths over HTTP once `when(server)` first holds.

    Call it from a run's `until` (which runs on the server's event loop): it
    starts an asyncio task that GETs each path from the server's loopback
    status port and returns True once the answers are in. The server keeps
    running meanwhile, so what is read is the state of some tick after
    `when` held; a test checks facts that hold for a while."""

    def __init__(self, when: Callable[[Any], bool], *paths: str) -> None:
        self.when = when
        self.paths = paths
        self.task: Any = None
        self.at_tick: int | None = None

    def __call__(self, server: Any) -> bool:
        import asyncio
        if self.task is None and server.status_port and self.when(server):
            self.at_tick = server.boards[0].engine.tick
            from voiceserver.api.token import read_token
            token = read_token(server.cfg.api.token_file)
            self.task = asyncio.get_running_loop().create_task(self._fetch(server.status_port, token))
        return self.task is not None and self.task.done()

    async def _fetch(self, port: int, token: str) -> dict[str, Any]:
        import asyncio
        import json
        out = {}
        for path in self.paths:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                         f"Authorization: Bearer {token}\r\n\r\n".encode())
            await writer.drain()
            raw = await reader.read()
            writer.close()
            head, body = raw.split(b"\r\n\r\n", 1)
            assert head.startswith(b"HTTP/1.1 200"), head
            out[path] = json.loads(body)
        return out

    @property
    def result(self) -> dict[str, Any]:
        assert self.task is not None, "the probe's condition never held"
        return self.task.result()
