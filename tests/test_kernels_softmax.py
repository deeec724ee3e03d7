"""kernels.softmax / softmax_backward against attention_np.core (NumPy) and torch autograd."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from attention_np.core import softmax_backward as np_softmax_backward
from attention_np.core import softmax_forward as np_softmax_forward
from attention_np.kernels import softmax, softmax_backward
from tests.helpers import assert_close, assert_matches_torch, check_finite_differences
from tests.strategies import dtypes, examples, randn, seeds


def _ours(axis):
    def ours(x):
        y = softmax(x, axis)
        return y, lambda dy: {"x": softmax_backward(y, dy, axis)}
    return ours


@st.composite
def shapes_and_axis(draw):
    shape = tuple(draw(st.lists(st.integers(1, 9), min_size=1, max_size=4)))
    return shape, draw(st.integers(-len(shape), len(shape) - 1))


@examples(ci=40, thorough=10_000)
@given(shapes_and_axis(), dtypes, seeds)
def test_softmax_matches_torch_and_numpy(shape_axis, dtype, seed):
    import torch
    shape, axis = shape_axis
    rng = np.random.default_rng(seed)
    x = randn(rng, shape, dtype, scale=4.0)
    assert_matches_torch("kernels.softmax", _ours(axis), lambda x: torch.softmax(x, axis),
                         {"x": x}, grad_wrt=["x"], seed=seed)
    y_ref, cache = np_softmax_forward(x, axis)
    y_true, cache_true = np_softmax_forward(x.astype(np.float64), axis)   # float32's yardstick
    y = softmax(x, axis)
    assert_close("softmax vs numpy", y, y_ref, dtype, truth=y_true)
    dy = randn(rng, shape, dtype)
    assert_close("softmax_backward vs numpy", softmax_backward(y, dy, axis),
                 np_softmax_backward(dy, cache), dtype,
                 truth=np_softmax_backward(dy.astype(np.float64), cache_true))


def test_softmax_finite_differences():
    rng = np.random.default_rng(1)
    check_finite_differences(_ours(1), {"x": rng.standard_normal((3, 5, 4))}, ["x"])


def test_softmax_large_rows_and_extreme_values():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((5, 4099)).astype(np.float32) * 30
    x[0, 7] = 1e4                                     # one dominant entry
    x[1] = -1e4                                       # all equal and very negative
    y = softmax(x)
    np.testing.assert_allclose(y, np_softmax_forward(x)[0], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(y.sum(-1), 1, rtol=1e-5)
    assert y[0, 7] == 1 and y.dtype == np.float32


def test_softmax_non_contiguous_and_int_inputs():
    x = np.arange(24).reshape(4, 6).T                 # int, Fortran order
    y = softmax(x, axis=0)
    assert y.dtype == np.float64 and y.flags.c_contiguous
    np.testing.assert_allclose(y, np_softmax_forward(x.astype(float), 0)[0], rtol=1e-12)
    assert softmax(np.zeros((2, 0, 3), np.float32), 1).shape == (2, 0, 3)


def test_float16_is_computed_in_float32_and_cast_back():
    """float16 in → the float32 result rounded once to float16 (not computed in float64 and cast
    straight down: the two differ by double rounding in a few of these 65536 entries)."""
    rng = np.random.default_rng(0)
    x = rng.normal(0.0, 3.0, (64, 1024)).astype(np.float16)
    dy = rng.standard_normal((64, 1024)).astype(np.float16)
    for axis in (-1, 0):                              # the last-axis and the middle-axis kernel
        y = softmax(x, axis)
        assert y.dtype == np.float16
        np.testing.assert_array_equal(y, softmax(x.astype(np.float32), axis).astype(np.float16))
        dx = softmax_backward(y, dy, axis)
        assert dx.dtype == np.float16
        want = softmax_backward(y.astype(np.float32), dy.astype(np.float32), axis)
        np.testing.assert_array_equal(dx, want.astype(np.float16))


def test_softmax_backward_computes_dy_in_y_dtype():
    """A float64 dy with a float32 y is rounded to float32 first: the kernel never mixes dtypes."""
    rng = np.random.default_rng(1)
    y = softmax(rng.standard_normal((3, 7)).astype(np.float32))
    dy = rng.standard_normal((3, 7))                  # float64, not representable in float32
    for axis in (-1, 0):
        dx = softmax_backward(y, dy, axis)
        assert dx.dtype == np.float32
        np.testing.assert_array_equal(dx, softmax_backward(y, dy.astype(np.float32), axis))


def test_softmax_allocates_only_its_output():
    """float64 in, float64 out: the wrapper returns the kernel's output array, no second copy."""
    import tracemalloc
    rng = np.random.default_rng(2)
    x = rng.standard_normal((16, 256))
    y = softmax(x)
    softmax_backward(y, x)                            # compiled before measuring
    for run in (lambda: softmax(x), lambda: softmax_backward(y, x)):
        tracemalloc.start()
        try:
            out = run()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert out.dtype == np.float64 and peak < 1.5 * out.nbytes, peak / out.nbytes


@pytest.mark.parametrize("call, message", [
    (lambda: softmax(np.zeros((2, 3)), axis=2),
     "axis 2 is out of range for an array of shape (2, 3)"),
    (lambda: softmax(np.array(["a"])), "x must be a floating-point array, got dtype <U1"),
    (lambda: softmax(np.float64(1.0)), "x must have at least 1 dimensions, got shape ()"),
    (lambda: softmax(np.zeros(3), mask=np.ones(3)),
     "mask must be a boolean array (True = may attend), got dtype float64 with shape (3,)"),
    (lambda: softmax(np.zeros((2, 3)), mask=np.ones(2, bool)),
     "mask with shape (2,) is not broadcastable to (2, 3)"),
    (lambda: softmax_backward(np.zeros((2, 3)), np.zeros((3, 2))),
     "dy must have y's shape (2, 3), got (3, 2)"),
    (lambda: softmax_backward(np.float64(1.0), np.float64(1.0)),
     "y must have at least 1 dimensions, got shape ()"),
    (lambda: softmax_backward(np.zeros(3), np.zeros(3, complex)),
     "dy must be a floating-point array, got dtype complex128"),
])
def test_softmax_errors_name_the_argument(call, message):
    """The whole message, so that a misspelt argument name is caught too."""
    with pytest.raises(ValueError) as info:
        call()
    assert str(info.value) == message
