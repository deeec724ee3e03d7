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

Dropout comes in two places, both inverted dropout with probabilities of their own
(:class:`EncoderConfig`): ``dropout`` on each sub-layer's output before the residual add
(torch's ``dropout``), and ``attn_dropout`` on the attention weights α before they multiply V
(inside torch's ``self_attn``; here :mod:`attention_np.self_attention`'s ``dropout_p``).

``backend="numba"`` runs the attention with the fused flash kernels, except while training
with ``attn_dropout > 0``: the kernels never form α, so there is nothing to drop and the
attention takes the NumPy path for that call (the rest of the block is NumPy either way).

Masks follow the package convention: boolean, broadcastable to (B, H, T, T), True = may
attend. A padding mask ``pad`` (B, T) (True = real token) becomes ``pad[:, None, None, :]``.
The block checks x, params, rng and the mask once, then runs on the trusting cores.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attention_np.core import linear_backward, linear_forward
from attention_np.nn.activations import gelu_backward, gelu_forward, relu_backward, relu_forward
from attention_np.nn.checks import as_float_array, check_shape
from attention_np.nn.init import ones, xavier_uniform, zeros
from attention_np.nn.layers import (dropout_backward, dropout_forward, layer_norm_backward,
                                    layer_norm_forward)
from attention_np.self_attention import (_multi_head_attention, check_multi_head_inputs,
                                         init_multi_head_params, multi_head_attention_backward)

ACTIVATIONS = {"relu": (relu_forward, relu_backward), "gelu": (gelu_forward, gelu_backward)}
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


def init_encoder_block(d_model: int, d_ff: int, rng: np.random.Generator,
                       dtype=np.float64) -> dict:
    """Flat parameter dict of one block: the multi-head attention's W_q … b_o, the FFN's
    W₁ (d_model, d_ff), b₁, W₂ (d_ff, d_model), b₂ (Xavier-uniform, zero biases) and the two
    layer norms' γ = 1, β = 0."""
    params = init_multi_head_params(d_model, rng, dtype)
    params.update(W_1=xavier_uniform((d_model, d_ff), rng, dtype), b_1=zeros(d_ff, dtype),
                  W_2=xavier_uniform((d_ff, d_model), rng, dtype), b_2=zeros(d_model, dtype))
    for i in (1, 2):
        params.update({f"ln{i}_gamma": ones(d_model, dtype), f"ln{i}_beta": zeros(d_model, dtype)})
    return params


# --- the feed-forward sub-layer (also used by the seq2seq decoder) ---------------------------

def feed_forward_forward(h, params, activation: str = "relu"):
    """FFN(h) = act(h W₁ + b₁) W₂ + b₂, position by position.

    h (B, T, d), params W_1 (d, d_ff), b_1 (d_ff,), W_2 (d_ff, d), b_2 (d,); activation "relu"
    or "gelu" → f (B, T, d).
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    u, c_fc1 = linear_forward(h, params["W_1"], params["b_1"])              # (B, T, d_ff)
    a, c_act = ACTIVATIONS[activation][0](u)                                # (B, T, d_ff)
    f, c_fc2 = linear_forward(a, params["W_2"], params["b_2"])              # (B, T, d)
    return f, {"fc1": c_fc1, "act": c_act, "fc2": c_fc2, "activation": activation}


def feed_forward_backward(df, cache):
    """Walks the FFN back → (dh (B, T, d), grads W_1, b_1, W_2, b_2)."""
    da, dW_2, db_2 = linear_backward(df, cache["fc2"])                      # f = a W₂ + b₂
    du = ACTIVATIONS[cache["activation"]][1](da, cache["act"])             # a = act(u)
    dh, dW_1, db_1 = linear_backward(du, cache["fc1"])                      # u = h W₁ + b₁
    return dh, {"W_1": dW_1, "b_1": db_1, "W_2": dW_2, "b_2": db_2}


# --- the block -------------------------------------------------------------------------------

def _check_block(x, params, config: EncoderConfig, mask, rng, training, backend):
    """Everything the block's trusting path relies on → (x, mask broadcast to (B, H, T, T))."""
    x = as_float_array(x, "x", ndim=3)
    missing = [n for n in FFN_NAMES + NORM_NAMES if n not in params]
    if missing:
        raise ValueError(f"params is missing {missing} (make it with init_encoder_block)")
    if config.activation not in ACTIVATIONS:
        raise ValueError(f"config.activation must be one of {sorted(ACTIVATIONS)}, "
                         f"got {config.activation!r}")
    w1, w2 = np.shape(params["W_1"]), np.shape(params["W_2"])
    if len(w1) != 2 or w1[0] != x.shape[2] or w2 != w1[::-1]:
        raise ValueError(f"params W_1 and W_2 must have shapes (d_model={x.shape[2]}, d_ff) and "
                         f"(d_ff, d_model), got {w1} and {w2}")
    for n in NORM_NAMES:
        check_shape(as_float_array(params[n], f"params[{n!r}]"), f"params[{n!r}]", (x.shape[2],))
    if training and config.dropout > 0 and not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator when training with dropout "
                         f"{config.dropout}, got {type(rng).__name__}")
    attn_p = config.attn_dropout if training else 0.0
    x, _, _, mask = check_multi_head_inputs(x, x, params, config.num_heads, mask, backend,
                                            attn_p, rng)       # the one check of the mask
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
    attn_p = c.attn_dropout if training else 0.0
    if c.norm_first:
        z1, c_ln1 = layer_norm_forward(x, p["ln1_gamma"], p["ln1_beta"], c.eps)   # z₁ = LN₁(x)
        a, weights, c_attn = _multi_head_attention(z1, z1, p, c.num_heads, mask, False, backend,
                                                   attn_p, rng)                   # (B, T, d)
        a_d, c_drop1 = dropout_forward(a, c.dropout, rng, training)
        h = x + a_d                                                     # h = x + Drop(a)
        z2, c_ln2 = layer_norm_forward(h, p["ln2_gamma"], p["ln2_beta"], c.eps)   # z₂ = LN₂(h)
        f, c_ffn = feed_forward_forward(z2, p, c.activation)                      # (B, T, d)
        f_d, c_drop2 = dropout_forward(f, c.dropout, rng, training)
        y = h + f_d                                                     # y = h + Drop(f)
    else:
        a, weights, c_attn = _multi_head_attention(x, x, p, c.num_heads, mask, False, backend,
                                                   attn_p, rng)                   # (B, T, d)
        a_d, c_drop1 = dropout_forward(a, c.dropout, rng, training)
        h, c_ln1 = layer_norm_forward(x + a_d, p["ln1_gamma"], p["ln1_beta"], c.eps)  # LN₁(x + a)
        f, c_ffn = feed_forward_forward(h, p, c.activation)                       # (B, T, d)
        f_d, c_drop2 = dropout_forward(f, c.dropout, rng, training)
        y, c_ln2 = layer_norm_forward(h + f_d, p["ln2_gamma"], p["ln2_beta"], c.eps)  # LN₂(h + f)
    cache = {"norm_first": c.norm_first, "ln1": c_ln1, "attn": c_attn, "drop1": c_drop1,
             "ln2": c_ln2, "ffn": c_ffn, "drop2": c_drop2}
    return y, weights, cache


