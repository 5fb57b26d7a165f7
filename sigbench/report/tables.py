"""Results rows -> pandas -> the report: summary first, then tables, then the environment.

Knows nothing of any framework; works from rows alone, so saved runs can be re-reported and merged.
Every number is derived here once: ``markdown`` renders results.md, and sigbench.report.html lays out the same
summary and ``sections`` as results.html.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sigbench.core.workloads import is_reference
from sigbench.results.schema import COLUMNS

if TYPE_CHECKING:
    import pandas as pd

#: The first of these present is the baseline speedups are relative to.
BASELINES = {"sigmoid": ("numpy/naive", "numpy/stable"), "train": ("torch/eager", "numpy/handwritten")}


def frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per case with the columns of results.csv, the workloads in their usual order (the sigmoid
    first) and skipped cases last in each, whatever order the rows came in (skipped rows are listed before
    any case runs)."""
    import pandas as pd

    from sigbench.core.interface import WORKLOADS

    def place(i: int) -> tuple[int, bool]:
        workload = rows[i].get("workload")
        return (WORKLOADS.index(workload) if workload in WORKLOADS else len(WORKLOADS),
                rows[i].get("status") == "skipped")

    order = sorted(range(len(rows)), key=place)
    return pd.DataFrame([{c: rows[i].get(c) for c in COLUMNS} for i in order], columns=list(COLUMNS))


def format_seconds(seconds: float | None) -> str:
    if seconds is None or not isinstance(seconds, (int, float)) or math.isnan(seconds):
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


#: The training step's reference row (``numpy``'s ``reference`` variant) as the report names it: it is no NumPy
#: implementation, and no summary counts it among the fastest.
REFERENCE_LABEL = "reference (fused numba)"
#: What the report says of it, under every table that shows it.
REFERENCE_NOTE = ("reference (fused numba): the whole step (forward, BCE, backward, Adam) as one fused numba "
                  "function, with BLAS for the two large matmuls; a reference for what a step costs without "
                  "framework overhead, not a NumPy implementation.")


def label(row: pd.Series, machines: int) -> str:
    """``backend/variant``, prefixed by the machine when a merged report holds several."""
    label = REFERENCE_LABEL if is_reference(row) else f"{row['backend']}/{row['variant']}"
    return f"{row['machine']}: {label}" if machines > 1 else label


def md_table(table: pd.DataFrame) -> str:
    """A DataFrame as a markdown table, cells as they are (every report and accuracy table uses it)."""
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


def summary_table(table: pd.DataFrame) -> pd.DataFrame:
    """Per workload, dtype and device: the fastest backend/variant over each run of sizes it wins."""
    import pandas as pd

    ok = table[table["status"] == "ok"]
    machines = ok["machine"].nunique()
    if not ok.empty:
        ok = ok[~ok.apply(is_reference, axis=1)]
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
            name = " ≈ ".join(sorted([label(best, machines)] + [label(r, machines) for _, r in tied.iterrows()]))
            others = ranked.drop(index=[best.name, *tied.index])
            speedup = float(others["median_s"].min() / best["median_s"]) if not others.empty else math.nan
            winners.append((int(size), name, speedup, float(best["median_s"])))
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
    return pd.DataFrame(rows)


def summary_notes(table: pd.DataFrame) -> list[str]:
    """Markdown paragraphs under the summary table: unstable measurements, failures, cases not run."""
    lines: list[str] = []
    ok = table[table["status"] == "ok"]
    machines = table["machine"].nunique()
    unstable = ok[ok["unstable"].fillna(False).astype(bool)]
    if not unstable.empty:
        cases = ", ".join(f"{label(r, machines)} at {int(r['size']):,}" for _, r in unstable.iterrows())
        lines += [f"{len(unstable)} of {len(ok)} measurements are unstable (IQR over 10% of the median: the "
                  f"machine was busy or the case is jittery; rerun with --rigorous or on a quieter machine): "
                  f"{cases}.", ""]
    failed = table[(table["status"] != "ok") | (table["check_passed"] == False)]  # noqa: E712
    for _, row in failed.iterrows():
        if row["status"] == "skipped":
            continue
        what = "numerics check failed" if row["status"] == "ok" else row["status"]
        size = "-" if row["size"] is None or math.isnan(row["size"]) else f"{int(row['size']):,}"
        lines.append(f"- **{what}**: {row['workload']} {label(row, machines)} {row['dtype']} "
                     f"size {size}: {row['message']}")
    skipped = table[table["status"] == "skipped"]
    if not skipped.empty:
        lines.append("")
        lines.append("Not run: " + "; ".join(
            f"{label(r, machines)} {r['dtype']} ({r['message']})"
            for _, r in skipped.drop_duplicates(["backend", "variant", "dtype", "message"]).iterrows()
        ) + ".")
    return lines


