"""200 concurrent calls end to end on an E1-sized board (hwsim process, lockstep).

The board has 240 lines, the bearer channels of 8 E1 spans. Inbound seizure
on E1 CAS needs China No.1 R2 register signalling, which is a later issue, so
hwsim serves an analog board of 240 FXO lines (FSK caller ID; half loop-drop, half busy-tone
only): tests/server/configs/hwsim-e1size.toml and server-e1size.toml.

Every caller has a unique number; the server learns it from caller ID, so
hwsim's callers and the server's call records are matched by number.
"""
from __future__ import annotations

from collections import Counter

CALLS = 200
# What caller i does (i % 4): press 1 (goodbye, the server hangs up); hang up
# after 12 s (mid-IVR); say nothing (no_input, retry, fallback: goodbye);
# press a wrong key twice (invalid, retry, fallback: goodbye).
SCRIPTS = [
    ('[{ after_silence = 0.6, digits = "1" }]', "host"),
    ('[{ at = 12.0, hangup = true }]', "caller"),
    ('[]', "host"),
    ('[{ after_silence = 0.6, digits = "9" }, { after_silence = 0.6, digits = "9" }]', "host"),
]


def number(i: int) -> str:
    return f"1390000{i:04d}"


def scenario() -> str:
    out = ["[scenario]", "duration = 600.0", "seed = 6", ""]
    for i in range(CALLS):          # all arrive within 5 s; every call lasts > 7 s
        script, _ = SCRIPTS[i % len(SCRIPTS)]
        out += ["[[caller]]", f"at = {0.5 + i * 0.025:.3f}", 'line = "e1size_e2e"',
                f'number = "{number(i)}"', "hangup_after = 60.0", f"script = {script}", ""]
    return "\n".join(out)


def test_200_concurrent_calls_are_all_accounted_for(e2e):
    run = e2e.run(scenario=scenario(), hwsim_config="hwsim-e1size.toml",
                  server_config="server-e1size.toml", max_sim_seconds=90,
                  until=lambda s: len(s.records) >= CALLS and e2e.all_idle(s))
    calls = [c for c in run.calls if c["kind"] == "fxo" and c["direction"] == "in"]
    by_number = {c["number"]: c for c in calls}
    assert len(calls) == CALLS and set(by_number) == {number(i) for i in range(CALLS)}
    assert all(c["answer"] is not None for c in calls), \
        Counter(c["who_hung_up"] for c in calls if c["answer"] is None)
    # They were all in the IVR at once: 200 calls between answer and hang-up.
    edges = sorted([(c["answer"], 1) for c in calls] + [(c["hangup"], -1) for c in calls])
    live = peak = 0
    for _, d in edges:
        live += d
        peak = max(peak, live)
    assert peak == CALLS, f"at most {peak} calls were up at the same time"

    recs = run.server.records
    counts = Counter(r.caller for r in recs)
    assert not [n for n, k in counts.items() if k > 1], "duplicated records"
    assert set(counts) == set(by_number), (f"lost: {sorted(set(by_number) - set(counts))[:5]}, "
                                           f"unknown: {sorted(set(counts) - set(by_number), key=str)[:5]}")
    assert len(recs) == CALLS
    busy_tone_lines = 0
    for i in range(CALLS):
        rec, call = next(r for r in recs if r.caller == number(i)), by_number[number(i)]
        assert rec.chan == call["channel"] and rec.answer is not None
        who = SCRIPTS[i % len(SCRIPTS)][1]
        assert call["who_hung_up"] == who, (i, call)
        if who == "host":
            assert rec.reason.startswith("ivr:"), (i, rec.reason)
        else:
            assert rec.reason.startswith("far end hung up"), (i, rec.reason)
            # freed within 3 busy cadences (2.1 s) on busy-tone lines, at once on loop-drop ones
            # (hwsim stamps events one tick later than the host's tick)
            late = run.sim_s(rec.end) - (call["hangup"] - 0.02)
            limit = 2.1 if call["disconnect"] == "busy-tone" else 0.05
            assert -1e-6 < late <= limit, (i, call["disconnect"], late)
            busy_tone_lines += call["disconnect"] == "busy-tone"
    assert e2e.all_idle(run.server) and not run.server.legs
    assert busy_tone_lines >= 10      # the caller hang-ups were seen on both kinds of line
    assert not run.events("board.events_lost")
