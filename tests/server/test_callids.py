"""Call ids (SERVER-RUN-SEQ), the server id's lock on a database, and crash recovery of call
rows that stays with its own server's rows (voiceserver.core.callids, voiceserver.recording.recorder)."""
from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from voiceserver.config.server import load_config
from voiceserver.core.callids import (
    CallIds,
    ServerIdInUse,
    check_server_id,
    claim_server_id,
    default_server_id,
    lock_path,
)
from voiceserver.recording.calldb import CRASHED, CallDb, CallRow, iso
from voiceserver.recording.recorder import recover_calls, recover_files

T0 = dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.UTC)


def at(s: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=s)


def test_ids_hold_server_run_and_sequence():
    ids = CallIds("pbx1", 12)
    assert [ids.next() for _ in range(3)] == ["pbx1-12-000001", "pbx1-12-000002", "pbx1-12-000003"]
    assert CallIds.without_database("pbx1", T0).next() == "pbx1-t20261123093000-000001"
    assert check_server_id(default_server_id()) == default_server_id()
    for bad in ("", "-x", "a b", "x" * 33, "päx", "a/b"):
        with pytest.raises(ValueError, match="server id"):
            CallIds(bad, 1)


def test_storage_server_id_in_the_config(tmp_path):
    base = textwrap.dedent("""
        [[boards]]
        uri = "sim://x"
        name = "x"
        [channels]
        inbound = "x:0"
        [ivr]
        default_flow = "main"
        [ivr.flows.main]
        start = "bye"
        [ivr.actions.bye]
        action = "hangup"
        [storage]
        """)
    cfg = tmp_path / "server.toml"
    cfg.write_text(base + 'server_id = "east-1"\n')
    assert load_config(cfg).storage.server_id == "east-1"
    cfg.write_text(base)
    assert load_config(cfg).storage.server_id is None     # the host name, at start
    cfg.write_text(base + 'server_id = "east 1"\n')
    with pytest.raises(Exception, match=r"server.toml:\d+: .*server_id.*1 to 32 letters"):
        load_config(cfg)


HOLDER = """
import sys, time
from voiceserver.core.callids import claim_server_id
lock = claim_server_id(sys.argv[1], sys.argv[2])
print("held", flush=True)
time.sleep(600)
"""


def test_one_running_server_per_server_id_and_database(tmp_path):
    """Another process holds the id: refused, naming it; after its kill -9 the id is free."""
    db = str(tmp_path / "calls.db")
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, db, "east"], stdout=subprocess.PIPE,
                              text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ServerIdInUse, match=rf"server id 'east' is in use by a running voice server "
                                                rf"\(pid {holder.pid} on .*lock {lock_path(db, 'east')}\); "
                                                rf"give each server .* its own \[storage\] server_id"):
            claim_server_id(db, "east")
        claim_server_id(db, "west").close()        # another id on the same database: fine
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        claim_server_id(db, "east").close()        # the kernel released the dead server's lock
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(10)


def test_recovery_completes_only_its_own_servers_calls_with_an_estimated_end(tmp_path):
    """East crashed; west is running and writing the same database: east's start must not
    end west's calls or take its files."""
    root = tmp_path / "recordings"
    (root / "2026").mkdir(parents=True)
    db = CallDb(tmp_path / "calls.db")
    east = dict(server_id="east", run=1)
    west = dict(server_id="west", run=4)
    db.upsert_call(CallRow("east-1-000001", start=at(0), answer=at(2), board="b", channel=1,
                           agent="chen", queue="service", ivr_path=["menu:main", "queue:service"],
                           last_seen=at(40), **east), new=True)
    db.upsert_call(CallRow("east-1-000002", start=at(30), board="b", channel=2, **east), new=True)
    db.upsert_call(CallRow("west-4-000001", start=at(0), answer=at(1), board="w", channel=1,
                           last_seen=at(45), **west), new=True)
    west_file = root / "2026" / "west-4-000001.wav"
    db.begin_recording(CallRow("west-4-000001", **west), path=str(west_file), fmt="pcm16",
                       layout="mono", started=at(1))
    west_file.with_name(west_file.name + ".part").write_bytes(b"\0" * 44)  # being written by west

    assert recover_files(root, db, "east") == []          # west's recording is not east's to touch
    assert west_file.with_name(west_file.name + ".part").exists()
    done = recover_calls(db, "east")
    assert {d["call_id"] for d in done} == {"east-1-000001", "east-1-000002"}
    a, b, w = (db.call(c) for c in ("east-1-000001", "east-1-000002", "west-4-000001"))
    # the end: the last time the call was seen going (else its answer, else its start)
    assert (a["end"], a["disposition"], a["duration"]) == (iso(at(40)), CRASHED, 38.0)
    assert (a["agent"], a["queue"], a["ivr_path"]) == ("chen", "service", ["menu:main", "queue:service"])
    assert (b["end"], b["disposition"]) == (iso(at(30)), CRASHED)
    assert w["end"] is None and db.recordings("west-4-000001")[0].status == "recording"
    db.close()


def test_the_writer_refuses_a_second_call_under_one_id_and_raises_an_alarm(tmp_path):
    """The server's writes go through the recorder's writer thread: a new call whose id is
    taken is an alarm, and the row stays the first call's."""
    import numpy as np

    from voiceserver.recording.recorder import Recorder
    db = CallDb(tmp_path / "calls.db")
    db.upsert_call(CallRow("x-1-000001", start=at(0), caller="100", server_id="x", run=1), new=True)
    rec = Recorder(db, tmp_path / "recordings", nchan=2, block=160)
    rec.log_call(CallRow("x-1-000001", start=at(9), caller="200", server_id="x", run=1), new=True)
    rec.log_call(CallRow("x-1-000002", start=at(9), caller="300", server_id="x", run=1), new=True)
    silence = np.zeros((2, 160), np.int16)
    rec.capture(1, silence, silence)          # commands reach the writer at a tick boundary
    assert rec.flush() and rec.close()
    failed, = [e for e in rec.events() if e.kind == "recording.failed"]
    assert failed.alarm and failed.call_id == "x-1-000001"
    assert "database error storing the call record: " in failed.detail["reason"]
    assert "call id x-1-000001 is already the call of server x run 1" in failed.detail["reason"]
    assert db.call("x-1-000001")["caller"] == "100" and db.call("x-1-000002")["caller"] == "300"
    db.close()
