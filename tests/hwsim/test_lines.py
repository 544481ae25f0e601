"""FXO port + central-office line: cadence, caller ID, answer, disconnects, outbound."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from hwsim.parties import Action
from hwsim.scenario import Scenario

from sigtools import on_runs, peak_freqs
from worldkit import make


def test_china_ring_cadence_edges_at_exact_ticks(hotline_cfg):
    h = make(hotline_cfg, Scenario().caller(1.0, "hotline:2", "8001", give_up=None))
    h.run(15)
    # caller arrives at tick 50 (1 s at 20 ms); 1 s on / 4 s off
    assert h.kinds(2) == [(50, "RING_START"), (100, "RING_STOP"), (300, "RING_START"),
                          (350, "RING_STOP"), (550, "RING_START"), (600, "RING_STOP")]


def test_cadence_scales_with_block_and_custom_cadence(hotline_cfg):
    from dataclasses import replace
    hotline_cfg.fxo[2] = replace(hotline_cfg.fxo[2], ring_cadence=(0.4, 0.2, 0.4, 2.0))
    h = make(hotline_cfg, Scenario().caller(0.0, "hotline:2", "8001", give_up=None), block=80)
    h.run(3.1)
    # 80-sample ticks: 100 per second; the caller is due at tick 0, which the
    # host's first step (tick 1) runs: edges count from there
    assert [t for t, _ in h.kinds(2)] == [1, 41, 61, 101, 301]
    assert [k for _, k in h.kinds(2)] == ["RING_START", "RING_STOP", "RING_START", "RING_STOP", "RING_START"]


def test_fsk_caller_id_sits_between_first_and_second_ring(hotline_cfg):
    from dsp.callerid import CallerIdDetector
    h = make(hotline_cfg, Scenario().caller(1.0, "hotline:0", "13800138000", give_up=None))
    h.record(0)
    h.run(7)
    audio = h.heard(0)
    runs = on_runs(audio)
    assert len(runs) == 1
    start, length = runs[0]
    first_stop = 100 * 160 / 8000      # tick 100 -> 2.0 s (rx log starts at tick 1 = 0.0 s)
    second_start = 300 * 160 / 8000
    assert first_stop + 0.5 - 0.04 <= start - 0.02 + 0.02 <= first_stop + 0.5 + 0.04
    assert start + length < second_start - 0.02
    det = CallerIdDetector(1)
    events = det.rx(audio[None, :].copy())
    assert [e.callerid.number for e in events if e.callerid] == ["13800138000"]
    # the date/time field is the simulated wall clock (default start 2026-01-05 09:00 +08:00)
    assert tuple(events[0].callerid.when) == (1, 5, 9, 0)


def test_dtmf_caller_id_comes_before_first_ring(hotline_cfg):
    h = make(hotline_cfg, Scenario().caller(1.0, "hotline:1", "135", give_up=None))
    h.record(1)
    h.run(4)
    audio = h.heard(1)
    first_ring = h.kinds(1)[0]
    assert first_ring[1] == "RING_START"
    runs = on_runs(audio)
    assert len(runs) == 5                      # A 1 3 5 C
    assert runs[-1][0] + runs[-1][1] <= (first_ring[0] - 1) * 160 / 8000
    a = audio[int(runs[0][0] * 8000):int((runs[0][0] + runs[0][1]) * 8000)]
    assert sorted(peak_freqs(a, 2)) == [pytest.approx(697, abs=8), pytest.approx(1633, abs=8)]  # 'A'


def _answer_when_ringing(h, chan):
    """Host answers at the first RING_START."""
    h.run(ticks=1)
    while not any(k == "RING_START" for _, k in h.kinds(chan)):
        h.run(ticks=1)
    h.send("HOOK", chan, 1)
    h.run(ticks=1)


def test_answer_stops_ring_and_caller_presses_digit_after_prompt_silence(hotline_cfg):
    sc = Scenario().caller(0.0, "hotline:2", "139", script=[Action(after_silence=1.0, digits="5")])
    h = make(hotline_cfg, sc)
    h.record(2)
    _answer_when_ringing(h, 2)
    assert h.kinds(2)[-1][1] == "RING_STOP"    # ring was on when the host answered
    answered = h.tick
    # the host plays a 2 s "prompt" (a 1 kHz tone), then is silent
    t = np.arange(160) / 8000
    prompt = (8000 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)

    def tx(host):
        host.tx[2] = prompt if host.tick - answered <= 100 else 0
    h.run(5, tx_fn=tx)
    audio = h.heard(2)[answered * 160:]
    runs = on_runs(audio)
    assert len(runs) == 1
    # prompt ends 2.0 s after answer; 1.0 s of silence; then the digit
    assert runs[0][0] == pytest.approx(3.0, abs=0.04)
    seg = audio[int(runs[0][0] * 8000):int((runs[0][0] + 0.09) * 8000)]
    assert sorted(peak_freqs(seg, 2)) == [pytest.approx(770, abs=8), pytest.approx(1336, abs=8)]  # '5'
    call = h.world.live[2]
    assert call.digits == [{"digits": "5", "at": pytest.approx(answered * 0.02 + 3.0, abs=0.03)}]
    # the far end kept what the host sent: 2 s of 1 kHz then silence
    heard = h.world.capture.peek(2)
    assert peak_freqs(heard[:16000]) == [pytest.approx(1000, abs=5)]
    assert np.all(heard[16160:] == 0)


def test_caller_speech_file_is_resampled_and_sent(hotline_cfg, tmp_path):
    path = tmp_path / "hello.wav"
    t = np.arange(16000) / 16000          # 1 s at 16 kHz of 600 Hz
    sf.write(path, 0.3 * np.sin(2 * np.pi * 600 * t), 16000)
    h = make(hotline_cfg, Scenario().caller(0.0, "hotline:3", "1", script=[Action(after=0.5, play=str(path))]))
    h.record(3)
    _answer_when_ringing(h, 3)
    start = h.tick
    h.run(2)
    runs = on_runs(h.heard(3)[start * 160:])
    assert len(runs) == 1
    assert runs[0][0] == pytest.approx(0.5, abs=0.03) and runs[0][1] == pytest.approx(1.0, abs=0.03)
    assert peak_freqs(h.heard(3)[start * 160 + 4800:start * 160 + 10000]) == [pytest.approx(600, abs=5)]


@pytest.mark.parametrize("chan,style,events", [
    (0, "loop-drop", ["LOOP_DROP", "LOOP_RESTORE"]),
    (1, "battery-reversal", ["BATTERY_REVERSAL"]),
    (2, "busy-tone", []),
])
def test_far_end_hangup_signals_per_line_config(hotline_cfg, chan, style, events):
    h = make(hotline_cfg, Scenario().caller(0.0, f"hotline:{chan}", "1", hangup_after=2.0))
    h.record(chan)
    _answer_when_ringing(h, chan)
    answered = h.tick
    h.run(4)
    after = [(t, k) for t, k in h.kinds(chan) if t > answered]
    assert [k for _, k in after] == events
    if events:
        assert after[0][0] == answered + 100
    if style == "loop-drop":
        assert after[1][0] - after[0][0] == 40            # 0.8 s open loop
    audio = h.heard(chan)[(answered + 100 - 1) * 160:]     # rx log index 0 is tick 1
    if style == "busy-tone":
        runs = on_runs(audio)
        assert [round(length, 2) for _, length in runs[:2]] == [0.35, 0.35]
        assert round(runs[1][0] - runs[0][0], 2) == 0.7
        assert peak_freqs(audio[:2800]) == [pytest.approx(450, abs=5)]
    else:
        assert not np.any(audio)
    h.send("HOOK", chan, 0)
    h.run(ticks=2)
    assert not np.any(h.heard(chan)[-320:])         # busy tone stops with the host's on-hook
    (call,) = h.world.calls
    assert (call.who_hung_up, call.disconnect) == ("caller", style)
    assert call.hangup == pytest.approx(call.answer + 2.0)
    assert call.released == pytest.approx(call.answer + 4.02)
    assert call.heard_seconds == pytest.approx(2.0, abs=0.03)


def test_host_hangs_up_first(hotline_cfg):
    h = make(hotline_cfg, Scenario().caller(0.0, "hotline:0", "1", hangup_after=10.0))
    _answer_when_ringing(h, 0)
    h.run(1)
    h.send("HOOK", 0, 0)
    h.run(12)
    assert [k for _, k in h.kinds(0)] == ["RING_START", "RING_STOP"]
    (call,) = h.world.calls
    assert call.who_hung_up == "host" and call.hangup == call.released


def test_caller_gives_up_while_ringing(hotline_cfg):
    h = make(hotline_cfg, Scenario().caller(0.0, "hotline:2", "1", give_up=5.5))
    h.run(8)
    # rings at 0 s (tick 1) and 5 s; gives up at 5.5 s during the second ring -> RING_STOP then
    assert h.kinds(2) == [(1, "RING_START"), (51, "RING_STOP"), (251, "RING_START"), (276, "RING_STOP")]
    (call,) = h.world.calls
    assert call.who_hung_up == "abandoned" and call.answer is None


def test_second_caller_on_busy_line_is_blocked(hotline_cfg):
    sc = Scenario().caller(0.0, "hotline:2", "1", give_up=None).caller(1.0, "hotline:2", "2")
    h = make(hotline_cfg, sc)
    h.run(2)
    (blocked,) = h.world.calls
    assert blocked.number == "2" and blocked.who_hung_up == "blocked"



def test_a_line_the_host_never_released_is_in_the_report_marked_so(hotline_cfg):
    """The host answers and then never lets go (a crashed server): a second caller to the
    line is blocked, and at the end the first call is still reported, marked never released."""
    sc = Scenario().caller(0.0, "hotline:2", "1", hangup_after=2.0).caller(5.0, "hotline:2", "2")
    h = make(hotline_cfg, sc)
    _answer_when_ringing(h, 2)
    h.run(7)
    (blocked,) = h.world.calls
    assert blocked.number == "2" and blocked.who_hung_up == "blocked"
    h.world.finish()
    blocked, held = h.world.calls
    assert held.number == "1" and held.who_hung_up == "caller" and held.released is None
    assert held.never_released and "never released" in held.notes[-1]
    assert not blocked.never_released
    assert held.to_json()["never_released"] is True


def test_a_call_the_host_released_is_not_marked(hotline_cfg):
    h = make(hotline_cfg, Scenario().caller(0.0, "hotline:2", "1", hangup_after=2.0))
    _answer_when_ringing(h, 2)
    h.run(3)
    h.send("HOOK", 2, 0)
    h.run(ticks=1)
    h.world.finish()
    (call,) = h.world.calls
    assert call.released is not None and not call.never_released

def _dial(h, chan, digits_seconds=0.5):
    """Host goes off-hook, waits 1 s, sends a tone burst (its "digits")."""
    h.send("HOOK", chan, 1)
    h.record(chan)
    h.run(1)
    t = np.arange(160) / 8000
    burst = (6000 * np.sin(2 * np.pi * 941 * t) + 6000 * np.sin(2 * np.pi * 1336 * t)).astype(np.int16)
    start = h.tick

    def tx(host):
        host.tx[chan] = burst if host.tick - start <= digits_seconds * 50 else 0
    return tx


@pytest.mark.parametrize("result", ["answer", "busy", "no-answer"])
def test_outbound_dial_tone_then_result(hotline_cfg, result):
    sc = Scenario().plan_outbound("hotline:1", result, ring=2.0, hangup_after=3.0)
    h = make(hotline_cfg, sc)
    tx = _dial(h, 1)
    assert peak_freqs(h.heard(1)[800:8000]) == [pytest.approx(450, abs=5)]
    assert on_runs(h.heard(1)) == [(0.0, pytest.approx(1.0, abs=0.03))]      # continuous dial tone
    h.run(10, tx_fn=tx)
    audio = h.heard(1)[8000:]
    # dial tone stops within two ticks of the first digit
    assert on_runs(audio[:800])[0] == (0.0, pytest.approx(0.03, abs=0.011))
    runs = on_runs(audio[800:])
    # after 0.5 s of digits + 3 s of host silence the far end acts
    assert runs[0][0] == pytest.approx(3.5 - 0.1, abs=0.05)
    if result == "busy":
        assert [round(length, 2) for _, length in runs[:3]] == [0.35, 0.35, 0.35]
    else:
        assert runs[0][1] == pytest.approx(1.0, abs=0.03)                    # ringback 1 s on
    rev = [t for t, k in h.kinds(1) if k == "BATTERY_REVERSAL"]
    if result == "answer":
        assert len(runs) == 1                                               # answered after 2 s of ringback
        assert len(rev) == 2                                                # answer, then far-end clear
        assert (rev[1] - rev[0]) == 150                                     # callee hung up after 3 s
    else:
        assert rev == []
    h.send("HOOK", 1, 0)
    h.run(ticks=1)
    (call,) = h.world.calls
    assert call.direction == "out" and call.result == result
    assert call.who_hung_up == ("caller" if result == "answer" else "host")
    # the far end kept the host's digits (0.5 s of tone) at the start of the call
    assert on_runs(call.heard)[0] == (pytest.approx(1.0, abs=0.03), pytest.approx(0.5, abs=0.03))


def test_line_cut_and_restore(hotline_cfg):
    sc = (Scenario().caller(0.0, "hotline:0", "1")
          .fault(3.0, "line-cut", "hotline:0").fault(5.0, "line-restore", "hotline:0")
          .caller(4.0, "hotline:0", "2"))
    h = make(hotline_cfg, sc)
    _answer_when_ringing(h, 0)
    h.run(6)
    kinds = [k for _, k in h.kinds(0)]
    assert kinds == ["RING_START", "RING_STOP", "LOOP_DROP", "LOOP_RESTORE"]
    assert len(h.world.calls) == 1          # the cut call stays open until the host lets go
    h.send("HOOK", 0, 0)
    h.run(ticks=1)
    blocked, cut = h.world.calls
    assert cut.released == pytest.approx(h.tick * 0.02)
    assert cut.who_hung_up == "fault" and blocked.who_hung_up == "blocked"


def test_host_hangs_up_while_the_line_is_cut(hotline_cfg):
    sc = Scenario().caller(0.0, "hotline:0", "1").fault(2.0, "line-cut", "hotline:0")
    h = make(hotline_cfg, sc)
    _answer_when_ringing(h, 0)
    h.run(3)
    h.send("HOOK", 0, 0)
    h.run(ticks=1)
    (call,) = h.world.calls
    assert call.who_hung_up == "fault" and call.released == pytest.approx(h.tick * 0.02)
    assert h.world.lines[0].state == "cut"


def test_outbound_number_is_decoded_from_the_hosts_dtmf(hotline_cfg):
    from dsp.dtmf import DtmfDetector, digits_of, dtmf_signal
    h = make(hotline_cfg, Scenario().plan_outbound("hotline:2", "busy"))
    h.send("HOOK", 2, 1)
    h.run(1)
    sig = dtmf_signal("01062345678#")
    start = h.tick

    def tx(host):
        i = (host.tick - start - 1) * 160
        chunk = sig[i:i + 160]
        host.tx[2] = 0
        host.tx[2, :len(chunk)] = chunk
    h.record(2)
    h.run(7, tx_fn=tx)
    call = h.world.live[2]
    assert call.dialled == "01062345678#" and call.result == "busy"
    # and the caller's digits, sent toward the host, decode as what the script pressed
    sc = Scenario().caller(0.0, "hotline:3", "1", script=[Action(after=0.2, digits="*159#")])
    h2 = make(hotline_cfg, sc)
    h2.record(3)
    _answer_when_ringing(h2, 3)
    h2.run(2)
    det = DtmfDetector(1)
    assert digits_of(det.rx(h2.heard(3)[None, :].copy())) == "*159#"
