"""The data movement of the im2col convolution and of max pooling, which ``backend="numba"``
runs for :mod:`attention_np.nn.conv` (its NumPy reference): on the captioning encoder's small
images the products are cheap, and most of the time went to NumPy's copies around them
(padding, the strided window view copied into the column matrix, the transposes, col2im's
strided adds, the pool's argmax over a window view).

    im2col         cols[(n, i, j), (c, u, v)] = x[n, c, s_h i + u − p_h, s_w j + v − p_w]
                   (0 outside x), written directly from the unpadded image
    rows → NCHW    y[n, f, i, j] = y_rows[(n, i, j), f] + b_f  (the bias and the transpose in
                   one pass; the backward's NCHW → rows stays NumPy's, as fast on these sizes)
    col2im         dx[n, c, y, x] = Σ over the windows that read (y, x) of dcols[…]
    max pool       y = the window's first maximum (a NaN counts as the maximum, −∞ padding),
                   arg = its index u·k_w + v; backward: dx[argmax] += dy

The products themselves (cols W_row, colsᵀ dy_rows, dy_rows W) stay NumPy's, on the same
arrays, so ``backend="numba"`` gives the reference's results bit for bit: col2im adds each
pixel's terms in the reference's order, kernel offset (u, v) by offset, starting from 0, and
no kernel here reassociates (strict math).

The kernels run on the calling thread: they only move memory, and on the demos' images a
parallel launch cost more than the copies (a training step of the vision demo's CNN took 1.08×
the NumPy layers' time with ``parallel=True`` and 0.61× without, on an Intel Xeon).

The entry points take arrays the caller has checked (:mod:`attention_np.nn.backend`).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from attention_np.kernels._config import STRICT


@njit(**STRICT)
def _im2col(x, kh, kw, sh, sw, ph, pw, cols):
    """x (N, C, H, W) → cols (N·Ho·Wo, C·kh·kw), rows (n, i, j), columns (c, u, v); filled
    column by column (a run along j reads x contiguously)."""
    N, C, H, W = x.shape
    Wo = (W + 2 * pw - kw) // sw + 1
    Ho = cols.shape[0] // (N * Wo)
    for n in range(N):
        block = cols[n * Ho * Wo:(n + 1) * Ho * Wo]
        for c in range(C):
            for u in range(kh):
                for v in range(kw):
                    k = (c * kh + u) * kw + v
                    for i in range(Ho):
                        y = i * sh + u - ph
                        out = block[i * Wo:(i + 1) * Wo, k]
                        if y < 0 or y >= H:
                            out[:] = 0
                            continue
                        src = x[n, c, y]
                        for j in range(Wo):
                            xx = j * sw + v - pw
                            out[j] = src[xx] if 0 <= xx < W else 0


@njit(**STRICT)
def _col2im(dcols, kh, kw, sh, sw, ph, pw, Ho, Wo, dx):
    """dcols (N·Ho·Wo, C·kh·kw) → dx (N, C, H, W): each window's gradient added back where the
    window read, offset (u, v) by offset as the reference adds them."""
    N, C, H, W = dx.shape
    for n in range(N):
        for c in range(C):
            dx[n, c] = 0
            for u in range(kh):
                for v in range(kw):
                    k = (c * kh + u) * kw + v
                    for i in range(Ho):
                        y = i * sh + u - ph
                        if y < 0 or y >= H:
                            continue
                        for j in range(Wo):
                            xx = j * sw + v - pw
                            if 0 <= xx < W:
                                dx[n, c, y, xx] += dcols[(n * Ho + i) * Wo + j, k]


@njit(**STRICT)
def _rows_to_nchw(rows, b, use_bias, out):
    """rows (N·Ho·Wo, F) (+ b (F,) when ``use_bias``) → out (N, F, Ho, Wo)."""
    N, F, Ho, Wo = out.shape
    for n in range(N):
        for i in range(Ho):
            for j in range(Wo):
                row = rows[(n * Ho + i) * Wo + j]
                for f in range(F):
                    out[n, f, i, j] = row[f] + b[f] if use_bias else row[f]


@njit(**STRICT)
def _max_pool(x, kh, kw, sh, sw, ph, pw, y, arg):
    """y (N, C, Ho, Wo) = each window's first maximum (NaN wins, as in np.argmax; outside x
    counts as −∞), arg = its index u·kw + v in the window."""
    N, C, H, W = x.shape
    Ho, Wo = y.shape[2], y.shape[3]
    for n in range(N):
        for c in range(C):
            img = x[n, c]
            for i in range(Ho):
                for j in range(Wo):
                    y0, x0 = i * sh - ph, j * sw - pw
                    if y0 >= 0 and x0 >= 0 and y0 + kh <= H and x0 + kw <= W:
                        best, at, nan = img[y0, x0], 0, False    # inside: the fast path
                        for u in range(kh):
                            for v in range(kw):
                                val = img[y0 + u, x0 + v]
                                if val > best:
                                    best, at = val, u * kw + v
                                nan |= val != val
                        if not nan:
                            y[n, c, i, j], arg[n, c, i, j] = best, at
                            continue
                    best, at, k = -np.inf, 0, 0                 # NaN or padding: in order
                    for u in range(kh):
                        for v in range(kw):
                            yy, xx = y0 + u, x0 + v
                            val = img[yy, xx] if 0 <= yy < H and 0 <= xx < W else -np.inf
                            if k == 0 or (best == best and (val > best or val != val)):
                                best, at = val, k
                            k += 1
                    y[n, c, i, j], arg[n, c, i, j] = best, at


@njit(**STRICT)
def _max_pool_backward(dy, arg, kh, kw, sh, sw, ph, pw, dx):
    """dx (N, C, H, W): each window's dy added at its maximum; a maximum in the padding adds
    nothing. Windows go last to first: a pixel read by several windows then receives their
    terms in the order the reference adds them (its offset (u, v) ascending)."""
    N, C, H, W = dx.shape
    Ho, Wo = dy.shape[2], dy.shape[3]
    for n in range(N):
        for c in range(C):
            dx[n, c] = 0
            for i in range(Ho - 1, -1, -1):
                for j in range(Wo - 1, -1, -1):
                    u, v = divmod(arg[n, c, i, j], kw)
                    yy, xx = i * sh + u - ph, j * sw + v - pw
                    if 0 <= yy < H and 0 <= xx < W:
                        dx[n, c, yy, xx] += dy[n, c, i, j]


# --- entry points: (kh, kw), (sh, sw), (ph, pw) pairs; arrays checked by the caller ----------

def im2col(x, kernel, stride, padding, out_hw):
    """The column matrix (N·Ho·Wo, C·kh·kw) of a C-contiguous image batch x (N, C, H, W)."""
    N, C = x.shape[:2]
    cols = np.empty((N * out_hw[0] * out_hw[1], C * kernel[0] * kernel[1]), x.dtype)
    _im2col(x, *kernel, *stride, *padding, cols)
    return cols


def col2im(dcols, x_shape, kernel, stride, padding, out_hw):
    """The image gradient (N, C, H, W) of a column matrix's gradient dcols."""
    dx = np.empty(x_shape, dcols.dtype)
    _col2im(np.ascontiguousarray(dcols), *kernel, *stride, *padding, *out_hw, dx)
    return dx


