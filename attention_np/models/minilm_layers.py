"""The layers of a BERT encoder (Devlin et al. 2019) as forward/backward pairs on attention_np ops.

    embeddings:  e = LN(W_word[ids] + W_pos[0 … T−1] + W_type[type_ids])
    each layer:  a = MultiHead(x, x, x),  h = LN₁(x + a),
                 f = GELU(h W₁ + b₁) W₂ + b₂,  y = LN₂(h + f)   (post-LN, exact erf GELU)
    pooling:     s = Σ_t m_t y_t / Σ_t m_t,  u = s / ‖s‖             (sentence-transformers)

Shapes: ids (B, T) int, key mask (B, T) bool (True = real token), hidden (B, T, d).
Parameters use the row-vector convention of attention_np: ``y = x @ W + b`` with W (d_in, d_out).
"""
from __future__ import annotations

import numpy as np

from attention_np.nn.activations import gelu_backward, gelu_forward
from attention_np.core import linear_backward, linear_forward
from attention_np.nn.layers import (embedding_backward, embedding_forward, layer_norm_backward,
                                 layer_norm_forward)
from attention_np.self_attention import (multi_head_attention_backward,
                                         multi_head_attention_forward, split_heads)


# --- embeddings ------------------------------------------------------------------------------

def bert_embeddings_forward(ids, type_ids, p, eps):
    """x = W_word[ids] + W_pos[t] + W_type[type_ids],  e = LN(x).

    ids, type_ids (B, T) int → e (B, T, d). The cache keeps x, the "input embeddings" whose
    gradient :func:`bert_embeddings_backward` returns.
    """
    T = ids.shape[1]
    words, c_word = embedding_forward(ids, p["word"])                       # (B, T, d)
    positions, c_pos = embedding_forward(np.arange(T)[None, :], p["position"])  # (1, T, d)
    types, c_type = embedding_forward(type_ids, p["type"])                 # (B, T, d)
    x = words + positions + types
    e, c_ln = layer_norm_forward(x, p["ln_g"], p["ln_b"], eps)
    return e, {"word": c_word, "pos": c_pos, "type": c_type, "ln": c_ln, "x": x}


def bert_embeddings_backward(de, cache):
    """Returns (dx (B, T, d) — the gradient w.r.t. the summed input embeddings — and the
    parameter gradients). The sum x = words + positions + types passes dx to each table."""
    dx, dln_g, dln_b = layer_norm_backward(de, cache["ln"])
    grads = {"word": embedding_backward(dx, cache["word"]),
             "position": embedding_backward(dx.sum(axis=0, keepdims=True), cache["pos"]),
             "type": embedding_backward(dx, cache["type"]),
             "ln_g": dln_g, "ln_b": dln_b}
    return dx, grads


# --- one encoder layer -----------------------------------------------------------------------

def bert_layer_forward(x, p, num_heads, mask, eps, backend="numpy"):
    """a = MultiHead(x, x, x),  h = LN₁(x + a),  y = LN₂(h + GELU(h W₁ + b₁) W₂ + b₂).

    x (B, T, d), mask broadcastable to (B, H, T, T) → y (B, T, d), weights (B, H, T, T)
    (None with ``backend="numba"``, whose flash kernel never forms them).
    """
    a, weights, c_attn = multi_head_attention_forward(x, x, p["attn"], num_heads, mask=mask,
                                                      backend=backend)       # (B, T, d)
    h, c_ln1 = layer_norm_forward(x + a, p["ln1_g"], p["ln1_b"], eps)
    u, c_fc1 = linear_forward(h, p["W_1"], p["b_1"])                         # (B, T, 4d)
    g, c_gelu = gelu_forward(u)
    f, c_fc2 = linear_forward(g, p["W_2"], p["b_2"])                         # (B, T, d)
    y, c_ln2 = layer_norm_forward(h + f, p["ln2_g"], p["ln2_b"], eps)
    cache = {"attn": c_attn, "ln1": c_ln1, "fc1": c_fc1, "gelu": c_gelu, "fc2": c_fc2,
             "ln2": c_ln2, "num_heads": num_heads}
    return y, weights, cache


