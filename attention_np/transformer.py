"""The Transformer encoder block (Vaswani et al., 2017, §3.1; article §4.3) and a stack of them.

Post-LN (``norm_first=False``, the original paper, BERT and torch's default):

    h = LN₁(x + Dropout(MultiHead(x, x, x)))
    y = LN₂(h + Dropout(FFN(h))),                 FFN(h) = act(h W₁ + b₁) W₂ + b₂

Pre-LN (``norm_first=True``, more stable for deep stacks; put one LayerNorm after the last block):

    h = x + Dropout(MultiHead(LN₁(x), LN₁(x), LN₁(x)))
    y = h + Dropout(FFN(LN₂(h)))

Shapes: x, y (B, T, d_model); W₁ (d_model, d_ff), W₂ (d_ff, d_model). The block equals
``torch.nn.TransformerEncoderLayer(batch_first=True)`` with the same ``norm_first`` and
``activation`` (copy ``W.T`` into torch's ``weight``), and with post-LN, GELU and ε = 1e-12 it
is a BERT layer (``models.minilm`` runs every layer of all-MiniLM-L6-v2 through it).

``causal=True`` lets position i attend to positions j ≤ i only (with any mask given on top), as
in a decoder-only language model (:mod:`attention_np.lm`); with ``backend="numba"`` the flash
kernels apply it themselves. ``mlp=False`` drops the FFN sub-layer and LN₂ (y = h), the
attention-only blocks of Olsson et al. (2022). The FFN is in :mod:`attention_np.feed_forward`.

Dropout comes in two places, both inverted dropout with probabilities of their own
(:class:`EncoderConfig`): ``dropout`` on each sub-layer's output before the residual add
(torch's ``dropout``), and ``attn_dropout`` on the attention weights α before they multiply V
(inside torch's ``self_attn``; here :mod:`attention_np.self_attention`'s ``dropout_p``).

``backend="numba"`` runs a post-LN block with the FFN through the fused kernels of
:mod:`kernels.encoder` (BLAS products, fused attention, bias+activation, residual+LN); other
blocks run the attention with the flash kernels and the rest in NumPy. While training with a
dropout > 0 the block takes the NumPy path (with ``attn_dropout > 0`` the attention too: the
kernels never form α, so there is nothing to drop).

Masks follow the package convention: boolean, broadcastable to (B, H, T, T), True = may
attend. A padding mask ``pad`` (B, T) (True = real token) becomes ``pad[:, None, None, :]``.
The block checks x, params, rng and the mask once, then runs on the trusting cores.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attention_np.feed_forward import (ACTIVATIONS, _ffn_sublayer, _ffn_sublayer_backward,
                                       check_ffn_params, feed_forward_backward,
                                       feed_forward_forward)
from attention_np.nn.checks import (as_float_array, check_num_heads, check_params,
                                    check_positive_int)
from attention_np.nn.init import ones, xavier_uniform, zeros
from attention_np.nn.layers import (dropout_backward, dropout_forward, layer_norm_backward,
                                    layer_norm_forward)
from attention_np.self_attention import (_multi_head_attention, check_multi_head_inputs,
                                         init_multi_head_params, multi_head_attention_backward)

__all__ = ["EncoderConfig", "init_encoder_block", "encoder_block_forward",
           "encoder_block_backward", "init_encoder", "encoder_forward", "encoder_backward",
           "feed_forward_forward", "feed_forward_backward"]     # the FFN lives in feed_forward.py
FFN_NAMES = ("W_1", "b_1", "W_2", "b_2")
NORM_NAMES = ("ln1_gamma", "ln1_beta", "ln2_gamma", "ln2_beta")


@dataclass(frozen=True)
class EncoderConfig:
    """Hyper-parameters of one encoder block (and of a stack of ``num_layers`` of them)."""
    d_model: int = 64
    num_heads: int = 4
    d_ff: int = 128
    num_layers: int = 2
    dropout: float = 0.0          # on sub-layer outputs, before the residual add
    attn_dropout: float = 0.0     # on the attention weights α
    activation: str = "relu"      # "relu" or "gelu" (exact)
    norm_first: bool = False      # False: post-LN (torch default); True: pre-LN
    eps: float = 1e-5             # of both layer norms
    causal: bool = False          # True: position i attends to j ≤ i only (a decoder-only LM)
    mlp: bool = True              # False: attention-only, y = h (no FFN, no LN₂)


def init_encoder_block(d_model: int, d_ff: int, rng: np.random.Generator,
                       dtype=np.float64, mlp: bool = True) -> dict:
    """Flat parameter dict of one block: the multi-head attention's W_q … b_o, the FFN's
    W₁ (d_model, d_ff), b₁, W₂ (d_ff, d_model), b₂ (Xavier-uniform, zero biases) and the two
    layer norms' γ = 1, β = 0. ``mlp=False``: attention and LN₁ only (no FFN, no LN₂)."""
    params = init_multi_head_params(d_model, rng, dtype)
    d_ff = check_positive_int(d_ff, "d_ff") if mlp else d_ff
    if mlp:
        params.update(W_1=xavier_uniform((d_model, d_ff), rng, dtype), b_1=zeros(d_ff, dtype),
                      W_2=xavier_uniform((d_ff, d_model), rng, dtype), b_2=zeros(d_model, dtype))
    for i in (1, 2) if mlp else (1,):
        params.update({f"ln{i}_gamma": ones(d_model, dtype), f"ln{i}_beta": zeros(d_model, dtype)})
    return params


