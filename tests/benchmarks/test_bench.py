"""pytest-benchmark suite over the same backend objects as ``sigbench run``.

Run with ``pytest tests/benchmarks --benchmark-only`` (or ``tox -e bench``); compare runs with
pytest-benchmark's own ``--benchmark-autosave`` / ``--benchmark-compare``. pytest-benchmark times each
round on its own, so every round ends with the backend's ``synchronize()``.
"""
import pytest

from sigbench.core.interface import SIGMOID_VARIANTS
from sigbench.core.workloads import TrainConfig, sigmoid_input, train_start


@pytest.mark.parametrize("size", [2**10, 2**16, 2**20], ids=lambda n: f"n={n}")
@pytest.mark.parametrize("variant", SIGMOID_VARIANTS)
def test_sigmoid(benchmark, backend, variant, size):
    reason = backend.sigmoid_variants()[variant]
    if reason:
        pytest.skip(reason)
    fn = backend.sigmoid(variant, "float32", "cpu")
    x = backend.from_numpy(sigmoid_input(size, "float32", seed=0), "cpu")
    fn(x)  # tracing and compilation stay out of the rounds
    backend.synchronize("cpu")

    def call():
        fn(x)
        backend.synchronize("cpu")

    benchmark.group = f"sigmoid n={size}"
    benchmark.extra_info.update(backend=backend.name, variant=variant, size=size)
    benchmark(call)


@pytest.mark.parametrize("variant", ["handwritten", "eager", "foreach", "fused", "manual", "jit"])
def test_train_step(benchmark, backend, variant):
    offered = backend.train_variants()
    if variant not in offered or offered[variant]:
        pytest.skip(f"{backend.name} has no usable {variant} variant")
    session = backend.train_session(variant, train_start(TrainConfig(), seed=0), "cpu")
    session.step()
    backend.synchronize("cpu")

    def call():
        session.step()
        backend.synchronize("cpu")

    benchmark.group = "train step, batch 32, hidden 128"
    benchmark.extra_info.update(backend=backend.name, variant=variant)
    benchmark(call)
