"""The accurate sigmoids at the hardest float32 inputs, the derivative and the BCE forms at their breaking
points, each against mpmath."""
import math

import mpmath
import numpy as np
import pytest

from conftest import BACKENDS, hardest_float32, mp_round, need, run_sigmoid
from sigbench.accuracy_sweep import loss
from sigbench.accuracy_sweep import ulp as accuracy
from sigbench.cli import main


def _mp_grad(x: float) -> float:
    with mpmath.workprec(200):
        z = mpmath.exp(-abs(mpmath.mpf(x)))
        return float(z / (1 + z) ** 2)


def _mp_bce(z: float, y: int) -> tuple[float, float]:
    with mpmath.workprec(200):
        m = mpmath.mpf(z)
        return float(mpmath.log1p(mpmath.exp(-m if y else m))), float(1 / (1 + mpmath.exp(-m)) - y)



@pytest.mark.parametrize("start_bits", [0x3F000000, 0x40A00000, 0xC0A00000, 0x41500000, 0xC1800000, 0xC2A00000])
def test_accurate_is_correctly_rounded_nearest_the_midpoints(backend, start_bits):
    """Inputs from 0.5, 5, -5, 13, -16 and -80 on: the fast paths' error bounds are tested where they matter."""
    x = hardest_float32(start_bits)
    got = run_sigmoid(backend, "accurate", x)
    for value, g in zip(x.tolist(), got.tolist()):
        assert g == mp_round(value, 24), value


def test_accurate_float32_agrees_with_the_reference_on_a_large_sample(backend):
    """Blocks, threads and the slow path's indices: every element lands in its place."""
    x = accuracy.sample_inputs("float32", 1 << 18, seed=5)
    want, _ = accuracy.correctly_rounded(x)
    totals = accuracy.measure_errors(run_sigmoid(backend, "accurate", x), want, x)
    assert totals.nan_where_number == 0 and totals.max_ulp == 0, totals.row()
    assert totals.correctly_rounded + totals.flushed_subnormals == totals.inputs  # XLA flushes: counted apart


