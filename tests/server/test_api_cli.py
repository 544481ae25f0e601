"""`voiceboard events --follow --user NAME`: the stream as that [[api.user]] sees it, from the API alone.

An agent user's `voiceboard events` prints only its own events (the server
filters them: apikit's server on a real loopback socket, the CLI a real
process); it never reads the journal file (whose every event the server's
user may read), so it needs no [storage] in the config.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from apikit import TOKENS, K, LiveApi


def test_an_agent_user_follows_its_own_events_only(tmp_path):
    with LiveApi(tmp_path) as live:
        (tmp_path / "a1001-token").write_text(TOKENS["a1001"] + "\n")
        (tmp_path / "a1001-token").chmod(0o600)
        cfg = tmp_path / "server.toml"
        cfg.write_text(f'[api]\nbind = "127.0.0.1:{live.port}"\n'
                       f'[[api.user]]\nname = "a1001"\nrole = "agent"\nagent = "1001"\ntoken_file = "a1001-token"\n')
        proc = subprocess.Popen([sys.executable, "-m", "boarddrv.cli", "events", "--config", str(cfg), "--follow",
                                 "--user", "a1001", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env={**os.environ, "PYTHONPATH": os.getcwd()}, text=True)
        try:
            deadline = time.monotonic() + 60                  # a guard, not a timing check
            while live.api.stream.clients == 0:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
                time.sleep(0.02)

            def calls() -> None:
                live.book.offer("theirs", "1002")
                live.book.offer("mine", "1001")
                live.bus.publish(0, K.SPAN_ALARM, board="b", span=1, alarm="LOS", set=True)
                live.book.hang_up("theirs", "x")
                live.book.hang_up("mine", "y")
            live.on_loop(calls)
            got = [json.loads(proc.stdout.readline()) for _ in range(2)]
        finally:
            proc.terminate()
            proc.wait(10)
    assert [(e["kind"], e["call_id"]) for e in got] == [("acd.decision", "mine"), ("call.end", "mine")]


def test_user_needs_follow_and_config(tmp_path, capsys):
    from voiceserver.cli import events
    with pytest.raises(SystemExit) as exc:
        events.main(["--user", "a1001", "--journal", str(tmp_path / "x.db")])
    assert exc.value.code == 2
    assert "--user goes with --follow and --config" in capsys.readouterr().err
