"""The post-LN Transformer encoder block (BERT's layer) with fused kernels: the fast version of
:func:`attention_np.transformer.encoder_block_forward` / ``_backward`` for ``norm_first=False``
with the FFN, which the library runs for ``backend="numba"`` (when no dropout is active). Its
entry points take arrays and plain numbers; the library maps its parameters onto
:data:`WEIGHTS` in :mod:`attention_np.nn.backend`.

    q, k, v = x W_q + b_q, x W_k + b_k, x W_v + b_v      BLAS, bias added while splitting heads
    c = MultiHead(q, k, v)                                 the flash kernels (kernels.flash)
    h = LN₁(c W_o + b_o + x)                               BLAS, then fused bias+residual+LN
    u = h W₁ + b₁,  a = act(u)                             BLAS, then fused bias+activation
    y = LN₂(a W₂ + b₂ + h)                                 BLAS, then fused bias+residual+LN

Tokens are rows (N, d), sequence by sequence: a padded batch x (B, T, d) as (B·T, d), or for
inference the real tokens alone, back to back (:func:`run_packed`: padding then costs no
products); heads are (B·H, T, Dh), padded, for the flash kernels. The backward walks the same
steps back with BLAS for every product, the flash backward for the attention and the fused
kernels of :mod:`kernels.fused` for the rest. BLAS brings its own threads; the Numba kernels
run on the calling thread (see :func:`attention_np.kernels._config.numba_on_one_thread`).

Where the time goes (all-MiniLM-L6-v2 encoding 64 sentences on one thread, cProfile, CPU
time): BLAS products 78%, flash attention 9%, embeddings 4%, GELU 3%, layer norms 2%, head
copies 2%. The NumPy path (3× the time) spent 62% in the products, and 23% in the erf GELU
(13 ns an element; fused: 0.9 ns).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from attention_np.kernels import fused
from attention_np.kernels._config import PARALLEL, numba_on_one_thread
from attention_np.kernels._validate import compute_dtype, upstream_gradient
from attention_np.kernels.flash import backward_core, compact_mask, forward_core

PROJECTIONS = ("q", "k", "v")


@njit(**PARALLEL)
def _split_heads(x, bias, starts, lengths, n_heads, out):
    """out[b·H + h, t, e] = x[starts[b] + t, h·Dh + e] + bias[h·Dh + e] for t < lengths[b], 0 for
    the padding t ≥ lengths[b]:  token rows (N, d) → heads (B·H, T, Dh)."""
    BH, T, Dh = out.shape
    for task in prange(BH):
        b, h = task // n_heads, task % n_heads
        bh = bias[h * Dh:(h + 1) * Dh]
        for t in range(T):
            dst = out[task, t]
            if t >= lengths[b]:
                dst[:] = 0
                continue
            src = x[starts[b] + t, h * Dh:(h + 1) * Dh]
            for e in range(Dh):                 # plain loop indices: no wraparound checks
                dst[e] = src[e] + bh[e]


@njit(**PARALLEL)
def _merge_heads(x, starts, lengths, n_heads, out):
    """out[starts[b] + t, h·Dh + e] = x[b·H + h, t, e] for t < lengths[b]: the inverse."""
    BH, T, Dh = x.shape
    for task in prange(BH):
        b, h = task // n_heads, task % n_heads
        for t in range(lengths[b]):
            out[starts[b] + t, h * Dh:(h + 1) * Dh] = x[task, t]


def padded_layout(B: int, T: int):
    """(starts, lengths, T) of a padded batch: sequence b at rows b·T … b·T + T − 1."""
    return np.arange(B, dtype=np.int64) * T, np.full(B, T, np.int64), T


def packed_layout(lengths):
    """(starts, lengths, T_max) of sequences stored back to back (no padding rows)."""
    lengths = np.asarray(lengths, np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    return starts, lengths, int(lengths.max(initial=0))


def _attention(rows, p, layout, H, mask, causal, dt):
    """(ctx (N, d), the flash cache) of the token rows (N, d) of the sequences in ``layout``."""
    (N, d), (starts, lengths, T), B = rows.shape, layout, len(layout[0])
    Dh = d // H
    heads = np.empty((3, B * H, T, Dh), dt)                                  # q, k, v heads
    for i, n in enumerate(PROJECTIONS):
        _split_heads(np.dot(rows, p[f"W_{n}"]), p[f"b_{n}"], starts, lengths, H, heads[i])
    mask_c, has_mask = compact_mask(mask)
    scale = dt.type(1 / math.sqrt(Dh))
    out, lse = forward_core(heads[0], heads[1], heads[2], mask_c, has_mask, causal, scale, H)
    ctx = np.empty((N, d), dt)
    _merge_heads(out, starts, lengths, H, ctx)
    return ctx, (heads, out, lse, mask_c, has_mask, causal, scale)


def block_forward(rows, layout, p, num_heads, mask, causal, gelu, eps, keep=True):
    """y rows (N, d) and the cache of the backward (None unless ``keep``).

    rows (N, d) C-contiguous float32/float64: the tokens of the sequences of ``layout``
    (:func:`padded_layout` or :func:`packed_layout`); p the parameters in rows' dtype,
    C-contiguous; mask bool broadcastable to (B, H, T, T) or None (checked by the caller; with
    a packed layout it must hide the padding keys)."""
    N, d = rows.shape
    dt = rows.dtype
    with numba_on_one_thread():
        ctx, c_attn = _attention(rows, p, layout, num_heads, mask, causal, dt)
        h, rstd1, z = np.empty((N, d), dt), np.empty(N, dt), np.dot(ctx, p["W_o"])   # (N, d)
        fused.add_layer_norm(z, p["b_o"], rows, p["ln1_gamma"], p["ln1_beta"], dt.type(eps), h,
                             rstd1)                                  # h = LN₁(z + b_o + x)
        u = np.dot(h, p["W_1"])                                              # (N, d_ff)
        if keep:
            a = np.empty_like(u)
            fused.bias_activation(u, p["b_1"], gelu, a)                      # a = act(u + b₁)
        else:
            fused.bias_activation_inplace(u, p["b_1"], gelu)                 # u ← act(u + b₁)
            a = u
        y, rstd2, f = np.empty((N, d), dt), np.empty(N, dt), np.dot(a, p["W_2"])  # (N, d)
        fused.add_layer_norm(f, p["b_2"], h, p["ln2_gamma"], p["ln2_beta"], dt.type(eps), y,
                             rstd2)                                  # y = LN₂(f + b₂ + h)
    cache = None if not keep else {
        "fused": True, "x": rows, "layout": layout, "attn": c_attn, "ctx": ctx,
        "num_heads": num_heads, "h": h, "u": u, "a": a, "gelu": gelu, "ln1": (z, rstd1),
        "ln2": (f, rstd2), "params": p}                  # z, f now hold the layer norms' x̂
    return y, cache


def _ln_backward(dy, ln, gamma):
    """(dz, dγ, dβ) of a fused layer norm with cache ln = (x̂, rstd)."""
    xhat, rstd = ln
    dz, dgamma, dbeta = np.empty_like(dy), np.empty_like(gamma), np.empty_like(gamma)
    fused.layer_norm_backward(dy, xhat, rstd, gamma, dz, dgamma, dbeta)
    return dz, dgamma, dbeta


def _attention_backward(dctx, c_attn, layout, H):
    """(dq, dk, dv) as rows (3, N, d) from dctx (N, d), given the cache of :func:`_attention`."""
    heads, out, lse, mask_c, has_mask, causal, scale = c_attn
    starts, lengths, _ = layout
    dout = np.empty_like(out)
    _split_heads(dctx, np.zeros(dctx.shape[1], dctx.dtype), starts, lengths, H, dout)
    grads = backward_core(dout, heads[0], heads[1], heads[2], out, lse, mask_c, has_mask, causal,
                          scale, H)
    merged = np.empty((3,) + dctx.shape, dctx.dtype)
    for i, g in enumerate(grads):
        _merge_heads(g, starts, lengths, H, merged[i])
    return merged


def block_backward(dy, cache):
    """(dx rows (N, d), grads keyed like the parameters) for dy = ∂L/∂y rows (N, d)."""
    c, p = cache, cache["params"]
    dy = np.ascontiguousarray(dy, c["x"].dtype)
    g = {}
    with numba_on_one_thread():
        # forward: y = LN₂(f + b₂ + h),  f = a W₂
        df, g["ln2_gamma"], g["ln2_beta"] = _ln_backward(dy, c["ln2"], p["ln2_gamma"])
        g["W_2"], g["b_2"] = np.dot(c["a"].T, df), df.sum(axis=0)
        du = np.dot(df, p["W_2"].T)                                          # ∂L/∂a (N, d_ff)
        fused.activation_backward(du, c["u"], c["gelu"])                     # a = act(u)
        g["W_1"], g["b_1"] = np.dot(c["h"].T, du), du.sum(axis=0)
        dh = np.dot(du, p["W_1"].T)
        dh += df                                                             # h: skip + FFN
        # forward: h = LN₁(z + b_o + x),  z = ctx W_o
        dz, g["ln1_gamma"], g["ln1_beta"] = _ln_backward(dh, c["ln1"], p["ln1_gamma"])
        g["W_o"], g["b_o"] = np.dot(c["ctx"].T, dz), dz.sum(axis=0)
        dqkv = _attention_backward(np.dot(dz, p["W_o"].T), c["attn"], c["layout"],
                                   c["num_heads"])
        dx = dz                                                              # the skip path
        for i, n in enumerate(PROJECTIONS):                                  # q, k, v = x W + b
            g[f"W_{n}"], g[f"b_{n}"] = np.dot(c["x"].T, dqkv[i]), dqkv[i].sum(axis=0)
            dx += np.dot(dqkv[i], p[f"W_{n}"].T)
    return dx, g


# --- entry points (inputs checked by the caller: attention_np.nn.backend) -------------------

WEIGHTS = tuple(f"{w}_{n}" for n in "qkvo" for w in "Wb") + (
    "W_1", "b_1", "W_2", "b_2", "ln1_gamma", "ln1_beta", "ln2_gamma", "ln2_beta")
"""The arrays of one block, by the names this module gives them: the projections W_q … b_o
(d, d) and (d,), the FFN W_1 (d, d_ff), b_1, W_2 (d_ff, d), b_2, and the two layer norms' γ, β."""


