"""The position-wise feed-forward network of the Transformer block (Vaswani et al., 2017, §3.3)
and the block's second sub-layer built around it.

    FFN(h) = act(h W₁ + b₁) W₂ + b₂                       (the same MLP at every position)
    pre-LN  (norm_first=True):   y = h + Dropout(FFN(LN₂(h)))
    post-LN (norm_first=False):  y = LN₂(h + Dropout(FFN(h)))
    attention-only (mlp=False):  y = h                     (Olsson et al., 2022's small models)

Shapes: h, y (B, T, d); W₁ (d, d_ff), b₁ (d_ff,), W₂ (d_ff, d), b₂ (d,). The encoder block
(:mod:`attention_np.transformer`) and the language model's cached decoding step
(:mod:`attention_np.lm`) both run their second half through :func:`_ffn_sublayer`.
"""
from __future__ import annotations

from attention_np.core import _linear, linear_backward
from attention_np.nn.activations import gelu_backward, gelu_forward, relu_backward, relu_forward
from attention_np.nn.checks import as_dout, as_float_array, check_params
from attention_np.nn.layers import (dropout_backward, dropout_forward, layer_norm_backward,
                                    layer_norm_forward)

ACTIVATIONS = {"relu": (relu_forward, relu_backward), "gelu": (gelu_forward, gelu_backward)}


def feed_forward_forward(h, params, activation: str = "relu"):
    """FFN(h) = act(h W₁ + b₁) W₂ + b₂, position by position.

    h (B, T, d), params W_1 (d, d_ff), b_1 (d_ff,), W_2 (d_ff, d), b_2 (d,); activation "relu"
    or "gelu" → f (B, T, d).
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    h = as_float_array(h, "h", min_ndim=1)
    return _feed_forward(h, check_ffn_params(params, h.shape[-1]), activation)


def check_ffn_params(params, d: int, name: str = "params") -> dict:
    """W_1 (d, d_ff), b_1 (d_ff,), W_2 (d_ff, d), b_2 (d,) as float arrays; messages name
    ``name['W_1']`` … (``name`` is e.g. layers[2] for a stack of blocks)."""
    p = check_params(params, {"W_1": (d, None)}, name)
    d_ff = p["W_1"].shape[1]
    return p | check_params(params, {"b_1": (d_ff,), "W_2": (d_ff, d), "b_2": (d,)}, name)


def _feed_forward(h, p, activation: str):
    """:func:`feed_forward_forward` on checked input."""
    u, c_fc1 = _linear(h, p["W_1"], p["b_1"])                               # (B, T, d_ff)
    a, c_act = ACTIVATIONS[activation][0](u)                                # (B, T, d_ff)
    f, c_fc2 = _linear(a, p["W_2"], p["b_2"])                               # (B, T, d)
    return f, {"fc1": c_fc1, "act": c_act, "fc2": c_fc2, "activation": activation,
               "out_shape": f.shape}


def feed_forward_backward(df, cache):
    """Walks the FFN back → (dh (B, T, d), grads W_1, b_1, W_2, b_2)."""
    df = as_dout(df, cache["out_shape"], name="df")
    da, dW_2, db_2 = linear_backward(df, cache["fc2"])                      # f = a W₂ + b₂
    du = ACTIVATIONS[cache["activation"]][1](da, cache["act"])             # a = act(u)
    dh, dW_1, db_1 = linear_backward(du, cache["fc1"])                      # u = h W₁ + b₁
    return dh, {"W_1": dW_1, "b_1": db_1, "W_2": dW_2, "b_2": db_2}


def _ffn_sublayer(h, p, c, rng=None, training: bool = False):
    """The block's second half on checked input (formulas in the module docstring).

    h (B, T, d); p the block's parameters; c an ``EncoderConfig`` (mlp, norm_first, activation,
    dropout, eps) → (y (B, T, d), cache; None for an attention-only block).
    """
    if not c.mlp:
        return h, None                                                  # y = h
    if c.norm_first:
        z2, c_ln2 = layer_norm_forward(h, p["ln2_gamma"], p["ln2_beta"], c.eps)   # z₂ = LN₂(h)
        f, c_ffn = _feed_forward(z2, p, c.activation)                             # (B, T, d)
        f_d, c_drop2 = dropout_forward(f, c.dropout, rng, training)
        y = h + f_d                                                     # y = h + Drop(f)
    else:
        f, c_ffn = _feed_forward(h, p, c.activation)                              # (B, T, d)
        f_d, c_drop2 = dropout_forward(f, c.dropout, rng, training)
        y, c_ln2 = layer_norm_forward(h + f_d, p["ln2_gamma"], p["ln2_beta"], c.eps)  # LN₂(h + f)
    return y, {"norm_first": c.norm_first, "ln2": c_ln2, "ffn": c_ffn, "drop2": c_drop2}


def _ffn_sublayer_backward(dy, cache):
    """Reverse of :func:`_ffn_sublayer` → (dh (B, T, d), grads of W_1 … b_2, ln2_gamma,
    ln2_beta; empty for an attention-only block)."""
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
    return dh, {**g_ffn, "ln2_gamma": dg2, "ln2_beta": db2}
