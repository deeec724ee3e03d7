"""softmax, linear and the masks, against torch and finite differences."""
import tracemalloc

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
    # each argument the message names is named exactly (a misspelt name fails) — issue 34
    (lambda: softmax_forward(np.float64(2.0)), ["x must have at least 1 dimensions", "()"]),
    (lambda: softmax_forward(np.ones((2, 3)), mask=np.ones(3)), ["mask must be a boolean"]),
    (lambda: softmax_forward(np.ones((2, 3)), axis=-3), ["axis -3 is out of range", "(2, 3)"]),
    (lambda: linear_forward(np.ones((2, 3, 4)), np.ones((3, 5))),
     ["x dim -1 (4) must equal W dim 0 (3)", "x(2, 3, 4)", "W(3, 5)"]),
    (lambda: linear_forward(np.ones((2, 3)), np.ones((3, 5, 1))), ["W must be 2-D"]),
    (lambda: linear_forward(np.float64(2.0), np.ones((1, 5))), ["x must have at least 1 dimensions"]),
    (lambda: linear_forward(np.array([["a"]]), np.ones((1, 5))), ["x must be a floating"]),
    (lambda: linear_forward(np.ones((2, 3)), np.ones((3, 5)), np.ones((5, 1))), ["b must be 1-D"]),
    (lambda: linear_forward(np.ones((2, 3)), np.ones((3, 5)), np.ones(4)),
     ["b dim 0 (4) must equal W dim 1 (5)", "b(4,)"]),
    (lambda: padding_mask(np.array([[1, 2]]), 5), ["lengths must be a 1-D integer array", "(1, 2)"]),
    (lambda: padding_mask(np.array([1.0, 2.0]), 5), ["lengths must be a 1-D integer", "float64"]),
    (lambda: padding_mask(np.array([-1, 2]), 5), ["lengths must lie in [0, T=5]", "[-1, 2]"]),
    (lambda: causal_mask(3, 0), ["Tq and Tk must be positive", "Tk=0"]),
])
def test_bad_input_raises_value_error_naming_argument(call, words):
    with pytest.raises(ValueError) as info:
        call()
    for w in words:
        assert w in str(info.value)


def test_backward_checks_dy_naming_it():
    y, cache = softmax_forward(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"^dy must have the forward output's shape \(2, 3\)"):
        softmax_backward(np.ones((3, 2)), cache)
    y, cache = linear_forward(np.ones((2, 3)), np.ones((3, 5)))
    with pytest.raises(ValueError, match=r"^dy must have the forward output's shape \(2, 5\)"):
        linear_backward(np.ones((2, 4)), cache)


def test_softmax_of_a_vector_and_an_empty_axis():
    y, _ = softmax_forward(np.log([1.0, 3.0]))                  # 1-D: [1/4, 3/4]
    np.testing.assert_allclose(y, [0.25, 0.75], rtol=1e-15)
    y, cache = softmax_forward(np.zeros((2, 0)))                # no keys: an empty y
    assert y.shape == (2, 0)
    assert softmax_backward(np.zeros((2, 0)), cache).shape == (2, 0)
    y, _ = softmax_forward(np.zeros((0, 3)), axis=0)
    assert y.shape == (0, 3)


def test_softmax_shifts_each_row_by_its_own_max():
    """Rows a thousand apart: a shift by the global max would underflow every row but one."""
    x = np.array([[-1000.0, -1001.0], [1000.0, 999.0], [0.0, -1.0]])
    y, _ = softmax_forward(x)
    want = 1 / (1 + np.exp(-1.0))
    np.testing.assert_allclose(y, [[want, 1 - want]] * 3, rtol=1e-14)
    y, _ = softmax_forward(x.T, axis=0)
    np.testing.assert_allclose(y.T, [[want, 1 - want]] * 3, rtol=1e-14)


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_softmax_computes_float32_in_float32(dtype):
    """float32 is computed in float32 and float16 in float32 (compute_dtype), not in float64:
    bit for bit the formula evaluated in float32."""
    x = (3 * np.random.default_rng(2).standard_normal((7, 9))).astype(dtype)
    y, _ = softmax_forward(x)
    xc = x.astype(np.float32)
    e = np.exp(xc - xc.max(axis=-1, keepdims=True))
    np.testing.assert_array_equal(y, (e / e.sum(axis=-1, keepdims=True)).astype(dtype))
    assert y.dtype == dtype


def test_masks_at_their_edges():
    np.testing.assert_array_equal(causal_mask(3, 1), [[True], [True], [True]])
    np.testing.assert_array_equal(causal_mask(1, 1), [[True]])
    np.testing.assert_array_equal(padding_mask(np.array([0, 1, 3]), 3),
                                  [[False, False, False], [True, False, False], [True, True, True]])


def test_linear_of_a_vector():
    """x (d_in,): y = x W + b (d_out,), and the gradients keep x's shape."""
    x, W, b = np.array([1.0, 2.0]), np.array([[1.0, 0.0, 2.0], [0.0, 1.0, 3.0]]), np.ones(3)
    y, cache = linear_forward(x, W, b)
    np.testing.assert_array_equal(y, [2.0, 3.0, 9.0])
    dx, dW, db = linear_backward(np.array([1.0, 0.0, 1.0]), cache)
    np.testing.assert_array_equal(dx, [3.0, 3.0])
    np.testing.assert_array_equal(dW, [[1.0, 0.0, 1.0], [2.0, 0.0, 2.0]])
    np.testing.assert_array_equal(db, [1.0, 0.0, 1.0])


def test_linear_bias_gradient_sums_over_every_leading_axis():
    rng = np.random.default_rng(3)
    x, W, b = randn(rng, (2, 3, 4)), randn(rng, (4, 5)), randn(rng, (5,))
    y, cache = linear_forward(x, W, b)
    dy = randn(rng, y.shape)
    dx, dW, db = linear_backward(dy, cache)
    np.testing.assert_allclose(y, np.einsum("btd,de->bte", x, W) + b, rtol=1e-13)
    np.testing.assert_allclose(db, dy.sum(axis=(0, 1)), rtol=1e-13)
    np.testing.assert_allclose(dW, np.einsum("btd,bte->de", x, dy), rtol=1e-13)
    np.testing.assert_allclose(dx, dy @ W.T, rtol=1e-13)


def _peak_bytes(call) -> int:
    """The most memory (NumPy arrays included: NumPy reports to tracemalloc) held at once
    while ``call()`` runs, above what was held before."""
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        call()
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        if not was_tracing:
            tracemalloc.stop()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_makes_no_needless_copy(dtype):
    """The forward holds at most two arrays of x's size at once (x − m and e, then e and y):
    x is not copied to the compute dtype when it already has it, nor y to x's dtype; the
    backward needs one (NumPy reuses the temporary dy − Σ dy·y for the product)."""
    x = randn(np.random.default_rng(0), (400, 300), dtype)
    cache = {}
    peak = _peak_bytes(lambda: cache.update(fwd=softmax_forward(x)))
    assert peak < 2.5 * x.nbytes, peak / x.nbytes
    dy = np.ones_like(x)
    peak = _peak_bytes(lambda: softmax_backward(dy, cache["fwd"][1]))
    assert peak < 1.5 * x.nbytes, peak / x.nbytes
