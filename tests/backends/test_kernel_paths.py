"""The float32 ``accurate`` kernels' run-time paths (AVX-512, AVX2+FMA, the plain loop): each path this CPU runs
gives the plain loop's outputs bit for bit, the path chosen is the one reported, and a forced path is taken or
refused, never swapped for another. Also NumPy ``fast``'s cache blocking: the same values as one pass per ufunc.

The exhaustive form (all 2^32 inputs, every path) is ``scripts/kernel_paths_exhaustive.py``; it runs here only
when SIGBENCH_EXHAUSTIVE_PATHS=1 (a few minutes on 2 cores); its committed output is
``reports/accurate-cpu/paths-exhaustive/``.
"""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import hardest_float32, need
from sigbench.accuracy_sweep import ulp as accuracy

SCRIPT = Path(__file__).parents[2] / "scripts" / "kernel_paths_exhaustive.py"
#: Every STRIDE-th float32 bit pattern (about a million, all exponents and signs): the quick sweep.
STRIDE = 4099


def _needs_kernel(language: str = "c") -> None:
    from sigbench_backends import native

    if native.compiler(language) is None:
        pytest.skip(f"no {'C' if language == 'c' else 'C++'} compiler: the native kernel cannot be built")


#: The five ties near 0 that the first exhaustive run of the native kernel found misrounded (as in test_numerics).
_NEAR_ZERO_TIES = np.float32([3 * 2.0**-23, 7 * 2.0**-23, -3 * 2.0**-24, -7 * 2.0**-24, -11 * 2.0**-24])



def _hard_cases() -> np.ndarray:
    """Inputs nearest a float32 rounding midpoint (the exact path's work), the ties near 0, the edges."""
    return np.concatenate([hardest_float32(start, 40) for start in (0x3F000000, 0x40A00000, 0xC0A00000,
                                                                     0x41500000, 0xC1800000, 0xC2A00000)]
                          + [_NEAR_ZERO_TIES, accuracy.special_inputs("float32").astype(np.float32),
                             np.float32([np.nan, np.inf, -np.inf, -0.0, 0.0, -95.0, -103.0, 110.0, -110.0, 1e-45])])


def _sweep() -> np.ndarray:
    strided = np.arange(0, 1 << 32, STRIDE, dtype=np.uint64).astype(np.uint32).view(np.float32)
    return np.ascontiguousarray(np.concatenate([_hard_cases(), strided]))


def _run(kernel, x: np.ndarray, threads: int = 2) -> tuple[np.ndarray, int]:
    out = np.empty_like(x)
    hard = kernel(x.ctypes.data, out.ctypes.data, x.size, threads)
    return out, hard


