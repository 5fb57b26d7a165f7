"""PNG plots of a run (matplotlib, non-interactive): sigmoid time against size, training step times, and the
training step as the work grows (time per sample against batch, GFLOP/s against FLOPs per step, the floor drawn).

The interactive charts of results.html (sigbench/html.py) take their colours and styles from here.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from sigbench.results.files import save_figure


def pyplot() -> Any:
    """matplotlib's pyplot on the file-only Agg backend, imported on first use."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_all(directory: Path, rows: list[dict[str, Any]], meta: dict[str, Any] | None = None) -> list[Path]:
    """Every plot the rows allow; returns the files written."""
    import pandas as pd

    ok = pd.DataFrame([r for r in rows if r.get("status") == "ok"])
    written: list[Path] = []
    if ok.empty:
        return written
    machines = ok["machine"].nunique() if "machine" in ok else 1
    ok["label"] = [
        (f"{r['machine']}: " if machines > 1 else "") + f"{r['backend']}/{r['variant']}" for _, r in ok.iterrows()
    ]
    for (dtype, device), group in ok[ok["workload"] == "sigmoid"].groupby(["dtype", "device"]):
        written.append(_sigmoid_plot(directory / f"sigmoid-{dtype}-{device}.png", group, dtype, device, meta))
    for (dtype, device), group in ok[ok["workload"] == "train"].groupby(["dtype", "device"]):
        written.append(_train_plot(directory / f"train-{dtype}-{device}.png", group, dtype, device))
        if group["size"].nunique() > 1:
            written.append(_scaling_plot(directory / f"train-scaling-{dtype}-{device}.png", group, dtype, device))
    return written


#: One colour family per backend, one line style and marker per variant: 13+ lines stay tellable apart.
#: (matplotlib's tab10 colours, in hex so the HTML charts use the same ones.)
_BACKEND_COLOURS = {"numpy": "#1f77b4", "torch": "#d62728", "jax": "#2ca02c"}
_OTHER_COLOURS = ("#9467bd", "#8c564b", "#bcbd22", "#17becf", "#7f7f7f", "#e377c2")
_VARIANT_STYLES = {"naive": ("-", "o"), "stable": ("--", "s"), "builtin": (":", "^"), "fast": ("-", "D"),
                   "numexpr": ("-.", "v"), "handwritten": ("-", "o"), "jit": ("-", "s"), "eager": ("-", "o"),
                   "foreach": ("--", "s"), "fused": (":", "^"), "manual": ("-.", "D"), "compiled": ("-", "v")}


def series_style(backend: str, variant: str) -> tuple[str, str, str]:
    """(colour, matplotlib line style, matplotlib marker) of a backend/variant, the same in PNG and HTML."""
    colour = _BACKEND_COLOURS.get(backend, _OTHER_COLOURS[sum(map(ord, backend)) % len(_OTHER_COLOURS)])
    linestyle, marker = _VARIANT_STYLES.get(variant, ("-", "x"))
    return colour, linestyle, marker


def line_style(backend: str, variant: str, machine_index: int = 0) -> dict[str, Any]:
    """matplotlib line keywords for a series: its colour and marker, fainter for a second machine."""
    colour, linestyle, marker = series_style(backend, variant)
    return {"color": colour, "linestyle": linestyle, "marker": marker, "markersize": 5,
            "alpha": 1.0 if machine_index == 0 else 0.55, "linewidth": 2.2 if variant == "fast" else 1.4}


def _sigmoid_plot(path: Path, group: Any, dtype: str, device: str, meta: dict[str, Any] | None) -> Path:
    plt = pyplot()
    fig, (ax_time, ax_rate) = plt.subplots(1, 2, figsize=(16, 5.8))
    machines = list(dict.fromkeys(group["machine"])) if "machine" in group else [None]
    for label, line in group.groupby("label", sort=False):
        line = line.sort_values("size")
        first = line.iloc[0]
        style = line_style(first["backend"], first["variant"], machines.index(first.get("machine")))
        ax_time.plot(line["size"], line["median_s"] * 1e6, label=label, **style)
        ax_rate.plot(line["size"], line["gbps"], label=label, **style)
    bandwidth = (meta or {}).get("bandwidth", {})
    sizes, limit_gbps = copy_limit_line(bandwidth, dtype, set(group["size"].astype(int)))
    if sizes:
        ax_rate.plot(sizes, limit_gbps, color="black", linestyle="-", linewidth=1.6, marker="_",
                     label="copy bandwidth at each size (1.0 of bandwidth_fraction)")
    if bandwidth.get("copy_gbps"):
        ax_rate.axhline(bandwidth["copy_gbps"], color="black", linestyle="--", linewidth=1,
                        label=f"copy bandwidth out of cache ({bandwidth['copy_gbps']:.1f} GB/s)")
    for label, n in cache_marks((meta or {}).get("cache_bytes"), dtype):
        for ax in (ax_time, ax_rate):
            ax.axvline(n, color="grey", linestyle=":", linewidth=1)
            ax.annotate(label, (n, 0.5), xycoords=("data", "axes fraction"), xytext=(-2, 0),
                        textcoords="offset points", fontsize=7, color="dimgrey", rotation=90, ha="right",
                        va="center")
    ax_time.set(xscale="log", yscale="log", xlabel="elements (n)", ylabel="median time per call (µs)",
                title=f"sigmoid, {dtype}, {device}: time per call")
    ax_rate.set(xscale="log", xlabel="elements (n)", ylabel="throughput (GB/s read + written)",
                title="throughput against the copy bandwidth at each size")
    for ax in (ax_time, ax_rate):
        ax.grid(True, which="both", alpha=0.3)
    ax_rate.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.text(0.01, 0.01, "dotted: the n at which a call's input and output together fill each cache level",
             fontsize=8, color="dimgrey")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    save_figure(fig, path, dpi=110)
    plt.close(fig)
    return path


