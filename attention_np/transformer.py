"""The Transformer encoder block (Vaswani et al., 2017, §3.1; article §4.3) and a stack of them.

Post-LN (``norm_first=False``, the original paper, BERT and torch's default):

    h = LN₁(x + Dropout(MultiHead(x, x, x)))
    y = LN₂(h + Dropout(FFN(h))),                 FFN(h) = act(h W₁ + b₁) W₂ + b₂

Pre-LN (``norm_first=True``, more stable for deep stacks; the stack ends in one more LayerNorm):

    h = x + Dropout(MultiHead(LN₁(x), LN₁(x), LN₁(x)))
    y = h + Dropout(FFN(LN₂(h)))

Shapes: x, y (B, T, d_model); W₁ (d_model, d_ff), W₂ (d_ff, d_model). The block equals
``torch.nn.TransformerEncoderLayer(batch_first=True)`` with the same ``norm_first`` and
``activation`` (copy ``W.T`` into torch's ``weight``), and with post-LN, GELU and ε = 1e-12 it
is a BERT layer (``models.minilm`` runs every layer of all-MiniLM-L6-v2 through it). FFN is the
position-wise feed-forward network (Vaswani et al., §3.3): the same MLP at every position.

``causal=True`` lets position i attend to positions j ≤ i only (with any mask given on top), as
in a decoder-only language model (:mod:`attention_np.lm`). ``mlp=False`` drops the FFN
sub-layer and LN₂ (y = h), the attention-only blocks of Olsson et al. (2022).

Dropout comes in two places, both inverted dropout with probabilities of their own
(:class:`EncoderConfig`): ``dropout`` on each sub-layer's output before the residual add
(torch's ``dropout``), and ``attn_dropout`` on the attention weights α before they multiply V
(inside torch's ``self_attn``; here :mod:`attention_np.self_attention`'s ``dropout_p``).

Parameters are one flat dict with dotted keys (:mod:`attention_np.nn.params`). A block's:

    attn.W_q attn.W_k attn.W_v attn.W_o (d, d), attn.b_q … attn.b_o (d,)   multi-head attention
    ln1.gamma ln1.beta (d,)                                                  LN₁
    ffn.W_1 (d, d_ff) ffn.b_1 (d_ff,) ffn.W_2 (d_ff, d) ffn.b_2 (d,)         FFN (mlp=True)
    ln2.gamma ln2.beta (d,)                                                  LN₂ (mlp=True)

and a stack's, under an optional prefix (``enc.`` in an encoder–decoder): ``blocks.0.attn.W_q``
… ``blocks.{L−1}.ln2.beta``, and for pre-LN the final ``ln_f.gamma``, ``ln_f.beta``. Every model
of the package (the LM, ViT, the sentiment classifier, the translator's Transformer, MiniLM)
runs its encoder through :func:`encoder_forward` / :func:`encoder_backward`.

``backend="numba"`` runs a post-LN block with the FFN through the fused kernels (BLAS
products, fused attention, bias+activation, residual+LN; :mod:`attention_np.nn.backend`); other
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

from attention_np.core import linear_backward, linear_core
from attention_np.nn import backend as numba_backend
from attention_np.nn.activations import gelu_backward, gelu_forward, relu_backward, relu_forward
from attention_np.nn.checks import (as_dout, as_float_array, check_num_heads, check_params,
                                    check_positive_int, check_rng)
from attention_np.nn.init import ones, xavier_uniform, zeros
from attention_np.nn.layers import (dropout_backward, dropout_forward, layer_norm_backward,
                                    layer_norm_forward)
from attention_np.nn.params import join, prefixed, sub
from attention_np.self_attention import (check_multi_head_inputs, init_multi_head_params,
                                         multi_head_attention_backward, multi_head_attention_core)

__all__ = ["EncoderConfig", "init_encoder_block", "encoder_block_forward",
           "encoder_block_backward", "init_encoder", "encoder_forward", "encoder_backward",
           "feed_forward_forward", "feed_forward_backward"]
ACTIVATIONS = {"relu": (relu_forward, relu_backward), "gelu": (gelu_forward, gelu_backward)}


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
    norm_first: bool = False      # False: post-LN (torch default); True: pre-LN + a final LN
    eps: float = 1e-5             # of every layer norm
    causal: bool = False          # True: position i attends to j ≤ i only (a decoder-only LM)
    mlp: bool = True              # False: attention-only, y = h (no FFN, no LN₂)


def norm_params(d_model: int, dtype=np.float64) -> dict:
    """γ = 1, β = 0 of one layer norm."""
    d_model = check_positive_int(d_model, "d_model")
    return {"gamma": ones(d_model, dtype), "beta": zeros(d_model, dtype)}


def init_encoder_block(d_model: int, d_ff: int, rng: np.random.Generator,
                       dtype=np.float64, mlp: bool = True) -> dict:
    """One block's parameters (module docstring): the multi-head attention's projections and
    the FFN's W₁, W₂ Xavier-uniform with zero biases (drawn in that order), the layer norms'
    γ = 1, β = 0. ``mlp=False``: attention and LN₁ only (no FFN, no LN₂)."""
    params = prefixed("attn", init_multi_head_params(d_model, rng, dtype))
    params.update(prefixed("ln1", norm_params(d_model, dtype)))
    if mlp:
        params.update(prefixed("ffn", init_feed_forward(d_model, d_ff, rng, dtype)))
        params.update(prefixed("ln2", norm_params(d_model, dtype)))
    return params


def init_feed_forward(d_model: int, d_ff: int, rng: np.random.Generator,
                      dtype=np.float64) -> dict:
    """W_1 (d_model, d_ff) and W_2 (d_ff, d_model) Xavier-uniform, zero biases."""
    d_ff = check_positive_int(d_ff, "d_ff")
    return {"W_1": xavier_uniform((d_model, d_ff), rng, dtype), "b_1": zeros(d_ff, dtype),
            "W_2": xavier_uniform((d_ff, d_model), rng, dtype), "b_2": zeros(d_model, dtype)}


# --- the position-wise feed-forward network --------------------------------------------------

def feed_forward_forward(h, params, activation: str = "relu"):
    """FFN(h) = act(h W₁ + b₁) W₂ + b₂, position by position.

    h (..., d), params W_1 (d, d_ff), b_1 (d_ff,), W_2 (d_ff, d), b_2 (d,); activation "relu"
    or "gelu" → f (..., d), cache.
    """
    check_activation(activation, "activation")
    h = as_float_array(h, "h", min_ndim=1)
    return feed_forward_core(h, check_ffn_params(params, h.shape[-1]), activation)


def check_activation(activation, name: str) -> str:
    """``activation`` names one of :data:`ACTIVATIONS`, or ValueError naming ``name``."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"{name} must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    return activation


