"""Call recording end to end: hwsim as a separate lockstep process, the server in
this one, the real recorder writing WAV files and SQLite rows.

Every file is read twice, by soundfile and by sox/soxi (the peer the design
names for recordings), and checked against what the far ends did (hwsim's
report: when each party answered, what they played) and what the server
played (the prompt library's audio, found with `find_prompt`). Times in a
file are seconds from the server's answer; hwsim's times are seconds since
the board's first tick, so positions are compared as differences.

The base config is configs/server-recording.toml; each test appends the
[recording] rules it is about.
"""
from __future__ import annotations

import io
import json
import shutil
import sqlite3
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

CONFIGS = Path(__file__).resolve().parent / "configs"
REPO = Path(__file__).resolve().parents[2]
TICK = 0.02

pytestmark = pytest.mark.skipif(shutil.which("sox") is None or shutil.which("soxi") is None,
                                reason="sox/soxi not installed (Debian: apt-get install sox)")


def speech(name: str) -> str:
    """An English prompt file as a party's speech (the server plays the zh set: never confused)."""
    return str(REPO / "prompts" / "en" / f"{name}.wav")


def speech_audio(name: str) -> np.ndarray:
    from dsp.audiofile import read_audio
    return read_audio(speech(name))[0]


def server_config(tmp_path: Path, recording: str) -> str:
    path = tmp_path / "server-recording.toml"
    path.write_text((CONFIGS / "server-recording.toml").read_text() + "\n" + recording)
    return str(path)


# ---------------------------------------------------------------- reading what was stored
def db(run) -> tuple[dict[str, dict], list[dict]]:
    con = sqlite3.connect(run.workdir / "calls.db")
    con.row_factory = sqlite3.Row
    try:
        calls = {r["call_id"]: dict(r) for r in con.execute("SELECT * FROM calls")}
        recs = [dict(r) for r in con.execute("SELECT * FROM recordings ORDER BY id")]
    finally:
        con.close()
    for r in recs:
        r["gaps"] = json.loads(r["gaps"])
    return calls, recs


def read_wav(path: str) -> np.ndarray:
    """soundfile's reading, int16[frames, channels]; A-law decoded."""
    x, rate = sf.read(path, dtype="int16", always_2d=True)
    assert rate == 8000
    return x


def soxi(path: str) -> dict:
    def q(flag: str) -> str:
        out = subprocess.run(["soxi", flag, path], capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, f"soxi {flag} {path}: {out.stderr}"
        return out.stdout.strip()
    return {"channels": int(q("-c")), "rate": int(q("-r")), "samples": int(q("-s")),
            "seconds": float(q("-D")), "encoding": q("-e")}


def sox_read(path: str, channels: int) -> np.ndarray:
    """sox's decoding of the file to 16-bit linear, int16[frames, channels]."""
    out = subprocess.run(["sox", path, "-t", "raw", "-e", "signed-integer", "-b", "16", "-"],
                         capture_output=True, timeout=30)
    assert out.returncode == 0, out.stderr.decode()
    return np.frombuffer(out.stdout, "<i2").reshape(-1, channels)


def check_both_readers(path: str, channels: int, encoding: str) -> np.ndarray:
    info = soxi(path)
    x = read_wav(path)
    assert info["channels"] == channels and info["rate"] == 8000, info
    assert encoding in info["encoding"], info
    assert info["samples"] == len(x), (info, x.shape)
    assert np.array_equal(sox_read(path, channels), x)
    return x


def one(run, chan: int, direction: str = "in") -> dict:
    calls = run.calls_on(chan, direction)
    assert len(calls) == 1, calls
    return calls[0]


def tick_of(run, kind: str, call_id: str) -> list[int]:
    return [e.tick for e in run.events(kind) if e.call_id == call_id]


def dtmf_in(x: np.ndarray) -> list[tuple[str, float]]:
    from dsp.dtmf import DtmfDetector
    det = DtmfDetector(1)
    return [(e.digit, e.start / 8000) for e in det.rx(np.ascontiguousarray(x[None, :]))
            if e.end is None]


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.asarray(x, np.float64) ** 2))) if len(x) else 0.0


