"""The Transformer's decoder block (Vaswani et al., 2017, §3.1–3.2.3): the other half of the
encoder–decoder, where the target sequence attends to itself causally and to the source through
cross-attention.

Pre-LN (``norm_first=True``, as the translator's Transformer):

    h₁ = y  + Dropout(MultiHead(LN₁ y,  LN₁ y,  causal))      masked self-attention
    h₂ = h₁ + Dropout(MultiHead(LN₂ h₁, memory, memory_mask))   cross-attention: Q from the
    out = h₂ + Dropout(FFN(LN₃ h₂))                             decoder, K and V from the encoder

Post-LN (``norm_first=False``, the paper and torch's default):

    h₁ = LN₁(y + Dropout(MultiHead(y, y, causal)))
    h₂ = LN₂(h₁ + Dropout(MultiHead(h₁, memory, memory_mask)))
    out = LN₃(h₂ + Dropout(FFN(h₂)))

Shapes: y, out (B, T, d) the target so far; memory (B, Tk, d) the encoder's output;
memory_mask boolean broadcastable to (B, H, T, Tk), True = may attend (a source padding mask
``pad (B, Tk)`` becomes ``pad[:, None, None, :]``). The block equals
``torch.nn.TransformerDecoderLayer(batch_first=True)`` with ``tgt_is_causal=True``.

Why generation is sequential: position t's self-attention may read positions ≤ t only, so while
training (teacher forcing: the whole reference target goes in at once, shifted by one) every
position is computed in one pass, but at generation the token at t + 1 does not exist until t
has been chosen. What does not change from step to step is the memory: the cross-attention's
keys and values, memory W_k and memory W_v, can be computed once per source sentence
(:func:`cross_attention_cache`) and passed back in as ``cross_kv``. Nor do the self-attention's
keys and values of the positions already read: :func:`decoder_block_step` keeps them (a KV
cache) and runs the block on the new positions alone — the same outputs, up to rounding, as
:func:`decoder_block_forward` on the whole prefix.

Parameters (one flat dict, dotted keys): ``self_attn.W_q`` … ``self_attn.b_o``,
``cross_attn.W_q`` … ``cross_attn.b_o``, ``ffn.W_1`` … ``ffn.b_2``, ``ln1.gamma`` … ``ln3.beta``.
"""
from __future__ import annotations

import numpy as np

from attention_np.core import linear_core
from attention_np.nn.checks import (as_dout, as_float_array, check_mask, check_nonempty,
                                    check_params, check_rng, check_same_dim, check_shape)
from attention_np.nn.layers import (dropout_backward, dropout_forward, layer_norm_backward,
                                    layer_norm_forward)
from attention_np.nn.params import prefixed, sub
from attention_np.self_attention import (check_multi_head_inputs, init_multi_head_params,
                                         merge_heads_core, multi_head_attention_backward,
                                         multi_head_attention_core, sdpa_core, split_heads_core)
from attention_np.transformer import (EncoderConfig, check_activation, check_ffn_params,
                                      feed_forward_backward, feed_forward_core,
                                      init_feed_forward, norm_params)

__all__ = ["init_decoder_block", "decoder_block_forward", "decoder_block_backward",
           "cross_attention_cache", "decoder_block_step"]
NORMS = ("ln1", "ln2", "ln3")


def init_decoder_block(d_model: int, d_ff: int, rng: np.random.Generator,
                       dtype=np.float64) -> dict:
    """Masked self-attention, cross-attention and the FFN (Xavier-uniform, zero biases, drawn
    in that order) and three layer norms (γ = 1, β = 0)."""
    params = {**prefixed("self_attn", init_multi_head_params(d_model, rng, dtype)),
              **prefixed("cross_attn", init_multi_head_params(d_model, rng, dtype)),
              **prefixed("ffn", init_feed_forward(d_model, d_ff, rng, dtype))}
    for norm in NORMS:
        params.update(prefixed(norm, norm_params(d_model, dtype)))
    return params


