"""Attention dropout (on α, inside soft attention) and the ∂L/∂α output of the backward passes.

The keep mask of a call is reproduced with ``dropout_forward`` on ones and a generator seeded
like the call's: the same draws, so the same mask. Torch then applies that mask explicitly.
"""
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import attention_np as an
from attention_np.nn.layers import dropout_forward
from tests.helpers import assert_close, assert_matches_torch, check_finite_differences
from tests.strategies import alive_rows, distinct_dims, dtypes, randn, random_mask, seeds

rates = st.sampled_from([0.1, 0.5, 0.9])


def keep_scale(shape, p, seed, dtype=np.float64):
    """m / (1 − p), m the keep mask a call with ``np.random.default_rng(seed)`` draws first."""
    return dropout_forward(np.ones(shape, dtype), p, np.random.default_rng(seed))[0]


def torch_safe(m):
    """torch gives NaN on fully masked rows: let those attend everywhere (their dout is 0)."""
    return torch.from_numpy(m | ~m.any(-1, keepdims=True))


def torch_dropped_attention(scores, values, m, keep):
    alpha = torch.softmax(scores.masked_fill(~torch_safe(m), float("-inf")), -1)
    return (alpha * torch.from_numpy(keep)) @ values, alpha


@given(dims=distinct_dims(4), p=rates, dtype=dtypes, seed=seeds)
def test_soft_attention_dropout_equals_an_independent_numpy_computation(dims, p, dtype, seed):
    B, Tq, Tk, Dv = dims
    rng = np.random.default_rng(seed)
    scores, values = randn(rng, (B, Tq, Tk), dtype, 2.0), randn(rng, (B, Tk, Dv), dtype)
    mask = random_mask(rng, (B, Tq, Tk))
    context, weights, _ = an.soft_attention_forward(scores, values, mask, p,
                                                    np.random.default_rng(seed))

    def independent(dt):
        """α and Dropout(α) h computed in dtype ``dt`` (float64: the truth for float32)."""
        x = np.where(mask, scores.astype(dt), -np.inf)
        e = np.exp(x - np.max(x, -1, keepdims=True, initial=0))           # any shift ≥ the max
        alpha = e / np.maximum(e.sum(-1, keepdims=True), np.finfo(dt).tiny)   # dead rows: 0
        return alpha, (alpha * keep_scale(alpha.shape, p, seed, dt)) @ values.astype(dt)

    (alpha, expected), (alpha64, expected64) = independent(dtype), independent(np.float64)
    assert_close("dropout weights", weights, alpha, dtype, truth=alpha64)
    assert_close("dropout context", context, expected, dtype, truth=expected64)
    assert np.all(weights[~mask] == 0) and np.all(context[~mask.any(-1)] == 0)


@given(dims=distinct_dims(4), p=rates, dtype=dtypes, seed=seeds)
def test_soft_attention_dropout_gradients_match_torch(dims, p, dtype, seed):
    B, Tq, Tk, Dv = dims
    rng = np.random.default_rng(seed)
    mask = random_mask(rng, (B, Tq, Tk))
    keep = keep_scale((B, Tq, Tk), p, seed, dtype)

    def ours(scores, values):
        c, _, cache = an.soft_attention_forward(scores, values, mask, p,
                                                np.random.default_rng(seed))
        return c, lambda dc: dict(zip(("scores", "values"), an.soft_attention_backward(dc, cache)))

    def theirs(scores, values):
        return torch_dropped_attention(scores, values, mask, keep)[0]

    inputs = {"scores": randn(rng, (B, Tq, Tk), dtype, 2.0),
              "values": randn(rng, (B, Tk, Dv), dtype)}
    assert_matches_torch("soft_attention dropout", ours, theirs, inputs, ["scores", "values"],
                         out_rows=alive_rows(mask), seed=seed)


@given(dims=distinct_dims(6), causal=st.booleans(), p=rates, dtype=dtypes, seed=seeds)
def test_sdpa_dropout_matches_torch(dims, causal, p, dtype, seed):
    B, H, Tq, Tk, D, Dv = dims
    rng = np.random.default_rng(seed)
    mask = random_mask(rng, (B, 1, Tq, Tk))
    m = np.broadcast_to(mask, (B, H, Tq, Tk)) & (an.causal_mask(Tq, Tk) if causal else True)
    keep = keep_scale((B, H, Tq, Tk), p, seed, dtype)

    def ours(q, k, v):
        out, _, cache = an.scaled_dot_product_attention_forward(
            q, k, v, mask, causal, dropout_p=p, rng=np.random.default_rng(seed))
        return out, lambda d: dict(zip("qkv", an.scaled_dot_product_attention_backward(d, cache)))

    def theirs(q, k, v):
        return torch_dropped_attention(q @ k.transpose(-1, -2) / D ** 0.5, v, m, keep)[0]

    inputs = {"q": randn(rng, (B, H, Tq, D), dtype), "k": randn(rng, (B, H, Tk, D), dtype),
              "v": randn(rng, (B, H, Tk, Dv), dtype)}
    assert_matches_torch("sdpa dropout", ours, theirs, inputs, ["q", "k", "v"],
                         out_rows=alive_rows(m), seed=seed)


