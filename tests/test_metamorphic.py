"""Metamorphic properties: relations between two calls that must hold whatever the inputs.

They need no reference implementation, so they catch what a comparison with torch cannot see
(e.g. a mask applied to the wrong axis in both). Only the public API is used.
"""
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import attention_np as an
from attention_np.transformer import (EncoderConfig, encoder_block_backward,
                                      encoder_block_forward, init_encoder_block)
from attention_np.lm import LMConfig, init_lm, lm_backward, lm_forward
from tests.strategies import alive_rows, distinct_dims, randn, random_mask, seeds

TIGHT = {"rtol": 1e-10, "atol": 1e-12}     # float64: the two calls round differently


def mha_params(rng, d, dtype=np.float64):
    """Multi-head parameters with non-zero biases (so every term of the layer is exercised)."""
    params = an.init_multi_head_params(d, rng, dtype)
    params.update({f"b_{n}": randn(rng, (d,), dtype, 0.5) for n in "qkvo"})
    return params


@given(dims=distinct_dims(3), shift=st.floats(-50, 50), use_mask=st.booleans(), seed=seeds)
def test_softmax_is_invariant_to_a_constant_added_per_row(dims, shift, use_mask, seed):
    rng = np.random.default_rng(seed)
    x = randn(rng, dims, scale=3.0)
    mask = random_mask(rng, dims) if use_mask else None
    c = shift * rng.random((*dims[:-1], 1))                     # one constant per row
    y, cache = an.softmax_forward(x, mask=mask)
    y_shifted, cache_shifted = an.softmax_forward(x + c, mask=mask)
    np.testing.assert_allclose(y_shifted, y, **TIGHT)
    dy = randn(rng, dims)
    np.testing.assert_allclose(an.softmax_backward(dy, cache_shifted),
                               an.softmax_backward(dy, cache), **TIGHT)


@given(dims=distinct_dims(3, 1, 7), H=st.integers(1, 3), seed=seeds)
def test_self_attention_without_mask_is_permutation_equivariant(dims, H, seed):
    """MHA(Px, Px) = P MHA(x, x), weights P α Pᵀ, and the input gradient permutes along."""
    B, T, Dh = dims
    rng = np.random.default_rng(seed)
    x, params, perm = randn(rng, (B, T, H * Dh)), mha_params(rng, H * Dh), rng.permutation(T)
    out, w, cache = an.multi_head_attention_forward(x, x, params, H)
    out_p, w_p, cache_p = an.multi_head_attention_forward(x[:, perm], x[:, perm], params, H)
    np.testing.assert_allclose(out_p, out[:, perm], **TIGHT)
    np.testing.assert_allclose(w_p, w[:, :, perm][..., perm], **TIGHT)
    dout = randn(rng, out.shape)
    dq, dkv, grads = an.multi_head_attention_backward(dout, cache)
    dq_p, dkv_p, grads_p = an.multi_head_attention_backward(dout[:, perm], cache_p)
    np.testing.assert_allclose(dq_p + dkv_p, (dq + dkv)[:, perm], **TIGHT)
    for name in grads:                                            # a sum over tokens: unchanged
        np.testing.assert_allclose(grads_p[name], grads[name], **TIGHT)


@given(dims=distinct_dims(5, 1, 7), seed=seeds, data=st.data())
def test_masking_a_key_changes_only_the_rows_that_saw_it(dims, seed, data):
    """Rows that could not see key j are unchanged; the others lose exactly j's weight, the
    rest renormalised (α'_ik = α_ik / (1 − α_ij)); a row whose only key was j becomes dead."""
    B, H, Tq, Tk, D = dims
    rng = np.random.default_rng(seed)
    q, k, v = randn(rng, (B, H, Tq, D)), randn(rng, (B, H, Tk, D)), randn(rng, (B, H, Tk, 3))
    mask = random_mask(rng, (B, H, Tq, Tk))
    j = data.draw(st.integers(0, Tk - 1), label="masked key")
    fewer = mask.copy()
    fewer[..., j] = False
    out, w, _ = an.scaled_dot_product_attention_forward(q, k, v, mask)
    out2, w2, _ = an.scaled_dot_product_attention_forward(q, k, v, fewer)
    blind = ~mask[..., j]                                          # (B, H, Tq)
    np.testing.assert_allclose(out2[blind], out[blind], **TIGHT)
    np.testing.assert_allclose(w2[blind], w[blind], **TIGHT)
    assert np.all(w2[..., j] == 0)
    rest = 1 - w[..., j][..., None]                                # (B, H, Tq, 1)
    saw = mask[..., j] & alive_rows(fewer)[..., 0] & (rest[..., 0] > 1e-3)   # 1 − α_ij exact enough
    expect = np.where(fewer, w / np.where(rest > 0, rest, 1), 0)
    np.testing.assert_allclose(w2[saw], expect[saw], rtol=1e-8, atol=1e-12)
    assert np.all(w2[saw] >= w[saw] * fewer[saw] - 1e-12)           # weight only moves away from j
    assert np.all(out2[mask[..., j] & ~alive_rows(fewer)[..., 0]] == 0)


