"""A backend plugin whose every call is a fixed count of identical iterations, for ``sigbench ab``.

Each sigmoid call computes the stable sigmoid ``count`` times over the whole input, and each training
step takes ``count`` forward and backward passes of NumPy's hand-written step, the last one followed by
Adam. The count is ``BASE_COUNT`` times ``SIGBENCH_TEST_WORK_FACTOR`` (default 1), which a test sets in
one environment alone (a ``.pth`` file of its venv): that environment then does exactly 1.1x or 1.2x the
work, a known slowdown. The variant ``fragile`` crashes its worker wherever the factor is not 1, a fault on
one side only.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np
from sigbench_test_faults import FaultBackend

#: Iterations per call where the factor is 1: 20, so that 1.05x, 1.1x and 1.2x are whole counts.
BASE_COUNT = 20


def factor() -> float:
    return float(os.environ.get("SIGBENCH_TEST_WORK_FACTOR", "1"))


def count() -> int:
    return round(BASE_COUNT * factor())


def stable_into(x: np.ndarray, z: np.ndarray, out: np.ndarray) -> np.ndarray:
    """The stable sigmoid into ``out``, allocating nothing and branching on nothing:
    exp(min(x, 0)) / (1 + exp(-|x|)), which is 1/(1+e^-x) for x >= 0 and e^x/(1+e^x) below."""
    np.abs(x, out=z)
    np.negative(z, out=z)
    np.exp(z, out=z)
    np.add(z, 1, out=out)
    np.minimum(x, 0, out=z)
    np.exp(z, out=z)
    np.divide(z, out, out=out)
    return out


def buffer_like(x: np.ndarray, offset_bytes: int) -> np.ndarray:
    """An empty array like ``x`` whose address lies ``offset_bytes`` after x's, modulo 4 KiB."""
    raw = np.empty(x.nbytes + 4096 + x.itemsize, dtype=np.uint8)
    start = (x.ctypes.data + offset_bytes - raw.ctypes.data) % 4096
    return raw[start:start + x.nbytes].view(x.dtype).reshape(x.shape)


class WorkSigmoid:
    """``iterations`` times the same sigmoid, into buffers made once per input and placed apart from it.

    A fixed amount of work, so nothing that varies from process to process: no temporary per call (an
    allocation of 256 KiB or more is mmap'ed or not by what the process freed before, glibc's dynamic
    threshold), and buffers 1 and 2 KiB apart from the input modulo 4 KiB. Arrays that each start a page
    (mmap'ed ones do) make every load and store alias in the CPU's 4 KiB address check: at n = 65,536 whole
    processes ran at 2.3 or at 6.5 ms a call, by where their buffers happened to fall.
    """

    def __init__(self, iterations: int) -> None:
        self.iterations = iterations
        self.buffers: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def __call__(self, x: np.ndarray) -> np.ndarray:
        key = x.ctypes.data
        if key not in self.buffers:
            self.buffers = {key: (buffer_like(x, 1024), buffer_like(x, 2048))}
        z, out = self.buffers[key]
        for _ in range(self.iterations):
            stable_into(x, z, out)
        return out


def fragile(x: np.ndarray) -> np.ndarray:
    if factor() != 1:
        os.abort()
    return WorkSigmoid(1)(x)


class WorkSession:
    """NumPy's hand-written step, with ``count - 1`` more forward and backward passes before it."""

    def __init__(self, start: Any, iterations: int) -> None:
        from sigbench_backends.numpy_backend import NumpyTrainSession

        self.inner = NumpyTrainSession(start)
        self.iterations = iterations

    def step(self) -> Any:
        for _ in range(self.iterations - 1):
            self.inner.loss_and_grads()
        return self.inner.step()

    def loss_value(self, loss: Any) -> float:
        return self.inner.loss_value(loss)

    def params(self) -> Any:
        return self.inner.params()

    def reset(self) -> None:
        self.inner.reset()

    def optimizer_state(self) -> Any:
        return self.inner.optimizer_state()


class WorkBackend(FaultBackend):
    """The faults plugin's plain surface (CPU, NumPy arrays), with the work variants instead of faults."""

    name = "work"
    extra = "sigbench-test-work"

    def versions(self) -> dict[str, str]:
        return {"work": "0.1", "factor": f"{factor():g}", "numpy": np.__version__}

    def sigmoid_variants(self) -> dict[str, str | None]:
        return {"work": None, "fragile": None}

    def sigmoid(self, variant: str, dtype: str, device: str) -> Any:
        return WorkSigmoid(count()) if variant == "work" else fragile

    def train_variants(self, device: str | None = None) -> dict[str, str | None]:
        return {"work": None}

    def train_session(self, variant: str, start: Any, device: str) -> Any:
        return WorkSession(start, count())
