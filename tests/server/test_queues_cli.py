"""`voiceboard queues`: the all-busy column of the table and `all_busy` in --json, read from a
real ACD over the status API's socket (the same client reads the network API)."""
from __future__ import annotations

import asyncio
import json

import pytest
from rich.console import Console

from voiceserver.acd.agents import AgentSpec
from voiceserver.acd.distributor import Acd
from voiceserver.acd.queues import Member, QueueSpec
from voiceserver.api.status import StatusApi
from voiceserver.cli import queues as queues_cli

TOKEN = "q" * 43


def two_queues() -> Acd:
    """service: alice on a call, bob ringing (all busy); sales: carol free; empty: nobody logged in."""
    agents = [AgentSpec("alice", phone=("hotline", 4)), AgentSpec("bob", phone=("hotline", 5)),
              AgentSpec("carol", phone=("hotline", 6)), AgentSpec("dan", phone=("hotline", 7), start="logged_out")]
    acd = Acd(agents, [QueueSpec("service", (Member("alice"), Member("bob")), strategy="top-down"),
                       QueueSpec("sales", (Member("carol"),)), QueueSpec("empty", (Member("dan"),))])
    acd.call_arrived("c1", "service", "100", t=0)
    acd.ring_answered("alice", "c1", 2_000)
    acd.call_arrived("c2", "service", "101", t=3_000)
    return acd


def queue_lines(table: str) -> dict[str, list[str]]:
    """The queue table's rows by queue name, as cells (rich's box characters dropped)."""
    rows = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.replace("│", "|").split("|") if c.strip()]
        if cells and cells[0] in ("service", "sales", "empty"):
            rows[cells[0]] = cells
    return rows


def test_the_table_has_a_busy_column_yes_for_an_all_busy_queue_only():
    acd = two_queues()
    console = Console(width=200, record=True)
    console.print(queues_cli.render(acd.queue_rows(4_000), acd.agent_rows(4_000)))
    text = console.export_text()
    header = next(line for line in text.splitlines() if "strategy" in line)
    cols = [c.strip() for c in header.replace("┃", "|").split("|") if c.strip()]
    assert cols[:6] == ["queue", "strategy", "waiting", "longest", "ready/in", "busy"]
    rows = queue_lines(text)
    assert rows["service"][4:6] == ["0/2", "yes"]
    assert rows["sales"][4:6] == ["1/1", "-"]
    assert rows["empty"][4:6] == ["0/0", "-"]          # unstaffed is not all busy


def test_the_cli_prints_the_busy_column_and_keeps_all_busy_in_json(capsys: pytest.CaptureFixture[str], tmp_path):
    acd = two_queues()
    token_file = tmp_path / "admin-token"
    token_file.write_text(TOKEN + "\n")

    async def scenario() -> tuple[int, str, int, str]:
        api = StatusApi(queues=acd.queue_rows, agents=acd.agent_rows, channels=list, token=TOKEN)
        async with api:
            opts = ["--api", f"127.0.0.1:{api.port}", "--token-file", str(token_file)]
            rc_json = await asyncio.to_thread(queues_cli.main, [*opts, "--json"])
            doc = capsys.readouterr().out
            rc_once = await asyncio.to_thread(queues_cli.main, [*opts, "--once"])
            table = capsys.readouterr().out
        return rc_json, doc, rc_once, table
    rc_json, doc, rc_once, table = asyncio.run(scenario())
    assert rc_json == 0 and rc_once == 0
    assert {q["name"]: q["all_busy"] for q in json.loads(doc)["queues"]} == {
        "service": True, "sales": False, "empty": False}
    rows = queue_lines(table)
    assert rows["service"][5] == "yes" and rows["sales"][5] == "-" and rows["empty"][5] == "-"
