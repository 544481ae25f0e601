"""Channel state machines driven by method calls; assertions on their actions."""
import pytest

from voiceserver.core.channels import (
    Call,
    Emit,
    FxoTrunk,
    FxsPhone,
    Hook,
    Ring,
    SendDtmf,
    State,
    StopPlay,
    Timer,
    Tone,
    TrunkTiming,
)

TPS = 50.0  # 20 ms ticks


def kinds(actions):
    """(what, first value) of each action: ("hook", "offhook"), ("event", "call.start"), ..."""
    out = []
    for a in actions:
        match a:
            case Hook(state):
                out.append(("hook", state))
            case Ring(on):
                out.append(("ring", on))
            case Tone(name):
                out.append(("tone", name))
            case SendDtmf(digits):
                out.append(("send_dtmf", digits))
            case StopPlay():
                out.append(("stop_play", None))
            case Timer(when, _):
                out.append(("timer", when))
            case Emit(kind, _):
                out.append(("event", kind))
    return out


def events(actions):
    return [a.kind for a in actions if isinstance(a, Emit)]


def fire(ch, actions, upto):
    """Run the timers in `actions` that are due by tick `upto`, like the engine would."""
    for a in actions:
        if isinstance(a, Timer) and a.tick <= upto:
            ch.timer(a.tick, a.token)


def test_inbound_ring_callerid_answer_then_loop_drop():
    ch = FxoTrunk(0, TPS, TrunkTiming(answer_after_rings=2))
    ch.ring_start(0)
    first = ch.take()
    assert ch.state is State.RINGING and "call.start" in events(first)
    assert "call.offer" not in events(first)  # waits for the second ring (caller ID between)
    ch.caller_id(60, "13800138000", "ZHANG")
    ch.ring_start(250)
    acts = ch.take()
    assert "call.offer" in events(acts) and ch.call.caller == "13800138000"
    ch.answer(260)
    acts = ch.take()
    assert ("hook", "offhook") in kinds(acts) and ch.state is State.CONNECTED
    call = ch.call
    ch.loop_drop(900)
    acts = ch.take()
    assert ("hook", "onhook") in kinds(acts) and ("stop_play", None) in kinds(acts)
    assert call.end_reason.startswith("far end hung up") and ch.state is State.HANGUP
    fire(ch, acts, 900 + 100)
    assert ch.state is State.IDLE


def test_caller_gives_up_while_ringing():
    ch = FxoTrunk(1, TPS)
    ch.ring_start(0)
    acts = ch.take()
    ch.ring_start(250)  # re-arms the ring-gone timer; the first one is now stale
    acts2 = ch.take()
    fire(ch, acts, 10_000)
    assert ch.state is State.RINGING, "a stale timer must not end the call"
    call = ch.call
    fire(ch, acts2, 10_000)
    assert ch.state is State.IDLE and call.end_reason == "abandoned while ringing"
    assert call.answer_tick is None


@pytest.mark.parametrize("how", ["loop-drop", "battery-reversal", "busy-tone"])
def test_disconnect_supervision_per_line(how):
    ch = FxoTrunk(2, TPS, disconnect=frozenset({how}))
    ch.ring_start(0)
    ch.answer(10)
    ch.take()
    # the other two signals are ignored on this line
    ch.loop_drop(20) if how != "loop-drop" else None
    ch.battery_reversal(21) if how != "battery-reversal" else None
    ch.tone(22, "busy") if how != "busy-tone" else None
    assert ch.state is State.CONNECTED
    {"loop-drop": lambda: ch.loop_drop(30), "battery-reversal": lambda: ch.battery_reversal(30),
     "busy-tone": lambda: ch.tone(30, "busy")}[how]()
    assert ch.state is State.HANGUP


def test_outbound_dial_tone_dtmf_ringback_answer_by_voice():
    ch = FxoTrunk(3, TPS)
    call = ch.dial(0, "95588")
    assert ("hook", "offhook") in kinds(ch.take()) and ch.state is State.OFFHOOK
    ch.tone(40, "dial")
    acts = ch.take()
    assert ("send_dtmf", "95588") in kinds(acts) and ch.state is State.DIALING
    ch.dtmf_sent(80)
    ch.tone(120, "ringback")
    assert "call.ringback" in events(ch.take())
    ch.speech(300)                  # a voice onset alone is not an answer (a ringback burst starts so)
    assert ch.state is State.PROCEEDING
    ch.tone(325, "unknown")         # the progress detector: sound that is no tone
    assert ch.state is State.CONNECTED and call.answer_tick == 300