def encoder_block_backward(dy, cache, return_dweights: bool = False):
    """Walks the block back, FFN sub-layer first → (dx, grads keyed like params), and with
    ``return_dweights`` also ∂L/∂α (B, H, T, T) for the attention weights the forward returned
    (None for ``backend="numba"``)."""
    c = cache
    if c["norm_first"]:
        # forward: y = h + Drop(FFN(z₂)),  z₂ = LN₂(h)
        dz2, g_ffn = feed_forward_backward(dropout_backward(dy, c["drop2"]), c["ffn"])
        dh_ln, dg2, db2 = layer_norm_backward(dz2, c["ln2"])
        dh = dy + dh_ln                                               # the skip path passes dy
        # forward: h = x + Drop(MHA(z₁, z₁)),  z₁ = LN₁(x)
        dz1_q, dz1_kv, g_attn, dweights = multi_head_attention_backward(
            dropout_backward(dh, c["drop1"]), c["attn"], return_dweights=True)
        dx_ln, dg1, db1 = layer_norm_backward(dz1_q + dz1_kv, c["ln1"])
        dx = dh + dx_ln
    else:
        # forward: y = LN₂(h + Drop(FFN(h)))
        ds2, dg2, db2 = layer_norm_backward(dy, c["ln2"])
        dh_ffn, g_ffn = feed_forward_backward(dropout_backward(ds2, c["drop2"]), c["ffn"])
        dh = ds2 + dh_ffn                                             # h feeds skip and FFN
        # forward: h = LN₁(x + Drop(MHA(x, x)))
        ds1, dg1, db1 = layer_norm_backward(dh, c["ln1"])
        dx_q, dx_kv, g_attn, dweights = multi_head_attention_backward(
            dropout_backward(ds1, c["drop1"]), c["attn"], return_dweights=True)
        dx = ds1 + (dx_q + dx_kv)                 # x feeds the skip path, queries and keys/values
    grads = {**g_attn, **g_ffn, "ln1_gamma": dg1, "ln1_beta": db1,
             "ln2_gamma": dg2, "ln2_beta": db2}
    return (dx, grads, dweights) if return_dweights else (dx, grads)


# --- a stack of blocks -----------------------------------------------------------------------

def init_encoder(config: EncoderConfig, rng: np.random.Generator, dtype=np.float64) -> list[dict]:
    """``config.num_layers`` independently initialised blocks."""
    return [init_encoder_block(config.d_model, config.d_ff, rng, dtype)
            for _ in range(config.num_layers)]


def encoder_forward(x, layers: list[dict], config: EncoderConfig, mask=None, rng=None,
                    training: bool = False, backend: str = "numpy"):
    """x → block_L(… block_1(x)) → (y (B, T, d), [weights (B, H, T, T)] per layer, caches)."""
    weights, caches = [], []
    for params in layers:
        x, w, c = encoder_block_forward(x, params, config, mask, rng, training, backend)
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