# ---------------------------------------------------------------- a. stereo: IVR, agent, pause, rules
SCENARIO_A = f"""
[scenario]
duration = 300.0
seed = 5

[[agent]]                          # chen's phone: answers, speaks, hangs up
phones = "hotline_e2e:5"
answer_after = 2.0
script = [{{ after = 1.0, play = "{speech('your_call_is_important')}" }}, {{ after = 6.0, hangup = true }}]

[[caller]]                         # talks over the welcome, then types a card number
at = 1.0
line = "hotline_e2e:0"
number = "13911110000"
script = [{{ after = 0.5, play = "{speech('business_hours')}" }},
          {{ after_silence = 0.6, digits = "1" }},
          {{ after_silence = 0.6, digits = "12345678" }}]

[[caller]]                         # to the queue, then the agent
at = 1.0
line = "hotline_e2e:1"
number = "13911110001"
script = [{{ after_silence = 0.6, digits = "0" }},
          {{ after = 6.0, play = "{speech('confirm_or_reenter')}" }},
          {{ after = 60.0, hangup = true }}]

[[caller]]                         # on an excluded channel
at = 1.0
line = "hotline_e2e:2"
number = "13911110002"
hangup_after = 6.0

[[caller]]                         # hangs up at once: shorter than min_seconds
at = 1.0
line = "hotline_e2e:3"
number = "13911110003"
hangup_after = 1.5
"""

RULES_A = """
[recording]
layout = "stereo"
min_seconds = 3
pause_while_collecting = ["account"]

[recording.exclude]
channels = ["hotline:2"]
"""


