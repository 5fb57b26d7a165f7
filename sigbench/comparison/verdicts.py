"""``sigbench compare BASE NEW``: per-case time ratios, judged against the noise between processes.

Each run's estimate is resampled the way it was measured (processes, then each process's samples: the
hierarchical bootstrap of ``stats``), so a difference counts only when it stands out from the variance
between worker processes, not just within one. The verdict is on the fast end of each process's times
(its 10th percentile), where other jobs' interference, which only ever adds time, reaches least.
The markdown is ``sigbench.report.comparereport``'s; ``sigbench.comparison.aa`` runs the same benchmark twice.
"""
from __future__ import annotations

import math
from typing import Any

from sigbench.measure.stats import ratio_ci
from sigbench.results.schema import KEY_COLUMNS

#: Confidence level of the ratio's interval; a verdict beyond the threshold needs the whole interval there.
LEVEL = 0.95
#: The quantile of each process's per-call times that ``compare`` judges. A shared machine's noise is
#: one-sided: a busy neighbour slows some blocks of a process and never speeds any, so a low quantile
#: moves less between runs than the median (Chen and Revels 2016 judge on the minimum for this reason).
#: Not the minimum itself: it drifts down with the sample count, which the adaptive timer varies, and
#: a bootstrap of an extreme is degenerate.
JUDGED_QUANTILE = 0.10

_MACHINE_KEYS = ("hostname", "cpu", "cpu_count")


def _key(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row.get(c) for c in KEY_COLUMNS)


def process_samples(row: dict[str, Any]) -> list[list[float]]:
    """A row's raw samples per process (``process_samples_s``)."""
    return [list(s) for s in row.get("process_samples_s") or [] if len(s)]


def verdict(low: float, high: float, threshold: float) -> str:
    """SLOWER / FASTER when the whole interval of new/base lies beyond the threshold; lower-case when it
    only excludes 1; ``same`` otherwise."""
    if low > 1 + threshold:
        return "SLOWER"
    if high < 1 / (1 + threshold):
        return "FASTER"
    if low > 1:
        return "slower (within threshold)"
    if high < 1:
        return "faster (within threshold)"
    return "same"


def compare_rows(base_rows: list[dict[str, Any]], new_rows: list[dict[str, Any]],
                 threshold: float, quantile: float = JUDGED_QUANTILE) -> list[dict[str, Any]]:
    """One verdict per case present and timed in both runs, on each process's ``quantile``."""
    base = {_key(r): r for r in base_rows if r.get("status") == "ok"}
    out = []
    for row in new_rows:
        if row.get("status") != "ok" or _key(row) not in base:
            continue
        old = base[_key(row)]
        old_samples, new_samples = process_samples(old), process_samples(row)
        median_ratio = row["median_s"] / old["median_s"]  # each row's median is already pooled over processes
        if sum(map(len, old_samples)) >= 3 and sum(map(len, new_samples)) >= 3:
            ratio, low, high, p_value = ratio_ci(old_samples, new_samples, LEVEL, quantile=quantile)
            judged = f"p{quantile * 100:.0f}"
        else:  # no raw samples: the medians' own intervals bound the ratio
            ratio = median_ratio
            low, high = row["ci_low_s"] / old["ci_high_s"], row["ci_high_s"] / old["ci_low_s"]
            p_value, judged = math.nan, "median"
        out.append({**{c: row.get(c) for c in KEY_COLUMNS}, "base_median_s": old["median_s"],
                    "new_median_s": row["median_s"], "median_ratio": median_ratio, "judged": judged,
                    "ratio": ratio, "ci_low": low, "ci_high": high, "p_value": p_value,
                    "verdict": verdict(low, high, threshold), "processes": f"{len(old_samples)}/{len(new_samples)}"})
    return out


def flagged(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The cases whose change is significant beyond the threshold, either way."""
    return [r for r in rows if r["verdict"] in ("SLOWER", "FASTER")]


def environment_warnings(base: dict[str, Any], new: dict[str, Any]) -> list[str]:
    warnings = []
    b, n = base.get("metadata", {}), new.get("metadata", {})
    for key in _MACHINE_KEYS:
        if b.get(key) != n.get(key):
            warnings.append(f"different machines: {key} {b.get(key)!r} vs {n.get(key)!r}")
    for backend in sorted(set(b.get("backends", {})) & set(n.get("backends", {}))):
        if b["backends"][backend] != n["backends"][backend]:
            warnings.append(f"different {backend} versions: {b['backends'][backend]} vs {n['backends'][backend]}")
    return warnings
