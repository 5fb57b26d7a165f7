"""Robust statistics of timing samples, computed from immutable sequences, never a running accumulator.

A case is measured in several worker processes; its row combines them with a hierarchical bootstrap
(processes, then samples), so its confidence interval includes the variance between processes.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from functools import lru_cache

import numpy as np

#: Relative spread (IQR / median) above which a measurement is flagged as unstable.
UNSTABLE_IQR_FRACTION = 0.10

#: Columns ``Stats`` exports, in the order they appear in a results row.
FIELDS: tuple[str, ...] = (
    "min_s", "median_s", "mean_s", "std_s", "q1_s", "q3_s", "iqr_s", "ci_low_s", "ci_high_s",
    "ci_level", "samples", "outliers", "unstable",
)


def median_ci_ranks(n: int, level: float = 0.95) -> tuple[int, int, float]:
    """1-based ranks (j, k) of order statistics bracketing the median with coverage >= level.

    Distribution-free: the count of samples below the median is Binomial(n, 1/2). Returns the
    narrowest symmetric pair and its exact coverage; with too few samples, (1, n) and its coverage.
    """
    if n < 1:
        raise ValueError("need at least one sample")
    alpha = 1.0 - level
    total = 2**n
    cdf = 0  # P(B <= j - 1) * 2^n for the last j accepted
    best = 1
    for j in range(1, n // 2 + 1):
        cdf_next = cdf + math.comb(n, j - 1)
        if 2 * cdf_next > alpha * total:  # coverage 1 - 2 P(B <= j-1) would drop below level
            break
        cdf = cdf_next
        best = j
    cdf = sum(math.comb(n, i) for i in range(best))
    coverage = 1.0 - 2.0 * cdf / total
    return best, n + 1 - best, coverage


@dataclass(frozen=True)
class Stats:
    min_s: float
    median_s: float
    mean_s: float
    std_s: float
    q1_s: float
    q3_s: float
    iqr_s: float
    ci_low_s: float
    ci_high_s: float
    ci_level: float
    samples: int
    outliers: int
    unstable: bool

    def as_row(self) -> dict[str, float | int | bool]:
        return asdict(self)

    @property
    def ci_relative_halfwidth(self) -> float:
        return (self.ci_high_s - self.ci_low_s) / 2 / self.median_s if self.median_s > 0 else math.inf


def summarize(samples: Sequence[float], level: float = 0.95) -> Stats:
    """Statistics of per-call times. Quartiles are NumPy's default (linear) percentiles."""
    values = np.sort(np.asarray(tuple(samples), dtype=np.float64))
    n = values.size
    if n == 0:
        raise ValueError("no samples")
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    iqr = q3 - q1
    j, k, coverage = median_ci_ranks(n, level)
    outliers = int(np.count_nonzero((values < q1 - 1.5 * iqr) | (values > q3 + 1.5 * iqr)))
    return Stats(
        min_s=float(values[0]),
        median_s=float(median),
        mean_s=float(values.mean()),
        std_s=float(values.std(ddof=1)) if n > 1 else 0.0,
        q1_s=float(q1),
        q3_s=float(q3),
        iqr_s=float(iqr),
        ci_low_s=float(values[j - 1]),
        ci_high_s=float(values[k - 1]),
        ci_level=round(coverage, 4),
        samples=n,
        outliers=outliers,
        unstable=bool(median > 0 and iqr / median > UNSTABLE_IQR_FRACTION),
    )


#: Bootstrap resamples behind every confidence interval that pools processes.
BOOTSTRAP_RESAMPLES = 4000


def process_medians(process_samples: Sequence[Sequence[float]]) -> np.ndarray:
    """Each process's median per-call time."""
    return np.array([float(np.median(np.asarray(s, dtype=np.float64))) for s in process_samples])


def pooled_quantile(process_samples: Sequence[Sequence[float]], quantile: float = 0.5) -> float:
    """The geometric mean over processes of each process's ``quantile`` of its per-call times.

    Each process is one draw of the machine's state (address-space layout, allocator, thread placement),
    so every process weighs the same, however many samples its adaptive timer took.
    """
    levels = [np.quantile(np.asarray(s, dtype=np.float64), quantile) for s in process_samples if len(s)]
    return float(np.exp(np.mean(np.log(levels))))


def pooled_median(process_samples: Sequence[Sequence[float]]) -> float:
    """The estimate a row reports: the geometric mean of the processes' medians."""
    return pooled_quantile(process_samples, 0.5)


