"""The machine's limits, measured once per run: copy bandwidth (for the sigmoid) and GEMM rate (for training),
and for each training shape the copy bandwidth at the bytes its step moves (its roofline floor).

Each backend offers a copy (``copy_fn``) and a large matmul (``matmul_fn``); each backend's worker times
its own (``rate``), and the best rate any of them reaches on the run's device is the limit rows are compared
with (``bandwidth_fraction``, ``floor_fraction``). The copy is measured twice over: once out of cache
(``COPY_BYTES``: ``out_of_cache_fraction``) and once at each array size of the run's sigmoid cases, where
an array that fits in a cache is copied in that cache (``by_size``: ``bandwidth_fraction``). A row divided
by the out-of-cache figure alone reached 1.5-1.6 at sizes that fit in L3: a limit that a case beats is not
the limit. No framework is imported here: the backends do the work.
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


def rate(backend: Any, kind: str, device: str, dtype: str = "float32", nbytes: int | None = None) -> float:
    """The backend's rate on ``device``: GB/s copied (bytes read plus written) for ``copy``, GFLOP/s for ``gemm``.

    ``nbytes``: the bytes the copy copies (default ``COPY_BYTES``, out of cache). The GEMM rate is measured
    in the training rows' dtype: float64 GEMMs run at about half the float32 rate on CPUs, and far below it
    on most GPUs, so one float32 rate would misplace every float64 floor.
    """
    return rates(backend, kind, device, dtype, nbytes)[0]


def rates(backend: Any, kind: str, device: str, dtype: str = "float32",
          nbytes: int | None = None) -> tuple[float, float]:
    """``rate`` at the median time, and at the fastest sample (a block of calls): the best the backend reached.

    A busy machine only ever slows a copy down, so the fastest block is the nearest to what the machine can
    do: the per-size limits take it, and stay put when a neighbour takes the CPU for part of the measurement
    (beside a two-thread matmul, the median of a 16 KiB copy once fell to 0.7 GB/s from about 47)."""
    where = "cpu" if device == "cpu" else "gpu"
    if kind == "copy":
        nbytes = copy_bytes(nbytes if nbytes is not None else COPY_BYTES[where])
        call, work = backend.copy_fn(device, nbytes), 2.0 * nbytes
    elif kind == "gemm":
        n = GEMM_N[where]
        call, work = backend.matmul_fn(device, n, dtype), 2.0 * n**3
    else:
        raise ValueError(f"unknown limit {kind!r}")
    stats = measure(call, lambda: backend.synchronize(device), PRESETS["quick"]).stats
    return work / stats.median_s / 1e9, work / (stats.min_s or stats.median_s) / 1e9


def copy_bytes(nbytes: int) -> int:
    """The bytes a copy of ``nbytes`` really copies: the backends copy float32 words, so whole words, one at least."""
    return max(4, -(-nbytes // 4) * 4)


def array_bytes(size: int, dtype: str) -> int:
    """The bytes of a sigmoid case's input (and of its output): the copy its row is divided by copies as many."""
    from sigbench.core.workloads import numpy_dtype

    return size * numpy_dtype(dtype).itemsize


def best(found: dict[str, float], kind: str) -> dict[str, float]:
    """Each backend's rate under ``<key>_<backend>``, and the best of them, the limit, under ``<key>``."""
    key = LIMITS[kind][0]
    out = {f"{key}_{name}": value for name, value in found.items()}
    if found:
        out[key] = max(found.values())
    return out


def best_by_size(found: dict[int, dict[str, tuple[float, float]]]) -> dict[str, dict[str, Any]]:
    """The per-size limits from each backend's ``(rate at the median, rate at the fastest block)`` for each byte
    count (``rates``).

    Keyed by the byte count as text (JSON keys are text): each backend's best rate under ``copy_gbps_<backend>``,
    the best of them, the limit, under ``copy_gbps``, the backend that reached it under ``backend``, and that
    backend's rate at its median time under ``median_gbps`` (how far below its best a typical copy ran: the
    noise the limit is spared).
    """
    out: dict[str, dict[str, Any]] = {}
    for nbytes, found_rates in sorted(found.items()):
        if not found_rates:
            continue
        name, (median_gbps, best_gbps) = max(found_rates.items(), key=lambda item: item[1][1])
        entry: dict[str, Any] = {f"copy_gbps_{backend}": best for backend, (_, best) in found_rates.items()}
        entry.update(copy_gbps=best_gbps, median_gbps=median_gbps, backend=name)
        out[str(nbytes)] = entry
    return out


def copy_limit_at(bandwidth: dict[str, Any], nbytes: int) -> float | None:
    """The copy bandwidth measured at an array of ``nbytes`` (the run's ``bandwidth["by_size"]``), or None."""
    return (bandwidth.get("by_size") or {}).get(str(copy_bytes(nbytes)), {}).get("copy_gbps")


def bandwidth_columns(gbps: float, nbytes: int, bandwidth: dict[str, Any] | None) -> dict[str, float | None]:
    """A sigmoid row's ``bandwidth_fraction`` (``gbps`` over the copy bandwidth at its own array size: in cache
    where the array fits), that limit (``copy_gbps_at_size``), and ``out_of_cache_fraction`` (``gbps`` over
    the copy bandwidth out of cache). None where that limit was not measured."""
    bandwidth = bandwidth or {}
    out_of_cache = bandwidth.get("copy_gbps")
    at_size = copy_limit_at(bandwidth, nbytes)
    return {"bandwidth_fraction": gbps / at_size if at_size else None, "copy_gbps_at_size": at_size or None,
            "out_of_cache_fraction": gbps / out_of_cache if out_of_cache else None}


#: The run's metadata section holding, per training shape's byte count, the copy bandwidth at that size.
TRAIN_BANDWIDTH = "train_bandwidth"


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
