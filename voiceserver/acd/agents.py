"""Agents: who can take a queued call, and the state each one is in.

An agent is a person behind a line: an FXS phone on the card
(``phone = ("hotline", 4)``) or an external number dialled out over a trunk
group (``number = "13800138000", trunk = "pstn"``). The ACD only offers a
call to an agent whose state says it may; every refusal has a reason
string, because the ACD explains each choice (docs/queues.md).

States (FreeSWITCH mod_callcenter's agent status and state, merged)::

    logged_out --login--> ready <--ready-- not_ready
                            |  ^                ^
                       offer|  |missed (< N)     |missed N times in a row
                            v  |                 |
                          ringing ---------------+
                            |answered
                            v
                          on_call --ended--> wrap_up --(wrap-up time)--> ready

Transitions that would break the ACD's guarantees (offering a call to an
agent that is not ready, a second call to a ringing or talking agent) raise
``AgentStateError`` instead of quietly doing something: an agent never has
two calls.

Time is in milliseconds of the ACD's clock; nothing here reads a clock.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType
from typing import Any

from boarddrv.chanref import ChannelRef

__all__ = ["AgentState", "AgentSpec", "Agent", "AgentStateError"]



class AgentState(str, Enum):
    LOGGED_OUT = "logged_out"
    READY = "ready"
    NOT_READY = "not_ready"
    RINGING = "ringing"
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"


class AgentStateError(RuntimeError):
    """An input that the agent's state does not allow (a bug in the caller of the ACD)."""


@dataclass(frozen=True)
class AgentSpec:
    """An agent as configured ([agents.NAME] in the server config).

    Exactly one of ``phone`` (an FXS channel) or ``number`` (dialled on a
    trunk of group ``trunk``) says how to reach the agent.
    """

    name: str
    phone: ChannelRef | None = None
    number: str | None = None
    trunk: str | None = None
    skills: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    wrapup_ms: int = 0
    max_misses: int = 3            # consecutive unanswered rings before not-ready (0: never)
    weight: int = 1                # weighted-random strategy
    mailbox: str | None = None     # personal voicemail box
    start: str = "ready"           # state at server start: ready | not_ready | logged_out

    def __post_init__(self) -> None:
        if (self.phone is None) == (self.number is None):
            raise ValueError(f"agent {self.name}: give exactly one of phone or number")
        if self.number is not None and not self.trunk:
            raise ValueError(f"agent {self.name}: an external number needs a trunk group")
        if self.start not in ("ready", "not_ready", "logged_out"):
            raise ValueError(f"agent {self.name}: start must be ready, not_ready or logged_out")
        if self.weight < 1:
            raise ValueError(f"agent {self.name}: weight must be at least 1")

    @property
    def external(self) -> bool:
        return self.number is not None


