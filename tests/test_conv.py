"""conv2d (im2col) and max_pool2d against torch.nn.functional, plus finite differences."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from attention_np.nn.conv import (conv2d_backward, conv2d_forward, max_pool2d_backward,
                               max_pool2d_forward)
from tests.helpers import assert_matches_torch, check_finite_differences
from tests.strategies import dtypes, randn, seeds


def _conv(stride, padding, bias=True):
    def ours(x, W, b=None):
        y, cache = conv2d_forward(x, W, b if bias else None, stride=stride, padding=padding)

        def backward(dy):
            dx, dW, db = conv2d_backward(dy, cache)
            return {"x": dx, "W": dW, "b": db}
        return y, backward
    return ours


def _pool(kernel, stride, padding):
    def ours(x):
        y, cache = max_pool2d_forward(x, kernel, stride, padding)
        return y, lambda dy: {"x": max_pool2d_backward(dy, cache)}
    return ours


@st.composite
def conv_cases(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    H = draw(st.integers(max(1, kh - 2 * padding[0]), 9))
    W = draw(st.integers(max(1, kw - 2 * padding[1]), 9))
    N, C, F = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 5))
    return (N, C, H, W), (F, C, kh, kw), stride, padding


@given(case=conv_cases(), dtype=dtypes, seed=seeds, bias=st.booleans())
def test_conv2d_matches_torch(case, dtype, seed, bias):
    import torch.nn.functional as tf
    x_shape, w_shape, stride, padding = case
    rng = np.random.default_rng(seed)
    inputs = {"x": randn(rng, x_shape, dtype), "W": randn(rng, w_shape, dtype),
              "b": randn(rng, w_shape[:1], dtype)}
    grad_wrt = ["x", "W", "b"] if bias else ["x", "W"]
    assert_matches_torch("conv2d", _conv(stride, padding, bias),
                         lambda x, W, b: tf.conv2d(x, W, b if bias else None, stride, padding),
                         inputs, grad_wrt)


@st.composite
def pool_cases(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2)))
    H, W = draw(st.integers(kh, 10)), draw(st.integers(kw, 10))
    return (draw(st.integers(1, 3)), draw(st.integers(1, 4)), H, W), (kh, kw), stride, padding


@given(case=pool_cases(), dtype=dtypes, seed=seeds)
def test_max_pool2d_matches_torch(case, dtype, seed):
    import torch.nn.functional as tf
    shape, kernel, stride, padding = case
    # distinct values: no ties, so the argmax (and the gradient) is unambiguous
    x = np.random.default_rng(seed).permutation(np.prod(shape)).reshape(shape).astype(dtype)
    assert_matches_torch("max_pool2d", _pool(kernel, stride, padding),
                         lambda x: tf.max_pool2d(x, kernel, stride, padding), {"x": x / x.size},
                         ["x"])


def test_conv2d_finite_differences():
    rng = np.random.default_rng(1)
    inputs = {"x": randn(rng, (2, 3, 7, 6)), "W": randn(rng, (4, 3, 3, 2)), "b": randn(rng, (4,))}
    check_finite_differences(_conv((2, 1), (1, 0)), inputs, ["x", "W", "b"])


def test_max_pool2d_finite_differences():
    x = np.random.default_rng(2).permutation(2 * 3 * 8 * 7).reshape(2, 3, 8, 7) / 50.0
    check_finite_differences(_pool(3, 2, 1), {"x": x}, ["x"])


def test_overlapping_windows_accumulate():
    """Stride 1 with a 3×3 kernel: an interior pixel is read by 9 windows, so with W = 1 and
    dy = 1 its gradient is 9 (and 4 in a corner without padding)."""
    x = np.zeros((1, 1, 5, 5))
    _, cache = conv2d_forward(x, np.ones((1, 1, 3, 3)))
    dx, _, _ = conv2d_backward(np.ones((1, 1, 3, 3)), cache)
    assert dx[0, 0, 2, 2] == 9 and dx[0, 0, 0, 0] == 1 and dx[0, 0, 1, 1] == 4


def test_shape_errors_name_the_argument():
    with pytest.raises(ValueError, match="x dim 1"):
        conv2d_forward(np.zeros((1, 2, 4, 4)), np.zeros((3, 1, 3, 3)))
    with pytest.raises(ValueError, match="kernel size"):
        conv2d_forward(np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 3, 3)))
    with pytest.raises(ValueError, match="padding"):
        max_pool2d_forward(np.zeros((1, 1, 4, 4)), 2, padding=2)
    with pytest.raises(ValueError, match="x must be 4-D"):
        max_pool2d_forward(np.zeros((4, 4)), 2)
