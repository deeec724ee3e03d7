"""Performer / FAVOR+ (Choromanski et al., 2021): softmax attention by positive random features.

For x, y ∈ ℝᴰ and w ~ N(0, I):  exp(x · y) = E_w[exp(w·x − |x|²/2) exp(w·y − |y|²/2)].
With m features w_1 … w_m (rows of W, shape (m, D)) the estimate is φ(x) · φ(y) with

    φ(x) = exp(W x − |x|²/2) / √m      (all entries > 0, so the estimate is never negative)

Softmax attention uses exp(q · k / √D) = exp(q' · k') with q' = q / D^¼, k' = k / D^¼, so
out ≈ kernelised attention with φ(q'), φ(k') — O(T · m · D) instead of O(T² · D).
The rows of W are drawn orthogonal in blocks of D (lower variance than i.i.d. rows) and rescaled
to the norms of Gaussian vectors, so each row is still marginally N(0, I).

For numerical range the exponent is shifted by a constant c before exp: per row for queries,
per (batch, head) for keys. The constant cancels between numerator and denominator of the
attention, so it is treated as a constant in the backward (as the reference implementation does).
"""
from __future__ import annotations

import numpy as np

from attention_np.efficient.linear import (featurized_attention_backward,
                                           featurized_attention_forward)
from attention_np.nn.checks import (as_dout, as_float_array, check_nonempty, check_positive_int,
                                    check_same_dim)
from attention_np.self_attention import check_qkv


def orthogonal_random_features(num_features: int, dim: int, rng: np.random.Generator,
                               dtype=np.float64) -> np.ndarray:
    """W (m, D): blocks of D orthogonal directions (QR of a Gaussian matrix), row norms ~ χ_D."""
    m = check_positive_int(num_features, "num_features")
    D = check_positive_int(dim, "dim")
    blocks = []
    for _ in range(-(-m // D)):
        Q, _ = np.linalg.qr(rng.standard_normal((D, D)))
        blocks.append(Q.T)                                           # rows orthonormal
    W = np.concatenate(blocks, axis=0)[:m]
    norms = np.linalg.norm(rng.standard_normal((m, D)), axis=1)      # (m,) ~ χ_D
    return (W * norms[:, None]).astype(dtype)


def favor_features_forward(x, W, per_row: bool):
    """φ(x') = exp(W x' − |x'|²/2 − c) / √m, x' = x / D^¼.

    x (..., T, D) with D ≥ 1, W (m, D) with m ≥ 1 → φ (..., T, m). c = max over the features
    of each row (``per_row``, for queries) or over the whole (T, m) slab of each leading index
    (for keys; an empty slab, T = 0, gives an empty φ).
    """
    x = as_float_array(x, "x", min_ndim=2)
    check_nonempty(x, "x", -1, "feature dimension D (x' = x / D^¼)")
    return _favor_features(x, _check_features(W, x), per_row)


def _favor_features(x: np.ndarray, W: np.ndarray, per_row: bool):
    """:func:`favor_features_forward` on checked input."""
    D, m = x.shape[-1], W.shape[0]
    r = x.dtype.type(D ** -0.25)
    xs = x * r                                                       # (..., T, D)
    W = W.astype(x.dtype, copy=False)
    logits = xs @ W.T - 0.5 * np.sum(xs * xs, axis=-1, keepdims=True)
    axes = (-1,) if per_row else (-2, -1)
    c = np.max(logits, axis=axes, keepdims=True, initial=-np.inf)    # stabiliser, a constant
    phi = np.exp(logits - c) / x.dtype.type(np.sqrt(m))              # (..., T, m)
    return phi, {"phi": phi, "xs": xs, "W": W, "r": r}


def favor_features_backward(dphi, cache):
    """φ = exp(ℓ − c)/√m, ℓ = W x' − |x'|²/2  →  dℓ = dφ ⊙ φ,
    dx' = dℓ W − (Σ_f dℓ) x',  dx = r dx'."""
    return _favor_features_backward(as_dout(dphi, cache["phi"].shape, name="dphi"), cache)


def _favor_features_backward(dphi: np.ndarray, cache):
    dlogits = dphi * cache["phi"]
    dxs = dlogits @ cache["W"] - np.sum(dlogits, axis=-1, keepdims=True) * cache["xs"]
    return dxs * cache["r"]


def _check_features(W, x: np.ndarray, x_name: str = "x") -> np.ndarray:
    """W (m, D) with m ≥ 1 features, D the last axis of x (named x_name)."""
    W = as_float_array(W, "W", ndim=2)
    check_nonempty(W, "W", 0, "number of features m (φ divides by √m)")
    check_same_dim(W, "W", 1, x, x_name, -1)
    return W


def performer_attention_forward(q, k, v, W, causal: bool = False, eps: float = 1e-12):
    """FAVOR+ estimate of softmax(q kᵀ / √D) v with the random features W (m, D).

    q (..., Tq, D), k (..., Tk, D), v (..., Tk, Dv); ``causal`` needs Tq = Tk
    → out (..., Tq, Dv), weights None, cache.
    """
    q, k, v = check_qkv(q, k, v, same_length=causal)
    W = _check_features(W, q, "q")
    return featurized_attention_forward(
        q, k, v, lambda x: _favor_features(x, W, per_row=True),
        lambda x: _favor_features(x, W, per_row=False), causal, eps)


def performer_attention_backward(dout, cache):
    """Returns (dq, dk, dv); W is a fixed random draw, not a parameter."""
    return featurized_attention_backward(dout, cache, _favor_features_backward)
