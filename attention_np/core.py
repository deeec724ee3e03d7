"""The two ops everything else is built from: a masked, stable softmax and a linear layer.

Also the two masks every model needs, ``causal_mask`` and ``padding_mask``.
Masks are boolean, True = may attend (the convention of
``torch.nn.functional.scaled_dot_product_attention``).
"""
from __future__ import annotations

import numpy as np

from attention_np.nn.checks import (as_dout, as_float_array, check_mask, check_same_dim,
                                    compute_dtype)


def softmax_forward(x, axis: int = -1, mask=None):
    """Stable, masked softmax along ``axis``.

        y_i = exp(x_i − m) / Σ_j exp(x_j − m),   m = max_j x_j   (over entries with mask True)

    Entries where ``mask`` is False get y = 0; a row whose entries are all masked gives all
    zeros (not NaN), and so does an empty axis (an empty y). Shapes: x (...), mask
    broadcastable to x.shape; y has x's shape and dtype.
    """
    x = as_float_array(x, "x", min_ndim=1)
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"axis {axis} is out of range for x with shape {x.shape}")
    return softmax_core(x, axis, check_mask(mask, "mask", x.shape))


def softmax_core(x: np.ndarray, axis: int, mask: np.ndarray | None):
    """:func:`softmax_forward` on checked input: x a float array, a boolean mask that
    broadcasts to x (checked by the caller), or None."""
    xc = x.astype(compute_dtype(x.dtype), copy=False)
    if mask is not None:
        xc = np.where(mask, xc, -np.inf)
    m = np.max(xc, axis=axis, keepdims=True, initial=-np.inf)   # −inf for an empty axis
    m = np.where(np.isfinite(m), m, 0)               # fully masked row: exp(−inf − 0) = 0
    e = np.exp(xc - m)
    s = np.sum(e, axis=axis, keepdims=True)
    y = (e / np.where(s == 0, 1, s)).astype(x.dtype, copy=False)
    return y, {"y": y, "axis": axis}


def softmax_backward(dy, cache):
    """dx = y ⊙ (dy − Σ_j dy_j y_j)   — O(n), no Jacobian. Masked entries (y = 0) get dx = 0."""
    y, axis = cache["y"], cache["axis"]
    dy = as_dout(dy, y.shape)
    return (y * (dy - np.sum(dy * y, axis=axis, keepdims=True))).astype(y.dtype, copy=False)


def linear_forward(x, W, b=None):
    """y = x W + b.   x (..., d_in), W (d_in, d_out), b (d_out,) or None → y (..., d_out)."""
    x = as_float_array(x, "x", min_ndim=1)
    W = as_float_array(W, "W", ndim=2)
    check_same_dim(x, "x", -1, W, "W", 0)
    if b is not None:
        b = as_float_array(b, "b", ndim=1)
        check_same_dim(b, "b", 0, W, "W", 1)
    return linear_core(x, W, b)


def linear_core(x: np.ndarray, W: np.ndarray, b: np.ndarray | None):
    """:func:`linear_forward` on checked input."""
    y = x @ W
    if b is not None:
        y = y + b
    return y, {"x": x, "W": W, "has_bias": b is not None}


def linear_backward(dy, cache):
    """dx = dy Wᵀ,  dW = Σ_rows xᵀ dy,  db = Σ_rows dy   (db is None when the forward had no b)."""
    x, W = cache["x"], cache["W"]
    dy = as_dout(dy, x.shape[:-1] + (W.shape[1],))
    dx = dy @ W.T
    x2, dy2 = x.reshape(-1, x.shape[-1]), dy.reshape(-1, dy.shape[-1])   # (N, d_in), (N, d_out)
    dW = x2.T @ dy2
    db = dy2.sum(axis=0) if cache["has_bias"] else None
    return dx, dW, db


def causal_mask(Tq: int, Tk: int | None = None) -> np.ndarray:
    """(Tq, Tk) boolean mask, True where key j ≤ query i (top-left aligned, like torch's is_causal)."""
    Tk = Tq if Tk is None else Tk
    if Tq < 1 or Tk < 1:
        raise ValueError(f"Tq and Tk must be positive, got Tq={Tq}, Tk={Tk}")
    return np.arange(Tk)[None, :] <= np.arange(Tq)[:, None]


def padding_mask(lengths, T: int) -> np.ndarray:
    """(B, T) boolean mask, True for the first ``lengths[b]`` positions (real tokens) of row b.

    To mask keys: ``m[:, None, :]`` broadcasts to (B, Tq, Tk); ``m[:, None, None, :]`` to
    (B, H, Tq, Tk).
    """
    lengths = np.asarray(lengths)
    if lengths.ndim != 1 or not np.issubdtype(lengths.dtype, np.integer):
        raise ValueError(f"lengths must be a 1-D integer array, got shape {lengths.shape} "
                         f"dtype {lengths.dtype}")
    if np.any(lengths < 0) or np.any(lengths > T):
        raise ValueError(f"lengths must lie in [0, T={T}], got {lengths.tolist()}")
    return np.arange(T)[None, :] < lengths[:, None]
