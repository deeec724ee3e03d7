"""The Transformer encoder block (Vaswani et al., 2017, §3.1; article §4.3) and a stack of them.

Post-LN (``norm_first=False``, the original paper and torch's default):

    h = LayerNorm₁(x + Dropout(MultiHead(x, x, x)))
    y = LayerNorm₂(h + Dropout(FFN(h))),          FFN(h) = act(h W₁ + b₁) W₂ + b₂

Pre-LN (``norm_first=True``, more stable for deep stacks; put one LayerNorm after the last block):

    h = x + Dropout(MultiHead(LN₁(x), LN₁(x), LN₁(x)))
    y = h + Dropout(FFN(LN₂(h)))

Shapes: x, y (B, T, d_model); W₁ (d_model, d_ff), W₂ (d_ff, d_model). The block equals
``torch.nn.TransformerEncoderLayer(batch_first=True)`` with the same ``norm_first`` and
``activation`` (copy ``W.T`` into torch's ``weight``).

Dropout comes in two places, both inverted dropout with probabilities of their own:
``dropout_p`` on each sub-layer's output before the residual add (torch's ``dropout``), and
``attn_dropout_p`` on the attention weights α before they multiply V (inside torch's
``self_attn``). The lead's multi-head attention has no dropout, so while training with
``attn_dropout_p > 0`` the block runs its own multi-head attention built from the same
primitives; otherwise it calls :func:`multi_head_attention_forward` (any ``backend``).

Masks follow the package convention: boolean, broadcastable to (B, H, T, T), True = may
attend. A padding mask ``pad`` (B, T) (True = real token) becomes ``pad[:, None, None, :]``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attention_np.nn.checks import as_float_array, check_mask
from attention_np.nn.activations import gelu_backward, gelu_forward, relu_backward, relu_forward
from attention_np.core import linear_backward, linear_forward, softmax_backward, softmax_forward
from attention_np.nn.init import ones, xavier_uniform, zeros
from attention_np.nn.layers import (dropout_backward, dropout_forward, layer_norm_backward,
                                 layer_norm_forward)
from attention_np.self_attention import (init_multi_head_params, merge_heads,
                                         multi_head_attention_backward,
                                         multi_head_attention_forward, split_heads)

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
    attn_dropout: float = 0.0     # on the attention weights
    activation: str = "relu"      # "relu" or "gelu" (exact)
    norm_first: bool = False      # False: post-LN (torch default); True: pre-LN
    eps: float = 1e-5

    def block_kwargs(self) -> dict:
        """The keyword arguments of :func:`encoder_block_forward` this config fixes."""
        return {"num_heads": self.num_heads, "dropout_p": self.dropout,
                "attn_dropout_p": self.attn_dropout, "activation": self.activation,
                "norm_first": self.norm_first, "eps": self.eps}


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


# --- multi-head attention with dropout on the weights ----------------------------------------

def _mha_weight_dropout_forward(x, p, num_heads, mask, drop_p, rng):
    """MultiHead(x, x, x) with α ← Dropout(α) between the softmax and α V."""
    qkv = [linear_forward(x, p[f"W_{n}"], p[f"b_{n}"]) for n in "qkv"]      # 3 × (B, T, d)
    qh, kh, vh = (split_heads(t, num_heads) for t, _ in qkv)                # (B, H, T, Dh)
    scale = qh.dtype.type(1.0 / np.sqrt(qh.shape[-1]))
    scores = (qh @ np.swapaxes(kh, -1, -2)) * scale                         # (B, H, T, T)
    weights, sm_cache = softmax_forward(scores, mask=mask)
    dropped, drop_cache = dropout_forward(weights, drop_p, rng, training=True)
    heads = dropped @ vh                                                    # (B, H, T, Dh)
    out, o_cache = linear_forward(merge_heads(heads), p["W_o"], p["b_o"])  # (B, T, d)
    cache = {"lin": [c for _, c in qkv], "qkv": (qh, kh, vh), "scale": scale, "sm": sm_cache,
             "drop": drop_cache, "dropped": dropped, "o": o_cache, "num_heads": num_heads}
    return out, weights, cache


def _mha_weight_dropout_backward(dout, cache):
    qh, kh, vh = cache["qkv"]
    dmerged, dW_o, db_o = linear_backward(dout, cache["o"])
    dheads = split_heads(dmerged, cache["num_heads"])                       # (B, H, T, Dh)
    # forward: heads = α̃ V  →  dα̃ = dheads Vᵀ,  dV = α̃ᵀ dheads
    dvh = np.swapaxes(cache["dropped"], -1, -2) @ dheads
    dweights = dropout_backward(dheads @ np.swapaxes(vh, -1, -2), cache["drop"])
    # forward: α = softmax(s · q kᵀ)  →  de = s · softmax_backward(dα)
    dscores = softmax_backward(dweights, cache["sm"]) * cache["scale"]
    dqh, dkh = dscores @ kh, np.swapaxes(dscores, -1, -2) @ qh
    grads = {"W_o": dW_o, "b_o": db_o}
    dx = 0
    for n, d, lin in zip("qkv", (dqh, dkh, dvh), cache["lin"]):
        dx_n, grads[f"W_{n}"], grads[f"b_{n}"] = linear_backward(merge_heads(d), lin)
        dx = dx + dx_n
    return dx, grads


# --- the two sub-layers ----------------------------------------------------------------------

def _attention_forward(h, p, num_heads, mask, drop_p, rng, training, backend):
    """Self-attention sub-layer → (out, (weights, cache))."""
    if training and drop_p > 0:
        out, weights, cache = _mha_weight_dropout_forward(h, p, num_heads, mask, drop_p, rng)
        return out, (weights, {"own": True, "mha": cache})
    out, weights, cache = multi_head_attention_forward(h, h, p, num_heads, mask=mask,
                                                       backend=backend)
    return out, (weights, {"own": False, "mha": cache})


def _attention_backward(dout, cache):
    cache = cache[1]
    if cache["own"]:
        return _mha_weight_dropout_backward(dout, cache["mha"])
    dx_q, dx_kv, grads = multi_head_attention_backward(dout, cache["mha"])
    return dx_q + dx_kv, grads            # self-attention: x feeds both queries and keys/values


def _ffn_forward(h, p, activation):
    """FFN(h) = act(h W₁ + b₁) W₂ + b₂   (B, T, d) → (B, T, d_ff) → (B, T, d)."""
    u, c1 = linear_forward(h, p["W_1"], p["b_1"])
    a, ca = ACTIVATIONS[activation][0](u)
    f, c2 = linear_forward(a, p["W_2"], p["b_2"])
    return f, (c1, ca, c2, activation)


def _ffn_backward(df, cache):
    c1, ca, c2, activation = cache
    da, dW_2, db_2 = linear_backward(df, c2)
    du = ACTIVATIONS[activation][1](da, ca)
    dh, dW_1, db_1 = linear_backward(du, c1)
    return dh, {"W_1": dW_1, "b_1": db_1, "W_2": dW_2, "b_2": db_2}


# --- residual connection + layer norm around a sub-layer -------------------------------------

def _residual_forward(x, sublayer, gamma, beta, norm_first, eps, drop_p, rng, training):
    """post-LN: y = LN(x + Drop(F(x)));  pre-LN: y = x + Drop(F(LN(x)))."""
    if norm_first:
        h, ln_cache = layer_norm_forward(x, gamma, beta, eps)
        f, f_cache = sublayer(h)
        d, d_cache = dropout_forward(f, drop_p, rng, training)
        y = x + d
    else:
        f, f_cache = sublayer(x)
        d, d_cache = dropout_forward(f, drop_p, rng, training)
        y, ln_cache = layer_norm_forward(x + d, gamma, beta, eps)
    return y, {"ln": ln_cache, "f": f_cache, "drop": d_cache, "norm_first": norm_first}


def _residual_backward(dy, cache, sublayer_backward):
    """Returns (dx, sub-layer grads, dγ, dβ)."""
    if cache["norm_first"]:
        df = dropout_backward(dy, cache["drop"])
        dh, grads = sublayer_backward(df, cache["f"])
        dx_ln, dgamma, dbeta = layer_norm_backward(dh, cache["ln"])
        return dy + dx_ln, grads, dgamma, dbeta      # y = x + …: the skip path passes dy
    ds, dgamma, dbeta = layer_norm_backward(dy, cache["ln"])
    dx_f, grads = sublayer_backward(dropout_backward(ds, cache["drop"]), cache["f"])
    return ds + dx_f, grads, dgamma, dbeta


# --- the block -------------------------------------------------------------------------------

def _check_block(x, params, num_heads, activation):
    x = as_float_array(x, "x", ndim=3)
    missing = [n for n in FFN_NAMES + NORM_NAMES if n not in params]
    if missing:
        raise ValueError(f"params is missing {missing} (make it with init_encoder_block)")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    w1, w2 = np.shape(params["W_1"]), np.shape(params["W_2"])
    if len(w1) != 2 or w1[0] != x.shape[2] or w2 != w1[::-1]:
        raise ValueError(f"params W_1 and W_2 must have shapes (d_model={x.shape[2]}, d_ff) and "
                         f"(d_ff, d_model), got {w1} and {w2}")
    return x


def encoder_block_forward(x, params, num_heads, mask=None, dropout_p=0.0, rng=None,
                          training=False, backend="numpy", *, attn_dropout_p=0.0,
                          activation="relu", norm_first=False, eps=1e-5):
    """One Transformer encoder block (formulas in the module docstring).

    x (B, T, d_model); params from :func:`init_encoder_block`; mask boolean broadcastable to
    (B, H, T, T), True = may attend; ``rng`` (a ``np.random.Generator``) is needed only when
    ``training`` with a dropout probability > 0 → y (B, T, d_model), weights (B, H, T, T)
    (the attention weights before dropout; None for ``backend="numba"``), cache.
    """
    x = _check_block(x, params, num_heads, activation)
    B, T = x.shape[:2]
    mask = check_mask(mask, "mask", (B, num_heads, T, T))
    p = params

    def attention(h):
        return _attention_forward(h, p, num_heads, mask, attn_dropout_p, rng, training, backend)

    def ffn(h):
        return _ffn_forward(h, p, activation)

    common = {"norm_first": norm_first, "eps": eps, "drop_p": dropout_p, "rng": rng,
              "training": training}
    h, c_attn = _residual_forward(x, attention, p["ln1_gamma"], p["ln1_beta"], **common)
    y, c_ffn = _residual_forward(h, ffn, p["ln2_gamma"], p["ln2_beta"], **common)
    weights = c_attn["f"][0]
    return y, weights, {"attn": c_attn, "ffn": c_ffn}


def encoder_block_backward(dy, cache):
    """Walks the block back: FFN residual, then attention residual → (dx, grads like params)."""
    dh, grads, dg2, db2 = _residual_backward(dy, cache["ffn"], _ffn_backward)
    dx, attn_grads, dg1, db1 = _residual_backward(dh, cache["attn"], _attention_backward)
    grads.update(attn_grads, ln1_gamma=dg1, ln1_beta=db1, ln2_gamma=dg2, ln2_beta=db2)
    return dx, grads


# --- a stack of blocks -----------------------------------------------------------------------

def init_encoder(config: EncoderConfig, rng: np.random.Generator, dtype=np.float64) -> list[dict]:
    """``config.num_layers`` independently initialised blocks."""
    return [init_encoder_block(config.d_model, config.d_ff, rng, dtype)
            for _ in range(config.num_layers)]


def encoder_forward(x, layers: list[dict], config: EncoderConfig, mask=None, rng=None,
                    training=False, backend="numpy"):
    """x → block_L(… block_1(x)) → (y (B, T, d), [weights (B, H, T, T)] per layer, caches)."""
    weights, caches = [], []
    for params in layers:
        x, w, c = encoder_block_forward(x, params, mask=mask, rng=rng, training=training,
                                        backend=backend, **config.block_kwargs())
        weights.append(w)
        caches.append(c)
    return x, weights, caches


def encoder_backward(dy, caches: list) -> tuple[np.ndarray, list[dict]]:
    """Reverse of :func:`encoder_forward` → (dx, [grads per layer])."""
    grads = []
    for cache in reversed(caches):
        dy, g = encoder_block_backward(dy, cache)
        grads.append(g)
    return dy, grads[::-1]