def test_outbound_busy_and_no_dial_tone():
    ch = FxoTrunk(4, TPS)
    ch.dial(0, "1")
    acts = ch.take()
    fire(ch, acts, 1000)  # no dial tone: dials anyway after the wait
    acts = ch.take()
    assert ("send_dtmf", "1") in kinds(acts) and "call.warning" in events(acts)
    ch.dtmf_sent(200)
    ch.tone(250, "busy")
    assert ch.state is State.HANGUP


def test_fxs_lift_dial_and_ring_answer():
    ph = FxsPhone(5, TPS, interdigit_ms=2000)
    ph.hook_off(0)
    assert ("tone", "dial") in kinds(ph.take())
    ph.digit(10, "8")
    ph.digit(20, "0")
    acts = ph.take()
    assert ("tone", None) in kinds(acts)
    fire(ph, acts, 20 + 100)
    assert ph.call.called == "80" and "call.dialed" in events(ph.take())
    ph.hook_on(200)
    assert ph.state is State.IDLE
    ph.ring(300, Call("x1", 5, "inbound"))
    acts = ph.take()
    assert ("ring", True) in kinds(acts)
    fire(ph, acts, 300 + 50)  # cadence: voltage off after 1 s
    assert ("ring", False) in kinds(ph.take())
    ph.hook_off(400)
    assert ph.state is State.CONNECTED and ("ring", False) in kinds(ph.take())
    with pytest.raises(RuntimeError, match="phone busy"):
        ph.ring(410, Call("x2", 5, "inbound"))


def test_a_phone_found_lifted_gets_busy_tone_until_hung_up_and_takes_no_call_meanwhile():
    """A crash or a lost board ended the call the phone was on: the server finds it
    off-hook when it opens the board."""
    ph = FxsPhone(5, TPS)
    ph.found_offhook(0)
    acts = ph.take()
    assert ("tone", "busy") in kinds(acts) and ph.state is State.HANGUP and ph.call is None
    assert "call.start" not in events(acts)          # no call: nobody is on the other end
    with pytest.raises(RuntimeError, match="phone busy"):
        ph.ring(10, Call("x1", 5, "inbound"))
    ph.hook_on(100)
    assert ph.state is State.IDLE and ("tone", None) in kinds(ph.take())
    ph.ring(210, Call("x2", 5, "inbound"))
    ph.take()
    ph.found_offhook(220)                            # only an idle phone: a busy one is left alone
    assert ph.state is State.RINGING and ph.take() == []

def test_alarm_blocks_and_ends_call():
    ch = FxoTrunk(6, TPS)
    ch.ring_start(0)
    ch.answer(1)
    ch.take()
    call = ch.call
    ch.block(5, "LOS")
    assert ch.state is State.BLOCKED and call.end_reason == "blocked: LOS"
    ch.unblock(9)
    assert ch.state is State.IDLE
    with pytest.raises(RuntimeError, match="cannot answer"):
        ch.answer(10)


def test_a_ring_during_the_hangup_guard_is_the_next_call():
    """The soak's lost callers: the exchange rang the line 0.04-0.5 s after the last call
    ended, inside our 600 ms on-hook guard (which is for seizing the line, not for rings);
    a board loss before the next ring left that caller with no row. The ring starts its call."""
    ch = FxoTrunk(4, TPS)
    ch.ring_start(0)
    ch.answer(1)
    ch.loop_drop(100)
    acts = ch.take()
    assert ch.state is State.HANGUP
    ch.ring_start(103)                       # inside the guard
    assert ch.state is State.RINGING and ch.call is not None and ch.call.start_tick == 103
    assert "call.start" in events(ch.take())
    fire(ch, acts, 200)                      # the old guard timer is stale now
    assert ch.state is State.RINGING
    ch.caller_id(160, "13920000703")
    assert ch.call.caller == "13920000703" and "call.offer" in events(ch.take())


def test_a_lost_board_forgets_the_caller_id_heard_before():
    """Caller ID heard on an idle line whose board is then lost belongs to a caller the
    reset cut off: the first call after the board is back must not get that number."""
    ch = FxoTrunk(13, TPS)
    ch.caller_id(0, "13920000697")           # its ring fell in the hangup guard; then the loss
    ch.block(10, "board lost")
    ch.unblock(200)
    ch.ring_start(210)                       # the next caller, on the board that is back
    assert ch.call is not None and ch.call.caller is None
    assert "call.offer" not in events(ch.take()), "offered at once on a stale caller ID"
    ch.caller_id(270, "13920000719")
    assert ch.call.caller == "13920000719"


