"""The statistics of ``sigbench ab``: paired ratios over interleaved rounds, judged at a schedule of looks.

Round r runs one worker process per side; for each case, each side's process gives one value (its
``STATISTIC`` of its per-call times), and the round gives the paired log ratio d_r = log(B_r / A_r). Both
sides of a round ran seconds apart, in an order drawn at random, so the machine's drift (whole runs
25-35% off for minutes on a shared VM) cancels in d_r, and rounds are independent draws of it.

The estimate is the median of the d_r, and its interval the distribution-free one of order statistics
(the count of rounds below the true median is Binomial(n, 1/2)): it needs only that rounds are
independent, not that d is normal or symmetric. A paired t was tried first, then the Wilcoxon
signed-rank interval, and both dropped: a shared machine slows a whole process now and then, and with
three benchmarks on the 2 cores a third of the processes ran 2.5x slower throughout. Each such
round widened the t interval, and the Walsh averages of the signed-rank interval mix those rounds with
the good ones; in a recorded 1.2x run the median's interval decided the training step at 75 rounds
and the signed-rank one not by 117. On clean rounds the median needs about 1.5x the rounds of a t.

Rounds go on until each case is decided, so the intervals are looked at many times; each look may only
spend part of the error rate:

- looks happen at a fixed schedule of rounds (``look_rounds``: the 10th, then every 25% more);
- look k spends alpha * 6 / (pi^2 k^2) of the error rate (these shares sum to alpha over infinitely many
  looks, so the rule holds however long ``ab`` runs: no maximum need be known in advance);
- that share is split evenly over the cases judged (Bonferroni).

By the union bound, every interval of every case at every look holds at once with probability at least
1 - alpha. A verdict read off any of them (slower, faster, same) is then wrong with probability at most
alpha per run of ``ab``, not per case. Holm's step-down would reject more, but it ranks p-values and
gives no interval; a verdict of "same" needs an interval, and Bonferroni's are simultaneous.
"""
from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from sigbench.measure.stats import median_ci_ranks

#: The first look: with fewer rounds, the median's interval at a look's share of alpha is unbounded.
FIRST_LOOK = 10
#: Each look comes this much later than the one before (in rounds).
LOOK_GROWTH = 1.25
#: The power at which ``detectable_ratio`` is reckoned.
POWER = 0.8
#: What each process contributes to a round: the quantile of its per-call times (0.5: the median).
#: Chosen from A/A rounds (reports/ab-power/): see STATISTIC_NOTE.
STATISTICS: dict[str, float] = {"median": 0.5, "p10": 0.10}
STATISTIC = "p10"
STATISTIC_NOTE = ("each process's 10th percentile per-call time, the fast end that other jobs' interference "
                  "reaches least: over the A/A rounds of reports/ab-power its paired log ratios scattered "
                  "less than the median's in every case (a robust SD 14% lower at n = 65,536, 20% for the "
                  "training step, 23% at 1,024, 33% at 2^20), so a verdict takes fewer rounds")


def look_rounds(first: int = FIRST_LOOK, growth: float = LOOK_GROWTH) -> Iterator[int]:
    """The rounds after which the intervals are looked at: 10, 13, 16, 20, 25, 31, 39, 49, ..."""
    look = float(first)
    last = 0
    while True:
        current = max(last + 1, math.ceil(look - 1e-9))
        yield current
        last = current
        look *= growth


def look_number(rounds: int) -> int | None:
    """k when round ``rounds`` is the k-th look (1-based), else None."""
    for k, look in enumerate(look_rounds(), start=1):
        if look == rounds:
            return k
        if look > rounds:
            return None
    return None  # pragma: no cover  (the schedule is infinite)


def looks_until(rounds: int) -> int:
    """How many scheduled looks come at or before round ``rounds``."""
    count = 0
    for look in look_rounds():
        if look > rounds:
            return count
        count += 1
    return count  # pragma: no cover  (the schedule is infinite)


