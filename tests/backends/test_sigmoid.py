import warnings

import numpy as np
import pytest

from conftest import run_sigmoid, usable_variants
from sigbench.core import reference
from sigbench.core.workloads import sigmoid_input
from sigbench.measure.checks import SIGMOID_ULP_TOLERANCE, check_sigmoid, ulp_distance

TUTORIAL_X = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])
TUTORIAL_Y = np.array([0.11920292202211755, 0.2689414213699951, 0.5, 0.7310585786300049, 0.8807970779778823])


def test_reference_sigmoid_known_values_and_extremes():
    np.testing.assert_allclose(reference.sigmoid(TUTORIAL_X), TUTORIAL_Y, rtol=1e-15)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = reference.sigmoid(np.array([-1000.0, 1000.0, -745.0]))
    assert out[0] == 0.0 and out[1] == 1.0 and 0 < out[2] < 1e-300


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("size", [0, 5, 24, 1000, (1 << 18) * 2 + 7])
def test_input_is_drawn_in_chunks_as_in_one_piece(dtype, size):
    from sigbench.core.workloads import SIGMOID_SPECIAL_INPUTS

    want = np.random.default_rng([3, size]).standard_normal(size) * 8.0
    special = SIGMOID_SPECIAL_INPUTS[:size]
    want[: len(special)] = special
    with np.errstate(over="ignore"):
        want = want.astype(dtype)
    got = sigmoid_input(size, dtype, seed=3)
    assert got.dtype == want.dtype and got.shape == (size,)
    assert np.array_equal(got, want)


@pytest.mark.parametrize("variant", ["naive", "stable", "builtin", "fast"])
def test_tutorial_values(backend, variant):
    if variant not in usable_variants(backend):
        pytest.skip(f"{variant}: {backend.sigmoid_variants()[variant]}")
    np.testing.assert_allclose(run_sigmoid(backend, variant, TUTORIAL_X), TUTORIAL_Y, rtol=1e-14)


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_every_variant_matches_float64_reference_and_keeps_dtype_and_shape(backend, dtype):
    x = sigmoid_input(4096, dtype, seed=3).reshape(64, 64)
    for variant in usable_variants(backend):
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            got = run_sigmoid(backend, variant, x)
        assert got.dtype == x.dtype and got.shape == x.shape, variant
        check = check_sigmoid(got, x)
        assert check.passed, f"{variant}: {check.message}"
        assert check.max_ulp <= SIGMOID_ULP_TOLERANCE[dtype]


def test_stable_is_silent_and_saturates_at_plus_minus_1000(backend):
    for dtype in ("float32", "float64"):
        x = np.array([-1000.0, -100.0, 0.0, 100.0, 1000.0], dtype=dtype)
        with warnings.catch_warnings(), np.errstate(over="raise", divide="raise", invalid="raise"):
            warnings.simplefilter("error")
            got = run_sigmoid(backend, "stable", x)
        assert got[0] == 0.0 and got[2] == 0.5 and got[-1] == 1.0
        assert np.all(np.isfinite(got))


@pytest.mark.backend("numpy")
def test_numpy_naive_overflows_and_warns_as_the_tutorial_does():
    from conftest import need

    backend = need("numpy")
    with pytest.warns(RuntimeWarning, match="overflow"):
        got = run_sigmoid(backend, "naive", np.array([-1000.0], dtype=np.float32))
    assert got[0] == 0.0


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_special_inputs(backend, dtype):
    tiny = np.finfo(dtype).tiny
    x = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, tiny / 4, -tiny / 4], dtype=dtype)
    for variant in usable_variants(backend):
        if variant == "naive":
            continue  # 1/(1+exp(inf)) is defined, but the tutorial form makes no promise at -inf in every library
        with np.errstate(all="ignore"):
            got = run_sigmoid(backend, variant, x)
        assert np.isnan(got[0]), variant
        assert got[1] == 1.0 and got[2] == 0.0, variant
        assert got[3] == 0.5 and got[4] == 0.5 and got[5] == 0.5 and got[6] == 0.5, variant


def test_empty_and_zero_d_inputs(backend):
    for variant in usable_variants(backend):
        empty = run_sigmoid(backend, variant, np.zeros(0, dtype=np.float32))
        assert empty.shape == (0,) and empty.dtype == np.float32
        scalar = run_sigmoid(backend, variant, np.array(0.0, dtype=np.float32))
        assert scalar.shape == () and scalar == 0.5


