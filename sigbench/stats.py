"""Robust statistics of timing samples, computed from an immutable tuple, never a running accumulator."""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

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


def mann_whitney_u(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Two-sided Mann-Whitney U test (normal approximation, tie- and continuity-corrected).

    Returns (U of a, p-value). Matches ``scipy.stats.mannwhitneyu(a, b, method="asymptotic")``.
    """
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    n1, n2 = x.size, y.size
    if n1 == 0 or n2 == 0:
        raise ValueError("both samples must be non-empty")
    combined = np.concatenate([x, y])
    order = np.argsort(combined, kind="mergesort")
    ranks = np.empty(combined.size)
    sorted_values = combined[order]
    _, first, counts = np.unique(sorted_values, return_index=True, return_counts=True)
    average = first + (counts + 1) / 2.0  # 1-based average rank of each tie group
    ranks[order] = np.repeat(average, counts)
    u1 = ranks[:n1].sum() - n1 * (n1 + 1) / 2.0
    mean_u = n1 * n2 / 2.0
    n = n1 + n2
    tie_term = float((counts**3 - counts).sum())
    var_u = n1 * n2 / 12.0 * ((n + 1) - tie_term / (n * (n - 1)))
    if var_u <= 0:
        return float(u1), 1.0
    z = (abs(u1 - mean_u) - 0.5) / math.sqrt(var_u)
    p = math.erfc(max(z, 0.0) / math.sqrt(2.0))
    return float(u1), min(1.0, p)


def ratio_ci(
    base: Sequence[float], new: Sequence[float], level: float = 0.95, resamples: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """Ratio of medians new/base with a percentile-bootstrap confidence interval (seeded, repeatable)."""
    b, n = np.asarray(base, dtype=np.float64), np.asarray(new, dtype=np.float64)
    ratio = float(np.median(n) / np.median(b))
    rng = np.random.default_rng(seed)
    boot_b = np.median(rng.choice(b, size=(resamples, b.size)), axis=1)
    boot_n = np.median(rng.choice(n, size=(resamples, n.size)), axis=1)
    low, high = np.percentile(boot_n / boot_b, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return ratio, float(low), float(high)