def test_stereo_recordings_put_the_caller_left_and_prompts_or_the_agent_right(e2e, tmp_path,
                                                                          prompt_library):
    run = e2e.run(scenario=SCENARIO_A, server_config=server_config(tmp_path, RULES_A),
                  max_sim_seconds=120, until=lambda s: len(s.records) >= 4 and e2e.all_idle(s),
                  rules_poll=0)
    calls, recs = db(run)
    by_chan = {c["channel"]: c for c in calls.values() if c["direction"] == "inbound"}
    assert sorted(by_chan) == [0, 1, 2, 3]
    zh = lambda name: prompt_library.get(name, "zh")  # noqa: E731

    # -- line 0: the IVR call. Prompts right, the caller left, each only there.
    c0 = by_chan[0]
    r0, = [r for r in recs if r["call_id"] == c0["call_id"]]
    assert r0["status"] == "kept" and r0["layout"] == "stereo" and r0["format"] == "pcm16"
    assert r0["stop_reason"] == "call end"
    x = check_both_readers(r0["path"], 2, "Signed Integer PCM")
    left, right = x[:, 0], x[:, 1]
    assert abs(len(x) / 8000 - r0["duration"]) < 1e-6
    assert [round(t, 2) for t, _ in e2e.find_prompt(right, zh("welcome"))] == [0.0]
    (menu_at, _), = e2e.find_prompt(right, zh("main_menu"))
    assert abs(menu_at - len(zh("welcome")) / 8000) < 0.03
    assert len(e2e.find_prompt(right, zh("press_1_balance"))) == 1
    said, = e2e.find_prompt(left, speech_audio("business_hours"))
    assert abs(said[0] - 0.5) < 0.03, said              # 0.5 s after answer, over the welcome
    assert not e2e.find_prompt(right, speech_audio("business_hours"))
    assert not e2e.find_prompt(left, zh("welcome")) and not e2e.find_prompt(left, zh("main_menu"))

    # -- pause while the account menu collects the card number: silence and a gap row
    gap, = r0["gaps"]
    assert gap["why"] == "pause"
    start_tick, = tick_of(run, "recording.decision", c0["call_id"])
    paused, = [e for e in run.events("recording.paused") if e.call_id == c0["call_id"]]
    resumed, = [e for e in run.events("recording.resumed") if e.call_id == c0["call_id"]]
    assert "pause_while_collecting" in paused.data["rule"] and "account" in paused.data["reason"]
    assert gap["start"] == pytest.approx((paused.tick - start_tick) * TICK, abs=1e-6)
    assert gap["end"] == pytest.approx((resumed.tick - start_tick) * TICK, abs=1e-6)
    a, b = int(gap["start"] * 8000), int(gap["end"] * 8000)
    assert not x[a:b].any(), "the pause is silence on both sides"
    assert x[b:].any() and x[max(0, a - 800):a].any()
    assert not e2e.find_prompt(right, zh("enter_account"))   # played during the pause
    # no digit of the card number reached the file (not even the tail of the last one)
    assert [d for d, t in dtmf_in(left) if t > gap["start"] - 0.2] == []
    caller = one(run, 0)
    typed = caller["digits"][-1]
    assert typed["digits"] == "12345678"
    assert gap["start"] < typed["at"] - caller["answer"] < gap["end"]
    # the goodbye after the input is recorded (its first ~0.1 s waited for the last key's tone)
    assert [t for t, _ in e2e.find_prompt(right, zh("goodbye"), threshold=0.9)] and \
        e2e.find_prompt(right, zh("goodbye"), threshold=0.9)[0][0] > gap["end"] - 0.2
    assert c0["recording_note"].startswith("kept: ") and c0["recording_rule"].endswith(" default")
    assert c0["disposition"] == "ivr: hangup action" and c0["caller"] == "13911110000"
    assert json.loads(c0["ivr_path"])[:4] == ["flow:main", "play:welcome", "menu:main", "key:1"]

    # -- line 1: queue music, then agent chen on the right; the caller stays left
    c1 = by_chan[1]
    r1, = [r for r in recs if r["call_id"] == c1["call_id"]]
    x1 = check_both_readers(r1["path"], 2, "Signed Integer PCM")
    assert c1["agent"] == "chen" and c1["queue"] == "service"
    caller1, agent = one(run, 1), one(run, 5)
    # the row keeps the line's answer and, apart, when the agent took the call
    from voiceserver.recording.calldb import parse_time
    to_agent = (parse_time(c1["agent_answer"]) - parse_time(c1["answer"])).total_seconds()
    assert abs(to_agent - (agent["answer"] - caller1["answer"])) < 0.06, (to_agent, c1)
    t_agent = agent["answer"] + 1.0 - caller1["answer"]      # the agent speaks 1 s after answering
    found, = e2e.find_prompt(x1[:, 1], speech_audio("your_call_is_important"))
    assert abs(found[0] - t_agent) < 0.06, (found, t_agent)
    assert not e2e.find_prompt(x1[:, 0], speech_audio("your_call_is_important"))
    said, = e2e.find_prompt(x1[:, 0], speech_audio("confirm_or_reenter"))
    assert said[0] > agent["answer"] - caller1["answer"]      # said to the agent, on the left
    assert not e2e.find_prompt(x1[:, 1], speech_audio("confirm_or_reenter"))
    bridge_tick, = tick_of(run, "call.bridge", c1["call_id"])
    queue_tick, = [e.tick for e in run.events("call.queue") if e.call_id == c1["call_id"]]
    start1, = tick_of(run, "recording.decision", c1["call_id"])
    moh = x1[int((queue_tick - start1 + 10) * TICK * 8000):int((bridge_tick - start1) * TICK * 8000), 1]
    assert len(moh) > 8000 and rms(moh) > 300, "music on hold is on the agent side while waiting"
    # the agent hung up: the call ended there, and so did the file
    assert abs(r1["duration"] - (agent["hangup"] - caller1["answer"])) < 0.1
    assert c1["recording_note"].startswith("kept: ")

    # -- line 2: excluded by channel: no file, and the call row names the rule
    c2 = by_chan[2]
    assert not [r for r in recs if r["call_id"] == c2["call_id"]]
    assert c2["recording_rule"].endswith("recording.exclude.channels")
    assert ":" in c2["recording_rule"].split(" ")[0]        # FILE:LINE
    assert c2["recording_note"] == ("not recorded: channel hotline:2 is in "
                                    "recording.exclude.channels (hotline:2)")
    assert c2["end"] is not None and c2["disposition"]

    # -- line 3: shorter than min_seconds: discarded, no file, the rows say why
    c3 = by_chan[3]
    r3, = [r for r in recs if r["call_id"] == c3["call_id"]]
    assert r3["status"] == "discarded" and r3["bytes"] == 0
    assert "shorter than min_seconds = 3" in r3["discard_reason"]
    assert not Path(r3["path"]).exists() and not Path(r3["path"] + ".part").exists()
    assert c3["recording_rule"].endswith("recording.min_seconds")
    assert c3["recording_note"] == "discarded: " + r3["discard_reason"]   # the row's status says it

    # nothing else on disk: the two kept files, no .part left
    files = sorted(str(p) for p in (run.workdir / "recordings").rglob("*") if p.is_file())
    assert files == sorted([r0["path"], r1["path"]])
    # the recordings are dated and named by the template under YYYY/MM/DD
    rel = Path(r0["path"]).relative_to(run.workdir / "recordings")
    assert rel.parts[:3] == ("2026", "11", "23") and rel.name.endswith(f"_ch0_{c0['call_id']}.wav")
    assert not [e for e in run.server.bus.journal if e.data.get("alarm")]
    # the engine handed the recorder every tick once (lockstep: none dropped)
    rec, = run.server.recording.recorders.values()
    assert rec.stats.ticks == run.server.boards[0].engine.stats.ticks
    assert rec.stats.dropped_ticks == 0 and rec.stats.failed == 0


