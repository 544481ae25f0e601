"""End to end: hwsim in its own process (lockstep), the voice server in this one.

Every check is made on what the far end of the line saw and heard (hwsim's
report and the WAV of what the host sent it), compared with what the server
thinks happened (its call records and its channels). Times are simulated
seconds since the board's first tick: hwsim's report counts them that way,
and the server's clock starts at the simulated start the ready file gives.

Configs: tests/server/configs/hwsim-hotline.toml (the board and the lines:
0-2 busy-tone only, 3 loop-drop) and server-hotline.toml (the IVR: welcome,
then the main menu; 1 account entry; 8 transfer to 13800138000).
"""
from __future__ import annotations

import pytest

BUSY_CADENCE = 0.7        # China busy tone: 0.35 s on, 0.35 s off
# hwsim stamps what happens in the host's tick N at (N + 1) ticks (its world
# counts from 1): its times are one tick (20 ms) later than the server's.
HWSIM_LAG = 0.02


def one_call(run, chan, direction="in"):
    calls = run.calls_on(chan, direction)
    assert len(calls) == 1, f"hwsim saw {len(calls)} {direction} calls on channel {chan}: {calls}"
    return calls[0]


def heard_on(run, call):
    """The far end's audio after an A-law card (hwsim itself passes linear PCM)."""
    return run.heard_alaw(call)


def prompt(lib, name, lang="zh"):
    return lib.get(name, lang)


# ---------------------------------------------------------------- a. welcome, key 1, submenu
SCENARIO_A = """
[scenario]
duration = 300.0
seed = 1

[[caller]]
at = 1.0
line = "hotline_e2e:0"
number = "13911112222"
script = [{ after_silence = 0.6, digits = "1" }, { after_silence = 1.5, hangup = true }]
"""


def test_caller_hears_welcome_then_key_1_gives_the_submenu(e2e, prompt_library):
    run = e2e.run(scenario=SCENARIO_A, max_sim_seconds=60,
                  until=lambda s: len(s.records) >= 1 and e2e.all_idle(s))
    call = one_call(run, 0)
    assert call["answer"] is not None, call
    heard = heard_on(run, call)
    press = call["digits"][0]
    assert press["digits"] == "1"
    t_press = press["at"] - call["answer"]            # seconds into the heard audio

    welcome = e2e.find_prompt(heard, prompt(prompt_library, "welcome"))
    assert len(welcome) == 1, f"welcome heard {len(welcome)} times: {welcome}"
    at, peak = welcome[0]
    assert peak > 0.9
    assert 0.0 <= at < 0.5, f"welcome starts {at:.2f} s after answer"   # played on answer
    # The English welcome is another recording: the caller got the zh one.
    assert not e2e.find_prompt(heard, prompt(prompt_library, "welcome", "en"))

    menu = e2e.find_prompt(heard, prompt(prompt_library, "main_menu"))
    assert len(menu) == 1 and welcome[0][0] < menu[0][0] < t_press, (menu, t_press)

    sub = e2e.find_prompt(heard, prompt(prompt_library, "enter_account"))
    assert len(sub) == 1, f"submenu prompt heard {len(sub)} times: {sub}"
    # after the key (DTMF detection needs ~40 ms of the 100 ms tone), promptly
    assert t_press < sub[0][0] < t_press + 0.5, (sub, t_press)

    rec, = run.server.records
    assert rec.caller == "13911112222" and rec.digits == "1" and rec.answer is not None
    assert any(p.startswith("key") for p in rec.ivr_path), rec.ivr_path
    # the real server's event stream: the key with its tone's length (hwsim sends 100 ms), the
    # IVR's steps, each prompt list's end, and who hung up
    digit, = run.events("call.digit")
    assert digit.data["digit"] == "1" and 60 <= digit.data["duration_ms"] <= 130, digit.data
    assert digit.data["onset_tick"] < digit.tick
    steps = [(e.data["step"], e.data["detail"]) for e in run.events("ivr.step")]
    assert steps[-3:] == [("menu", "main"), ("key", "1"), ("menu", "account")], steps
    dones = [(e.data["items"], e.data["how"]) for e in run.events("call.play_done")]
    assert [items for items, _ in dones] == [e.data["items"] for e in run.events("call.play")]
    assert dones[0] == (["welcome"], "finished") and dones[-1] == (["enter_account"], "finished"), dones
    end, = run.events("call.end")
    assert end.data["side"] == "caller", end.data


# ---------------------------------------------------------------- b. retries, then the fallback
SCENARIO_B = """
[scenario]
duration = 300.0
seed = 2

[[caller]]                      # says nothing
at = 1.0
line = "hotline_e2e:0"
number = "13911110000"
hangup_after = 120.0

[[caller]]                      # presses a key the menu does not have, three times
at = 1.0
line = "hotline_e2e:1"
number = "13911119999"
hangup_after = 120.0
script = [{ after_silence = 0.6, digits = "9" }, { after_silence = 0.6, digits = "9" },
          { after_silence = 0.6, digits = "9" }]
"""