def check_ffn_params(params, d: int, name: str = "params", prefix: str = "") -> dict:
    """W_1 (d, d_ff), b_1 (d_ff,), W_2 (d_ff, d), b_2 (d,) as float arrays, read as
    ``params[prefix + 'W_1']`` …; messages name them that way (e.g. params['blocks.2.ffn.W_1'])."""
    p = check_params(params, {"W_1": (d, None)}, name, prefix)
    d_ff = p["W_1"].shape[1]
    return p | check_params(params, {"b_1": (d_ff,), "W_2": (d_ff, d), "b_2": (d,)}, name, prefix)


def feed_forward_core(h, p, activation: str):
    """:func:`feed_forward_forward` on checked input."""
    u, c_fc1 = linear_core(h, p["W_1"], p["b_1"])                           # (..., d_ff)
    a, c_act = ACTIVATIONS[activation][0](u)                                # (..., d_ff)
    f, c_fc2 = linear_core(a, p["W_2"], p["b_2"])                           # (..., d)
    return f, {"fc1": c_fc1, "act": c_act, "fc2": c_fc2, "activation": activation,
               "out_shape": f.shape}


def feed_forward_backward(df, cache):
    """Walks the FFN back → (dh (..., d), grads W_1, b_1, W_2, b_2)."""
    df = as_dout(df, cache["out_shape"], name="df")
    da, dW_2, db_2 = linear_backward(df, cache["fc2"])                      # f = a W₂ + b₂
    du = ACTIVATIONS[cache["activation"]][1](da, cache["act"])             # a = act(u)
    dh, dW_1, db_1 = linear_backward(du, cache["fc1"])                      # u = h W₁ + b₁
    return dh, {"W_1": dW_1, "b_1": db_1, "W_2": dW_2, "b_2": db_2}


