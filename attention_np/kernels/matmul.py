"""C = A B with a packed, register-tiled GEMM (the Goto / BLIS loop nest), parallel over row blocks.

    C[i, j] = Σ_k A[i, k] B[k, j]        A (M, K), B (K, N) → C (M, N);  batched: (..., M, K) @ (..., K, N)

Loop nest, outermost first:
  pc over K in steps of KC:        pack B[pc:pc+KC, :] into NR-wide panels, each (KC, NR) contiguous
  ic over M in steps of MC:        (parallel) pack A[ic:ic+MC, pc:pc+KC] into MR-tall panels (KC, MR)
  jr, ir over the panels:          micro-kernel: an MR × NR tile of C lives in registers while
                                   KC rank-1 updates a[:, None] * b[None, :] are accumulated
Packing pads edges with zeros, so the micro-kernel always computes a full tile and only the
write-back is clipped. The first K slice writes C (no zeroing, no read); later slices add.
MC and KC are chosen per machine (:mod:`kernels._tune`): on a Zen 4 a deep slice (KC = 512)
pays, because every slice reads and writes all of C once more.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from attention_np.kernels._config import STRICT, STRICT_PARALLEL
from attention_np.kernels._intrinsics import fma, register_tile
from attention_np.kernels._tune import DEFAULT, config
from attention_np.kernels._validate import float_input

MR, NR = 8, 32          # micro-tile: 8 rows × 32 columns = 16 zmm accumulators in float32
KC, MC = DEFAULT.matmul_kc, DEFAULT.matmul_mc     # the defaults; the tuned ones may differ


@njit(**STRICT)
def _pack_a(a, i0, p0, mc, kc, ap):
    """ap[i // MR, p, i % MR] = a[i0 + i, p0 + p], zero padded to a multiple of MR rows."""
    for ib in range((mc + MR - 1) // MR):
        for p in range(kc):
            for i in range(MR):
                row = ib * MR + i
                ap[ib, p, i] = a[i0 + row, p0 + p] if row < mc else 0


@njit(**STRICT_PARALLEL)
def _pack_b(b, p0, kc, bp):
    """bp[j // NR, p, j % NR] = b[p0 + p, j], zero padded to a multiple of NR columns."""
    N = b.shape[1]
    for jb in prange((N + NR - 1) // NR):
        for p in range(kc):
            for j in range(NR):
                col = jb * NR + j
                bp[jb, p, j] = b[p0 + p, col] if col < N else 0


@njit(**STRICT)
def _micro_kernel(ap, bp, kc, c, i0, j0, first):
    """c[i0:i0+MR, j0:j0+NR] (=, or += unless ``first``) ap[:kc].T @ bp[:kc]  (ap (KC, MR),
    bp (KC, NR); clipped to c)."""
    acc = register_tile(c.dtype.type(0), MR, NR)
    for p in range(kc):
        for i in range(MR):
            a = ap[p, i]
            for j in range(NR):
                acc[i, j] = fma(a, bp[p, j], acc[i, j])
    if i0 + MR <= c.shape[0] and j0 + NR <= c.shape[1]:     # a full tile: constant bounds
        for i in range(MR):
            row = c[i0 + i]
            for j in range(NR):
                row[j0 + j] = acc[i, j] if first else row[j0 + j] + acc[i, j]
    else:
        for i in range(min(MR, c.shape[0] - i0)):
            for j in range(min(NR, c.shape[1] - j0)):
                c[i0 + i, j0 + j] = acc[i, j] if first else c[i0 + i, j0 + j] + acc[i, j]


@njit(**STRICT)
def _block(a, ic, pc, mc, kc, bp, ap, c):
    """All micro-tiles of C[ic:ic+mc, :] for the K-slice pc:pc+kc."""
    _pack_a(a, ic, pc, mc, kc, ap)
    N = c.shape[1]
    for jb in range((N + NR - 1) // NR):
        for ib in range((mc + MR - 1) // MR):
            _micro_kernel(ap[ib], bp[jb], kc, c, ic + ib * MR, jb * NR, pc == 0)


@njit(**STRICT_PARALLEL)
def _gemm(a, b, c, mc_rows, kc_depth):
    """c (M, N) = a (M, K) @ b (K, N); all C-contiguous, one dtype, K ≥ 1; blocks of
    ``mc_rows`` (a multiple of MR) and slices of ``kc_depth``."""
    M, K = a.shape
    N = b.shape[1]
    kc_max = min(kc_depth, K)
    bp = np.empty(((N + NR - 1) // NR, kc_max, NR), a.dtype)
    n_blocks = (M + mc_rows - 1) // mc_rows
    ap = np.empty((n_blocks, mc_rows // MR, kc_max, MR), a.dtype)    # one per block
    for pc in range(0, K, kc_depth):
        kc = min(kc_depth, K - pc)
        _pack_b(b, pc, kc, bp)
        for blk in prange(n_blocks):
            ic = blk * mc_rows
            _block(a, ic, pc, min(mc_rows, M - ic), kc, bp, ap[blk], c)


def matmul(a, b) -> np.ndarray:
    """C = A B for A (..., M, K) and B (..., K, N) (batch dims broadcast, like ``np.matmul``).

    float32/float64 (float16 is computed in float32); the result has the wider input dtype.
    """
    a, a_dtype = float_input(a, "a", min_ndim=2)
    b, b_dtype = float_input(b, "b", min_ndim=2)
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(f"a's last dim ({a.shape[-1]}) must equal b's second-to-last dim "
                         f"({b.shape[-2]}); got a{a.shape} and b{b.shape}")
    dtype = np.result_type(a.dtype, b.dtype)
    try:
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ValueError(f"batch dims of a{a.shape} and b{b.shape} do not broadcast") from None
    M, K, N = a.shape[-2], a.shape[-1], b.shape[-1]
    n = int(np.prod(batch))                       # reshape(-1) fails on zero-size arrays
    a = np.ascontiguousarray(np.broadcast_to(a, batch + (M, K)), dtype).reshape(n, M, K)
    b = np.ascontiguousarray(np.broadcast_to(b, batch + (K, N)), dtype).reshape(n, K, N)
    c = (np.empty if K else np.zeros)((n, M, N), dtype)     # K = 0: the empty sum, 0
    cfg = config(2.0 * n * M * N * K)
    for i in range(n):                            # _gemm leaves an empty product alone
        _gemm(a[i], b[i], c[i], cfg.matmul_mc, cfg.matmul_kc)
    return c.reshape(batch + (M, N)).astype(np.result_type(a_dtype, b_dtype), copy=False)
