"""Softmax forward and backward along any axis, parallel over rows.

    forward:  y_i = exp(x_i − m) / Σ_j exp(x_j − m),   m = max_j x_j
    backward: dx_i = y_i (dy_i − Σ_j dy_j y_j)

Same contract as :func:`attention_np.core.softmax_forward`: masked entries (mask False) get
y = 0, a row whose entries are all masked or all −inf gives zeros (never NaN), and a NaN in a
row makes the whole row NaN (the max skips it, the exponential does not).

The last axis is the fast path (one contiguous row per task: max, exp-and-sum, scale). Any other
axis is handled without transposing: the array is viewed as (A, L, C) with the softmax over L,
and the C columns of a slab are processed together as vectors.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from attention_np.kernels._config import ELEMENTWISE, PARALLEL
from attention_np.kernels._intrinsics import fast_exp, maxnum
from attention_np.kernels._validate import bool_mask, float_input


@njit(inline="always", **ELEMENTWISE)
def _softmax_row(x, y):
    m = x[0]
    for j in range(x.shape[0]):
        m = maxnum(m, x[j])
    if m == -np.inf:                                  # all −inf (or masked): y = 0
        y[:] = 0
        return
    s = x.dtype.type(0)
    for j in range(x.shape[0]):
        e = fast_exp(x[j] - m)
        y[j] = e
        s += e
    inv = 1 / s
    for j in range(x.shape[0]):
        y[j] *= inv


@njit(**PARALLEL)
def _softmax_last(x, y):
    """x, y (N, L) C-contiguous; softmax of each row."""
    for r in prange(x.shape[0]):
        _softmax_row(x[r], y[r])


@njit(**PARALLEL)
def _softmax_mid(x, y):
    """x, y (A, L, C) C-contiguous; softmax over L for each (a, c)."""
    A, L, C = x.shape
    for a in prange(A):
        m = x[a, 0].copy()                            # (C,) running max
        for l in range(L):
            for c in range(C):
                m[c] = maxnum(m[c], x[a, l, c])
        for c in range(C):                            # all −inf: exp(x − 0) = 0, and y = 0
            m[c] = 0 if m[c] == -np.inf else m[c]
        s = np.zeros_like(m)
        for l in range(L):
            for c in range(C):
                e = fast_exp(x[a, l, c] - m[c])
                y[a, l, c] = e
                s[c] += e
        for c in range(C):
            s[c] = 0 if s[c] == 0 else 1 / s[c]
        for l in range(L):
            for c in range(C):
                y[a, l, c] *= s[c]


@njit(inline="always", **ELEMENTWISE)
def _softmax_backward_row(y, dy, dx):
    dot = y.dtype.type(0)
    for j in range(y.shape[0]):
        dot += dy[j] * y[j]
    for j in range(y.shape[0]):
        dx[j] = y[j] * (dy[j] - dot)


@njit(**PARALLEL)
def _softmax_backward_last(y, dy, dx):
    """y, dy, dx (N, L) C-contiguous."""
    for r in prange(y.shape[0]):
        _softmax_backward_row(y[r], dy[r], dx[r])


@njit(**PARALLEL)
def _softmax_backward_mid(y, dy, dx):
    """y, dy, dx (A, L, C) C-contiguous; the sum runs over L."""
    A, L, C = y.shape
    for a in prange(A):
        dot = np.zeros(C, y.dtype)
        for l in range(L):
            for c in range(C):
                dot[c] += dy[a, l, c] * y[a, l, c]
        for l in range(L):
            for c in range(C):
                dx[a, l, c] = y[a, l, c] * (dy[a, l, c] - dot[c])


def _as_3d(shape: tuple, axis: int) -> tuple[int, int, int]:
    """(A, L, C): the product of the axes before ``axis``, its length, the product after."""
    return (int(np.prod(shape[:axis])), shape[axis], int(np.prod(shape[axis + 1:])))


def _normalise_axis(x: np.ndarray, axis: int) -> int:
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"axis {axis} is out of range for an array of shape {x.shape}")
    return axis % x.ndim


def _run(last_kernel, mid_kernel, arrays: list[np.ndarray], axis: int) -> np.ndarray:
    """Allocate the output and call the last-axis or middle-axis kernel on (A, L, C) views."""
    shape = arrays[0].shape
    out = np.empty(shape, arrays[0].dtype)
    if out.size == 0:
        return out
    A, L, C = _as_3d(shape, axis)
    if C == 1:
        last_kernel(*[a.reshape(A, L) for a in arrays], out.reshape(A, L))
    else:
        mid_kernel(*[a.reshape(A, L, C) for a in arrays], out.reshape(A, L, C))
    return out


def softmax(x, axis: int = -1, mask=None) -> np.ndarray:
    """y = softmax(x) along ``axis``:  y_i = exp(x_i − max x) / Σ_j exp(x_j − max x).

    x: float32/float64 array of any rank ≥ 1 (other dtypes are computed in float64, float16 in
    float32); mask: boolean broadcastable to x, False entries get y = 0. Returns y with x's
    shape and dtype. A row of all −inf or all masked gives zeros (torch gives NaN).
    """
    x, out_dtype = float_input(x, "x", min_ndim=1)
    axis = _normalise_axis(x, axis)
    mask = bool_mask(mask, "mask", x.shape)
    if mask is not None:
        x = np.where(mask, x, x.dtype.type(-np.inf))
    y = _run(_softmax_last, _softmax_mid, [x], axis)
    return y.astype(out_dtype, copy=False)


def softmax_backward(y, dy, axis: int = -1) -> np.ndarray:
    """dx = y ⊙ (dy − Σ_j dy_j y_j) along ``axis`` (O(n), no Jacobian).

    y: the forward output, dy: gradient of the loss w.r.t. y, same shape. Returns dx (y's dtype).
    """
    y, out_dtype = float_input(y, "y", min_ndim=1)
    dy, _ = float_input(dy, "dy", dtype=y.dtype)
    if dy.shape != y.shape:
        raise ValueError(f"dy must have y's shape {y.shape}, got {dy.shape}")
    axis = _normalise_axis(y, axis)
    dx = _run(_softmax_backward_last, _softmax_backward_mid, [y, dy], axis)
    return dx.astype(out_dtype, copy=False)