# --- the block -------------------------------------------------------------------------------

def _check_block(x, params, config: EncoderConfig, mask, rng, training, backend,
                 name: str = "params"):
    """Everything the block's trusting path relies on → (x, mask broadcast to (B, H, T, T)).
    ``name`` is what messages call params (layers[i] in a stack)."""
    x = as_float_array(x, "x", ndim=3)
    norms = NORM_NAMES if config.mlp else NORM_NAMES[:2]        # attention-only: LN₁ alone
    missing = [n for n in (FFN_NAMES if config.mlp else ()) + norms if n not in params]
    if missing:
        raise ValueError(f"{name} is missing {missing} (make it with init_encoder_block)")
    if config.activation not in ACTIVATIONS:
        raise ValueError(f"config.activation must be one of {sorted(ACTIVATIONS)}, "
                         f"got {config.activation!r}")
    if config.mlp:
        check_ffn_params(params, x.shape[2], name)
    check_params(params, {n: (x.shape[2],) for n in norms}, name)
    if training and config.dropout > 0 and not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator when training with dropout "
                         f"{config.dropout}, got {type(rng).__name__}")
    attn_p = config.attn_dropout if training else 0.0
    x, _, _, mask = check_multi_head_inputs(x, x, params, config.num_heads, mask, backend,
                                            attn_p, rng, name)  # the one check of the mask
    return x, mask


def encoder_block_forward(x, params, config: EncoderConfig, mask=None, rng=None,
                          training: bool = False, backend: str = "numpy"):
    """One Transformer encoder block (formulas in the module docstring).

    x (B, T, d_model); params from :func:`init_encoder_block` (they fix d_model and d_ff);
    config gives num_heads, the dropouts, activation, norm_first and eps; mask boolean
    broadcastable to (B, H, T, T), True = may attend; ``rng`` (a ``np.random.Generator``) is
    needed only when ``training`` with a dropout > 0 → y (B, T, d_model), weights (B, H, T, T)
    (the attention weights before dropout; None for ``backend="numba"`` unless attention
    dropout sent it down the NumPy path), cache.
    """
    x, mask = _check_block(x, params, config, mask, rng, training, backend)
    return _encoder_block(x, params, config, mask, rng, training, backend)


