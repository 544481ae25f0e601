"""Hot reload of recording rules: changes applied, bad files rejected, audit log lines."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from pathlib import Path

from boarddrv.tomlconfig import ConfigError
from voiceserver.recording.rules import RecordingRules, load_rules
from voiceserver.recording.watch import RulesWatcher, diff_rules

V1 = """\
min_seconds = 5
[exclude]
agents = "1001-1005"
[[window]]
name = "office"
days = "mon-fri"
from = "09:00"
to = "18:00"
"""

V2 = """\
min_seconds = 10
[exclude]
agents = "1001-1006,!1003"
channels = "hotline:0"
"""


class Clock:
    """Audit timestamps from a counter: the watcher never reads the real clock in a test."""

    def __init__(self) -> None:
        self.t = dt.datetime(2026, 11, 23, 2, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        self.t += dt.timedelta(seconds=1)
        return self.t


def rewrite(p: Path, text: str) -> None:
    """Write and move the mtime on: two writes within one mtime tick must still be seen."""
    before = p.stat().st_mtime_ns if p.exists() else 0
    p.write_text(text, encoding="utf-8")
    st = p.stat()
    os.utime(p, ns=(st.st_atime_ns, max(st.st_mtime_ns, before + 1_000_000)))


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def make(tmp_path: Path):
    p = tmp_path / "rules.toml"
    rewrite(p, V1)
    changes: list = []
    errors: list = []
    w = RulesWatcher(p, load_rules, lambda new, old, ev: changes.append((new, old, ev)),
                     lambda exc, ev: errors.append((exc, ev)), audit_path=tmp_path / "audit.jsonl",
                     clock=Clock())
    return p, w, changes, errors


def audit(tmp_path: Path) -> list[dict]:
    return [json.loads(x) for x in (tmp_path / "audit.jsonl").read_text().splitlines()]


def test_first_poll_loads_then_nothing_until_the_content_changes(tmp_path: Path):
    p, w, changes, errors = make(tmp_path)
    ev = w.poll()
    assert ev is not None and ev.ok and ev.seq == 1 and ev.source == "start"
    assert isinstance(w.current, RecordingRules) and w.current.min_seconds == 5
    assert w.poll() is None
    rewrite(p, V1)            # touched: same content
    assert w.poll() is None
    assert len(changes) == 1 and errors == []


def test_valid_change_is_applied_with_a_readable_diff(tmp_path: Path):
    p, w, changes, _ = make(tmp_path)
    w.poll()
    first = w.current
    rewrite(p, V2)
    ev = w.poll()
    assert ev is not None and ev.ok and ev.seq == 2 and ev.source == "file watch"
    assert w.current is not first and w.current.min_seconds == 10
    assert changes[-1][1] is first and changes[-1][0] is w.current
    assert [c.text() for c in ev.changes] == [
        "changed exclude.agents: 1001-1005 -> 1001-1006,!1003",
        "added exclude.channels = hotline:0",
        "changed min_seconds: 5 -> 10",
        "removed window.office (was mon,tue,wed,thu,fri 09:00-18:00)",
    ]
    assert ev.hash_before == sha(V1) and ev.hash_after == sha(V2)
    assert ev.summary().startswith("recording rules reload #2 (file watch) applied: changed "
                                   "exclude.agents: 1001-1005 -> 1001-1006,!1003; added "
                                   "exclude.channels = hotline:0; ")


def test_invalid_change_is_rejected_and_the_running_rules_stay(tmp_path: Path):
    p, w, changes, errors = make(tmp_path)
    w.poll()
    running = w.current
    bad = V1.replace('agents = "1001-1005"', 'agents = "1005-1001"')
    rewrite(p, bad)
    ev = w.poll()
    assert ev is not None and not ev.ok and w.current is running
    assert ev.error == f"{p}:3: key 'exclude.agents': range '1005-1001' runs backwards"
    assert isinstance(errors[-1][0], ConfigError) and errors[-1][1] is ev
    assert ev.summary() == (f"recording rules reload #2 (file watch) rejected, running rules "
                            f"kept: {ev.error}")
    assert w.poll() is None                 # the same bad file is reported once
    assert len(errors) == 1
    rewrite(p, V2)                          # fixed: applied, diffed against the running rules
    ev = w.poll()
    assert ev is not None and ev.ok and ev.hash_before == sha(V1)
    assert "changed min_seconds: 5 -> 10" in [c.text() for c in ev.changes]


def test_command_reload_and_a_vanished_file(tmp_path: Path):
    p, w, _, errors = make(tmp_path)
    w.poll()
    ev = w.reload()
    assert ev.ok and ev.source == "command" and ev.changes == () and ev.seq == 2
    assert ev.summary() == "recording rules reload #2 (command) applied: no rule changed"
    p.unlink()
    ev = w.poll()
    assert ev is not None and not ev.ok and "cannot read config" in (ev.error or "")
    assert w.current is not None and w.current.min_seconds == 5


def test_audit_log_has_one_json_line_per_reload(tmp_path: Path):
    p, w, _, _ = make(tmp_path)
    w.poll()
    rewrite(p, "min_seconds = -1\n")
    w.poll()
    rewrite(p, V2)
    w.poll()
    lines = audit(tmp_path)
    assert [(x["seq"], x["source"], x["result"]) for x in lines] == [
        (1, "start", "applied"), (2, "file watch", "rejected"), (3, "file watch", "applied")]
    assert [x["time"] for x in lines] == ["2026-11-23T02:00:01+00:00", "2026-11-23T02:00:02+00:00",
                                          "2026-11-23T02:00:03+00:00"]
    assert lines[0]["hash_before"] == "" and lines[0]["hash_after"] == sha(V1)
    assert {c["key"] for c in lines[0]["changes"]} >= {"exclude.agents", "window.office"}
    assert lines[1]["changes"] == [] and "min_seconds" in lines[1]["error"]
    assert lines[1]["hash_before"] == sha(V1) and lines[1]["hash_after"] == sha("min_seconds = -1\n")
    assert lines[2]["hash_before"] == sha(V1) and lines[2]["hash_after"] == sha(V2)
    assert {"change": "changed", "key": "min_seconds", "before": "5", "after": "10",
            "text": "changed min_seconds: 5 -> 10"} in lines[2]["changes"]


def test_watcher_started_with_running_rules_reports_only_changes(tmp_path: Path):
    p = tmp_path / "rules.toml"
    rewrite(p, V1)
    w = RulesWatcher(p, load_rules, current=load_rules(p), clock=Clock())
    assert w.poll() is None
    rewrite(p, V2)
    ev = w.poll()
    assert ev is not None and ev.ok and ev.seq == 1 and ev.hash_before == sha(V1)


def test_diff_of_identical_rules_is_empty(tmp_path: Path):
    p = tmp_path / "r.toml"
    rewrite(p, V1)
    assert diff_rules(load_rules(p), load_rules(p)) == []


def test_poll_async_loads_in_a_worker_thread_while_the_loop_goes_on(tmp_path: Path):
    """The server's loop keeps running (calls, ticks) while a large rules file loads."""
    import asyncio
    import threading
    p = tmp_path / "rules.toml"
    rewrite(p, V1)
    numbers = ",\n".join(f'"1380{i:07d}"' for i in range(50000))
    order: list[str] = []
    loading, go_on = threading.Event(), threading.Event()

    def load(path: str) -> RecordingRules:
        if "numbers" in Path(path).read_text():
            order.append("load begins")
            loading.set()
            if not go_on.wait(60):     # a guard: only the loop can let it go on
                order.append("the loop never ran during the load")
            rules = load_rules(path)
            order.append("load ends")
            return rules
        return load_rules(path)

    changes: list = []
    w = RulesWatcher(p, load, lambda new, old, ev: changes.append(ev), clock=Clock())

    async def main() -> None:
        assert (await w.poll_async()).ok
        rewrite(p, V1.replace("[exclude]\n", f"[exclude]\nnumbers = [\n{numbers}\n]\n"))
        task = asyncio.create_task(w.poll_async())
        while not loading.is_set():
            await asyncio.sleep(0.001)
        order.append("the loop ticks")
        go_on.set()
        ev = await task
        order.append("applied on the loop")
        assert ev.ok and changes[-1] is ev and threading.current_thread() is threading.main_thread()

    asyncio.run(main())
    assert order == ["load begins", "the loop ticks", "load ends", "applied on the loop"]
    listed, = [lr for lr in w.current.exclude if lr.numbers is not None]
    assert len(listed.numbers.positive.exact) == 50000
