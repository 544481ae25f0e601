"""Two R2 channels back to back through a simulated cable, on a simulated clock.

The cable carries each end's ABCD bits and MF signals to the other end with
a delay (bits: a few ms of multiframe; MF: the receiver's onset and release
latency), chosen per delivery by a function, so a test can jitter them.
Timers fire at their deadlines. A small call layer answers offers and
answers calls after set delays.
"""
from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from voiceserver.r2.actions import (
    Action,
    CallOffered,
    Cause,
    LineEvent,
    LineEventKind,
    MfStart,
    MfStop,
    ReadyToAnswer,
    SetBits,
    StartTimer,
)
from voiceserver.r2.channel import R2Channel
from voiceserver.r2.variants import Variant

# what the call layer does with an offer: ("accept", charge) or ("reject", cause)
Decision = tuple[str, Any]
Delay = Callable[[str], int]     # kind ("bits", "mf-on", "mf-off") -> ms


def fixed_delays(kind: str) -> int:
    return {"bits": 2, "mf-on": 25, "mf-off": 30}[kind]


@dataclass
class End:
    name: str
    ch: R2Channel
    events: list[tuple[int, Action]] = field(default_factory=list)
    sending: int = 0                 # MF signal on the wire now
    mf_log: list[int] = field(default_factory=list)
    bits_log: list[str] = field(default_factory=list)

    def kinds(self) -> list[str]:
        """The line event kinds and call event names, in order."""
        out = []
        for _, a in self.events:
            if isinstance(a, LineEvent):
                out.append(a.kind.value)
            else:
                out.append(type(a).__name__)
        return out

    def of(self, cls: type) -> list[Any]:
        return [a for _, a in self.events if isinstance(a, cls)]

    def line(self, kind: LineEventKind) -> list[LineEvent]:
        return [a for a in self.of(LineEvent) if a.kind is kind]


class Cable:
    def __init__(self, a: Variant, b: Variant | None = None, delays: Delay = fixed_delays,
                 decide: Callable[[CallOffered], Decision] = lambda offer: ("accept", True),
                 decide_ms: int = 10, answer_ms: int | None = 50) -> None:
        self.now = 0
        self._heap: list[tuple[int, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._last: dict[tuple[str, str], int] = {}
        self.delays = delays
        self.decide = decide
        self.decide_ms = decide_ms
        self.answer_ms = answer_ms
        self.a = End("a", R2Channel(a))
        self.b = End("b", R2Channel(b or a))
        self._pump(self.a)
        self._pump(self.b)

    def other(self, end: End) -> End:
        return self.b if end is self.a else self.a

    def at(self, t: int, fn: Callable[[], None]) -> None:
        heapq.heappush(self._heap, (max(t, self.now), next(self._seq), fn))

    def do(self, end: End, fn: Callable[[int], Any], at: int | None = None) -> None:
        """Run fn(now) on an end's channel at time `at` (default now), then carry out its actions."""
        def run() -> None:
            fn(self.now)
            self._pump(end)
        self.at(self.now if at is None else at, run)

    def run(self, until: int = 10**7) -> None:
        while self._heap and self._heap[0][0] <= until:
            t, _, fn = heapq.heappop(self._heap)
            self.now = t
            fn()

    def _pump(self, end: End) -> None:
        far = self.other(end)
        for a in end.ch.take():
            if isinstance(a, SetBits):
                end.bits_log.append(a.abcd)
                self.at(self._fifo(end, "bits"), lambda bits=a.abcd: self._deliver_bits(far, bits))
            elif isinstance(a, MfStart):
                if end.sending:     # a new signal replaces one still on
                    self._mf_edge(far, end.sending, False)
                end.sending = a.signal
                end.mf_log.append(a.signal)
                self._mf_edge(far, a.signal, True)
            elif isinstance(a, MfStop):
                if end.sending:
                    self._mf_edge(far, end.sending, False)
                end.sending = 0
            elif isinstance(a, StartTimer):
                self.at(a.at, lambda name=a.name, e=end: self._fire(e, name))
            elif isinstance(a, (LineEvent, CallOffered, ReadyToAnswer)) or type(a).__name__.startswith("Call"):
                end.events.append((self.now, a))
                self._call_layer(end, a)

    def _mf_edge(self, far: End, signal: int, on: bool) -> None:
        self.at(self._fifo(self.other(far), "mf-on" if on else "mf-off"),
                lambda: self._deliver_mf(far, signal, on))

    def _fifo(self, sender: End, kind: str) -> int:
        """When a delivery arrives: after its delay, and not before what the sender sent earlier
        (the wire keeps order: bits in multiframe order, MF edges in time order)."""
        lane = (sender.name, "bits" if kind == "bits" else "mf")
        t = max(self.now + self.delays(kind), self._last.get(lane, 0))
        self._last[lane] = t
        return t

    def _deliver_bits(self, end: End, bits: str) -> None:
        end.ch.rx_bits(bits, self.now)
        self._pump(end)

    def _deliver_mf(self, end: End, signal: int, on: bool) -> None:
        end.ch.mf(signal, on, self.now)
        self._pump(end)

    def _fire(self, end: End, name: str) -> None:
        end.ch.timer(name, self.now)
        self._pump(end)

    def _call_layer(self, end: End, a: Action) -> None:
        if isinstance(a, CallOffered):
            verb, arg = self.decide(a)
            if verb == "accept":
                self.do(end, lambda now: end.ch.accept(now, arg), self.now + self.decide_ms)
            else:
                self.do(end, lambda now: end.ch.reject(now, arg), self.now + self.decide_ms)
        elif isinstance(a, ReadyToAnswer) and self.answer_ms is not None:
            self.do(end, lambda now: end.ch.answer(now), self.now + self.answer_ms)

    # -- conveniences -------------------------------------------------------
    def call(self, dnis: str, ani: str = "", category: str = "national_subscriber",
             restricted: bool = False, at: int | None = None) -> None:
        self.do(self.a, lambda now: self._must(self.a.ch.call(now, dnis, ani, category, restricted)), at)

    @staticmethod
    def _must(ok: bool) -> None:
        assert ok, "the line was not free"

    def idle(self) -> bool:
        from voiceserver.r2.line import LineState
        return self.a.ch.state is LineState.IDLE and self.b.ch.state is LineState.IDLE

    def clear_events(self) -> None:
        self.a.events.clear()
        self.b.events.clear()


__all__ = ["Cable", "End", "fixed_delays", "Cause"]
