"""A backend plugin that misbehaves on purpose, for the worker tests.

Registered through the ``sigbench.backends`` entry-point group (the dist-info folder beside this file),
exactly as a third-party package would be; a test puts this folder on the import path.
"""
from __future__ import annotations

import ctypes
import os
import signal
import time
from typing import Any

import numpy as np

#: What the ``alloc`` variant allocates and touches on every call: more than glibc's largest mmap
#: threshold (32 MiB), so each call maps fresh pages and frees them on return.
ALLOC_BYTES = 48 * 2**20


def _stable(x: np.ndarray) -> np.ndarray:
    z = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + z), z / (1 + z)).astype(x.dtype)


def _segfault(x: np.ndarray) -> np.ndarray:
    ctypes.string_at(0)
    return x


def _abort(x: np.ndarray) -> np.ndarray:
    os.abort()


def _sigkill(x: np.ndarray) -> np.ndarray:  # what the OOM killer does
    os.kill(os.getpid(), signal.SIGKILL)
    return x


def _exit3(x: np.ndarray) -> np.ndarray:
    os._exit(3)


def _hang(x: np.ndarray) -> np.ndarray:
    time.sleep(3600)
    return x


def _raise(x: np.ndarray) -> np.ndarray:
    raise RuntimeError("boom")


def _alloc(x: np.ndarray) -> np.ndarray:
    scratch = np.empty(ALLOC_BYTES, dtype=np.uint8)
    scratch.fill(1)  # touch every page
    return _stable(x)


VARIANTS = {"ok": _stable, "segfault": _segfault, "abort": _abort, "sigkill": _sigkill, "exit": _exit3,
            "hang": _hang, "raise": _raise, "alloc": _alloc}


class FaultBackend:
    name = "faults"
    extra = "sigbench-test-faults"

    def versions(self) -> dict[str, str]:
        return {"faults": "0.1"}

    def devices(self) -> list[str]:
        return ["cpu"]

    def dtypes(self, device: str) -> tuple[str, ...]:
        return ("float32", "float64")

    def from_numpy(self, array: np.ndarray, device: str) -> np.ndarray:
        return np.array(array, copy=True)

    def to_numpy(self, array: Any) -> np.ndarray:
        return np.asarray(array)

    def synchronize(self, device: str) -> None:
        """Nothing queues."""

    def copy_fn(self, device: str, nbytes: int) -> Any:
        src = np.ones(nbytes // 4, dtype=np.float32)
        dst = np.empty_like(src)
        return lambda: np.copyto(dst, src)

    def set_threads(self, threads: int) -> dict[str, Any]:
        return {}

    def sigmoid_variants(self) -> dict[str, str | None]:
        return dict.fromkeys(VARIANTS)

    def sigmoid(self, variant: str, dtype: str, device: str) -> Any:
        return VARIANTS[variant]

    def train_variants(self) -> dict[str, str | None]:
        return {}

    def train_session(self, variant: str, start: Any, device: str) -> Any:
        raise KeyError(variant)