@pytest.mark.parametrize("size", [1000, 5000, 70001])
def test_accurate_float32_redoes_hard_inputs_anywhere(backend, size):
    """The hardest inputs, NaN and infinities at the start, in the middle and in a last partial block, whatever
    the size against the backends' blocks (NumPy 4096, JAX 1024, PyTorch 31744): each lands in its place."""
    hard = np.concatenate([hardest_float32(0x40A00000, 20), hardest_float32(0xC1800000, 20),
                           np.array([np.nan, np.inf, -np.inf, 0.0], np.float32)])
    x = accuracy.sample_inputs("float32", size, seed=7)
    for at in (0, size // 2, size - hard.size):
        x[at:at + hard.size] = hard
    want, _ = accuracy.correctly_rounded(x)
    totals = accuracy.measure_errors(run_sigmoid(backend, "accurate", x), want, x)
    assert totals.nan_where_number == 0 and totals.max_ulp == 0, totals.row()


def _numba_fast_path(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    need("numpy")
    pytest.importorskip("numba")
    from sigbench_backends import numpy_backend

    wide, hard = np.empty(x.size), np.empty(x.size, np.bool_)
    numpy_backend.numba_ziv().fast_path(x, wide, hard)
    return wide, hard


def _native_fast_path(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from sigbench_backends import native

    if native.compiler() is None:
        pytest.skip("no C compiler: the native kernel cannot be built")
    x = np.ascontiguousarray(x, np.float32)
    wide, hard = np.empty(x.size), np.empty(x.size, np.uint8)
    native.fast_path()(x.ctypes.data, wide.ctypes.data, hard.ctypes.data, x.size)
    return wide, hard.astype(np.bool_)


@pytest.mark.parametrize("fast_path", [pytest.param(_numba_fast_path, id="numba", marks=pytest.mark.backend("numpy")),
                                       pytest.param(_native_fast_path, id="native")])
def test_ziv_fast_path_keeps_its_error_bound(fast_path):
    """The float64 value of NumPy's numba fast path, and of the native kernel of PyTorch and JAX (compiled with
    -march=native, so possibly with fused multiply-adds), before rounding, against mpmath: within a quarter of
    the band it tests (the bound of ``ziv``'s derivation is 2^-45.9, the band 2^-43), including where |r| is
    largest and across all of r's range (where the polynomial's error peaks), and where it flags nothing its
    float32 rounding is the correct one, subnormal results included."""
    from sigbench_backends import ziv

    starts = [0x3F000000, 0x40A00000, 0xC0A00000, 0x41500000, 0xC1800000, 0xC2A00000]
    widest_r = ((np.arange(-150, 20) + 0.5) * math.log(2)).astype(np.float32)  # |r| near ln 2 / 2
    every_r = np.linspace(-0.3465, 0.3465, 2001).astype(np.float32)  # k = 0: r = -x
    x = np.concatenate([hardest_float32(start, 100) for start in starts] + [widest_r, every_r]
                       + [accuracy.sample_inputs("float32", 1000, seed=11)])
    x = x[np.isfinite(x) & (np.abs(x) < ziv.CLAMP)]
    wide, hard = fast_path(x)
    want, _ = accuracy.correctly_rounded(x)
    for value, got, flagged, rounded in zip(x.tolist(), wide.tolist(), hard.tolist(), want.tolist()):
        with mpmath.workprec(200):
            true = 1 / (1 + mpmath.exp(-mpmath.mpf(value)))
            relative_error = float(abs(mpmath.mpf(got) / true - 1))
        assert relative_error < ziv.REL_BAND / 4, value
        if not flagged:
            assert float(np.float32(got)) == rounded, value
    assert 0 < hard.sum() < x.size  # the hardest inputs are flagged, the sample mostly not


def test_native_kernel_spells_ziv_constants():
    """``ziv_kernel.c`` writes the constants of ``ziv`` in C: the same float64 values, polynomial included."""
    import re

    from sigbench_backends import native, ziv

    source = native.KERNEL_SOURCE.read_text()
    coeffs = re.search(r"EXP_COEFFS\[\d+\] = \{([^}]*)\}", source)
    assert coeffs is not None
    assert tuple(float(c) for c in coeffs.group(1).split(",")) == ziv.EXP_COEFFS
    for name in ("INVLN2", "LN2_HI", "LN2_LO", "SHIFT", "CLAMP", "REL_BAND"):
        found = re.search(rf"static const double {name} = ([^;]+);", source)
        assert found is not None, name
        literal = found.group(1)
        value = float.fromhex(literal) if literal.startswith("0x") else float(literal)
        assert value == getattr(ziv, name), name


def test_native_kernel_redoes_exactly_the_flagged_inputs_on_every_thread_count():
    """The kernel's count of exact-path inputs is the fast path's count of flags, whatever the threads, and
    its output is the correctly rounded sigmoid, subnormal results kept even where the calling thread
    flushes them (XLA's threads do)."""
    from sigbench_backends import native

    x = np.concatenate([hardest_float32(0x40A00000, 50), hardest_float32(0xC1800000, 50),
                        accuracy.sample_inputs("float32", 70001, seed=13),
                        np.array([np.nan, -95.0, -103.0], np.float32)])
    _, flags = _native_fast_path(x)
    want, _ = accuracy.correctly_rounded(x)
    for threads in (1, 2, 3):
        out = np.empty_like(x)
        hard = native.kernel()(x.ctypes.data, out.ctypes.data, x.size, threads)
        assert hard == flags.sum() >= 101  # the 100 hardest and the NaN at least
        totals = accuracy.measure_errors(out, want, x)
        assert totals.correctly_rounded == totals.inputs and totals.flushed_subnormals == 0, totals.row()
    assert out[-2] > 0 and out[-1] > 0  # subnormal results


def _near_zero_odd_multiples() -> np.ndarray:
    """Every odd multiple of 2^-24, 2^-23 and 2^-22 below 2^-8: near 0, 1/2 + x/4 is exactly a float32 midpoint
    for some of them (x = 3 2^-23, 7 2^-23, -3 2^-24, ...), and only the x^3/48 term, below long double's
    precision, decides the rounding."""
    odd = np.arange(1, 1 << 12, 2)
    x = np.concatenate([sign * odd * 2.0**e for sign in (1, -1) for e in (-24, -23, -22)]).astype(np.float32)
    return np.ascontiguousarray(x[np.abs(x) < 2**-8])


#: The five ties the first exhaustive run of the native kernel found misrounded.
_NEAR_ZERO_TIES = np.float32([3 * 2.0**-23, 7 * 2.0**-23, -3 * 2.0**-24, -7 * 2.0**-24, -11 * 2.0**-24])


def test_native_kernel_breaks_the_ties_near_zero():
    """The kernel's exact path is right on every odd multiple near 0, the five ties included."""
    from sigbench_backends import native

    if native.compiler() is None:
        pytest.skip("no C compiler: the native kernel cannot be built")
    x = _near_zero_odd_multiples()
    out = np.empty_like(x)
    native.kernel()(x.ctypes.data, out.ctypes.data, x.size, 1)
    want, _ = accuracy.correctly_rounded(x)
    assert (out == want).all(), x[out != want]
    for value in _NEAR_ZERO_TIES.tolist():  # the five, against mpmath itself
        assert out[x == value][0] == mp_round(value, 24), value


#: The 68 float32 inputs (bit patterns) whose sigmoid in float64, rounded once, is 1 ULP off (a sweep of all
#: 2^32 inputs against ``correctly_rounded``; the test checks each against mpmath). All lie below 2^-15 in
#: magnitude, where 1/2 + x/4 is a float32 midpoint and the float64 value falls on the wrong side of it.
_FLOAT64_MISROUNDED = np.array([
    0x34C00000, 0x35600000, 0x35B00000, 0x35F00000, 0x36180000, 0x36380000, 0x36580000, 0x36780000,
    0x368C0000, 0x369C0000, 0x36AC0000, 0x36BC0000, 0x36CC0000, 0x36DC0000, 0x36EC0000, 0x36FC0000,
    0x37060000, 0x370E0000, 0x37160000, 0x371E0000, 0x372E0000, 0x37360000, 0x373E0000, 0x37460000,
    0x374E0000, 0x37560000, 0x375E0000, 0x37660000, 0xB4400000, 0xB4E00000, 0xB5300000, 0xB5700000,
    0xB5980000, 0xB5B80000, 0xB5D80000, 0xB5F80000, 0xB60C0000, 0xB61C0000, 0xB62C0000, 0xB63C0000,
    0xB64C0000, 0xB65C0000, 0xB66C0000, 0xB67C0000, 0xB6860000, 0xB68E0000, 0xB6960000, 0xB69E0000,
    0xB6A60000, 0xB6AE0000, 0xB6B60000, 0xB6BE0000, 0xB6C60000, 0xB6EE0000, 0xB6F60000, 0xB6FE0000,
    0xB7030000, 0xB7070000, 0xB70B0000, 0xB70F0000, 0xB7230000, 0xB7250000, 0xB7270000, 0xB72B0000,
    0xB76B0000, 0xB7730000, 0xB7770000, 0xB7818000,
], np.uint32).view(np.float32)


@pytest.mark.backend("numpy")
@pytest.mark.parametrize("path", ["exact", "numba", "ufuncs"])
def test_numpy_accurate_decides_the_inputs_float64_misrounds(monkeypatch, path):
    """NumPy's exact path is the kernel's, in long double: right where the float64 form is 1 ULP off and on the
    ties near 0, called alone and from both fast paths (which must find these inputs in their blocks)."""
    need("numpy")
    from sigbench_backends import numpy_backend

    if not numpy_backend._LONG_DOUBLE_EXACT:
        pytest.skip("NumPy's long double is float64 here: the exact path is the float64 form")
    x = np.concatenate([_FLOAT64_MISROUNDED, _NEAR_ZERO_TIES])
    want = np.float32([mp_round(value, 24) for value in x.tolist()])
    assert (numpy_backend.sigmoid_accurate(x) != want).sum() >= len(_FLOAT64_MISROUNDED)  # they are hard
    if path == "exact":
        got = numpy_backend.sigmoid_exact_float32(x)
    else:
        if path == "numba":
            pytest.importorskip("numba")
        else:
            monkeypatch.setattr(numpy_backend, "numba_available", lambda: False)
        inputs = accuracy.sample_inputs("float32", 20000, seed=3)  # the hard ones in several blocks
        at = np.arange(x.size) * (inputs.size // x.size)
        inputs[at] = x
        got = numpy_backend.NumpyBackend().sigmoid("accurate", "float32", "cpu")(inputs)[at]
    assert (got == want).all(), x[got != want]


def test_native_kernel_plain_loop_matches_the_avx2_one(tmp_path, monkeypatch):
    """The kernel's hand-vectorised AVX2 path and its plain C loop (what a CPU without AVX2 and FMA builds) give
    the same correctly rounded outputs and send the same inputs to the exact path, in whole chunks of 32 and
    in the rest of a partial last block."""
    import ctypes
    import platform

    from sigbench_backends import native

    cc = native.compiler()
    if cc is None or platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip("needs a C compiler on x86-64")
    monkeypatch.setenv("SIGBENCH_CACHE_DIR", str(tmp_path))
    x = np.concatenate([hardest_float32(0x40A00000, 50), hardest_float32(0xC1800000, 50), _NEAR_ZERO_TIES,
                        accuracy.sample_inputs("float32", 70001, seed=17),
                        np.array([np.nan, np.inf, -np.inf, -95.0, -103.0], np.float32)])
    want, _ = accuracy.correctly_rounded(x)
    results = []
    for extra in ([], ["-mno-avx2", "-mno-fma"]):
        library = ctypes.CDLL(str(native._build([cc, *native.FLAGS, *extra], native.KERNEL_SOURCE, "ziv")))
        kernel = native.kernel_in(library)
        out = np.empty_like(x)
        hard = kernel(x.ctypes.data, out.ctypes.data, x.size, 2)
        assert ((out == want) | (np.isnan(out) & np.isnan(want))).all(), (extra, x[out != want][:5])
        results.append(hard)
    assert results[0] == results[1] >= 105  # the 100 hardest, the five ties and the NaN at least


def test_native_build_is_cached_and_leaves_no_partial_file(tmp_path, monkeypatch):
    """A second build of the same source is the cached file, untouched; a failed build says what failed and
    leaves nothing behind."""
    from sigbench_backends import native

    cc = native.compiler()
    if cc is None:
        pytest.skip("no C compiler")
    monkeypatch.setenv("SIGBENCH_CACHE_DIR", str(tmp_path))
    built = native._build([cc, *native.FLAGS], native.KERNEL_SOURCE, "ziv")
    assert built.parent == tmp_path / "native" and built.stat().st_size > 0
    stamp = built.stat().st_mtime_ns
    assert native._build([cc, *native.FLAGS], native.KERNEL_SOURCE, "ziv") == built
    assert built.stat().st_mtime_ns == stamp
    with pytest.raises(native.BuildError, match="building the native Ziv kernel failed"):
        native._build([cc, *native.FLAGS, "-fno-such-option"], native.KERNEL_SOURCE, "ziv")
    assert sorted(p.name for p in (tmp_path / "native").iterdir()) == [built.name]


@pytest.mark.slow
@pytest.mark.backend("numpy")
def test_numba_loops_compile_once_and_later_processes_load_them(tmp_path):
    """NumPy's float32 ``accurate`` loops are compiled by the first process and loaded from the cache folder by
    the next (numba's own counters say which), with the same results."""
    import os
    import subprocess
    import sys

    need("numpy")
    pytest.importorskip("numba")
    script = (
        "import numpy as np\n"
        "from sigbench_backends import numpy_backend\n"
        "from sigbench.core.workloads import sigmoid_input\n"
        "ziv = numpy_backend.numba_ziv()\n"
        "x = sigmoid_input(10000, 'float32', 5)\n"
        "out, counts = np.empty_like(x), np.empty(-(-x.size // ziv.block), np.int32)\n"
        "ziv.kernel(x, out, counts)\n"
        "import hashlib\n"
        "print(sum(ziv.kernel.stats.cache_hits.values()), sum(ziv.kernel.stats.cache_misses.values()), "
        "hashlib.sha256(out.tobytes()).hexdigest())\n"
    )
    env = dict(os.environ, SIGBENCH_CACHE_DIR=str(tmp_path))
    runs = [subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
            for _ in range(2)]
    first, second = (run.stdout.split() for run in runs)
    assert first[:2] == ["0", "1"] and second[:2] == ["1", "0"], (first, second)
    assert first[2] == second[2]
    copies = list((tmp_path / "numba").glob("sigbench_ziv_numba_*.py"))
    assert len(copies) == 1 and any((tmp_path / "numba" / "__pycache__").glob("*.nbc"))
    # a cache folder that cannot be made (a file is in its place): the loops compile as without a cache
    (tmp_path / "blocked").write_text("")
    env["SIGBENCH_CACHE_DIR"] = str(tmp_path / "blocked" / "cache")
    third = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    assert third.stdout.split() == ["0", "1", first[2]], third.stdout + third.stderr


@pytest.mark.parametrize("start_bits", [0x40A00000, 0xC1800000, 0xC2A00000])
def test_accurate_without_a_compiler_takes_the_framework_path(backend, monkeypatch, start_bits):
    """Without a C/C++ compiler, PyTorch and JAX keep a correctly rounded float32 ``accurate`` through their own
    operations, and ``sigbench info`` says the kernel is missing."""
    from sigbench_backends import native

    if backend.name == "numpy":
        pytest.skip("NumPy's accurate does not use the native kernel")
    monkeypatch.setattr(native, "compiler", lambda language="c": None)
    assert backend.versions()["accurate kernel"].startswith("missing")
    x = hardest_float32(start_bits)
    got = run_sigmoid(backend, "accurate", x)
    for value, g in zip(x.tolist(), got.tolist()):
        assert g == mp_round(value, 24) or (backend.name == "jax" and value < -87.3 and g == 0.0), value


@pytest.mark.backend("numpy")
@pytest.mark.parametrize("start_bits", [0x3F000000, 0x40A00000, 0xC1800000, 0xC2A00000])
def test_numpy_accurate_without_numba_is_correctly_rounded_nearest_the_midpoints(monkeypatch, start_bits):
    """The ufunc fast path that runs when numba is missing keeps its own error bound, and says it runs."""
    need("numpy")
    from sigbench_backends import numpy_backend

    monkeypatch.setattr(numpy_backend, "numba_available", lambda: False)
    assert numpy_backend.NumpyBackend().versions()["numba"].startswith("missing")  # what `sigbench info` shows
    fn = numpy_backend.NumpyBackend().sigmoid("accurate", "float32", "cpu")
    assert not isinstance(fn, numpy_backend.NumbaAccurateSigmoid)
    x = hardest_float32(start_bits)
    for value, got in zip(x.tolist(), fn(x).tolist()):
        assert got == mp_round(value, 24), value


def test_accurate_bfloat16_over_every_input(backend):
    if "bfloat16" not in backend.dtypes("cpu"):
        pytest.skip(f"{backend.name} has no bfloat16")
    pytest.importorskip("ml_dtypes", reason="NumPy needs ml_dtypes (it comes with jax) to hold bfloat16")
    x = accuracy.all_inputs("bfloat16")
    want, _ = accuracy.correctly_rounded(x)
    totals = accuracy.measure_errors(run_sigmoid(backend, "accurate", x), want, x)
    assert totals.correctly_rounded + totals.flushed_subnormals == totals.inputs, totals.row()


def test_grad_reference_matches_mpmath():
    rng = np.random.default_rng(3)
    x = np.concatenate([(rng.standard_normal(2000) * 20), [0.0, 16.6, 17.0, -17.0, 87.0, -87.0]]).astype(np.float32)
    want, _ = accuracy.correctly_rounded(x, "grad")
    for value, got in zip(x.tolist(), want.tolist()):
        with mpmath.workprec(200):
            z = mpmath.exp(-abs(mpmath.mpf(value)))
            true = z / (1 + z) ** 2
        with mpmath.workprec(24):
            assert got == float(+true), value
    x16 = accuracy.all_inputs("float16")
    want16, _ = accuracy.correctly_rounded(x16, "grad")
    normal = np.isfinite(x16) & (want16.astype(np.float64) >= np.finfo(np.float16).tiny)
    values, wants = x16[normal].astype(np.float64).tolist(), want16[normal].astype(np.float64).tolist()
    for value, got in zip(values[::7], wants[::7]):
        assert got == _mp_round_grad(value, 11), value


def _mp_round_grad(x: float, bits: int) -> float:
    with mpmath.workprec(200):
        z = mpmath.exp(-abs(mpmath.mpf(x)))
        value = z / (1 + z) ** 2
    with mpmath.workprec(bits):
        return float(+value)


def _grad(backend, variant: str, x: np.ndarray) -> np.ndarray:
    fn = backend.sigmoid_grad(variant, x.dtype.name)
    return backend.to_numpy(fn(backend.from_numpy(x, "cpu"))).copy()


def test_derivative_vanishes_where_the_sigmoid_rounds_to_1(backend):
    """At x = 17 the float32 sigmoid is 1, so s(1 - s) is exactly 0; the true derivative is 4.1e-8, and the
    stable form gets it within 4 ULPs."""
    x = np.array([17.0, 20.0, 1.0, -17.0], np.float32)
    variants = list(backend.sigmoid_grad_variants())
    framework = _grad(backend, variants[0], x)
    stable = _grad(backend, "stable", x)
    true = np.array([_mp_grad(v) for v in x.tolist()])
    assert framework[0] == 0 and framework[1] == 0 and true[0] > 4e-8
    assert np.all(np.abs(stable - true) <= 4 * np.spacing(true.astype(np.float32)).astype(np.float64))
    assert abs(framework[2] - true[2]) <= 4 * float(np.spacing(np.float32(true[2])))
    assert abs(framework[3] - true[3]) <= 4 * float(np.spacing(np.float32(true[3])))  # s is accurate for x < 0


@pytest.mark.backend("numpy")
def test_measure_errors_finds_where_the_derivative_vanishes():
    backend = need("numpy")
    x = np.arange(np.float32(14), np.float32(18), np.float32(1 / 1024), dtype=np.float32)
    want, _ = accuracy.correctly_rounded(x, "grad")
    totals = accuracy.measure_errors(_grad(backend, "handwritten", x), want, x)
    first_one = float(x[(1 / (1 + np.exp(-x))) == 1][0])  # where the float32 sigmoid first rounds to 1
    assert totals.zero_above == first_one and 16.5 < first_one < 16.7
    assert math.isinf(totals.rel_err_over_1_above)  # s(1 - s) is at most 2x off before it drops to 0


#: (form, backend, target, logit, loss, d loss / d logit) where a form returns the clamp value or 0 exactly.
EXACT_FAILURES = [
    ("Sigmoid+BCELoss", "torch", 0, 17.0, 100.0, 0.0),  # sigmoid rounds to 1: log(1 - 1) clamped, gradient 0
    ("Sigmoid+BCELoss", "torch", 1, -90.0, 100.0, 0.0),  # sigmoid is 0: log 0 clamped; true gradient -1
    ("numpy step", "numpy", 0, 17.0, 100.0, 0.0),
    ("numpy step", "numpy", 1, -90.0, 100.0, 0.0),
    ("jax step", "jax", 1, -90.0, 100.0, 0.0),
]


@pytest.mark.backend(param="name")
@pytest.mark.parametrize("form, name, y, z, loss, grad", EXACT_FAILURES)
def test_bce_forms_return_the_clamp_and_a_zero_gradient(form, name, y, z, loss, grad):
    backend = need(name)
    got_loss, got_grad = backend.bce(form, "float32")(np.array([z], np.float32), float(y))
    assert got_loss[0] == loss and got_grad[0] == grad
    true_loss, true_grad = _mp_bce(z, y)
    assert abs(true_loss - loss) > 1 and abs(true_grad) > 0.99  # far from the truth


@pytest.mark.backend(param="name")
@pytest.mark.parametrize("form, name", [("BCEWithLogitsLoss", "torch"), ("optax", "jax")])
def test_logit_forms_follow_the_true_loss_where_the_tutorial_breaks(form, name):
    backend = need(name)
    z = np.array([17.0, -90.0, -150.0, 0.5, -3.0], np.float32)
    for y in (0, 1):
        got_loss, got_grad = backend.bce(form, "float32")(z, float(y))
        for value, gl, gg in zip(z.tolist(), got_loss.tolist(), got_grad.tolist()):
            true_loss, true_grad = _mp_bce(value, y)
            if true_loss > 1e-3:
                assert abs(gl - true_loss) <= 1e-6 * true_loss, (y, value)
            if abs(true_grad) > 1e-3:
                assert abs(gg - true_grad) <= 1e-6 * abs(true_grad), (y, value)


@pytest.mark.backend("numpy")
def test_numpy_bce_step_is_the_training_steps_loss():
    """The per-element form averages to the hand-written step's own loss (an independent path: the session)."""
    backend = need("numpy")
    from sigbench.core.workloads import TrainConfig, train_start

    start = train_start(TrainConfig(batch=32, hidden=16, dtype="float32"), seed=0)
    session = backend.train_session("handwritten", start, "cpu")
    loss, _ = session.loss_and_grads()
    params = start.params
    hidden = np.maximum(start.x @ params.w1.T + params.b1, 0)
    z = (hidden @ params.w2.T + params.b2).astype(np.float32)
    per_element = [backend.bce("numpy step", "float32")(z[start.y == y], float(y))[0] for y in (0, 1)]
    assert np.concatenate(per_element).mean() == pytest.approx(float(loss), rel=1e-5)


def test_summarise_reports_the_clamp_and_departure():
    z = np.array([-1.0, 0.0, 10.0, 16.0, 17.0, 30.0], np.float32)
    true = np.array([_mp_bce(v, 0)[0] for v in z.tolist()])
    got = true.astype(np.float32).copy()
    got[3] *= np.float32(1.01)  # 1% off
    got[4:] = 100.0
    row = loss.summarise(z, got, true, "float32", "loss")
    assert row["departs_above"] == 16.0 and math.isnan(row["departs_below"])
    assert row["clamp_from"] == 17.0 and row["clamp_to"] == 30.0
    assert row["max_rel_err_typical"] < 1e-6


@pytest.mark.slow
@pytest.mark.meet
def test_accuracy_quantities_write_their_files(tmp_path):
    if not BACKENDS:
        pytest.skip("no backend under test")
    backends = [arg for name in BACKENDS for arg in ("--backend", name)]
    assert main(["accuracy", "--quantity", "grad", "--dtype", "float16", "-o", str(tmp_path / "g"), "-q",
                 *backends]) == 0
    assert (tmp_path / "g" / "accuracy-grad-float16.png").stat().st_size > 1000
    assert main(["accuracy", "--quantity", "loss", "-o", str(tmp_path / "l"), "-q", *backends]) == 0
    import pandas as pd

    table = pd.read_csv(tmp_path / "l" / "accuracy.csv")
    assert set(table["quantity"]) <= {"loss", "dloss"} and set(table["target"]) == {0, 1}
    assert (tmp_path / "l" / "accuracy-loss.png").stat().st_size > 1000
    assert (tmp_path / "l" / "accuracy-dloss.png").stat().st_size > 1000


@pytest.mark.parametrize("argv, fragment", [
    (["--quantity", "loss", "--dtype", "float16"], "--quantity loss takes --dtype float32 or float64"),
    (["--quantity", "loss", "--exhaustive"], "--exhaustive applies to --quantity value and grad"),
])
def test_loss_bad_input_exits_2(argv, fragment, tmp_path, capsys):
    if not BACKENDS:
        pytest.skip("no backend under test")
    assert main(["accuracy", *argv, "-o", str(tmp_path / "a"), "--backend", BACKENDS[0]]) == 2
    assert fragment in capsys.readouterr().err


@pytest.mark.backend("numpy")
def test_numpy_accurate_places_its_output_half_a_page_from_its_input():
    """The numba loop ran 4-5x slower where its output started a multiple of 4 KiB (or 16 bytes more) past its
    input, as malloc placed it after a 4 MiB input ("4K aliasing"): the output is now kept half a page away,
    whatever the input's address, and still reused while the input stays where it is."""
    need("numpy")
    pytest.importorskip("numba")
    from sigbench_backends import numpy_backend

    fn = numpy_backend.NumpyBackend().sigmoid("accurate", "float32", "cpu")
    sample = accuracy.sample_inputs("float32", 5000, seed=11)
    want, _ = accuracy.correctly_rounded(sample)
    room = np.empty(sample.size + 1024, np.float32)
    for shift in (0, 1, 4, 512, 1023):  # the input at every kind of page offset
        x = room[shift:shift + sample.size]
        x[:] = sample
        out = fn(x)
        assert (out.ctypes.data - x.ctypes.data) % 4096 == 2048, shift
        assert ((out == want) | (np.isnan(out) & np.isnan(want))).all(), shift
        assert fn(x) is out  # the same buffer while the input stays
