"""Properties every stable sigmoid keeps, on inputs hypothesis chooses."""
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from conftest import run_sigmoid, usable_variants

STABLE = ("stable", "builtin", "fast")
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _variants(backend):
    return [v for v in usable_variants(backend) if v in STABLE]


def _finite(dtype, max_side=64):
    return arrays(dtype, st.integers(0, max_side), elements=st.floats(-1e4, 1e4, width=np.dtype(dtype).itemsize * 8))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_in_unit_interval_monotone_and_symmetric(backend, dtype):
    @SETTINGS
    @given(_finite(dtype))
    def check(x):
        x = np.sort(x)
        for variant in _variants(backend):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                y = run_sigmoid(backend, variant, x)
                y_neg = run_sigmoid(backend, variant, (-x).astype(dtype))
            assert np.all((y >= 0) & (y <= 1)), variant
            assert np.all(np.diff(y) >= 0), variant
            np.testing.assert_allclose(y_neg, 1 - y, atol=4 * np.finfo(dtype).eps, err_msg=variant)

    check()


def test_dtype_and_shape_kept_for_zero_d_empty_strided_inputs(backend):
    @SETTINGS
    @given(st.sampled_from([(), (0,), (3,), (2, 3), (4, 1, 5)]), st.sampled_from([np.float32, np.float64]),
           st.booleans())
    def check(shape, dtype, strided):
        base = np.linspace(-20, 20, max(1, int(np.prod(shape))) * 2, dtype=dtype)
        if strided and shape:
            x = base[::2][: int(np.prod(shape))].reshape(shape)  # a non-contiguous view's values
            x_view = np.lib.stride_tricks.as_strided(base, shape=(int(np.prod(shape)),),
                                                     strides=(2 * base.itemsize,)).reshape(shape)
            assert np.array_equal(x, x_view)
            x = x_view
        else:
            x = base[: int(np.prod(shape))].reshape(shape) if shape else np.array(base[0], dtype=dtype)
        for variant in _variants(backend):
            y = run_sigmoid(backend, variant, x)
            assert y.shape == x.shape and y.dtype == x.dtype, variant
            from sigbench.reference import sigmoid as exact

            np.testing.assert_allclose(y, exact(x), rtol=8 * np.finfo(dtype).eps, atol=1e-300, err_msg=variant)

    check()
