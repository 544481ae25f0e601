"""Erlang C against closed forms and a direct factorial evaluation."""
from __future__ import annotations

import math

import pytest

from voiceserver.acd.erlang import ErlangC, agents_for_service_level, erlang_b, erlang_c


def direct_c(n: int, a: float) -> float:
    top = a ** n / math.factorial(n) * n / (n - a)
    return top / (sum(a ** k / math.factorial(k) for k in range(n)) + top)


def test_closed_forms() -> None:
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)
    assert erlang_c(1, 0.7) == pytest.approx(0.7)            # M/M/1: P(wait) = rho
    assert erlang_b(1, 1.0) == pytest.approx(0.5)
    mm1 = ErlangC(1, rate=0.5, handle=1.0)
    assert mm1.asa == pytest.approx(0.5 / (1 - 0.5))          # rho / (mu - lambda)
    assert mm1.wait_over(2.0) == pytest.approx(0.5 * math.exp(-0.5 * 2))


@pytest.mark.parametrize("n, a", [(5, 3.2), (10, 8.5), (50, 42.5), (120, 100.0)])
def test_matches_direct_formula(n: int, a: float) -> None:
    assert erlang_c(n, a) == pytest.approx(direct_c(n, a), rel=1e-9)


def test_figures_of_a_queue() -> None:
    q = ErlangC(10, rate=8.5 / 60, handle=60.0)
    assert q.traffic == pytest.approx(8.5) and q.occupancy == pytest.approx(0.85)
    assert q.p_wait == pytest.approx(0.5303, abs=1e-3)
    assert q.asa == pytest.approx(q.p_wait * 60 / 1.5)
    assert q.service_level(20) == pytest.approx(1 - q.p_wait * math.exp(-1.5 * 20 / 60))
    assert q.wait_over(0) == pytest.approx(q.p_wait)


def test_unstable_and_bad_input() -> None:
    assert erlang_c(3, 3.0) == 1.0 and ErlangC(3, 1.0, 3.0).asa == math.inf
    with pytest.raises(ValueError):
        erlang_c(0, 1.0)
    with pytest.raises(ValueError):
        ErlangC(2, 0.0, 1.0)


def test_staffing_for_a_service_level() -> None:
    n = agents_for_service_level(rate=100 / 1800, handle=180, target=0.8, within=20)
    assert ErlangC(n, 100 / 1800, 180).service_level(20) >= 0.8
    assert ErlangC(n - 1, 100 / 1800, 180).service_level(20) < 0.8