def torch_mha(num_heads, m, keep):
    """Multi-head attention written out in torch, dropout = the explicit ``keep`` scale.
    Returns a function giving (out, α) with α's gradient retained."""
    def theirs(x_q, x_kv, W_q, W_k, W_v, W_o, b_q, b_k, b_v, b_o):
        B, Tq, d = x_q.shape
        Dh = d // num_heads

        def heads(t):                                                  # (B, T, d) → (B, H, T, Dh)
            return t.reshape(B, -1, num_heads, Dh).transpose(1, 2)
        q, k, v = heads(x_q @ W_q + b_q), heads(x_kv @ W_k + b_k), heads(x_kv @ W_v + b_v)
        ctx, alpha = torch_dropped_attention(q @ k.transpose(-1, -2) / Dh ** 0.5, v, m, keep)
        alpha.retain_grad()
        return ctx.transpose(1, 2).reshape(B, Tq, d) @ W_o + b_o, alpha
    return theirs


def mha_case(seed, dtype=np.float64, B=2, H=3, Tq=4, Tk=5, Dh=2):
    rng = np.random.default_rng(seed)
    d = H * Dh
    params = {n: randn(rng, (d, d) if n[0] == "W" else (d,), dtype, 0.5)
              for n in an.self_attention.PARAM_NAMES}
    inputs = {"x_q": randn(rng, (B, Tq, d), dtype), "x_kv": randn(rng, (B, Tk, d), dtype), **params}
    return inputs, random_mask(rng, (B, H, Tq, Tk))


@given(p=rates, dtype=dtypes, seed=seeds, causal=st.booleans())
def test_multi_head_attention_dropout_matches_torch(p, dtype, seed, causal):
    inputs, mask = mha_case(seed, dtype)
    B, H, Tq, Tk = mask.shape
    m = mask & an.causal_mask(Tq, Tk) if causal else mask
    keep = keep_scale(m.shape, p, seed, dtype)

    def ours(x_q, x_kv, **params):
        out, _, cache = an.multi_head_attention_forward(
            x_q, x_kv, params, H, mask, causal, dropout_p=p, rng=np.random.default_rng(seed))

        def backward(d):
            dx_q, dx_kv, grads = an.multi_head_attention_backward(d, cache)
            return {"x_q": dx_q, "x_kv": dx_kv, **grads}
        return out, backward

    theirs = torch_mha(H, m, keep)
    assert_matches_torch("multi_head_attention dropout", ours, lambda **t: theirs(**t)[0],
                         inputs, list(inputs), out_rows=alive_rows(m).all(axis=1), seed=seed,
                         dead_rows_zero=False)


@pytest.mark.parametrize("p", [0.0, 0.4])
def test_multi_head_attention_dweights_match_torch_weights_grad(p):
    inputs, mask = mha_case(11)
    B, H, Tq, Tk = mask.shape
    keep = keep_scale(mask.shape, p, 3)
    params = {n: inputs[n] for n in an.self_attention.PARAM_NAMES}
    out, weights, cache = an.multi_head_attention_forward(
        inputs["x_q"], inputs["x_kv"], params, H, mask, dropout_p=p, rng=np.random.default_rng(3))
    rows = alive_rows(mask).all(axis=1)                                # (B, Tq, 1)
    dout = np.where(rows, randn(np.random.default_rng(4), out.shape), 0)
    *_, dweights = an.multi_head_attention_backward(dout, cache, return_dweights=True)
    tensors = {n: torch.from_numpy(a).requires_grad_() for n, a in inputs.items()}
    ref, alpha = torch_mha(H, mask, keep)(**tensors)
    (ref * torch.from_numpy(dout)).sum().backward()
    assert dweights.shape == weights.shape == (B, H, Tq, Tk)
    assert_close("mha dweights", dweights, alpha.grad.numpy(), np.float64, op="mha dweights")
    assert_close("mha weights", weights, alpha.detach().numpy(), np.float64,
                 where=alive_rows(mask))


