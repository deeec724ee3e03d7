"""Flash attention forward: one task per (head, block of queries), online softmax over key blocks.

For a query block Q_b (nq, D) and key/value blocks K_j, V_j (nk, D), (nk, Dv):

    S   = scale · Q_b K_jᵀ                         (nq, nk), masked entries set to −1e30
    m'  = max(m, rowmax S)                          running row max
    P   = exp(S − m')                               (nq, nk)
    l   = l · exp(m − m') + rowsum P                running row sum
    acc = acc · exp(m − m') + P V_j                 (nq, Dv)
    out = acc / l,   lse = m + log l                after the last key block

Only one (nq, nk) tile per task is ever stored, never the (Tq, Tk) matrix. Causal: key blocks
past the block's last query are skipped, and where a tile crosses the diagonal the keys go in
narrow blocks that skip the query rows above the diagonal (they see none of those keys), so
about half of each diagonal tile is never computed. A finite fill
(−1e30, not −inf) keeps exp(−inf − (−inf)) = NaN out of fully masked rows; those rows are
detected at the end (m still −1e30) and get out = 0, lse = −inf.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from attention_np.kernels._config import ELEMENTWISE, PARALLEL
from attention_np.kernels._intrinsics import fast_exp, maxnum

MASKED = -1e30          # score of a masked (query, key) pair
FULLY_MASKED = -1e29    # a running max below this means no key was visible yet
DIAGONAL_BLOCK = 64     # causal: key block width where a tile crosses the diagonal


@njit(inline="always", **ELEMENTWISE)
def tile(buf, rows, cols):
    """A C-contiguous (rows, cols) view of the first rows·cols entries of the 1-D ``buf``."""
    return buf[:rows * cols].reshape((rows, cols))


@njit(inline="always", **ELEMENTWISE)
def task_rows(task, n_blocks, block, T):
    """(head, first row, end row) of parallel task number ``task`` = head · n_blocks + block."""
    bh, blk = task // n_blocks, task % n_blocks
    return bh, blk * block, min((blk + 1) * block, T)


@njit(inline="always", **ELEMENTWISE)
def mask_tile(s, mask, has_mask, causal, b, h, q0, k0):
    """Set s[i, j] = −1e30 where key k0+j is hidden from query q0+i (mask False, or causal j > i)."""
    nq, nk = s.shape
    fill = s.dtype.type(MASKED)
    if causal and k0 + nk - 1 > q0:                  # the tile crosses the diagonal
        for i in range(nq):
            for j in range(max(q0 + i - k0 + 1, 0), nk):
                s[i, j] = fill
    if has_mask:                                     # size-1 mask dims broadcast
        mb, mh = min(b, mask.shape[0] - 1), min(h, mask.shape[1] - 1)
        last_q, last_k = mask.shape[2] - 1, mask.shape[3] - 1
        for i in range(nq):
            row = mask[mb, mh, min(q0 + i, last_q)]
            for j in range(nk):
                if not row[min(k0 + j, last_k)]:
                    s[i, j] = fill


@njit(inline="always", **ELEMENTWISE)
def _online_softmax_rows(s, m, l, acc):
    """s ← exp(s − m'), l ← l·α + rowsum, acc ← acc·α with α = exp(m − m'), m ← m'."""
    for i in range(s.shape[0]):
        row = s[i]
        m_new = m[i]
        for j in range(row.shape[0]):
            m_new = maxnum(m_new, row[j])
        total = row.dtype.type(0)
        for j in range(row.shape[0]):
            p = fast_exp(row[j] - m_new)
            row[j] = p
            total += p
        alpha = fast_exp(m[i] - m_new)
        l[i] = l[i] * alpha + total
        m[i] = m_new
        for d in range(acc.shape[1]):
            acc[i, d] *= alpha


@njit(inline="always", **ELEMENTWISE)
def _finish_rows(acc, m, l, out, lse):
    """out = acc / l and lse = m + log l; rows that saw no visible key get 0 and −inf.
    A NaN score leaves m alone (maxnum skips it) but makes l NaN, so the row stays NaN."""
    for i in range(acc.shape[0]):
        if m[i] <= FULLY_MASKED and l[i] == l[i]:
            out[i, :] = 0
            lse[i] = -np.inf
        else:
            inv = 1 / l[i]
            for d in range(acc.shape[1]):
                out[i, d] = acc[i, d] * inv
            lse[i] = m[i] + np.log(l[i])


@njit(inline="always", **ELEMENTWISE)
def _forward_block(q, k, v, mask, has_mask, causal, scale, b, h, q0, block_k, out, lse):
    """out[q0:q0+nq], lse[q0:q0+nq] of one head: q (nq, D) block, k (Tk, D), v (Tk, Dv);
    key blocks of ``block_k`` rows."""
    nq, Dv = q.shape[0], v.shape[1]
    qs = q * scale                                   # fold the scale into Q once
    s_buf = np.empty(nq * block_k, q.dtype)
    pv_buf = np.empty(nq * Dv, q.dtype)
    acc = np.zeros((nq, Dv), q.dtype)
    m = np.full(nq, MASKED, q.dtype)
    l = np.zeros(nq, q.dtype)
    k_end = min(k.shape[0], q0 + nq) if causal else k.shape[0]
    k0 = 0
    while k0 < k_end:
        nk, r0 = min(block_k, k_end - k0), 0
        if causal and k0 + nk - 1 > q0:              # the tile crosses the diagonal: narrower
            nk = min(nk, DIAGONAL_BLOCK)             # key blocks, and the rows above the
            r0 = max(k0 - q0, 0)                     # diagonal (they see none of them) skipped
        s = tile(s_buf, nq - r0, nk)
        np.dot(qs[r0:], k[k0:k0 + nk].T, s)         # (nq − r0, nk)
        mask_tile(s, mask, has_mask, causal, b, h, q0 + r0, k0)
        _online_softmax_rows(s, m[r0:], l[r0:], acc[r0:])
        pv = tile(pv_buf, nq - r0, Dv)
        np.dot(s, v[k0:k0 + nk], pv)                # (nq − r0, Dv)
        acc[r0:] += pv
        k0 += nk
    _finish_rows(acc, m, l, out, lse)


@njit(**PARALLEL)
def flash_forward_kernel(q, k, v, mask, has_mask, causal, scale, n_heads, block_q, block_k,
                         out, lse):
    """q (BH, Tq, D), k (BH, Tk, D), v (BH, Tk, Dv) → out (BH, Tq, Dv), lse (BH, Tq); one
    task per ``block_q`` query rows of a head.

    mask: C-contiguous bool (B|1, H|1, Tq|1, Tk|1), read only when has_mask.
    """
    BH, Tq = q.shape[0], q.shape[1]
    n_blocks = (Tq + block_q - 1) // block_q
    for task in prange(BH * n_blocks):
        bh, q0, q1 = task_rows(task, n_blocks, block_q, Tq)
        _forward_block(q[bh][q0:q1], k[bh], v[bh], mask, has_mask, causal, scale,
                       bh // n_heads, bh % n_heads, q0, block_k, out[bh][q0:q1],
                       lse[bh][q0:q1])
