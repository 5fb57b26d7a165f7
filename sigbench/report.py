"""Results rows -> pandas -> markdown: summary first, then tables, then the environment.

Knows nothing of any framework; works from rows alone, so saved runs can be re-reported and merged.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sigbench.results import COLUMNS

if TYPE_CHECKING:
    import pandas as pd

#: The first of these present is the baseline speedups are relative to.
BASELINES = {"sigmoid": ("numpy/naive", "numpy/stable"), "train": ("torch/eager", "numpy/handwritten")}


def frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    import pandas as pd

    table = pd.DataFrame([{c: row.get(c) for c in COLUMNS} for row in rows], columns=list(COLUMNS))
    return table


def format_seconds(seconds: float | None) -> str:
    if seconds is None or not isinstance(seconds, (int, float)) or math.isnan(seconds):
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def _label(row: pd.Series, machines: int) -> str:
    label = f"{row['backend']}/{row['variant']}"
    return f"{row['machine']}: {label}" if machines > 1 else label


def _md_table(table: pd.DataFrame) -> str:
    header = "| " + " | ".join(str(c) for c in table.columns) + " |"
    rule = "|" + "|".join("---" for _ in table.columns) + "|"
    lines = [header, rule]
    for values in table.itertuples(index=False):
        lines.append("| " + " | ".join(str(v) for v in values) + " |")
    return "\n".join(lines)


def _baseline(labels: list[str], workload: str) -> str | None:
    for candidate in BASELINES.get(workload, ()):
        for label in labels:
            if label.endswith(candidate):
                return label
    return labels[0] if labels else None


def _size_ranges(sizes: list[int]) -> str:
    return f"{sizes[0]:,}" if len(sizes) == 1 else f"{sizes[0]:,} - {sizes[-1]:,}"


def summary(table: pd.DataFrame) -> list[str]:
    """Per workload, dtype and device: the fastest backend/variant over each run of sizes it wins."""
    lines = ["## Summary", ""]
    ok = table[table["status"] == "ok"]
    if ok.empty:
        return lines + ["No case was timed.", ""]
    machines = ok["machine"].nunique()
    rows = []
    for (workload, dtype, device, hidden), group in ok.groupby(
        ["workload", "dtype", "device", "hidden"], sort=False, dropna=False
    ):
        winners: list[tuple[int, str, float, float]] = []
        for size, at_size in group.groupby("size", sort=True):
            ranked = at_size.sort_values("median_s")
            best = ranked.iloc[0]
            # backends whose median's interval overlaps the winner's are tied with it: say so
            tied = ranked[(ranked["ci_low_s"] <= best["ci_high_s"]) & (ranked.index != best.name)]
            label = " ≈ ".join(sorted([_label(best, machines)] + [_label(r, machines) for _, r in tied.iterrows()]))
            others = ranked.drop(index=[best.name, *tied.index])
            speedup = float(others["median_s"].min() / best["median_s"]) if not others.empty else math.nan
            winners.append((int(size), label, speedup, float(best["median_s"])))
        runs: list[list[tuple[int, str, float, float]]] = []
        for winner in winners:
            if runs and runs[-1][-1][1] == winner[1]:
                runs[-1].append(winner)
            else:
                runs.append([winner])
        checks = "all passed" if bool(group["check_passed"].fillna(False).all()) else "**some failed**"
        for run in runs:
            speedups = [w[2] for w in run if not math.isnan(w[2])]
            margin = (f"{min(speedups):.2f}x" if len(set(round(s, 2) for s in speedups)) <= 1
                      else f"{min(speedups):.2f}x - {max(speedups):.2f}x") if speedups else "-"
            what = "batch" if workload == "train" else "n"
            shape = f"{what} {_size_ranges([w[0] for w in run])}"
            if workload == "train":
                shape += f", hidden {int(hidden)}"
            rows.append({"workload": workload, "dtype": dtype, "device": device, "sizes": shape,
                         "fastest (≈: tied within 95% CIs)": f"**{run[0][1]}**", "ahead of the next by": margin,
                         "numerics": checks})
    import pandas as pd

    lines += [_md_table(pd.DataFrame(rows)), ""]
    unstable = ok[ok["unstable"].fillna(False).astype(bool)]
    if not unstable.empty:
        cases = ", ".join(f"{_label(r, machines)} at {int(r['size']):,}" for _, r in unstable.iterrows())
        lines += [f"{len(unstable)} of {len(ok)} measurements are unstable (IQR over 10% of the median: the "
                  f"machine was busy or the case is jittery; rerun with --rigorous or on a quieter machine): "
                  f"{cases}.", ""]
    failed = table[(table["status"] != "ok") | (table["check_passed"] == False)]  # noqa: E712
    for _, row in failed.iterrows():
        if row["status"] == "skipped":
            continue
        what = "numerics check failed" if row["status"] == "ok" else row["status"]
        lines.append(f"- **{what}**: {row['workload']} {_label(row, machines)} {row['dtype']} "
                     f"size {row['size']}: {row['message']}")
    skipped = table[table["status"] == "skipped"]
    if not skipped.empty:
        lines.append("")
        lines.append("Not run: " + "; ".join(
            f"{_label(r, machines)} {r['dtype']} ({r['message']})"
            for _, r in skipped.drop_duplicates(["backend", "variant", "dtype", "message"]).iterrows()
        ) + ".")
    return lines + [""]


def _pivot(group: pd.DataFrame, machines: int, cell: Any, index: str = "size") -> pd.DataFrame:
    import pandas as pd

    labels = list(dict.fromkeys(_label(r, machines) for _, r in group.iterrows()))
    baseline = _baseline(labels, str(group["workload"].iloc[0]))
    out = []
    for size, at_size in group.groupby(index, sort=True):
        by_label = {_label(r, machines): r for _, r in at_size.iterrows()}
        base = by_label.get(baseline) if baseline else None
        line: dict[str, Any] = {index: f"{int(size):,}"}
        for label in labels:
            row = by_label.get(label)
            line[label] = "-" if row is None else cell(row, base)
        out.append(line)
    table = pd.DataFrame(out)
    table.attrs["baseline"] = baseline
    return table


def _time_cell(row: pd.Series, base: pd.Series | None) -> str:
    if row["status"] != "ok":
        return str(row["status"])
    text = format_seconds(row["median_s"])
    if base is not None and base["status"] == "ok" and row["median_s"] > 0:
        text += f" ({base['median_s'] / row['median_s']:.2f}x)"
    if row["check_passed"] is False or row["check_passed"] == 0:
        text += " ✗"
    if row["unstable"]:
        text += " ~"
    return text


def _floor_cell(row: pd.Series, base: pd.Series | None) -> str:
    fraction = row["floor_fraction"]
    if fraction is None or (isinstance(fraction, float) and math.isnan(fraction)):
        return "-"
    return f"{format_seconds(row['floor_s'])} ({fraction:.3f})"


def half_peak(group: pd.DataFrame, machines: int) -> list[str]:
    """Per backend/variant: peak throughput and the smallest size reaching half of it.

    Below that size a call's fixed cost (dispatch, launch, threading) dominates; above it, memory does.
    """
    import pandas as pd

    ok = group[group["status"] == "ok"]
    rows = []
    for label, line in ok.groupby(ok.apply(lambda r: _label(r, machines), axis=1), sort=False):
        line = line.sort_values("size")
        peak = line["gbps"].max()
        reached = line[line["gbps"] >= peak / 2]
        rows.append({"backend/variant": label, "peak GB/s": f"{peak:.1f}",
                     "at n": f"{int(line.loc[line['gbps'].idxmax(), 'size']):,}",
                     "half of peak from n": f"{int(reached['size'].iloc[0]):,}"})
    if not rows:
        return []
    return ["Where each reaches half its peak throughput (smaller calls are dominated by fixed per-call cost):",
            "", _md_table(pd.DataFrame(rows)), ""]


def tables(table: pd.DataFrame) -> list[str]:
    lines: list[str] = []
    machines = table["machine"].nunique()
    for (workload, dtype, device, hidden), group in table.groupby(
        ["workload", "dtype", "device", "hidden"], sort=False, dropna=False
    ):
        title = f"## {workload}, {dtype}, {device}"
        if workload == "train":
            title += f", hidden {int(hidden)}"
        pivot = _pivot(group, machines, _time_cell)
        index_name = "batch" if workload == "train" else "n"
        pivot = pivot.rename(columns={"size": index_name})
        lines += [title, "", f"Median time per call (speedup over {pivot.attrs['baseline']}); "
                  "✗ failed its numerics check, ~ unstable.", "", _md_table(pivot), ""]
        if workload == "sigmoid" and group["bandwidth_fraction"].notna().any():
            fraction = _pivot(group, machines, lambda r, b: "-" if r["bandwidth_fraction"] is None
                              or math.isnan(r["bandwidth_fraction"]) else f"{r['bandwidth_fraction']:.2f}")
            lines += ["Fraction of the measured copy bandwidth reached (1.0 = the machine's limit):", "",
                      _md_table(fraction.rename(columns={"size": index_name})), ""]
        if workload == "sigmoid" and group["size"].nunique() > 1:
            lines += half_peak(group, machines)
        if workload == "train":
            first = _pivot(group, machines, lambda r, b: format_seconds(r["first_call_s"]))
            lines += ["First call (tracing, JIT compilation, lazy allocation):", "",
                      _md_table(first.rename(columns={"size": index_name})), ""]
            if group["gflops"].notna().any():
                rate = _pivot(group, machines, lambda r, b: "-" if r["gflops"] is None or math.isnan(r["gflops"])
                              else f"{r['gflops']:.2f}")
                lines += ["GFLOP/s:", "", _md_table(rate.rename(columns={"size": index_name})), ""]
            if group["floor_fraction"].notna().any():
                floor = _pivot(group, machines, _floor_cell)
                lines += ["Arithmetic floor (the step's FLOPs at the run's best measured GEMM rate) and the fraction "
                          "of the step's time it accounts for (1.0 = a step running at GEMM speed):", "",
                          _md_table(floor.rename(columns={"size": index_name})), ""]
        errors = _pivot(group, machines, lambda r, b: "-" if r["max_error"] is None or
                        (isinstance(r["max_error"], float) and math.isnan(r["max_error"]))
                        else f"{r['max_error']:.3g} {r['error_unit']}")
        lines += ["Largest difference from the float64 reference:", "",
                  _md_table(errors.rename(columns={"size": index_name})), ""]
    return lines


def environment(documents: list[dict[str, Any]]) -> list[str]:
    lines = ["## Environment", ""]
    for document in documents:
        meta = document.get("metadata", {})
        lines.append(f"- **{meta.get('hostname', '?')}** ({document.get('status', '?')} run, "
                     f"{meta.get('time_utc', '?')}): {meta.get('cpu', '?')}, {meta.get('cpu_count', '?')} "
                     f"logical CPUs; Python {meta.get('python', '?')}")
        versions = ", ".join(f"{k} {v}" for versions in meta.get("backends", {}).values() for k, v in versions.items())
        lines.append(f"  - versions: sigbench {document.get('sigbench_version', '?')}, {versions}")
        if meta.get("bandwidth"):
            bw = meta["bandwidth"]
            lines.append("  - copy bandwidth (bytes read + written): " + ", ".join(
                f"{k.removeprefix('copy_gbps_')} {v:.1f} GB/s" for k, v in bw.items() if k.startswith("copy_gbps_"))
                + f"; limit used: {bw.get('copy_gbps', 0):.1f} GB/s")
        if meta.get("gemm"):
            gemm = meta["gemm"]
            lines.append("  - GEMM rate (square matmul, the training rows' dtype): " + ", ".join(
                f"{k.removeprefix('gemm_gflops_')} {v:.1f} GFLOP/s" for k, v in gemm.items()
                if k.startswith("gemm_gflops_")) + f"; floor uses: {gemm.get('gemm_gflops', 0):.1f} GFLOP/s")
        lines.append(f"  - threads: {meta.get('threads', {})}")
        blas = ", ".join(f"{b.get('internal_api')} {b.get('version')} ({b.get('num_threads')} threads)"
                         for b in meta.get("blas", []))
        if blas:
            lines.append(f"  - BLAS: {blas}")
        if meta.get("gpus"):
            lines.append(f"  - GPUs: {', '.join(meta['gpus'])}")
        if meta.get("env"):
            lines.append(f"  - environment: {meta['env']}")
        if meta.get("git_commit"):
            lines.append(f"  - sigbench commit: {meta['git_commit']}")
        lines.append(f"  - seed: {meta.get('seed', '?')}; timer preset: {meta.get('preset', '?')}")
    return lines + [""]


def markdown(documents: list[dict[str, Any]], directory: Path | None = None) -> str:
    rows = [row for document in documents for row in document["rows"]]
    table = frame(rows)
    status = ", ".join(sorted({str(d.get("status")) for d in documents}))
    lines = ["# sigbench results", ""]
    if status != "complete":
        lines += [f"**Status: {status}.** Rows below are the cases finished so far.", ""]
    lines += summary(table)
    if directory is not None:
        plots = sorted(Path(directory).glob("*.png"))
        if plots:
            lines += ["## Plots", ""] + [f"![{p.stem}]({p.name})" for p in plots] + [""]
    lines += tables(table)
    lines += environment(documents)
    return "\n".join(lines)