class Agent:
    """One agent's live state and counters (what strategies sort on)."""

    def __init__(self, spec: AgentSpec, t: int = 0) -> None:
        self.spec = spec
        self.name = spec.name
        self.state = {"ready": AgentState.READY, "not_ready": AgentState.NOT_READY,
                      "logged_out": AgentState.LOGGED_OUT}[spec.start]
        self.since = t                  # when the current state began
        self.idle_since = t             # when the agent last became free (longest-idle)
        self.call: str | None = None    # the call ringing or connected
        self.calls = 0                  # answered calls since start
        self.talk_ms = 0                # total talk time
        self.offers = 0                 # times rung
        self.misses = 0                 # consecutive unanswered rings
        self.missed_total = 0
        self.answered_at: int | None = None
        self.wrap_until: int | None = None
        self.reason = ""                # why not ready / logged out
        self.logout_pending = False
        self._pending_not_ready: str | None = None   # asked while ringing / on a call
        self.line_ok = True             # the phone line (or trunk group) can carry a call
        self.line_why = ""

    # -- queries ----------------------------------------------------------
    def unavailable(self, t: int) -> str | None:
        """Why this agent cannot be rung now, or None if it can."""
        s = self.state
        if s is AgentState.READY and self.line_ok:
            return None
        if s is AgentState.LOGGED_OUT:
            return "logged out"
        if s is AgentState.NOT_READY:
            return f"not ready ({self.reason})" if self.reason else "not ready"
        if s is AgentState.RINGING:
            return f"busy: ringing for {self.call}"
        if s is AgentState.ON_CALL:
            return f"busy: on call {self.call}"
        if s is AgentState.WRAP_UP:
            left = (self.wrap_until or t) - t
            return f"wrap-up ({left / 1000:.1f} s left)"
        if not self.line_ok:
            return f"line unavailable ({self.line_why})"
        return None

    def snapshot(self, t: int) -> dict[str, Any]:
        """A JSON-able view for the status API and events."""
        return {"name": self.name, "state": self.state.value, "since_ms": t - self.since,
                "call": self.call, "calls": self.calls, "talk_ms": self.talk_ms,
                "offers": self.offers, "misses": self.misses, "missed_total": self.missed_total,
                "idle_ms": t - self.idle_since if self.state is AgentState.READY else None,
                "reason": self.reason, "line_ok": self.line_ok,
                "reach": (f"{self.spec.phone[0]}:{self.spec.phone[1]}" if self.spec.phone
                          else f"{self.spec.number} via {self.spec.trunk}"),
                "skills": dict(self.spec.skills)}

    @property
    def pending(self) -> str | None:
        """A change asked during a call, applied when it ends: logout | not_ready | None."""
        if self.logout_pending:
            return "logout"
        return "not_ready" if self._pending_not_ready is not None else None

    # -- transitions --------------------------------------------------------
    def _set(self, state: AgentState, t: int, reason: str = "") -> None:
        self.state = state
        self.since = t
        self.reason = reason
        if state is AgentState.READY:
            self.idle_since = t

    def login(self, t: int, ready: bool = True) -> None:
        if self.state is not AgentState.LOGGED_OUT:
            self.logout_pending = False
            return
        self._set(AgentState.READY if ready else AgentState.NOT_READY, t,
                  "" if ready else "logged in not ready")

    def logout(self, t: int, reason: str = "logged out") -> None:
        """Log out now, or after the current call when the agent is on one."""
        if self.state in (AgentState.ON_CALL, AgentState.WRAP_UP) and self.call is not None:
            self.logout_pending = True
            return
        if self.state is AgentState.RINGING:
            raise AgentStateError(f"agent {self.name}: stop the ring for {self.call} "
                                  f"before logging out")
        self.call = None
        self.wrap_until = None
        self._set(AgentState.LOGGED_OUT, t, reason)

    def set_ready(self, t: int) -> None:
        if self.state is AgentState.LOGGED_OUT:
            raise AgentStateError(f"agent {self.name}: logged out; log in first")
        self._pending_not_ready = None
        if self.state in (AgentState.NOT_READY, AgentState.WRAP_UP):
            self.misses = 0
            self.wrap_until = None
            self._set(AgentState.READY, t)

    def set_not_ready(self, t: int, reason: str = "by agent") -> None:
        if self.state is AgentState.LOGGED_OUT:
            raise AgentStateError(f"agent {self.name}: logged out")
        if self.state in (AgentState.READY, AgentState.WRAP_UP):
            self.wrap_until = None
            self._set(AgentState.NOT_READY, t, reason)
        elif self.state in (AgentState.RINGING, AgentState.ON_CALL):
            self._pending_not_ready = reason   # applied when the call is over

    def offer(self, call: str, t: int) -> None:
        why = self.unavailable(t)
        if why is not None:
            raise AgentStateError(f"agent {self.name}: cannot ring for {call}: {why}")
        self.call = call
        self.offers += 1
        self._set(AgentState.RINGING, t)

    def answered(self, call: str, t: int) -> None:
        if self.state is not AgentState.RINGING or self.call != call:
            raise AgentStateError(f"agent {self.name}: answered {call} but is "
                                  f"{self.state.value} ({self.call})")
        self.misses = 0
        self.answered_at = t
        self._set(AgentState.ON_CALL, t)

    def ring_over(self, call: str, t: int, *, missed: bool) -> bool:
        """The ring for `call` stopped without an answer. True if the agent is now not ready.

        ``missed``: the agent let it ring out or refused it (counts toward
        max_misses); False when the ring stopped for another reason (the
        caller left, another agent answered a ring-all).
        """
        if self.state is not AgentState.RINGING or self.call != call:
            raise AgentStateError(f"agent {self.name}: no ring for {call} "
                                  f"({self.state.value}, {self.call})")
        self.call = None
        pending = self._pending_not_ready
        if missed:
            self.misses += 1
            self.missed_total += 1
        if self.logout_pending:
            self.logout_pending = False
            self._set(AgentState.LOGGED_OUT, t, "logged out")
            return True
        if pending is not None:
            self._pending_not_ready = None
            self._set(AgentState.NOT_READY, t, pending)
            return True
        if missed and self.spec.max_misses and self.misses >= self.spec.max_misses:
            self._set(AgentState.NOT_READY, t, f"missed {self.misses} calls in a row")
            return True
        # Back to ready, but keep the idle clock: an agent who let a call
        # ring out has not been idle for less time because of it.
        idle = self.idle_since
        self._set(AgentState.READY, t)
        self.idle_since = idle
        return False

    def ended(self, call: str, t: int) -> None:
        """The connected call is over: wrap-up (or ready at once with wrap-up 0)."""
        if self.state is not AgentState.ON_CALL or self.call != call:
            raise AgentStateError(f"agent {self.name}: call {call} ended but agent is "
                                  f"{self.state.value} ({self.call})")
        self.calls += 1
        self.talk_ms += t - (self.answered_at if self.answered_at is not None else t)
        self.answered_at = None
        self.call = None
        self._after_work(t)

    def _after_work(self, t: int) -> None:
        pending = self._pending_not_ready
        if self.logout_pending:
            self.logout_pending = False
            self._set(AgentState.LOGGED_OUT, t, "logged out")
        elif self.spec.wrapup_ms > 0:
            self.wrap_until = t + self.spec.wrapup_ms
            self._set(AgentState.WRAP_UP, t)
            self.idle_since = t
        elif pending is not None:
            self._pending_not_ready = None
            self._set(AgentState.NOT_READY, t, pending)
        else:
            self._set(AgentState.READY, t)

    def tick(self, t: int) -> bool:
        """Wrap-up over? True if the agent became ready (or not ready as asked)."""
        if self.state is AgentState.WRAP_UP and self.wrap_until is not None and t >= self.wrap_until:
            self.wrap_until = None
            pending = self._pending_not_ready
            if pending is not None:
                self._pending_not_ready = None
                self._set(AgentState.NOT_READY, t, pending)
            else:
                idle = self.idle_since
                self._set(AgentState.READY, t)
                self.idle_since = idle   # idle since the call ended (wrap-up counts)
            return True
        return False

    @property
    def deadline(self) -> int | None:
        return self.wrap_until if self.state is AgentState.WRAP_UP else None
