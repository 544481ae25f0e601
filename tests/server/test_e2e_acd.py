"""The ACD on hwsim (a separate lockstep process): a queued caller rings the
agents in the queue's order, an unanswered ring times out and moves on, the
agent who answers is bridged, and every decision explains itself."""
from __future__ import annotations

SCENARIO = """
[scenario]
duration = 300.0
seed = 5

[[agent]]                          # only chen's phone (port 5) is ever answered
phones = "hotline_e2e:5"
answer_after = 2.0
script = [{ after = 6.0, hangup = true }]

[[caller]]
at = 1.0
line = "hotline_e2e:0"
number = "13911113333"
script = [{ after_silence = 0.6, digits = "0" }, { after = 60.0, hangup = true }]
"""


def test_queue_rings_in_order_times_out_and_bridges_the_next_agent(e2e):
    run = e2e.run(scenario=SCENARIO, server_config="server-acd.toml", max_sim_seconds=120,
                  until=lambda s: len(s.records) >= 1 and e2e.all_idle(s))
    decisions = [e.data for e in run.events("acd.decision")]
    assert [d["chosen"] for d in decisions] == [["wu"], ["chen"]], decisions
    first, second = decisions
    assert [o["agent"] for o in first["order"]] == ["wu", "chen"]   # top-down: configured order
    assert first["strategy"] == "top-down" and first["queue"] == "service"
    # wu missed once (max_misses = 1): not ready, and the second decision says so
    assert any(s["agent"] == "wu" for s in second["skipped"]), second
    # the ring moved on when the 6 s ring timeout ran out
    assert 6000 <= second["t"] - first["t"] < 6000 + 100, (first["t"], second["t"])
    # hwsim: port 4 rang and was never answered; port 5 answered
    assert run.calls_on(4, "in")[0]["answer"] is None
    assert run.calls_on(5, "in")[0]["answer"] is not None
    rec, = run.records_on(0)
    assert rec.agent == "chen" and rec.answer is not None
    bridges = run.events("call.bridge")
    assert len(bridges) == 1 and bridges[0].data["agent"] == "chen" and bridges[0].data["line"] == 5
    outcome = [e.data for e in run.events("acd.outcome")]
    assert [o["outcome"] for o in outcome] == ["answered"], outcome
