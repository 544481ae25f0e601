"""`voiceboard events`: the journal read back, filtered, followed; errors say what is wrong."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from voiceserver.cli import events as cli
from voiceserver.core.events import EventBus, ServerEventKind
from voiceserver.core.journal import EventJournal

K = ServerEventKind
CONFIG = """
[[boards]]
uri = "sim://hotline"

[storage]
server_id = "pbx1"
"""


def run_server(path, calls: list[str], killed: bool = False) -> list[int]:
    """One server run publishing a few events per call; a clean stop unless `killed`."""
    bus, j = EventBus(), EventJournal(str(path), "pbx1")
    bus.start_at(j.open())
    bus.subscribe(j, first=True)
    seqs = []
    for n, call in enumerate(calls):
        seqs.append(bus.publish(1, K.CALL_START, chan=n, call_id=call, board="hotline", direction="inbound",
                                caller="13911110000", called=None).seq)
        seqs.append(bus.publish(2, K.CALL_DIGIT, chan=n, call_id=call, digit="5", masked=False).seq)
        seqs.append(bus.publish(3, K.CALL_END, chan=n, call_id=call, board="hotline").seq)
    if killed:
        assert j.drain()
        j._queue.put(None)
    else:
        j.close()
    return seqs


def events_cli(capsys, *argv: str) -> tuple[int, str, str]:
    rc = cli.main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.unit
def test_since_a_seq_filtered_and_as_json(tmp_path, capsys):
    (tmp_path / "server.toml").write_text(CONFIG)
    seqs = run_server(tmp_path / "events.db", ["a", "b"])
    rc, out, _ = events_cli(capsys, "--config", str(tmp_path / "server.toml"), "--since", str(seqs[1]), "--json")
    got = [json.loads(line) for line in out.splitlines()]
    assert rc == 0 and [e["seq"] for e in got] == seqs[2:]
    rc, out, _ = events_cli(capsys, "--config", str(tmp_path / "server.toml"), "--since", "0", "--json",
                            "--kind", "call.digit", "--call", "b")
    assert [json.loads(line)["seq"] for line in out.splitlines()] == [seqs[4]]
    rc, out, _ = events_cli(capsys, "--journal", str(tmp_path / "events.db"), "--server-id", "pbx1",
                            "--since", "0", "--json", "--channel", "hotline:1", "--kind", "call.")
    assert [json.loads(line)["kind"] for line in out.splitlines()] == ["call.start", "call.end"]


@pytest.mark.unit
def test_a_queue_or_agent_filter_follows_the_calls_it_names_in_the_journal(tmp_path, capsys):
    bus, j = EventBus(), EventJournal(str(tmp_path / "events.db"), "pbx1")
    bus.start_at(j.open())
    bus.subscribe(j, first=True)
    for call, queue, agent in (("a", "service", "1001"), ("b", "sales", "1002")):
        bus.publish(1, K.CALL_START, chan=1, call_id=call, board="hotline", direction="inbound")
        bus.publish(2, K.CALL_QUEUE, chan=1, call_id=call, queue=queue)
        bus.publish(3, K.ACD_DECISION, call_id=call, queue=queue, chosen=[agent], mode="ring")
        bus.publish(4, K.CALL_DIGIT, chan=1, call_id=call, digit="5", masked=False)
        bus.publish(5, K.CALL_END, chan=1, call_id=call, board="hotline")
    j.close()
    journal = ("--journal", str(tmp_path / "events.db"), "--server-id", "pbx1", "--since", "0", "--json")
    rc, out, _ = events_cli(capsys, *journal, "--queue", "service")
    assert rc == 0 and [(e["kind"], e["call_id"]) for e in map(json.loads, out.splitlines())] == [
        ("call.queue", "a"), ("acd.decision", "a"), ("call.digit", "a"), ("call.end", "a")]
    rc, out, _ = events_cli(capsys, *journal, "--agent", "1002", "--kind", "call.")
    assert rc == 0 and [(e["kind"], e["call_id"]) for e in map(json.loads, out.splitlines())] == [
        ("call.digit", "b"), ("call.end", "b")]


@pytest.mark.unit
def test_the_table_shows_the_last_events_and_a_gap_where_a_run_was_killed(tmp_path, capsys):
    (tmp_path / "server.toml").write_text(CONFIG)
    first = run_server(tmp_path / "events.db", ["a"], killed=True)
    second = run_server(tmp_path / "events.db", ["b"])
    rc, out, _ = events_cli(capsys, "--config", str(tmp_path / "server.toml"), "--since", "0")
    lines = out.splitlines()
    assert rc == 0 and lines[0].split()[:3] == ["seq", "time", "(UTC)"]
    assert [ln.split()[0] for ln in lines[1:4]] == [str(s) for s in first]
    assert f"-- events {first[-1] + 1} to {second[0] - 1} are gone: the server was killed" in lines[4]
    assert lines[5].split()[0] == str(second[0]) and "call.start" in lines[5] and "hotline:0" in lines[5]
    rc, out, _ = events_cli(capsys, "--config", str(tmp_path / "server.toml"), "--last", "2")
    assert [ln.split()[0] for ln in out.splitlines()[1:]] == [str(s) for s in second[1:]]


@pytest.mark.unit
def test_errors_say_what_is_wrong(tmp_path, capsys):
    (tmp_path / "server.toml").write_text(CONFIG)
    rc, _, err = events_cli(capsys, "--config", str(tmp_path / "server.toml"))
    assert rc == 2 and "events.db: no such journal" in err
    (tmp_path / "bare.toml").write_text('[[boards]]\nuri = "sim://x"\n')
    rc, _, err = events_cli(capsys, "--config", str(tmp_path / "bare.toml"))
    assert rc == 2 and "has no [storage]" in err
    rc, _, err = events_cli(capsys)
    assert rc == 2 and "give --config" in err
    run_server(tmp_path / "events.db", ["a"])
    rc, out, err = events_cli(capsys, "--config", str(tmp_path / "server.toml"), "--since", "1000")
    assert rc == 0 and out.count("\n") == 1 and "no events after 1000" in err


def test_follow_prints_what_a_later_run_adds(tmp_path):
    """A separate `voiceboard events --follow` process sees a second server run's events."""
    (tmp_path / "server.toml").write_text(CONFIG)
    first = run_server(tmp_path / "events.db", ["a"])
    proc = subprocess.Popen([sys.executable, "-m", "boarddrv.cli", "events", "--config",
                             str(tmp_path / "server.toml"), "--since", str(first[-1]), "--json", "--follow"],
                            stdout=subprocess.PIPE, text=True)
    try:
        second = run_server(tmp_path / "events.db", ["b"])
        got: list[int] = []
        deadline = time.monotonic() + 60       # a guard against a wedged reader, not a timing check
        while len(got) < len(second) and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if line:
                got.append(json.loads(line)["seq"])
        assert got == second
    finally:
        proc.terminate()
        proc.wait(10)


