"""Embedding, layer norm, dropout, masked mean pooling, positional encoding and initialisers."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import example, given
from hypothesis import strategies as st

from attention_np.nn.layers import (dropout_backward, dropout_forward, embedding_backward,
                                    embedding_forward, layer_norm_backward, layer_norm_forward,
                                    masked_mean_backward, masked_mean_forward)
from tests.helpers import assert_matches_torch, check_finite_differences, layer_norm_condition
from tests.strategies import distinct_dims, dtypes, randn, seeds

DTYPES = st.sampled_from([np.float64, np.float32])


@st.composite
def leading_shapes(draw):
    """Leading axes (B, ...) with B > 1: e.g. (3,), (2, 5), (4, 1, 3)."""
    return (draw(st.integers(2, 4)),) + tuple(draw(st.lists(st.integers(1, 5), max_size=2)))


# --- embedding -------------------------------------------------------------------------------

def _embedding(ids, W):
    x, cache = embedding_forward(ids, W)
    return x, lambda dx: {"W": embedding_backward(dx, cache)}


@given(lead=leading_shapes(), V=st.integers(1, 9), d=st.integers(1, 7), dtype=DTYPES,
       seed=st.integers(0, 2 ** 32 - 1))
def test_embedding_matches_torch(lead, V, d, dtype, seed):
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, V, size=lead)               # repeated ids must accumulate in dW
    W = rng.standard_normal((V, d)).astype(dtype)
    assert_matches_torch("embedding", _embedding, lambda ids, W: F.embedding(ids, W),
                         {"ids": ids, "W": W}, grad_wrt=["W"])
    if dtype == np.float64:
        check_finite_differences(_embedding, {"ids": ids, "W": W}, grad_wrt=["W"])


def test_embedding_rejects_bad_ids():
    W = np.zeros((4, 3))
    with pytest.raises(ValueError, match=r"ids must lie in \[0, V=4\).*\(4, 3\).*\[0, 4\]"):
        embedding_forward(np.array([0, 4]), W)
    with pytest.raises(ValueError, match="ids must lie"):
        embedding_forward(np.array([[-1, 2]]), W)
    with pytest.raises(ValueError, match="ids must be an integer array"):
        embedding_forward(np.array([0.0, 1.0]), W)
    with pytest.raises(ValueError, match="W must be 2-D"):
        embedding_forward(np.array([0]), np.zeros(4))
    _, cache = embedding_forward(np.array([0, 1]), W)
    with pytest.raises(ValueError, match=r"dx must have .*\(2, 3\)"):
        embedding_backward(np.zeros((2, 4)), cache)


def test_embedding_float32_gradient_sums_in_float32_after_casting_dx():
    """dx is cast to W's dtype first and float32 rows are summed in float32, in id order."""
    f32 = np.float32
    _, cache = embedding_forward(np.zeros(3, dtype=np.int64), np.ones((1, 1), f32))
    tiny = 2.0 ** -24                                 # half an ulp of 1.0 in float32
    dx = np.array([[1.0], [tiny + 2.0 ** -50], [tiny]])   # float64: rounds down in float32
    want = f32(1.0) + f32(dx[1, 0]) + f32(dx[2, 0])    # float32 additions: ties stay at 1
    dW = embedding_backward(dx, cache)
    assert dW.dtype == f32 and dW[0, 0] == want


# --- layer norm ------------------------------------------------------------------------------

def _layer_norm(x, gamma, beta):
    y, cache = layer_norm_forward(x, gamma, beta)
    return y, lambda dy: dict(zip(("x", "gamma", "beta"), layer_norm_backward(dy, cache)))


def _layer_norm_inputs(rng, shape, dtype, spread=3.0):
    x = rng.standard_normal(shape) * spread + rng.standard_normal()
    gamma, beta = rng.standard_normal((2, shape[-1]))
    return {"x": x.astype(dtype), "gamma": gamma.astype(dtype), "beta": beta.astype(dtype)}


