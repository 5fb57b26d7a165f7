"""The contract every backend meets, and the names shared by all of them.

A backend is a small object; its framework is imported only when the backend module is.
Arrays cross the boundary as NumPy through ``from_numpy`` / ``to_numpy``.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np

    from sigbench.core.workloads import MLPParams, TrainStart

#: Sigmoid variants, in the order every backend defines them.
SIGMOID_VARIANTS: tuple[str, ...] = ("naive", "stable", "builtin", "fast", "accurate")
#: What each variant is, for ``--help`` and reports.
SIGMOID_VARIANT_HELP: dict[str, str] = {
    "naive": "the tutorial's 1/(1+exp(-x)), as written (may overflow and warn)",
    "stable": "exp(-|x|) form: no overflow, no warning for any finite input",
    "builtin": "the library's own sigmoid (scipy.special.expit, torch.sigmoid, jax.nn.sigmoid)",
    "fast": "the fastest honest version: reuses its output buffer (the next call overwrites it)",
    "accurate": "correctly rounded (float64 inside, rounded once; float32 on CPU: Ziv's fast path plus exact "
                "slow path, in numba for NumPy, in a native kernel for PyTorch and JAX); reuses its output buffer",
}
WORKLOADS: tuple[str, ...] = ("sigmoid", "train")
DTYPES: tuple[str, ...] = ("float16", "bfloat16", "float32", "float64")

SigmoidFn = Callable[[Any], Any]


@runtime_checkable
class WaitsForResults(Protocol):
    """Optional: wait for given results rather than a whole device. The timer then waits, at each block's
    end, on the result of the block's last call alone (JAX: ``block_until_ready``), which costs far less
    than ``synchronize`` where that has to find every pending result. A backend offering it must complete
    one device's calls in the order they were made (XLA: one stream per GPU, and its CPU client too;
    ``tests/measure/test_timing.py`` checks it)."""

    def wait_for(self, results: list[Any]) -> None:
        """Block until every one of ``results`` (native arrays or trees of them) is computed."""


@runtime_checkable
class DeviceMemory(Protocol):
    """Optional: a backend's device-memory counters, for the ``peak_device_bytes`` column. A backend
    without them leaves the column empty; host memory is measured for every backend by its worker."""

    def reset_peak_memory(self, device: str) -> None:
        """Start measuring a peak of ``device``'s memory now."""

    def peak_memory_bytes(self, device: str) -> int | None:
        """Device memory in use at the peak since the reset, over what was in use then; None if unknown."""


@runtime_checkable
class CodePaths(Protocol):
    """Optional: a backend whose sigmoid variant may run one of several code paths chosen at run time (a native kernel's
    vector width: AVX-512, AVX2+FMA or the plain loop): which one, for the row's ``code_path`` column."""

    def sigmoid_path(self, variant: str, dtype: str, device: str) -> str | None:
        """The path ``variant`` takes for ``dtype`` on ``device``; None where it has only one."""


@runtime_checkable
class SigmoidGradients(Protocol):
    """Optional: a backend's derivative of its sigmoid and its binary cross-entropy, for ``sigbench accuracy
    --quantity grad|loss``. A backend without these methods is left out of those two quantities."""

    def sigmoid_grad_variants(self) -> dict[str, str | None]:
        """Each form of sigma'(x) mapped to None when usable, else to the reason it is not."""

    def sigmoid_grad(self, variant: str, dtype: str) -> SigmoidFn:
        """sigma'(x) element-wise on the CPU, native arrays in and out, in x's dtype."""

    def bce_forms(self) -> dict[str, str | None]:
        """Each way the backend computes binary cross-entropy from a logit, mapped to None or a reason."""

    def bce(self, form: str, dtype: str) -> Callable[[np.ndarray, float], tuple[np.ndarray, np.ndarray]]:
        """Per-element loss and d loss / d logit for logits z (NumPy, ``dtype``) and one target y in {0, 1}."""


class TrainSession(Protocol):
    """A network, its optimiser state and one batch, living in a backend."""

    def step(self) -> Any:
        """One training step on the session's batch; returns the loss, possibly still queued."""

    def loss_value(self, loss: Any) -> float:
        """The loss returned by ``step`` as a Python float (waits for it)."""

    def params(self) -> MLPParams:
        """The current parameters, as NumPy arrays in PyTorch's layout."""

    def reset(self) -> None:
        """Back to the starting parameters and a fresh optimizer, without allocating or recompiling."""

    def optimizer_state(self) -> tuple[int, MLPParams, MLPParams]:
        """Adam's step count and first and second moments, as NumPy (zeros before the first step)."""


@runtime_checkable
class Backend(Protocol):
    """One framework behind sigbench. See ``backends/sigbench_backends`` for the three built in."""

    name: str
    #: The pip extra that installs the framework (``pip install 'sigbench[<extra>]'``).
    extra: str

    def versions(self) -> dict[str, str]: ...

    def devices(self) -> list[str]:
        """Devices usable now, ``"cpu"`` first; names as the library uses them."""

    def dtypes(self, device: str) -> tuple[str, ...]: ...

    def from_numpy(self, array: np.ndarray, device: str) -> Any: ...

    def to_numpy(self, array: Any) -> np.ndarray: ...

    def synchronize(self, device: str) -> None:
        """Wait until all queued work on ``device`` is finished (a no-op when nothing queues)."""

    def copy_fn(self, device: str, nbytes: int) -> Callable[[], Any]:
        """A call copying ``nbytes`` between two buffers on ``device``: the bandwidth limit to compare with."""

    def matmul_fn(self, device: str, n: int, dtype: str = "float32") -> Callable[[], Any]:
        """A call multiplying two ``n`` x ``n`` matrices on ``device``: the arithmetic limit to compare with."""

    def set_threads(self, threads: int) -> dict[str, Any]:
        """Use ``threads`` CPU threads; return the settings actually in force."""

    def sigmoid_variants(self) -> dict[str, str | None]:
        """Each variant name mapped to None when usable, else to the reason it is not."""

    def sigmoid(self, variant: str, dtype: str, device: str) -> SigmoidFn:
        """A callable taking and returning the backend's native arrays (jitted where that applies)."""

    def train_variants(self, device: str | None = None) -> dict[str, str | None]:
        """Each variant mapped to None when usable on ``device`` (on some device when None), else the reason."""

    def train_session(self, variant: str, start: TrainStart, device: str) -> TrainSession: ...