def test_no_input_and_invalid_input_retry_twice_then_fall_back(e2e, prompt_library):
    run = e2e.run(scenario=SCENARIO_B, max_sim_seconds=90,
                  until=lambda s: len(s.records) >= 2 and e2e.all_idle(s))
    lib = prompt_library
    greeting = len(prompt(lib, "main_menu")) + len(prompt(lib, "press_1_balance"))
    for chan, retry_prompt, other in ((0, "no_input", "invalid_choice"), (1, "invalid_choice", "no_input")):
        call = one_call(run, chan)
        heard = heard_on(run, call)
        menus = [t for t, _ in e2e.find_prompt(heard, prompt(lib, "main_menu"))]
        retries = [t for t, _ in e2e.find_prompt(heard, prompt(lib, retry_prompt))]
        byes = [t for t, _ in e2e.find_prompt(heard, prompt(lib, "goodbye"))]
        assert len(menus) == 3, f"chan {chan}: main menu heard {len(menus)} times"
        assert len(retries) == 2, f"chan {chan}: {retry_prompt} heard {len(retries)} times"
        assert not e2e.find_prompt(heard, prompt(lib, other)), f"chan {chan}: {other} heard"
        assert len(byes) == 1, f"chan {chan}: goodbye heard {len(byes)} times"
        # greeting, retry prompt, greeting, retry prompt, greeting, goodbye
        assert menus[0] < retries[0] < menus[1] < retries[1] < menus[2] < byes[0]
        if retry_prompt == "no_input":
            # the menu's first_timeout (3000 ms) runs from the end of the greeting
            for m, r in zip(menus, retries, strict=False):   # the last menu has no retry
                assert abs(r - (m + greeting / 8000.0) - 3.0) < 0.1, (m, r)
        # the fallback hangs up: the far end saw the host clear the line
        assert call["who_hung_up"] == "host", call
        assert call["released"] - call["answer"] > byes[0] + len(prompt(lib, "goodbye")) / 8000 - 0.1

    silent, = run.records_on(0)
    keys, = run.records_on(1)
    assert silent.reason.startswith("ivr:") and keys.reason.startswith("ivr:")
    assert [p.split(":")[0] for p in silent.ivr_path].count("timeout") == 3
    assert [p.split(":")[0] for p in keys.ivr_path].count("invalid") == 3
    assert silent.digits == "" and keys.digits == "999"


# ---------------------------------------------------------------- c. hang-up mid-prompt
SCENARIO_C = """
[scenario]
duration = 300.0
seed = 3

[[caller]]                      # hangs up 1.5 s into the 2.7 s welcome
at = 1.0
line = "hotline_e2e:3"
number = "13922223333"
script = [{ after = 1.5, hangup = true }]

[[caller]]                      # the next call on the same line
at = 14.0
line = "hotline_e2e:3"
number = "13944445555"
script = [{ after_silence = 0.6, digits = "1" }, { after_silence = 1.0, hangup = true }]
"""


def test_hangup_mid_prompt_frees_the_channel_for_the_next_call(e2e, prompt_library):
    from voiceserver.core.channels import State
    run = e2e.run(scenario=SCENARIO_C, max_sim_seconds=60,
                  until=lambda s: len(s.records) >= 2 and e2e.all_idle(s))
    first, second = run.calls_on(3)
    assert first["who_hung_up"] == "caller" and first["disconnect"] == "loop-drop"
    assert abs(first["hangup"] - first["answer"] - 1.5) < 0.05
    # the caller heard the start of the welcome prompt, up to the moment they hung up
    heard = heard_on(run, first)
    welcome = prompt(prompt_library, "welcome")
    assert 1.3 * 8000 < len(heard) < len(welcome)
    assert e2e.find_prompt(heard, welcome[:len(heard) - 800])[0][0] < 0.1

    rec1, rec2 = sorted(run.records_on(3), key=lambda r: r.start)
    assert rec1.caller == "13922223333" and rec2.caller == "13944445555"   # DTMF caller ID
    assert rec1.reason == "far end hung up (loop current dropped)"
    ends = [e.data["side"] for e in run.events("call.end") if e.chan == 3]
    assert ends == ["caller", "caller"]                  # told by the line, not by the reason's text
    assert [e.data["how"] for e in run.events("call.play_done") if e.chan == 3][0] == "hangup"   # welcome
    assert 0.0 <= round(run.sim_s(rec1.end) - (first["hangup"] - HWSIM_LAG), 3) < 0.1
    assert 0.0 <= first["released"] - first["hangup"] < 0.1               # on-hook at once
    # the channel went back to idle (after the on-hook guard) before the next ring
    states = [(e.tick, e.data["new"]) for e in run.events("channel.state") if e.chan == 3]
    ms = 1000 * run.server.block / 8000
    idle_again = [t for t, s in states if s == "idle" and t * ms / 1000 > first["hangup"]]
    assert idle_again and idle_again[0] * ms / 1000 < second["offered"], states
    # and took the next call: answered, IVR, key 1 -> submenu, state idle at the end
    assert second["answer"] is not None and rec2.answer is not None and rec2.digits == "1"
    assert e2e.find_prompt(heard_on(run, second), prompt(prompt_library, "enter_account"))
    assert run.server.boards[0].channels[3].state is State.IDLE


