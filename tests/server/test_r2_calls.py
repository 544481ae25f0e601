"""E1 R2 calls in the call controller, at the event level (no engine thread, no hwsim).

The far end is a test double (r2farkit), written independently of
voiceserver.r2 and of dsp.r2mf's generator: a China No.1 carrier switch that
sends exact sequences, ABCD bits as CAS events and forward MF signals as audio
made with numpy at the Q.441 frequencies, and hears the server's backward
signals in its tx audio with its own Goertzel filters. Between the two runs what the
engine runs for E1 R2 channels (voiceserver.core.e1.R2Media: the batched
R2MfReceiver and R2MfGenerator) and the controller itself.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
from r2farkit import (
    ANSWER,
    BWD_HZ,
    CLEAR_BACK,
    CLEAR_FORWARD,
    FWD_HZ,
    IDLE,
    SEIZE,
    SEIZE_ACK,
    FarGlare,
    FarIncoming,
    Harness,
    detect,
    tone,
)

from dsp.dtmf import DtmfEvent
from voiceserver.core.e1 import REGISTER_GIVE_UP, E1R2Trunk, R2Media
from voiceserver.core.events import ServerEventKind

CONFIGS = Path(__file__).parent / "configs"
TPS = 50
BLOCK = 160
RATE = 8000
START = dt.datetime(2026, 12, 3, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def h(prompt_library):
    return Harness(prompt_library)


def test_an_inbound_china_call_reaches_the_flow_of_its_dnis_with_ani_and_category(h):
    far = h.seize(1, "95566", "01062345678")
    h.run(6, until=lambda: far.state == "answered")
    assert far.state == "answered", (far.state, far.step, far.heard)
    assert far.b_signal == 1                           # accept with charge (B-1)
    assert far.heard[:3] == [6, 1, 1]                  # A-6 (send category), then A-1 each
    offer = h.events(ServerEventKind.CALL_OFFER)[0]
    assert (offer["dnis"], offer["ani"], offer["category"]) == ("95566", "01062345678",
                                                                 "national_subscriber")
    answer = h.events(ServerEventKind.CALL_ANSWER)[0]
    assert answer["call_id"] == offer["call_id"]
    assert h.cas_out[1] == [SEIZE_ACK, ANSWER]          # seize acknowledge, answer
    play = h.events(ServerEventKind.CALL_PLAY)[0]
    assert play["items"] == ["welcome"]                # the flow "hotline" of DNIS 95566
    # the caller clears forward: the call ends, its record has what was signalled
    h.cas(1, far.clear_forward())
    h.run(1)
    end = h.events(ServerEventKind.CALL_END)[0]
    assert end["reason"] == "caller cleared forward" and end["answered"]
    rec = h.ctl.records[-1]
    assert (rec.dnis, rec.ani, rec.category, rec.caller, rec.called) == (
        "95566", "01062345678", "national_subscriber", "01062345678", "95566")
    assert h.cas_out[1][-1] == IDLE                    # released: idle bits again
    assert h.rt.channels[1].state.value == "idle"


def test_the_signal_trace_of_a_call_starts_with_its_seizure(h):
    far = h.seize(2, "95566", "123")
    h.run(6, until=lambda: far.state == "answered")
    call_id = h.events(ServerEventKind.CALL_START)[0]["call_id"]
    trace = [e for e in h.events(ServerEventKind.CALL_SIGNAL) if e["call_id"] == call_id]
    assert [(e["dir"], e["signal"]) for e in trace[:4]] == [
        ("rx", "0011"), ("tx", "1111"), ("rx", "MF 9"), ("tx", "MF 6")]
    assert trace[0]["meaning"] == "seize" and "category" in trace[3]["meaning"]
    assert ("tx", "0111") in [(e["dir"], e["signal"]) for e in trace]      # our answer
    assert [e["ms"] for e in trace] == sorted(e["ms"] for e in trace)


def test_a_two_stage_number_is_accepted_without_charge_and_collects_an_extension(h):
    far = h.seize(3, "8000", "123")
    h.run(6, until=lambda: far.state == "answered")
    assert far.b_signal == 7                           # accept without charge (B-7)
    play = h.events(ServerEventKind.CALL_PLAY)[0]
    assert play["items"] == ["enter_account"]          # the flow "extension" asks for digits
    h.prompt_done(3)
    for digit in "101#":                               # the caller keys the extension (DTMF)
        h.tick += 1
        h.apply(h.ctl.handle(0, h.tick, [DtmfEvent(3, digit, h.tick * BLOCK, None)]))
        h.run(0.2)
    leg = h.ctl.legs[(0, 3)]
    assert leg.ivr.vars["extension"] == "101" and leg.digits == "101#"


def test_an_unknown_number_is_refused_unallocated_and_the_call_recorded(h):
    far = h.seize(1, "12345", "123")
    h.run(6, until=lambda: far.b_signal is not None)
    assert far.b_signal == 5                           # B-5 unallocated number
    h.cas(1, far.clear_forward())
    h.run(1)
    assert h.events(ServerEventKind.CALL_OFFER) == []
    end = h.events(ServerEventKind.CALL_END)[0]
    assert end["reason"] == "refused: unallocated" and not end["answered"]
    assert h.ctl.records[-1].dnis == "12345"


def test_a_span_alarm_ends_the_call_with_its_cause_and_a_complete_record(h):
    far = h.seize(1, "95566", "123")
    h.run(6, until=lambda: far.state == "answered")
    h.alarm(1, True)                                   # LOS on span 0
    h.run(0.2)
    end = h.events(ServerEventKind.CALL_END)[0]
    assert end["reason"] == "blocked: LOS"
    rec = h.ctl.records[-1]
    assert rec.reason == "blocked: LOS" and rec.answer is not None and rec.end is not None
    assert rec.dnis == "95566"
    assert h.rt.channels[1].state.value == "blocked"
    h.alarm(1, False)
    h.run(0.2)
    assert h.rt.channels[1].state.value == "idle"
    assert h.cas_out[1][-2:] == [0b1111, IDLE]          # blocked while in alarm, idle after
    # the line takes the next call; its trace starts with its own seizure, not the alarm's bits
    far = h.seize(1, "95566", "456")
    h.run(8, until=lambda: far.state == "answered")
    second = h.events(ServerEventKind.CALL_START)[-1]["call_id"]
    trace = [(e["dir"], e["signal"]) for e in h.events(ServerEventKind.CALL_SIGNAL) if e["call_id"] == second]
    assert trace[:2] == [("rx", "0011"), ("tx", "1111")]


def test_an_outbound_call_over_the_hunt_group_sends_dnis_ani_and_category_and_is_answered(h):
    """A caller's IVR transfers to 13800138000 over the trunk group "ct": its hunt group seizes
    the next free line (2); the far end takes DNIS, ANI and category signal by signal,
    accepts with B-1 and answers: the lines are bridged."""
    dnis, ani = "13800138000", "01062345678"
    script = [(1, 6), (1, 1)] + [(10 if d == "0" else int(d), 1) for d in ani] + [(15, 1)]
    script += [(10 if d == "0" else int(d), 1) for d in dnis[1:-1]] + [(10 if dnis[-1] == "0" else int(dnis[-1]), 3)]
    script += [(1, 1)]                                  # II-1 national subscriber -> B-1 accept
    h.far[2] = far2 = FarIncoming(2, script, answer=True)
    far1 = h.seize(1, "95577", "123")
    h.run(10, until=lambda: bool(h.events(ServerEventKind.CALL_BRIDGE)))
    assert far2.state == "answered", (far2.state, far2.step, far2.forward)
    start = [e for e in h.events(ServerEventKind.CALL_START) if e["chan"] == 2][0]
    assert (start["direction"], start["called"]) == ("outbound", dnis)
    assert h.events(ServerEventKind.CALL_BRIDGE)[0]["trunk"] == 2
    assert far1.state == "answered"
    assert h.cas_out[2][:1] == [SEIZE]


@pytest.mark.parametrize("script,reason", [
    ([(1, 3), (1, 2)], "outbound busy (B-2)"),             # A-3 at once (change to B), then B-x
    ([(1, 3), (1, 4)], "outbound congestion (B-4)"),
    ([(1, 3), (1, 5)], "outbound unallocated number (B-5)"),
    ([(1, 3), (1, 8)], "outbound line out of order (B-8)"),
    ([(1, 4)], "outbound congestion (A-4)"),               # congestion in group A
])
def test_the_b_signal_of_a_refused_outbound_call_is_its_hang_up_cause(h, script, reason):
    dnis, ani = "13800138000", "01062345678"      # what the IVR's transfer dials; the group's ANI
    h.far[2] = far2 = FarIncoming(2, script, answer=False)
    h.seize(1, "95577", "123")
    h.run(10, until=lambda: any(e["chan"] == 2 for e in h.events(ServerEventKind.CALL_END)))
    end = [e for e in h.events(ServerEventKind.CALL_END) if e["chan"] == 2][0]
    assert end["reason"] == reason, end
    assert far2.forward == [1, 1][:len(script)]
    h.run(0.5)
    assert h.cas_out[2] == [SEIZE, CLEAR_FORWARD] and far2.state == "idle"
    rec = [r for r in h.ctl.records if r.chan == 2][0]
    assert rec.reason.startswith(reason) and rec.dnis == dnis and rec.ani == ani


def test_a_call_not_answered_in_time_raises_the_answer_alarm(h):
    """The IVR does not answer (the config refuses the call): at the group's answer_alarm
    the alarm event comes, with how long the call waited."""
    h.rt.channels[1].answer_alarm_ms = 5000
    cfg = dataclasses.replace(h.ctl.cfg)
    object.__setattr__(cfg, "new_call", lambda *a, **k: None)    # nobody answers
    h.ctl.cfg = cfg
    far = h.seize(1, "95566", "123")
    h.run(8, until=lambda: bool(h.events(ServerEventKind.CALL_ANSWER_ALARM)))
    alarm = h.events(ServerEventKind.CALL_ANSWER_ALARM)
    assert len(alarm) == 1 and alarm[0]["limit_ms"] == 5000 and 5000 <= alarm[0]["waited_ms"] <= 5100
    assert far.state == "accepted" and h.events(ServerEventKind.CALL_ANSWER) == []


def test_an_answered_call_raises_no_answer_alarm(h):
    far = h.seize(1, "95566", "123")
    h.run(25, until=lambda: far.state == "answered")
    h.run(21)
    assert h.events(ServerEventKind.CALL_ANSWER_ALARM) == []


@pytest.mark.parametrize("control", ["mutual", "calling", "called"])
def test_release_control_when_the_caller_clears_forward_first(prompt_library, tmp_path, control):
    text = (CONFIGS / "server-r2.toml").read_text().replace('release_control = "mutual"',
                                                             f'release_control = "{control}"')
    (tmp_path / "r2.toml").write_text(text)
    h = Harness(prompt_library, tmp_path / "r2.toml")
    far = h.seize(1, "95566", "123")
    h.run(8, until=lambda: far.state == "answered")
    h.cas(1, far.clear_forward())
    h.run(1)
    ends = h.events(ServerEventKind.CALL_END)
    if control == "called":        # held: the called party (our IVR) decides when it ends
        assert ends == [] and h.rt.channels[1].state.value == "connected"
        h.prompt_done(1)           # welcome played: the flow says goodbye and hangs up
        h.run(0.2)
        h.prompt_done(1)
        h.run(0.5)
        ends = h.events(ServerEventKind.CALL_END)
        assert ends[0]["reason"] == "ivr: goodbye" or ends[0]["reason"].startswith("ivr")
    else:
        assert ends[0]["reason"] == "caller cleared forward"
    assert h.cas_out[1][-1] == IDLE and h.rt.channels[1].state.value == "idle"


@pytest.mark.parametrize("control", ["mutual", "calling"])
def test_release_control_when_the_server_clears_back_first(prompt_library, tmp_path, control):
    text = (CONFIGS / "server-r2.toml").read_text().replace('release_control = "mutual"',
                                                             f'release_control = "{control}"')
    (tmp_path / "r2.toml").write_text(text)
    h = Harness(prompt_library, tmp_path / "r2.toml")
    far = h.seize(1, "95566", "123")
    h.run(8, until=lambda: far.state == "answered")
    h.prompt_done(1)
    h.run(0.1)
    h.prompt_done(1)               # goodbye: the IVR hangs up, the server clears back
    h.run(0.5)
    assert far.state == "clear-back" and h.cas_out[1][-1] == CLEAR_BACK
    end = h.events(ServerEventKind.CALL_END)[0]
    assert end["reason"].startswith("ivr")
    h.cas(1, far.clear_forward())  # the caller's exchange clears forward: the line is free
    h.run(0.5)
    assert h.cas_out[1][-1] == IDLE and h.rt.channels[1].state.value == "idle"


def test_r2trace_prints_a_calls_signal_exchange_from_the_journal_and_the_log(h, tmp_path, capsys):
    from voiceserver.cli import r2trace
    from voiceserver.core.journal import EventJournal
    journal = EventJournal(str(tmp_path / "events.db"), "pbx1")
    h.bus.start_at(journal.open())
    h.bus.subscribe(journal, first=True)
    far = h.seize(1, "95566", "123")
    h.run(8, until=lambda: far.state == "answered")
    h.cas(1, far.clear_forward())
    h.run(1)
    journal.close()
    call_id = h.events(ServerEventKind.CALL_START)[0]["call_id"]
    rc = r2trace.main(["--journal", str(tmp_path / "events.db"), "--server-id", "pbx1", call_id])
    out = capsys.readouterr().out.splitlines()
    assert rc == 0 and out[0] == f"call {call_id} on e1:1"
    assert out[2].split() == ["0.000", "<-", "0011", "seize"]
    assert out[3].split()[1:3] == ["->", "1111"]
    assert any("[offered] dnis=95566 ani=123 category=national_subscriber" in line for line in out)
    assert any(line.split()[1:4] == ["->", "MF", "6"] and "A-6" in line for line in out)
    assert "[ended] reason=caller cleared forward" in out[-1] or any("[ended]" in line for line in out)
    # the same from the event log, as JSON, and the last call by default
    log = tmp_path / "serve.log"
    log.write_text("".join(json.dumps(e.as_dict()) + "\n" for e in h.bus.journal))
    rc = r2trace.main(["--log", str(log), "--json"])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rc == 0 and {r["call_id"] for r in rows} == {call_id}
    signals = [(r["dir"], r["signal"]) for r in rows if r["dir"]]
    assert signals[:2] == [("rx", "0011"), ("tx", "1111")] and ("tx", "0111") in signals
    assert rows[0]["t_ms"] == 0 and [r["t_ms"] for r in rows] == sorted(r["t_ms"] for r in rows)
    # a call without signals: exit 2, said on stderr
    assert r2trace.main(["--log", str(log), "no-such-call"]) == 2
    assert "no R2 signals for call no-such-call" in capsys.readouterr().err


def test_a_double_seizure_retries_the_outbound_call_on_another_line_of_the_group(h):
    h.far[2] = glare = FarGlare(2)
    h.far[3] = far3 = FarIncoming(3, [(1, 3), (1, 1)], answer=True)
    h.seize(1, "95577", "123")
    h.run(10, until=lambda: bool(h.events(ServerEventKind.CALL_BRIDGE)))
    end2 = [e for e in h.events(ServerEventKind.CALL_END) if e["chan"] == 2][0]
    assert end2["reason"].startswith("glare")
    retry = h.events(ServerEventKind.CALL_TRANSFER_RETRY)[0]
    assert (retry["why"], retry["line"], retry["retry"]) == ("glare", "e1:2", "e1:3")
    assert far3.state == "answered" and h.events(ServerEventKind.CALL_BRIDGE)[0]["trunk"] == 3
    h.run(1)
    assert glare.state == "idle" and h.cas_out[2][-1] == IDLE and h.rt.channels[2].state.value == "idle"


@pytest.mark.parametrize("control", ["mutual", "calling"])
def test_release_control_when_the_called_party_clears_back_first(prompt_library, tmp_path, control):
    """An outbound call answered; the called party hangs up (clear-back). Mutual: the call
    ends and the server clears forward. Calling-party control: the line is held for the
    caller; the called party may answer again."""
    text = (CONFIGS / "server-r2.toml").read_text().replace('release_control = "mutual"',
                                                             f'release_control = "{control}"')
    (tmp_path / "r2.toml").write_text(text)
    h = Harness(prompt_library, tmp_path / "r2.toml")
    h.far[2] = far2 = FarIncoming(2, [(1, 3), (1, 1)], answer=True)
    h.seize(1, "95577", "123")
    h.run(10, until=lambda: bool(h.events(ServerEventKind.CALL_BRIDGE)))
    h.cas(2, CLEAR_BACK)
    h.run(1)
    ends = [e for e in h.events(ServerEventKind.CALL_END) if e["chan"] == 2]
    if control == "mutual":
        assert ends[0]["reason"] == "far end cleared back"
        assert h.cas_out[2][-1] == CLEAR_FORWARD and far2.state == "idle"
    else:
        assert ends == [] and h.cas_out[2][-1] == SEIZE       # held: still seized
        h.cas(2, ANSWER)                                      # answers again
        h.run(0.5)
        assert h.rt.channels[2].state.value == "connected"
        assert [e["reason"] for e in h.events(ServerEventKind.CHANNEL_STATE)
                if e["chan"] == 2][-1] == "answered again"


def test_a_full_span_takes_30_simultaneous_calls_with_dnis_and_ani_in_the_variants_time(
        prompt_library, tmp_path):
    """30 channels seized in the same 20 ms: one receiver and one generator call per tick
    serve them all; every call is offered with its own DNIS and ANI and answered within the
    China timing (5 DNIS digits, 11 ANI digits, the 2 s end-of-DNIS timeout)."""
    text = (CONFIGS / "server-r2.toml").read_text().replace('channels = "e1:1-4"', 'channels = "e1:0-29"')
    text = text.replace('release_control = "mutual"', 'release_control = "mutual"\ndefault_flow = "hotline"')
    (tmp_path / "r2.toml").write_text(text)
    h = Harness(prompt_library, tmp_path / "r2.toml", nchan=30)
    calls = {chan: (f"9{chan:04d}", f"0106234{chan:04d}") for chan in range(30)}
    fars = {chan: h.seize(chan, dnis, ani) for chan, (dnis, ani) in calls.items()}
    h.run(10, until=lambda: all(f.state == "answered" for f in fars.values()))
    assert all(f.state == "answered" for f in fars.values())
    assert h.tick * 1000 // TPS < 6000                 # all answered within 6 s of the seizures
    offers = {e["chan"]: (e["dnis"], e["ani"]) for e in h.events(ServerEventKind.CALL_OFFER)}
    assert offers == calls
    assert len({e["call_id"] for e in h.events(ServerEventKind.CALL_ANSWER)}) == 30


def test_the_engine_runs_mf_only_for_listening_channels_and_hands_over_only_their_events():
    """R2Media: no listening channel, no receiver call; a signal on a channel that does not
    listen (or listens on the other set) is not an event; an end whose onset was not heard
    is not either; the generators add a tone only where one is sent."""
    m = R2Media(960)
    calls: list[int] = []
    real = m.rx_sets[True].rx
    m.rx_sets[True].rx = lambda block: calls.append(1) or real(block)    # type: ignore[method-assign]
    rx = np.zeros((960, BLOCK), np.int16)
    for chan in (5, 6, 7):
        rx[chan] = tone(3, FWD_HZ, 0)                  # forward MF 3 on three channels
    assert m.rx(rx) == [] and calls == []              # nobody listens: the receivers are not run
    m.listen(5, True)
    m.listen(6, False)                                 # 6 listens on the backward set
    events = []
    for k in range(4):
        for chan in (5, 6, 7):
            rx[chan] = tone(3, FWD_HZ, k * BLOCK)
        events += m.rx(rx)
    assert [(e.chan, e.signal, e.end) for e in events] == [(5, 3, None)]
    m.listen(7, True)                                  # 7 starts listening while its tone is on
    rx[:] = 0
    events = []
    for _ in range(4):
        events += m.rx(rx)
    assert [(e.chan, e.end is not None) for e in events] == [(5, True)]   # not 7's end
    tx = np.zeros((960, BLOCK), np.int16)
    m.send(9, 6, False)
    m.tx(tx)
    assert np.flatnonzero(np.abs(tx).sum(axis=1)).tolist() == [9] and detect(tx[9], BWD_HZ) == 6
    m.send(9, 0, False)
    tx[:] = 0
    m.tx(tx)
    assert not tx.any()


def test_dialling_while_the_far_ends_seizure_is_still_debouncing_is_glare_not_a_failure():
    """The far end's seize bits arrived this tick (not yet counted): our dial cannot seize;
    the call ends as glare at once (the hunt group retries elsewhere) and the far end's
    call comes in."""
    from voiceserver.r2.variants import load_variant
    ch = E1R2Trunk(1, TPS, load_variant("cn"))
    ch.cas(10, SEIZE)
    call = ch.dial(10, "12345")
    events = [a.data for a in ch.take() if hasattr(a, "data") and "reason" in a.data]
    assert call.end_reason == "glare: the far end was seizing the line"
    assert [e["reason"] for e in events if "answered" in e] == [call.end_reason]
    ch.timer(11, ("r2", "persistence"))                # the far end's seizure counts now
    assert ch.state.value == "ringing" and ch.call is not None and ch.call.direction == "inbound"


@pytest.mark.parametrize("steps, dnis, ani, category", [
    (0, None, None, None),                              # gave up before the first digit
    (1, "9", None, None),                               # after one DNIS digit (A-6 went back)
    (5, "9", "010", "national_subscriber"),             # DNIS 9, the category, three ANI digits
    (16, "955", "01062345678", "national_subscriber"),  # the ANI and I-15, two more DNIS digits
])
def test_a_caller_who_gives_up_during_register_signalling_leaves_what_it_sent(h, steps, dnis, ani, category):
    """A clear-forward before the register offered the call: its call.end event and call record
    carry the DNIS and ANI digits received so far and the category if it came, with a reason that
    says the call ended in the register phase."""
    far = h.seize(1, "95566", "01062345678")
    h.run(6, until=lambda: far.step >= steps and far.state == "register")
    assert far.state == "register" and far.step == steps, (far.state, far.step)
    h.cas(1, far.clear_forward())
    h.run(1)
    assert h.events(ServerEventKind.CALL_OFFER) == []
    end = h.events(ServerEventKind.CALL_END)[0]
    assert end["reason"] == REGISTER_GIVE_UP == "caller cleared forward: during register signalling"
    assert (end["dnis"], end["ani"], end["category"], end["answered"]) == (dnis, ani, category, False)
    rec = h.ctl.records[-1]
    assert (rec.dnis, rec.ani, rec.category, rec.called, rec.caller) == (dnis, ani, category, dnis, ani)
    assert rec.reason == REGISTER_GIVE_UP and rec.answer is None
    assert h.cas_out[1][-1] == IDLE and h.rt.channels[1].state.value == "idle"


def test_a_caller_who_clears_forward_after_the_offer_is_not_a_register_give_up(h):
    """Once offered, the call has its numbers from the offer, and the plain reason."""
    far = h.seize(1, "95566", "01062345678")
    h.run(6, until=lambda: far.state == "accepted")
    h.cas(1, far.clear_forward())
    h.run(1)
    end = h.events(ServerEventKind.CALL_END)[0]
    assert end["reason"] == "caller cleared forward" and "dnis" not in end
    assert h.ctl.records[-1].dnis == "95566"


def test_a_caller_who_clears_forward_while_the_ivr_speaks_stops_the_prompt(h):
    """Found by bench/r2_load.py --mix: the prompt went on playing after the call ended, into the
    next call's MF signals on the line (the far end lost a compelled cycle, and the server a digit)."""
    far = h.seize(1, "95566", "01062345678")
    h.run(6, until=lambda: far.state == "answered")
    h.run(0.2)
    assert 1 in h.playing                              # the IVR's greeting is playing
    h.cas(1, far.clear_forward())
    h.run(1)
    assert h.events(ServerEventKind.CALL_END)[0]["reason"] == "caller cleared forward"
    assert 1 not in h.playing                          # ... and stopped with the call
