"""Building blocks of a Transformer besides attention: embedding, layer norm, dropout and masked
mean pooling (positional encodings are an idea of their own: :mod:`attention_np.positional`).

Each layer is a ``<name>_forward(...) -> (out, cache)`` / ``<name>_backward(dout, cache)`` pair;
the cache is a plain dict holding exactly what the backward reads.
"""
from __future__ import annotations

import numpy as np

from attention_np.nn.checks import (as_dout, as_float_array, check_mask, check_positive_int,
                                    check_rng, check_same_dim, compute_dtype)


# --- embedding -------------------------------------------------------------------------------

def embedding_forward(ids, W):
    """x = W[ids]: row ``ids[...]`` of the table.   ids int (...), W (V, d) → x (..., d).

    Raises ``ValueError`` for non-integer ids or ids outside [0, V).
    """
    ids = np.asarray(ids)
    W = as_float_array(W, "W", ndim=2)
    if not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"ids must be an integer array, got dtype {ids.dtype} shape {ids.shape}")
    V = W.shape[0]
    if ids.size and (ids.min() < 0 or ids.max() >= V):
        raise ValueError(f"ids must lie in [0, V={V}) for W with shape {W.shape}; got ids in "
                         f"[{ids.min()}, {ids.max()}] (shape {ids.shape})")
    return W[ids], {"ids": ids, "W_shape": W.shape, "dtype": W.dtype}


def embedding_backward(dx, cache):
    """dW[v] = Σ_{positions p with ids[p] = v} dx[p]   (a scatter-add; repeated ids accumulate).

    dx (..., d) → dW (V, d).
    """
    ids, (V, d) = cache["ids"], cache["W_shape"]
    dx = as_dout(dx, ids.shape + (d,), cache["dtype"], name="dx")
    dW = np.zeros((V, d), dtype=compute_dtype(cache["dtype"]))   # float16 sums in float32
    np.add.at(dW, ids.reshape(-1), dx.reshape(-1, d))       # (N,) ids, (N, d) rows
    return dW.astype(cache["dtype"], copy=False)


# --- layer norm ------------------------------------------------------------------------------

def layer_norm_forward(x, gamma, beta, eps: float = 1e-5):
    """Layer normalisation over the last axis (Ba et al., 2016).

        μ = mean_j x_j,   σ² = mean_j (x_j − μ)²,   x̂ = (x − μ) / √(σ² + ε),   y = γ ⊙ x̂ + β

    x (..., d), gamma (d,), beta (d,) → y (..., d). σ² is the biased variance, as in torch.
    """
    x = as_float_array(x, "x", min_ndim=1)
    if x.shape[-1] == 0:
        raise ValueError(f"x must have at least one feature on its last axis, got shape {x.shape}")
    gamma = as_float_array(gamma, "gamma", ndim=1)
    beta = as_float_array(beta, "beta", ndim=1)
    check_same_dim(gamma, "gamma", 0, x, "x", -1)
    check_same_dim(beta, "beta", 0, x, "x", -1)
    if not eps > 0:
        raise ValueError(f"eps must be positive, got {eps}")
    dtype = np.result_type(x, gamma, beta)
    ct = compute_dtype(dtype)
    xc, g, b = (a.astype(ct, copy=False) for a in (x, gamma, beta))
    mu = xc.mean(axis=-1, keepdims=True)                          # (..., 1)
    xm = xc - mu                                                   # (..., d)
    rstd = 1.0 / np.sqrt((xm * xm).mean(axis=-1, keepdims=True) + eps)   # (..., 1)
    xhat = xm * rstd                                               # (..., d)
    y = xhat * g + b
    return y.astype(dtype, copy=False), {"xhat": xhat, "rstd": rstd, "gamma": g,
                                         "dtype": dtype}


def layer_norm_backward(dy, cache):
    """With g = dy ⊙ γ (the gradient w.r.t. x̂), for each row:

        dx = (g − mean(g) − x̂ ⊙ mean(g ⊙ x̂)) / √(σ² + ε)
        dγ = Σ_rows dy ⊙ x̂,   dβ = Σ_rows dy

    dy (..., d) → dx (..., d), dgamma (d,), dbeta (d,).
    """
    xhat, rstd, gamma, dtype = cache["xhat"], cache["rstd"], cache["gamma"], cache["dtype"]
    dy = as_dout(dy, xhat.shape, xhat.dtype)
    d = xhat.shape[-1]
    # forward: y = γ x̂ + β  →  dγ, dβ summed over every leading axis
    dgamma = (dy * xhat).reshape(-1, d).sum(axis=0)
    dbeta = dy.reshape(-1, d).sum(axis=0)
    # forward: x̂ = (x − μ) · rstd  →  project out the mean and the x̂ direction
    g = dy * gamma                                                 # (..., d)
    dx = rstd * (g - g.mean(axis=-1, keepdims=True)
                 - xhat * (g * xhat).mean(axis=-1, keepdims=True))
    return tuple(a.astype(dtype, copy=False) for a in (dx, dgamma, dbeta))


# --- dropout ---------------------------------------------------------------------------------

def dropout_forward(x, p: float, rng: np.random.Generator | None = None, training: bool = True):
    """Inverted dropout (Srivastava et al., 2014).

        m_i ~ Bernoulli(1 − p),   y = x ⊙ m / (1 − p)      (so E[y] = x)

    x (...) → y (...). With ``p == 0`` or ``training=False`` it is the identity (rng unused);
    with ``p == 1`` every entry is dropped and y = 0. ``rng`` is a ``np.random.Generator``.
    """
    x = as_float_array(x, "x")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must lie in [0, 1], got {p}")
    if not training or p == 0.0:
        return x, {"scale": None, "shape": x.shape, "dtype": x.dtype}
    check_rng(rng, f"when training with p={p}")
    keep = rng.random(x.shape) >= p                               # (...) bool, P(keep) = 1 − p
    scale = keep.astype(x.dtype) * (x.dtype.type(1.0 / (1.0 - p)) if p < 1 else 0)
    return x * scale, {"scale": scale, "shape": x.shape, "dtype": x.dtype}


def dropout_backward(dy, cache):
    """dx = dy ⊙ m / (1 − p)   (the same mask as the forward; identity when it was off)."""
    dy = as_dout(dy, cache["shape"], cache["dtype"])
    return dy if cache["scale"] is None else dy * cache["scale"]


# --- masked mean pooling --------------------------------------------------------------------

def masked_mean_forward(x, mask=None):
    """The mean of the real steps of each row (sentence embeddings, DIN's baseline pooling).

        w_t = m_t / max(Σ_s m_s, 1),   y = Σ_t w_t x_t

    x (B, T, d), mask (B, T) bool (True = real step) or None (all real) → y (B, d).
    A row with no real step gets y = 0 (and zero gradient). It is attention with uniform
    weights over the real steps, whatever the query.
    """
    x = as_float_array(x, "x", ndim=3)
    mask = check_mask(mask, "mask", x.shape[:2])
    m = np.ones(x.shape[:2], x.dtype) if mask is None else mask.astype(x.dtype)   # (B, T)
    w = m / np.maximum(m.sum(axis=1, keepdims=True), 1)                # (B, T)
    return np.einsum("bt,btd->bd", w, x), {"w": w, "dtype": x.dtype, "d": x.shape[2]}


def masked_mean_backward(dy, cache):
    """dx_t = w_t dy   (w_t = m_t / Σ_s m_s).   dy (B, d) → dx (B, T, d)."""
    w = cache["w"]
    dy = as_dout(dy, (w.shape[0], cache["d"]), cache["dtype"])
    return w[..., None] * dy[:, None, :]