def attention_weights_grad(da, cache_attn, num_heads):
    """∂L/∂A for the attention weights A (B, H, T, T) of a multi-head attention whose output
    got gradient da (B, T, d):  out = merge(A V) W_o + b_o  →  dA = split(da W_oᵀ) Vᵀ.

    (This repeats the first matmul of the attention backward, which does not return dA.)
    Returns None for the numba backend, which keeps no weights.
    """
    if cache_attn["attn"]["backend"] != "numpy":
        return None
    values = cache_attn["attn"]["soft"]["values"]                            # (B, H, T, Dh)
    dheads = split_heads(da @ cache_attn["o"]["W"].T, num_heads)             # (B, H, T, Dh)
    return dheads @ np.swapaxes(values, -1, -2)                              # (B, H, T, T)


def bert_layer_backward(dy, cache):
    """Walks the layer back: LN₂, feed-forward (+ residual), LN₁, attention (+ residual).

    Returns (dx (B, T, d), dweights (B, H, T, T) or None, parameter gradients keyed like p).
    """
    dsum2, dln2_g, dln2_b = layer_norm_backward(dy, cache["ln2"])        # y = LN₂(h + f)
    dg, dW_2, db_2 = linear_backward(dsum2, cache["fc2"])                # f = g W₂ + b₂
    du = gelu_backward(dg, cache["gelu"])                                # g = GELU(u)
    dh_ffn, dW_1, db_1 = linear_backward(du, cache["fc1"])               # u = h W₁ + b₁
    dsum1, dln1_g, dln1_b = layer_norm_backward(dsum2 + dh_ffn, cache["ln1"])  # h = LN₁(x + a)
    dx_q, dx_kv, dattn = multi_head_attention_backward(dsum1, cache["attn"])   # a = MHA(x, x)
    dweights = attention_weights_grad(dsum1, cache["attn"], cache["num_heads"])
    grads = {"attn": dattn, "ln1_g": dln1_g, "ln1_b": dln1_b, "W_1": dW_1, "b_1": db_1,
             "W_2": dW_2, "b_2": db_2, "ln2_g": dln2_g, "ln2_b": dln2_b}
    return dsum1 + dx_q + dx_kv, dweights, grads


# --- sentence embedding: mean pooling and L2 normalisation -----------------------------------

def mean_pool_forward(hidden, mask):
    """s_b = Σ_t m_bt y_bt / max(Σ_t m_bt, 1e-9).   hidden (B, T, d), mask (B, T) → s (B, d)."""
    m = mask.astype(hidden.dtype)[..., None]                                 # (B, T, 1)
    count = np.maximum(m.sum(axis=1), 1e-9)                                  # (B, 1)
    return (hidden * m).sum(axis=1) / count, {"m": m, "count": count}


def mean_pool_backward(ds, cache):
    """dy_bt = m_bt ds_b / Σ_t m_bt.   ds (B, d) → dhidden (B, T, d)."""
    return cache["m"] * (ds / cache["count"])[:, None, :]


def l2_normalize_forward(s, eps: float = 1e-12):
    """u = s / max(‖s‖, ε) row-wise.   s (B, d) → u (B, d)."""
    norm = np.maximum(np.linalg.norm(s, axis=-1, keepdims=True), eps)        # (B, 1)
    u = s / norm
    return u, {"u": u, "norm": norm}


def l2_normalize_backward(du, cache):
    """ds = (du − u (u·du)) / ‖s‖: the gradient with its component along u removed."""
    u, norm = cache["u"], cache["norm"]
    return (du - u * (u * du).sum(axis=-1, keepdims=True)) / norm
