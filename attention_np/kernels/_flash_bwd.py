"""Flash attention backward (FlashAttention-2 order): one task per (head, block of keys).

P is recomputed from the forward's log-sum-exp instead of being stored. With
D_i = Σ_d dO[i, d] O[i, d] (= Σ_j P_ij dP_ij), for a key block j and each query block i:

    P_ij  = exp(scale · Q_i K_jᵀ − lse_i)           (nq, nk), 0 where masked
    dV_j += P_ijᵀ dO_i                              (nk, Dv)
    dP_ij = dO_i V_jᵀ                               (nq, nk)
    dS_ij = P_ij ⊙ (dP_ij − D_i)                    (nq, nk)   softmax backward
    dK_j += scale · dS_ijᵀ Q_i                      (nk, D)
    dQ_i += scale · dS_ij K_j                       (nq, D)

dK_j and dV_j belong to the task. dQ_i is shared by every key block, so each thread adds into
its own copy of dQ (indexed by numba.get_thread_id()) and the copies are summed at the end:
no atomics, and the extra memory is one dQ per thread.
"""
from __future__ import annotations

import numpy as np
from numba import get_thread_id, njit, prange

from attention_np.kernels._config import ELEMENTWISE, PARALLEL
from attention_np.kernels._flash_fwd import FULLY_MASKED, mask_tile, task_rows, tile
from attention_np.kernels._intrinsics import fast_exp

@njit(inline="always", **ELEMENTWISE)
def _probabilities(s, lse):
    """s ← P = exp(s − lse_i); hidden pairs (s = −1e30) and fully masked rows give exactly 0."""
    below, zero = s.dtype.type(FULLY_MASKED), s.dtype.type(0)   # fills are −1e30
    for i in range(s.shape[0]):
        li = lse[i]
        if li <= below:                             # no visible key in this row
            s[i, :] = zero
            continue
        for j in range(s.shape[1]):
            x = s[i, j]
            s[i, j] = zero if x <= below else fast_exp(x - li)    # NaN stays NaN


@njit(inline="always", **ELEMENTWISE)
def _softmax_grad(p, dp, delta):
    """dp ← P ⊙ (dP − D_i)."""
    for i in range(p.shape[0]):
        di = delta[i]
        for j in range(p.shape[1]):
            dp[i, j] = p[i, j] * (dp[i, j] - di)


@njit(inline="always", **ELEMENTWISE)
def _backward_block(q, k, v, do, lse, delta, mask, has_mask, causal, b, h, k0, BQ, dq, dk, dv):
    """dk, dv of the key block k, v (nk, ·) of one head; adds this block's share into dq.

    q, do, lse, delta, dq: the whole head (Tq, ·); q is already multiplied by the scale;
    query tiles of BQ rows.
    """
    nk, D, Dv, Tq = k.shape[0], k.shape[1], v.shape[1], q.shape[0]
    s_buf = np.empty(BQ * nk, q.dtype)
    dp_buf = np.empty(BQ * nk, q.dtype)
    kd_buf = np.empty(nk * max(D, Dv), q.dtype)
    qd_buf = np.empty(BQ * D, q.dtype)
    dk[:] = 0
    dv[:] = 0
    q_start = k0 if causal else 0                   # earlier queries see none of these keys
    for q0 in range(q_start, Tq, BQ):
        nq = min(BQ, Tq - q0)
        qi, doi = q[q0:q0 + nq], do[q0:q0 + nq]
        p = tile(s_buf, nq, nk)
        np.dot(qi, k.T, p)                          # scaled scores (nq, nk)
        mask_tile(p, mask, has_mask, causal, b, h, q0, k0)
        _probabilities(p, lse[q0:q0 + nq])
        t_v = tile(kd_buf, nk, Dv)
        np.dot(p.T, doi, t_v)                       # dV += Pᵀ dO
        dv += t_v
        dp = tile(dp_buf, nq, nk)
        np.dot(doi, v.T, dp)                        # dP = dO Vᵀ
        _softmax_grad(p, dp, delta[q0:q0 + nq])     # dS (scale applied by the caller)
        t_k = tile(kd_buf, nk, D)
        np.dot(dp.T, qi, t_k)                       # dK += dSᵀ (scale·Q)
        dk += t_k
        t_q = tile(qd_buf, nq, D)
        np.dot(dp, k, t_q)                          # dQ += dS K   (× scale later)
        dq[q0:q0 + nq] += t_q


@njit(**PARALLEL)
def flash_backward_kernel(q, k, v, do, lse, delta, mask, has_mask, causal, n_heads,
                          block_q, block_k, dq_parts, dk, dv):
    """q (BH, Tq, D) pre-scaled, k (BH, Tk, D), v (BH, Tk, Dv), do (BH, Tq, Dv), lse and
    delta (BH, Tq) → dk (BH, Tk, D), dv (BH, Tk, Dv), and dq_parts (threads, BH, Tq, D) whose
    sum over threads is dQ / scale (dq_parts must start zeroed). One task per ``block_k`` key
    rows of a head, query tiles of ``block_q`` rows.
    """
    BH, Tk = k.shape[0], k.shape[1]
    n_blocks = (Tk + block_k - 1) // block_k
    for task in prange(BH * n_blocks):
        bh, k0, k1 = task_rows(task, n_blocks, block_k, Tk)
        _backward_block(q[bh], k[bh][k0:k1], v[bh][k0:k1], do[bh], lse[bh], delta[bh],
                        mask, has_mask, causal, bh // n_heads, bh % n_heads, k0, block_q,
                        dq_parts[get_thread_id()][bh], dk[bh][k0:k1], dv[bh][k0:k1])
