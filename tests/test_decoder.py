"""The decoder block (attention_np.decoder) against torch.nn.TransformerDecoderLayer, pre- and
post-LN, with a source padding mask; finite differences with dropout; the cross-attention cache
equal to recomputing the keys and values; causality: a later target position never changes an
earlier output."""
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.func import functional_call

from attention_np.core import padding_mask
from attention_np.decoder import (cross_attention_cache, decoder_block_backward,
                                  decoder_block_forward, decoder_block_step, init_decoder_block)
from attention_np.transformer import EncoderConfig
from tests.helpers import assert_matches_torch, check_finite_differences, stacked_condition
from tests.strategies import distinct_dims, dtypes, examples, randn, seeds


def random_block(rng, d, d_ff, dtype=np.float64):
    """init_decoder_block with every bias and norm moved off its initial value."""
    p = init_decoder_block(d, d_ff, rng, np.float64)
    return {k: (v + 0.3 * rng.standard_normal(v.shape)).astype(dtype)
            if k.split(".")[-1].startswith("b_") or k.startswith("ln") else v.astype(dtype)
            for k, v in p.items()}


def pair(config, memory_mask, seed=None, training=False):
    def ours(y, memory, **p):
        rng = None if seed is None else np.random.default_rng(seed)
        out, _, cache = decoder_block_forward(y, memory, p, config, memory_mask, rng, training)

        def backward(dout):
            dy, dmemory, grads = decoder_block_backward(dout, cache)
            return {"y": dy, "memory": dmemory, **grads}
        return out, backward
    return ours


def torch_params(p):
    def attention(name):
        a = {n: p[f"{name}.{n}"] for n in ("W_q", "W_k", "W_v", "W_o", "b_q", "b_k", "b_v", "b_o")}
        return {"in_proj_weight": torch.cat([a["W_q"].T, a["W_k"].T, a["W_v"].T]),
                "in_proj_bias": torch.cat([a["b_q"], a["b_k"], a["b_v"]]),
                "out_proj.weight": a["W_o"].T, "out_proj.bias": a["b_o"]}
    out = {f"self_attn.{k}": v for k, v in attention("self_attn").items()}
    out |= {f"multihead_attn.{k}": v for k, v in attention("cross_attn").items()}
    out |= {"linear1.weight": p["ffn.W_1"].T, "linear1.bias": p["ffn.b_1"],
            "linear2.weight": p["ffn.W_2"].T, "linear2.bias": p["ffn.b_2"]}
    for i in (1, 2, 3):
        out |= {f"norm{i}.weight": p[f"ln{i}.gamma"], f"norm{i}.bias": p[f"ln{i}.beta"]}
    return out


@examples(ci=100, thorough=3_000)
@given(dims=distinct_dims(6, lo=1, hi=6), norm_first=st.booleans(),
       activation=st.sampled_from(["relu", "gelu"]), dtype=dtypes, seed=seeds)
def test_block_matches_torch_decoder_layer(dims, norm_first, activation, dtype, seed):
    B, T, Tk, H, Dh, d_ff = dims
    d = H * Dh
    rng = np.random.default_rng(seed)
    pad = padding_mask(rng.integers(1, Tk + 1, size=B), Tk)              # (B, Tk) True = real
    config = EncoderConfig(d_model=d, num_heads=H, d_ff=d_ff, activation=activation,
                           norm_first=norm_first)
    params = random_block(rng, d, d_ff, dtype)
    layer = torch.nn.TransformerDecoderLayer(
        d, H, d_ff, dropout=0.0, activation=activation, batch_first=True, norm_first=norm_first,
        dtype=torch.from_numpy(np.zeros(0, dtype)).dtype).train()   # train: no fused fast path
    causal = torch.triu(torch.ones(T, T, dtype=torch.bool), 1)          # torch: True = hidden

    def theirs(y, memory, **p):
        return functional_call(layer, torch_params(p), (y, memory), {
            "tgt_mask": causal, "tgt_is_causal": True,
            "memory_key_padding_mask": torch.from_numpy(~pad)})

    inputs = {"y": randn(rng, (B, T, d), dtype), "memory": randn(rng, (B, Tk, d), dtype),
              **params}
    cond = 1.0
    if dtype == np.float32:                  # three layer norms in a row: their 1/σ multiply
        rows = []
        hooks = [getattr(layer, f"norm{i}").register_forward_pre_hook(
            lambda _, args: rows.append(args[0].detach().numpy())) for i in (1, 2, 3)]
        with torch.no_grad():
            theirs(**{k: torch.from_numpy(v.astype(np.float64)) for k, v in inputs.items()})
        for hook in hooks:
            hook.remove()
        cond = stacked_condition(rows)
    assert_matches_torch("decoder_block", pair(config, pad[:, None, None, :]), theirs, inputs,
                         list(inputs), seed=seed, cond=cond)


@pytest.mark.parametrize("norm_first", [True, False])
def test_finite_differences_with_dropout(norm_first):
    rng = np.random.default_rng(1)
    config = EncoderConfig(d_model=6, num_heads=2, d_ff=5, norm_first=norm_first, dropout=0.2,
                           attn_dropout=0.3, activation="gelu")
    inputs = {"y": randn(rng, (2, 4, 6)), "memory": randn(rng, (2, 3, 6)),
              **random_block(rng, 6, 5)}
    mask = padding_mask(np.array([3, 1]), 3)[:, None, None, :]
    check_finite_differences(pair(config, mask, seed=4, training=True), inputs, list(inputs),
                             n_entries=3)