# ---------------------------------------------------------------- b. mono A-law, max duration, voicemail
SCENARIO_B = f"""
[scenario]
duration = 300.0
seed = 6

[[caller]]                         # says a few words in the menu's silence, stays 25 s
at = 1.0
line = "hotline_e2e:0"
number = "13911110000"
hangup_after = 25.0
script = [{{ after_silence = 0.5, play = "{speech('your_call_is_important')}" }}]

[[caller]]                         # leaves a message in mailbox sales
at = 1.0
line = "hotline_e2e:1"
number = "13911110001"
script = [{{ after_silence = 0.6, digits = "9" }},
          {{ after_silence = 1.0, play = "{speech('system_error')}" }},
          {{ after = 0.5, digits = "#" }}]
"""

RULES_B = """
[recording]
format = "wav-alaw"
layout = "mono"
max_seconds = 12
"""


def test_mono_alaw_mix_max_duration_and_voicemail_storage(e2e, tmp_path, prompt_library):
    run = e2e.run(scenario=SCENARIO_B, server_config=server_config(tmp_path, RULES_B),
                  max_sim_seconds=120, until=lambda s: len(s.records) >= 2 and e2e.all_idle(s),
                  rules_poll=0)
    calls, recs = db(run)
    by_chan = {c["channel"]: c for c in calls.values()}

    # -- line 0: one channel, A-law, the server's prompt and the caller's words mixed
    c0 = by_chan[0]
    r0, = [r for r in recs if r["call_id"] == c0["call_id"] and r["layout"] == "mono"]
    assert r0["format"] == "alaw" and r0["status"] == "kept"
    x = check_both_readers(r0["path"], 1, "A-law")[:, 0]
    assert [round(t, 2) for t, _ in e2e.find_prompt(x, prompt_library.get("welcome", "zh"))] == [0.0]
    said, = e2e.find_prompt(x, speech_audio("your_call_is_important"))
    menu_end = (len(prompt_library.get("welcome", "zh")) + len(prompt_library.get("main_menu", "zh"))
                + len(prompt_library.get("press_1_balance", "zh"))) / 8000
    assert abs(said[0] - (menu_end + 0.5)) < 0.06, (said, menu_end)
    # -- max_seconds: the recording stopped at 12 s, the call went on to the caller's hang-up
    assert soxi(r0["path"])["seconds"] == pytest.approx(12.0, abs=1e-6)
    assert r0["stop_reason"] == "max duration" and r0["duration"] == pytest.approx(12.0)
    assert c0["duration"] > 24.0, c0
    assert one(run, 0)["who_hung_up"] == "caller"
    assert c0["recording_note"] == "kept: stopped at max_seconds = 12 (the call went on)"
    assert c0["recording_rule"].endswith("recording.max_seconds")
    maxed = run.events("recording.max_duration")
    assert c0["call_id"] in [e.call_id for e in maxed] and not any(e.data["voicemail"] for e in maxed)

    # -- line 1: voicemail, the caller alone, mono, in voicemail/sales/, with its row
    c1 = by_chan[1]
    con = sqlite3.connect(run.workdir / "calls.db")
    con.row_factory = sqlite3.Row
    vms = [dict(r) for r in con.execute("SELECT * FROM voicemail")]
    boxes = [dict(r) for r in con.execute("SELECT * FROM mailboxes")]
    con.close()
    vm, = vms
    assert vm["mailbox"] == "sales" and vm["call_id"] == c1["call_id"]
    assert vm["caller"] == "13911110001" and vm["heard"] == 0
    assert [(b["mailbox"], b["owner_agent"]) for b in boxes] == [("sales", "chen")]
    rel = Path(vm["path"]).relative_to(run.workdir / "voicemail")
    assert rel.parts[:4] == ("sales", "2026", "11", "23"), rel
    m = check_both_readers(vm["path"], 1, "Signed Integer PCM")[:, 0]
    assert vm["duration"] == pytest.approx(len(m) / 8000)
    assert len(e2e.find_prompt(m, speech_audio("system_error"))) == 1
    for name in ("leave_message", "message_saved", "goodbye"):   # the server's side is not in it
        assert not e2e.find_prompt(m, prompt_library.get(name, "zh"), threshold=0.5), name
    start, = [e for e in run.events("voicemail.record_start") if e.call_id == c1["call_id"]]
    stop, = [e for e in run.events("voicemail.record_stop") if e.call_id == c1["call_id"]]
    assert start.data["stored"] is True and start.data["directory"].endswith("voicemail/sales")
    assert stop.data["stored"] is True and stop.data["path"] == vm["path"]
    assert stop.data["message_id"] == vm["id"] and stop.data["reason"] == "terminator"
    # a voicemail is also a recording of its call (mono, caller side), listed with it
    assert [r["path"] for r in recs if r["call_id"] == c1["call_id"] and r["layout"] == "mono"
            and r["format"] == "pcm16"] == [vm["path"]]