# ---------------------------------------------------------------- d. busy tone, no supervision
SCENARIO_D = """
[scenario]
duration = 300.0
seed = 4

[[caller]]                      # hangs up in the main menu's greeting: the line only
at = 1.0                        # gives busy tone (hwsim-hotline.toml: lines 0-2)
line = "hotline_e2e:0"
number = "13966667777"
script = [{ after = 4.0, hangup = true }]

[[caller]]
at = 16.0
line = "hotline_e2e:0"
number = "13988889999"
script = [{ after_silence = 0.6, digits = "1" }, { after_silence = 1.0, hangup = true }]
"""


def test_busy_tone_disconnect_frees_the_channel_within_three_cadences(e2e, prompt_library):
    run = e2e.run(scenario=SCENARIO_D, max_sim_seconds=60,
                  until=lambda s: len(s.records) >= 2 and e2e.all_idle(s))
    first, second = run.calls_on(0)
    assert first["who_hung_up"] == "caller" and first["disconnect"] == "busy-tone"
    rec1, rec2 = sorted(run.records_on(0), key=lambda r: r.start)
    assert rec1.caller == "13966667777" and "busy" in rec1.reason, rec1.reason
    detected = run.sim_s(rec1.end) - (first["hangup"] - HWSIM_LAG)
    released = first["released"] - first["hangup"]       # the far end saw the host go on-hook
    assert 0.0 < detected <= 3 * BUSY_CADENCE, f"busy tone detected {detected:.2f} s after hang-up"
    assert 0.0 < released <= 3 * BUSY_CADENCE + 0.05, f"line released {released:.2f} s after hang-up"
    # the freed channel takes the next call
    assert second["answer"] is not None and rec2.caller == "13988889999" and rec2.digits == "1"
    assert e2e.find_prompt(heard_on(run, second), prompt(prompt_library, "enter_account"))


# ---------------------------------------------------------------- e. transfer out: ringback, answer, bridge
CALLEE_SPEECH = "prompts/en/business_hours.wav"   # what the called party says when answering

SCENARIO_E = """
[scenario]
duration = 300.0
seed = 5

[[caller]]
at = 1.0
line = "hotline_e2e:0"
number = "13912340000"
hangup_after = 60.0
script = [{ after_silence = 0.6, digits = "8" }]

[[outbound]]                    # the duty mobile: rings 8 s (two ringback bursts),
lines = "hotline_e2e:1-3"       # answers, speaks 1 s later, hangs up
result = "answer"
ring = 8.0
script = [{ after = 1.0, play = "SPEECH" }, { after = 2.0, hangup = true }]
"""