def rows_to_nchw(rows, b, out_hw):
    """(N·Ho·Wo, F) rows (+ b (F,), or None) → (N, F, Ho, Wo) in the dtype of rows + b."""
    F = rows.shape[1]
    N = rows.shape[0] // (out_hw[0] * out_hw[1])
    dtype = rows.dtype if b is None else np.result_type(rows, b)
    out = np.empty((N, F) + tuple(out_hw), dtype)
    _rows_to_nchw(np.ascontiguousarray(rows), np.zeros(F, dtype) if b is None else b,
                  b is not None, out)
    return out


def max_pool(x, kernel, stride, padding, out_hw):
    """(y (N, C, Ho, Wo), arg (N, C, Ho, Wo) int64) for a C-contiguous x (N, C, H, W)."""
    shape = x.shape[:2] + tuple(out_hw)
    y, arg = np.empty(shape, x.dtype), np.empty(shape, np.int64)
    _max_pool(x, *kernel, *stride, *padding, y, arg)
    return y, arg


def max_pool_backward(dy, arg, x_shape, kernel, stride, padding):
    """dx (N, C, H, W) in dy's dtype."""
    dx = np.empty(x_shape, dy.dtype)
    _max_pool_backward(np.ascontiguousarray(dy), arg, *kernel, *stride, *padding, dx)
    return dx