@given(lead=leading_shapes(), d=st.integers(2, 9), dtype=DTYPES, seed=st.integers(0, 2 ** 32 - 1))
@example(lead=(2, 2, 5), d=2, dtype=np.float32, seed=209143456)   # once flaky: ill-conditioned
@example(lead=(4, 4), d=2, dtype=np.float32, seed=4)              # rows (σ = 0.024), float32
def test_layer_norm_matches_torch(lead, d, dtype, seed):
    inputs = _layer_norm_inputs(np.random.default_rng(seed), lead + (d,), dtype)
    assert_matches_torch("layer_norm", _layer_norm,
                         lambda x, gamma, beta: F.layer_norm(x, (d,), gamma, beta, eps=1e-5),
                         inputs, grad_wrt=["x", "gamma", "beta"],
                         # dx carries a 1/σ factor: with d = 2 a row's σ can be tiny, and
                         # float32 rounding of the row's mean is amplified by it.
                         cond=layer_norm_condition(inputs["x"]))
    if dtype == np.float64:
        check_finite_differences(_layer_norm, inputs, grad_wrt=["x", "gamma", "beta"])


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_layer_norm_extreme_inputs_are_finite(dtype):
    x = np.array([[-1e4, 1e4, 0.0, 5.0], [3.0, 3.0, 3.0, 3.0]], dtype=dtype)   # 2nd row: σ = 0
    y, cache = layer_norm_forward(x, np.ones(4, dtype), np.zeros(4, dtype))
    grads = layer_norm_backward(np.ones_like(x), cache)
    assert y.dtype == dtype and all(g.dtype == dtype for g in grads)
    assert np.all(np.isfinite(y)) and all(np.all(np.isfinite(g)) for g in grads)
    want = F.layer_norm(torch.from_numpy(x.astype(np.float64)), (4,)).numpy()
    np.testing.assert_allclose(y.astype(np.float64), want, rtol=2e-3, atol=2e-3)


def test_layer_norm_rejects_bad_input():
    x = np.zeros((2, 4))
    with pytest.raises(ValueError, match=r"gamma dim 0 \(3\) must equal x dim -1 \(4\)"):
        layer_norm_forward(x, np.ones(3), np.zeros(4))
    with pytest.raises(ValueError) as info:
        layer_norm_forward(x, np.ones(4), np.zeros(5))
    assert str(info.value) == "beta dim 0 (5) must equal x dim -1 (4); got beta(5,) and x(2, 4)"
    with pytest.raises(ValueError) as info:
        layer_norm_forward(np.float64(1.0), np.ones(1), np.zeros(1))       # 0-D x
    assert str(info.value) == "x must have at least 1 dimensions, got shape ()"
    with pytest.raises(ValueError, match="eps must be positive"):
        layer_norm_forward(x, np.ones(4), np.zeros(4), eps=0.0)
    with pytest.raises(ValueError, match=r"x must have at least one feature.*\(2, 0\)"):
        layer_norm_forward(np.zeros((2, 0)), np.ones(0), np.zeros(0))
    _, cache = layer_norm_forward(x, np.ones(4), np.zeros(4))
    with pytest.raises(ValueError, match=r"dy must have .*\(2, 4\)"):
        layer_norm_backward(np.zeros((4, 2)), cache)


def test_layer_norm_one_row_and_empty_leading_axes():
    """A 1-D x is one row; leading axes of size 0 give an empty result, not an error."""
    rng = np.random.default_rng(0)
    x, gamma, beta = rng.standard_normal((3, 5))
    y, cache = layer_norm_forward(x, gamma, beta)
    y2, cache2 = layer_norm_forward(x[None], gamma, beta)
    np.testing.assert_array_equal(y, y2[0])
    dy = rng.standard_normal(5)
    for g, g2 in zip(layer_norm_backward(dy, cache), layer_norm_backward(dy[None], cache2)):
        np.testing.assert_array_equal(g, g2[0] if g2.ndim == 2 else g2)
    y, cache = layer_norm_forward(np.zeros((2, 0, 5)), gamma, beta)
    assert y.shape == (2, 0, 5)
    dx, dgamma, dbeta = layer_norm_backward(np.zeros((2, 0, 5)), cache)
    assert dx.shape == (2, 0, 5) and np.array_equal(dgamma, np.zeros(5)) \
        and np.array_equal(dbeta, np.zeros(5))


@pytest.mark.parametrize("wide", ["x", "gamma", "beta"])
def test_layer_norm_promotes_to_the_widest_input_dtype(wide):
    """The output dtype is that of x, gamma and beta together: one float64 makes it float64."""
    inputs = _layer_norm_inputs(np.random.default_rng(1), (3, 4), np.float32)
    inputs[wide] = inputs[wide].astype(np.float64)
    y, cache = layer_norm_forward(**inputs)
    y64, cache64 = layer_norm_forward(**{k: v.astype(np.float64) for k, v in inputs.items()})
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y, y64)              # float32 → float64 is exact
    dy = np.random.default_rng(2).standard_normal((3, 4))
    for g, g64 in zip(layer_norm_backward(dy, cache), layer_norm_backward(dy, cache64)):
        assert g.dtype == np.float64
        np.testing.assert_array_equal(g, g64)


