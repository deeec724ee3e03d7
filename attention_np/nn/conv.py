"""2-D convolution (via im2col) and max pooling, the image encoder of Show, Attend and Tell.

Layout is **NCHW**, as in ``torch.nn.functional.conv2d``: images x (N, C, H, W), filters
W (F, C, kh, kw) — torch's weight layout, so a ``torch.nn.Conv2d``'s ``weight`` loads as is.
Output sizes follow torch:  H_out = ⌊(H + 2p − kh) / s⌋ + 1  (likewise for W).

im2col turns a convolution into one matrix product. Every (kh × kw) window of every channel
becomes a row of the column matrix X_col (N·H_out·W_out, C·kh·kw); the filters become
W_row (C·kh·kw, F), and

    y[n, f, i, j] = b_f + Σ_{c, u, v} W[f, c, u, v] · x_pad[n, c, s·i + u, s·j + v]
                  = (X_col W_row + b)   reshaped to (N, F, H_out, W_out).

The backward of im2col (col2im) adds each window's gradient back where the window was read,
so pixels shared by overlapping windows accumulate.

``backend="numba"`` (:mod:`attention_np.nn.backend`) runs the copies around the products —
im2col, col2im, the forward's bias and transpose, the pooling — as Numba kernels and leaves
the products to NumPy: the same results bit for bit, and the captioning encoder's forward and
backward together in about half the time (an Intel Xeon, one thread).
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from attention_np.nn import backend as numba_backend
from attention_np.nn.backend import check_backend
from attention_np.nn.checks import as_dout, as_float_array, check_same_dim


def _pair(value, name: str, minimum: int) -> tuple[int, int]:
    """An int or a pair of ints → (along H, along W), each ≥ ``minimum``."""
    pair = (value, value) if np.isscalar(value) else tuple(value)
    if len(pair) != 2 or any(int(v) != v or v < minimum for v in pair):
        raise ValueError(f"{name} must be an int ≥ {minimum} or a pair of them, got {value!r}")
    return int(pair[0]), int(pair[1])


def _out_size(size: int, k: int, s: int, p: int, name: str) -> int:
    out = (size + 2 * p - k) // s + 1
    if out < 1:
        raise ValueError(f"{name}: input size {size} with padding {p} is smaller than the "
                         f"kernel size {k}")
    return out


def _windows(x_pad: np.ndarray, kernel: tuple, stride: tuple, out_hw: tuple) -> np.ndarray:
    """Strided view (N, C, H_out, W_out, kh, kw) of every window — no copy."""
    view = sliding_window_view(x_pad, kernel, axis=(2, 3))          # (N, C, H', W', kh, kw)
    return view[:, :, ::stride[0], ::stride[1]][:, :, :out_hw[0], :out_hw[1]]


def _scatter_windows(dwin: np.ndarray, padded_shape: tuple, stride: tuple, padding: tuple):
    """col2im: add dwin (N, C, H_out, W_out, kh, kw) back onto the padded input, then crop.

    One strided slice-add per kernel offset (u, v): kh·kw vectorised adds in total.
    """
    N, C, Ho, Wo, kh, kw = dwin.shape
    (sh, sw), (ph, pw) = stride, padding
    dx = np.zeros(padded_shape, dtype=dwin.dtype)
    for u in range(kh):
        for v in range(kw):
            dx[:, :, u:u + sh * Ho:sh, v:v + sw * Wo:sw] += dwin[..., u, v]
    return dx[:, :, ph:padded_shape[2] - ph, pw:padded_shape[3] - pw]


def _check_image(x, name: str = "x") -> np.ndarray:
    return as_float_array(x, name, ndim=4)


def conv2d_forward(x, W, b=None, stride=1, padding=0, backend="numpy"):
    """y = conv2d(x, W) + b  (cross-correlation, as in every deep-learning library).

    y[n, f, i, j] = b_f + Σ_{c,u,v} W[f, c, u, v] x_pad[n, c, s_h i + u, s_w j + v]

    x (N, C, H, W), W (F, C, kh, kw), b (F,) or None; stride, padding: int or (h, w) pair
    (zero padding) → y (N, F, H_out, W_out). ``backend="numba"``: the same numbers, the
    copies on Numba kernels.
    """
    check_backend(backend)
    x, W = _check_image(x), as_float_array(W, "W", ndim=4)
    check_same_dim(x, "x", 1, W, "W", 1)
    (sh, sw), (ph, pw) = _pair(stride, "stride", 1), _pair(padding, "padding", 0)
    F, C, kh, kw = W.shape
    N, _, H, Wd = x.shape
    Ho, Wo = _out_size(H, kh, sh, ph, "x height"), _out_size(Wd, kw, sw, pw, "x width")
    if b is not None:
        b = as_float_array(b, "b", ndim=1)
        check_same_dim(b, "b", 0, W, "W", 0)
    padded_shape = (N, C, H + 2 * ph, Wd + 2 * pw)
    cache = {"W": W, "has_bias": b is not None, "padded_shape": padded_shape, "x_shape": x.shape,
             "stride": (sh, sw), "padding": (ph, pw), "backend": backend}
    W_row = W.reshape(F, C * kh * kw).T                            # (C·kh·kw, F)
    if backend == "numba":
        cache["cols"] = cols = numba_backend.conv_im2col(x, (kh, kw), (sh, sw), (ph, pw),
                                                         (Ho, Wo))
        return numba_backend.conv_rows_to_nchw(cols @ W_row, b, (Ho, Wo)), cache
    x_pad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    win = _windows(x_pad, (kh, kw), (sh, sw), (Ho, Wo))            # (N, C, Ho, Wo, kh, kw)
    cols = np.ascontiguousarray(                                   # im2col (always a copy)
        win.transpose(0, 2, 3, 1, 4, 5).reshape(N * Ho * Wo, C * kh * kw))
    y = cols @ W_row                                               # (N·Ho·Wo, F)
    if b is not None:
        y = y + b
    y = y.reshape(N, Ho, Wo, F).transpose(0, 3, 1, 2)              # (N, F, Ho, Wo)
    cache["cols"] = cols
    return np.ascontiguousarray(y), cache


def conv2d_backward(dy, cache):
    """Walks conv2d_forward backwards: y = cols W_row + b, cols = im2col(x_pad).

    dW_row = colsᵀ dy,   db = Σ dy,   dcols = dy W_rowᵀ,   dx = col2im(dcols) (cropped).
    dy (N, F, H_out, W_out) → (dx (N, C, H, W), dW (F, C, kh, kw), db (F,) or None).
    """
    cols, W = cache["cols"], cache["W"]
    F, C, kh, kw = W.shape
    N = cache["padded_shape"][0]
    dy = np.asarray(dy)
    if dy.ndim != 4 or dy.shape[:2] != (N, F):
        raise ValueError(f"dy must have shape ({N}, {F}, H_out, W_out), got {dy.shape}")
    Ho, Wo = dy.shape[2:]
    dy_rows = np.ascontiguousarray(dy.transpose(0, 2, 3, 1).reshape(N * Ho * Wo, F))
    dW = (cols.T @ dy_rows).T.reshape(F, C, kh, kw)
    db = dy_rows.sum(axis=0) if cache["has_bias"] else None
    dcols = dy_rows @ W.reshape(F, -1)                              # (N·Ho·Wo, C·kh·kw)
    if cache["backend"] == "numba":
        dx = numba_backend.conv_col2im(dcols, cache["x_shape"], (kh, kw), cache["stride"],
                                       cache["padding"], (Ho, Wo))
        return dx, dW, db
    dwin = dcols.reshape(N, Ho, Wo, C, kh, kw).transpose(0, 3, 1, 2, 4, 5)
    dx = _scatter_windows(dwin, cache["padded_shape"], cache["stride"], cache["padding"])
    return np.ascontiguousarray(dx), dW, db


def max_pool2d_forward(x, kernel_size, stride=None, padding=0, backend="numpy"):
    """y[n, c, i, j] = max_{u,v} x_pad[n, c, s_h i + u, s_w j + v]   (padding with −∞).

    x (N, C, H, W); kernel_size, stride (default = kernel_size), padding: int or (h, w) pair,
    padding ≤ kernel / 2 as in torch → y (N, C, H_out, W_out). Ties go to the first maximum
    in row-major window order (a NaN counts as the maximum, as in ``np.argmax``).
    ``backend="numba"``: the same numbers on a Numba kernel.
    """
    check_backend(backend)
    x = _check_image(x)
    kh, kw = _pair(kernel_size, "kernel_size", 1)
    sh, sw = _pair(kernel_size if stride is None else stride, "stride", 1)
    ph, pw = _pair(padding, "padding", 0)
    if 2 * ph > kh or 2 * pw > kw:
        raise ValueError(f"padding {padding!r} must be at most half the kernel size {kernel_size!r}")
    N, C, H, Wd = x.shape
    Ho, Wo = _out_size(H, kh, sh, ph, "x height"), _out_size(Wd, kw, sw, pw, "x width")
    cache = {"kernel": (kh, kw), "padded_shape": (N, C, H + 2 * ph, Wd + 2 * pw),
             "stride": (sh, sw), "padding": (ph, pw), "dtype": x.dtype, "backend": backend}
    if backend == "numba":
        y, cache["arg"] = numba_backend.max_pool2d_forward(x, (kh, kw), (sh, sw), (ph, pw),
                                                           (Ho, Wo))
        cache["x_shape"] = x.shape
        return y, cache
    x_pad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=-np.inf)
    win = _windows(x_pad, (kh, kw), (sh, sw), (Ho, Wo)).reshape(N, C, Ho, Wo, kh * kw)
    cache["arg"] = arg = win.argmax(axis=-1)                       # (N, C, Ho, Wo)
    y = np.take_along_axis(win, arg[..., None], axis=-1)[..., 0]
    return y, cache


def max_pool2d_backward(dy, cache):
    """The gradient flows only to the maximum of each window:  dx_pad[argmax] += dy.

    dy (N, C, H_out, W_out) → dx (N, C, H, W).
    """
    arg, (kh, kw) = cache["arg"], cache["kernel"]
    dy = as_dout(dy, arg.shape, cache["dtype"])
    if cache["backend"] == "numba":
        return numba_backend.max_pool2d_backward(dy, arg, cache["x_shape"], (kh, kw),
                                                 cache["stride"], cache["padding"])
    onehot = arg[..., None] == np.arange(kh * kw)                  # (N, C, Ho, Wo, kh·kw)
    dwin = (onehot * dy[..., None]).reshape(*arg.shape, kh, kw)
    dx = _scatter_windows(dwin, cache["padded_shape"], cache["stride"], cache["padding"])
    return np.ascontiguousarray(dx)