def test_fast_variant_reuses_its_buffer_but_gives_right_values(backend):
    x1 = sigmoid_input(1 << 17, "float32", seed=1)
    x2 = sigmoid_input(1 << 17, "float32", seed=2)
    fn = backend.sigmoid("fast", "float32", "cpu")
    first = backend.to_numpy(fn(backend.from_numpy(x1, "cpu"))).copy()
    second = backend.to_numpy(fn(backend.from_numpy(x2, "cpu"))).copy()
    assert check_sigmoid(first, x1).passed and check_sigmoid(second, x2).passed


@pytest.mark.backend("numpy")
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_numpy_fast_three_passes_and_the_blocks_that_overflow(monkeypatch, dtype):
    """With L2 made 16 KiB (blocks of 4,096 elements, the least), NumPy's fast takes e^x / (1 + e^x) block by block;
    in the blocks holding x = 100, +inf, -inf and NaN (the third, and the first, where the input's special values
    are) e^x overflows and a fourth pass writes 1 there. Every value passes the check against float64, the
    specials are exact, and the other values of every block are e^x / (1 + e^x)."""
    from sigbench.core import blocking
    from sigbench_backends import numpy_backend

    monkeypatch.setattr(blocking, "l2_cache_bytes", lambda: 16 << 10)
    backend = numpy_backend.NumpyBackend()
    backend.set_threads(1)
    step = numpy_backend._block_elements(np.dtype(dtype).itemsize)
    x = sigmoid_input(5 * step + 17, dtype, seed=4)
    x[2 * step + 5: 2 * step + 9] = [100, np.inf, -np.inf, np.nan]
    got = backend.sigmoid("fast", dtype, "cpu")(x)
    assert check_sigmoid(got, x).passed
    assert got[2 * step + 5] == got[2 * step + 6] == 1 and got[2 * step + 7] == 0 and np.isnan(got[2 * step + 8])
    if dtype != "float16":  # float16 keeps the four passes throughout
        with np.errstate(over="ignore", invalid="ignore"):
            e = np.exp(x)
            want = e / (e + 1)
        want[np.isposinf(e)] = 1
        np.testing.assert_array_equal(got, want)
        assert not np.array_equal(got[step:], numpy_backend.sigmoid_naive(x[step:]))  # not the four passes
    else:
        np.testing.assert_array_equal(got, numpy_backend.sigmoid_naive(x))


# --- ULP distance ------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_ulp_distance_counts_neighbours(dtype):
    one = np.array([1.0], dtype=dtype)
    up = np.nextafter(one, np.array([2.0], dtype=dtype))
    down = np.nextafter(one, np.array([0.0], dtype=dtype))
    assert ulp_distance(up, one)[0] == 1
    assert ulp_distance(down, up)[0] == 2
    assert ulp_distance(one, one)[0] == 0


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_ulp_distance_signed_zero_subnormals_and_nan(dtype):
    zero, negzero = np.array([0.0], dtype=dtype), np.array([-0.0], dtype=dtype)
    smallest = np.array([np.finfo(dtype).smallest_subnormal], dtype=dtype)
    tiny = np.array([np.finfo(dtype).tiny], dtype=dtype)
    assert ulp_distance(zero, negzero)[0] == 0
    assert ulp_distance(smallest, -smallest)[0] == 2
    assert ulp_distance(smallest, zero)[0] == 1
    # the largest subnormal and the smallest normal are neighbours
    assert ulp_distance(np.nextafter(tiny, zero), tiny)[0] == 1
    mantissa = np.finfo(dtype).nmant
    assert ulp_distance(tiny, zero)[0] == 2**mantissa
    nan = np.array([np.nan], dtype=dtype)
    assert ulp_distance(nan, nan)[0] == 0
    assert ulp_distance(nan, zero)[0] == np.inf


def test_ulp_distance_float64_large_distances_are_exact():
    a = np.array([1.0])
    b = np.array([2.0])
    assert ulp_distance(a, b)[0] == 2**52
    assert ulp_distance(np.array([-1.0]), a)[0] == 2 * (np.array([1.0]).view(np.int64)[0])
