"""A China No.1 carrier switch for the call controller's E1 R2 tests, at the event level.

A test double written here, independently of voiceserver.r2 and of dsp.r2mf's
generator: it sends exact sequences, ABCD bits as CAS events and forward MF
signals as audio made with numpy at the Q.441 frequencies, and hears the
server's backward signals in its tx audio with its own Goertzel filters.
`FarEnd` calls in; `FarIncoming` takes the server's calls out; `Harness` is the card,
the engine's R2 media part and the timers around one controller.
"""
from __future__ import annotations

import datetime as dt
import heapq
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from controllerkit import EngineSide, controller_for

from boarddrv import Event, EventKind
from voiceserver.config.server import load_config
from voiceserver.core import media
from voiceserver.core.callids import CallIds
from voiceserver.core.e1 import E1R2Trunk, R2Media, group_policy
from voiceserver.core.engine import PlayDone, Timer
from voiceserver.core.events import EventBus, ServerEventKind
from voiceserver.core.runtime import BoardRuntime

CONFIGS = Path(__file__).parent / "configs"
TPS = 50
BLOCK = 160           # samples a tick
RATE = 8000
START = dt.datetime(2026, 12, 3, 10, 0, tzinfo=dt.UTC)

# China No.1 / Q.441, written out here (not imported): the frequencies of each set and
# which two of them make signal 1..15.
FWD_HZ = (1380, 1500, 1620, 1740, 1860, 1980)
BWD_HZ = (1140, 1020, 900, 780, 660, 540)
PAIRS = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3), (0, 4), (1, 4), (2, 4), (3, 4),
         (0, 5), (1, 5), (2, 5), (3, 5), (4, 5))
IDLE, SEIZE, CLEAR_FORWARD = 0b1011, 0b0011, 0b1011          # forward bits
SEIZE_ACK, ANSWER, CLEAR_BACK = 0b1111, 0b0111, 0b1111       # backward bits
AMP = 2300.0          # about -8 dBm0 per frequency in 16-bit linear


def china_sequence(dnis: str, ani: str, category: int = 1) -> list[tuple[int | None, int]]:
    """The forward signals of a China No.1 call and the backward answer each must get:
    DNIS digit 1, A-6 (category), II-category, A-1, ANI digits (A-1 each), I-15 (A-1),
    the other DNIS digits (A-1 each), silence (A-3 pulse), II-category (B-x)."""
    sig = [10 if d == "0" else int(d) for d in dnis]
    seq: list[tuple[int | None, int]] = [(sig[0], 6), (category, 1)]
    seq += [(10 if d == "0" else int(d), 1) for d in ani]
    seq += [(15, 1)]
    seq += [(s, 1) for s in sig[1:]]
    seq += [(None, 3), (category, 0)]          # 0: the B signal, checked by the test
    return seq


class FarEnd:
    """A China No.1 outgoing exchange on one E1 channel, scripted signal by signal."""

    def __init__(self, chan: int, sequence: list[tuple[int | None, int]]) -> None:
        self.chan = chan
        self.seq = list(sequence)
        self.step = 0
        self.bits = IDLE              # what we send
        self.host_bits = IDLE         # what the host sends
        self.sending: int | None = None
        self.phase = 0                # samples of the tone sent so far
        self.heard: list[int] = []    # backward signals heard (onsets)
        self.b_signal: int | None = None
        self._hearing = 0             # the backward signal on now (0: none)
        self._count = 0
        self.state = "idle"
        self.log: list[tuple[int, str]] = []

    # -- what we do ----------------------------------------------------------
    def seize(self) -> int:
        self.bits = SEIZE
        self.state = "seized"
        return SEIZE

    def clear_forward(self) -> int:
        self.bits = CLEAR_FORWARD
        self.state = "cleared"
        self.sending = None
        return CLEAR_FORWARD

    def audio(self) -> np.ndarray:
        """This tick's forward tone (or silence), numpy at the two frequencies of the signal."""
        if self.sending is None:
            return np.zeros(BLOCK, np.int16)
        f1, f2 = (FWD_HZ[i] for i in PAIRS[self.sending - 1])
        t = (self.phase + np.arange(BLOCK)) / RATE
        self.phase += BLOCK
        return (AMP * (np.sin(2 * np.pi * f1 * t) + np.sin(2 * np.pi * f2 * t))).astype(np.int16)

    # -- what we hear ----------------------------------------------------------
    def host_cas(self, abcd: int) -> None:
        self.host_bits = abcd
        if self.state == "seized" and abcd == SEIZE_ACK:
            self.state = "register"
            self._send_next()
        elif self.state == "accepted" and abcd == ANSWER:
            self.state = "answered"
        elif self.state == "answered" and abcd == CLEAR_BACK:
            self.state = "clear-back"

    def hear(self, tx: np.ndarray) -> None:
        """The host's tx of one tick: a backward signal (two of six, 2 ticks to count)."""
        x = tx * np.hanning(len(tx))   # a window: the six frequencies are 2.4 bins apart in 20 ms
        power = [abs(np.dot(x, np.exp(-2j * np.pi * f * np.arange(len(x)) / RATE))) for f in BWD_HZ]
        order = np.argsort(power)[::-1]
        on = power[order[1]] > 20 * BLOCK and power[order[1]] > 8 * power[order[2]]
        signal = PAIRS.index(tuple(sorted((int(order[0]), int(order[1]))))) + 1 if on else 0
        if signal == self._hearing:
            self._count = 0
            return
        self._count += 1
        if self._count < 2:           # a change counts once it held for two blocks (40 ms)
            return
        self._count = 0
        if signal and not self._hearing:
            self._hearing = signal
            self._backward_on(signal)
        elif not signal:
            self._hearing = 0
            self._backward_off()

    def _backward_on(self, signal: int) -> None:
        self.heard.append(signal)
        self.sending = None           # compelled: our signal stops when theirs comes

    def _backward_off(self) -> None:
        if self.state != "register":
            return
        fwd, want = self.seq[self.step]
        got = self.heard[-1]
        if want:
            assert got == want, f"step {self.step} (forward {fwd}): expected backward {want}, got {got}"
        else:
            self.b_signal = got
            self.state = "accepted"
            return
        self.step += 1
        self._send_next()

    def _send_next(self) -> None:
        fwd, _ = self.seq[self.step]
        self.sending = fwd
        self.phase = 0


