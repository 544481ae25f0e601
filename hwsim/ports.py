"""What each part of a board needs from its world, declared as protocols.

The parts (an FXO line, an FXS phone, an E1 CAS trunk or its China No.1
exchange, an E1 span) are
given the world they live in and call back into it: to post events, run
timers, open and close call records, play audio. Each part types its world
as the protocol here that lists only what it uses, so a part never imports
hwsim.world (no import cycle) and a test can drive a part with any object
that has those members. hwsim.world.BoardWorld provides all of them
(tests/hwsim/test_imports.py checks that it still does).

A Party's own needs (hwsim.parties.PartyWorld) are declared beside it: this
module needs Party and Action, so parties cannot import it.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from hwsim.calls import CallRecord
from hwsim.capture import Capture
from hwsim.parties import Action, Party, Polled
from hwsim.scenario import OutboundPlan
from hwsim.simtime import SimClock, Timeline


class CallWorld(Protocol):
    """Time, call records, capture and far-end parties: what every part that carries calls uses."""
    timeline: Timeline
    clock: SimClock

    @property
    def seconds(self) -> float: ...

    def open_call(self, chan: int, kind: str, direction: str, **fields: Any) -> CallRecord: ...

    def close_call(self, rec: CallRecord) -> None: ...

    def listen(self, chan: int) -> None: ...

    def unlisten(self, chan: int, rec: CallRecord) -> None: ...

    def stop_audio(self, chan: int) -> None: ...

    def party(self, chan: int, script: list[Action], hangup_after: float | None,
              hangup: Callable[[], None], *, flash: Callable[[], None] | None,
              call: CallRecord | None, record_digits: bool = True) -> Party: ...


class TrunkWorld(CallWorld, Protocol):
    """What an E1 CAS trunk (hwsim.trunks.CasTrunk) uses: the call services only
    (its signalling goes through its span)."""


class R2World(CallWorld, Protocol):
    """What the China No.1 exchange of an E1 channel (hwsim.r2far.R2Trunk) uses: the call
    services, MF tones toward the host, the host's MF signals, the plans for the host's calls."""

    def play(self, chan: int, what: Any, loop: bool = False,
             on_done: Callable[[], None] | None = None) -> None: ...

    def clip(self, audio: Any, key: str | None = None) -> Any: ...

    def mf_listen(self, chan: int, forward: bool) -> None: ...

    def mf_unlisten(self, chan: int) -> None: ...

    def e1_answer(self, chan: int, called: str) -> Any: ...


class PhoneWorld(CallWorld, Protocol):
    """What an FXS phone (hwsim.phones.Phone) uses: the call services, events, a dead wire."""

    def post(self, kind: str, chan: int, value: int = 0) -> None: ...

    def set_dead(self, chan: int, dead: bool) -> None: ...


class LineWorld(CallWorld, Protocol):
    """What an FXO line (hwsim.lines.CoLine) uses: the call services, events, a dead line,
    tones and caller ID toward the host, dialling heard from the host, outbound plans."""
    capture: Capture
    live: dict[int, CallRecord]

    @property
    def now(self) -> int: ...

    def post(self, kind: str, chan: int, value: int = 0) -> None: ...

    def set_dead(self, chan: int, dead: bool) -> None: ...

    def cid_when(self) -> tuple[int, int, int, int]: ...

    def play(self, chan: int, what: Any, loop: bool = False,
             on_done: Callable[[], None] | None = None) -> None: ...

    def tone(self, name: str) -> Any: ...

    def poll(self, obj: Polled) -> None: ...

    def unpoll(self, obj: Polled) -> None: ...

    def decode_dialled(self, chan: int) -> str | None: ...

    def outbound_plan(self, chan: int) -> OutboundPlan: ...


class SpanWorld(Protocol):
    """What an E1 span's far end (hwsim.e1.E1Span) uses: events, alarms, counters, dead channels."""

    @property
    def seconds(self) -> float: ...

    def post(self, kind: str, chan: int, value: int = 0) -> None: ...

    def set_alarms(self, span: int, bits: int, bit: int, on: bool) -> None: ...

    def add_counter(self, span: int, name: str, n: int) -> None: ...

    def set_dead_range(self, first: int, n: int, dead: bool) -> None: ...

    def span_signal(self, span: int, ok: bool) -> None: ...