def cross_attention_cache(memory, params, num_heads: int):
    """The cross-attention's keys and values, K = memory W_k + b_k and V = memory W_v + b_v,
    split into heads → (K, V), each (B, H, Tk, d/H): computed once per source, reused at every
    decoding step (``decoder_block_forward(…, cross_kv=(K, V))``)."""
    memory = as_float_array(memory, "memory", ndim=3)
    d = memory.shape[2]
    p = check_params(params, {f"{w}_{n}": (d, d) if w == "W" else (d,)
                              for w in "Wb" for n in "kv"}, "params", "cross_attn.")
    return tuple(split_heads_core(linear_core(memory, p[f"W_{n}"], p[f"b_{n}"])[0], num_heads)
                 for n in "kv")


def _check_ffn_and_norms(params, config: EncoderConfig, d: int) -> None:
    """The block's activation, FFN and three norms, for width d."""
    check_activation(config.activation, "config.activation")
    check_ffn_params(params, d, "params", "ffn.")
    check_params(params, {f"{n}.{g}": (d,) for n in NORMS for g in ("gamma", "beta")})


def _check(y, memory, params, config: EncoderConfig, memory_mask, rng, training):
    """Everything the block relies on → (y, memory, the memory mask broadcast or None)."""
    y = as_float_array(y, "y", ndim=3)
    memory = as_float_array(memory, "memory", ndim=3)
    check_nonempty(y, "y", 1, "number of target positions T")
    check_same_dim(y, "y", 0, memory, "memory", 0)
    check_same_dim(y, "y", 2, memory, "memory", 2)
    _check_ffn_and_norms(params, config, y.shape[2])
    if training and config.dropout > 0:
        check_rng(rng, f"when training with dropout {config.dropout}")
    attn_p = config.attn_dropout if training else 0.0
    check_multi_head_inputs(y, y, params, config.num_heads, None, "numpy", attn_p, rng,
                            "params", "self_attn.")
    _, _, _, mask = check_multi_head_inputs(y, memory, params, config.num_heads, memory_mask,
                                            "numpy", attn_p, rng, "params", "cross_attn.",
                                            "memory_mask")
    return y, memory, mask


def decoder_block_forward(y, memory, params, config: EncoderConfig, memory_mask=None, rng=None,
                          training: bool = False, cross_kv=None):
    """One decoder block (module docstring).

    y (B, T, d), memory (B, Tk, d); params from :func:`init_decoder_block`; config gives
    num_heads, the dropouts, activation, norm_first and eps (its ``causal`` is ignored: the
    self-attention is always causal); ``cross_kv``: (K, V) from :func:`cross_attention_cache`
    for this memory, or None to compute them → out (B, T, d), (self-attention weights
    (B, H, T, T), cross-attention weights (B, H, T, Tk)), cache.
    """
    y, memory, mask = _check(y, memory, params, config, memory_mask, rng, training)
    return decoder_block_core(y, memory, params, config, mask, rng, training, cross_kv)


def _cross_attention(z, memory, p, c: EncoderConfig, mask, attn_p, rng, cross_kv):
    """MultiHead(z, memory, memory) → (out, weights, cache); with ``cross_kv`` the keys and
    values are the precomputed heads (inference: no cache is kept)."""
    if cross_kv is None:
        return multi_head_attention_core(z, memory, p, c.num_heads, mask, False, "numpy",
                                         attn_p, rng)
    q = split_heads_core(linear_core(z, p["W_q"], p["b_q"])[0], c.num_heads)  # (B, H, T, Dh)
    heads, weights, _ = sdpa_core(q, cross_kv[0], cross_kv[1], mask, False, "numpy", 0.0, None)
    out, _ = linear_core(merge_heads_core(heads), p["W_o"], p["b_o"])          # (B, T, d)
    return out, weights, None


