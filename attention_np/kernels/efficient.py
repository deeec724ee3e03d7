"""Numba kernels for two efficient attention variants, parallel over (batch, head).

* Sliding-window attention: query i sees keys j with |i − j| ≤ w (causal: 0 ≤ i − j ≤ w).
  One pass per query row over its ≤ 2w + 1 keys (online max, exp, weighted sum): O(T · w · D)
  time and O(T) extra memory (the row's log-sum-exp, kept for the backward, as flash attention).
* Linear attention with φ(x) = elu(x) + 1: out_i = φ(q_i) S / φ(q_i) · z with S = Σ_j φ(k_j) v_jᵀ,
  z = Σ_j φ(k_j) (j ≤ i if causal): an RNN over the (D, Dv + 1) state [S, z], O(T · D · Dv).

References: :mod:`attention_np.efficient.sliding_window` (without global tokens) and
:mod:`attention_np.efficient.linear`; the tests compare against both and against torch.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from attention_np.kernels._config import ELEMENTWISE, PARALLEL
from attention_np.kernels._intrinsics import fast_exp, maxnum
from attention_np.kernels._validate import float_input
from attention_np.kernels._vector import axpy, dot, matvec, outer_add, vecmat


@njit(inline="always", **ELEMENTWISE)
def _band(i, T, window, causal):
    """[lo, hi) of the keys query i may see."""
    return max(0, i - window), (i + 1 if causal else min(T, i + window + 1))


@njit(**PARALLEL)
def _window_forward(q, k, v, window, causal, scale, out, lse):
    B, H, T, _ = q.shape
    for bh in prange(B * H):
        b, h = bh // H, bh % H
        qh, kh, vh, oh = q[b, h], k[b, h], v[b, h], out[b, h]
        s = np.empty(2 * window + 1, dtype=q.dtype)
        for i in range(T):
            lo, hi = _band(i, T, window, causal)
            m = dot(qh[i], kh[lo]) * scale
            for j in range(lo, hi):
                s[j - lo] = dot(qh[i], kh[j]) * scale
                m = maxnum(m, s[j - lo])
            oh[i, :] = 0
            total = q.dtype.type(0)
            for j in range(lo, hi):
                p = fast_exp(s[j - lo] - m)
                total += p
                axpy(p, vh[j], oh[i])
            oh[i, :] /= total
            lse[b, h, i] = m + math.log(total)


@njit(**PARALLEL)
def _window_backward(dout, q, k, v, out, lse, window, causal, scale, dq, dk, dv):
    B, H, T, _ = q.shape
    for bh in prange(B * H):
        b, h = bh // H, bh % H
        qh, kh, vh, gh = q[b, h], k[b, h], v[b, h], dout[b, h]
        for i in range(T):
            lo, hi = _band(i, T, window, causal)
            row = dot(gh[i], out[b, h, i])                        # D_i = Σ dout ⊙ out
            for j in range(lo, hi):
                p = fast_exp(dot(qh[i], kh[j]) * scale - lse[b, h, i])
                ds = p * (dot(gh[i], vh[j]) - row) * scale        # softmax backward
                axpy(ds, kh[j], dq[b, h, i])
                axpy(ds, qh[i], dk[b, h, j])
                axpy(p, gh[i], dv[b, h, j])


def _inputs(q, k, v, *extra):
    """C-contiguous (B, H, T, ·) arrays in one compute dtype; Tq = Tk; returns (arrays, dtype)."""
    q, dtype = float_input(q, "q", ndim=4)
    arrays = [q] + [float_input(x, name, ndim=4, dtype=q.dtype)[0]
                    for name, x in (("k", k), ("v", v)) + extra]
    q, k, v = arrays[:3]
    if not (q.shape[:3] == k.shape[:3] == v.shape[:3]) or q.shape[3] != k.shape[3]:
        raise ValueError(f"q, k must be (B, H, T, D) and v (B, H, T, Dv) with the same B, H, T "
                         f"(self-attention), got q{q.shape}, k{k.shape}, v{v.shape}")
    if q.shape[3] == 0:
        raise ValueError(f"q's head dim D must be ≥ 1, got q{q.shape}")
    for (name, _), x in zip(extra, arrays[3:]):          # dout and out: the output's shape
        if x.shape != q.shape[:3] + v.shape[3:]:
            raise ValueError(f"{name} must have shape {q.shape[:3] + v.shape[3:]}, got {x.shape}")
    return arrays, dtype


def _window_args(window, scale, D):
    if not isinstance(window, (int, np.integer)) or window < 0:
        raise ValueError(f"window must be an integer ≥ 0, got {window!r}")
    return int(window), 1.0 / math.sqrt(D) if scale is None else float(scale)


def sliding_window_attention_forward(q, k, v, window: int, causal: bool = False, scale=None):
    """out_i = Σ_{j in band(i)} softmax_j(s q_i · k_j) v_j, s = 1/√D by default.

    q, k (B, H, T, D), v (B, H, T, Dv) → out (B, H, T, Dv) in q's dtype, lse (B, H, T)
    (the log-sum-exp of each row, for the backward).
    """
    (q, k, v), dtype = _inputs(q, k, v)
    window, scale = _window_args(window, scale, q.shape[-1])
    out = np.empty(q.shape[:3] + v.shape[3:], dtype=q.dtype)
    lse = np.empty(q.shape[:3], dtype=q.dtype)
    _window_forward(q, k, v, window, bool(causal), q.dtype.type(scale), out, lse)
    return out.astype(dtype, copy=False), lse


def sliding_window_attention_backward(dout, q, k, v, out, lse, window: int, causal: bool = False,
                                      scale=None):
    """Gradients of the forward above (weights recomputed from lse). Returns (dq, dk, dv)."""
    (q, k, v, dout, out), dtype = _inputs(q, k, v, ("dout", dout), ("out", out))
    lse = np.ascontiguousarray(lse, dtype=q.dtype)
    window, scale = _window_args(window, scale, q.shape[-1])
    dq, dk, dv = np.zeros_like(q), np.zeros_like(k), np.zeros_like(v)
    _window_backward(dout, q, k, v, out, lse, window, bool(causal), q.dtype.type(scale),
                     dq, dk, dv)
    return tuple(g.astype(dtype, copy=False) for g in (dq, dk, dv))


# --- linear attention, φ(x) = elu(x) + 1 -------------------------------------------------------

@njit(inline="always", **ELEMENTWISE)
def _phi(x, phi):
    for d in range(x.shape[0]):
        phi[d] = x[d] + 1 if x[d] > 0 else math.exp(x[d])


@njit(inline="always", **ELEMENTWISE)
def _with_one(v, v1):
    """v⁺ = [v, 1]."""
    v1[:-1] = v
    v1[-1] = 1


@njit(inline="always", **ELEMENTWISE)
def _push_key(state, k_j, v_j, phi, v1):
    """[S, z] += φ(k_j) [v_j, 1]ᵀ  (phi, v1 are scratch buffers)."""
    _phi(k_j, phi)
    _with_one(v_j, v1)
    outer_add(state, phi, v1)


@njit(**PARALLEL)
def _linear_forward(q, k, v, causal, eps, out, den):
    B, H, T, D = q.shape
    Dv = v.shape[3]
    for bh in prange(B * H):
        b, h = bh // H, bh % H
        state = np.zeros((D, Dv + 1), dtype=q.dtype)               # [S, z] = Σ φ(k_j) v⁺_jᵀ
        phi, v1, n = np.empty(D, q.dtype), np.empty(Dv + 1, q.dtype), np.empty(Dv + 1, q.dtype)
        for step in range(T if causal else 2 * T):                 # non-causal: sum all j first
            j = step % T
            if causal or step < T:
                _push_key(state, k[b, h, j], v[b, h, j], phi, v1)
            if causal or step >= T:
                _phi(q[b, h, j], phi)
                vecmat(phi, state, n)                                # [num, den]
                den[b, h, j] = n[Dv] + eps
                for d in range(Dv):
                    out[b, h, j, d] = n[d] / den[b, h, j]


@njit(inline="always", **ELEMENTWISE)
def _dphi(x, dphi, dx):
    """dx = dφ ⊙ φ'(x),  φ'(x) = 1 (x > 0), eˣ (x ≤ 0)."""
    for d in range(x.shape[0]):
        dx[d] = dphi[d] if x[d] > 0 else dphi[d] * math.exp(x[d])


@njit(inline="always", **ELEMENTWISE)
def _dn(g, o, den, dn):
    """out = num / den  →  dn = [g / den, −(g · out) / den]."""
    for d in range(g.shape[0]):
        dn[d] = g[d] / den
    dn[-1] = -dot(g, o) / den


@njit(**PARALLEL)
def _linear_backward(dout, q, k, v, out, den, causal, dq, dk, dv):
    B, H, T, D = q.shape
    Dv = v.shape[3]
    for bh in prange(B * H):
        b, h = bh // H, bh % H
        state = np.zeros((D, Dv + 1), dtype=q.dtype)
        phi, dphi = np.empty(D, q.dtype), np.empty(D, q.dtype)
        v1, dn = np.empty(Dv + 1, q.dtype), np.empty(Dv + 1, q.dtype)
        dv1 = np.empty(Dv + 1, q.dtype)
        # forward sweep, state [S, z]:  dφq_i = [S, z]_i dn_i
        for step in range(T if causal else 2 * T):
            j = step % T
            if causal or step < T:
                _push_key(state, k[b, h, j], v[b, h, j], phi, v1)
            if causal or step >= T:
                _dn(dout[b, h, j], out[b, h, j], den[b, h, j], dn)
                matvec(state, dn, dphi)
                _dphi(q[b, h, j], dphi, dq[b, h, j])
        # backward sweep, state R = Σ_{i ≥ j} φq_i dn_iᵀ:  dφk_j = R v⁺_j,  dv⁺_j = Rᵀ φk_j
        state[:] = 0
        for step in range(T if causal else 2 * T):
            j = T - 1 - step % T
            if causal or step < T:
                _dn(dout[b, h, j], out[b, h, j], den[b, h, j], dn)
                _phi(q[b, h, j], phi)
                outer_add(state, phi, dn)
            if causal or step >= T:
                _with_one(v[b, h, j], v1)
                matvec(state, v1, dphi)
                _dphi(k[b, h, j], dphi, dk[b, h, j])
                _phi(k[b, h, j], phi)
                vecmat(phi, state, dv1)
                dv[b, h, j, :] = dv1[:Dv]


def linear_attention_forward(q, k, v, causal: bool = False, eps: float = 1e-6):
    """Linear attention with φ = elu + 1. q, k (B, H, T, D), v (B, H, T, Dv)
    → out (B, H, T, Dv) in q's dtype, den (B, H, T) = φ(q_i) · z_i + ε (for the backward)."""
    (q, k, v), dtype = _inputs(q, k, v)
    out = np.empty(q.shape[:3] + v.shape[3:], dtype=q.dtype)
    den = np.empty(q.shape[:3], dtype=q.dtype)
    _linear_forward(q, k, v, bool(causal), q.dtype.type(eps), out, den)
    return out.astype(dtype, copy=False), den


def linear_attention_backward(dout, q, k, v, out, den, causal: bool = False):
    """Gradients of :func:`linear_attention_forward`. Returns (dq, dk, dv)."""
    (q, k, v, dout, out), dtype = _inputs(q, k, v, ("dout", dout), ("out", out))
    den = np.ascontiguousarray(den, dtype=q.dtype)
    dq, dk, dv = np.empty_like(q), np.empty_like(k), np.empty_like(v)
    _linear_backward(dout, q, k, v, out, den, bool(causal), dq, dk, dv)
    return tuple(g.astype(dtype, copy=False) for g in (dq, dk, dv))