# ---------------------------------------------------------------- c. transfer keeps one file; pause by command
SCENARIO_C = f"""
[scenario]
duration = 300.0
seed = 7

[[caller]]
at = 1.0
line = "hotline_e2e:0"
number = "13911110000"
hangup_after = 60.0
script = [{{ after_silence = 0.6, digits = "8" }}, {{ after = 5.0, play = "{speech('business_hours')}" }}]

[[outbound]]                       # answers after 8 s of ringback, speaks, hangs up
lines = "hotline_e2e:1-3"
result = "answer"
ring = 8.0
script = [{{ after = 1.0, play = "{speech('closed')}" }}, {{ after = 4.0, hangup = true }}]
"""

RULES_C = """
[recording]
layout = "stereo"
pause_by_command = true
"""


def test_transfer_keeps_one_file_and_the_admin_command_pauses_it(e2e, tmp_path):
    done: dict = {}

    def until(s) -> bool:
        dialing = [e for e in s.bus.journal if e.kind == "call.dialing"]
        tick = s.boards[0].engine.tick
        if dialing and "pause" not in done and tick >= dialing[0].tick + 50:
            done["pause"] = s.admin_record("hotline:0", True)
            done["pause_again"] = s.admin_record("hotline:0", True)
            with pytest.raises(LookupError, match="no call 'c999' in progress"):
                s.admin_record("c999", True)
        elif "pause" in done and "resume" not in done and tick >= dialing[0].tick + 150:
            done["resume"] = s.admin_record(done["pause"]["call_id"], False)
        return len(s.records) >= 2 and e2e.all_idle(s)

    run = e2e.run(scenario=SCENARIO_C, server_config=server_config(tmp_path, RULES_C),
                  max_sim_seconds=120, until=until, rules_poll=0)
    calls, recs = db(run)
    inbound, = [c for c in calls.values() if c["direction"] == "inbound"]
    outbound, = [c for c in calls.values() if c["direction"] == "outbound"]
    assert outbound["called"] == "13800138000" and outbound["recording_rule"] is None
    r, = recs                                       # one file for the whole call
    assert r["call_id"] == inbound["call_id"] and r["status"] == "kept"
    x = check_both_readers(r["path"], 2, "Signed Integer PCM")
    caller = one(run, 0)
    callee, = [c for c in run.calls if c["direction"] == "out"]
    # the callee on the right, when they spoke (all but the first half second: without answer
    # supervision the answer is the voice, confirmed 0.5 s into it); never on the left
    skip = int(0.8 * 8000)
    words = speech_audio("closed")[skip:]
    t_callee = callee["answer"] + 1.0 + skip / 8000 - caller["answer"]
    found, = e2e.find_prompt(x[:, 1], words)
    assert abs(found[0] - t_callee) < 0.1, (found, t_callee)
    assert not e2e.find_prompt(x[:, 0], words)
    said, = e2e.find_prompt(x[:, 0], speech_audio("business_hours"))   # the caller, left
    assert not e2e.find_prompt(x[:, 1], speech_audio("business_hours"))
    # the file ran until the caller's call ended (after the callee hung up)
    assert abs(r["duration"] - (caller["released"] - caller["answer"])) < 0.1

    # pause by the admin command while the caller heard music: a marked silent gap
    assert done["pause"]["paused"] is True and done["pause"]["changed"] is True
    assert done["pause_again"] == {**done["pause"], "changed": False, "why": "already paused"}
    assert done["resume"]["paused"] is False and done["resume"]["changed"] is True
    gap, = r["gaps"]
    start, = tick_of(run, "recording.decision", inbound["call_id"])
    p, = [e for e in run.events("recording.paused") if e.call_id == inbound["call_id"]]
    q, = [e for e in run.events("recording.resumed") if e.call_id == inbound["call_id"]]
    assert p.data["reason"] == "pause by admin API"
    # (a command comes between ticks: it takes effect at the engine's next tick)
    assert (gap["start"], gap["end"], gap["why"]) == (
        pytest.approx((p.tick - start) * TICK, abs=2 * TICK),
        pytest.approx((q.tick - start) * TICK, abs=2 * TICK), "pause")
    a, b = int(gap["start"] * 8000), int(gap["end"] * 8000)
    assert b - a >= 8000 and not x[a:b].any()
    assert rms(x[b:b + 4000, 1]) > 300 and rms(x[a - 4000:a, 1]) > 300   # music before and after


