"""Erlang C: what waiting a queue should show for a given traffic and staff.

The M/M/N model (Poisson arrivals, exponential handle times, N agents,
callers who never give up, first come first served) gives, for offered
traffic A = arrival rate x mean handle time (Erlangs) and N > A:

- ``p_wait``        C(N, A): probability that a caller waits at all
- ``wait_over(t)``  P(W > t) = C(N, A) * exp(-(N - A) * t / T)
- ``service_level`` P(W <= t), the share answered within t
- ``asa``           average speed of answer = C(N, A) * T / (N - A)

It sizes a hotline and checks the ACD: the load test drives the real ACD
with the same traffic and compares (docs/queues.md). C is computed from
the Erlang B recursion, which stays finite for hundreds of agents.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["erlang_b", "erlang_c", "ErlangC", "agents_for_service_level"]


def _check(agents: int, traffic: float) -> None:
    if isinstance(agents, bool) or not isinstance(agents, int) or agents < 1:
        raise ValueError(f"agents must be a positive int, got {agents!r}")
    if not (traffic >= 0 and math.isfinite(traffic)):
        raise ValueError(f"traffic must be a finite number >= 0 Erlangs, got {traffic!r}")


def erlang_b(agents: int, traffic: float) -> float:
    """Blocking probability of N servers with no queue (B(N, A), recursive form)."""
    _check(agents, traffic)
    b = 1.0
    for k in range(1, agents + 1):
        b = traffic * b / (k + traffic * b)
    return b


def erlang_c(agents: int, traffic: float) -> float:
    """Probability of waiting C(N, A); 1.0 when the queue is unstable (A >= N)."""
    _check(agents, traffic)
    if traffic >= agents:
        return 1.0
    b = erlang_b(agents, traffic)
    return agents * b / (agents - traffic * (1.0 - b))


@dataclass(frozen=True)
class ErlangC:
    """A staffed queue: `agents`, arrivals per second, mean handle time in seconds."""

    agents: int
    rate: float           # calls per second
    handle: float         # mean handle (talk + wrap-up) time, seconds

    def __post_init__(self) -> None:
        if not (self.rate > 0 and self.handle > 0):
            raise ValueError("rate and handle time must be positive")
        _check(self.agents, self.traffic)

    @property
    def traffic(self) -> float:
        return self.rate * self.handle

    @property
    def occupancy(self) -> float:
        return self.traffic / self.agents

    @property
    def stable(self) -> bool:
        return self.traffic < self.agents

    @property
    def p_wait(self) -> float:
        return erlang_c(self.agents, self.traffic)

    def wait_over(self, t: float) -> float:
        """P(W > t), t in seconds."""
        if not self.stable:
            return 1.0
        if t < 0:
            return 1.0
        return self.p_wait * math.exp(-(self.agents - self.traffic) * t / self.handle)

    def service_level(self, t: float) -> float:
        """Share of callers answered within t seconds."""
        return 1.0 - self.wait_over(t)

    @property
    def asa(self) -> float:
        """Average speed of answer (mean wait over all callers), seconds."""
        if not self.stable:
            return math.inf
        return self.p_wait * self.handle / (self.agents - self.traffic)

    @property
    def mean_wait_of_waiters(self) -> float:
        """Mean wait of the callers who wait at all: T / (N - A)."""
        return self.handle / (self.agents - self.traffic) if self.stable else math.inf


def agents_for_service_level(rate: float, handle: float, target: float, within: float,
                             limit: int = 10_000) -> int:
    """Fewest agents for which at least `target` of calls are answered within `within` s."""
    if not 0 < target < 1:
        raise ValueError(f"target must be a share between 0 and 1, got {target!r}")
    n = max(1, math.floor(rate * handle) + 1)
    while n <= limit:
        if ErlangC(n, rate, handle).service_level(within) >= target:
            return n
        n += 1
    raise ValueError(f"no staffing up to {limit} agents reaches {target:.0%} in {within} s")