@given(dims=distinct_dims(5, 1, 7), causal=st.booleans(), dtype=st.sampled_from(
    [np.float64, np.float32]), seed=seeds)
def test_weights_are_a_distribution_on_every_row_that_sees_a_key(dims, causal, dtype, seed):
    B, H, Tq, Tk, D = dims
    rng = np.random.default_rng(seed)
    mask = random_mask(rng, (B, 1, Tq, Tk))
    q, k, v = (randn(rng, s, dtype, 3.0) for s in [(B, H, Tq, D), (B, H, Tk, D), (B, H, Tk, 2)])
    _, w, _ = an.scaled_dot_product_attention_forward(q, k, v, mask, causal)
    visible = np.broadcast_to(mask, w.shape) & (an.causal_mask(Tq, Tk) if causal else True)
    alive = visible.any(-1)
    assert w.dtype == dtype and np.all(w >= 0) and np.all(w[~visible] == 0)
    sums = w.sum(-1, dtype=np.float64)
    np.testing.assert_allclose(sums[alive], 1, atol=1e-12 if dtype == np.float64 else 1e-5)
    assert np.all(sums[~alive] == 0)


@given(dims=distinct_dims(3, 1, 7), d=st.integers(1, 8), use_mask=st.booleans(), seed=seeds)
def test_multi_head_attention_with_one_head_is_sdpa_of_the_projections(dims, d, use_mask, seed):
    B, Tq, Tk = dims
    rng = np.random.default_rng(seed)
    x_q, x_kv, p = randn(rng, (B, Tq, d)), randn(rng, (B, Tk, d)), mha_params(rng, d)
    mask = random_mask(rng, (B, 1, Tq, Tk)) if use_mask else None
    out, w, cache = an.multi_head_attention_forward(x_q, x_kv, p, 1, mask)
    (q, cq), (k, ck), (v, cv) = (an.linear_forward(x, p[f"W_{n}"], p[f"b_{n}"])
                                 for x, n in [(x_q, "q"), (x_kv, "k"), (x_kv, "v")])
    z, w_ref, c_attn = an.scaled_dot_product_attention_forward(q[:, None], k[:, None],
                                                               v[:, None], mask)
    ref, co = an.linear_forward(z[:, 0], p["W_o"], p["b_o"])
    np.testing.assert_allclose(out, ref, **TIGHT)
    np.testing.assert_allclose(w, w_ref, **TIGHT)
    dout = randn(rng, out.shape)
    dx_q, dx_kv, grads = an.multi_head_attention_backward(dout, cache)
    dz, dW_o, db_o = an.linear_backward(dout, co)
    dq, dk, dv = (g[:, 0] for g in an.scaled_dot_product_attention_backward(dz[:, None], c_attn))
    (dxq, dW_q, db_q), (dxk, dW_k, db_k), (dxv, dW_v, db_v) = (
        an.linear_backward(g, c) for g, c in [(dq, cq), (dk, ck), (dv, cv)])
    want = {"W_q": dW_q, "W_k": dW_k, "W_v": dW_v, "W_o": dW_o,
            "b_q": db_q, "b_k": db_k, "b_v": db_v, "b_o": db_o}
    np.testing.assert_allclose(dx_q, dxq, **TIGHT)
    np.testing.assert_allclose(dx_kv, dxk + dxv, **TIGHT)
    for name, g in want.items():
        np.testing.assert_allclose(grads[name], g, err_msg=name, **TIGHT)


@given(dims=distinct_dims(4, 1, 7), norm_first=st.booleans(),
       activation=st.sampled_from(["relu", "gelu"]), causal_flag=st.booleans(),
       mlp=st.booleans(), seed=seeds, data=st.data())
