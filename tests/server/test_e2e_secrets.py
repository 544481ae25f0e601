"""Secrets stay secret, end to end: hwsim as a separate lockstep process, the server in this
one with its real call database, recorder, event log and views.

Line 0: a caller types an account number into the account menu, which the recording rules
pause in (`pause_while_collecting = ["account"]`). Line 1 (not recorded: excluded): a caller
goes to the queue; the agent keys `*9` (a [[pause_dtmf]] rule) and the caller types a card
number and `#`. Neither number may appear anywhere the server puts things: the SQLite file,
`voiceboard calls` CSV / XLSX / JSON, the /channels view while the keys are typed, the
events, the server's log, the demo's live table and summary, and the memory reachable from
the server once the calls have ended.
"""
from __future__ import annotations

import io
import json
import logging
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

CONFIGS = Path(__file__).resolve().parent / "configs"
REPO = Path(__file__).resolve().parents[2]
ACCOUNT = "90817263"
CARD = "4111222233334444"
SECRETS = (ACCOUNT, CARD)

pytestmark = pytest.mark.skipif(shutil.which("sox") is None,
                                reason="the recording config this uses needs sox installed "
                                       "(Debian: apt-get install sox)")

SCENARIO = f"""
[scenario]
duration = 120.0
seed = 9

[[agent]]                          # chen: answers, keys *9 to protect the card, hangs up
phones = "hotline_e2e:5"
answer_after = 2.0
script = [{{ after = 1.0, digits = "*9" }}, {{ after = 12.0, hangup = true }}]

[[caller]]                         # 1: account entry, types the account number
at = 1.0
line = "hotline_e2e:0"
number = "13911110000"
script = [{{ after_silence = 0.6, digits = "1" }},
          {{ after_silence = 0.6, digits = "{ACCOUNT}" }}]

[[caller]]                         # 0: the queue; reads the card number to the agent's *9
at = 1.0
line = "hotline_e2e:1"
number = "13911110001"
hangup_after = 60.0
script = [{{ after_silence = 0.6, digits = "0" }},
          {{ after = 8.0, digits = "{CARD}#" }}]
"""

RULES = """
[recording]
layout = "stereo"
pause_while_collecting = ["account"]

[recording.exclude]
channels = ["hotline:1"]           # the card call is not recorded: masking does not need it

[[recording.pause_dtmf]]
name = "card"
start = "*9"
stop = "#"
max_digits = 19
timeout_seconds = 30
"""


def leaks(text: str | bytes) -> list[str]:
    """Which secret numbers `text` holds."""
    if isinstance(text, bytes):
        return [s for s in SECRETS if s.encode() in text]
    return [s for s in SECRETS if s in text]


def calls_cli(db: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "VOICEBOARD_CALLS_DB"}
    p = subprocess.run([sys.executable, "-m", "voiceserver.cli.calls", f"--db={db}", *args],
                       capture_output=True, text=True, timeout=60, env=env, cwd=REPO)
    assert p.returncode == 0, p.stderr
    return p