def ffn_sublayer_core(h, p, c: EncoderConfig, rng=None, training: bool = False):
    """The block's second half on checked input: y = LN₂(h + Drop(FFN(h))) (post-LN),
    h + Drop(FFN(LN₂(h))) (pre-LN) or y = h (``mlp=False``).

    h (B, T, d); p the block's parameters → (y (B, T, d), cache; None when mlp=False).
    """
    if not c.mlp:
        return h, None                                                  # y = h
    ffn = sub(p, "ffn")
    if c.norm_first:
        z2, c_ln2 = layer_norm_forward(h, p["ln2.gamma"], p["ln2.beta"], c.eps)   # z₂ = LN₂(h)
        f, c_ffn = feed_forward_core(z2, ffn, c.activation)                       # (B, T, d)
        f_d, c_drop2 = dropout_forward(f, c.dropout, rng, training)
        y = h + f_d                                                     # y = h + Drop(f)
    else:
        f, c_ffn = feed_forward_core(h, ffn, c.activation)                        # (B, T, d)
        f_d, c_drop2 = dropout_forward(f, c.dropout, rng, training)
        y, c_ln2 = layer_norm_forward(h + f_d, p["ln2.gamma"], p["ln2.beta"], c.eps)  # LN₂(h + f)
    return y, {"norm_first": c.norm_first, "ln2": c_ln2, "ffn": c_ffn, "drop2": c_drop2}


def _ffn_sublayer_backward(dy, cache):
    """Reverse of :func:`ffn_sublayer_core` → (dh (B, T, d), grads of ffn.* and ln2.*; empty
    for an attention-only block)."""
    if cache is None:
        return dy, {}                                                   # y = h
    if cache["norm_first"]:
        # forward: y = h + Drop(FFN(z₂)),  z₂ = LN₂(h)
        dz2, g_ffn = feed_forward_backward(dropout_backward(dy, cache["drop2"]), cache["ffn"])
        dh_ln, dg2, db2 = layer_norm_backward(dz2, cache["ln2"])
        dh = dy + dh_ln                                               # the skip path passes dy
    else:
        # forward: y = LN₂(h + Drop(FFN(h)))
        ds2, dg2, db2 = layer_norm_backward(dy, cache["ln2"])
        dh_ffn, g_ffn = feed_forward_backward(dropout_backward(ds2, cache["drop2"]), cache["ffn"])
        dh = ds2 + dh_ffn                                             # h feeds skip and FFN
    return dh, {**prefixed("ffn", g_ffn), "ln2.gamma": dg2, "ln2.beta": db2}


# --- the block -------------------------------------------------------------------------------

def _check_block(x, params, config: EncoderConfig, mask, rng, training, backend,
                prefix: str = ""):
    """Everything the block's trusting path relies on → (x, mask broadcast to (B, H, T, T)).
    The block's parameters are ``params[prefix + 'attn.W_q']`` …, and messages name them so."""
    x = as_float_array(x, "x", ndim=3)
    d = x.shape[2]
    check_activation(config.activation, "config.activation")
    norms = ("ln1", "ln2") if config.mlp else ("ln1",)                 # attention-only: LN₁
    keys = [f"{n}.{g}" for n in norms for g in ("gamma", "beta")]
    keys += [f"ffn.{w}" for w in ("W_1", "b_1", "W_2", "b_2")] if config.mlp else []
    missing = [prefix + k for k in keys if prefix + k not in params]
    if missing:
        raise ValueError(f"params is missing {missing} (make them with init_encoder_block)")
    if config.mlp:
        check_ffn_params(params, d, "params", prefix + "ffn.")
    check_params(params, {k: (d,) for k in keys if k.startswith("ln")}, "params", prefix)
    if training and config.dropout > 0:
        check_rng(rng, f"when training with dropout {config.dropout}")
    attn_p = config.attn_dropout if training else 0.0
    x, _, _, mask = check_multi_head_inputs(x, x, params, config.num_heads, mask, backend,
                                            attn_p, rng, "params", prefix + "attn.")
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
    return encoder_block_core(x, params, config, mask, rng, training, backend)


