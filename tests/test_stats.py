import math

import numpy as np
import pytest

from sigbench.stats import mann_whitney_u, median_ci_ranks, ratio_ci, summarize


def test_summary_against_hand_computed_values():
    s = summarize((4.0, 1.0, 100.0, 3.0, 2.0))
    assert (s.min_s, s.median_s, s.mean_s) == (1.0, 3.0, 22.0)
    assert s.std_s == pytest.approx(math.sqrt(7610 / 4))
    assert (s.q1_s, s.q3_s, s.iqr_s) == (2.0, 4.0, 2.0)
    assert s.outliers == 1  # 100 > q3 + 1.5 iqr = 7
    assert s.unstable  # iqr / median = 0.67
    # n = 5 cannot reach 95%: the whole range, with its true coverage 1 - 2/32
    assert (s.ci_low_s, s.ci_high_s, s.ci_level) == (1.0, 100.0, 0.9375)
    assert s.samples == 5


def test_stable_samples_are_not_flagged():
    s = summarize([1.0, 1.01, 0.99, 1.0, 1.02, 0.98, 1.0, 1.0, 1.01, 0.99])
    assert not s.unstable and s.outliers == 0


@pytest.mark.parametrize("n, ranks, coverage", [(10, (2, 9), 0.9785), (20, (6, 15), 0.9586), (100, (40, 61), 0.9648)])
def test_median_ci_ranks_match_published_tables(n, ranks, coverage):
    j, k, got = median_ci_ranks(n)
    assert (j, k) == ranks
    assert got == pytest.approx(coverage, abs=1e-4)


def test_median_ci_ranks_against_the_binomial_distribution():
    binom = pytest.importorskip("scipy.stats").binom
    for n in range(6, 200, 7):
        j, k, coverage = median_ci_ranks(n)
        assert k == n + 1 - j
        assert coverage == pytest.approx(1 - 2 * binom.cdf(j - 1, n, 0.5))
        assert coverage >= 0.95
        assert 1 - 2 * binom.cdf(j, n, 0.5) < 0.95  # and j is the largest rank that keeps 95%


def test_median_ci_covers_the_true_median_about_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    hits = 0
    trials = 2000
    for _ in range(trials):
        s = summarize(rng.exponential(size=25))
        hits += s.ci_low_s <= math.log(2) <= s.ci_high_s
    assert 0.94 <= hits / trials <= 0.995


def test_mann_whitney_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(1)
    for shift in (0.0, 0.3, 1.0):
        a = np.round(rng.normal(size=30), 1)  # rounding makes ties
        b = np.round(rng.normal(loc=shift, size=40), 1)
        u, p = mann_whitney_u(a, b)
        want = stats.mannwhitneyu(a, b, method="asymptotic", use_continuity=True, alternative="two-sided")
        assert u == pytest.approx(want.statistic)
        assert p == pytest.approx(want.pvalue, rel=1e-9)


def test_ratio_ci_brackets_the_ratio_and_is_repeatable():
    rng = np.random.default_rng(2)
    base = rng.normal(1.0, 0.01, 50)
    new = rng.normal(2.0, 0.02, 50)
    ratio, low, high = ratio_ci(base, new)
    assert low < ratio < high
    assert 1.95 < low and high < 2.05
    assert ratio_ci(base, new) == (ratio, low, high)
