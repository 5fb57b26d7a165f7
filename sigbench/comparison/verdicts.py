"""``sigbench compare BASE NEW``: per-case time ratios, judged against the noise between processes.

Each run's estimate is resampled the way it was measured (processes, then each process's samples: the
hierarchical bootstrap of ``stats``), so a difference counts only when it stands out from the variance
between worker processes, not just within one. The verdict is on the fast end of each process's times
(its 10th percentile), where other jobs' interference, which only ever adds time, reaches least.
``aa_test`` runs the same benchmark twice to show a machine's false-alarm rate.
"""
from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sigbench.core.errors import Interrupted
from sigbench.measure.stats import ratio_ci
from sigbench.results.files import atomic_write_text, load
from sigbench.results.schema import KEY_COLUMNS

#: Confidence level of the ratio's interval; a verdict beyond the threshold needs the whole interval there.
LEVEL = 0.95
#: The quantile of each process's per-call times that ``compare`` judges. A shared machine's noise is
#: one-sided: a busy neighbour slows some blocks of a process and never speeds any, so a low quantile
#: moves less between runs than the median (Chen and Revels 2016 judge on the minimum for this reason).
#: Not the minimum itself: it drifts down with the sample count, which the adaptive timer varies, and
#: a bootstrap of an extreme is degenerate.
JUDGED_QUANTILE = 0.10
#: The false-alarm rate an A/A test should stay under on a machine fit for comparisons.
AA_GOAL = 0.01

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


def markdown(rows: list[dict[str, Any]], warnings: list[str], threshold: float) -> str:
    lines = ["# sigbench compare", ""]
    lines += [f"> warning: {w}" for w in warnings] + ([""] if warnings else [])
    lines += ["| case | base median | new median | new/base median | new/base judged (95% CI) | p | processes | "
              "verdict |", "|---|---|---|---|---|---|---|---|"]
    from sigbench.report.tables import format_seconds

    for r in rows:
        case = f"{r['workload']} {r['backend']}/{r['variant']} {r['dtype']} {r['device']} {r['size']:,}"
        p = "-" if math.isnan(r["p_value"]) else f"{r['p_value']:.2g}"
        lines.append(f"| {case} | {format_seconds(r['base_median_s'])} | {format_seconds(r['new_median_s'])} | "
                     f"{r['median_ratio']:.3f} | {r['judged']} {r['ratio']:.3f} "
                     f"({r['ci_low']:.3f}-{r['ci_high']:.3f}) | {p} | {r['processes']} | {r['verdict']} |")
    lines += ["", "Geometric mean of new/base medians per backend:", ""]
    by_backend: dict[str, list[float]] = {}
    for r in rows:
        by_backend.setdefault(r["backend"], []).append(math.log(r["median_ratio"]))
    for backend, logs in by_backend.items():
        lines.append(f"- {backend}: {math.exp(sum(logs) / len(logs)):.3f} over {len(logs)} cases")
    slower = sum(r["verdict"] == "SLOWER" for r in rows)
    faster = sum(r["verdict"] == "FASTER" for r in rows)
    lines += ["", f"{slower} case(s) SLOWER and {faster} FASTER by more than {threshold:.0%}: the whole "
              f"{LEVEL:.0%} interval of new/base lies beyond the threshold. The interval is a hierarchical "
              f"bootstrap over processes, then samples, of each process's {JUDGED_QUANTILE:.0%} quantile "
              f"(p{JUDGED_QUANTILE * 100:.0f}), the fast end of its times, where other jobs' interference "
              "reaches least."]
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


@dataclass
class AAOutcome:
    rows: list[dict[str, Any]]
    flagged: list[dict[str, Any]]
    rate: float
    text: str
    exit_code: int


def _as_part(progress: Callable[[int, int, str], None] | None, index: int,
             parts: int) -> Callable[[int, int, str], None] | None:
    """Progress of run ``index`` of ``parts`` equal runs, shown as progress through all of them (else the
    second run's time left would be reckoned from the first run's start)."""
    if progress is None:
        return None
    show = progress

    def part(done: int, total: int, what: str) -> None:
        if done == total and index < parts - 1:
            what = f"run {index + 2} of {parts}"  # not "done": the next run starts
        show(index * total + done, parts * total, what)

    return part


def aa_test(options: Any, directory: Path, threshold: float,
            progress: Callable[[int, int, str], None] | None = None) -> AAOutcome:
    """Run ``options`` twice, one run after the other, into DIR/a and DIR/b, and compare the two.

    Nothing changes between the runs, so whatever compare flags beyond the threshold is a false alarm:
    the share of such cases is this machine's false-alarm rate under this many processes.
    """
    from dataclasses import replace

    from sigbench.execution import runner

    outcomes = []
    for index, name in enumerate(("a", "b")):
        run_options = replace(options, output_dir=directory / name, force=True)
        outcomes.append(runner.execute(run_options, _as_part(progress, index, 2)))
        if outcomes[-1].status != "complete":
            raise Interrupted(outcomes[-1].exit_code or 130)
    base, new = (load(o.directory) for o in outcomes)
    rows = compare_rows(base["rows"], new["rows"], threshold)
    alarms = flagged(rows)
    rate = len(alarms) / len(rows) if rows else 0.0
    text = markdown(rows, environment_warnings(base, new), threshold).replace(
        "# sigbench compare", "# sigbench aa: the same run twice", 1)
    text += (f"\nA/A false-alarm rate: {len(alarms)} of {len(rows)} cases ({rate:.1%}) flagged beyond "
             f"{threshold:.0%}, with {options.process_count()} process(es) per case; the goal is at most "
             f"{AA_GOAL:.0%}.\n")
    atomic_write_text(directory / "aa.md", text)
    return AAOutcome(rows, alarms, rate, text, 1 if rate > AA_GOAL else 0)