def tone(signal: int, hz: tuple[int, ...], phase: int) -> np.ndarray:
    """One block of MF signal `signal` of the set `hz`, from sample `phase` on (numpy)."""
    f1, f2 = (hz[i] for i in PAIRS[signal - 1])
    t = (phase + np.arange(BLOCK)) / RATE
    return (AMP * (np.sin(2 * np.pi * f1 * t) + np.sin(2 * np.pi * f2 * t))).astype(np.int16)


def detect(block: np.ndarray, hz: tuple[int, ...]) -> int:
    """The MF signal (1-15) of the set `hz` in one 20 ms block, 0 for none (Goertzel, windowed)."""
    x = block * np.hanning(len(block))      # the six frequencies are 2.4 bins apart in 20 ms
    power = [abs(np.dot(x, np.exp(-2j * np.pi * f * np.arange(len(x)) / RATE))) for f in hz]
    order = np.argsort(power)[::-1]
    if power[order[1]] > 20 * BLOCK and power[order[1]] > 8 * power[order[2]]:
        return PAIRS.index(tuple(sorted((int(order[0]), int(order[1]))))) + 1
    return 0


class FarIncoming:
    """A China No.1 incoming exchange on one E1 channel (the server calls out), scripted:
    for each forward signal it expects, the backward signal it answers (compelled)."""

    def __init__(self, chan: int, script: list[tuple[int, int]], answer: bool) -> None:
        self.chan = chan
        self.script = list(script)
        self.step = 0
        self.answer_after = answer
        self.bits = IDLE
        self.sending = 0
        self.phase = 0
        self.forward: list[int] = []      # forward signals heard
        self._hearing = 0
        self._count = 0
        self.state = "idle"
        self.to_send: list[int] = []      # bits to put on the line (the harness posts them)

    def audio(self) -> np.ndarray:
        if not self.sending:
            return np.zeros(BLOCK, np.int16)
        block = tone(self.sending, BWD_HZ, self.phase)
        self.phase += BLOCK
        return block

    def host_cas(self, abcd: int) -> None:
        if abcd == SEIZE and self.state == "idle":
            self.state = "register"
            self.to_send.append(SEIZE_ACK)
        elif abcd == CLEAR_FORWARD and self.state != "idle":
            self.state = "idle"
            self.sending = 0
            self.to_send.append(IDLE)

    def hear(self, tx: np.ndarray) -> None:
        signal = detect(tx, FWD_HZ)
        if signal == self._hearing:
            self._count = 0
            return
        self._count += 1
        if self._count < 2:
            return
        self._count = 0
        if signal and not self._hearing:
            self._hearing = signal
            self.forward.append(signal)
            want, reply = self.script[self.step]
            assert signal == want, f"step {self.step}: expected forward {want}, got {signal}"
            self.sending, self.phase = reply, 0
        elif not signal:
            self._hearing = 0
            self.sending = 0
            self.step += 1
            if self.step == len(self.script):
                self.state = "decided"
                if self.answer_after:
                    self.to_send.append(ANSWER)
                    self.state = "answered"


