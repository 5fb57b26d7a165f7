"""The statistics of ``sigbench ab``: the median's interval, the schedule of looks, and the error rate of the
whole sequential rule, against brute force and simulation."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from sigbench.comparison import sequential


@pytest.mark.parametrize("rounds", [2, 5, 9, 12])
@pytest.mark.parametrize("alpha", [0.2, 0.05, 0.01])
def test_median_ranks_are_the_widest_cut_that_keeps_the_coverage(rounds: int, alpha: float) -> None:
    """Brute force: over every pattern of which rounds fall below the true median (each equally likely),
    the interval [d_(j), d_(n+1-j)] misses it when j or more fall below... or above."""
    def miss(j: int) -> float:
        below = [sum(p) for p in itertools.product((0, 1), repeat=rounds)]
        return sum(b < j or b > rounds - j for b in below) / 2**rounds

    found = sequential.median_ranks(rounds, alpha)
    allowed = [j for j in range(1, rounds // 2 + 1) if miss(j) <= alpha]
    if not allowed:
        assert found is None
    else:
        assert found == (max(allowed), rounds + 1 - max(allowed))


def test_the_median_and_its_interval() -> None:
    interval = sequential.median_interval(np.log([1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 9.0]), 0.2)
    assert interval.ratio == pytest.approx(1.3)  # the wild round moves the median by one rank, no more
    assert interval.low < interval.ratio < interval.high <= 1.5 + 1e-12


def test_too_few_rounds_give_an_unbounded_interval() -> None:
    interval = sequential.median_interval([0.1, 0.11, 0.09], 0.01)  # 2 * 2^-3 > 0.01: no cut is allowed
    assert interval.low == 0.0 and interval.high == math.inf
    assert sequential.decide(interval.low, interval.high, 0.05) is None


def test_the_interval_covers_at_its_level_with_outlier_rounds() -> None:
    rng = np.random.default_rng(7)
    alpha, missed, trials = 0.1, 0, 2000
    for _ in range(trials):
        d = 0.05 + 0.02 * rng.standard_normal(15)
        slowed = rng.random(15) < 0.3  # a process a neighbour slowed, on either side at random
        d[slowed] += rng.choice([-1, 1], slowed.sum()) * rng.uniform(0.4, 0.9, slowed.sum())
        interval = sequential.median_interval(d, alpha)
        missed += not (interval.low <= math.exp(0.05) <= interval.high)
    assert missed / trials <= alpha * 1.25


def test_looks_and_their_shares_of_alpha() -> None:
    looks = list(itertools.islice(sequential.look_rounds(), 8))
    assert looks == sorted(set(looks)) and looks[0] == sequential.FIRST_LOOK
    assert all(b >= a * sequential.LOOK_GROWTH - 1 for a, b in zip(looks, looks[1:]))
    assert [sequential.look_number(r) for r in looks] == list(range(1, 9))
    assert sequential.look_number(looks[0] + 1) is None
    assert sequential.looks_until(looks[2]) == 3 and sequential.looks_until(looks[2] + 1) == 3
    shares = sum(sequential.look_alpha(k, 0.05, 4) for k in range(1, 100_000)) * 4
    assert 0.0499 < shares <= 0.05


def test_decide() -> None:
    assert sequential.decide(1.06, 1.2, 0.05) == "slower"
    assert sequential.decide(0.8, 0.94, 0.05) == "faster"
    assert sequential.decide(0.97, 1.04, 0.05) == "same"
    assert sequential.decide(1.01, 1.06, 0.05) is None
    assert sequential.decide(0.0, math.inf, 0.05) is None


def simulate_aa(rng: np.random.Generator, cases: int, max_rounds: int, spend: bool) -> bool:
    """One A/A run of the sequential rule (threshold 0: any interval that excludes 1 is a false alarm)."""
    d = rng.standard_t(3, size=(cases, max_rounds)) * 0.03  # heavy tails, centred on no change
    for k, rounds in enumerate(sequential.look_rounds(), start=1):
        if rounds > max_rounds:
            return False
        alpha = sequential.look_alpha(k, 0.05, cases) if spend else 0.05
        for case in range(cases):
            interval = sequential.median_interval(d[case, :rounds], alpha)
            if interval.low > 1 or interval.high < 1:
                return True
    return False


def test_the_sequential_rule_keeps_its_error_rate_per_run_over_every_look_and_case() -> None:
    rng = np.random.default_rng(11)
    runs = 300
    alarms = sum(simulate_aa(rng, cases=4, max_rounds=200, spend=True) for _ in range(runs))
    assert alarms / runs <= 0.05
    # the same looks, each at a plain 95% for each case: the false alarms pile up (the reason for spending)
    naive = sum(simulate_aa(rng, cases=4, max_rounds=200, spend=False) for _ in range(100))
    assert naive / 100 > 0.3


def test_a_real_slowdown_is_found_and_its_detectable_ratio_is_near_it() -> None:
    rng = np.random.default_rng(3)
    d = math.log(1.1) + 0.03 * rng.standard_normal(40)
    interval = sequential.median_interval(d, sequential.look_alpha(7, 0.05, 4))
    assert sequential.decide(interval.low, interval.high, 0.05) == "slower"
    detectable = sequential.detectable_ratio(interval.scale_log, 40, interval.critical, 0.05)
    assert 1.05 < detectable < 1.1
