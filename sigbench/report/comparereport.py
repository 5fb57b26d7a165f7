"""The markdown of ``sigbench compare`` and of ``sigbench noise`` (the same run twice)."""
from __future__ import annotations

import math
from typing import Any

from sigbench.report.tables import format_seconds


def markdown(rows: list[dict[str, Any]], warnings: list[str], threshold: float, level: float, quantile: float) -> str:
    """The report of ``sigbench compare``: one line per case, the geometric mean per backend, and how it judged
    (``level``: the interval's confidence; ``quantile``: the per-process quantile judged)."""
    lines = ["# sigbench compare", ""]
    lines += [f"> warning: {w}" for w in warnings] + ([""] if warnings else [])
    lines += ["| case | base median | new median | new/base median | new/base judged (95% CI) | p | processes | "
              "verdict |", "|---|---|---|---|---|---|---|---|"]
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
              f"{level:.0%} interval of new/base lies beyond the threshold. The interval is a hierarchical "
              f"bootstrap over processes, then samples, of each process's {quantile:.0%} quantile "
              f"(p{quantile * 100:.0f}), the fast end of its times, where other jobs' interference "
              "reaches least."]
    return "\n".join(lines) + "\n"
