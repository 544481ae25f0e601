"""[storage] in the server config, and the admin API's recording actions (no I/O)."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from boarddrv.tomlconfig import ConfigError
from voiceserver.api.status import StatusApi
from voiceserver.config.server import load_config

MINIMAL = """\
[[boards]]
uri = "sim://hotline"

[channels]
inbound = "hotline:0-3"
agents = "hotline:4-7"

[ivr]
default_flow = "day"

[ivr.flows.day]
start = "main"

[ivr.menus.main]
greeting = ["welcome"]

[ivr.menus.main.options]
"1" = { action = "hangup" }
"""


def write(tmp_path: Path, text: str, name: str = "server.toml") -> Path:
    p = tmp_path / name
    p.write_text(MINIMAL + textwrap.dedent(text), encoding="utf-8")
    return p


def error(tmp_path: Path, text: str) -> ConfigError:
    return pytest.raises(ConfigError, load_config, write(tmp_path, text)).value


def test_no_storage_and_no_recording_stores_nothing(tmp_path):
    assert load_config(write(tmp_path, "")).storage is None


def test_storage_paths_are_relative_to_the_config_file(tmp_path):
    (tmp_path / "etc").mkdir()
    cfg = load_config(write(tmp_path, """
        [storage]
        recordings = "../var/rec"
        database = "/srv/vb/calls.db"
        template = "{call_id}_{caller}"
        """, "etc/server.toml"))
    st = cfg.storage
    assert st.recordings == str(tmp_path / "var" / "rec")
    assert st.database == "/srv/vb/calls.db"
    assert st.voicemail == str(tmp_path / "etc" / "voicemail")          # defaults next to the file
    assert st.rules_audit == str(tmp_path / "etc" / "rules-audit.jsonl")
    assert st.template == "{call_id}_{caller}" and st.explicit
    assert cfg.recording is None and cfg.warnings == ()


def test_recording_without_storage_gets_default_storage_and_a_warning(tmp_path):
    cfg = load_config(write(tmp_path, '\n[recording]\nlayout = "mono"\n'))
    st = cfg.storage
    assert st is not None and not st.explicit
    assert (st.recordings, st.database) == (str(tmp_path / "recordings"), str(tmp_path / "calls.db"))
    warning, = cfg.warnings
    assert "key 'recording'" in warning and "[recording] without [storage]" in warning
    assert str(tmp_path / "recordings") in warning and str(tmp_path / "calls.db") in warning


def test_the_event_journal_lives_with_the_storage(tmp_path):
    st = load_config(write(tmp_path, '\n[storage]\nevents_keep = 5000\n')).storage
    assert (st.events, st.events_keep) == (str(tmp_path / "events.db"), 5000)
    st = load_config(write(tmp_path, '\n[storage]\nevents = "/srv/vb/ev.db"\n')).storage
    assert (st.events, st.events_keep) == ("/srv/vb/ev.db", 1_000_000)
    e = error(tmp_path, '\n[storage]\nevents_keep = 10\n')
    assert e.key == "storage.events_keep" and "1000" in e.message
    (tmp_path / "evdir").mkdir()
    e = error(tmp_path, '\n[storage]\nevents = "evdir"\n')
    assert e.key == "storage.events" and "is a directory" in e.message


def test_storage_errors_name_file_line_and_key(tmp_path):
    lines = MINIMAL.count("\n") + 2        # [storage] is the first line after MINIMAL + a blank
    e = error(tmp_path, '\n[storage]\nrecording = "rec"\n')
    assert (e.key, e.line) == ("storage.recording", lines + 1)
    assert "unknown key (did you mean 'recordings'?)" in e.message
    e = error(tmp_path, '\n[storage]\ntemplate = "{date}/{call_id}"\n')
    assert e.key == "storage.template" and "a file name, not a path" in e.message
    e = error(tmp_path, '\n[storage]\ntemplate = "{callid}"\n')
    assert e.key == "storage.template" and "unknown placeholder {callid}" in e.message
    (tmp_path / "adir").mkdir()
    e = error(tmp_path, '\n[storage]\ndatabase = "adir"\n')
    assert e.key == "storage.database" and "is a directory" in e.message
    (tmp_path / "afile").write_text("x")
    e = error(tmp_path, '\n[storage]\nrecordings = "afile"\n')
    assert e.key == "storage.recordings" and "is not a directory" in e.message
    e = error(tmp_path, '\n[storage]\nrecordings = "x"\nvoicemail = "x"\n')
    assert e.key == "storage.voicemail" and "directory of its own" in e.message
    e = error(tmp_path, '\n[storage]\ndatabase = ""\n')
    assert e.key == "storage.database" and "empty" in e.message
    e = error(tmp_path, '\n[storage]\ndatabase = 3\n')
    assert e.key == "storage.database"
    assert str(e).startswith(f"{tmp_path / 'server.toml'}:{lines + 1}: key 'storage.database': ")


def test_admin_actions_on_a_target() -> None:
    seen = []

    def pause(target: str):
        seen.append(target)
        if target == "c9":
            raise LookupError("no call 'c9' in progress (give a call id or BOARD:CHANNEL)")
        return {"call_id": target, "paused": True}

    api = StatusApi(queues=list, agents=list, channels=list, admin={"reload": dict},
                    admin_arg={"record-pause": pause})
    assert api.handle("GET", "/")[1]["admin"] == ["/admin/reload", "/admin/record-pause/TARGET"]
    assert api.handle("POST", "/admin/record-pause/c000012") == (200, {"call_id": "c000012",
                                                                      "paused": True})
    assert api.handle("POST", "/admin/record-pause/hotline%3A0")[1]["call_id"] == "hotline:0"
    assert api.handle("GET", "/admin/record-pause/c1")[0] == 405
    status, body = api.handle("POST", "/admin/record-pause/c9")
    assert status == 404 and body["error"].startswith("no call 'c9' in progress")
    status, body = api.handle("POST", "/admin/record-pause")
    assert status == 400 and "needs a target" in body["error"]
    assert api.handle("POST", "/admin/reload/x")[0] == 404      # plain actions take no target
    assert seen == ["c000012", "hotline:0", "c9"]


def test_inline_rules_are_watched_in_the_server_config_itself(tmp_path):
    """[recording] inline: the rules watcher polls the server config and applies only its rules."""
    import datetime as dt
    import json
    from types import SimpleNamespace

    from voiceserver.core.events import EventBus
    from voiceserver.recording.service import RecordingService

    path = write(tmp_path, '\n[recording]\nmin_seconds = 3\n')
    cfg = load_config(path)
    server = SimpleNamespace(cfg=cfg, bus=EventBus(), boards=[], tick=0, server_id="pbx1",
                             start_time=dt.datetime(2026, 11, 23, 2, tzinfo=dt.UTC))
    svc = RecordingService(server, cfg.storage, cfg.recording)
    svc._watch(cfg.recording, None, "start")
    assert svc.watcher.path == str(path) and svc.rules.min_seconds == 3
    assert svc.poll_rules() is None                                  # unchanged
    path.write_text(path.read_text().replace("min_seconds = 3", "min_seconds = 7"))
    ev = svc.poll_rules()
    assert ev.ok and [c.text() for c in ev.changes] == ["changed min_seconds: 3 -> 7"]
    assert svc.rules.min_seconds == 7
    path.write_text(path.read_text().replace("min_seconds = 7", "min_secs = 7"))
    ev = svc.poll_rules()
    assert not ev.ok and "recording.min_secs" in ev.error and svc.rules.min_seconds == 7
    path.write_text(path.read_text().replace("\n[recording]\nmin_secs = 7\n", "\n"))
    ev = svc.poll_rules()
    assert not ev.ok and "the [recording] section is gone" in ev.error
    # an operator's reload of the config without [recording]: recording is off, and audited
    svc.config_reloaded(load_config(path))
    assert svc.rules is None
    audit = [json.loads(line) for line in Path(cfg.storage.rules_audit).read_text().splitlines()]
    assert [(a["source"], a["result"]) for a in audit] == [
        ("start", "applied"), ("file watch", "applied"), ("file watch", "rejected"),
        ("file watch", "rejected"), ("command", "applied")]
    assert [c["text"] for c in audit[-1]["changes"]] == [f"removed recording (was the rules of {path})"]
    kinds = [e.kind for e in server.bus.journal]
    assert kinds == ["recording.rules_reloaded", "recording.rules_reloaded",
                     "recording.rules_rejected", "recording.rules_rejected",
                     "recording.rules_removed"]


def test_start_up_repairs_stray_part_files_in_the_voicemail_tree_too(tmp_path):
    """A .part file no row knows (say, the database was replaced) is repaired in either root."""
    import datetime as dt
    from types import SimpleNamespace

    import numpy as np

    from voiceserver.core.events import EventBus
    from voiceserver.recording.service import RecordingService
    from voiceserver.recording.wavfile import PART, header

    cfg = load_config(write(tmp_path, "\n[storage]\n"))
    st = cfg.storage
    strays = [Path(st.recordings) / "2026/11/23/a.wav", Path(st.voicemail) / "sales/2026/11/23/m.wav"]
    for p in strays:
        p.parent.mkdir(parents=True)     # a header still saying 0 bytes, as a crash leaves it
        Path(str(p) + PART).write_bytes(header("pcm16", 1) + np.arange(800, dtype="<i2").tobytes())
    server = SimpleNamespace(cfg=cfg, bus=EventBus(), boards=[], tick=0, server_id="pbx1",
                             start_time=dt.datetime(2026, 11, 23, 2, tzinfo=dt.UTC))
    svc = RecordingService(server, st, None)
    svc.open()
    try:
        assert sorted(r["path"] for r in svc.recovered) == sorted(str(p) for p in strays)
        assert all(r["status"] == "kept" and r["duration"] == 0.1 for r in svc.recovered)
        assert all(p.exists() and not Path(str(p) + PART).exists() for p in strays)
    finally:
        svc.close()