class Harness(EngineSide):
    """The card, the engine's R2 media part and the timers around one controller."""

    def __init__(self, library: Any, config: Path = CONFIGS / "server-r2.toml", nchan: int = 8) -> None:
        super().__init__()
        cfg = load_config(config, library=library)
        from dsp.mix import AudioBank
        bank = AudioBank()
        segments: dict[tuple[str, str], Any] = {}

        def segment(name: str, lang: str) -> Any:
            if (lang, name) not in segments:
                segments[(lang, name)] = bank.add(library.get(name, lang))
            return segments[(lang, name)]

        self.rt = BoardRuntime(0, "e1", SimpleNamespace(block=BLOCK), engine=None)
        self.rt.clock_start = START
        group = cfg.r2[0]
        chans = [ref.chan for ref in group.channels]
        self.rt.span_chans = {0: chans}
        self.rt.span_alarms = {0: 0}
        ids = CallIds.without_database("t", START)
        self.nchan = nchan
        for chan in chans:
            ch = E1R2Trunk(chan, TPS, group.variant, group=group.name, ani=group.ani,
                           answer_alarm_ms=group.answer_alarm_ms,
                           policy=group_policy(lambda: self.ctl.cfg, group))
            ch.new_call_id = ids.next
            self.rt.channels[chan] = ch
        self.bus = EventBus()
        self.ctl = controller_for(cfg, self.rt, self.bus, segment, segments)
        self.r2 = R2Media(self.nchan)
        self.far: dict[int, Any] = {}
        self.tick = 0
        self.cas_out: dict[int, list[int]] = {}       # chan -> bits the host sent, in order
        self._pending: list[Any] = []

    def apply(self, out: list[media.MediaCommand]) -> None:
        for cmd in out:
            if self.keep(cmd):
                continue
            match cmd:
                case media.MfListen(_, chan, forward):
                    self.r2.listen(chan, forward)
                case media.MfSend(_, chan, signal, forward):
                    self.r2.send(chan, signal, forward)
                case media.BoardControl(_, "set_cas", (chan, abcd)):
                    self.cas_out.setdefault(chan, []).append(abcd)
                    if chan in self.far:
                        self.far[chan].host_cas(abcd)

    def cas(self, chan: int, abcd: int) -> None:
        """The far end's bits change: a CAS event with the next tick."""
        self._pending.append(Event(self.tick + 1, EventKind.CAS, chan, 0, abcd))

    def alarm(self, name_bit: int, on: bool) -> None:
        self._pending.append(Event(self.tick + 1, EventKind.ALARM_SET if on else EventKind.ALARM_CLEAR,
                                   -1, 0, name_bit))

    def step(self) -> None:
        """One tick: far-end audio in, detectors, events, commands, host tones out."""
        self.tick += 1
        rx = np.zeros((self.nchan, BLOCK), np.int16)
        for chan, far in self.far.items():
            rx[chan] = far.audio()
        events: list[Any] = self._pending
        self._pending = []
        events += self.r2.rx(rx)
        while self.timers and self.timers[0][0] <= self.tick:
            _, _, chan, token = heapq.heappop(self.timers)
            events.append(Timer(chan, token))
        if events:
            self.apply(self.ctl.handle(0, self.tick, events))
        tx = np.zeros((self.nchan, BLOCK), np.int16)
        self.r2.tx(tx)
        for chan, far in self.far.items():
            far.hear(tx[chan])
            for bits in getattr(far, "to_send", ()):
                self.cas(chan, bits)
            if getattr(far, "to_send", None):
                far.to_send.clear()

    def run(self, seconds: float, until: Any = None) -> None:
        for _ in range(int(seconds * TPS)):
            self.step()
            if until is not None and until():
                return

    def prompt_done(self, chan: int) -> None:
        self.tick += 1
        self.apply(self.ctl.handle(0, self.tick, [PlayDone(chan, self.playing.pop(chan))]))

    def events(self, kind: ServerEventKind) -> list[dict[str, Any]]:
        return [e.as_dict() for e in self.bus.journal if e.kind is kind]

    def seize(self, chan: int, dnis: str, ani: str) -> FarEnd:
        far = self.far[chan] = FarEnd(chan, china_sequence(dnis, ani))
        self.cas(chan, far.seize())
        return far


class FarGlare:
    """A far end that seizes the line the moment the server does (double seizure, glare),
    then goes idle when the server clears forward."""

    def __init__(self, chan: int) -> None:
        self.chan = chan
        self.to_send: list[int] = []
        self.state = "idle"

    def audio(self) -> np.ndarray:
        return np.zeros(BLOCK, np.int16)

    def hear(self, tx: np.ndarray) -> None:
        pass

    def host_cas(self, abcd: int) -> None:
        if abcd == SEIZE and self.state == "idle":
            self.state = "seized"
            self.to_send.append(SEIZE)
        elif abcd == CLEAR_FORWARD and self.state == "seized":
            self.state = "idle"
            self.to_send.append(IDLE)


def r2_accept_script(dnis: str, ani: str) -> list[tuple[int, int]]:
    """What a China No.1 exchange answers to the server's register signals: A-6, A-1 per ANI
    digit and DNIS digit, A-3 after the last one, then B-1 (accept) for category II-1."""
    def sig(d: str) -> int:
        return 10 if d == "0" else int(d)
    script = [(sig(dnis[0]), 6), (1, 1)] + [(sig(d), 1) for d in ani] + [(15, 1)]
    return script + [(sig(d), 1) for d in dnis[1:-1]] + [(sig(dnis[-1]), 3), (1, 1)]
