"""Numerics checks: every backend's output against the float64 reference, in ULPs of the output dtype."""
from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from sigbench.core import reference
from sigbench.core.workloads import numpy_dtype

#: Largest ULP error a sigmoid may have and pass, per dtype. Measured worst cases on CPU: about
#: 3 ULP (float32, float64) for the naive and stable forms, whose exp and division each round once;
#: the half-precision types are computed through float32 and rounded once more.
SIGMOID_ULP_TOLERANCE: dict[str, float] = {"float16": 2, "bfloat16": 2, "float32": 8, "float64": 8}

_INT_FOR_SIZE: dict[int, type[np.signedinteger[Any]]] = {2: np.int16, 4: np.int32, 8: np.int64}


def _ordered(a: np.ndarray) -> np.ndarray:
    """Float bit patterns mapped to integers that increase with the value; -0 and +0 both map to 0."""
    itype = _INT_FOR_SIZE[a.dtype.itemsize]
    bits = np.ascontiguousarray(a).view(itype)
    return np.where(bits >= 0, bits, np.iinfo(itype).min - bits).astype(np.int64)


def ulp_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """How many representable values of their (shared) dtype lie between a and b, as float64.

    Equal NaNs are 0 apart; a NaN and a number are infinitely far apart.
    """
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != b.dtype:
        raise TypeError(f"ulp_distance needs one dtype, got {a.dtype} and {b.dtype}")
    oa, ob = _ordered(a).reshape(-1), _ordered(b).reshape(-1)
    if a.dtype.itemsize < 8:  # the ordered integers and their difference fit in int64: one cheap pass
        distance = np.abs(oa - ob).astype(np.float64)
    else:
        ua, ub = oa.view(np.uint64), ob.view(np.uint64)
        distance = np.where(oa >= ob, ua - ub, ub - ua).astype(np.float64)  # exact: wraps in uint64
    nan_a, nan_b = np.isnan(a).reshape(-1), np.isnan(b).reshape(-1)
    distance[nan_a | nan_b] = np.inf
    distance[nan_a & nan_b] = 0.0
    return distance.reshape(a.shape)


def call_counting_warnings(call: Callable[[], Any]) -> tuple[Any, int]:
    """Run ``call``, counting the warnings a user would see, without letting any stop or print.

    NumPy's floating-point errors (overflow, divide, invalid; underflow is silent by default, as here) are
    counted through ``np.errstate(call=...)``, which is per thread; other Python warnings are counted
    only on the main thread, since ``warnings.catch_warnings`` is process-wide.
    """
    count = [0]

    def on_error(kind: str, flag: int) -> None:
        count[0] += 1

    with np.errstate(over="call", divide="call", invalid="call", under="ignore", call=on_error):
        if threading.current_thread() is not threading.main_thread():
            return call(), count[0]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out = call()
    return out, count[0] + len(caught)


def rounded_reference(x: np.ndarray) -> np.ndarray:
    """The sigmoid of x computed in float64 and rounded once to x's dtype."""
    with np.errstate(under="ignore"):
        return reference.sigmoid(x.astype(np.float64)).astype(x.dtype)


@dataclass(frozen=True)
class SigmoidCheck:
    passed: bool
    max_ulp: float
    max_abs_error: float
    #: Results whose true value is a nonzero subnormal but came out as zero (allowed: XLA on CPU flushes).
    flushed_subnormals: int
    warnings: int
    message: str