def _sublayer(x, f, ln, c: EncoderConfig, rng, training):
    """x + Drop(f(LN x)) (pre-LN) or LN(x + Drop(f(x))) (post-LN), ``f(z) → (out, weights,
    cache)``, ``ln`` = (γ, β) → (out, weights, cache)."""
    z, c_in = layer_norm_forward(x, *ln, c.eps) if c.norm_first else (x, None)
    f_out, weights, c_f = f(z)
    f_d, c_drop = dropout_forward(f_out, c.dropout, rng, training)
    out, c_out = (x + f_d, None) if c.norm_first else layer_norm_forward(x + f_d, *ln, c.eps)
    return out, weights, {"ln_in": c_in, "f": c_f, "drop": c_drop, "ln_out": c_out}


def decoder_block_core(y, memory, p, c: EncoderConfig, mask, rng, training, cross_kv=None):
    """The block on checked inputs (``mask`` broadcast to (B, H, T, Tk) or None)."""
    attn_p = c.attn_dropout if training else 0.0

    def ln(i):
        return p[f"ln{i}.gamma"], p[f"ln{i}.beta"]

    def self_attention(z):                                   # position t sees positions ≤ t
        return multi_head_attention_core(z, z, sub(p, "self_attn"), c.num_heads, None, True,
                                         "numpy", attn_p, rng)

    def cross_attention(z):                                  # Q from z, K and V from memory
        return _cross_attention(z, memory, sub(p, "cross_attn"), c, mask, attn_p, rng, cross_kv)

    def ffn(z):
        f, cache = feed_forward_core(z, sub(p, "ffn"), c.activation)
        return f, None, cache

    h1, w_self, c1 = _sublayer(y, self_attention, ln(1), c, rng, training)      # (B, T, d)
    h2, w_cross, c2 = _sublayer(h1, cross_attention, ln(2), c, rng, training)   # (B, T, d)
    out, _, c3 = _sublayer(h2, ffn, ln(3), c, rng, training)                    # (B, T, d)
    cache = {"norm_first": c.norm_first, "self": c1, "cross": c2, "ffn": c3,
             "out_shape": out.shape}
    return out, (w_self, w_cross), cache


