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


def test_softmax_errors_name_the_argument():
    with pytest.raises(ValueError, match="axis"):
        softmax(np.zeros((2, 3)), axis=2)
    with pytest.raises(ValueError, match="dy"):
        softmax_backward(np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="x"):
        softmax(np.array(["a"]))
