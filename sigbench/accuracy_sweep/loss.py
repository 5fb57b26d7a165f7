"""``sigbench accuracy --quantity loss``: binary cross-entropy per element, and its gradient with respect to the
logit, as each framework's form computes it, against mpmath, over logits from -200 to 200.

The forms are the backends' ``bce_forms`` (``sigbench.interface.SigmoidGradients``): the tutorial's Sigmoid
then BCELoss, BCEWithLogitsLoss, optax, and sigbench's own NumPy and JAX steps.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from sigbench.core.reference import BCE_LOG_CLAMP
from sigbench.core.workloads import numpy_dtype

LOSS_DTYPES: tuple[str, ...] = ("float32", "float64")
#: A form "departs" from the true value where its relative error first exceeds this (going out from 0).
DEPARTS_REL_ERR = 1e-3
#: |logit| up to this is the "typical" range whose worst relative error the table gives apart.
TYPICAL_LOGIT = 10.0
MPMATH_BITS = 120
QUANTITY_NAMES = {"loss": "loss", "dloss": "d loss / d logit"}


def logit_grid(dtype: str) -> np.ndarray:
    """-200..200 in steps of 0.05, and steps of 0.002 where forms break: |z| < 20 (the sigmoid rounds to 1 near
    16.6 in float32, 36.7 in float64) and 80 < |z| < 110 (exp overflows, results go subnormal, the clamp at
    -100); the edges of float64 added. Distinct values of ``dtype``, sorted."""
    parts = [np.arange(-200, 200.0001, 0.05), np.arange(-20, 20, 0.002), np.arange(-110, -80, 0.002),
             np.arange(80, 110, 0.002), np.arange(30, 45, 0.002), np.arange(-45, -30, 0.002)]
    return np.unique(np.concatenate(parts).astype(numpy_dtype(dtype)))


def true_values(z: np.ndarray, y: float) -> tuple[np.ndarray, np.ndarray]:
    """BCE = log(1 + e^-z) for y = 1, log(1 + e^z) for y = 0; its derivative sigma(z) - y; by mpmath."""
    import mpmath

    loss, grad = [], []
    with mpmath.workprec(MPMATH_BITS):
        for value in z.astype(np.float64).tolist():
            m = mpmath.mpf(value)
            signed = -m if y == 1 else m
            loss.append(float(mpmath.log1p(mpmath.exp(signed))))
            grad.append(float(1 / (1 + mpmath.exp(-m)) - y))
    return np.array(loss), np.array(grad)


def relative_error(got: np.ndarray, true: np.ndarray, dtype: str) -> np.ndarray:
    """|got - true| / |true|; NaN where the true value is below the dtype's normal range (no form can do better
    than round it to a subnormal or 0 there)."""
    tiny = float(np.finfo(numpy_dtype(dtype)).tiny)
    got64 = got.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.abs(true) >= tiny, np.abs(got64 - true) / np.abs(true), np.nan)


def _nearest_to_zero(z: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """The largest z < 0 and the smallest z >= 0 where ``mask`` holds (NaN where none does)."""
    below, above = mask & (z < 0), mask & (z >= 0)
    return (float(z[below].max()) if below.any() else math.nan, float(z[above].min()) if above.any() else math.nan)


def summarise(z: np.ndarray, got: np.ndarray, true: np.ndarray, dtype: str, quantity: str) -> dict[str, Any]:
    """Where a form departs from the truth, returns 0 wrongly, and (loss) equals the clamp value exactly."""
    z64 = z.astype(np.float64)
    rel = relative_error(got, true, dtype)
    known = ~np.isnan(rel)
    departs_below, departs_above = _nearest_to_zero(z64, known & (rel > DEPARTS_REL_ERR))
    zero_below, zero_above = _nearest_to_zero(z64, known & (got == 0))
    typical = known & (np.abs(z64) <= TYPICAL_LOGIT)
    row = {"max_rel_err_typical": float(rel[typical].max()) if typical.any() else math.nan,
           "max_rel_err": float(rel[known].max()) if known.any() else math.nan,
           "departs_below": departs_below, "departs_above": departs_above,
           "zero_below": zero_below, "zero_above": zero_above, "clamp_from": math.nan, "clamp_to": math.nan}
    if quantity == "loss":
        clamped = (got.astype(np.float64) == -BCE_LOG_CLAMP) & (np.abs(true + BCE_LOG_CLAMP) > 1e-6 * np.abs(true))
        if clamped.any():
            row["clamp_from"], row["clamp_to"] = float(z64[clamped].min()), float(z64[clamped].max())
    return row


COLUMNS: tuple[str, ...] = ("quantity", "target", "backend", "form", "dtype", "max_rel_err_typical", "max_rel_err",
                            "departs_below", "departs_above", "zero_below", "zero_above", "clamp_from", "clamp_to")


def run(backend_names: list[str], forms: list[str], dtypes: list[str], exhaustive: bool, directory: Any,
        ) -> list[dict[str, Any]]:
    """Every backend's BCE forms, targets 0 and 1; writes accuracy.csv, accuracy.md, accuracy-loss.png and
    accuracy-dloss.png."""
    from sigbench.core import registry
    from sigbench.core.errors import UsageError
    from sigbench.core.interface import SigmoidGradients
    from sigbench.results.files import atomic_write_text

    dtypes = dtypes or ["float32"]
    for dtype in dtypes:
        if dtype not in LOSS_DTYPES:
            raise UsageError(f"--quantity loss takes --dtype {' or '.join(LOSS_DTYPES)}, not {dtype!r}")
    if exhaustive:
        raise UsageError("--exhaustive applies to --quantity value and grad; the loss runs on a fixed logit grid")
    backends = {name: b for name, b in registry.load_all(backend_names).items() if isinstance(b, SigmoidGradients)}
    offered = {f for b in backends.values() for f in b.bce_forms()}
    for form in forms:
        if form not in offered:
            raise UsageError(f"unknown loss form {form!r}; the chosen backends offer: {', '.join(sorted(offered))}")
    rows: list[dict[str, Any]] = []
    curves: dict[tuple[str, float], list[tuple[str, np.ndarray, np.ndarray]]] = {}
    for dtype in dtypes:
        z = logit_grid(dtype)
        for y in (0.0, 1.0):
            truth = dict(zip(("loss", "dloss"), true_values(z, y)))
            for name, backend in backends.items():
                for form, reason in backend.bce_forms().items():
                    if forms and form not in forms:
                        continue
                    if reason is not None:
                        rows.append({"backend": name, "form": form, "dtype": dtype, "target": int(y),
                                     "quantity": "skipped: " + reason})
                        continue
                    got = dict(zip(("loss", "dloss"), backend.bce(form, dtype)(z, y)))
                    for quantity in ("loss", "dloss"):
                        rows.append({"quantity": quantity, "target": int(y), "backend": name, "form": form,
                                     "dtype": dtype, **summarise(z, got[quantity], truth[quantity], dtype, quantity)})
                        if dtype == dtypes[0]:
                            curves.setdefault((quantity, y), []).append(
                                (f"{name}: {form}", z.astype(np.float64),
                                 relative_error(got[quantity], truth[quantity], dtype)))
    import pandas as pd

    table = pd.DataFrame([{c: r.get(c) for c in COLUMNS} for r in rows], columns=list(COLUMNS))
    atomic_write_text(directory / "accuracy.csv", table.to_csv(index=False))
    plots = [plot(directory / f"accuracy-{quantity}.png", curves, quantity, dtypes[0]) for quantity in QUANTITY_NAMES
             if any(key[0] == quantity for key in curves)]
    atomic_write_text(directory / "accuracy.md", markdown(table, plots))
    from sigbench.report import html

    atomic_write_text(directory / "accuracy.html", html.loss_page(table, curves, QUANTITY_NAMES, dtypes[0]))
    return rows


def markdown(table: Any, plots: list[Any]) -> str:
    from sigbench.report.tables import md_table

    lines = ["# sigbench accuracy: the binary cross-entropy", "",
             "Per-element BCE and its gradient with respect to the logit z, as each form computes them, against "
             "mpmath (loss: log(1 + e^-z) for target 1, log(1 + e^z) for target 0; gradient: sigma(z) - y), over "
             "logits -200..200 (dense near the breaking points). "
             f"`max_rel_err_typical`: over |z| <= {TYPICAL_LOGIT:g}. "
             f"`departs_below` / `_above`: the logit nearest 0 on each side where the relative error exceeds "
             f"{DEPARTS_REL_ERR:g}. `zero_below` / `_above`: where the form returns exactly 0 while the true value "
             "is a normal number. `clamp_from`..`clamp_to`: the logits where the loss is exactly the clamp value "
             f"{-BCE_LOG_CLAMP:g}, though the true loss is not (BCELoss clamps each log at {BCE_LOG_CLAMP:g}). "
             "Where the true value is below the dtype's normal range, no relative error is counted. "
             "-: nowhere in the grid.", ""]
    shown = table.copy()
    for column in COLUMNS[5:]:
        shown[column] = shown[column].map(lambda v: "-" if v is None or v != v else f"{v:.4g}")
    for quantity, group in shown.groupby("quantity", sort=False):
        title = QUANTITY_NAMES.get(str(quantity), str(quantity))
        lines += [f"## {title}", "", md_table(group.drop(columns=["quantity"]).fillna("-")), ""]
    lines += [f"![{p.stem}]({p.name})" for p in plots]
    return "\n".join(lines) + "\n"


def plot(path: Any, curves: dict[tuple[str, float], list[tuple[str, np.ndarray, np.ndarray]]], quantity: str,
         dtype: str) -> Any:
    """Relative error against the logit, one line per form, one panel per target."""
    from sigbench.report.plots import pyplot

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.6), sharey=True)
    floor = 1e-9
    for ax, y in zip(axes, (0.0, 1.0)):
        for label, z, rel in curves.get((quantity, y), []):
            ax.plot(z, np.clip(np.nan_to_num(rel, nan=floor), floor, None), label=label, linewidth=1.1)
        ax.axhline(DEPARTS_REL_ERR, color="black", linestyle=":", linewidth=0.8)
        ax.set(yscale="log", xlabel="logit z", xlim=(-200, 200),
               title=f"{QUANTITY_NAMES[quantity]}, target {int(y)}, {dtype}")
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel(f"relative error (floor {floor:g})")
    axes[1].legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    from sigbench.results.files import save_figure

    save_figure(fig, path, dpi=100)
    plt.close(fig)
    return path
