"""One fixture chooses the backends: SIGBENCH_BACKENDS (comma-separated), else every installed one.

A backend named there that cannot load is a test failure, never a skip.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

from sigbench import registry


def requested_backends() -> list[str]:
    raw = os.environ.get("SIGBENCH_BACKENDS")
    if raw is None or raw.strip() == "all":
        return registry.installed_names()
    names = [name.strip() for name in raw.split(",") if name.strip()]
    unknown = [name for name in names if name not in registry.names()]
    if unknown:
        raise pytest.UsageError(
            f"SIGBENCH_BACKENDS names unknown backends {unknown}; known: {registry.names()}"
        )
    return names


BACKENDS = requested_backends()


def pytest_ignore_collect(collection_path, config) -> bool | None:
    """tests/benchmarks runs only when named: ``pytest tests/benchmarks --benchmark-only``."""
    if collection_path.name == "benchmarks" and not any("benchmarks" in str(a) for a in config.args):
        return True
    return None


def pytest_report_header() -> str:
    return f"sigbench backends under test: {', '.join(BACKENDS) or '(none)'}"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend_name" in metafunc.fixturenames:
        metafunc.parametrize("backend_name", BACKENDS, ids=BACKENDS)


@pytest.fixture
def backend(backend_name: str):
    return registry.load(backend_name)


def need(name: str):
    """The backend ``name`` when this run tests it (then it must load); otherwise skip."""
    if name not in BACKENDS:
        pytest.skip(f"{name} is not among the backends under test ({', '.join(BACKENDS) or 'none'})")
    return registry.load(name)


def to_native(backend, array: np.ndarray):
    return backend.from_numpy(array, "cpu")


def run_sigmoid(backend, variant: str, x: np.ndarray) -> np.ndarray:
    fn = backend.sigmoid(variant, x.dtype.name, "cpu")
    return backend.to_numpy(fn(backend.from_numpy(x, "cpu"))).copy()


def usable_variants(backend) -> list[str]:
    return [name for name, reason in backend.sigmoid_variants().items() if reason is None]