# ---------------------------------------------------------------- d. rules reload during calls
SCENARIO_D = """
[scenario]
duration = 300.0
seed = 8

[[caller]]
at = 1.0
line = "hotline_e2e:0"
number = "13911110000"
hangup_after = 14.0

[[caller]]
at = 1.0
line = "hotline_e2e:1"
number = "13922220000"
hangup_after = 14.0

[[caller]]                          # a new call after the reload: the new rules
at = 20.0
line = "hotline_e2e:3"
number = "13911110000"
hangup_after = 6.0
"""


def test_rules_reload_stops_an_excluded_call_keeps_the_others_and_is_audited(e2e, tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text('layout = "stereo"\n')
    state: dict = {}

    def until(s) -> bool:
        decided = [e for e in s.bus.journal if e.kind == "recording.decision"]
        if len(decided) >= 2 and "done" not in state and s.boards[0].engine.tick >= decided[0].tick + 150:
            rules.write_text('layout = "stereo"\n[nevr]\nnumbers = ["13911110000"]\n')
            state["bad"] = s.recording.poll_rules()
            rules.write_text('layout = "stereo"\n\n[never]\nnumbers = ["13911110000"]\n')
            state["good"] = s.recording.poll_rules()
            state["touch"] = s.recording.poll_rules()     # unchanged file: nothing
            state["sighup"] = s.reload(s.cfg.file)         # the config reload reloads the rules too
            state["done"] = s.boards[0].engine.tick
        return len(s.records) >= 3 and e2e.all_idle(s)

    run = e2e.run(scenario=SCENARIO_D,
                  server_config=server_config(tmp_path, f'[recording]\nrules = "{rules}"\n'),
                  max_sim_seconds=120, until=until, rules_poll=0)
    assert state["bad"].ok is False and "nevr" in state["bad"].error
    assert state["good"].ok is True and state["touch"] is None and state["sighup"] is True
    calls, recs = db(run)
    first = {c["channel"]: c for c in calls.values() if c["answer"] < "2026-11-23T02:00:10"}
    excluded, kept = first[0], first[1]
    later, = [c for c in calls.values() if c["channel"] == 3]

    # the call the new rules exclude: stopped at the reload, and discarded (never: what was
    # recorded is excluded too); the stop reason says it was the reload
    r0, = [r for r in recs if r["call_id"] == excluded["call_id"]]
    assert r0["status"] == "discarded" and r0["stop_reason"].startswith("rules reload: stopped: ")
    assert "never.numbers" in r0["discard_reason"] or "exclude what was recorded" in r0["discard_reason"]
    assert not Path(r0["path"]).exists() and not Path(r0["path"] + ".part").exists()
    assert excluded["recording_rule"].endswith("never.numbers")
    assert excluded["recording_note"].startswith("rules reload: discarded: ")
    stop, = [e for e in run.events("recording.rules_stop")]
    assert stop.call_id == excluded["call_id"] and stop.data["source"] == "rules reload"
    assert stop.tick == state["done"] or stop.tick <= state["done"]
    # the other call in progress keeps its decision and its whole file
    r1, = [r for r in recs if r["call_id"] == kept["call_id"]]
    assert r1["status"] == "kept" and r1["stop_reason"] == "call end"
    assert abs(r1["duration"] - (one(run, 1)["released"] - one(run, 1)["answer"])) < 0.1
    check_both_readers(r1["path"], 2, "Signed Integer PCM")
    # a new call gets the new rules
    assert later["recording_note"].startswith("not recorded: caller 13911110000 matches")
    assert not [r for r in recs if r["call_id"] == later["call_id"]]

    # events and the audit log (one JSON line per attempt, documented in docs/recording.md)
    rejected, = run.events("recording.rules_rejected")
    assert "rules.toml:2" in rejected.data["error"] and "nevr" in rejected.data["error"]
    reloaded = [e.data for e in run.events("recording.rules_reloaded")]
    assert [d["source"] for d in reloaded] == ["start", "file watch", "command"]
    assert reloaded[1]["changes"] == ["added never.numbers = 13911110000"]
    audit = [json.loads(line) for line in (run.workdir / "rules-audit.jsonl").read_text().splitlines()]
    assert [(a["seq"], a["source"], a["result"]) for a in audit] == [
        (1, "start", "applied"), (2, "file watch", "rejected"), (3, "file watch", "applied"),
        (4, "command", "applied")]
    assert audit[1]["error"] == rejected.data["error"] and audit[1]["changes"] == []
    assert [c["text"] for c in audit[2]["changes"]] == ["added never.numbers = 13911110000"]
    assert audit[2]["hash_before"] == audit[0]["hash_after"] != audit[2]["hash_after"]
    assert audit[3]["changes"] == [] and audit[3]["hash_before"] == audit[2]["hash_after"]
    assert audit[2]["time"].startswith("2026-11-23T")     # the server's (simulated) clock


# ---------------------------------------------------------------- e. numeric agent ids, as call centres number them
SCENARIO_E = """
[scenario]
duration = 300.0
seed = 8

[[agent]]
phones = "hotline_e2e:5-7"
answer_after = 1.0
script = [{ after = 4.0, hangup = true }]

[[caller]]                         # to queue service: agent 1002
at = 1.0
line = "hotline_e2e:0"
number = "13911110000"
script = [{ after_silence = 0.6, digits = "0" }]

[[caller]]                         # to queue desk: agent 1003
at = 1.0
line = "hotline_e2e:1"
number = "13911110001"
script = [{ after_silence = 0.6, digits = "2" }]

[[caller]]                         # to queue trainee: agent 2001
at = 1.0
line = "hotline_e2e:2"
number = "13911110002"
script = [{ after_silence = 0.6, digits = "3" }]
"""

RULES_E = """
[recording]
layout = "stereo"

[recording.never]
agents = "2001"

[recording.exclude]
agents = "1001-1005,!1003"
"""


def numeric_agents_config(tmp_path: Path) -> str:
    """server-recording.toml with agents 1002, 1003 and 2001, one queue each."""
    text = (CONFIGS / "server-recording.toml").read_text()
    for old, new in (
            ('[agents.chen]\nphone = "hotline:5"',
             '[agents.1002]\nphone = "hotline:5"\n\n[agents.1003]\nphone = "hotline:6"\n\n'
             '[agents.2001]\nphone = "hotline:7"'),
            ('members = ["chen"]', 'members = ["1002"]\n\n[queues.desk]\nmembers = [1003]\n\n'
                                   '[queues.trainee]\nmembers = ["2001"]'),
            ('"0" = { action = "queue", queue = "service" }',
             '"0" = { action = "queue", queue = "service" }\n"2" = { action = "queue", queue = "desk" }\n'
             '"3" = { action = "queue", queue = "trainee" }'),
            ('owner = "chen"', 'owner = "1002"')):
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / "server-recording.toml"
    path.write_text(text + RULES_E)
    return str(path)


def test_numeric_agent_ids_in_the_rules_decide_as_rules_explain_says(e2e, tmp_path):
    from voiceserver.cli.rules import main as rules_main
    config = numeric_agents_config(tmp_path)
    run = e2e.run(scenario=SCENARIO_E, server_config=config, max_sim_seconds=120,
                  until=lambda s: len(s.records) >= 3 and e2e.all_idle(s), rules_poll=0)
    calls, recs = db(run)
    by_chan = {c["channel"]: c for c in calls.values() if c["direction"] == "inbound"}
    assert {by_chan[c]["agent"] for c in (0, 1, 2)} == {"1002", "1003", "2001"}
    by_agent = {by_chan[c]["agent"]: by_chan[c] for c in (0, 1, 2)}
    rec_of = {c["agent"]: [r for r in recs if r["call_id"] == c["call_id"]] for c in by_agent.values()}
    # 1003 is taken out of the exclusion: recorded to the end, the agent on the right
    r, = rec_of["1003"]
    assert r["status"] == "kept" and r["stop_reason"] == "call end"
    assert by_agent["1003"]["recording_rule"].endswith(" default")
    # 1002 is excluded: the recording stopped when the agent came on; 2001: never
    for agent, key in (("1002", "recording.exclude.agents"), ("2001", "recording.never.agents")):
        row = by_agent[agent]
        assert row["recording_rule"].endswith(key), row
        r, = rec_of[agent]
        assert r["stop_reason"] == f"the call changed: stopped: agent {agent} is in {key} " \
                                   f"({'2001' if agent == '2001' else '1001-1005,!1003'})", r
        assert r["duration"] < rec_of["1003"][0]["duration"]   # the IVR part only, kept
        stop, = [e for e in run.events("recording.rules_stop") if e.call_id == row["call_id"]]
        assert stop.data["rule"].endswith(key) and stop.data["source"] == "the call changed"
    # rules explain on the same config says the same for each agent
    for agent, key in (("1002", "recording.exclude.agents"), ("1003", "default"),
                       ("2001", "recording.never.agents")):
        out, err = io.StringIO(), io.StringIO()
        assert rules_main(["explain", config, "--channel", "hotline:0", "--agent", agent,
                           "--at", "2026-11-23 10:00", "--json"], out=out, err=err) == 0, err
        decision = json.loads(out.getvalue())["decision"]
        assert decision["rule"]["key"] == key and decision["record"] is (agent == "1003"), decision
