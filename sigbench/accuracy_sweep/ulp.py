"""``sigbench accuracy``: every sigmoid's (``--quantity value``) or its derivative's (``grad``) error in ULPs
against a correctly rounded reference; ``--quantity loss`` is in ``sigbench.accuracy_sweep.loss``.
The sweep computes rows only; ``sigbench.report.accuracyreport`` writes accuracy.csv, .md, .html and plots.

float16 and bfloat16 are always checked over all 65,536 inputs; float32 over a stratified sample, or all
2^32 inputs with ``--exhaustive`` (streamed in chunks); float64 over a sample against mpmath.
"""
from __future__ import annotations

import math
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from sigbench.core import reference
from sigbench.core.workloads import numpy_dtype
from sigbench.measure.checks import call_counting_warnings, ulp_distance

ACCURACY_DTYPES: tuple[str, ...] = ("float16", "bfloat16", "float32", "float64")
QUANTITIES: tuple[str, ...] = ("value", "grad", "loss")
#: Inputs of float32's default (sampled) run; float64 uses fewer, as each is checked with mpmath.
SAMPLE_SIZE = {"float32": 1 << 21, "float64": 1 << 14}
#: Small enough that its buffers come from the allocator's pool, not fresh pages: fresh large arrays are
#: slow and noisy on VMs.
EXHAUSTIVE_CHUNK = 1 << 20
#: Where the float64 sigmoid lies this close (in float64 ULPs) to a rounding midpoint of the target type,
#: its rounding is decided by mpmath: the float64 value itself may be a few ULPs off.
HARD_CASE_ULPS = 16
MPMATH_BITS = 160

_UINT: dict[int, type[np.unsignedinteger[Any]]] = {2: np.uint16, 4: np.uint32, 8: np.uint64}


def special_inputs(dtype: str) -> np.ndarray:
    """±0, ±inf, NaN, the largest finite values, inputs whose true sigmoid is subnormal, and the region
    where exp(-x) overflows (x below about -88.7 in float32, -11.1 in float16)."""
    np_dtype = numpy_dtype(dtype)
    info = np.finfo(np.float32 if dtype == "bfloat16" else np_dtype)
    tiny = float(info.tiny)
    overflow = math.log(float(info.max))  # exp(-x) overflows for x < -overflow
    subnormal_result = math.log(tiny)  # sigmoid(x) ~ exp(x) is subnormal below this
    values = [0.0, -0.0, math.inf, -math.inf, math.nan, float(info.max), -float(info.max), tiny, -tiny,
              -overflow + 0.01, -overflow - 0.01, -overflow - 1, subnormal_result + 0.5, subnormal_result - 0.5,
              subnormal_result - 5, -1000.0, 1000.0, 20.0, -20.0, 1.0, -1.0]
    with np.errstate(over="ignore"):
        return np.asarray(values, dtype=np.float64).astype(np_dtype)


def all_inputs(dtype: str) -> np.ndarray:
    """Every value of a 16-bit type, NaNs included."""
    return np.arange(1 << 16, dtype=np.uint16).view(numpy_dtype(dtype))


