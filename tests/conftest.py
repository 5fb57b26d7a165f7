"""Which backends the tests use, and which tests run in this tox env.

SIGBENCH_BACKENDS (comma-separated, else every installed one) names the backends under test. A backend
named there that cannot load is a test failure, never a skip.

SIGBENCH_TEST_SCOPES (comma-separated; unset: every test) picks the tests, by the scope each one has:

- ``backend``: about one backend: a ``backend_name`` parameter, or a ``backend`` marker. It runs where its
  backend is under test (in tox: that backend's own env).
- ``meet``: marked ``meet``: every backend under test together (in tox: the ``all`` env).
- ``packaging``: marked ``packaging``: what an install holds (import-light, a backend missing); in every env.
- ``independent``: anything else; it uses one backend at most, the first under test (in tox: once).

tox.ini says which env runs which scopes, and why.
"""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from sigbench.core import registry


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


SCOPES = ("independent", "backend", "meet", "packaging")


def requested_scopes() -> set[str] | None:
    """The scopes SIGBENCH_TEST_SCOPES names; None when it is unset (every test runs)."""
    raw = os.environ.get("SIGBENCH_TEST_SCOPES", "").strip()
    if not raw:
        return None
    scopes = {name.strip() for name in raw.split(",") if name.strip()}
    if scopes - set(SCOPES):
        raise pytest.UsageError(f"SIGBENCH_TEST_SCOPES names unknown scopes {sorted(scopes - set(SCOPES))}; "
                                f"known: {', '.join(SCOPES)}")
    return scopes


def backend_of(item: pytest.Item) -> str | None:
    """The backend a test is about: its ``backend_name`` parameter, else its ``backend`` marker's name, or the
    value of the parameter that marker names (``@pytest.mark.backend(param="name")``)."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    if "backend_name" in params:
        return params["backend_name"]
    marker = item.get_closest_marker("backend")
    if marker is None:
        return None
    return marker.args[0] if marker.args else params[marker.kwargs["param"]]


def scope_of(item: pytest.Item) -> str:
    if item.get_closest_marker("packaging"):
        return "packaging"
    if item.get_closest_marker("meet"):
        return "meet"
    return "backend" if backend_of(item) else "independent"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "backend(name, param=None): the test is about that one backend")
    config.addinivalue_line("markers", "meet: the test uses every backend under test together")
    config.addinivalue_line("markers", "packaging: the test checks what this install holds")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep the tests of the scopes asked for; a backend's test only where that backend is under test."""
    scopes = requested_scopes()
    if scopes is None:
        return
    keep, drop = [], []
    for item in items:
        scope = scope_of(item)
        wanted = scope in scopes and (scope != "backend" or backend_of(item) in BACKENDS)
        (keep if wanted else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


_current: dict[str, pytest.Item] = {}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    _current["item"] = item


def pytest_report_header() -> list[str]:
    scopes = requested_scopes()
    return [f"sigbench backends under test: {', '.join(BACKENDS) or '(none)'}",
            f"sigbench test scopes: {', '.join(sorted(scopes)) if scopes else 'all'}"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend_name" in metafunc.fixturenames:
        metafunc.parametrize("backend_name", BACKENDS, ids=BACKENDS)


@pytest.fixture
def backend(backend_name: str):
    return registry.load(backend_name)


def need(name: str):
    """The backend ``name`` when this run tests it (then it must load); otherwise skip.

    The calling test says so by its marker (``backend(name)``, or ``meet``), so that the env of that backend
    is the one that runs it."""
    item = _current.get("item")
    if item is not None and backend_of(item) != name and scope_of(item) != "meet":
        pytest.fail(f"{item.nodeid} uses need({name!r}): mark it @pytest.mark.backend({name!r}) (conftest.py)")
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


#: a run small enough for a test: two sizes, a few milliseconds a case, one training shape (not the sweep)
TINY = ["--size", "256", "--size", "2^12", "--batch", "32", "--max-time", "0.01", "--min-time", "0.005", "-q"]


@dataclass(frozen=True)
class SeededRun:
    code: int
    directory: Path
    stdout: str
    heavy: list[str]  # the frameworks (and scipy) the run's own process imported


@pytest.fixture(scope="session")
def seeded_run(tmp_path_factory: pytest.TempPathFactory) -> SeededRun:
    """One ``sigbench run`` of every backend under test on the defaults (both workloads, 3 processes a case),
    tiny sizes, seed 7, in a process of its own: the slowest run of the suite, made once for the tests that
    read it (the end-to-end files, the same seed again, in-process against workers, a light run process)."""
    if not BACKENDS:
        pytest.skip("no backend under test")
    out = tmp_path_factory.mktemp("seeded") / "out"
    args = ["run", *(arg for name in BACKENDS for arg in ("--backend", name)), *TINY, "--seed", "7", "-o", str(out)]
    code = ("import sys\nfrom sigbench.cli import main\n"
            f"code = main({args!r})\n"
            "print('heavy:' + ','.join(sorted({'torch', 'jax', 'jaxlib', 'scipy'} & set(sys.modules))))\n"
            "sys.exit(code)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    *printed, last = done.stdout.rstrip("\n").split("\n")
    assert last.startswith("heavy:"), done.stdout + done.stderr
    return SeededRun(done.returncode, out, "\n".join(printed), [m for m in last[len("heavy:"):].split(",") if m])


def hardest_float32(start_bits: int, count: int = 40) -> np.ndarray:
    """Of 2^18 consecutive float32 inputs, those whose sigmoid lies closest to a float32 rounding midpoint (the
    accurate sigmoids' hardest inputs: tests/backends holds every kernel path and backend to them)."""
    from sigbench.core import reference

    x = np.arange(start_bits, start_bits + (1 << 18), dtype=np.uint32).view(np.float32)
    exact = reference.sigmoid(x.astype(np.float64))
    guess = exact.astype(np.float32).astype(np.float64)
    half = np.spacing(exact.astype(np.float32)).astype(np.float64) / 2
    margin = np.abs(np.abs(exact - guess) - half) / np.spacing(exact)
    return x[np.argsort(margin)[:count]]


def mp_round(x: float, bits: int) -> float:
    """The sigmoid rounded to ``bits`` of precision by mpmath itself (valid for normal results)."""
    import mpmath

    with mpmath.workprec(200):
        value = 1 / (1 + mpmath.exp(-mpmath.mpf(x)))
    with mpmath.workprec(bits):
        return float(+value)