def decoder_block_step(y_new, params, config: EncoderConfig, self_kv, cross_kv,
                       memory_mask=None):
    """The block on the next positions only, reading the earlier ones from a KV cache.

    y_new (B, Tn, d): the inputs at positions L … L + Tn − 1; ``self_kv`` = (K, V), each
    (B, H, L, d/H): the self-attention's keys and values of positions 0 … L − 1 (L = 0: two
    (B, H, 0, d/H) arrays); ``cross_kv`` from :func:`cross_attention_cache`; memory_mask as
    for :func:`decoder_block_forward`. New position i attends to positions ≤ L + i.
    → out (B, Tn, d), (self-attention weights (B, H, Tn, L + Tn), cross-attention weights
    (B, H, Tn, Tk)), the cache extended to L + Tn positions. Inference: no dropout, no cache
    for a backward.
    """
    y_new = as_float_array(y_new, "y_new", ndim=3)
    check_nonempty(y_new, "y_new", 1, "number of new positions Tn")
    B, _, d = y_new.shape
    _check_ffn_and_norms(params, config, d)
    H = config.num_heads
    for block in ("self_attn.", "cross_attn."):       # the heads and both attentions' params
        check_multi_head_inputs(y_new, y_new, params, H, params_name="params", prefix=block)
    heads = (B, H, None, d // H)
    for name, kv in (("self_kv", self_kv), ("cross_kv", cross_kv)):
        if not isinstance(kv, (tuple, list)) or len(kv) != 2:
            raise ValueError(f"{name} must be a pair (K, V), got {type(kv).__name__}")
        for part, array in zip("KV", kv):
            check_shape(as_float_array(array, f"{name} {part}", ndim=4), f"{name} {part}", heads)
        if kv[0].shape != kv[1].shape:
            raise ValueError(f"{name}'s K {kv[0].shape} and V {kv[1].shape} differ in shape")
    mask = check_mask(memory_mask, "memory_mask", (B, H, y_new.shape[1], cross_kv[0].shape[2]))
    return decoder_block_step_core(y_new, params, config, self_kv, cross_kv, mask)


def decoder_block_step_core(y_new, p, c: EncoderConfig, self_kv, cross_kv, mask):
    """:func:`decoder_block_step` on checked input."""
    L, Tn = self_kv[0].shape[2], y_new.shape[1]

    def ln(i):
        return p[f"ln{i}.gamma"], p[f"ln{i}.beta"]

    def self_attention(z):                 # the new queries read the cache and themselves
        a = sub(p, "self_attn")
        q, k, v = (split_heads_core(linear_core(z, a[f"W_{n}"], a[f"b_{n}"])[0], c.num_heads)
                   for n in "qkv")                                      # (B, H, Tn, Dh)
        K = np.concatenate([self_kv[0], k], axis=2)                     # (B, H, L + Tn, Dh)
        V = np.concatenate([self_kv[1], v], axis=2)
        causal = None if Tn == 1 else np.arange(L + Tn) <= L + np.arange(Tn)[:, None]
        heads, weights, _ = sdpa_core(q, K, V, causal, False, "numpy", 0.0, None)
        out, _ = linear_core(merge_heads_core(heads), a["W_o"], a["b_o"])
        return out, weights, (K, V)

    def cross_attention(z):
        return _cross_attention(z, None, sub(p, "cross_attn"), c, mask, 0.0, None, cross_kv)

    def ffn(z):
        return feed_forward_core(z, sub(p, "ffn"), c.activation)[0], None, None

    h1, w_self, c1 = _sublayer(y_new, self_attention, ln(1), c, None, False)
    h2, w_cross, _ = _sublayer(h1, cross_attention, ln(2), c, None, False)
    out, _, _ = _sublayer(h2, ffn, ln(3), c, None, False)
    return out, (w_self, w_cross), c1["f"]


def _sublayer_backward(dout, cache, norm_first: bool, f_backward):
    """Undo :func:`_sublayer`; ``f_backward(df) → (dz, extra)`` undoes its function."""
    if norm_first:
        dz, extra = f_backward(dropout_backward(dout, cache["drop"]))      # out = x + Drop(f(z))
        dx_ln, dgamma, dbeta = layer_norm_backward(dz, cache["ln_in"])     # z = LN(x)
        dx = dout + dx_ln
    else:
        ds, dgamma, dbeta = layer_norm_backward(dout, cache["ln_out"])     # out = LN(x + f(x))
        dz, extra = f_backward(dropout_backward(ds, cache["drop"]))
        dx = ds + dz                                                        # x feeds both
    return dx, extra, {"gamma": dgamma, "beta": dbeta}


def decoder_block_backward(dout, cache):
    """Walks the block back, FFN first → (dy (B, T, d), dmemory (B, Tk, d), grads keyed like
    params). There is none after a forward given ``cross_kv`` (inference)."""
    if cache["cross"]["f"] is None:
        raise ValueError("the forward ran with cross_kv (inference): it kept no cache")
    dout = as_dout(dout, cache["out_shape"], name="dout")
    nf, grads = cache["norm_first"], {}

    def ffn(df):
        dz, g = feed_forward_backward(df, cache["ffn"]["f"])
        grads.update(prefixed("ffn", g))
        return dz, None

    def cross_attention(df):
        dz, dmemory, g = multi_head_attention_backward(df, cache["cross"]["f"])
        grads.update(prefixed("cross_attn", g))
        return dz, dmemory

    def self_attention(df):
        dq, dkv, g = multi_head_attention_backward(df, cache["self"]["f"])
        grads.update(prefixed("self_attn", g))
        return dq + dkv, None                                  # z feeds queries, keys, values

    dh2, _, g3 = _sublayer_backward(dout, cache["ffn"], nf, ffn)                # out ← h₂
    dh1, dmemory, g2 = _sublayer_backward(dh2, cache["cross"], nf, cross_attention)  # h₂ ← h₁
    dy, _, g1 = _sublayer_backward(dh1, cache["self"], nf, self_attention)      # h₁ ← y
    for i, g in ((1, g1), (2, g2), (3, g3)):
        grads.update(prefixed(f"ln{i}", g))
    return dy, dmemory, grads