def summary(table: pd.DataFrame) -> list[str]:
    """The summary section in markdown: the table of winners, then the notes."""
    lines = ["## Summary", ""]
    if table[table["status"] == "ok"].empty:
        return lines + ["No case was timed.", ""]
    return lines + [md_table(summary_table(table)), ""] + summary_notes(table) + [""]


@dataclass
class Table:
    """One table of a section: the text shown, a number to sort each cell by, and each column's machine."""

    caption: str
    shown: pd.DataFrame
    #: Same shape as ``shown``: the number behind each cell (None where there is none), for sorting.
    keys: pd.DataFrame
    #: Column -> machine, for the columns that belong to one machine of a merged report.
    machines: dict[str, str] = field(default_factory=dict)
    #: The machine of each row, for tables with a row per backend/variant of a merged report.
    row_machines: list[str] = field(default_factory=list)


@dataclass
class Section:
    """One workload, dtype, device (and hidden width) of a report: its rows and its tables, in order."""

    title: str
    workload: str
    dtype: str
    device: str
    hidden: int | None
    group: pd.DataFrame
    tables: list[Table]


def _number(value: Any) -> float | None:
    if value is None or not isinstance(value, (int, float)) or math.isnan(value):
        return None
    return float(value)


def _pivot(group: pd.DataFrame, machines: int, caption: str, cell: Any, key: Any) -> Table:
    """Sizes down, backend/variant across: ``cell(row, baseline_row)`` shown, ``key(row)`` to sort by."""
    import pandas as pd

    labels = list(dict.fromkeys(label(r, machines) for _, r in group.iterrows()))
    owners = {label(r, machines): str(r["machine"]) for _, r in group.iterrows()}
    baseline = _baseline(labels, str(group["workload"].iloc[0]))
    index = "batch" if str(group["workload"].iloc[0]) == "train" else "n"
    shown, keys = [], []
    for size, at_size in group.groupby("size", sort=True):
        by_label = {label(r, machines): r for _, r in at_size.iterrows()}
        base = by_label.get(baseline) if baseline else None
        line: dict[str, Any] = {index: f"{int(size):,}"}
        numbers: dict[str, Any] = {index: int(size)}
        for name in labels:
            row = by_label.get(name)
            line[name] = "-" if row is None else cell(row, base)
            numbers[name] = None if row is None or row["status"] != "ok" else _number(key(row))
        shown.append(line)
        keys.append(numbers)
    return Table(caption.format(baseline=baseline), pd.DataFrame(shown), pd.DataFrame(keys, dtype=object),
                 owners if machines > 1 else {})


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