def test_sdpa_dweights_and_the_numba_backend():
    rng = np.random.default_rng(5)
    q, k, v = randn(rng, (2, 3, 4, 5)), randn(rng, (2, 3, 6, 5)), randn(rng, (2, 3, 6, 2))
    dout = randn(rng, (2, 3, 4, 2))
    out, w, cache = an.scaled_dot_product_attention_forward(q, k, v, causal=True)
    *grads, dweights = an.scaled_dot_product_attention_backward(dout, cache, return_dweights=True)
    np.testing.assert_allclose(dweights, dout @ np.swapaxes(v, -1, -2), atol=1e-12)   # dα = dz vᵀ
    for a, b in zip(grads, an.scaled_dot_product_attention_backward(dout, cache)):
        np.testing.assert_array_equal(a, b)
    _, w, cache = an.scaled_dot_product_attention_forward(q, k, v, causal=True, backend="numba")
    assert w is None
    assert an.scaled_dot_product_attention_backward(dout, cache, return_dweights=True)[3] is None
    flash_grads = an.scaled_dot_product_attention_backward(dout, cache)    # dq, dk, dv: no dα
    assert len(flash_grads) == 3
    for a, b in zip(flash_grads, grads):
        np.testing.assert_allclose(a, b, atol=1e-10)


def test_soft_attention_dweights_output_includes_the_added_dweights():
    rng = np.random.default_rng(6)
    scores, values, extra = randn(rng, (2, 3, 4)), randn(rng, (2, 4, 5)), randn(rng, (2, 3, 4))
    dc = randn(rng, (2, 3, 5))
    _, _, cache = an.soft_attention_forward(scores, values)
    dscores, dvalues, dalpha = an.soft_attention_backward(dc, cache, extra, return_dweights=True)
    np.testing.assert_allclose(dalpha, dc @ np.swapaxes(values, -1, -2) + extra, atol=1e-12)
    np.testing.assert_array_equal(dscores, an.soft_attention_backward(dc, cache, extra)[0])


def test_dropout_zero_is_bit_identical_and_draws_nothing():
    inputs, mask = mha_case(7)
    params = {n: inputs[n] for n in an.self_attention.PARAM_NAMES}
    rng = np.random.default_rng(8)
    state = rng.bit_generator.state
    results = []
    for kwargs in ({}, {"dropout_p": 0.0, "rng": rng}):
        out, w, cache = an.multi_head_attention_forward(inputs["x_q"], inputs["x_kv"], params, 3,
                                                        mask, True, **kwargs)
        dx_q, dx_kv, grads = an.multi_head_attention_backward(np.ones_like(out), cache)
        ctx, a, soft = an.soft_attention_forward(inputs["x_q"][..., :5], inputs["x_kv"], **kwargs)
        results.append([out, w, dx_q, dx_kv, *grads.values(), ctx, a,
                        *an.soft_attention_backward(np.ones_like(ctx), soft)])
    assert rng.bit_generator.state == state
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_numba_backend_with_dropout_runs_the_numpy_path():
    inputs, mask = mha_case(9)
    params = {n: inputs[n] for n in an.self_attention.PARAM_NAMES}
    results = {}
    for backend in ("numpy", "numba"):
        out, w, cache = an.multi_head_attention_forward(
            inputs["x_q"], inputs["x_kv"], params, 3, mask, backend=backend, dropout_p=0.3,
            rng=np.random.default_rng(10))
        dx_q, dx_kv, grads, dweights = an.multi_head_attention_backward(
            np.ones_like(out), cache, return_dweights=True)
        results[backend] = [out, w, dx_q, dx_kv, dweights, *grads.values()]
    assert results["numba"][1] is not None and results["numba"][4] is not None
    for a, b in zip(results["numpy"], results["numba"]):
        np.testing.assert_array_equal(a, b)


def test_multi_head_attention_dropout_finite_differences():
    inputs, mask = mha_case(12)

    def ours(x_q, x_kv, **params):
        out, _, cache = an.multi_head_attention_forward(x_q, x_kv, params, 3, mask, dropout_p=0.5,
                                                        rng=np.random.default_rng(13))

        def backward(d):
            dx_q, dx_kv, grads = an.multi_head_attention_backward(d, cache)
            return {"x_q": dx_q, "x_kv": dx_kv, **grads}
        return out, backward

    check_finite_differences(ours, inputs, list(inputs), n_entries=4)