def test_layer_norm_float32_is_computed_in_float32():
    """float32 input is normalised in float32 arithmetic (only float16 is widened).

    The rows are dyadic, so μ and σ² are exact in float32; the expected y then follows the
    docstring's formula step by step in float32 (a float64 evaluation rounds differently).
    """
    f32 = np.float32
    x = np.array([[0, 1, 2, 4], [1, 3, 3, 9], [-2, 0, 5, 1], [7, -1, 2, 0]], f32)
    gamma = np.array([0.5, 1.25, -0.75, 2.0], f32)
    beta = np.array([0.125, -1.0, 0.25, 3.0], f32)
    y, _ = layer_norm_forward(x, gamma, beta)
    mu = x.sum(axis=-1, keepdims=True) / f32(4)                     # exact
    var = ((x - mu) ** 2).sum(axis=-1, keepdims=True) / f32(4)      # exact
    rstd = f32(1) / np.sqrt(var + f32(1e-5))
    want = (x - mu) * rstd * gamma + beta
    assert y.dtype == f32 and want.dtype == f32
    np.testing.assert_array_equal(y, want)


def test_layer_norm_backward_casts_dy_to_the_forward_dtype():
    """A float64 dy for a float32 forward is cast to float32 first: the same gradients."""
    inputs = _layer_norm_inputs(np.random.default_rng(3), (6, 5), np.float32)
    _, cache = layer_norm_forward(**inputs)
    dy = np.random.default_rng(4).standard_normal((6, 5))
    for g, g32 in zip(layer_norm_backward(dy, cache),
                      layer_norm_backward(dy.astype(np.float32), cache)):
        assert g.dtype == np.float32
        np.testing.assert_array_equal(g, g32)


# --- dropout ---------------------------------------------------------------------------------

@given(lead=leading_shapes(), p=st.sampled_from([0.1, 0.5, 0.9]), dtype=DTYPES,
       seed=st.integers(0, 2 ** 32 - 1))
def test_dropout_matches_torch_given_the_mask(lead, p, dtype, seed):
    x = np.random.default_rng(seed).standard_normal(lead + (3,)).astype(dtype)

    def ours(x):                                      # a fresh rng per call: the same mask
        y, cache = dropout_forward(x, p, np.random.default_rng(seed))
        return y, lambda dy: {"x": dropout_backward(dy, cache)}

    y, _ = ours(x)
    kept = y != 0
    np.testing.assert_allclose(y[kept], (x[kept] / (1 - p)).astype(dtype), rtol=1e-6)
    scale = torch.from_numpy((kept / (1 - p)).astype(dtype))
    assert_matches_torch("dropout", ours, lambda x: x * scale, {"x": x}, grad_wrt=["x"])
    if dtype == np.float64:
        check_finite_differences(ours, {"x": x}, grad_wrt=["x"])


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_dropout_keeps_the_right_fraction_and_preserves_the_mean(p):
    x = np.ones((400, 500))
    y, _ = dropout_forward(x, p, np.random.default_rng(0))
    n = x.size                                        # 5 binomial standard deviations
    assert abs(np.mean(y != 0) - (1 - p)) < 5 * math.sqrt(p * (1 - p) / n)
    assert abs(y.mean() - 1.0) < 5 * math.sqrt(p / (1 - p) / n)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_dropout_identity_and_edge_cases(dtype):
    x = np.array([[-1e4, 2.0, 1e4]], dtype=dtype)
    for y, cache in (dropout_forward(x, 0.0, None), dropout_forward(x, 0.7, None, training=False)):
        assert y.dtype == dtype and np.array_equal(y, x)
        assert np.array_equal(dropout_backward(x, cache), x)
    y, cache = dropout_forward(x, 1.0, np.random.default_rng(0))
    assert np.array_equal(y, np.zeros_like(x)) and y.dtype == dtype
    assert np.array_equal(dropout_backward(np.ones_like(x), cache), np.zeros_like(x))
    y, _ = dropout_forward(x, 0.5, np.random.default_rng(1))
    assert y.dtype == dtype and np.all(np.isfinite(y))


