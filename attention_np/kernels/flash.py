"""Fused ("flash") scaled dot-product attention, forward and backward, for (B, H, T, D) arrays.

    out = softmax(scale · Q Kᵀ + mask) V,   scale = 1/√D by default

computed block by block with an online softmax, so memory is O(T·D) instead of O(T²). The
forward also returns lse = log Σ_j exp(scale · q_i·k_j) per query row, which the backward uses to
recompute P tile by tile. Masks follow attention_np: boolean, broadcastable to (B, H, Tq, Tk),
True = may attend; causal hides key j > query i (top-left aligned, like torch's is_causal).
A query row that sees no key gets out = 0, lse = −inf and zero gradients.
"""
from __future__ import annotations

import contextlib
import math

import numba
import numpy as np

from attention_np.kernels._config import single_threaded_blas
from attention_np.kernels._flash_bwd import flash_backward_kernel
from attention_np.kernels._flash_fwd import flash_forward_kernel
from attention_np.kernels._tune import config
from attention_np.kernels._validate import bool_mask, float_input


def _heads(x, name: str, dtype=None):
    """Validate a (B, H, T, D) array; return it C-contiguous in the compute dtype."""
    return float_input(x, name, ndim=4, dtype=dtype)


def _check_qkv(q, k, v):
    q, out_dtype = _heads(q, "q")
    k, _ = _heads(k, "k", q.dtype)
    v, _ = _heads(v, "v", q.dtype)
    if k.shape[:2] != q.shape[:2] or v.shape[:2] != q.shape[:2]:
        raise ValueError(f"q, k, v must share (B, H); got q{q.shape}, k{k.shape}, v{v.shape}")
    if q.shape[3] == 0:
        raise ValueError(f"q's head dim D must be ≥ 1 (the scale is 1/√D), got q{q.shape}")
    if k.shape[3] != q.shape[3]:
        raise ValueError(f"k's head dim ({k.shape[3]}) must equal q's ({q.shape[3]}); "
                         f"got q{q.shape} and k{k.shape}")
    if v.shape[2] != k.shape[2]:
        raise ValueError(f"v must have as many rows as k ({k.shape[2]}); got k{k.shape}, v{v.shape}")
    return q, k, v, out_dtype


def compact_mask(mask):
    """(C-contiguous bool (B|1, H|1, Tq|1, Tk|1), has_mask) from a checked mask of rank ≤ 4 or
    None: the mask without broadcast copies (a broadcast axis, stride 0, becomes size 1)."""
    if mask is None:
        return np.ones((1, 1, 1, 1), np.bool_), False
    m = np.asarray(mask)
    m = m.reshape((1,) * (4 - m.ndim) + m.shape)
    m = m[tuple(slice(0, 1) if st == 0 else slice(None) for st in m.strides)]  # undo broadcasts
    return np.ascontiguousarray(m), True


def _mask_args(mask, q, k):
    B, H, Tq, Tk = q.shape[0], q.shape[1], q.shape[2], k.shape[2]
    return compact_mask(bool_mask(mask, "mask", (B, H, Tq, Tk)))


def _scale(scale, q) -> np.floating:
    s = 1.0 / math.sqrt(q.shape[3]) if scale is None else float(scale)
    return q.dtype.type(s)


def _flat(x):
    """(B, H, T, D) → (B·H, T, D) view."""
    return x.reshape(x.shape[0] * x.shape[1], x.shape[2], x.shape[3])


# OpenBLAS runs a GEMM with M·N·K ≤ 65536 · 4 on the calling thread (interface/gemm.c,
# GEMM_MULTITHREAD_THRESHOLD = 4): when every product of a task is that small, the kernels
# skip the thread-pool limit, which costs ~0.1 ms a call (a large share of a sentence's layer).
_BLAS_SERIAL_MNK = 65536 * 4


def _blas_limit(m, n, k):
    """single_threaded_blas() unless an (m × k) @ (k × n) product stays serial anyway, or the
    kernel itself runs on one thread (then BLAS may use the others)."""
    if m * n * k <= _BLAS_SERIAL_MNK or numba.get_num_threads() == 1:
        return contextlib.nullcontext()
    return single_threaded_blas()


