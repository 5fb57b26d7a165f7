"""The files of ``sigbench accuracy``: accuracy.csv, accuracy.md, accuracy.html and the plots of a sweep.

The sweeps themselves (``sigbench.accuracy_sweep``) compute rows only; this renders and writes them.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from sigbench.report.plots import line_style, pyplot
from sigbench.report.tables import md_table
from sigbench.results.files import atomic_write_text, save_figure

#: The columns a derivative sweep adds: where each derivative breaks, nearest 0 on each side.
NEAREST_COLUMNS = ("rel_err_over_1_above", "zero_above", "rel_err_over_1_below", "zero_below")


def write(directory: Path, sweep: Any) -> None:
    """accuracy.csv, accuracy.md, accuracy.html and the plots of ``sweep`` (an ``accuracy_sweep.ulp.Sweep`` or
    ``accuracy_sweep.loss.LossSweep``) in ``directory``."""
    import pandas as pd

    from sigbench.report import html

    table = pd.DataFrame([{c: r.get(c) for c in sweep.columns} for r in sweep.rows], columns=list(sweep.columns))
    atomic_write_text(directory / "accuracy.csv", table.to_csv(index=False))
    if sweep.quantity == "loss":
        plots = [loss_plot(directory / f"accuracy-{quantity}.png", sweep, quantity) for quantity in sweep.quantity_names
                 if any(key[0] == quantity for key in sweep.curves)]
        atomic_write_text(directory / "accuracy.md", loss_markdown(table, plots, sweep))
        page = html.loss_page(table, sweep.curves, sweep.quantity_names, sweep.dtype)
    else:
        stem = "accuracy" if sweep.quantity == "value" else "accuracy-grad"
        plots = [ulp_plot(directory / f"{stem}-{dtype}.png", samples, dtype, sweep.quantity)
                 for dtype, samples in sweep.samples.items()]
        atomic_write_text(directory / "accuracy.md", ulp_markdown(table, sweep.facts, plots, sweep.quantity))
        page = html.accuracy_page(table, sweep.facts, sweep.samples)
    atomic_write_text(directory / "accuracy.html", page)


def ulp_markdown(table: Any, facts: list[dict[str, Any]], plots: list[Any], quantity: str = "value") -> str:
    """accuracy.md of a value or derivative sweep."""
    what = "sigmoid" if quantity == "value" else "derivative of the sigmoid, sigma'(x) = e^-x/(1+e^-x)^2,"
    lines = ["# sigbench accuracy" + ("" if quantity == "value" else ": the derivative"), "",
             f"Error of each {what} in ULPs of its dtype against its correctly rounded value (float64 rounded "
             "once, mpmath where that is too close to call; mpmath alone for float64). `flushed_subnormals`: "
             "results that should be subnormal but are 0; `wrong_saturation`: 0 or 1 where the true result is a "
             "normal number; `nan_where_number`: NaN where a number is due.", ""]
    if quantity == "grad":
        lines += ["`rel_err_over_1_above` / `_below`: the input nearest 0 on each side (among those checked) where "
                  "the relative error exceeds 1; `zero_above` / `_below`: where the result is exactly 0 while the "
                  "correctly rounded value is not (a vanishing gradient made by rounding); inf: nowhere.", ""]
    for fact in facts:
        lines.append(f"- {fact['dtype']}: {fact['mode']}, {fact['seconds']} s, {fact['mpmath_decided']} inputs "
                     "decided by mpmath")
    lines.append("")
    shown = table.copy()
    for column in ("mean_ulp", "correctly_rounded_fraction"):
        shown[column] = shown[column].map(lambda v: "-" if v is None or v != v else f"{v:.4f}")
    shown["worst_input"] = shown["worst_input"].map(lambda v: "-" if v is None or v != v else f"{v:.9g}")
    for column in ("inputs", "over_1ulp", "flushed_subnormals", "nan_where_number", "wrong_saturation", "warnings"):
        shown[column] = shown[column].map(lambda v: "-" if v is None or v != v else f"{int(v):,}")
    for column in ("max_ulp", *(c for c in NEAREST_COLUMNS if c in shown)):
        shown[column] = shown[column].map(lambda v: "-" if v is None or v != v else f"{v:.7g}")
    for dtype, group in shown.groupby("dtype", sort=False):
        lines += [f"## {dtype}", "", md_table(group.drop(columns=["dtype", "seconds"]).fillna("-")), ""]
    lines += [f"![{p.stem}]({p.name})" for p in plots]
    return "\n".join(lines) + "\n"


def ulp_plot(path: Any, samples: dict[Any, tuple[np.ndarray, np.ndarray]], dtype: str,
             quantity: str = "value") -> Any:
    """Error in ULPs against x, the sampled points of each case (with .backend, .variant), a panel per backend."""

    plt = pyplot()
    warnings.simplefilter("ignore")  # symlog axes warn on their own transforms
    backends = list(dict.fromkeys(case.backend for case in samples))
    fig, axes = plt.subplots(1, len(backends), figsize=(5.5 * len(backends), 4.2), squeeze=False, sharey=True)
    for ax, backend in zip(axes[0], backends):
        for case, (x, ulps) in samples.items():
            if case.backend != backend:
                continue
            shown = np.isfinite(x) & np.isfinite(ulps) & (x > -110) & (x < (40 if quantity == "value" else 110))
            style = line_style(case.backend, case.variant)
            ax.scatter(x[shown], ulps[shown], s=5, alpha=0.5, color=style["color"] if case.variant == "fast"
                       else None, marker=style["marker"], label=case.variant)
        limits = (-110, 40) if quantity == "value" else (-110, 110)
        ax.set(yscale="symlog", xlabel="x", xlim=limits,
               title=f"{backend}, {dtype}{'' if quantity == 'value' else ', derivative'} (sampled points)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, markerscale=2.5, loc="upper right")
    axes[0][0].set_ylabel("error (ULPs against the correctly rounded " + ("sigmoid)" if quantity == "value"
                                                                           else "derivative)"))
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    plt.close(fig)
    return path


def loss_markdown(table: Any, plots: list[Any], sweep: Any) -> str:
    """accuracy.md of the loss sweep."""
    names = sweep.quantity_names
    lines = ["# sigbench accuracy: the binary cross-entropy", "",
             "Per-element BCE and its gradient with respect to the logit z, as each form computes them, against "
             "mpmath (loss: log(1 + e^-z) for target 1, log(1 + e^z) for target 0; gradient: sigma(z) - y), over "
             "logits -200..200 (dense near the breaking points). "
             f"`max_rel_err_typical`: over |z| <= {sweep.typical_logit:g}. "
             f"`departs_below` / `_above`: the logit nearest 0 on each side where the relative error exceeds "
             f"{sweep.departs_rel_err:g}. `zero_below` / `_above`: where the form returns exactly 0 while the true "
             "value is a normal number. `clamp_from`..`clamp_to`: the logits where the loss is exactly the clamp value "
             f"{-sweep.log_clamp:g}, though the true loss is not (BCELoss clamps each log at {sweep.log_clamp:g}). "
             "Where the true value is below the dtype's normal range, no relative error is counted. "
             "-: nowhere in the grid.", ""]
    shown = table.copy()
    for column in sweep.columns[5:]:
        shown[column] = shown[column].map(lambda v: "-" if v is None or v != v else f"{v:.4g}")
    for quantity, group in shown.groupby("quantity", sort=False):
        title = names.get(str(quantity), str(quantity))
        lines += [f"## {title}", "", md_table(group.drop(columns=["quantity"]).fillna("-")), ""]
    lines += [f"![{p.stem}]({p.name})" for p in plots]
    return "\n".join(lines) + "\n"


def loss_plot(path: Any, sweep: Any, quantity: str) -> Any:
    """Relative error against the logit, one line per form, one panel per target."""
    curves, dtype = sweep.curves, sweep.dtype

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.6), sharey=True)
    floor = 1e-9
    for ax, y in zip(axes, (0.0, 1.0)):
        for label, z, rel in curves.get((quantity, y), []):
            ax.plot(z, np.clip(np.nan_to_num(rel, nan=floor), floor, None), label=label, linewidth=1.1)
        ax.axhline(sweep.departs_rel_err, color="black", linestyle=":", linewidth=0.8)
        ax.set(yscale="log", xlabel="logit z", xlim=(-200, 200),
               title=f"{sweep.quantity_names[quantity]}, target {int(y)}, {dtype}")
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel(f"relative error (floor {floor:g})")
    axes[1].legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    plt.close(fig)
    return path