def test_secret_keys_appear_nowhere(e2e, tmp_path, monkeypatch, caplog, capsys,
                                    reachable_strings):
    from rich.console import Console

    import voiceserver.core.server
    from voiceserver.api.status import StatusApi, response
    from voiceserver.cli.serve import _table, demo_summary, print_summary
    from voiceserver.core.events import EventLog
    from voiceserver.core.masking import MASK

    seen: list[dict] = []      # at every key: /channels as served, and the demo's table
    event_lines = io.StringIO()   # the event lines `voiceboard serve` writes into its log
    event_log = EventLog(event_lines)

    def on_event(server, ev) -> None:
        if ev.kind != "call.digit":
            return
        api = StatusApi(queues=list, agents=list, channels=server.channel_rows)
        status, body = api.handle("GET", "/channels")
        table = io.StringIO()
        Console(file=table, width=200).print(_table(server))
        seen.append({"body": body, "http": response(status, body), "table": table.getvalue()})

    class Watched(voiceserver.core.server.VoiceServer):
        def __init__(self, *a, **kw) -> None:
            super().__init__(*a, **kw)
            self.bus.subscribe(event_log)                        # the log `voiceboard serve` writes
            self.bus.subscribe(lambda ev: on_event(self, ev))

    monkeypatch.setattr(voiceserver.core.server, "VoiceServer", Watched)
    caplog.set_level(logging.DEBUG)
    config = tmp_path / "server.toml"
    config.write_text((CONFIGS / "server-recording.toml").read_text() + RULES)
    run = e2e.run(scenario=SCENARIO, server_config=str(config), max_sim_seconds=90,
                  until=lambda s: len(s.records) >= 2 and e2e.all_idle(s), rules_poll=0)
    server = run.server
    heard = {c["channel"]: c for c in run.calls if c["direction"] == "in"}
    assert heard[0]["digits"][-1]["digits"] == ACCOUNT          # the keys were typed ...
    assert heard[1]["digits"][-1]["digits"] == CARD + "#"
    assert [d["digits"] for d in heard[5]["digits"]] == ["*9"]
    by_chan = {r.chan: r for r in server.records}
    acc, card = by_chan[0], by_chan[1]

    # -- events: each secret key published as one MASK, flagged; the others in clear
    journal = json.dumps([e.as_dict() for e in server.bus.journal], default=str)
    assert leaks(journal) == []

    def keys(events: list[dict]) -> dict[int, list[tuple[str, bool]]]:
        """The keys of call.digit events by channel (a number comes one event per key)."""
        out: dict[int, list[tuple[str, bool]]] = {}
        for e in events:
            if e["kind"] == "call.digit":
                out.setdefault(e["chan"], []).append((e["digit"], e.get("masked")))
        return out
    expected = {0: [("1", False)] + [(MASK, True)] * 8,
                1: [("0", False)] + [(MASK, True)] * 17,     # the card and its "#"
                5: [("*", False), ("9", False)]}             # the agent's *9: in clear
    assert keys(json.loads(journal)) == expected
    # the account call was recorded, paused while collecting; the card call not recorded
    assert [e.call_id for e in run.events("recording.paused")] == [acc.call_id]
    assert not [e for e in run.events("recording.decision")
                if e.call_id == card.call_id and e.data["record"]]

    # -- the call records (memory and SQLite): the path says what was typed, masked
    assert f"input:account={MASK * 8}" in acc.ivr_path
    assert acc.digits == "1" + MASK * 8 and card.digits == "0" + MASK * 17
    db = run.workdir / "calls.db"
    for f in (db, Path(f"{db}-wal"), Path(f"{db}-journal")):
        if f.exists():
            assert leaks(f.read_bytes()) == [], f
    from voiceserver.recording.calldb import CallDb
    with CallDb(db) as cdb:
        rows = {r["call_id"]: r for r in cdb.query("SELECT call_id, ivr_path, digits_count FROM calls")}
    assert f"input:account={MASK * 8}" in json.loads(rows[acc.call_id]["ivr_path"])
    assert rows[acc.call_id]["digits_count"] == 9                  # the count of keys stays

    # -- voiceboard calls: CSV, XLSX, JSON
    csv_text = calls_cli(db, "--csv", "-").stdout
    assert f"account={MASK * 8}" in csv_text and leaks(csv_text) == []
    xlsx = tmp_path / "calls.xlsx"
    calls_cli(db, "--xlsx", str(xlsx))
    with zipfile.ZipFile(xlsx) as z:
        xml = "".join(z.read(n).decode("utf-8", "replace") for n in z.namelist())
    assert f"account={MASK * 8}" in xml and leaks(xml) == []
    assert leaks(calls_cli(db, "--json").stdout) == []

    # -- /channels and the demo's live table, at every key: masked while the keys came
    assert len(seen) == len(run.events("call.digit"))
    for snap in seen:
        assert leaks(snap["http"]) == [] and leaks(snap["table"]) == []
    typing = [r for s in seen for r in s["body"]["channels"]
              if r["chan"] == 0 and r["menu"] == "menu:account" and r["digits"].count(MASK) == 4]
    assert typing and typing[0]["digits"] == "1" + MASK * 4     # half-way through the account
    assert any(f"1{MASK * 4}" in s["table"] for s in seen)
    assert any(r["chan"] == 1 and r["digits"] == "0" + MASK * 8
               for s in seen for r in s["body"]["channels"])    # half-way through the card

    # -- the server's log (every logger, every level): the events, masked
    event_log.flush()
    log_text = "\n".join(r.getMessage() for r in caplog.records) + "\n" + event_lines.getvalue()
    assert leaks(log_text) == []
    logged = [json.loads(m.split(" INFO event ", 1)[1]) for m in event_lines.getvalue().splitlines()]
    assert logged, "no event lines were written"
    assert keys(logged) == expected

    # -- the demo's summary table
    capsys.readouterr()
    print_summary(demo_summary(server, 1.0))
    summary = capsys.readouterr().out
    assert MASK * 8 in summary and leaks(summary) == []

    # -- memory: nothing reachable from the server holds a number once the calls ended
    held = reachable_strings(server)
    assert any("13911110001" in s for s in held)                  # the walk does reach the calls
    assert [s for s in held if leaks(s)] == []