def _contiguous(weights, dt):
    return {n: np.ascontiguousarray(weights[n], dt) for n in WEIGHTS}


def run_block(x, weights, num_heads: int, causal: bool, gelu: bool, eps: float, mask=None,
              keep: bool = True):
    """y = LN₂(h + FFN(h)),  h = LN₁(x + MultiHead(x)) — the post-LN block of the module
    docstring on a padded batch.

    x (B, T, d) float; ``weights`` a dict of the arrays named in :data:`WEIGHTS`; ``num_heads``
    dividing d; ``causal``: position i sees j ≤ i; ``gelu``: exact GELU (else ReLU); ``eps``
    of both layer norms; mask bool broadcastable to (B, H, T, T) or None
    → (y (B, T, d), the cache of :func:`run_block_backward`, or None unless ``keep``)."""
    out_dtype = np.result_type(x, weights["W_q"])
    dt = compute_dtype(out_dtype)
    B, T, d = x.shape
    rows = np.ascontiguousarray(x, dt).reshape(B * T, d)
    y, cache = block_forward(rows, padded_layout(B, T), _contiguous(weights, dt), num_heads,
                             mask, bool(causal), bool(gelu), eps, keep)
    if cache is not None:
        cache.update(out_dtype=out_dtype, shape=x.shape)
    return y.reshape(B, T, d).astype(out_dtype, copy=False), cache