def _same(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    """Where the outputs agree: the same bits, or NaN on both sides."""
    return (got.view(np.uint32) == want.view(np.uint32)) | (np.isnan(got) & np.isnan(want))


def _skip_unless_runs(path: str) -> None:
    from sigbench_backends import native

    if path not in native.available_paths():
        pytest.skip(f"this CPU does not run the {path} path (it runs {', '.join(native.available_paths())}): "
                    f"not checked here")


@pytest.mark.backend("torch")
def test_reported_path_is_the_one_the_kernel_chose():
    """``kernel_path()`` (read from /proc/cpuinfo, no build) names what the built kernel chose; the plain loop is
    always there; a path the CPU lacks is refused by name."""
    need("torch")
    _needs_kernel()
    from sigbench_backends import native

    assert native.kernel_path() == native.built_path() == native.available_paths()[0]
    assert native.available_paths()[-1] == "plain" and set(native.available_paths()) <= set(native.PATHS)
    assert native.kernel_path() in native.status()
    for path in set(native.PATHS) - set(native.available_paths()):
        with pytest.raises(ValueError, match="this CPU runs"):
            native.kernel_for(path)


@pytest.mark.backend("torch")
@pytest.mark.parametrize("path", ["avx512", "avx2-fma", "plain"])
def test_c_path_matches_the_plain_loop(path):
    """Each path of the C kernel (PyTorch's) gives the plain loop's outputs bit for bit on a sweep of every
    4099th bit pattern and the hard cases, one thread and two, and is correctly rounded on the hard cases."""
    need("torch")
    _needs_kernel()
    _skip_unless_runs(path)
    from sigbench_backends import native

    x = _sweep()
    want, _ = _run(native.kernel_for("plain"), x)
    for threads in (1, 2):
        got, hard = _run(native.kernel_for(path), x, threads)
        assert _same(got, want).all(), (path, x[~_same(got, want)][:5])
        assert hard >= 240  # the 240 hardest at least took the exact path
    cases = _hard_cases()
    correct, _ = accuracy.correctly_rounded(cases)
    got, _ = _run(native.kernel_for(path), np.ascontiguousarray(cases), 1)
    assert _same(got, correct).all(), cases[~_same(got, correct)][:5]


@pytest.mark.backend("torch")
@pytest.mark.parametrize("path", ["avx512", "avx2-fma", "plain"])
def test_c_path_fast_values_keep_the_error_bound(path):
    """Each path's float64 value before rounding is within a quarter of the band of the true sigmoid (the
    hardest inputs and a sample), as ``ziv``'s derivation says; flags agree with the band test."""
    need("torch")
    _needs_kernel()
    _skip_unless_runs(path)
    import mpmath

    from sigbench_backends import native, ziv

    x = np.concatenate([_hard_cases(), accuracy.sample_inputs("float32", 2000, seed=23)])
    x = np.ascontiguousarray(x[np.isfinite(x) & (np.abs(x) < ziv.CLAMP)])
    wide, flag = np.empty(x.size), np.empty(x.size, np.uint8)
    native.fast_path(path)(x.ctypes.data, wide.ctypes.data, flag.ctypes.data, x.size)
    for value, got in zip(x.tolist(), wide.tolist()):
        with mpmath.workprec(120):
            relative_error = float(abs(mpmath.mpf(got) / (1 / (1 + mpmath.exp(-mpmath.mpf(value)))) - 1))
        assert relative_error < ziv.REL_BAND / 4, (path, value)
    band = (wide * (1 - ziv.REL_BAND)).astype(np.float32) != (wide * (1 + ziv.REL_BAND)).astype(np.float32)
    assert (flag.astype(bool) == band).all()


@pytest.mark.backend("torch")
@pytest.mark.parametrize("path", ["avx512", "avx2-fma", "plain"])
def test_forced_path_is_taken(path):
    """SIGBENCH_ZIV_PATH makes the kernel (in a fresh process: it chooses once) run that path, and say so."""
    need("torch")
    _needs_kernel()
    _skip_unless_runs(path)
    code = ("from sigbench_backends import native\n"
            "print(native.kernel_path(), native.built_path())\n")
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, "SIGBENCH_ZIV_PATH": path},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [path, path]


@pytest.mark.backend("torch")
def test_forced_path_the_cpu_lacks_is_refused(monkeypatch):
    need("torch")
    from sigbench_backends import native

    monkeypatch.setenv(native.PATH_VARIABLE, "avx1024")
    with pytest.raises(ValueError, match="SIGBENCH_ZIV_PATH='avx1024': this CPU runs .*plain"):
        native.kernel_path()
    with pytest.raises(ValueError):
        native.kernel()
    assert "path none" in native.status()


@pytest.mark.backend("jax")
@pytest.mark.parametrize("path", ["avx512", "avx2-fma", "plain"])
def test_ffi_path_matches_the_plain_loop(path):
    """JAX's FFI library (the same source through the C++ compiler) on each path: the C plain loop's outputs."""
    need("jax")
    _needs_kernel("c++")
    _skip_unless_runs(path)
    from sigbench_backends import native

    x = _sweep()
    want, _ = _run(native.kernel_for("plain"), x)
    got, _ = _run(native.kernel_for(path, ffi=True), x)
    assert _same(got, want).all(), (path, x[~_same(got, want)][:5])


@pytest.mark.backend("jax")
def test_jax_accurate_runs_the_reported_path():
    """JAX's float32 ``accurate`` (through XLA) is the plain loop's output, on the path its library reports."""
    backend = need("jax")
    _needs_kernel("c++")
    from sigbench_backends import native

    x = _sweep()[:1 << 18]
    want, _ = _run(native.kernel_for("plain"), np.ascontiguousarray(x))
    got = backend.to_numpy(backend.sigmoid("accurate", "float32", "cpu")(backend.from_numpy(x, "cpu")))
    assert _same(np.asarray(got), want).all()
    assert native.ffi_built_path() == native.kernel_path()


@pytest.mark.backend("numpy")
def test_numba_host_target_matches_the_plain_loop():
    """NumPy's numba loop, compiled for this CPU (and its exact path), gives the C plain loop's outputs; the
    reported target is this CPU's best path."""
    backend = need("numpy")
    pytest.importorskip("numba")
    _needs_kernel()
    from sigbench_backends import native

    x = _sweep()
    want, _ = _run(native.kernel_for("plain"), x)
    got = backend.sigmoid("accurate", "float32", "cpu")(x)
    assert _same(got, want).all(), x[~_same(got, want)][:5]
    if not os.environ.get("NUMBA_CPU_NAME") and native.X86_64:
        assert native.numba_path().startswith(native.available_paths()[0] + " (numba, LLVM cpu ")