def test_dropout_rejects_bad_input():
    with pytest.raises(ValueError, match=r"p must lie in \[0, 1\], got 1.5"):
        dropout_forward(np.zeros(3), 1.5, np.random.default_rng(0))
    with pytest.raises(ValueError) as info:
        dropout_forward(np.zeros(3), 0.5, None)
    assert str(info.value) == "rng must be a numpy.random.Generator when training with p=0.5, " \
                              "got NoneType"
    _, cache = dropout_forward(np.zeros((2, 3)), 0.5, np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"dy must have .*\(2, 3\)"):
        dropout_backward(np.zeros(3), cache)


def test_dropout_keeps_an_entry_whose_draw_equals_p():
    """Entry i is kept iff its uniform draw u_i ≥ p, so P(keep) = 1 − p exactly."""
    p = float(np.random.default_rng(5).random())     # the first draw of this seed, used as p
    y, _ = dropout_forward(np.ones(3), p, np.random.default_rng(5))
    assert y[0] == 1 / (1 - p)


@pytest.mark.parametrize("p", [0.0, 0.5])
def test_dropout_backward_casts_dy_to_the_forward_dtype(p):
    x = np.ones((2, 3), np.float32)
    _, cache = dropout_forward(x, p, np.random.default_rng(0))
    dy = np.full((2, 3), 1.0 + 2.0 ** -30)            # float64, rounds to 1 in float32
    dx = dropout_backward(dy, cache)
    assert dx.dtype == np.float32
    np.testing.assert_array_equal(dx, dropout_backward(dy.astype(np.float32), cache))


# --- masked mean pooling --------------------------------------------------------------------

@given(dims=distinct_dims(3, 1, 7), dtype=dtypes, seed=seeds)
def test_masked_mean_matches_torch(dims, dtype, seed):
    B, T, D = dims
    rng = np.random.default_rng(seed)
    mask = rng.random((B, T)) < 0.6
    m = torch.from_numpy(mask)

    def ours(h):
        out, cache = masked_mean_forward(h, mask)
        return out, lambda d: {"h": masked_mean_backward(d, cache)}

    def theirs(h):
        w = m.to(h.dtype) / m.sum(1, keepdim=True).clamp(min=1)
        return torch.einsum("bt,btd->bd", w, h)
    assert_matches_torch("masked_mean", ours, theirs, {"h": randn(rng, (B, T, D), dtype)}, ["h"])


def test_masked_mean_edge_cases_and_bad_input():
    x = np.arange(24.0).reshape(2, 3, 4)
    y, cache = masked_mean_forward(x, np.array([[True, True, False], [False] * 3]))
    np.testing.assert_array_equal(y, [[2.0, 3.0, 4.0, 5.0], np.zeros(4)])   # empty row → 0
    assert np.all(masked_mean_backward(np.ones((2, 4)), cache)[1] == 0)
    np.testing.assert_allclose(masked_mean_forward(x)[0], x.mean(axis=1))  # no mask: all steps
    with pytest.raises(ValueError, match="x must be 3-D"):
        masked_mean_forward(x[0])
    with pytest.raises(ValueError, match="mask"):
        masked_mean_forward(x, np.ones((2, 4), bool))
    with pytest.raises(ValueError, match="dy"):
        masked_mean_backward(np.ones((2, 5)), cache)


def test_masked_mean_keeps_float32_with_and_without_mask():
    """No mask is all steps real, in x's dtype; a float64 dy is cast to it in the backward."""
    x = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    for mask in (None, np.ones((2, 3), bool)):
        y, cache = masked_mean_forward(x, mask)
        assert y.dtype == np.float32
        dx = masked_mean_backward(np.ones((2, 4)), cache)
        assert dx.dtype == np.float32
        np.testing.assert_array_equal(dx, np.full((2, 3, 4), 1 / 3, np.float32))


def test_embedding_float16_gradient_accumulates_in_float32():
    ids = np.zeros(3000, dtype=np.int64)               # 3000 > 2048, where float16 sums stall
    x, cache = embedding_forward(ids, np.ones((2, 3), np.float16))
    dW = embedding_backward(np.ones_like(x), cache)
    assert dW.dtype == np.float16 and np.all(dW[0] == 3000) and not dW[1].any()