def test_causal_encoder_block_output_at_t_ignores_tokens_after_t(dims, norm_first, activation,
                                                                  causal_flag, mlp, seed, data):
    """y[:, :t+1] is unchanged when x[:, t+1:] changes; and ∂y[:, :t+1]/∂x[:, t+1:] = 0 — for
    an explicit causal mask and for the block's causal=True, with or without the MLP."""
    B, T, H, Dh = dims
    rng = np.random.default_rng(seed)
    config = EncoderConfig(d_model=H * Dh, num_heads=H, d_ff=5, activation=activation,
                           norm_first=norm_first, causal=causal_flag, mlp=mlp)
    params = init_encoder_block(H * Dh, 5, rng, mlp=mlp)
    t = data.draw(st.integers(0, T - 1), label="t")
    x = randn(rng, (B, T, H * Dh))
    x_future = x.copy()
    x_future[:, t + 1:] = randn(rng, x[:, t + 1:].shape, scale=5.0)
    mask = None if causal_flag else an.causal_mask(T)
    y, _, cache = encoder_block_forward(x, params, config, mask=mask)
    y_future, _, _ = encoder_block_forward(x_future, params, config, mask=mask)
    np.testing.assert_allclose(y_future[:, :t + 1], y[:, :t + 1], **TIGHT)
    dy = randn(rng, y.shape)
    dy[:, t + 1:] = 0                                  # a loss on the outputs up to t only
    dx, _ = encoder_block_backward(dy, cache)
    assert np.all(dx[:, t + 1:] == 0)


@given(dims=distinct_dims(4, 1, 7), mlp=st.booleans(), tied=st.booleans(), seed=seeds,
       data=st.data())
def test_language_model_logits_at_t_ignore_tokens_after_t(dims, mlp, tied, seed, data):
    """logits[:, :t+1] are unchanged when ids[:, t+1:] change; a loss on them leaves the
    position embeddings after t without gradient."""
    B, T, H, V = dims
    rng = np.random.default_rng(seed)
    cfg = LMConfig(vocab_size=V + 1, max_len=T + 2, d_model=2 * H, num_heads=H,
                   num_layers=2, d_ff=3, mlp=mlp, tied=tied)
    params = init_lm(cfg, rng)
    params.update({k: randn(rng, v.shape) for k, v in params.items() if "emb" in k})
    t = data.draw(st.integers(0, T - 1), label="t")
    ids = rng.integers(0, V + 1, (B, T))
    ids_future = ids.copy()
    ids_future[:, t + 1:] = rng.integers(0, V + 1, ids[:, t + 1:].shape)
    logits, cache = lm_forward(ids, params, cfg)
    logits_future, _ = lm_forward(ids_future, params, cfg)
    np.testing.assert_allclose(logits_future[:, :t + 1], logits[:, :t + 1], **TIGHT)
    dlogits = randn(rng, logits.shape)
    dlogits[:, t + 1:] = 0
    assert np.all(lm_backward(dlogits, cache)["pos_emb.W"][t + 1:] == 0)


def _linearity_cases(rng, dims):
    """(name, forward output, backward(dout) → list of gradients) for several public ops."""
    B, T, H, Dh = dims
    d = H * Dh
    x, mask = randn(rng, (B, T, d)), random_mask(rng, (B, 1, T, T))
    y, c_soft = an.softmax_forward(x, mask=random_mask(rng, x.shape))
    yield "softmax", y, lambda g: [an.softmax_backward(g, c_soft)]
    out, _, c_sdpa = an.scaled_dot_product_attention_forward(
        x[:, None], x[:, None], x[:, None], mask, causal=True)
    yield "sdpa", out, lambda g: list(an.scaled_dot_product_attention_backward(g, c_sdpa))
    out, _, c_mha = an.multi_head_attention_forward(x, x, mha_params(rng, d), H, mask)
    yield "mha", out, lambda g: _flat(an.multi_head_attention_backward(g, c_mha))
    gamma, beta = randn(rng, (2, d))
    y, c_ln = an.layer_norm_forward(x, gamma, beta)
    yield "layer_norm", y, lambda g: list(an.layer_norm_backward(g, c_ln))
    config = EncoderConfig(d_model=d, num_heads=H, d_ff=4, activation="gelu")
    y, _, c_blk = encoder_block_forward(x, init_encoder_block(d, 4, rng), config, mask=mask)
    yield "encoder_block", y, lambda g: _flat(encoder_block_backward(g, c_blk))


def _flat(grads):
    """(dx, …, {name: grad}) → [dx, …, grads in name order]."""
    *arrays, named = grads
    return list(arrays) + [named[k] for k in sorted(named)]


@given(dims=distinct_dims(4, 1, 6), a=st.floats(-3, 3), seed=seeds)
def test_gradient_of_a_sum_of_losses_is_the_sum_of_gradients(dims, a, seed):
    """backward(d₁ + a·d₂) = backward(d₁) + a·backward(d₂): the backward is linear in dout
    (and calling it several times on one cache gives consistent answers)."""
    rng = np.random.default_rng(seed)
    for name, out, backward in _linearity_cases(rng, dims):
        d1, d2 = randn(rng, out.shape), randn(rng, out.shape)
        both = backward(d1 + a * d2)
        for g, g1, g2 in zip(both, backward(d1), backward(d2)):
            np.testing.assert_allclose(g, g1 + a * g2, rtol=1e-9, atol=1e-11, err_msg=name)