def run_block_backward(dy, cache):
    """(dx (B, T, d), grads keyed like :data:`WEIGHTS`) of :func:`run_block` for
    dy = ∂L/∂y (B, T, d), in the forward's dtype."""
    dy = upstream_gradient(dy, cache["shape"], name="dy")
    dx, g = block_backward(dy.reshape(-1, cache["shape"][-1]), cache)
    return dx.reshape(cache["shape"]).astype(cache["out_dtype"], copy=False), {
        n: v.astype(cache["out_dtype"], copy=False) for n, v in g.items()}


def run_packed(rows, lengths, weights, num_heads: int, causal: bool, gelu: bool, eps: float):
    """Inference on sequences stored back to back without padding: rows (N, d) float32/64,
    the tokens of sequence b at rows Σ_{b'<b} lengths[b'] …; every token sees the tokens of its
    own sequence (and, if causal, none after it) → y rows (N, d). No cache is kept.

    Padding costs nothing here: a batch of mixed lengths runs its products, layer norms and
    activations on the real tokens only (only the attention pads, to the longest sequence)."""
    layout = packed_layout(lengths)
    visible = np.arange(layout[2]) < layout[1][:, None]                     # (B, T) real keys
    y, _ = block_forward(np.ascontiguousarray(rows), layout, _contiguous(weights, rows.dtype),
                         num_heads, visible[:, None, None, :], bool(causal), bool(gelu), eps,
                         keep=False)
    return y
