"""Self-attention and multi-head attention (article §3.3, §3.4, §4.2, §4.3).

Scaled dot-product attention is soft attention whose scores are scaled dot products:

    e_ij = q_iᵀ k_j / √D,   α = softmax(e),   z_i = Σ_j α_ij v_j

Self-attention is the case where q, k, v are projections of the same sequence x:
q_i = x_i W_q, k_j = x_j W_k, v_j = x_j W_v (row vectors; the article writes W_q x_i).

Multi-head attention runs H of these in parallel on d_model/H-dimensional slices:

    MultiHead(Q, K, V) = Concat(head_1, …, head_H) W^O,   head_h = Attention(Q W_h^Q, K W_h^K, V W_h^V)

``backend="numba"`` computes the same function with the fused flash-attention kernels
(through :mod:`attention_np.nn.backend`), which never materialise the (Tq, Tk) weights: the
returned weights are then ``None``. ``dropout_p > 0`` (dropout on α, as torch's SDPA and ``nn.MultiheadAttention``)
runs the NumPy path whatever the backend: the flash kernels have no dropout.

Public functions validate their input once and call the trusting private cores ``sdpa_core`` and
``multi_head_attention_core`` (which other modules of the package call directly).
"""
from __future__ import annotations

import numpy as np

from attention_np.core import causal_mask, linear_backward, linear_core
from attention_np.nn import backend as numba_backend
from attention_np.nn.backend import check_backend
from attention_np.nn.checks import (as_dout, as_float_array, check_attention_inputs,
                                    check_dropout, check_mask, check_nonempty, check_num_heads,
                                    check_params, check_positive_int, check_same_dim)
from attention_np.nn.init import xavier_uniform, zeros
from attention_np.scores import dot_product_scale
from attention_np.soft import soft_attention_core, soft_attention_backward

PARAM_NAMES = ("W_q", "W_k", "W_v", "W_o", "b_q", "b_k", "b_v", "b_o")


def check_qkv(q, k, v, same_length: bool = False):
    """Validate q (..., Tq, D), k (..., Tk, D), v (..., Tk, Dv) with D ≥ 1 (the scale 1/√D);
    return them as float arrays.

    ``same_length``: also require Tq = Tk (variants that attend within one sequence).
    """
    q, k, v = check_attention_inputs(q, k, v)
    check_nonempty(q, "q", -1, "feature dimension D (the scale is 1/√D)")
    if same_length and q.shape[-2] != k.shape[-2]:
        raise ValueError(f"this variant needs Tq = Tk (self-attention over one sequence), got "
                         f"q{q.shape} and k{k.shape}")
    return q, k, v


def scaled_dot_product_attention_forward(q, k, v, mask=None, causal=False, backend="numpy",
                                         dropout_p=0.0, rng=None):
    """out = Dropout(softmax(q kᵀ / √D, masked)) v.

    q (..., Tq, D) with D ≥ 1, k (..., Tk, D), v (..., Tk, Dv) (Tk = 0: out = 0); mask boolean
    broadcastable to (..., Tq, Tk), True = may attend; ``causal``: query i sees keys j ≤ i
    (top-left aligned, as torch's ``is_causal``); ``dropout_p`` on the weights, with an
    ``np.random.Generator`` ``rng`` when > 0 (forces the NumPy path for "numba")
    → out (..., Tq, Dv), weights (..., Tq, Tk) before dropout (None for "numba"), cache.
    """
    check_backend(backend)
    q, k, v = check_qkv(q, k, v)
    mask = check_mask(mask, "mask", q.shape[:-1] + k.shape[-2:-1])
    return sdpa_core(q, k, v, mask, causal, backend, check_dropout(dropout_p, rng), rng)


def sdpa_core(q, k, v, mask, causal: bool, backend: str, dropout_p: float, rng):
    """Scaled dot-product attention on checked input (mask broadcast to (..., Tq, Tk) or None)."""
    if backend == "numba" and dropout_p == 0:
        out, state = numba_backend.flash_sdpa_forward(q, k, v, mask, causal)
        return out, None, {"backend": "numba", "flash": state, "out_shape": out.shape}
    scale = dot_product_scale(q)
    scores = (q @ np.swapaxes(k, -1, -2)) * scale                      # (..., Tq, Tk)
    if causal:
        tri = causal_mask(scores.shape[-2], scores.shape[-1])           # (Tq, Tk)
        mask = tri if mask is None else mask & tri
    out, weights, soft_cache = soft_attention_core(scores, v, mask, dropout_p, rng)
    cache = {"backend": "numpy", "q": q, "k": k, "scale": scale, "soft": soft_cache,
             "out_shape": out.shape}
    return out, weights, cache