def forward_core(q, k, v, mask, has_mask, causal, scale, n_heads):
    """The forward on checked arrays: q (BH, Tq, D), k (BH, Tk, D), v (BH, Tk, Dv) C-contiguous
    in one dtype, mask from :func:`compact_mask` → out (BH, Tq, Dv), lse (BH, Tq). Any size
    may be 0: with no key every row is dead (out 0, lse −∞), and Dv = 0 still has an lse."""
    (BH, Tq, D), Tk, Dv = q.shape, k.shape[1], v.shape[2]
    out, lse = np.empty((BH, Tq, Dv), q.dtype), np.empty((BH, Tq), q.dtype)
    cfg = config(4.0 * q.size * Tk)
    bq, bk = cfg.flash_block_q, cfg.flash_block_k
    with _blas_limit(min(Tq, bq), min(Tk, bk), max(D, Dv)), \
            numba.parallel_chunksize(cfg.flash_chunk):
        flash_forward_kernel(q, k, v, mask, has_mask, bool(causal), scale, n_heads, bq, bk, out,
                             lse)
    return out, lse


def backward_core(dout, q, k, v, out, lse, mask, has_mask, causal, scale, n_heads):
    """The backward on checked arrays shaped as in :func:`forward_core` (dout like out)
    → dq, dk, dv."""
    (_, Tq, D), Tk, Dv = q.shape, k.shape[1], v.shape[2]
    delta = np.einsum("btd,btd->bt", dout, out)                # D_i = Σ_d dO ⊙ O   (BH, Tq)
    dk, dv = np.empty_like(k), np.empty_like(v)                # every key row is some task's
    dq_parts = np.zeros((numba.get_num_threads(),) + q.shape, q.dtype)
    cfg = config(10.0 * q.size * Tk)
    bq, bk = cfg.flash_bwd_block_q, cfg.flash_bwd_block_k
    with _blas_limit(min(Tq, bq), min(Tk, bk), max(D, Dv)), \
            numba.parallel_chunksize(cfg.flash_chunk):
        flash_backward_kernel(q * scale, k, v, dout, lse, delta, mask, has_mask, bool(causal),
                              n_heads, bq, bk, dq_parts, dk, dv)
    return dq_parts.sum(axis=0) * scale, dk, dv


def flash_attention_forward(q, k, v, mask=None, causal: bool = False, scale=None):
    """out = softmax(scale · q kᵀ, masked) v  and  lse_i = log Σ_j exp(scale · q_i·k_j).

    q (B, H, Tq, D), k (B, H, Tk, D), v (B, H, Tk, Dv); mask bool broadcastable to
    (B, H, Tq, Tk). Returns out (B, H, Tq, Dv) in q's dtype and lse (B, H, Tq).
    """
    q, k, v, out_dtype = _check_qkv(q, k, v)
    mask, has_mask = _mask_args(mask, q, k)
    B, H, Tq = q.shape[:3]
    out, lse = forward_core(_flat(q), _flat(k), _flat(v), mask, has_mask, causal,
                            _scale(scale, q), H)
    return (out.reshape(B, H, Tq, v.shape[3]).astype(out_dtype, copy=False),
            lse.reshape(B, H, Tq).astype(out_dtype, copy=False))


def flash_attention_backward(dout, q, k, v, out, lse, mask=None, causal: bool = False,
                             scale=None):
    """Gradients of L with respect to q, k, v given dout = ∂L/∂out (see kernels._flash_bwd).

    Takes the forward's inputs and its outputs out, lse. Returns (dq, dk, dv) in q's dtype.
    """
    q, k, v, out_dtype = _check_qkv(q, k, v)
    B, H, Tq, Dv = q.shape[0], q.shape[1], q.shape[2], v.shape[3]
    dout, _ = _heads(dout, "dout", q.dtype)
    out, _ = _heads(out, "out", q.dtype)
    for name, x in (("dout", dout), ("out", out)):
        if x.shape != (B, H, Tq, Dv):
            raise ValueError(f"{name} must have shape {(B, H, Tq, Dv)}, got {x.shape}")
    lse, _ = float_input(lse, "lse", ndim=3, dtype=q.dtype)
    if lse.shape != (B, H, Tq):
        raise ValueError(f"lse must have shape {(B, H, Tq)}, got {lse.shape}")
    mask, has_mask = _mask_args(mask, q, k)
    grads = backward_core(_flat(dout), _flat(q), _flat(k), _flat(v), _flat(out),
                          lse.reshape(B * H, Tq), mask, has_mask, causal, _scale(scale, q), H)
    return tuple(g.reshape(x.shape).astype(out_dtype, copy=False) for g, x in zip(grads, (q, k, v)))