def test_offer_waits_for_caller_id_or_second_ring():
    ch = FxoTrunk(7, TPS)  # default: caller ID comes between ring 1 and 2
    ch.ring_start(0)
    assert "call.offer" not in events(ch.take())
    ch.caller_id(70, "01012345678")
    acts = ch.take()
    assert events(acts) == ["call.callerid", "call.offer"], "offered as soon as caller ID is in"
    other = FxoTrunk(8, TPS)  # a line without caller ID: offered at the second ring
    other.ring_start(0)
    other.take()
    other.ring_start(250)
    assert "call.offer" in events(other.take()) and other.call.caller is None


def test_caller_id_mid_ringing_is_a_new_call():
    """A caller gave up and the next one rang within one ring cycle: the
    second caller's FSK caller ID (it only follows a first ring) starts a new call."""
    ch = FxoTrunk(9, TPS)
    ch.ring_start(0)
    ch.caller_id(60, "01065123456")  # first caller, not answered (say, blacklisted)
    ch.ring_start(250)
    ch.ring_start(500)
    first = ch.call
    ch.take()
    ch.ring_start(750)               # really the first ring of the next caller
    ch.caller_id(810, "13800000001")
    acts = ch.take()
    assert first.end_reason == "abandoned while ringing"
    assert ch.call is not first and ch.call.caller == "13800000001"
    assert events(acts)[-3:] == ["call.start", "call.callerid", "call.offer"]
    # DTMF caller ID comes before the first ring: a new call whose ring is still to come
    ch2 = FxoTrunk(10, TPS)
    ch2.ring_start(0)
    ch2.ring_start(250)
    old = ch2.call
    ch2.caller_id(400, "13912345678", before_ring=True)
    assert old.end_reason == "abandoned while ringing" and ch2.rings == 0
    ch2.ring_start(420)
    assert ch2.call.caller == "13912345678" and "call.offer" in events(ch2.take())


def test_glare_ring_while_waiting_for_dial_tone_becomes_an_inbound_call():
    """We seized the line to call out as the exchange rang us: the outbound call
    ends as glare (for the server to retry elsewhere), the line's new inbound
    call is offered at once, and answering it keeps the line off-hook."""
    ch = FxoTrunk(11, TPS)
    out = ch.dial(0, "13800138000")
    ch.take()
    ch.ring_start(3)                            # RING_START right after our off-hook
    acts = ch.take()
    assert out.end_reason.startswith("glare") and out.answer_tick is None
    assert events(acts) == ["call.end", "channel.state", "call.start", "call.glare", "call.offer"]
    assert ("hook", "onhook") not in kinds(acts), "the inbound caller is on the line: stay off-hook"
    glare = next(a.data for a in acts if isinstance(a, Emit) and a.kind == "call.glare")
    assert glare["outbound"] == out.call_id and glare["number"] == "13800138000"
    inbound = ch.call
    assert ch.state is State.RINGING and inbound.direction == "inbound" and inbound.data["glare"]
    ch.tone(10, "dial")                         # no dial tone can start a dialling now
    assert not any(isinstance(a, SendDtmf) for a in ch.take())
    ch.answer(5)
    assert ch.state is State.CONNECTED and inbound.answer_tick == 5
    ch.loop_drop(100)
    assert ("hook", "onhook") in kinds(ch.take()) and ch.state is State.HANGUP


def test_glare_after_dialling_without_dial_tone_but_not_after_dial_tone():
    ch = FxoTrunk(12, TPS)
    ch.dial(0, "1")
    fire(ch, ch.take(), 1000)                   # no dial tone: dialling anyway
    assert ch.state is State.DIALING
    ch.ring_start(160)
    assert "call.glare" in events(ch.take()) and ch.state is State.RINGING
    ok = FxoTrunk(13, TPS)                      # dial tone heard: the exchange gave us the line
    ok.dial(0, "1")
    ok.tone(20, "dial")
    ok.take()
    ok.ring_start(30)
    assert ok.state is State.DIALING and "call.glare" not in events(ok.take())


def test_glare_call_nobody_answers_releases_the_line():
    ch = FxoTrunk(14, TPS)
    ch.dial(0, "1")
    ch.ring_start(2)
    acts = ch.take()
    fire(ch, acts, 2 + 300)                     # ring-gone timer: the server never answered
    acts = ch.take()
    assert ("hook", "onhook") in kinds(acts) and ch.state is State.HANGUP
    assert "call.end" in events(acts)
