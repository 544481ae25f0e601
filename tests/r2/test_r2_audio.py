"""A full China call with the MF signals as audio: dsp.r2mf's generator on each end, its receiver on the other.

The bits go across at the next 5 ms block; the MF tones are real 8 kHz
samples, so the compelled cycle runs on what the receiver decides (onset
and release latency, ~25-30 ms each way), not on test-chosen delays.
"""
from __future__ import annotations

import numpy as np

from dsp.r2mf import R2MfGenerator, R2MfReceiver
from voiceserver.r2.actions import (
    CallAccepted,
    CallOffered,
    LineEvent,
    LineEventKind,
    MfStart,
    MfStop,
    ReadyToAnswer,
    SetBits,
)
from voiceserver.r2.channel import R2Channel
from voiceserver.r2.line import LineState
from voiceserver.r2.timers import TimerQueue
from voiceserver.r2.variants import load_variant

BLOCK = 40            # samples: 5 ms at 8 kHz
BLOCK_MS = 5


class AudioEnd:
    def __init__(self, ch: R2Channel, forward: bool) -> None:
        self.ch = ch
        self.gen = R2MfGenerator(1, forward=forward)
        self.rx = R2MfReceiver(1, forward=not forward)      # hears the other set
        self.timers = TimerQueue()
        self.events: list[object] = []
        self.bits_out: list[str] = []
        self.sent: list[int] = []
        self.heard: list[int] = []


def test_full_compelled_cycle_with_generated_and_detected_tones() -> None:
    v = load_variant("cn")
    a = AudioEnd(R2Channel(v), forward=True)       # outgoing: the forward set
    b = AudioEnd(R2Channel(v), forward=False)
    ends = (a, b)

    def handle(end: AudioEnd, now: int) -> None:
        for act in end.ch.take():
            end.timers.note([act])
            if isinstance(act, SetBits):
                end.bits_out.append(act.abcd)
            elif isinstance(act, MfStart):
                end.gen.start(0, act.signal)
                end.sent.append(act.signal)
            elif isinstance(act, MfStop):
                end.gen.stop(0)
            elif isinstance(act, (LineEvent, CallOffered, CallAccepted, ReadyToAnswer)):
                end.events.append(act)
                if isinstance(act, CallOffered):
                    end.ch.accept(now, charge=True)
                    handle(end, now)
                elif isinstance(act, ReadyToAnswer):
                    end.ch.answer(now)
                    handle(end, now)

    for end in ends:
        handle(end, 0)
    a.ch.call(0, dnis="13901234567", ani="01062345678", category="national_subscriber")
    handle(a, 0)
    answered_at = None
    for step in range(1, 4000):                 # up to 20 s
        now = step * BLOCK_MS
        # the wire: each end's bits and audio reach the other end
        for end, far in ((a, b), (b, a)):
            while end.bits_out:
                far.ch.rx_bits(end.bits_out.pop(0), now)
                handle(far, now)
        audio = {}
        for end in ends:
            block = np.zeros((1, BLOCK), dtype=np.int16)
            end.gen.tx(block)
            audio[id(end)] = block
        for end, far in ((a, b), (b, a)):
            for ev in far.rx.rx(audio[id(end)]):
                far.ch.mf(ev.signal, ev.end is None, now)
                if ev.end is None:
                    far.heard.append(ev.signal)
                handle(far, now)
        for end in ends:
            for name in end.timers.due(now):
                end.ch.timer(name, now)
                handle(end, now)
        if a.ch.state is LineState.ANSWERED and b.ch.state is LineState.ANSWERED:
            answered_at = now
            break
    assert answered_at is not None, (a.events, b.events, a.sent, b.sent)
    offers = [e for e in b.events if isinstance(e, CallOffered)]
    assert offers == [CallOffered("13901234567", "01062345678", "national_subscriber", False)]
    assert [e for e in a.events if isinstance(e, CallAccepted)] == [CallAccepted(charge=True, signal=1)]
    # every signal one end sent, the other end's receiver heard, in order
    assert b.heard == a.sent and a.heard == b.sent
    assert b.sent[0] == 6 and b.sent[-2:] == [3, 1]    # A-6 category first; A-3 then B-1 at the end
    assert LineEvent(LineEventKind.ANSWERED) in a.events
    # the DNIS end by timeout dominates: about 2 s of silence, then the rest in compelled cycles
    assert 2000 < answered_at < 8000
