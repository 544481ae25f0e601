"""What the R2 machines ask of their driver, and what they tell the call layer.

The machines (line.py, register.py, channel.py) never touch a card, a tone
generator or a clock: each input returns nothing and appends typed values
to the machine's ``outbox``; ``take()`` hands them over. The driver sets
the bits, starts and stops the MF tones, keeps the timers (a timer is
stopped by name, or ignored by the machine if it fires after being
stopped or restarted) and passes the events up.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

__all__ = ["Cause", "SetBits", "StartTimer", "StopTimer", "MfStart", "MfStop", "LineEvent", "LineEventKind",
           "CallOffered", "CallAccepted", "CallFailed", "ReadyToAnswer", "Action", "Outbox"]


class Cause(str, Enum):
    """Why a call did not go through or ended."""
    NORMAL = "normal"
    BUSY = "busy"
    CONGESTION = "congestion"
    UNALLOCATED = "unallocated"
    OUT_OF_ORDER = "out-of-order"
    NUMBER_CHANGED = "number-changed"
    NO_ANSWER = "no-answer"
    SEIZE_ACK_TIMEOUT = "seize-ack-timeout"
    MF_TIMEOUT = "mf-timeout"
    PROTOCOL_ERROR = "protocol-error"
    GLARE = "glare"
    FORCED_RELEASE = "forced-release"
    RELEASE_TIMEOUT = "release-timeout"


# -- to the driver ------------------------------------------------------------
@dataclass(frozen=True)
class SetBits:
    abcd: str                # the four bits to send from now on, e.g. "0011"


@dataclass(frozen=True)
class StartTimer:
    name: str
    at: int                  # ms on the caller's clock; hand back with timer(name, now)


@dataclass(frozen=True)
class StopTimer:
    name: str


@dataclass(frozen=True)
class MfStart:
    signal: int              # 1-15
    forward: bool            # the forward set (outgoing register) or the backward set


@dataclass(frozen=True)
class MfStop:
    forward: bool


# -- to the call layer --------------------------------------------------------
class LineEventKind(str, Enum):
    SEIZED = "seized"                        # incoming call: the far end seized, we acknowledged
    SEIZE_ACKNOWLEDGED = "seize-acknowledged"  # outgoing: the register may start
    ANSWERED = "answered"                    # outgoing: the called party answered (again after clear-back)
    CLEAR_BACK = "clear-back"                # outgoing: the called party hung up
    CLEAR_FORWARD = "clear-forward"          # incoming: the calling party hung up
    RELEASED = "released"                    # the call is over on the line (cause says why)
    IDLE = "idle"                            # the line can take a new call (after the release guard)
    GLARE = "glare"                          # both ends seized at once: our outgoing call is lost
    BLOCKED = "blocked"                      # the far end blocked the line, or we did
    UNBLOCKED = "unblocked"
    FAILED = "failed"                        # a line timer expired or the bits made no sense


@dataclass(frozen=True)
class LineEvent:
    kind: LineEventKind
    cause: Cause | None = None
    detail: str = ""


@dataclass(frozen=True)
class CallOffered:
    """Incoming register: the address is complete; accept() or reject() now."""
    dnis: str
    ani: str
    category: str            # a group II name of the variant, e.g. national_subscriber
    ani_restricted: bool


@dataclass(frozen=True)
class CallAccepted:
    """Outgoing register: the far end accepted (group B, or group A address complete)."""
    charge: bool
    signal: int
    special_info: bool = False


@dataclass(frozen=True)
class ReadyToAnswer:
    """Incoming register: the accept cycle is over; the line may be answered."""
    charge: bool


@dataclass(frozen=True)
class CallFailed:
    """A register ended the call setup without an accept."""
    cause: Cause
    signal: int = 0          # the backward signal that said so (0: a timer or an error)
    detail: str = ""


Action = SetBits | StartTimer | StopTimer | MfStart | MfStop | LineEvent | CallOffered | CallAccepted \
    | ReadyToAnswer | CallFailed


@dataclass
class Outbox:
    """The actions and the timers of one machine (timers armed: name -> deadline)."""
    actions: list[Action] = field(default_factory=list)
    timers: dict[str, int] = field(default_factory=dict)

    def do(self, action: Action) -> None:
        self.actions.append(action)

    def start(self, name: str, now: int, ms: int) -> None:
        self.timers[name] = now + ms
        self.actions.append(StartTimer(name, now + ms))

    def stop(self, name: str) -> None:
        if self.timers.pop(name, None) is not None:
            self.actions.append(StopTimer(name))

    def stop_all(self) -> None:
        for name in list(self.timers):
            self.stop(name)

    def due(self, name: str, now: int) -> bool:
        """A timer fired: True (and disarmed) if it is armed and due, False if stale."""
        at = self.timers.get(name)
        if at is None or at > now:
            return False
        del self.timers[name]
        return True

    def take(self) -> list[Action]:
        out, self.actions = self.actions, []
        return out
