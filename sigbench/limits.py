"""The machine's limits measured once per run: copy bandwidth (for the sigmoid) and GEMM rate (for training).

Each backend offers a large copy (``copy_fn``) and a large matmul (``matmul_fn``); the best rate any of
them reaches on the run's device is the limit rows are compared with (``bandwidth_fraction``,
``floor_fraction``). No framework is imported here: the backends do the work.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from sigbench.interface import Backend
from sigbench.timing import PRESETS, measure

#: Bytes each bandwidth measurement copies: well past the caches.
COPY_BYTES = {"cpu": 1 << 27, "gpu": 1 << 30}
#: Side of the square matmul timed for the GEMM rate: large enough for BLAS's peak, small enough
#: to take milliseconds on a laptop core.
GEMM_N = {"cpu": 1024, "gpu": 8192}


def _best_rate(backends: dict[str, Backend], devices: dict[str, str], prefix: str,
               make: Callable[[Backend, str], tuple[Callable[[], Any], float]]) -> dict[str, float]:
    """Time each backend's call once (quick preset); ``make`` gives the call and the work it does."""
    timer = PRESETS["quick"]
    found: dict[str, float] = {}
    for name, backend in backends.items():
        device = devices.get(name)
        if device is None:
            continue
        try:
            call, work = make(backend, device)
            median_s = measure(call, lambda: backend.synchronize(device), timer).stats.median_s
        except Exception as error:  # a backend that cannot do it does not stop the run
            warnings.warn(f"sigbench: {name} {prefix} not measured: {error}", stacklevel=3)
            continue
        found[f"{prefix}_{name}"] = work / median_s / 1e9
    if found:
        found[prefix] = max(found.values())
    return found


def copy_bandwidth(backends: dict[str, Backend], devices: dict[str, str]) -> dict[str, float]:
    """Each backend's copy bandwidth in GB/s (bytes read plus written); ``copy_gbps`` is the best, the limit.

    ``devices`` maps each backend to its name for the run's device (backends without one are left out).
    """
    def make(backend: Backend, device: str) -> tuple[Callable[[], Any], float]:
        nbytes = COPY_BYTES["cpu" if device == "cpu" else "gpu"]
        return backend.copy_fn(device, nbytes), 2.0 * nbytes

    return _best_rate(backends, devices, "copy_gbps", make)


def gemm_rate(backends: dict[str, Backend], devices: dict[str, str], dtype: str = "float32") -> dict[str, float]:
    """Each backend's GEMM rate in ``dtype``, in GFLOP/s; ``gemm_gflops`` is the best, the arithmetic limit.

    Measured in the training rows' dtype: float64 GEMMs run at about half the float32 rate on CPUs, and far
    below it on most GPUs, so one float32 rate would misplace every float64 floor.
    """
    def make(backend: Backend, device: str) -> tuple[Callable[[], Any], float]:
        n = GEMM_N["cpu" if device == "cpu" else "gpu"]
        return backend.matmul_fn(device, n, dtype), 2.0 * n**3

    return _best_rate(backends, devices, "gemm_gflops", make)


def floor_columns(flops: float, median_s: float, gemm: dict[str, float] | None) -> dict[str, float | None]:
    """``floor_s``: the step's FLOPs at the best GEMM rate; ``floor_fraction``: that over the step's time
    (1.0 would be a step running entirely at GEMM speed). None for both when no rate was measured."""
    rate = (gemm or {}).get("gemm_gflops")
    if not rate:
        return {"floor_s": None, "floor_fraction": None}
    floor_s = flops / (rate * 1e9)
    return {"floor_s": floor_s, "floor_fraction": floor_s / median_s if median_s > 0 else None}