def scaled_dot_product_attention_backward(dout, cache, return_dweights=False):
    """Walks the forward back: (de, dv) from soft attention, then e = s·q kᵀ gives
    dq = s·de k and dk = s·deᵀ q.  Returns (dq, dk, dv), or (dq, dk, dv, dα) with
    ``return_dweights``: dα = ∂L/∂α (..., Tq, Tk) for the pre-dropout weights (None for "numba")."""
    dout = as_dout(dout, cache["out_shape"], name="dout")
    if cache["backend"] == "numba":
        grads = numba_backend.flash_sdpa_backward(dout, cache["flash"])
        return grads + (None,) if return_dweights else grads
    q, k, scale = cache["q"], cache["k"], cache["scale"]
    dscores, dv, dweights = soft_attention_backward(dout, cache["soft"], return_dweights=True)
    dscores = dscores * scale
    grads = (dscores @ k, np.swapaxes(dscores, -1, -2) @ q, dv)
    return grads + (dweights,) if return_dweights else grads


def split_heads(x, num_heads: int) -> np.ndarray:
    """(B, T, H·Dh) → (B, H, T, Dh): head h owns features h·Dh … (h+1)·Dh − 1 (as torch)."""
    x = as_float_array(x, "x", ndim=3)
    return split_heads_core(x, check_num_heads(num_heads, x.shape[2], f"x has shape {x.shape}"))


