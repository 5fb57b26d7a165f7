"""The machine's limits, measured once per run: copy bandwidth (for the sigmoid) and GEMM rate (for training),
and for each training shape the copy bandwidth at the bytes its step moves (its roofline floor).

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


#: The run's metadata section holding, per training shape's byte count, the copy bandwidth at that size.
TRAIN_BANDWIDTH = "train_bandwidth"


def copy_rate_at(backend: Any, device: str, nbytes: int) -> float:
    """GB/s (bytes read plus written) of a copy moving ``nbytes`` in all: half of them copied into the other half.

    The bandwidth a step moving that many bytes can hope for: from the caches where they fit, from memory
    where not. At a few hundred KiB the copy's own call costs show too, so this is the rate through the
    frameworks' copies, not the caches' peak.
    """
    half = max(4096, nbytes // 2 // 4096 * 4096)
    call = backend.copy_fn(device, half)
    median_s = measure(call, lambda: backend.synchronize(device), PRESETS["quick"]).stats.median_s
    return 2.0 * half / median_s / 1e9


def roofline_columns(flops: float, nbytes: float, median_s: float, gemm: dict[str, float] | None,
                     copy_gbps: float | None) -> dict[str, float | None]:
    """The roofline floor of a training row: ``floor_flops_s`` (the FLOPs at the best GEMM rate),
    ``floor_bytes_s`` (the bytes at the copy bandwidth for that many bytes), ``floor_s`` (the larger: the
    bound that applies) and ``floor_fraction`` (``floor_s`` over the step's time). A term not measured is
    None, and the floor is the other term alone."""
    gflops = (gemm or {}).get("gemm_gflops")
    flops_s = flops / (gflops * 1e9) if gflops else None
    bytes_s = nbytes / (copy_gbps * 1e9) if copy_gbps else None
    terms = [t for t in (flops_s, bytes_s) if t is not None]
    floor_s = max(terms) if terms else None
    fraction = floor_s / median_s if floor_s is not None and median_s > 0 else None
    return {"floor_s": floor_s, "floor_fraction": fraction, "floor_flops_s": flops_s, "floor_bytes_s": bytes_s}
