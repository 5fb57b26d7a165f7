"""The machine's limits, measured once per run: copy bandwidth (for the sigmoid) and GEMM rate (for training).

Each backend offers a large copy (``copy_fn``) and a large matmul (``matmul_fn``); each backend's worker
times its own (``rate``), and the best rate any of them reaches on the run's device is the limit rows are
compared with (``bandwidth_fraction``, ``floor_fraction``). No framework is imported here: the backends
do the work.
"""
from __future__ import annotations

from typing import Any

from sigbench.measure.timing import PRESETS, measure

#: What can be measured: the key of its rate in the run's metadata, and the metadata section.
LIMITS: dict[str, tuple[str, str]] = {"copy": ("copy_gbps", "bandwidth"), "gemm": ("gemm_gflops", "gemm")}
#: Bytes each bandwidth measurement copies: well past the caches.
COPY_BYTES = {"cpu": 1 << 27, "gpu": 1 << 30}
#: Side of the square matmul timed for the GEMM rate: large enough for BLAS's peak, small enough
#: to take milliseconds on a laptop core.
GEMM_N = {"cpu": 1024, "gpu": 8192}


def rate(backend: Any, kind: str, device: str, dtype: str = "float32") -> float:
    """The backend's rate on ``device``: GB/s copied (bytes read plus written) for ``copy``, GFLOP/s for ``gemm``.

    The GEMM rate is measured in the training rows' dtype: float64 GEMMs run at about half the float32
    rate on CPUs, and far below it on most GPUs, so one float32 rate would misplace every float64 floor.
    """
    where = "cpu" if device == "cpu" else "gpu"
    if kind == "copy":
        nbytes = COPY_BYTES[where]
        call, work = backend.copy_fn(device, nbytes), 2.0 * nbytes
    elif kind == "gemm":
        n = GEMM_N[where]
        call, work = backend.matmul_fn(device, n, dtype), 2.0 * n**3
    else:
        raise ValueError(f"unknown limit {kind!r}")
    median_s = measure(call, lambda: backend.synchronize(device), PRESETS["quick"]).stats.median_s
    return work / median_s / 1e9


def best(found: dict[str, float], kind: str) -> dict[str, float]:
    """Each backend's rate under ``<key>_<backend>``, and the best of them, the limit, under ``<key>``."""
    key = LIMITS[kind][0]
    out = {f"{key}_{name}": value for name, value in found.items()}
    if found:
        out[key] = max(found.values())
    return out


def floor_columns(flops: float, median_s: float, gemm: dict[str, float] | None) -> dict[str, float | None]:
    """``floor_s``: the step's FLOPs at the best GEMM rate; ``floor_fraction``: that over the step's time
    (1.0 would be a step running entirely at GEMM speed). None for both when no rate was measured."""
    gflops = (gemm or {}).get("gemm_gflops")
    if not gflops:
        return {"floor_s": None, "floor_fraction": None}
    floor_s = flops / (gflops * 1e9)
    return {"floor_s": floor_s, "floor_fraction": floor_s / median_s if median_s > 0 else None}