def five_positions(seed: int, norm_first: bool):
    """A block (d 8, 2 heads), 5 target positions, 6 memory positions with padding, and the
    block's forward on all of them → (config, params, y, memory, mask, out, (w_self, w_cross))."""
    rng = np.random.default_rng(seed)
    config = EncoderConfig(d_model=8, num_heads=2, d_ff=7, norm_first=norm_first)
    params = random_block(rng, 8, 7)
    y, memory = randn(rng, (3, 5, 8)), randn(rng, (3, 6, 8))
    mask = padding_mask(np.array([6, 2, 4]), 6)[:, None, None, :]
    full, weights, _ = decoder_block_forward(y, memory, params, config, mask)
    return config, params, y, memory, mask, full, weights


def test_cached_cross_attention_equals_recomputing_it_and_the_block_is_causal():
    config, params, y, memory, mask, full, (w_self, w_cross) = five_positions(2, True)
    kv = cross_attention_cache(memory, params, 2)
    assert kv[0].shape == (3, 2, 6, 4)
    cached, (_, w_cached), cache = decoder_block_forward(y, memory, params, config, mask,
                                                         cross_kv=kv)
    np.testing.assert_allclose(cached, full, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(w_cached, w_cross, rtol=1e-13, atol=1e-13)
    with pytest.raises(ValueError, match="cross_kv"):
        decoder_block_backward(np.ones_like(cached), cache)
    assert np.all(np.triu(w_self, 1) == 0) and np.all(w_cross[1, :, :, 2:] == 0)
    for t in range(5):                   # one step at a time, as generation runs: same rows
        step, _, _ = decoder_block_forward(y[:, :t + 1], memory, params, config, mask,
                                           cross_kv=kv)
        np.testing.assert_allclose(step, full[:, :t + 1], rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("norm_first", [True, False])
@pytest.mark.parametrize("chunks", [(1, 1, 1, 1, 1), (2, 3), (5,), (1, 3, 1)])
def test_step_with_a_kv_cache_equals_the_block_on_the_whole_prefix(norm_first, chunks):
    """decoder_block_step on positions L … L + Tn − 1, reading 0 … L − 1 from its cache: the
    rows, self-attention rows and cross-attention rows of decoder_block_forward on all five."""
    config, params, y, memory, mask, full, (w_self, w_cross) = five_positions(5, norm_first)
    cross_kv = cross_attention_cache(memory, params, 2)
    self_kv = (np.zeros((3, 2, 0, 4)), np.zeros((3, 2, 0, 4)))
    L = 0
    for Tn in chunks:
        out, (ws, wc), self_kv = decoder_block_step(y[:, L:L + Tn], params, config, self_kv,
                                                    cross_kv, mask)
        np.testing.assert_allclose(out, full[:, L:L + Tn], rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(ws, w_self[:, :, L:L + Tn, :L + Tn], rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(wc, w_cross[:, :, L:L + Tn], rtol=1e-12, atol=1e-13)
        L += Tn
        assert self_kv[0].shape == self_kv[1].shape == (3, 2, L, 4)


def test_step_names_a_bad_cache():
    rng = np.random.default_rng(6)
    params = init_decoder_block(6, 5, rng)
    config = EncoderConfig(d_model=6, num_heads=2)
    y, memory = randn(rng, (2, 1, 6)), randn(rng, (2, 3, 6))
    cross_kv, empty = cross_attention_cache(memory, params, 2), np.zeros((2, 2, 0, 3))
    with pytest.raises(ValueError, match="self_kv must be a pair"):
        decoder_block_step(y, params, config, empty, cross_kv)
    with pytest.raises(ValueError, match="self_kv K"):
        decoder_block_step(y, params, config, (np.zeros((2, 3, 0, 3)), empty), cross_kv)
    with pytest.raises(ValueError, match="cross_kv"):
        decoder_block_step(y, params, config, (empty, empty), (cross_kv[0], cross_kv[1][:, :, :2]))
    with pytest.raises(ValueError, match="y_new"):
        decoder_block_step(y[:, :0], params, config, (empty, empty), cross_kv)
    with pytest.raises(ValueError, match="memory_mask"):
        decoder_block_step(y, params, config, (empty, empty), cross_kv, np.ones((2, 4), bool))


def test_bad_arguments_name_what_is_wrong():
    rng = np.random.default_rng(3)
    params = init_decoder_block(6, 5, rng)
    config = EncoderConfig(d_model=6, num_heads=2)
    y, memory = randn(rng, (2, 4, 6)), randn(rng, (2, 3, 6))
    with pytest.raises(ValueError, match="memory dim 0"):
        decoder_block_forward(y, memory[:1], params, config)
    with pytest.raises(ValueError, match="cross_attn.W_k"):
        decoder_block_forward(y, memory, {k: v for k, v in params.items()
                                          if k != "cross_attn.W_k"}, config)
    with pytest.raises(ValueError, match="memory_mask|mask"):
        decoder_block_forward(y, memory, params, config, memory_mask=np.ones((2, 4), bool))
    with pytest.raises(ValueError, match="rng"):
        decoder_block_forward(y, memory, params, EncoderConfig(num_heads=2, dropout=0.1),
                              training=True)
