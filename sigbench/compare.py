"""``sigbench compare BASE NEW``: per-case time ratios with confidence intervals and a significance test."""
from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

from sigbench.results import KEY_COLUMNS, atomic_write_text, load
from sigbench.stats import mann_whitney_u, ratio_ci

#: p-value under which a difference counts as real.
SIGNIFICANCE = 0.01

_MACHINE_KEYS = ("hostname", "cpu", "cpu_count")


def _key(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row.get(c) for c in KEY_COLUMNS)


def compare_rows(base_rows: list[dict[str, Any]], new_rows: list[dict[str, Any]],
                 threshold: float) -> list[dict[str, Any]]:
    """One verdict per case present and timed in both: faster, slower, same, or slower-beyond-threshold."""
    base = {_key(r): r for r in base_rows if r.get("status") == "ok"}
    out = []
    for row in new_rows:
        if row.get("status") != "ok" or _key(row) not in base:
            continue
        old = base[_key(row)]
        old_samples, new_samples = old.get("samples_s") or [], row.get("samples_s") or []
        if len(old_samples) >= 3 and len(new_samples) >= 3:
            ratio, low, high = ratio_ci(old_samples, new_samples)
            _, p_value = mann_whitney_u(old_samples, new_samples)
            significant = p_value < SIGNIFICANCE
        else:  # no raw samples: fall back on the medians' confidence intervals not overlapping
            ratio = row["median_s"] / old["median_s"]
            low, high = row["ci_low_s"] / old["ci_high_s"], row["ci_high_s"] / old["ci_low_s"]
            p_value = math.nan
            significant = row["ci_low_s"] > old["ci_high_s"] or row["ci_high_s"] < old["ci_low_s"]
        if significant and ratio > 1 + threshold:
            verdict = "SLOWER"
        elif significant and ratio > 1:
            verdict = "slower (within threshold)"
        elif significant and ratio < 1:
            verdict = "faster"
        else:
            verdict = "same"
        out.append({**{c: row.get(c) for c in KEY_COLUMNS}, "base_median_s": old["median_s"],
                    "new_median_s": row["median_s"], "ratio": ratio, "ci_low": low, "ci_high": high,
                    "p_value": p_value, "verdict": verdict})
    return out


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


def markdown(rows: list[dict[str, Any]], warnings: list[str], threshold: float) -> str:
    lines = ["# sigbench compare", ""]
    lines += [f"> warning: {w}" for w in warnings] + ([""] if warnings else [])
    lines += ["| case | base | new | new/base (95% CI) | p | verdict |", "|---|---|---|---|---|---|"]
    from sigbench.report import format_seconds

    for r in rows:
        case = f"{r['workload']} {r['backend']}/{r['variant']} {r['dtype']} {r['device']} {r['size']:,}"
        p = "-" if math.isnan(r["p_value"]) else f"{r['p_value']:.2g}"
        lines.append(f"| {case} | {format_seconds(r['base_median_s'])} | {format_seconds(r['new_median_s'])} | "
                     f"{r['ratio']:.3f} ({r['ci_low']:.3f}-{r['ci_high']:.3f}) | {p} | {r['verdict']} |")
    lines += ["", "Geometric mean of new/base per backend:", ""]
    by_backend: dict[str, list[float]] = {}
    for r in rows:
        by_backend.setdefault(r["backend"], []).append(math.log(r["ratio"]))
    for backend, logs in by_backend.items():
        lines.append(f"- {backend}: {math.exp(sum(logs) / len(logs)):.3f} over {len(logs)} cases")
    slower = sum(r["verdict"] == "SLOWER" for r in rows)
    lines += ["", f"{slower} case(s) significantly slower by more than {threshold:.0%} "
              f"(Mann-Whitney U, p < {SIGNIFICANCE})."]
    return "\n".join(lines) + "\n"


def main(base_path: Path, new_path: Path, threshold: float, output: Path | None) -> int:
    base, new = load(base_path), load(new_path)
    rows = compare_rows(base["rows"], new["rows"], threshold)
    warnings = environment_warnings(base, new)
    if not rows:
        print("sigbench compare: the two runs have no timed case in common", file=sys.stderr)
        return 2
    text = markdown(rows, warnings, threshold)
    print(text)
    for warning in warnings:
        print(f"sigbench compare: warning: {warning}", file=sys.stderr)
    if output is not None:
        atomic_write_text(output, text)
    return 1 if any(r["verdict"] == "SLOWER" for r in rows) else 0