# The block's arrays under the names of the fused kernel (attention_np.kernels.encoder.WEIGHTS).
_FUSED_NAMES = ({f"{n}_{s}": f"attn.{n}_{s}" for n in "Wb" for s in "qkvo"}
                | {n: f"ffn.{n}" for n in ("W_1", "b_1", "W_2", "b_2")}
                | {f"{ln}_{g}": f"{ln}.{g}" for ln in ("ln1", "ln2") for g in ("gamma", "beta")})


def encoder_block_core(x, p, c: EncoderConfig, mask, rng, training, backend):
    """The block on checked inputs (mask already (B, H, T, T) or None)."""
    dropout_active = training and (c.dropout > 0 or c.attn_dropout > 0)
    if backend == "numba" and numba_backend.fused_block_covers(c.norm_first, c.mlp, c.activation,
                                                         dropout_active):
        weights = {kernel_name: p[key] for kernel_name, key in _FUSED_NAMES.items()}
        y, state = numba_backend.fused_block_forward(x, weights, c.num_heads, c.causal,
                                               c.activation == "gelu", c.eps, mask)
        return y, None, {"fused": state}
    attn, attn_p = sub(p, "attn"), c.attn_dropout if training else 0.0
    if c.norm_first:
        z1, c_ln1 = layer_norm_forward(x, p["ln1.gamma"], p["ln1.beta"], c.eps)   # z₁ = LN₁(x)
        a, weights, c_attn = multi_head_attention_core(z1, z1, attn, c.num_heads, mask, c.causal,
                                                       backend, attn_p, rng)      # (B, T, d)
        a_d, c_drop1 = dropout_forward(a, c.dropout, rng, training)
        h = x + a_d                                                     # h = x + Drop(a)
    else:
        a, weights, c_attn = multi_head_attention_core(x, x, attn, c.num_heads, mask, c.causal,
                                                       backend, attn_p, rng)      # (B, T, d)
        a_d, c_drop1 = dropout_forward(a, c.dropout, rng, training)
        h, c_ln1 = layer_norm_forward(x + a_d, p["ln1.gamma"], p["ln1.beta"], c.eps)  # LN₁(x + a)
    y, c_ffn = ffn_sublayer_core(h, p, c, rng, training)               # FFN sub-layer (or y = h)
    cache = {"norm_first": c.norm_first, "ln1": c_ln1, "attn": c_attn, "drop1": c_drop1,
             "ffn_sublayer": c_ffn}
    return y, weights, cache


def encoder_block_backward(dy, cache, return_dweights: bool = False):
    """Walks the block back, FFN sub-layer first → (dx, grads keyed like params), and with
    ``return_dweights`` also ∂L/∂α (B, H, T, T) for the attention weights the forward returned
    (None for ``backend="numba"``)."""
    if "fused" in cache:                    # the forward ran the fused kernel
        dx, fused_grads = numba_backend.fused_block_backward(dy, cache["fused"])
        grads = {_FUSED_NAMES[name]: g for name, g in fused_grads.items()}
        return (dx, grads, None) if return_dweights else (dx, grads)
    c = cache
    dh, g_ffn = _ffn_sublayer_backward(dy, c["ffn_sublayer"])           # y = FFN sub-layer(h)
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
    grads = {**prefixed("attn", g_attn), "ln1.gamma": dg1, "ln1.beta": db1, **g_ffn}
    return (dx, grads, dweights) if return_dweights else (dx, grads)


# --- a stack of blocks -----------------------------------------------------------------------