def format_bytes(nbytes: float) -> str:
    """Bytes in binary units, as caches are sized: ``32 KiB``, ``1 MiB``, ``1.5 GiB``."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if nbytes >= scale:
            return f"{nbytes / scale:.3g} {unit}"
    return f"{int(nbytes)} B"


def _fixed(column: str, digits: str) -> Any:
    """A cell showing ``row[column]`` with a format, or '-' where it is missing."""
    return lambda row, base: "-" if _number(row[column]) is None else format(row[column], digits)


def half_peak_size(sizes: list[int], rates: list[float]) -> tuple[float, int, int] | None:
    """(peak rate, the size at the peak, the smallest size reaching half the peak), or None without a rate."""
    points = sorted((int(s), float(r)) for s, r in zip(sizes, rates) if r is not None and not math.isnan(r))
    if not points:
        return None
    peak_size, peak = max(points, key=lambda p: p[1])
    return peak, peak_size, next(size for size, rate in points if rate >= peak / 2)


def half_peak(group: pd.DataFrame, machines: int, rate: str = "gbps") -> Table | None:
    """Per backend/variant: peak throughput (``rate``: GB/s of a sigmoid, GFLOP/s of a step) and the smallest
    size (n, batch) from which it reaches half of it.

    Below that size a call's fixed cost (dispatch, launch, threading) dominates; above it, memory or arithmetic does.
    """
    import pandas as pd

    unit, what = ("GB/s", "n") if rate == "gbps" else ("GFLOP/s", "batch")
    ok = group[group["status"] == "ok"]
    rows, keys, owners = [], [], []
    for name, line in ok.groupby(ok.apply(lambda r: label(r, machines), axis=1), sort=False):
        found = half_peak_size(list(line["size"]), list(line[rate]))
        if found is None:
            continue
        peak, at_peak, half = found
        rows.append({"backend/variant": name, f"peak {unit}": f"{peak:.1f}", f"at {what}": f"{at_peak:,}",
                     f"half of peak from {what}": f"{half:,}"})
        keys.append({"backend/variant": None, f"peak {unit}": peak, f"at {what}": at_peak,
                     f"half of peak from {what}": half})
        owners.append(str(line["machine"].iloc[0]))
    if not rows:
        return None
    return Table("Where each reaches half its peak throughput (smaller calls are dominated by fixed per-call cost):",
                 pd.DataFrame(rows), pd.DataFrame(keys, dtype=object), row_machines=owners if machines > 1 else [])


def roofline(group: pd.DataFrame) -> Table | None:
    """Per batch: the step's FLOPs and bytes, the two terms of its roofline floor and which one binds."""
    import pandas as pd

    from sigbench.core.workloads import TrainConfig

    ok = group[(group["status"] == "ok") & group["floor_s"].notna()]
    rows, keys = [], []
    for size, at_size in ok.groupby("size", sort=True):
        first = at_size.iloc[0]
        config = TrainConfig(batch=int(size), hidden=int(first["hidden"]), dtype=str(first["dtype"]))
        flops_s, bytes_s = _number(first["floor_flops_s"]), _number(first["floor_bytes_s"])
        bound = "-" if flops_s is None or bytes_s is None else ("bytes" if bytes_s > flops_s else "FLOPs")
        rows.append({"batch": f"{int(size):,}", "MFLOP per step": f"{config.flops_per_step() / 1e6:.3g}",
                     "MiB per step": f"{config.bytes_per_step() / 2**20:.3g}",
                     "FLOPs at the GEMM rate": format_seconds(flops_s),
                     "bytes at the copy bandwidth": format_seconds(bytes_s),
                     "floor": format_seconds(_number(first["floor_s"])), "bound": bound})
        keys.append({"batch": int(size), "MFLOP per step": config.flops_per_step(),
                     "MiB per step": config.bytes_per_step(), "FLOPs at the GEMM rate": flops_s,
                     "bytes at the copy bandwidth": bytes_s, "floor": _number(first["floor_s"]), "bound": None})
    if not rows:
        return None
    return Table("Roofline floor: the larger of the step's FLOPs at the run's best GEMM rate and the bytes it must "
                 "move at least once (parameters, Adam's moments, activations and their gradients) at the copy "
                 "bandwidth measured for that many bytes:", pd.DataFrame(rows), pd.DataFrame(keys, dtype=object))


