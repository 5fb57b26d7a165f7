"""The machine a run happens on: versions, CPU, threads, environment, memory available and used."""
from __future__ import annotations

import os
import platform
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from sigbench.core import version

#: Environment variables that change how the frameworks compute or thread.
RELEVANT_ENV = (
    "XLA_FLAGS", "JAX_PLATFORMS", "JAX_ENABLE_X64", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "CUDA_VISIBLE_DEVICES",
    "TORCH_ALLOW_TF32_CUBLAS_OVERRIDE", "NVIDIA_TF32_OVERRIDE",
)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


#: The CPU flags that decide which vector kernels run (reported with every figure).
VECTOR_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_bf16", "avx512_fp16",
                "amx_tile", "asimd", "sve")


def vector_extensions() -> list[str]:
    """The vector instruction sets this CPU has, among ``VECTOR_FLAGS`` (Linux; empty elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                present = set(line.split(":", 1)[1].split())
                return [flag for flag in VECTOR_FLAGS if flag in present]
    except OSError:
        pass
    return []


#: Where Linux describes the caches of the first CPU: one ``index*`` folder per cache.
SYSFS_CACHES = Path("/sys/devices/system/cpu/cpu0/cache")
#: The caches a roofline shows: the name, its level, and the types it may have.
CACHE_LEVELS: tuple[tuple[str, int, tuple[str, ...]], ...] = (
    ("L1d", 1, ("Data", "Unified")), ("L2", 2, ("Unified", "Data")), ("L3", 3, ("Unified", "Data")))


def size_bytes(text: str) -> int | None:
    """``32K``, ``1024K``, ``32 MiB``, ``33554432`` (sysfs, ``lscpu``) as bytes; None where it is no size."""
    text = text.strip().replace(" ", "").removesuffix("B").removesuffix("i")
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:].upper(), 1)
    number = text[:-1] if scale > 1 else text
    try:
        return int(float(number) * scale)
    except ValueError:
        return None


def cache_sizes(sysfs: Path = SYSFS_CACHES) -> dict[str, int | None]:
    """The bytes of the first CPU's L1 data, L2 and L3 caches (per core, as the first CPU sees them; an L3 is
    often shared). From sysfs, else ``lscpu -C``; None for a level neither names."""
    found: dict[str, int | None] = {name: None for name, _, _ in CACHE_LEVELS}
    for index in sorted(sysfs.glob("index*")):
        try:
            level = int((index / "level").read_text())
            kind = (index / "type").read_text().strip()
            size = size_bytes((index / "size").read_text())
        except (OSError, ValueError):
            continue
        for name, wanted, kinds in CACHE_LEVELS:
            if level == wanted and kind in kinds and found[name] is None:
                found[name] = size
    if any(value is None for value in found.values()):
        for name, size in lscpu_caches().items():
            if found.get(name) is None:
                found[name] = size
    return found


def lscpu_caches() -> dict[str, int | None]:
    """``lscpu -C``'s cache sizes (ONE-SIZE: one instance) by name; empty where lscpu is missing or fails."""
    try:
        done = subprocess.run(["lscpu", "-C=NAME,ONE-SIZE", "-B"], capture_output=True, text=True,
                              timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return {}
    return parse_lscpu_caches(done.stdout) if done.returncode == 0 else {}


def parse_lscpu_caches(text: str) -> dict[str, int | None]:
    """``NAME ONE-SIZE`` lines of ``lscpu -C`` (``L1d 32768``, or ``L1d 32K`` without ``-B``) as bytes by name."""
    out: dict[str, int | None] = {}
    names = {name for name, _, _ in CACHE_LEVELS}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in names:
            out[parts[0]] = size_bytes("".join(parts[1:]))
    return out


def available_memory_bytes() -> int | None:
    """MemAvailable from /proc/meminfo, or None where the system does not say."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None


def _status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _trim_heap() -> None:
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        pass


def reset_peak_rss() -> int | None:
    """Reset this process's resident-memory high-water mark (Linux); return the resident bytes now.

    Writing 5 to /proc/self/clear_refs sets VmHWM to the current VmRSS. Free heap memory is handed back
    first (glibc's malloc_trim), so memory released during the case cannot hide part of its peak. None
    where that is not possible, so a peak is left empty rather than wrong.
    """
    _trim_heap()
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        return None
    return _status_kib("VmRSS")


def peak_rss_bytes() -> int | None:
    """This process's resident-memory high-water mark (VmHWM) in bytes, or None where unknown."""
    return _status_kib("VmHWM")


def git_commit(path: Path) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None


def blas_info() -> list[dict[str, Any]]:
    from threadpoolctl import threadpool_info

    return [
        {k: info.get(k) for k in ("internal_api", "version", "num_threads", "architecture")}
        for info in threadpool_info()
    ]


def metadata(versions: dict[str, dict[str, str]], threads: dict[str, Any], gpus: list[str]) -> dict[str, Any]:
    return {
        "schema_version": version.SCHEMA_VERSION,
        "sigbench_version": version.__version__,
        "time_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "hostname": platform.node(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cache_bytes": cache_sizes(),
        "numpy": np.__version__,
        "backends": versions,
        "blas": blas_info(),
        "threads": threads,
        "gpus": gpus,
        "env": {k: os.environ[k] for k in RELEVANT_ENV if k in os.environ},
        "git_commit": git_commit(Path(__file__).resolve().parent),
        "argv": sys.argv[1:],
    }
