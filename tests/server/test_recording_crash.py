"""Crash safety of recordings with the real `voiceboard serve` process.

hwsim serves the hotline in lockstep (a separate process); `voiceboard serve
--lockstep-sync` records a long call (queue -> agent, 10 simulated minutes);
the test kills the server with SIGKILL while the file is being written,
starts `voiceboard serve` again on the same config, and checks what the
restart's recovery made of it: the `.part` file became a valid WAV (soxi
and soundfile agree on it) holding the call up to the crash, its row says
`kept`, `recovered`, and the call row is completed. A voicemail message
being left at the crash is recovered the same way and becomes a message in
its mailbox. The call row, written as the call went, keeps the agent, the queue
and the IVR path, and gets an estimated end (the crash is not a hang-up).
Waits are guards against a wedged process, never timing checks.
"""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voiceserver.recording.calldb import CRASHED

from servekit import REPO, events, hwsim, serve, server_config, stop, wait_for

HEADER = 44                  # the recorder's PCM16 WAV header
BYTES_PER_SECOND = 8000 * 2 * 2
CRASH_AFTER = 20.0           # seconds of audio on disk before the kill
SPEECH = REPO / "prompts" / "en" / "business_hours.wav"     # 3.58 s
IVR_PATH_TO_QUEUE = ["flow:main", "play:welcome", "menu:main", "key:0", "queue:service"]

SCENARIO = f"""
[scenario]
duration = 900.0
seed = 11

[[agent]]
phones = "BOARD:5"
answer_after = 2.0
script = [{{ after = 1.0, play = "{REPO / 'prompts/en/your_call_is_important.wav'}" }}]

[[caller]]
at = 1.0
line = "BOARD:0"
number = "13911110000"
hangup_after = 600.0
script = [{{ after_silence = 0.6, digits = "0" }}]

[[caller]]                  # leaves a long voicemail message: being recorded at the crash
at = 1.0
line = "BOARD:1"
number = "13911110001"
hangup_after = 600.0
script = [{{ after_silence = 0.6, digits = "9" }}, {{ after_silence = 1.0, play = "{SPEECH}" }},
          {{ after = 0.2, play = "{SPEECH}" }}, {{ after = 0.2, play = "{SPEECH}" }},
          {{ after = 0.2, play = "{SPEECH}" }}, {{ after = 0.2, play = "{SPEECH}" }},
          {{ after = 0.2, play = "{SPEECH}" }}, {{ after = 0.2, play = "{SPEECH}" }}]
"""


def _speech(name: str) -> np.ndarray:
    from dsp.audiofile import read_audio
    return read_audio(str(REPO / "prompts" / "en" / f"{name}.wav"))[0]


def _parts(root: Path, chan: int | None = None) -> list[Path]:
    found = sorted(root.rglob("*.wav.part")) if root.exists() else []
    return [p for p in found if chan is None or f"_ch{chan}_" in p.name]