def test_follow_goes_over_the_network_api_when_the_config_has_one(tmp_path):
    """[api] in the config: `voiceboard events --follow` prints the journal's backlog, then the
    live stream (the WebSocket, with the token from [api] token_file): every event once."""
    import asyncio

    from voiceserver.api.network import NetworkApi

    async def main() -> tuple[list[int], list[int]]:
        bus, j = EventBus(), EventJournal(str(tmp_path / "events.db"), "pbx1")
        bus.start_at(j.open())
        bus.subscribe(j, first=True)
        from voiceserver.api.token import ensure_token
        token = ensure_token(str(tmp_path / "admin-token"))      # as the server makes it
        api = await NetworkApi(bus, host="127.0.0.1", port=0, token=token,
                               journal=(str(tmp_path / "events.db"), "pbx1")).start()
        (tmp_path / "server.toml").write_text(CONFIG + f'\n[api]\nbind = "127.0.0.1:{api.port}"\n')
        backlog = [bus.publish(1, K.CALL_END, chan=0, call_id=f"old{i}", board="hotline").seq for i in range(3)]
        assert j.drain()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "boarddrv.cli", "events", "--config", str(tmp_path / "server.toml"),
            "--since", "0", "--follow", "--json", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        got: list[int] = []
        live: list[int] = []
        try:
            while len(got) < 3:
                line = await asyncio.wait_for(proc.stdout.readline(), 60)
                assert line.startswith(b"{"), (line, (await proc.stderr.read())[-2000:] if not line else b"")
                got.append(json.loads(line)["seq"])
            while api.stream.clients == 0:                    # now on the stream
                await asyncio.sleep(0.02)
            live = [bus.publish(2, K.CALL_END, chan=1, call_id=f"new{i}", board="hotline").seq for i in range(4)]
            while len(got) < 7:
                got.append(json.loads(await asyncio.wait_for(proc.stdout.readline(), 60))["seq"])
        finally:
            proc.terminate()
            await proc.wait()
            await api.close()
            j.close()
        return backlog + live, got
    sent, got = asyncio.run(main())
    assert got == sent
