"""``sigbench accuracy --quantity loss``: binary cross-entropy per element, and its gradient with respect to the
logit, as each framework's form computes it, against mpmath, over logits from -200 to 200.

The forms are the backends' ``bce_forms`` (``sigbench.core.interface.SigmoidGradients``): the tutorial's Sigmoid
then BCELoss, BCEWithLogitsLoss, optax, and sigbench's own NumPy and JAX steps.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class LossSweep:
    """What the loss sweep found: a row per quantity x target x backend x form x dtype (``columns`` of
    accuracy.csv), and the relative-error curves of the first dtype, for plots. Also the thresholds its rows
    were computed with, which the report explains. ``sigbench.report.accuracyreport`` writes and renders it."""

    rows: list[dict[str, Any]]
    curves: dict[tuple[str, float], list[tuple[str, np.ndarray, np.ndarray]]]
    dtype: str
    quantity: str = "loss"
    columns: tuple[str, ...] = COLUMNS
    quantity_names: dict[str, str] = field(default_factory=lambda: dict(QUANTITY_NAMES))
    departs_rel_err: float = DEPARTS_REL_ERR
    typical_logit: float = TYPICAL_LOGIT
    log_clamp: float = BCE_LOG_CLAMP


def check_request(dtypes: list[str], exhaustive: bool) -> None:
    """UsageError unless ``dtypes`` are the loss's, without ``exhaustive``."""
    from sigbench.core.errors import UsageError

    for dtype in dtypes:
        if dtype not in LOSS_DTYPES:
            raise UsageError(f"--quantity loss takes --dtype {' or '.join(LOSS_DTYPES)}, not {dtype!r}")
    if exhaustive:
        raise UsageError("--exhaustive applies to --quantity value and grad; the loss runs on a fixed logit grid")


def run(backend_names: list[str], forms: list[str], dtypes: list[str]) -> LossSweep:
    """Every backend's BCE forms, targets 0 and 1 (float32 unless ``dtypes`` say otherwise)."""
    from sigbench.core import registry
    from sigbench.core.errors import UsageError
    from sigbench.core.interface import SigmoidGradients

    dtypes = dtypes or ["float32"]
    check_request(dtypes, False)
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
    return LossSweep(rows, curves, dtypes[0])