@pytest.mark.parametrize("hardware_bridging", [True, False], ids=["card-xconnect", "engine-mix"])
def test_transfer_dials_out_detects_ringback_and_answer_and_bridges(e2e, prompt_library,
                                                                     hardware_bridging):
    if hardware_bridging and e2e.via_dahdi:
        pytest.skip("DAHDI has no run-time cross-connect: on dahdi:// the engine mixes (engine-mix)")
    import os

    from dsp.audiofile import read_audio
    from voiceserver.core.channels import State
    speech = os.path.abspath(CALLEE_SPEECH)
    run = e2e.run(scenario=SCENARIO_E.replace("SPEECH", speech), max_sim_seconds=90,
                  until=lambda s: len(s.records) >= 2 and e2e.all_idle(s),
                  hardware_bridging=hardware_bridging)
    # the card switched the two lines itself, or the engine mixed them
    assert run.server.boards[0].engine.stats.hardware_bridges == (1 if hardware_bridging else 0)
    caller = one_call(run, 0)
    callee = one_call(run, 1, "out")        # the first free line of the 'pstn' group
    # hwsim heard the host dial the number, and the plan ran: ringback, answer
    assert callee["dialled"] == "13800138000", callee
    assert callee["result"] == "answer" and callee["answer"] is not None
    assert caller["digits"][0]["digits"] == "8"

    out_rec, = run.records_on(1)
    in_rec, = run.records_on(0)
    assert out_rec.direction == "outbound" and out_rec.called == "13800138000"
    assert in_rec.caller == "13912340000"
    # seize -> dial tone -> digits -> proceeding -> connected
    states = [e.data["new"] for e in run.events("channel.state") if e.chan == 1]
    assert states[:4] == ["offhook", "dialing", "proceeding", "connected"], states
    assert not [e for e in run.events("call.warning") if e.chan == 1], "dialled without dial tone"
    ms = run.server.block / 8000
    ringback = [e.tick * ms for e in run.events("call.ringback") if e.chan == 1]
    answer = [e.tick * ms for e in run.events("call.answer") if e.chan == 1]
    assert ringback and answer and ringback[0] < answer[0], (ringback, answer)
    ring_start = callee["answer"] - 8.0 - HWSIM_LAG   # hwsim: ringback for `ring` s, then answer
    assert ring_start < ringback[0] < ring_start + 2.0
    # Answered when the callee spoke (no answer supervision on this line), not
    # at a ringback burst (one at ring_start, one at ring_start + 5 s): the
    # record dates the answer at the voice onset, known 0.5 s later.
    voice = callee["answer"] + 1.0 - HWSIM_LAG
    assert abs(run.sim_s(out_rec.answer) - voice) < 0.1, (run.sim_s(out_rec.answer), voice)
    assert voice <= answer[0] < voice + 1.0, (answer, voice)
    # Bridged from then on: the caller hears the callee's words (all but the
    # half second the answer took to confirm), when the callee says them.
    words = read_audio(speech)[0]
    skip = int(0.8 * 8000)
    found = e2e.find_prompt(heard_on(run, caller), words[skip:])
    assert len(found) == 1, found
    said_at = callee["answer"] + 1.0 + skip / 8000 - caller["answer"]
    assert abs(found[0][0] - said_at) < 0.1, (found, said_at)
    # and not the ringback: the bridge came after the callee answered
    assert answer[0] > callee["answer"] - HWSIM_LAG
    # the callee hung up (busy tone on a line without supervision): both legs end
    assert callee["who_hung_up"] == "caller" and caller["who_hung_up"] == "host"
    assert all(ch.state is State.IDLE for ch in run.server.boards[0].channels.values())


# ---------------------------------------------------------------- the fixture itself
def test_a_condition_never_met_fails_clearly_and_cleanup_leaves_nothing(e2e):
    import os
    scenario = '[scenario]\nduration = 300.0\n'           # nobody calls
    with pytest.raises(AssertionError, match="not met within 2 simulated s"):
        e2e.run(scenario=scenario, max_sim_seconds=2, until=lambda s: len(s.records) >= 1)
    hw, = e2e._procs
    name = next(iter(hw.info["boards"]))
    assert hw.poll() is None                 # hwsim still serving: the test failed mid-run
    e2e.cleanup()
    assert hw.poll() is not None             # cleanup stopped it,
    assert not os.path.exists(f"/dev/shm/voiceboard.{name}")    # its board is gone,
    assert all(rt.board.closed for s in e2e._servers for rt in s.boards)   # and ours closed


# ---------------------------------------------------------------- determinism
def test_lockstep_runs_are_the_same_tick_for_tick(e2e):
    """Same scenario and seed, hwsim in its own process each time: the same calls."""
    def summary(run):
        recs = sorted((r.chan, r.caller, r.start, r.answer, r.end, r.reason, tuple(r.ivr_path), r.digits)
                      for r in run.server.records)
        calls = sorted((c["channel"], c["number"], tuple(c["ring"]), c["answer"], c["hangup"],
                        c["released"], str(c["digits"]), c["who_hung_up"], c["heard_samples"])
                       for c in run.calls)
        audio = [run.heard(c).tobytes() for c in sorted(run.calls, key=lambda c: c["channel"])]
        return recs, calls, audio
    until = lambda s: len(s.records) >= 2 and e2e.all_idle(s)   # noqa: E731
    one = summary(e2e.run(scenario=SCENARIO_B, max_sim_seconds=90, until=until))
    two = summary(e2e.run(scenario=SCENARIO_B, max_sim_seconds=90, until=until))
    assert one[0] == two[0] and one[1] == two[1]
    assert one[2] == two[2]          # what each caller heard, sample for sample


def test_a_board_that_does_not_exist_stops_the_server_and_closes_the_others(e2e):
    from boarddrv import NoSuchBoard
    with pytest.raises(NoSuchBoard, match="absent"):
        e2e.run(scenario="[scenario]\nduration = 60.0\n", server_config="server-two-boards.toml",
                max_sim_seconds=5, until=lambda s: True)
    server, = e2e._servers
    assert [rt.name for rt in server.boards] == ["hotline"]    # the first board was opened,
    assert server.boards[0].board.closed                         # and closed again by the server
