"""E1 China No.1 calls from hwsim's exchange into `voiceboard serve`, both real processes.

hwsim (lockstep) runs E1 CAS spans with its own China No.1 exchange behind
every channel (hwsim/r2far.py: its R2 side, written apart from the
server's); the server takes the calls on an `[r2.groups]` trunk group and
runs the IVR the DNIS names. bench/r2_load.py builds both configs and the
callers and accounts for every call in the call database; these are its
small runs: a short busy hour on 2 spans, and a 30-channel span taking 30
calls at the same moment (with `voiceboard r2trace` reading the running
server's events over the network API).
"""
from __future__ import annotations

import json
import shutil
import socket
import sqlite3
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

import r2_load  # noqa: E402

MF_BACK_CYCLE = 2.0        # s: China No.1's compelled-cycle timer (OpenR2's default, cn.toml)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_short_busy_hour_on_two_spans_accounts_for_every_call(tmp_path):
    r = r2_load.run(spans=2, rate=3.0, minutes=1.0, seed=5, work=tmp_path)
    assert r["offered"] > 120
    assert r["missing"] == [] and r["doubled"] == [] and r["wrong_dnis_or_category"] == []
    assert r["orphans"] == [] and r["not_ended"] == []
    assert r["rows"] == r["offered"] == r["accounted"]
    assert r["exchange_results"] == {"answer": r["offered"]}       # every call accepted and answered
    assert r["reasons"] == {"ivr": r["offered"]}                   # ... and ended by the IVR's hang-up
    assert r["register_calls"] == r["offered"]
    assert r2_load.ok(r)


def test_thirty_simultaneous_calls_on_one_span_and_r2trace_from_the_live_server(tmp_path, capsys):
    """30 seizures in the same tick on a 30-channel span: every call's DNIS, ANI and category are
    collected with no compelled-cycle wait longer than the variant's timer, and in about the time
    one call alone takes; then r2trace reads a call's signals from the server over its API."""
    from voiceserver.cli import r2trace
    port = free_port()
    traced: dict[str, list] = {}

    def while_up(work: Path) -> None:
        # "another machine": the config and the admin's token without the server's journal beside them
        remote = tmp_path / "remote"
        remote.mkdir()
        shutil.copy(work / "server.toml", remote / "server.toml")
        shutil.copy(work / "admin-token", remote / "admin-token")
        (remote / "admin-token").chmod(0o600)
        assert not (remote / "events.db").exists()
        capsys.readouterr()
        assert r2trace.main(["--config", str(remote / "server.toml"), "--json"]) == 0
        traced["last"] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        call_id = traced["last"][0]["call_id"]
        assert r2trace.main(["--api", f"http://127.0.0.1:{port}", "--token-file", str(work / "admin-token"),
                             call_id]) == 0
        traced["table"] = capsys.readouterr().out.splitlines()
        assert r2trace.main(["--api", f"http://127.0.0.1:{port}", "--token-file", str(work / "admin-token"),
                             "no-such-call", "--wait", "1"]) == 2
        traced["none"] = capsys.readouterr().err
        (tmp_path / "bad-token").write_text("x" * 43 + "\n")      # a token, not the server's
        (tmp_path / "bad-token").chmod(0o600)
        assert r2trace.main(["--api", f"http://127.0.0.1:{port}", "--token-file",
                             str(tmp_path / "bad-token")]) == 2
        traced["refused"] = capsys.readouterr().err

    r = r2_load.run(spans=1, rate=1.0, minutes=0.5, seed=2, work=tmp_path, simultaneous=30,
                    api_port=port, while_up=while_up)
    assert r["offered"] == 30 and r2_load.ok(r), r
    assert r["exchange_results"] == {"answer": 30}
    assert r["register_calls"] == 30
    assert r["register_longest_wait_seconds"] <= MF_BACK_CYCLE + 0.2
    # one call alone: ~4.1 s (11 ANI and 5 DNIS digits, then the end-of-DNIS timeout); 30 at once, no slower
    assert r["register_seconds"]["max"] <= 4.5, r["register_seconds"]

    rows = traced["last"]
    assert rows[0]["dir"] == "rx" and rows[0]["signal"] == "0011"        # the exchange's seizure
    assert any(x["signal"] == "MF 6" and x["dir"] == "tx" for x in rows)  # send the category
    offer = next(x for x in rows if x.get("event") == "call.offer")
    assert offer["detail"]["dnis"] in r2_load.NUMBERS and offer["detail"]["ani"].startswith("139")
    assert rows[-1].get("event") == "call.end"
    table = traced["table"]
    assert table[0].startswith(f"call {rows[0]['call_id']} on e1:")
    assert any(f"[offered] dnis={offer['detail']['dnis']} ani={offer['detail']['ani']}" in x for x in table)
    assert "no R2 signals for call no-such-call" in traced["none"]
    assert "HTTP 401" in traced["refused"]


def test_a_mix_of_refused_abandoned_and_early_cleared_calls_is_accounted_for(tmp_path):
    """Unallocated numbers, callers giving up during the register phase and callers clearing forward
    while the IVR speaks (this seed once lost an ANI digit: the prompt of a cleared call went on
    playing into the next call's MF signals)."""
    r = r2_load.run(spans=1, rate=2.0, minutes=1.0, seed=3, work=tmp_path, mix=True)
    assert r2_load.ok(r), {k: r[k] for k in ("missing", "orphans", "wrong_dnis_or_category", "not_ended")}
    assert r["exchange_results"]["unallocated"] == r["reasons"]["refused"] > 0
    assert r["gave_up_in_register"] > 0 and r["reasons"]["caller cleared forward"] > r["gave_up_in_register"]
    # the give-up rows in the call database: the digits and category received before the caller
    # cleared forward (2.5 s into the register: the first DNIS digit, the category, ANI digits);
    # r2_load.account checked each against what its caller sent
    con = sqlite3.connect(tmp_path / "store" / "calls.db")
    rows = con.execute("SELECT dnis, ani, category, answer, \"end\" FROM calls WHERE disposition = ?",
                       (r2_load.GAVE_UP,)).fetchall()
    con.close()
    assert len(rows) == r["gave_up_in_register"] == r["gave_up_with_digits"], rows
    for dnis, ani, category, answer, end in rows:
        assert any(n.startswith(dnis) for n in r2_load.NUMBERS) and ani.startswith("139"), (dnis, ani)
        assert category in r2_load.CATEGORIES and answer is None and end is not None