def hierarchical_bootstrap(process_samples: Sequence[Sequence[float]], resamples: int = BOOTSTRAP_RESAMPLES,
                           seed: int = 0, quantile: float = 0.5) -> np.ndarray:
    """Bootstrap distribution of ``pooled_quantile``: resample processes, then each one's samples.

    Two-level (hierarchical) bootstrap: a draw picks K processes with replacement, re-draws each picked
    process's samples with replacement, and takes the geometric mean of their ``quantile``. Its spread
    holds the variance between processes as well as within them; with one process it is the plain
    bootstrap of that quantile.
    """
    rng = np.random.default_rng(seed)
    groups = [np.asarray(s, dtype=np.float64) for s in process_samples if len(s)]
    if not groups:
        raise ValueError("no samples")
    # within-process level: ``resamples`` bootstrap quantiles of every process, in log
    inner = np.empty((resamples, len(groups)))
    for k, values in enumerate(groups):
        picks = rng.integers(0, values.size, size=(resamples, values.size))
        inner[:, k] = np.log(np.quantile(values[picks], quantile, axis=1))
    if len(groups) == 1:
        return np.exp(inner[:, 0])
    # process level: each draw picks K processes; a process picked twice gets independent inner draws
    chosen = rng.integers(0, len(groups), size=(resamples, len(groups)))
    rows = (np.arange(resamples)[:, None] + 7919 * np.arange(len(groups))[None, :]) % resamples
    return np.exp(inner[rows, chosen].mean(axis=1))


@lru_cache(maxsize=64)
def student_t_quantile(p: float, df: int) -> float:
    """The p-quantile (p > 0.5) of Student's t with ``df`` degrees of freedom, by bisection on its CDF
    (mpmath's regularized incomplete beta): SciPy is not a core dependency."""
    import mpmath

    def upper_tail(t: float) -> float:
        return float(mpmath.betainc(df / 2, 0.5, 0, df / (df + t * t), regularized=True)) / 2

    low, high = 0.0, 1e6
    for _ in range(200):
        middle = (low + high) / 2
        low, high = (middle, high) if upper_tail(middle) > 1 - p else (low, middle)
    return (low + high) / 2


def expanded_level(level: float, processes: int) -> float:
    """The percentile level that gives a ``level`` interval from a bootstrap over few processes.

    A percentile bootstrap over K values is too narrow for small K: it uses a normal quantile and the
    variance divided by K instead of K - 1. Hesterberg's expanded percentile interval corrects both,
    taking the percentiles at z = sqrt(K / (K - 1)) t(K - 1). For K = 3 at 95% that is the bootstrap's
    extremes: a difference must hold across every combination of the processes to count.
    """
    if processes < 2:
        return level
    z = math.sqrt(processes / (processes - 1)) * student_t_quantile((1 + level) / 2, processes - 1)
    return math.erf(z / math.sqrt(2))


def percentile_interval(draws: np.ndarray, level: float) -> tuple[float, float]:
    low, high = np.percentile(draws, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return float(low), float(high)


def hierarchical_ci(process_samples: Sequence[Sequence[float]], level: float = 0.95,
                    seed: int = 0) -> tuple[float, float]:
    """Expanded percentile interval of ``pooled_median`` from the hierarchical bootstrap."""
    draws = hierarchical_bootstrap(process_samples, seed=seed)
    return percentile_interval(draws, expanded_level(level, sum(1 for s in process_samples if len(s))))


def summarize_processes(process_samples: Sequence[Sequence[float]], level: float = 0.95) -> Stats:
    """A row's statistics from every process's samples.

    The median is ``pooled_median`` and its interval the hierarchical bootstrap's, so both include the
    variance between processes; min, mean, quartiles and outliers describe all samples pooled, and the
    unstable flag the jitter within the processes (the median of their IQR / median).
    """
    groups = [list(s) for s in process_samples if len(s)]
    pooled = summarize([v for group in groups for v in group], level)
    if len(groups) == 1 and pooled.samples >= 6:
        return pooled  # one process: the distribution-free interval from order statistics is exact
    low, high = hierarchical_ci(groups, level)
    median = pooled_median(groups)
    # jitter within a process, as with one process: the spread between processes is in the interval and
    # in process_cv, and would otherwise flag nearly every row of a machine whose processes differ
    jitter = [stats.iqr_s / stats.median_s for stats in map(summarize, groups)]
    unstable = bool(np.median(jitter) > UNSTABLE_IQR_FRACTION)
    return replace(pooled, median_s=median, ci_low_s=min(low, median), ci_high_s=max(high, median),
                   ci_level=level, unstable=unstable)


def ratio_ci(base: Sequence[Sequence[float]], new: Sequence[Sequence[float]], level: float = 0.95,
             seed: int = 0, quantile: float = 0.5) -> tuple[float, float, float, float]:
    """new/base ratio of ``pooled_quantile`` with its hierarchical-bootstrap interval and a two-sided p-value.

    Both runs are resampled independently, processes then samples, so a difference is judged against the
    noise between processes, not only within one; the interval is expanded for the fewer of the two runs'
    process counts (``expanded_level``). The p-value is twice the share of ratio draws on the
    far side of 1 (a bootstrap test of "no change").
    """
    ratio = pooled_quantile(new, quantile) / pooled_quantile(base, quantile)
    draws = (hierarchical_bootstrap(new, seed=seed + 1, quantile=quantile)
             / hierarchical_bootstrap(base, seed=seed, quantile=quantile))
    processes = min(sum(1 for s in base if len(s)), sum(1 for s in new if len(s)))
    low, high = percentile_interval(draws, expanded_level(level, processes))
    beyond = np.count_nonzero(draws <= 1.0) if ratio >= 1 else np.count_nonzero(draws >= 1.0)
    p_value = min(1.0, 2.0 * (beyond + 1) / (draws.size + 1))
    return float(ratio), float(low), float(high), p_value