def cache_marks(cache_bytes: dict[str, int | None] | None, dtype: str) -> list[tuple[str, int]]:
    """Where each cache level falls on a sigmoid plot's n axis: ``(label, n)`` at the n whose input and output
    together fill the cache (``2 × n × itemsize`` bytes, a call's working set), beyond which the curves fall
    off. Levels of unknown size are left out."""
    from sigbench.core.workloads import numpy_dtype
    from sigbench.report.tables import format_bytes

    itemsize = numpy_dtype(dtype).itemsize
    return [(f"{name} {format_bytes(size)}", max(1, size // (2 * itemsize)))
            for name, size in (cache_bytes or {}).items() if size]


def copy_limit_line(bandwidth: dict[str, Any], dtype: str, sizes: set[int]) -> tuple[list[int], list[float]]:
    """The per-size copy limits (``bandwidth["by_size"]``) as points on a sigmoid plot's n axis: the n of each
    array among ``sizes``, and its limit in GB/s."""
    from sigbench.measure.limits import array_bytes, copy_limit_at

    points = [(n, copy_limit_at(bandwidth, array_bytes(n, dtype))) for n in sorted(sizes)]
    return [n for n, gbps in points if gbps is not None], [gbps for _, gbps in points if gbps is not None]


def _train_plot(path: Path, group: Any, dtype: str, device: str) -> Path:
    plt = pyplot()
    group = group.sort_values(["hidden", "size", "median_s"])
    labels = [f"{r['label']}\nbatch {int(r['size'])}, hidden {int(r['hidden'])}" for _, r in group.iterrows()]
    fig, (ax_step, ax_first) = plt.subplots(1, 2, figsize=(13, max(3.5, 0.45 * len(labels) + 1.5)))
    positions = range(len(labels))
    ax_step.barh(positions, group["median_s"] * 1e6, xerr=[(group["median_s"] - group["ci_low_s"]) * 1e6,
                 (group["ci_high_s"] - group["median_s"]) * 1e6], color="tab:blue")
    ax_step.set(yticks=list(positions), yticklabels=labels, xscale="log", xlabel="median time per step (µs)",
                title=f"training step, {dtype}, {device}: steady state (95% CI)")
    ax_first.barh(positions, group["first_call_s"] * 1e3, color="tab:orange")
    ax_first.set(yticks=list(positions), yticklabels=[], xscale="log", xlabel="first call (ms)",
                 title="first call: tracing, compilation, lazy setup")
    for ax in (ax_step, ax_first):
        ax.invert_yaxis()
        ax.grid(True, axis="x", which="both", alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)
    return path


#: Line styles of the hidden widths in the scaling plot, in increasing order.
_HIDDEN_STYLES = ("-", "--", ":", "-.")


def _scaling_plot(path: Path, group: Any, dtype: str, device: str) -> Path:
    """Time per sample against batch (one panel per hidden width) and GFLOP/s against FLOPs per step: one curve
    per implementation and hidden width, the roofline floor in black."""
    from sigbench.core.workloads import TrainConfig, is_reference

    plt = pyplot()
    hiddens = sorted(int(h) for h in group["hidden"].dropna().unique())
    fig, axes = plt.subplots(1, len(hiddens) + 1, figsize=(6.2 * (len(hiddens) + 1), 5.4))
    ax_rate = axes[-1]
    group = group.assign(flops=[TrainConfig(batch=int(r["size"]), hidden=int(r["hidden"])).flops_per_step()
                                for _, r in group.iterrows()])
    for index, hidden in enumerate(hiddens):
        ax_time, at_hidden = axes[index], group[group["hidden"] == hidden]
        dash = _HIDDEN_STYLES[index % len(_HIDDEN_STYLES)]
        for label, line in at_hidden.groupby("label", sort=False):
            line = line.sort_values("size")
            first = line.iloc[0]
            colour, _, marker = series_style(first["backend"], first["variant"])
            if is_reference(first):
                colour, marker = "black", "*"
            ax_time.plot(line["size"], line["median_s"] / line["size"] * 1e6, color=colour, marker=marker,
                         label=label, linewidth=1.4, markersize=5)
            ax_rate.plot(line["flops"], line["gflops"], color=colour, marker=marker, linestyle=dash, linewidth=1.4,
                         markersize=5, label=f"{label}, hidden {hidden}")
        floor = at_hidden.dropna(subset=["floor_s"]).drop_duplicates("size").sort_values("size")
        if not floor.empty:
            ax_time.plot(floor["size"], floor["floor_s"] / floor["size"] * 1e6, color="grey", linestyle="--",
                         linewidth=2.5, alpha=0.6, label="roofline floor")
            ax_rate.plot(floor["flops"], floor["flops"] / floor["floor_s"] / 1e9, color="grey", linestyle=dash,
                         linewidth=2.5, alpha=0.6, label=f"roofline floor, hidden {hidden}")
        ax_time.set(xscale="log", yscale="log", xlabel="batch", ylabel="median time per sample (µs)",
                    title=f"training step, {dtype}, {device}, hidden {hidden}: time per sample")
        ax_time.grid(True, which="both", alpha=0.3)
        ax_time.legend(fontsize=7)
    ax_rate.set(xscale="log", yscale="log", xlabel="FLOPs per step", ylabel="GFLOP/s",
                title="GFLOP/s against the work per step (grey: the floor's rate)")
    ax_rate.grid(True, which="both", alpha=0.3)
    ax_rate.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)
    return path
