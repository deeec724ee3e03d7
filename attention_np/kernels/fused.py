"""Fused row-wise layers of a Transformer block: the fast versions of the NumPy reference layers
(:func:`attention_np.nn.layers.layer_norm_forward`, :mod:`attention_np.nn.activations`,
:func:`attention_np.nn.layers.masked_mean_forward` with
:func:`attention_np.models.minilm_layers.l2_normalize_forward`), one pass over the rows each.

    add + layer norm:   z = a + b + r,  x̂ = (z − μ) / √(σ² + ε),  y = γ ⊙ x̂ + β   (row-wise)
    its backward:       dz = (g − mean(g) − x̂ ⊙ mean(g ⊙ x̂)) / √(σ² + ε),  g = dy ⊙ γ
    bias + activation:  u ← u + b,  a = act(u),   act = GELU (exact, erf) or ReLU
    its backward:       du = da ⊙ act′(u),  GELU′(u) = Φ(u) + u φ(u)
    mean pool + L2:     s = mean of a sequence's rows,  e = s / max(‖s‖, 10⁻¹²)

Shapes: rows (N, d) C-contiguous, vectors (d,); every array of a call has one dtype. The
``@njit`` cores trust their inputs; :mod:`kernels.encoder` calls them on checked arrays.

They are serial loops, not ``prange``: the encoder runs them on the calling thread anyway
(BLAS has the cores), and a parallel kernel's loop body is a second compiled function whose
copy in Numba's on-disk cache can round differently from the one that ran when it was
compiled (the GELU backward in float32 did: see :mod:`kernels._config`).
"""
from __future__ import annotations

import math

from numba import njit

from attention_np.kernels._config import ELEMENTWISE
from attention_np.kernels._special import normal_cdf, normal_pdf


@njit(inline="always", **ELEMENTWISE)
def _norm_row(z, gamma, beta, eps, y):
    """One row, in place: z ← x̂ = (z − μ)/√(σ² + ε); y = γ x̂ + β; returns 1/√(σ² + ε).
    (Each kernel here writes through one name per array: two names for one array make LLVM's
    overlap check fail at run time and the loop falls back to scalar code, ~10× slower.)"""
    d = z.shape[0]
    s = z.dtype.type(0)
    for j in range(d):
        s += z[j]
    mu = s / d
    v = z.dtype.type(0)
    for j in range(d):
        z[j] -= mu
        v += z[j] * z[j]
    rstd = 1 / math.sqrt(v / d + eps)
    for j in range(d):
        z[j] *= rstd
        y[j] = z[j] * gamma[j] + beta[j]
    return rstd


@njit(**ELEMENTWISE)
def add_layer_norm(a, bias, res, gamma, beta, eps, y, rstd):
    """y = LN(a + bias + res) row by row; ``a`` (N, d) is overwritten by x̂ (the backward's
    input). res, y (N, d); bias, gamma, beta (d,); rstd (N,) ← 1/√(σ² + ε)."""
    for r in range(a.shape[0]):
        z = a[r]
        for j in range(z.shape[0]):
            z[j] += bias[j] + res[r, j]
        rstd[r] = _norm_row(z, gamma, beta, eps, y[r])


@njit(**ELEMENTWISE)
def layer_norm_backward(dy, xhat, rstd, gamma, dz, dgamma, dbeta):
    """dz (N, d) from dy (N, d); dgamma, dbeta (d,) get Σ_rows dy ⊙ x̂ and Σ_rows dy."""
    N, d = dy.shape
    dgamma[:] = 0
    dbeta[:] = 0
    for r in range(N):
        mean_g, mean_gx = dy.dtype.type(0), dy.dtype.type(0)
        for j in range(d):
            g = dy[r, j] * gamma[j]
            mean_g += g
            mean_gx += g * xhat[r, j]
            dgamma[j] += dy[r, j] * xhat[r, j]
            dbeta[j] += dy[r, j]
        mean_g /= d
        mean_gx /= d
        for j in range(d):
            dz[r, j] = rstd[r] * (dy[r, j] * gamma[j] - mean_g - xhat[r, j] * mean_gx)


@njit(inline="always", **ELEMENTWISE)     # inlined by Numba, or the loops calling it stay scalar
def _act(x, gelu):
    """GELU(x) = x Φ(x), or ReLU(x) = max(x, 0) keeping a NaN."""
    if gelu:
        return x * normal_cdf(x)
    return x if x > 0 or x != x else x * 0


@njit(**ELEMENTWISE)
def bias_activation(u, bias, gelu, out):
    """u ← u + bias (kept for the backward), out = GELU(u) or ReLU(u).  u, out (N, f), bias (f,)
    (out must not be u: see :func:`bias_activation_inplace`)."""
    for r in range(u.shape[0]):
        ur, o = u[r], out[r]
        for j in range(ur.shape[0]):
            ur[j] += bias[j]
            o[j] = _act(ur[j], gelu)


@njit(**ELEMENTWISE)
def bias_activation_inplace(u, bias, gelu):
    """u ← act(u + bias), for inference (the pre-activation is not kept)."""
    for r in range(u.shape[0]):
        ur = u[r]
        for j in range(ur.shape[0]):
            ur[j] = _act(ur[j] + bias[j], gelu)


@njit(**ELEMENTWISE)
def activation_backward(da, u, gelu):
    """da ← da ⊙ act′(u) in place.  GELU′ = Φ(u) + u φ(u); ReLU′ = [u > 0] (NaN in da stays)."""
    for r in range(u.shape[0]):
        dr, ur = da[r], u[r]
        for j in range(ur.shape[0]):
            x = ur[j]
            if gelu:
                dr[j] *= normal_cdf(x) + x * normal_pdf(x)
            elif not x > 0:
                dr[j] *= 0


@njit(**ELEMENTWISE)
def segment_mean_normalize(rows, starts, lengths, out):
    """out[b] = s / max(‖s‖, 10⁻¹²),  s = the mean of rows starts[b] … starts[b] + lengths[b] − 1
    (0 for an empty sequence): the sentence embedding of sequences stored back to back.
    rows (N, d), starts and lengths (B,) int, out (B, d)."""
    for b in range(out.shape[0]):
        o = out[b]
        o[:] = 0
        for r in range(starts[b], starts[b] + lengths[b]):
            row = rows[r]
            for j in range(o.shape[0]):
                o[j] += row[j]
        norm = out.dtype.type(0)
        for j in range(o.shape[0]):
            o[j] /= max(lengths[b], 1)
            norm += o[j] * o[j]
        norm = max(math.sqrt(norm), out.dtype.type(1e-12))
        for j in range(o.shape[0]):
            o[j] /= norm