def look_alpha(k: int, alpha: float, cases: int) -> float:
    """The error rate look ``k`` may spend on each of ``cases`` cases: alpha * 6/(pi^2 k^2) / cases."""
    return alpha * 6.0 / (math.pi**2 * k * k) / max(1, cases)


@dataclass(frozen=True)
class Interval:
    """The ratio B/A over ``rounds`` rounds: its estimate and a simultaneous interval."""

    rounds: int
    ratio: float  # exp of the median of the rounds' log ratios
    low: float
    high: float
    scale_log: float  # a robust standard deviation of log(B/A) per round: 1.4826 x its MAD
    critical: float  # the normal quantile of the look's share of alpha (two-sided)


@lru_cache(maxsize=4096)
def median_ranks(rounds: int, alpha_look: float) -> tuple[int, int] | None:
    """The 1-based ranks (j, n + 1 - j) of the order statistics that bracket the median of ``rounds``
    values with coverage at least 1 - alpha_look (``stats.median_ci_ranks``); None where even the
    smallest and the largest value would not (too few rounds for this share of alpha)."""
    j, k, coverage = median_ci_ranks(rounds, 1.0 - alpha_look)
    return (j, k) if coverage >= 1.0 - alpha_look else None


def median_interval(log_ratios: Sequence[float], alpha_look: float) -> Interval:
    """The median of the rounds' log ratios and its distribution-free interval, as ratios of B/A.

    Unbounded (0 to inf) where the rounds are too few for this share of alpha."""
    d = np.sort(np.asarray(log_ratios, dtype=np.float64))
    n = d.size
    if n < 2:
        raise ValueError("a paired interval needs at least two rounds")
    centre = float(np.median(d))
    ranks = median_ranks(n, alpha_look)
    low, high = (float(d[ranks[0] - 1]), float(d[ranks[1] - 1])) if ranks else (-math.inf, math.inf)
    scale = 1.4826 * float(np.median(np.abs(d - centre)))
    return Interval(n, math.exp(centre), math.exp(low), math.exp(high), scale, normal_quantile(1 - alpha_look / 2))


def normal_quantile(p: float) -> float:
    """The standard normal's p-quantile, by Newton's method on math.erf (SciPy is not a core dependency)."""
    return float(math.sqrt(2.0) * erfinv(2.0 * p - 1.0))


def decide(low: float, high: float, threshold: float) -> str | None:
    """``slower`` / ``faster``: the whole interval lies beyond the threshold; ``same``: it lies within it;
    None: neither yet (undecided)."""
    if low > 1.0 + threshold:
        return "slower"
    if high < 1.0 / (1.0 + threshold):
        return "faster"
    if low >= 1.0 / (1.0 + threshold) and high <= 1.0 + threshold:
        return "same"
    return None


def detectable_ratio(scale_log: float, rounds: int, critical: float, threshold: float,
                     power: float = POWER) -> float:
    """The smallest slowdown B/A that ``rounds`` rounds with this scatter find as slower with ``power``.

    The interval's low end clears 1 + threshold when the estimate exceeds log(1 + threshold) plus the
    half-width; it does so with probability ``power`` when the true centre is z_power standard errors
    further still. The standard error is the median's: sqrt(pi / 2) scale / sqrt(n).
    """
    if rounds < 2 or not math.isfinite(scale_log):
        return math.inf
    standard_error = math.sqrt(math.pi / 2) * scale_log / math.sqrt(rounds)
    return math.exp(math.log1p(threshold) + (critical + normal_quantile(power)) * standard_error)


def erfinv(y: float) -> float:
    """The inverse error function, by Newton's method on math.erf (SciPy is not a core dependency)."""
    x = 0.0
    for _ in range(60):
        step = (math.erf(x) - y) / (2.0 / math.sqrt(math.pi) * math.exp(-x * x))
        x -= step
        if abs(step) < 1e-15:
            break
    return x
