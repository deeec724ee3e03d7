"""softmax, linear and the masks, against torch and finite differences."""
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from attention_np import (causal_mask, linear_backward, linear_forward, padding_mask,
                          softmax_backward, softmax_forward)
from tests.helpers import assert_matches_torch, check_finite_differences
from tests.strategies import alive_rows, distinct_dims, dtypes, randn, random_mask, seeds


def softmax_pair(axis=-1, mask=None):
    def ours(x):
        y, cache = softmax_forward(x, axis=axis, mask=mask)
        return y, lambda dy: {"x": softmax_backward(dy, cache)}
    return ours


def torch_masked_softmax(x, mask, axis=-1):
    # torch fills masked entries with -inf; fully masked rows are given all-True (compared elsewhere)
    m = torch.from_numpy(mask | ~mask.any(axis=axis, keepdims=True))
    return torch.softmax(x.masked_fill(~m, float("-inf")), dim=axis)


@given(dims=distinct_dims(3), axis=st.integers(-3, 2), dtype=dtypes, seed=seeds)
def test_softmax_matches_torch_any_axis(dims, axis, dtype, seed):
    x = randn(np.random.default_rng(seed), dims, dtype, scale=3.0)
    assert_matches_torch("softmax", softmax_pair(axis), lambda x: torch.softmax(x, dim=axis),
                         {"x": x}, ["x"], seed=seed)


@given(dims=distinct_dims(3), dtype=dtypes, seed=seeds)
def test_masked_softmax_matches_torch_and_dead_rows_are_zero(dims, dtype, seed):
    rng = np.random.default_rng(seed)
    x, mask = randn(rng, dims, dtype, 3.0), random_mask(rng, dims)
    y, cache = softmax_forward(x, mask=mask)
    assert np.all(y[~mask] == 0)
    np.testing.assert_allclose(y.sum(-1), alive_rows(mask)[..., 0].astype(float), atol=1e-5)
    assert np.all(softmax_backward(randn(rng, dims, dtype), cache)[~mask] == 0)
    assert_matches_torch("softmax (masked)", softmax_pair(mask=mask),
                         lambda x: torch_masked_softmax(x, mask), {"x": x}, ["x"],
                         out_rows=alive_rows(mask), seed=seed)


def test_softmax_finite_differences():
    rng = np.random.default_rng(0)
    x, mask = randn(rng, (3, 4, 5)), random_mask(rng, (3, 4, 5))
    check_finite_differences(softmax_pair(mask=mask), {"x": x}, ["x"])
    check_finite_differences(softmax_pair(axis=1), {"x": randn(rng, (3, 4, 5))}, ["x"])


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_softmax_huge_logits_and_half_precision_stay_finite(dtype):
    x = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [5e3, 5e3, -5e3]]).astype(dtype)
    y, cache = softmax_forward(x)
    assert y.dtype == dtype and np.all(np.isfinite(y))
    np.testing.assert_allclose(y.astype(float), [[1, 0, 0], [1 / 3] * 3, [.5, .5, 0]], atol=1e-3)
    assert np.all(np.isfinite(softmax_backward(np.ones_like(x), cache)))


def linear_pair(has_bias):
    def ours(x, W, b=None):
        y, cache = linear_forward(x, W, b)
        return y, lambda dy: dict(zip(("x", "W", "b"), linear_backward(dy, cache)))
    return ours


@given(dims=distinct_dims(4), bias=st.booleans(), dtype=dtypes, seed=seeds)
def test_linear_matches_torch(dims, bias, dtype, seed):
    rng = np.random.default_rng(seed)
    B, T, d_in, d_out = dims
    inputs = {"x": randn(rng, (B, T, d_in), dtype), "W": randn(rng, (d_in, d_out), dtype)}
    if bias:
        inputs["b"] = randn(rng, (d_out,), dtype)
    assert_matches_torch("linear", linear_pair(bias),
                         lambda x, W, b=None: x @ W + (0 if b is None else b),
                         inputs, list(inputs), seed=seed)


def test_linear_without_bias_returns_db_none_and_passes_finite_differences():
    rng = np.random.default_rng(1)
    x, W = randn(rng, (2, 3, 4)), randn(rng, (4, 5))
    y, cache = linear_forward(x, W)
    assert linear_backward(np.ones_like(y), cache)[2] is None
    check_finite_differences(linear_pair(True), {"x": x, "W": W, "b": randn(rng, (5,))},
                             ["x", "W", "b"])


def test_causal_mask_matches_torch_is_causal_convention():
    for Tq, Tk in [(4, 4), (3, 6), (6, 3), (1, 5)]:
        ref = torch.ones(Tq, Tk, dtype=torch.bool).tril(diagonal=0).numpy()
        np.testing.assert_array_equal(causal_mask(Tq, Tk), ref)
    assert causal_mask(3).shape == (3, 3)


def test_padding_mask():
    m = padding_mask(np.array([3, 0, 5]), 5)
    np.testing.assert_array_equal(m.sum(1), [3, 0, 5])
    assert m.dtype == np.bool_ and m[0, 2] and not m[0, 3]


@pytest.mark.parametrize("call, words", [
    (lambda: softmax_forward(np.ones((2, 3)), mask=np.ones((2, 3))), ["mask", "boolean"]),
    (lambda: softmax_forward(np.ones((2, 3)), mask=np.ones((4, 3), bool)), ["mask", "(4, 3)"]),
    (lambda: softmax_forward(np.ones((2, 3)), axis=2), ["axis", "(2, 3)"]),
    (lambda: softmax_forward(np.array(["a"])), ["x", "dtype"]),
    (lambda: linear_forward(np.ones((2, 3)), np.ones((4, 5))), ["x", "W", "(2, 3)", "(4, 5)"]),
    (lambda: linear_forward(np.ones((2, 3)), np.ones(3)), ["W", "2-D"]),
    (lambda: linear_forward(np.ones((2, 3)), np.ones((3, 4)), np.ones(5)), ["b", "(5,)"]),
    (lambda: padding_mask(np.array([1, 7]), 5), ["lengths"]),
    (lambda: causal_mask(0, 3), ["Tq"]),
])
def test_bad_input_raises_value_error_naming_argument(call, words):
    with pytest.raises(ValueError) as info:
        call()
    for w in words:
        assert w in str(info.value)