def _encoder_block(x, p, c: EncoderConfig, mask, rng, training, backend):
    """The block on checked inputs (mask already (B, H, T, T) or None)."""
    if backend == "numba":                  # the fused kernels, where they cover the config
        from kernels.encoder import fits, run_block
        if fits(c, training):
            y, cache = run_block(x, p, c, mask)
            return y, None, cache
    attn_p = c.attn_dropout if training else 0.0
    if c.norm_first:
        z1, c_ln1 = layer_norm_forward(x, p["ln1_gamma"], p["ln1_beta"], c.eps)   # z₁ = LN₁(x)
        a, weights, c_attn = _multi_head_attention(z1, z1, p, c.num_heads, mask, c.causal,
                                                   backend, attn_p, rng)          # (B, T, d)
        a_d, c_drop1 = dropout_forward(a, c.dropout, rng, training)
        h = x + a_d                                                     # h = x + Drop(a)
    else:
        a, weights, c_attn = _multi_head_attention(x, x, p, c.num_heads, mask, c.causal,
                                                   backend, attn_p, rng)          # (B, T, d)
        a_d, c_drop1 = dropout_forward(a, c.dropout, rng, training)
        h, c_ln1 = layer_norm_forward(x + a_d, p["ln1_gamma"], p["ln1_beta"], c.eps)  # LN₁(x + a)
    y, c_ffn = _ffn_sublayer(h, p, c, rng, training)                   # FFN sub-layer (or y = h)
    cache = {"norm_first": c.norm_first, "ln1": c_ln1, "attn": c_attn, "drop1": c_drop1,
             "ffn_sublayer": c_ffn}
    return y, weights, cache


def encoder_block_backward(dy, cache, return_dweights: bool = False):
    """Walks the block back, FFN sub-layer first → (dx, grads keyed like params), and with
    ``return_dweights`` also ∂L/∂α (B, H, T, T) for the attention weights the forward returned
    (None for ``backend="numba"``)."""
    if cache.get("fused"):                  # the forward ran kernels.encoder
        from kernels.encoder import run_block_backward
        dx, grads = run_block_backward(dy, cache)
        return (dx, grads, None) if return_dweights else (dx, grads)
    c = cache
    dh, g_ffn = _ffn_sublayer_backward(dy, c["ffn_sublayer"])         # y = FFN sub-layer(h)
    if c["norm_first"]:
        # forward: h = x + Drop(MHA(z₁, z₁)),  z₁ = LN₁(x)
        dz1_q, dz1_kv, g_attn, dweights = multi_head_attention_backward(
            dropout_backward(dh, c["drop1"]), c["attn"], return_dweights=True)
        dx_ln, dg1, db1 = layer_norm_backward(dz1_q + dz1_kv, c["ln1"])
        dx = dh + dx_ln
    else:
        # forward: h = LN₁(x + Drop(MHA(x, x)))
        ds1, dg1, db1 = layer_norm_backward(dh, c["ln1"])
        dx_q, dx_kv, g_attn, dweights = multi_head_attention_backward(
            dropout_backward(ds1, c["drop1"]), c["attn"], return_dweights=True)
        dx = ds1 + (dx_q + dx_kv)                 # x feeds the skip path, queries and keys/values
    grads = {**g_attn, **g_ffn, "ln1_gamma": dg1, "ln1_beta": db1}
    return (dx, grads, dweights) if return_dweights else (dx, grads)


# --- a stack of blocks -----------------------------------------------------------------------

def init_encoder(config: EncoderConfig, rng: np.random.Generator, dtype=np.float64) -> list[dict]:
    """``config.num_layers`` independently initialised blocks."""
    check_num_heads(config.num_heads, config.d_model, f"config.d_model is {config.d_model}")
    return [init_encoder_block(config.d_model, config.d_ff, rng, dtype, config.mlp)
            for _ in range(config.num_layers)]


def encoder_forward(x, layers: list[dict], config: EncoderConfig, mask=None, rng=None,
                    training: bool = False, backend: str = "numpy"):
    """x → block_L(… block_1(x)) → (y (B, T, d), [weights (B, H, T, T)] per layer, caches)."""
    weights, caches = [], []
    for i, params in enumerate(layers):                     # messages name layers[i]
        x, mask_i = _check_block(x, params, config, mask, rng, training, backend, f"layers[{i}]")
        x, w, c = _encoder_block(x, params, config, mask_i, rng, training, backend)
        weights.append(w)
        caches.append(c)
    return x, weights, caches


def encoder_backward(dy, caches: list, return_dweights: bool = False):
    """Reverse of :func:`encoder_forward` → (dx, [grads per layer]), and with
    ``return_dweights`` also [∂L/∂α (B, H, T, T) per layer] (None entries for numba)."""
    grads, dweights = [], []
    for cache in reversed(caches):
        dy, g, dw = encoder_block_backward(dy, cache, return_dweights=True)
        grads.append(g)
        dweights.append(dw)
    if return_dweights:
        return dy, grads[::-1], dweights[::-1]
    return dy, grads[::-1]