def init_encoder(config: EncoderConfig, rng: np.random.Generator, dtype=np.float64, *,
                 prefix: str = "") -> dict:
    """``config.num_layers`` independently initialised blocks under ``prefix.blocks.{l}.`` and,
    for pre-LN, the final norm ``prefix.ln_f`` (γ = 1, β = 0)."""
    check_num_heads(config.num_heads, config.d_model, f"config.d_model is {config.d_model}")
    params = {}
    for layer in range(config.num_layers):
        params.update(prefixed(join(prefix, f"blocks.{layer}"),
                               init_encoder_block(config.d_model, config.d_ff, rng, dtype,
                                                  config.mlp)))
    if config.norm_first:
        params.update(prefixed(join(prefix, "ln_f"), norm_params(config.d_model, dtype)))
    return params


def encoder_forward(x, params, config: EncoderConfig, *, prefix: str = "", mask=None, rng=None,
                    training: bool = False, backend: str = "numpy", return_hidden: bool = False):
    """x → block_L(… block_1(x)) (then LN_f for pre-LN) → (y (B, T, d),
    [weights (B, H, T, T)] per layer, cache), and with ``return_hidden`` a fourth value: the
    inputs of the L blocks and their output, [x_0 = x, x_1, …, x_L] (B, T, d) (before LN_f).

    params: the model's flat dict; the stack reads ``prefix.blocks.{l}.*`` for l < num_layers
    and, with ``config.norm_first``, ``prefix.ln_f.gamma`` / ``.beta``.
    """
    weights, caches, hidden = [], [], []
    for layer in range(config.num_layers):
        block_prefix = join(prefix, f"blocks.{layer}") + "."
        x, mask_l = _check_block(x, params, config, mask, rng, training, backend, block_prefix)
        hidden.append(x)
        x, w, c = encoder_block_core(x, sub(params, block_prefix[:-1]), config, mask_l, rng,
                                     training, backend)
        weights.append(w)
        caches.append(c)
    hidden.append(x)
    c_ln = None
    if config.norm_first:
        ln = join(prefix, "ln_f")
        norm = check_params(params, {"gamma": (x.shape[2],), "beta": (x.shape[2],)}, "params",
                            ln + ".")
        x, c_ln = layer_norm_forward(x, norm["gamma"], norm["beta"], config.eps)
    cache = {"blocks": caches, "ln_f": c_ln, "prefix": prefix}
    return (x, weights, cache, hidden) if return_hidden else (x, weights, cache)


def encoder_backward(dy, cache, return_dweights: bool = False):
    """Reverse of :func:`encoder_forward` → (dx, grads keyed like the params the stack read),
    and with ``return_dweights`` also [∂L/∂α (B, H, T, T) per layer] (None entries for numba)."""
    prefix, grads, dweights = cache["prefix"], {}, []
    if cache["ln_f"] is not None:
        dy, dgamma, dbeta = layer_norm_backward(dy, cache["ln_f"])
        grads.update(prefixed(join(prefix, "ln_f"), {"gamma": dgamma, "beta": dbeta}))
    for layer in reversed(range(len(cache["blocks"]))):
        dy, g, dw = encoder_block_backward(dy, cache["blocks"][layer], return_dweights=True)
        grads.update(prefixed(join(prefix, f"blocks.{layer}"), g))
        dweights.append(dw)
    return (dy, grads, dweights[::-1]) if return_dweights else (dy, grads)


def encoder_packed_core(rows, lengths, params, config: EncoderConfig, prefix: str = ""):
    """Inference through a post-LN stack with the FFN on sequences stored back to back without
    padding (the fused kernels: :func:`attention_np.nn.backend.fused_packed_blocks`): rows
    (N, d), the tokens of sequence b at rows Σ_{b'<b} lengths[b'] … → rows (N, d). Trusts its
    input: params as :func:`init_encoder` makes them for ``config``."""
    layers = [{name: params[join(prefix, f"blocks.{layer}.{key}")]
               for name, key in _FUSED_NAMES.items()} for layer in range(config.num_layers)]
    return numba_backend.fused_packed_blocks(rows, lengths, layers, config.num_heads, config.causal,
                                       config.activation == "gelu", config.eps)