def test_kill_9_mid_recording_then_restart_recovers_the_file_and_completes_the_call(
        tmp_path, e2e, prompt_library):
    name = f"crash{os.getpid()}"
    cfg = server_config(tmp_path / "server.toml", name, '[recording]\nlayout = "stereo"\n')
    recordings = tmp_path / "recordings"
    first = second = None
    hw = hwsim(tmp_path, name, SCENARIO)
    try:
        first = serve(cfg, tmp_path / "serve1.log")
        want = HEADER + int(CRASH_AFTER * BYTES_PER_SECOND)
        wait_for(lambda: any(p.stat().st_size >= want for p in _parts(recordings, 0)),
                  f"{CRASH_AFTER:.0f} s of audio in a .part file", [hw, first])
        part, = _parts(recordings, 0)
        first.send_signal(signal.SIGKILL)
        assert first.wait(30) == -signal.SIGKILL
        seen = part.stat().st_size                 # everything written before the crash is there
        assert seen >= want
        with open(part, "rb") as f:                # the header's sizes lag (updated ~1/s):
            assert struct.unpack_from("<I", f.read(HEADER), 40)[0] <= seen - HEADER   # at most
        vm_part, = _parts(tmp_path / "voicemail")        # the message being left
        con = sqlite3.connect(tmp_path / "calls.db")
        (status, call_id), = con.execute("SELECT status, call_id FROM recordings "
                                         "WHERE path LIKE '%_ch0_%'").fetchall()
        (end,), = con.execute("SELECT \"end\" FROM calls WHERE call_id = ?", (call_id,)).fetchall()
        con.close()
        assert status == "recording" and end is None   # the crash left them open

        # restart: recovery runs before anything is recorded, and says what it did
        log2 = tmp_path / "serve2.log"
        second = serve(cfg, log2)
        wait_for(lambda: '"kind": "recording.recovered"' in log2.read_text(), "the recovery event",
                  [hw, second])
        wait_for(lambda: '"kind": "board.start"' in log2.read_text(), "board.start", [hw, second])
        second.send_signal(signal.SIGTERM)
        assert second.wait(60) == 0, log2.read_text()
        text = log2.read_text()
        assert "recovered after a crash: " in text and call_id in text
        recovered = events(log2, "recording.recovered")
        assert len(recovered) == 3                  # line 0's call, line 1's call and message
        event, = [e for e in recovered if e["path"] == str(part)[:-len(".part")]]
        assert event["call_id"] == call_id and event["status"] == "kept"

        # the file: no .part left, a header that matches the data, readable by soxi and soundfile
        assert not _parts(recordings) and not _parts(tmp_path / "voicemail")
        path = Path(str(part)[:-len(".part")])
        assert event["path"] == str(path)
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(HEADER)
        riff, data = struct.unpack_from("<I", head, 4)[0], struct.unpack_from("<I", head, 40)[0]
        assert data == size - HEADER and riff == size - 8 and data % 4 == 0
        frames = data // 4
        soxi = {flag: subprocess.run(["soxi", flag, str(path)], capture_output=True, text=True,
                                     timeout=30).stdout.strip() for flag in ("-c", "-r", "-s", "-D")}
        assert (soxi["-c"], soxi["-r"], int(soxi["-s"])) == ("2", "8000", frames), soxi
        x, rate = sf.read(path, dtype="int16", always_2d=True)
        assert rate == 8000 and x.shape == (frames, 2)
        # up to the crash: at least what was on disk when it was killed (whole frames)
        assert frames >= (seen - HEADER) // 4 and frames / 8000 >= CRASH_AFTER
        assert frames / 8000 < 600.0                 # not the whole call: it was cut by the crash
        # and it is the call: the welcome on the right from the start, the agent's words later
        welcome = prompt_library.get("welcome", "zh")
        assert [round(t, 2) for t, _ in e2e.find_prompt(x[:, 1], welcome)] == [0.0]
        agent_words = e2e.find_prompt(x[:, 1], _speech("your_call_is_important"))
        assert len(agent_words) == 1 and agent_words[0][0] > 7.0      # after the queue

        # the rows: the recording is kept and marked recovered; the call is completed
        con = sqlite3.connect(tmp_path / "calls.db")
        con.row_factory = sqlite3.Row
        rec = dict(con.execute("SELECT * FROM recordings WHERE call_id = ?", (call_id,)).fetchone())
        vm = [dict(r) for r in con.execute("SELECT * FROM voicemail")]
        statuses = [r[0] for r in con.execute("SELECT status FROM recordings")]
        call = dict(con.execute("SELECT * FROM calls WHERE call_id = ?", (call_id,)).fetchone())
        con.close()
        assert (rec["status"], rec["recovered"], rec["stop_reason"]) == ("kept", 1, "recovered after crash")
        assert rec["duration"] == pytest.approx(frames / 8000, abs=1e-3)
        assert rec["bytes"] == data
        assert call["end"] is not None and call["disposition"] == CRASHED   # the end is an estimate
        assert call["duration"] == pytest.approx(frames / 8000, abs=0.05)
        # what the row was given as the call went is all there: the agent, the queue, the IVR path
        assert (call["agent"], call["queue"], call["caller"]) == ("chen", "service", "13911110000")
        assert json.loads(call["ivr_path"]) == IVR_PATH_TO_QUEUE, call["ivr_path"]
        assert call["answer"] < call["agent_answer"] <= call["last_seen"] <= call["end"]
        # every file being written was recovered: line 0's, line 1's call, line 1's message
        assert statuses == ["kept"] * 3
        # the voicemail message cut by the crash is a message in its mailbox, with its audio
        msg, = vm
        vm_path = Path(str(vm_part)[:-len(".part")])
        assert msg["mailbox"] == "sales" and msg["path"] == str(vm_path) and msg["caller"] == "13911110001"
        m, rate = sf.read(vm_path, dtype="int16", always_2d=True)
        assert m.shape[1] == 1 and msg["duration"] == pytest.approx(len(m) / 8000, abs=1e-3)
        assert len(e2e.find_prompt(m[:, 0], _speech("business_hours"))) >= 1
        vm_event = next(json.loads(line.split("event ", 1)[1]) for line in text.splitlines()
                        if '"kind": "recording.recovered"' in line and str(vm_path) in line)
        assert vm_event["mailbox"] == "sales" and vm_event["message_id"] == msg["id"]
    finally:
        stop([first, second, hw])