@pytest.mark.slow
@pytest.mark.backend("numpy")
@pytest.mark.parametrize("path", ["avx512", "avx2-fma", "plain"])
def test_numba_told_each_path_matches_the_plain_loop(path):
    """numba told each path's target (``native.numba_env``, in a process of its own: a compile of a few seconds)
    compiles for it, and gives the plain loop's outputs on the strided sweep."""
    need("numpy")
    pytest.importorskip("numba")
    _needs_kernel()
    _skip_unless_runs(path)
    from sigbench_backends import native

    done = subprocess.run([sys.executable, str(SCRIPT), "--stride", str(STRIDE), "--numba-paths", path, "--no-ffi"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    target = native.numba_env(path)["NUMBA_CPU_NAME"]
    assert f"| numba:{path} | {path} (numba, LLVM cpu {target}) |" in done.stdout


@pytest.mark.slow
@pytest.mark.meet
def test_every_path_on_every_float32_input(tmp_path):
    """The exhaustive check: every path of the C kernel, of JAX's FFI library and of numba, on all 2^32 inputs,
    bit for bit against the plain loop (a path this CPU lacks is reported skipped). Opt in with
    SIGBENCH_EXHAUSTIVE_PATHS=1: a few minutes on 2 cores."""
    if os.environ.get("SIGBENCH_EXHAUSTIVE_PATHS") != "1":
        pytest.skip("the exhaustive path check runs with SIGBENCH_EXHAUSTIVE_PATHS=1 (minutes); its last output "
                    "is reports/accurate-cpu/paths-exhaustive/")
    for name in ("numpy", "torch", "jax"):
        need(name)
    done = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path)], capture_output=True, text=True,
                          timeout=3600)
    assert done.returncode == 0, done.stdout + done.stderr
    print(done.stdout)


@pytest.mark.backend("numpy")
@pytest.mark.parametrize("threads", [1, 2])
def test_numpy_fast_blocks_give_the_values_of_whole_passes(threads):
    """Below one block, ``fast`` gives the four passes' bits; above, e^x / (1 + e^x)'s, with 1 where e^x
    overflowed, and every value passes the check against float64 (a last partial block included, and the chunks
    of two threads)."""
    backend = need("numpy")
    from sigbench.measure.checks import check_sigmoid
    from sigbench_backends import numpy_backend

    backend.set_threads(threads)
    step = numpy_backend._block_elements(4)
    for n in (100, step - 100, 5 * step + 17):
        x = accuracy.sample_inputs("float32", n, seed=n).astype(np.float32)
        x[np.isnan(x)] = 0
        with np.errstate(over="ignore", invalid="ignore"):
            four = 1 / (1 + np.exp(-x))
            e = np.exp(x)
            three = e / (1 + e)
        got = backend.sigmoid("fast", "float32", "cpu")(x)
        if x.size <= step:  # the sample adds the special inputs to n
            assert (got.view(np.uint32) == four.view(np.uint32)).all()
        else:
            three[np.isposinf(e)] = 1
            assert (got.view(np.uint32) == three.view(np.uint32)).all()
            assert np.isposinf(e).any() and not (got.view(np.uint32) == four.view(np.uint32)).all()
        assert check_sigmoid(got, x).passed


def test_a_row_names_the_code_path_accurate_took(backend, backend_name, tmp_path):
    """Each backend says which path its float32 ``accurate`` runs (the row's ``code_path`` column and the
    report's environment), the path its kernel reports; variants with one path say nothing."""
    import importlib.util

    from sigbench.api import run
    from sigbench_backends import native

    expected = backend.sigmoid_path("accurate", "float32", "cpu")
    kernel_used = (importlib.util.find_spec("numba") is not None if backend_name == "numpy"
                   else native.compiler("c" if backend_name == "torch" else "c++") is not None)
    assert expected is not None and (native.kernel_path() in expected) == kernel_used, expected
    assert backend.sigmoid_path("fast", "float32", "cpu") is None
    assert backend.sigmoid_path("accurate", "float64", "cpu") is None
    result = run(backend_name, variants=["accurate", "fast"], workloads=["sigmoid"], sizes=[4096], preset="quick",
                 min_time_s=0.005, max_time_s=0.02, output_dir=tmp_path / "run", formats=("md",))
    paths = {row["variant"]: row.get("code_path") for row in result.rows}
    assert paths == {"accurate": expected, "fast": None}
    assert f"{backend_name}/accurate float32: {expected}" in (tmp_path / "run" / "results.md").read_text()