def check_sigmoid(got: np.ndarray, x: np.ndarray, warning_count: int = 0, want: np.ndarray | None = None,
                  exact: np.ndarray | None = None) -> SigmoidCheck:
    """Compare a sigmoid output (NumPy) for input x with the rounded float64 reference.

    ``want`` (the reference rounded to x's dtype) and ``exact`` (in float64) may be given when the caller
    already has them: every variant of a size checks against the same ones.
    """
    dtype = x.dtype
    if got.shape != x.shape or got.dtype != dtype:
        return SigmoidCheck(False, np.inf, np.inf, 0, warning_count,
                            f"output {got.dtype}{list(got.shape)} for input {dtype}{list(x.shape)}")
    if want is None:
        want = rounded_reference(x)
    ulps = ulp_distance(got, want)
    tiny = np.finfo(numpy_dtype(dtype.name) if dtype.name != "bfloat16" else np.float32).tiny
    flushed = (got == 0) & (want != 0) & (np.abs(want.astype(np.float64)) < tiny)
    ulps = np.where(flushed, 0.0, ulps)
    if exact is None:
        exact = reference.sigmoid(x.astype(np.float64))
    got64 = got.astype(np.float64)
    abs_error = np.where(np.isnan(got64) & np.isnan(exact), 0.0, np.abs(got64 - exact))
    max_ulp = float(ulps.max()) if ulps.size else 0.0
    tolerance = SIGMOID_ULP_TOLERANCE.get(dtype.name, 8)
    passed = bool(max_ulp <= tolerance)
    message = "" if passed else (
        f"max error {max_ulp:g} ULP > {tolerance:g} at x={x.reshape(-1)[int(np.argmax(ulps))]!r}"
    )
    max_abs = float(abs_error.max()) if abs_error.size else 0.0
    return SigmoidCheck(passed, max_ulp, max_abs, int(flushed.sum()), warning_count, message)


# --- training step --------------------------------------------------------------------------

#: Largest difference a training step may show from a float64 step taken from the backend's own state
#: (parameters, Adam moments, step count), beyond the per-element allowance for gradient rounding that
#: Adam amplifies (``reference.step_from``). Measured here over 10 steps, batch 32 and 1024, hidden 128 and
#: 1024: float32 steps land within about 1.2e-7 of the float64 step (loss included) on every backend, and
#: float64 steps within about 2.3e-16. The tolerances leave a factor of ~20 (float32) and ~50 (float64)
#: for other seeds, shapes, BLAS libraries and GPUs.
TRAIN_TOLERANCE: dict[str, float] = {"float32": 2e-6, "float64": 1e-14}


@dataclass(frozen=True)
class TrainStepDiff:
    step: int
    loss: float
    loss_abs_diff: float
    param_abs_diff: float  # largest |parameter - float64 step|
    param_rel_diff: float  # the same, over the largest |parameter| of its tensor
    #: Largest difference beyond the element's rounding allowance: what the verdict judges.
    excess: float
    #: Elements whose allowance exceeds the tolerance: their gradient was at rounding-noise level.
    noise_level: int

    @property
    def worst(self) -> float:
        return max(self.loss_abs_diff, self.excess)


def train_step_diff(step: int, loss: float, params: Any, ref_loss: float, ref_params: Any, allowance: Any,
                    tolerance: float) -> TrainStepDiff:
    abs_diffs, rel_diffs, excesses = [], [], []
    noise_level = 0
    for got, want, allowed in zip(params, ref_params, allowance):
        diff = np.abs(np.asarray(got, dtype=np.float64) - want)
        diff = np.where(np.isfinite(diff), diff, np.inf)
        abs_diffs.append(float(diff.max()))
        rel_diffs.append(abs_diffs[-1] / max(float(np.max(np.abs(want))), np.finfo(np.float64).tiny))
        excesses.append(float(np.max(diff - allowed)))
        noise_level += int(np.count_nonzero(allowed > tolerance))
    loss_diff = abs(loss - ref_loss) if np.isfinite(loss) else np.inf
    return TrainStepDiff(step, loss, loss_diff, max(abs_diffs), max(rel_diffs), max(0.0, max(excesses)), noise_level)


@dataclass(frozen=True)
class TrainCheck:
    passed: bool
    max_error: float
    tolerance: float
    diffs: tuple[TrainStepDiff, ...]
    message: str


def train_verdict(diffs: list[TrainStepDiff], dtype: str) -> TrainCheck:
    tolerance = TRAIN_TOLERANCE[dtype]
    worst = max(diffs, key=lambda d: d.worst)
    passed = bool(worst.worst <= tolerance)
    message = "" if passed else (
        f"step {worst.step}: loss differs by {worst.loss_abs_diff:.3g}, parameters by "
        f"{worst.excess:.3g} beyond their rounding allowance (tolerance {tolerance:g})"
    )
    return TrainCheck(passed, worst.worst, tolerance, tuple(diffs), message)