def sample_inputs(dtype: str, size: int, seed: int) -> np.ndarray:
    """Half random bit patterns, half log-uniform magnitudes in [1e-30, 1e3] of both signs, then the specials."""
    np_dtype = numpy_dtype(dtype)
    rng = np.random.default_rng([seed, size, np_dtype.itemsize])
    bits = rng.integers(0, np.iinfo(_UINT[np_dtype.itemsize]).max, size=size // 2, dtype=_UINT[np_dtype.itemsize],
                        endpoint=True).view(np_dtype)
    magnitudes = np.exp(rng.uniform(math.log(1e-30), math.log(1e3), size=size - size // 2))
    signed = magnitudes * rng.choice([-1.0, 1.0], size=magnitudes.size)
    return np.concatenate([special_inputs(dtype), bits, signed.astype(np_dtype)])


def _mp_sigmoid(x: float) -> Any:
    import mpmath

    with mpmath.workprec(MPMATH_BITS):
        return 1 / (1 + mpmath.exp(-mpmath.mpf(x)))


def _mp_sigmoid_grad(x: float) -> Any:
    """sigma'(x) = e^-|x| / (1 + e^-|x|)^2 (even in x)."""
    import mpmath

    with mpmath.workprec(MPMATH_BITS):
        z = mpmath.exp(-abs(mpmath.mpf(x)))
        return z / (1 + z) ** 2


#: quantity -> (float64 evaluation a few float64 ULPs from the truth, mpmath evaluation)
_EXACT: dict[str, tuple[Callable[[np.ndarray], np.ndarray], Callable[[float], Any]]] = {
    "value": (reference.sigmoid, _mp_sigmoid),
    "grad": (reference.sigmoid_grad, _mp_sigmoid_grad),
}


def _decide_with_mpmath(x: float, a_bits: int, b_bits: int, dtype: np.dtype, quantity: str = "value") -> int:
    """Of two neighbouring candidates (as bit patterns), the one the true sigmoid rounds to (ties to even)."""
    import mpmath

    a_bits, b_bits = sorted((a_bits, b_bits))
    va, vb = (float(np.array(v, dtype=_UINT[dtype.itemsize]).view(dtype)) for v in (a_bits, b_bits))
    true = _EXACT[quantity][1](x)
    with mpmath.workprec(MPMATH_BITS):
        midpoint = (mpmath.mpf(va) + mpmath.mpf(vb)) / 2
    if true != midpoint:
        return a_bits if true < midpoint else b_bits
    return a_bits if a_bits % 2 == 0 else b_bits


def correctly_rounded(x: np.ndarray, quantity: str = "value") -> tuple[np.ndarray, int]:
    """The sigmoid (or its derivative, ``quantity="grad"``) of each x rounded once to x's dtype, and how many
    inputs needed mpmath to decide.

    float16/float32: the float64 sigmoid (within a few float64 ULPs of the truth) cast once, which NumPy
    rounds correctly; where it lies within ``HARD_CASE_ULPS`` of a rounding midpoint, mpmath decides.
    bfloat16: the same from the nearest of three candidates (ml_dtypes may round through float32 first).
    float64: mpmath for every finite input.
    """
    dtype = x.dtype
    in_float64, in_mpmath = _EXACT[quantity]
    if dtype == np.float64:
        out = np.array([float(in_mpmath(v)) if np.isfinite(v) else float(in_float64(np.array([v]))[0])
                        for v in x.tolist()])
        return out, int(np.isfinite(x).sum())
    uint = _UINT[dtype.itemsize]
    with np.errstate(all="ignore"):
        exact = in_float64(x.astype(np.float64))
        guess = exact.astype(dtype)
    if dtype.name == "bfloat16":  # pick the nearest of three candidates ourselves
        bits = guess.view(uint).astype(np.int64)
        top = int(np.asarray(1.0, dtype=dtype).view(uint))
        candidates = np.stack([np.clip(bits + k, 0, top) for k in (-1, 0, 1)])
        values = candidates.astype(uint).view(dtype).astype(np.float64)
        bits = np.take_along_axis(candidates, np.argmin(np.abs(values - exact), axis=0)[None], axis=0)[0]
        guess = bits.astype(uint).view(dtype)
    # the midpoints to the neighbours above and below (sigmoid is never negative); near one of them, the
    # float64 value's own error could have tipped the rounding
    bits = guess.view(uint).astype(np.int64)
    guess64 = guess.astype(np.float64)
    with np.errstate(invalid="ignore"):
        up_half = ((bits + 1).astype(uint).view(dtype).astype(np.float64) - guess64) / 2
        down_half = (guess64 - np.maximum(bits - 1, 0).astype(uint).view(dtype).astype(np.float64)) / 2
        band = HARD_CASE_ULPS * 2.0**-52 * exact
        residual = exact - guess64
        near_up = np.abs(residual - up_half) <= band
        near_down = (np.abs(residual + down_half) <= band) & (down_half > 0)
    hard = np.flatnonzero((near_up | near_down) & np.isfinite(exact))
    toward = np.where(near_up, bits + 1, bits - 1)
    for i in hard.tolist():
        bits[i] = _decide_with_mpmath(float(x[i]), int(bits[i]), int(toward[i]), dtype, quantity)
    out = bits.astype(uint).view(dtype).copy()
    out[np.isnan(exact)] = np.nan
    return out, int(hard.size)


@dataclass(frozen=True)
class Totals:
    """Error counts over a set of inputs; two sets' totals add up (for streaming 2^32 inputs).

    The sum is exact and order-free, so chunks merged in any order (on a cluster, as they finish) give the
    same totals bit for bit: counts and the ULP sum are integers, maxima and minima are exact, and of
    equally bad inputs the worst is the one first in the sweep (``worst_position``).
    """

    inputs: int = 0
    ulp_sum: int = 0
    max_ulp: float = 0.0
    worst_input: float = math.nan
    #: The worst input's index in the sweep (chunk start + index in the chunk): ties go to the first.
    worst_position: int = -1
    correctly_rounded: int = 0
    over_1ulp: int = 0
    flushed_subnormals: int = 0
    nan_where_number: int = 0
    wrong_saturation: int = 0
    warnings: int = 0
    #: Where the result breaks, nearest to 0 on each side: relative error above 1, or exactly 0 where the
    #: correctly rounded value is not (a vanishing gradient made by rounding). inf: nowhere among the inputs.
    rel_err_over_1_above: float = math.inf
    zero_above: float = math.inf
    rel_err_over_1_below: float = -math.inf
    zero_below: float = -math.inf

    def __add__(self, other: Totals) -> Totals:
        worse = max(self, other, key=lambda t: (not math.isnan(t.worst_input), t.max_ulp, -t.worst_position))
        combined: dict[str, Any] = {name: pick(getattr(self, name), getattr(other, name))
                                    for name, pick in _NEAREST.items()}
        combined.update({f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)
                         if f.name not in (*_WORST, *_NEAREST)})
        combined.update({name: getattr(worse, name) for name in _WORST})
        return Totals(**combined)

    def row(self) -> dict[str, Any]:
        return {
            "inputs": self.inputs, "max_ulp": self.max_ulp,
            "mean_ulp": self.ulp_sum / self.inputs if self.inputs else math.nan,
            "correctly_rounded_fraction": self.correctly_rounded / self.inputs if self.inputs else math.nan,
            "over_1ulp": self.over_1ulp, "worst_input": self.worst_input,
            "flushed_subnormals": self.flushed_subnormals, "nan_where_number": self.nan_where_number,
            "wrong_saturation": self.wrong_saturation, "warnings": self.warnings,
            **{name: getattr(self, name) for name in _NEAREST},
        }


_WORST = ("max_ulp", "worst_input", "worst_position")
_NEAREST: dict[str, Callable[[float, float], float]] = {
    "rel_err_over_1_above": min, "zero_above": min, "rel_err_over_1_below": max, "zero_below": max}


def _nearest_to_zero(x: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """The smallest x > 0 and the largest x < 0 (as float64) where ``mask`` holds; +-inf where none does."""
    above, below = mask & (x > 0), mask & (x < 0)
    return (float(x[above].min()) if above.any() else math.inf, float(x[below].max()) if below.any() else -math.inf)


def measure_errors(got: np.ndarray, want: np.ndarray, x: np.ndarray, warning_count: int = 0,
                   offset: int = 0) -> Totals:
    """Compare results with the correctly rounded reference; ``offset``: x's first index in the sweep.

    Results that should be subnormal but are 0 (flushed) and NaNs where a number is due are counted apart
    and kept out of the ULP statistics, which would otherwise be millions of ULPs for one flushed value.
    Only the inputs whose bits differ are examined further: usually a few percent.
    """
    uint = _UINT[got.dtype.itemsize]
    got_flat, want_flat, x_flat = got.reshape(-1), want.reshape(-1), x.reshape(-1)
    differ = np.flatnonzero(got_flat.view(uint) != want_flat.view(uint))
    g, w = got_flat[differ], want_flat[differ]
    ulps = ulp_distance(g, w)
    tiny = np.asarray(np.finfo(np.float32 if x.dtype.name == "bfloat16" else x.dtype).tiny).astype(x.dtype)
    zero = np.zeros((), x.dtype)
    with np.errstate(invalid="ignore"):
        flushed = (g == zero) & (w != zero) & (np.abs(w) < tiny)
        nan_where_number = (g != g) & (w == w)
        saturated = ((g == zero) | (g == np.ones((), x.dtype))) & (np.abs(w) >= tiny)
    counted = np.isfinite(ulps) & ~flushed
    with np.errstate(invalid="ignore", over="ignore"):
        g64, w64, x64 = g.astype(np.float64), w.astype(np.float64), x_flat[differ].astype(np.float64)
        rel_over_1 = np.abs(g64 - w64) > np.abs(w64)
        zero_wrongly = (g64 == 0) & (w64 != 0)
    over_above, over_below = _nearest_to_zero(x64, rel_over_1)
    zero_above, zero_below = _nearest_to_zero(x64, zero_wrongly)
    worst = int(np.argmax(np.where(counted, ulps, -1.0))) if differ.size else -1
    found = worst >= 0 and bool(counted[worst])
    return Totals(
        inputs=int(x_flat.size),
        ulp_sum=exact_sum(ulps[counted]),
        max_ulp=float(ulps[worst]) if found else 0.0,
        worst_input=float(np.asarray(x_flat[differ[worst]], dtype=np.float64)) if found else math.nan,
        worst_position=offset + int(differ[worst]) if found else -1,
        correctly_rounded=int(x_flat.size - differ.size + np.count_nonzero(ulps == 0)),
        over_1ulp=int(np.count_nonzero(counted & (ulps > 1))),
        flushed_subnormals=int(np.count_nonzero(flushed)),
        nan_where_number=int(np.count_nonzero(nan_where_number)),
        wrong_saturation=int(np.count_nonzero(saturated)),
        warnings=warning_count,
        rel_err_over_1_above=over_above, zero_above=zero_above,
        rel_err_over_1_below=over_below, zero_below=zero_below,
    )


def exact_sum(ulps: np.ndarray) -> int:
    """The sum of whole ULP counts as an integer: a float sum would depend on the order chunks arrive in."""
    if ulps.size == 0:
        return 0
    if float(ulps.max()) * ulps.size < 2.0**62:
        return int(ulps.astype(np.int64).sum())
    return sum(int(v) for v in ulps.tolist())


@dataclass(frozen=True)
class AccuracyCase:
    backend: str
    variant: str
    dtype: str


#: Sampled points per case for the plot, spread over the chunks in proportion to their size (at least 64 each).
PLOT_POINTS = 4096


@dataclass(frozen=True)
class ChunkTask:
    """One task of a sweep: names and bounds only, never arrays, so shipping it to a worker costs ~1 kB.

    The worker remakes its inputs (bit patterns, or the seeded sample), the reference and its cases'
    results, and sends back partial totals and a few plot points.
    """

    cases: tuple[AccuracyCase, ...]
    dtype: str
    quantity: str
    mode: str  # "exhaustive" or "sample"
    start: int
    stop: int
    seed: int
    index: int
    plot_points: int


@dataclass(frozen=True)
class ChunkResult:
    """What a task sends back: per case its totals and sampled errors; the specials' behaviour from chunk 0."""

    cases: tuple[AccuracyCase, ...]
    index: int
    totals: tuple[Totals, ...]
    kept_x: np.ndarray
    kept_ulps: tuple[np.ndarray, ...]
    mpmath_decided: int
    special: tuple[str, ...] = ()


def sweep_tasks(cases: list[AccuracyCase], dtype: str, exhaustive: bool, seed: int, quantity: str,
                ) -> tuple[list[ChunkTask], str]:
    """The sweep of one dtype cut into tasks, and its mode.

    Exhaustive float32: one task per chunk of ``EXHAUSTIVE_CHUNK`` inputs with every case (the reference
    is computed once per chunk). The other sweeps are one batch, as a backend's results and warning count
    can depend on the length of the array it is given: one task per backend over the whole batch.
    """
    if dtype == "float32" and exhaustive:
        step = EXHAUSTIVE_CHUNK
        groups = [tuple(cases)]
        total, mode = 1 << 32, "exhaustive"
    else:
        total, mode = ((1 << 16, "exhaustive") if dtype in ("float16", "bfloat16")
                       else (SAMPLE_SIZE[dtype] + special_inputs(dtype).size, "sample"))
        step = total
        groups = [tuple(c for c in cases if c.backend == name) for name in dict.fromkeys(c.backend for c in cases)]
    tasks = []
    for index, start in enumerate(range(0, total, step)):
        stop = min(start + step, total)
        points = min(stop - start, max(64, PLOT_POINTS * step // total))
        tasks += [ChunkTask(group, dtype, quantity, mode, start, stop, seed, index, points) for group in groups]
    return tasks, mode


def chunk_inputs(task: ChunkTask) -> np.ndarray:
    """The inputs of one task, the same wherever it runs."""
    if task.mode == "sample":
        return sample_inputs(task.dtype, SAMPLE_SIZE[task.dtype], task.seed)[task.start:task.stop]
    if task.dtype == "float32":
        return np.arange(task.start, task.stop, dtype=np.uint64).astype(np.uint32).view(np.float32)
    return all_inputs(task.dtype)[task.start:task.stop]


_RUNNERS = threading.local()


def case_runner(case: AccuracyCase, quantity: str) -> Callable[[np.ndarray], tuple[np.ndarray, int]]:
    """The case's function on NumPy arrays, made once per thread: the ``fast`` and ``accurate`` variants write
    into an output buffer they keep, so two threads running chunks of one case must not share one."""
    from sigbench.core import registry

    made: dict[tuple[AccuracyCase, str], Callable[[np.ndarray], tuple[np.ndarray, int]]] = \
        _RUNNERS.__dict__.setdefault("made", {})
    if (case, quantity) not in made:
        backend: Any = registry.load(case.backend)
        fn = (backend.sigmoid(case.variant, case.dtype, "cpu") if quantity == "value"
              else backend.sigmoid_grad(case.variant, case.dtype))
        made[case, quantity] = _runner(backend, fn)
    return made[case, quantity]


def measure_chunk(task: ChunkTask) -> ChunkResult:
    """Run every case of the task on its inputs: the unit of work, locally or on a cluster worker."""
    x = chunk_inputs(task)
    want, hard = correctly_rounded(x, task.quantity)
    keep = np.sort(np.random.default_rng([task.seed, task.index]).choice(x.size, size=task.plot_points,
                                                                         replace=False))
    totals, kept = [], []
    for case in task.cases:
        got, warning_count = case_runner(case, task.quantity)(x)
        totals.append(measure_errors(got, want, x, warning_count, offset=task.start))
        kept.append(ulp_distance(got.reshape(-1)[keep], want.reshape(-1)[keep]))
    with np.errstate(invalid="ignore"):
        kept_x = x.reshape(-1)[keep].astype(np.float64)
    special = tuple(special_behaviour(case_runner(case, task.quantity), task.dtype, task.quantity)
                    for case in task.cases) if task.index == 0 else ()
    return ChunkResult(task.cases, task.index, tuple(totals), kept_x, tuple(kept), hard, special)


def run_cases(cases: list[AccuracyCase], dtype: str, exhaustive: bool, seed: int,
              progress: Callable[[int, int, str], None] | None = None, quantity: str = "value",
              cluster: Any = None,
              ) -> tuple[dict[AccuracyCase, Totals], dict[AccuracyCase, tuple[np.ndarray, np.ndarray]], dict[str, Any],
                         dict[AccuracyCase, str]]:
    """Totals per case, a sample of (x, ulp error) per case for plotting, facts about the reference, and
    each case's behaviour at the special inputs.

    The chunks run on ``sigbench.cluster``'s executor (local threads, or a Dask cluster's workers) and are
    merged as they finish; the merge is exact, so the result does not depend on where or in what order.
    """
    from sigbench.cluster import client as engines

    tasks, mode = sweep_tasks(cases, dtype, exhaustive, seed, quantity)
    totals = {case: Totals() for case in cases}
    scatter: dict[AccuracyCase, dict[int, tuple[np.ndarray, np.ndarray]]] = {case: {} for case in cases}
    special: dict[AccuracyCase, str] = {}
    hard_cases: dict[int, int] = {}  # per chunk: the reference is the same in every task of a chunk
    started = time.perf_counter()
    say = progress or (lambda done, total, what: None)
    say(0, len(tasks), f"{dtype}: {len(tasks)} tasks")
    # NumPy, PyTorch and JAX release the GIL in their kernels; Python warnings from the worker threads are
    # silenced here (NumPy's are counted per thread by call_counting_warnings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for done, result in enumerate(engines.map_unordered(cluster, measure_chunk, tasks), start=1):
            hard_cases[result.index] = result.mpmath_decided
            for k, case in enumerate(result.cases):
                totals[case] = totals[case] + result.totals[k]
                scatter[case][result.index] = (result.kept_x, result.kept_ulps[k])
            special.update(zip(result.cases, result.special))
            say(done, len(tasks), f"{dtype} chunk {result.index + 1}")
    samples = {case: (np.concatenate([parts[i][0] for i in sorted(parts)]),
                      np.concatenate([parts[i][1] for i in sorted(parts)])) for case, parts in scatter.items()}
    facts = {"dtype": dtype, "mode": mode, "mpmath_decided": sum(hard_cases.values()),
             "seconds": round(time.perf_counter() - started, 1)}
    return totals, samples, facts, special


def special_behaviour(run: Callable[[np.ndarray], tuple[np.ndarray, int]], dtype: str, quantity: str = "value",
                      ) -> str:
    """What goes wrong at the special inputs, or 'ok'."""
    x = special_inputs(dtype)
    got, _ = run(x)
    want, _ = correctly_rounded(x, quantity)
    problems = []
    name = "sigmoid" if quantity == "value" else "sigmoid'"
    for value, g, w in zip(x.astype(np.float64).tolist(), got.astype(np.float64).tolist(),
                           want.astype(np.float64).tolist()):
        if math.isnan(w) != math.isnan(g):
            problems.append(f"{name}({value:g}) = {g:g}")
        elif not math.isnan(w) and g != w and (g in (0.0, 1.0) or w in (0.0, 1.0)):
            problems.append(f"{name}({value:g}) = {g:g}, want {w:g}")
    return "ok" if not problems else "; ".join(problems[:4]) + ("; ..." if len(problems) > 4 else "")


COLUMNS: tuple[str, ...] = (
    "backend", "variant", "dtype", "mode", "inputs", "max_ulp", "mean_ulp", "correctly_rounded_fraction",
    "over_1ulp", "worst_input", "flushed_subnormals", "nan_where_number", "wrong_saturation", "warnings",
    "special_inputs", "seconds",
)
#: ``--quantity grad`` adds where each derivative breaks.
GRAD_COLUMNS: tuple[str, ...] = (*COLUMNS[:-2], *_NEAREST, *COLUMNS[-2:])


@dataclass(frozen=True)
class Sweep:
    """What a value or derivative sweep found: a row per backend x variant x dtype (``columns`` of
    accuracy.csv), a fact per dtype (mode, seconds, inputs decided by mpmath), and the kept points of each
    case's error per dtype, for plots. ``sigbench.report.accuracyreport`` writes and renders it."""

    quantity: str
    rows: list[dict[str, Any]]
    columns: tuple[str, ...]
    facts: list[dict[str, Any]]
    samples: dict[str, dict[AccuracyCase, tuple[np.ndarray, np.ndarray]]]


def check_request(quantity: str, dtypes: list[str], exhaustive: bool) -> None:
    """UsageError unless ``quantity`` and ``dtypes`` (and ``exhaustive``) make a sweep; before any folder is made."""
    from sigbench.core.errors import UsageError

    if quantity not in QUANTITIES:
        raise UsageError(f"unknown quantity {quantity!r}; choose from: {', '.join(QUANTITIES)}")
    if quantity == "loss":
        from sigbench.accuracy_sweep import loss

        loss.check_request(dtypes, exhaustive)
        return
    for dtype in dtypes:
        if dtype not in ACCURACY_DTYPES:
            raise UsageError(f"unknown dtype {dtype!r}; choose from: {', '.join(ACCURACY_DTYPES)}")
    if exhaustive and "float32" not in dtypes:
        raise UsageError("--exhaustive applies to float32 (float16 and bfloat16 are always exhaustive); "
                         "add --dtype float32")


def run(backend_names: list[str], variants: list[str], dtypes: list[str], exhaustive: bool, seed: int,
        progress: Callable[[int, int, str], None] | None = None, quantity: str = "value",
        cluster: Any = None) -> Any:
    """Measure every backend x variant x dtype: a ``Sweep`` (``loss.LossSweep`` for ``quantity="loss"``).

    ``quantity="grad"`` measures the backends' derivatives of the sigmoid instead (their ``sigmoid_grad``
    forms); ``"loss"`` hands over to ``sigbench.accuracy_sweep.loss`` (a small fixed grid, always local).
    ``cluster``: a ``sigbench.cluster.Cluster`` whose workers compute the chunks; None: this machine.
    """
    from sigbench.core import registry
    from sigbench.core.errors import UsageError
    from sigbench.core.interface import SigmoidGradients

    check_request(quantity, dtypes, exhaustive)
    if quantity == "loss":
        from sigbench.accuracy_sweep import loss

        return loss.run(backend_names, variants, dtypes)
    backends = registry.load_all(backend_names)

    def variants_of(backend: Any) -> dict[str, str | None]:
        if quantity == "value":
            return dict(backend.sigmoid_variants())
        if isinstance(backend, SigmoidGradients):
            return dict(backend.sigmoid_grad_variants())
        return {}

    offered = {v for b in backends.values() for v in variants_of(b)}
    for variant in variants:
        if variant not in offered:
            raise UsageError(f"unknown variant {variant!r}; the chosen backends offer: {', '.join(sorted(offered))}")
    if cluster is not None:
        cluster.require_same_versions(list(backends))
    rows: list[dict[str, Any]] = []
    facts = []
    samples_by_dtype = {}
    for dtype in dtypes:
        cases = []
        for name, backend in backends.items():
            for variant, reason in variants_of(backend).items():
                if variants and variant not in variants:
                    continue
                if reason is None and dtype not in backend.dtypes("cpu"):
                    reason = f"{name} does not compute in {dtype}"
                if reason is not None:
                    rows.append({"backend": name, "variant": variant, "dtype": dtype, "special_inputs": reason,
                                 "mode": "skipped"})
                    continue
                cases.append(AccuracyCase(name, variant, dtype))
        if not cases:
            continue
        totals, samples, fact, special = run_cases(cases, dtype, exhaustive, seed, progress, quantity, cluster)
        facts.append(fact)
        samples_by_dtype[dtype] = samples
        for case in cases:
            rows.append({"backend": case.backend, "variant": case.variant, "dtype": dtype, "mode": fact["mode"],
                         **totals[case].row(), "special_inputs": special[case], "seconds": fact["seconds"]})
    return Sweep(quantity, rows, COLUMNS if quantity == "value" else GRAD_COLUMNS, facts, samples_by_dtype)


def _runner(backend: Any, fn: Callable[[Any], Any]) -> Callable[[np.ndarray], tuple[np.ndarray, int]]:
    """A sigmoid on NumPy inputs and outputs, counting the warnings it raises (they never stop the run)."""
    return lambda x: call_counting_warnings(
        lambda: np.array(backend.to_numpy(fn(backend.from_numpy(x, "cpu"))), copy=True))
