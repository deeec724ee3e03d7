"""Fused ("flash") scaled dot-product attention, forward and backward, for (B, H, T, D) arrays.

    out = softmax(scale · Q Kᵀ + mask) V,   scale = 1/√D by default

computed block by block with an online softmax, so memory is O(T·D) instead of O(T²). The
forward also returns lse = log Σ_j exp(scale · q_i·k_j) per query row, which the backward uses to
recompute P tile by tile. Masks follow attention_np: boolean, broadcastable to (B, H, Tq, Tk),
True = may attend; causal hides key j > query i (top-left aligned, like torch's is_causal).
A query row that sees no key gets out = 0, lse = −inf and zero gradients.
"""
from __future__ import annotations

import math

import numba
import numpy as np

from attention_np.nn.checks import check_mask
from kernels._config import single_threaded_blas
from kernels._flash_bwd import flash_backward_kernel
from kernels._flash_fwd import flash_forward_kernel
from kernels._validate import float_input


def _heads(x, name: str, dtype=None):
    """Validate a (B, H, T, D) array; return it C-contiguous in the compute dtype."""
    return float_input(x, name, ndim=4, dtype=dtype)


def _check_qkv(q, k, v):
    q, out_dtype = _heads(q, "q")
    k, _ = _heads(k, "k", q.dtype)
    v, _ = _heads(v, "v", q.dtype)
    if k.shape[:2] != q.shape[:2] or v.shape[:2] != q.shape[:2]:
        raise ValueError(f"q, k, v must share (B, H); got q{q.shape}, k{k.shape}, v{v.shape}")
    if k.shape[3] != q.shape[3]:
        raise ValueError(f"k's head dim ({k.shape[3]}) must equal q's ({q.shape[3]}); "
                         f"got q{q.shape} and k{k.shape}")
    if v.shape[2] != k.shape[2]:
        raise ValueError(f"v must have as many rows as k ({k.shape[2]}); got k{k.shape}, v{v.shape}")
    return q, k, v, out_dtype


def _mask_args(mask, q, k):
    """(C-contiguous bool (B|1, H|1, Tq|1, Tk|1), has_mask): the mask without broadcast copies."""
    B, H, Tq, Tk = q.shape[0], q.shape[1], q.shape[2], k.shape[2]
    if check_mask(mask, "mask", (B, H, Tq, Tk)) is None:
        return np.ones((1, 1, 1, 1), np.bool_), False
    m = np.asarray(mask)
    m = m.reshape((1,) * (4 - m.ndim) + m.shape)
    m = m[tuple(slice(0, 1) if st == 0 else slice(None) for st in m.strides)]  # undo broadcasts
    return np.ascontiguousarray(m), True


def _scale(scale, q) -> np.floating:
    s = 1.0 / math.sqrt(q.shape[3]) if scale is None else float(scale)
    return q.dtype.type(s)


def _flat(x):
    """(B, H, T, D) → (B·H, T, D) view."""
    return x.reshape(x.shape[0] * x.shape[1], x.shape[2], x.shape[3])


def flash_attention_forward(q, k, v, mask=None, causal: bool = False, scale=None):
    """out = softmax(scale · q kᵀ, masked) v  and  lse_i = log Σ_j exp(scale · q_i·k_j).

    q (B, H, Tq, D), k (B, H, Tk, D), v (B, H, Tk, Dv); mask bool broadcastable to
    (B, H, Tq, Tk). Returns out (B, H, Tq, Dv) in q's dtype and lse (B, H, Tq).
    """
    q, k, v, out_dtype = _check_qkv(q, k, v)
    mask, has_mask = _mask_args(mask, q, k)
    B, H, Tq = q.shape[:3]
    out = np.zeros((B, H, Tq, v.shape[3]), q.dtype)
    lse = np.full((B, H, Tq), -np.inf, q.dtype)
    if out.size and k.shape[2]:
        with single_threaded_blas(), numba.parallel_chunksize(1):
            flash_forward_kernel(_flat(q), _flat(k), _flat(v), mask, has_mask, bool(causal),
                                 _scale(scale, q), H, _flat(out), lse.reshape(B * H, Tq))
    return out.astype(out_dtype, copy=False), lse.astype(out_dtype, copy=False)


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
    s = _scale(scale, q)
    delta = np.einsum("bhtd,bhtd->bht", dout, out)            # D_i = Σ_d dO ⊙ O   (B, H, Tq)
    dk, dv = np.zeros_like(k), np.zeros_like(v)
    dq_parts = np.zeros((numba.get_num_threads(),) + _flat(q).shape, q.dtype)
    if q.size and k.size:
        with single_threaded_blas(), numba.parallel_chunksize(1):
            flash_backward_kernel(_flat(q) * s, _flat(k), _flat(v), _flat(dout),
                                  lse.reshape(B * H, Tq), delta.reshape(B * H, Tq), mask,
                                  has_mask, bool(causal), H, dq_parts, _flat(dk), _flat(dv))
    dq = (dq_parts.sum(axis=0) * s).reshape(q.shape)
    return tuple(g.astype(out_dtype, copy=False) for g in (dq, dk, dv))