def sections(table: pd.DataFrame) -> list[Section]:
    """The body of a report, shared by results.md and results.html: one section per workload and shape."""
    out: list[Section] = []
    machines = table["machine"].nunique()
    # a backend missing on a fleet host has one sizeless row per workload, listed under "Not run" only
    table = table[table["size"].notna()]
    for (workload, dtype, device, hidden), group in table.groupby(
        ["workload", "dtype", "device", "hidden"], sort=False, dropna=False
    ):
        title = f"{workload}, {dtype}, {device}"
        if workload == "train":
            title += f", hidden {int(hidden)}"
        found = [_pivot(group, machines, "Median time per call (speedup over {baseline}); "
                        "✗ failed its numerics check, ~ unstable.", _time_cell, lambda r: r["median_s"])]
        if workload == "sigmoid" and group["bandwidth_fraction"].notna().any():
            found.append(_pivot(group, machines, "Fraction of the copy bandwidth at each row's own array size "
                                "reached (`bandwidth_fraction`: throughput over the best copy of n × itemsize "
                                "bytes, in cache where the array fits; 1.0 = the limit at that size):",
                                _fixed("bandwidth_fraction", ".2f"), lambda r: r["bandwidth_fraction"]))
        if workload == "sigmoid" and group["out_of_cache_fraction"].notna().any():
            found.append(_pivot(group, machines, "Fraction of the copy bandwidth out of cache "
                                "(`out_of_cache_fraction`: throughput over one copy far larger than the caches; "
                                "above 1.0 where the array fits in a cache):",
                                _fixed("out_of_cache_fraction", ".2f"), lambda r: r["out_of_cache_fraction"]))
        if workload == "sigmoid" and group["size"].nunique() > 1:
            peak = half_peak(group, machines)
            if peak is not None:
                found.append(peak)
        if workload == "train":
            found.append(_pivot(group, machines, "First call (tracing, JIT compilation, lazy allocation):",
                                lambda r, b: format_seconds(r["first_call_s"]), lambda r: r["first_call_s"]))
            if group["gflops"].notna().any():
                found.append(_pivot(group, machines, "GFLOP/s:", _fixed("gflops", ".2f"), lambda r: r["gflops"]))
            floors = roofline(group)
            if floors is not None:
                found.append(floors)
            if group["floor_fraction"].notna().any():
                found.append(_pivot(group, machines, "Fraction of the roofline floor reached (floor / time; 1.0 = a "
                                    "step at the floor):", _fixed("floor_fraction", ".3f"),
                                    lambda r: r["floor_fraction"]))
            if "reference_ratio" in group and group["reference_ratio"].notna().any():
                found.append(_pivot(group, machines, "Time over the reference row's at the same shape (1.00 = as "
                                    "fast as one fused numba function; " + REFERENCE_NOTE + "):",
                                    lambda r, b: "-" if _number(r["reference_ratio"]) is None
                                    else f"{r['reference_ratio']:.2f}x", lambda r: r["reference_ratio"]))
            if group["size"].nunique() > 1:
                peak = half_peak(group, machines, "gflops")
                if peak is not None:
                    found.append(peak)
        found.append(_pivot(group, machines, "Largest difference from the float64 reference:",
                            lambda r, b: "-" if _number(r["max_error"]) is None
                            else f"{r['max_error']:.3g} {r['error_unit']}", lambda r: r["max_error"]))
        out.append(Section(title, str(workload), str(dtype), str(device),
                           None if _number(hidden) is None else int(hidden), group, found))
    return out


def tables(table: pd.DataFrame) -> list[str]:
    lines: list[str] = []
    for section in sections(table):
        lines += [f"## {section.title}", ""]
        for part in section.tables:
            lines += [part.caption, "", md_table(part.shown), ""]
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
        caches = {name: size for name, size in (meta.get("cache_bytes") or {}).items() if size}
        if caches:
            lines.append("  - caches (per core as CPU 0 sees them): "
                         + ", ".join(f"{name} {format_bytes(size)}" for name, size in caches.items()))
        if meta.get("bandwidth"):
            bw = meta["bandwidth"]
            lines.append("  - copy bandwidth out of cache (bytes read + written): " + ", ".join(
                f"{k.removeprefix('copy_gbps_')} {v:.1f} GB/s" for k, v in bw.items() if k.startswith("copy_gbps_"))
                + f"; `out_of_cache_fraction` uses: {bw.get('copy_gbps', 0):.1f} GB/s")
            if bw.get("by_size"):
                lines.append("  - copy bandwidth at each array size, the best of the backends (`bandwidth_fraction` "
                             "uses it): " + ", ".join(f"{format_bytes(int(nbytes))} {entry['copy_gbps']:.1f} GB/s"
                                                      for nbytes, entry in bw["by_size"].items()))
        if meta.get("gemm"):
            gemm = meta["gemm"]
            lines.append("  - GEMM rate (square matmul, the training rows' dtype): " + ", ".join(
                f"{k.removeprefix('gemm_gflops_')} {v:.1f} GFLOP/s" for k, v in gemm.items()
                if k.startswith("gemm_gflops_")) + f"; floor uses: {gemm.get('gemm_gflops', 0):.1f} GFLOP/s")
        lines.append(f"  - threads: {meta.get('threads', {})}")
        paths = sorted({f"{r['backend']}/{r['variant']} {r['dtype']}: {r['code_path']}"
                        for r in document.get("rows", []) if r.get("code_path")})
        if paths:
            lines.append("  - code paths chosen at run time: " + "; ".join(paths))
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