def split_heads_core(x: np.ndarray, num_heads: int) -> np.ndarray:
    B, T, d = x.shape
    return x.reshape(B, T, num_heads, d // num_heads).transpose(0, 2, 1, 3)   # (B, H, T, Dh)


def merge_heads(x) -> np.ndarray:
    """(B, H, T, Dh) → (B, T, H·Dh), the inverse of :func:`split_heads` (the Concat)."""
    return merge_heads_core(as_float_array(x, "x", ndim=4))


def merge_heads_core(x: np.ndarray) -> np.ndarray:
    B, H, T, Dh = x.shape
    return x.transpose(0, 2, 1, 3).reshape(B, T, H * Dh)                  # (B, T, H·Dh)


def init_multi_head_params(d_model: int, rng: np.random.Generator, dtype=np.float64) -> dict:
    """Xavier-uniform projections (torch's ``in_proj`` init) and zero biases."""
    d_model = check_positive_int(d_model, "d_model")
    params = {f"W_{n}": xavier_uniform((d_model, d_model), rng, dtype) for n in "qkvo"}
    params.update({f"b_{n}": zeros(d_model, dtype) for n in "qkvo"})
    return params


def check_multi_head_inputs(x_q, x_kv, params, num_heads, mask=None, backend="numpy",
                            dropout_p=0.0, rng=None, params_name="params", prefix="",
                            mask_name="mask"):
    """Everything :func:`multi_head_attention_forward` checks, for callers of
    :func:`multi_head_attention_core`. Returns (x_q, x_kv, params, mask) as float arrays,
    params restricted to :data:`PARAM_NAMES` (read as ``params[prefix + 'W_q']`` …, e.g.
    prefix 'blocks.2.attn.' in a model's flat dict), the mask broadcast to (B, H, Tq, Tk) or
    None. ``params_name`` and ``mask_name`` are what messages call the dict and the mask."""
    x_q = as_float_array(x_q, "x_q", ndim=3)
    x_kv = as_float_array(x_kv, "x_kv", ndim=3)
    check_same_dim(x_q, "x_q", 0, x_kv, "x_kv", 0)
    check_same_dim(x_q, "x_q", 2, x_kv, "x_kv", 2)
    (B, Tq, d), Tk = x_q.shape, x_kv.shape[1]
    check_num_heads(num_heads, d, f"x_q has shape {x_q.shape}")
    params = check_params(params, {n: (d, d) if n.startswith("W") else (d,)
                                   for n in PARAM_NAMES}, params_name, prefix)
    check_backend(backend)
    check_dropout(dropout_p, rng)
    return x_q, x_kv, params, check_mask(mask, mask_name, (B, num_heads, Tq, Tk))


def multi_head_attention_forward(x_q, x_kv, params, num_heads, mask=None, causal=False,
                                 backend="numpy", dropout_p=0.0, rng=None):
    """Concat(head_1 … head_H) W_o + b_o,  head_h = Attention(x_q W_q^h, x_kv W_k^h, x_kv W_v^h).

    x_q (B, Tq, d), x_kv (B, Tk, d), params W_* (d, d), b_* (d,), mask broadcastable to
    (B, H, Tq, Tk) with True = may attend; ``dropout_p`` on each head's weights α (rng a
    ``np.random.Generator`` when > 0; forces the NumPy path for "numba")
    → out (B, Tq, d), weights (B, H, Tq, Tk) before dropout (None for "numba"), cache.
    Equals ``torch.nn.MultiheadAttention(batch_first=True)`` with in_proj_weight =
    [W_qᵀ; W_kᵀ; W_vᵀ], out_proj.weight = W_oᵀ (note: torch's boolean attn_mask means the
    opposite, True = *not* allowed).
    """
    x_q, x_kv, params, mask = check_multi_head_inputs(x_q, x_kv, params, num_heads, mask,
                                                      backend, dropout_p, rng)
    return multi_head_attention_core(x_q, x_kv, params, num_heads, mask, causal, backend,
                                 float(dropout_p), rng)


def multi_head_attention_core(x_q, x_kv, params, num_heads, mask, causal, backend, dropout_p, rng):
    """Multi-head attention on checked input (mask broadcast to (B, H, Tq, Tk) or None)."""
    p = params
    q, cache_q = linear_core(x_q, p["W_q"], p["b_q"])                        # (B, Tq, d)
    k, cache_k = linear_core(x_kv, p["W_k"], p["b_k"])                       # (B, Tk, d)
    v, cache_v = linear_core(x_kv, p["W_v"], p["b_v"])                       # (B, Tk, d)
    qh, kh, vh = (split_heads_core(t, num_heads) for t in (q, k, v))         # (B, H, T, Dh)
    heads, weights, cache_attn = sdpa_core(qh, kh, vh, mask, causal, backend,
                                       dropout_p, rng)                   # (B, H, Tq, Dh)
    out, cache_o = linear_core(merge_heads_core(heads), p["W_o"], p["b_o"])      # (B, Tq, d)
    cache = {"q": cache_q, "k": cache_k, "v": cache_v, "attn": cache_attn, "o": cache_o,
             "num_heads": num_heads, "out_shape": out.shape}
    return out, weights, cache


def multi_head_attention_backward(dout, cache, return_dweights=False):
    """Reverse of the forward: out-projection, merge heads, attention, split heads, in-projections.

    Returns (dx_q, dx_kv, grads) with grads keyed like params; with ``return_dweights``
    (dx_q, dx_kv, grads, dα), dα = ∂L/∂α (B, H, Tq, Tk) for the pre-dropout attention weights
    (None for backend "numba"). For self-attention (x_q is x_kv) the input gradient is
    dx_q + dx_kv.
    """
    H = cache["num_heads"]
    dout = as_dout(dout, cache["out_shape"], name="dout")
    dmerged, dW_o, db_o = linear_backward(dout, cache["o"])             # (B, Tq, d)
    dqh, dkh, dvh, dweights = scaled_dot_product_attention_backward(
        split_heads_core(dmerged, H), cache["attn"], return_dweights=True)  # (B, H, T, Dh)
    dx_q, dW_q, db_q = linear_backward(merge_heads_core(dqh), cache["q"])
    dx_k, dW_k, db_k = linear_backward(merge_heads_core(dkh), cache["k"])
    dx_v, dW_v, db_v = linear_backward(merge_heads_core(dvh), cache["v"])
    grads = {"W_q": dW_q, "W_k": dW_k, "W_v": dW_v, "W_o": dW_o,
             "b_q": db_q, "b_k": db_k, "b_v": db_v, "b_o": db_o}
    if return_dweights:
        return dx_q, dx_k + dx_v, grads, dweights
    return dx_q, dx_k + dx_v, grads
