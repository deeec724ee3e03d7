"""Fused LSTM and GRU scans over padded sequences, forward and backward through time: the fast
version of :mod:`attention_np.nn.recurrent` (the NumPy reference, whose parameter layout and
mask convention these kernels share), which the library runs for ``backend="numba"``.

    LSTM, t = 1 … T:  a_t = [x_t | h_{t−1}] [W_x; W_h] + b     one np.dot per step, then the
                      gates and the new state in one fused loop
         t = T … 1:  dA_t = the gate gradients (fused loop), then [dx_t | dh_{t−1}] = dA_t Wᵀ
    GRU:             x_t W_x and h_{t−1} W_h as two np.dot per step (the reset gate multiplies
                     h's n part alone, with its own bias b_h), dx_t = dXW_t W_xᵀ likewise
    at the end:      dW = Σ_t [x_t | h_{t−1}]ᵀ dA_t, db = Σ_t dA_t: one product per thread

G = 4 for the LSTM's gates [i | f | g | o]; G = 3 for the GRU's [r | z | n], whose gradient
of h's product differs from x's in the n block (dhw_n = r ⊙ dxw_n).

Parallel over the batch: rows never interact, so each thread scans its own block of rows
through all T steps — single-threaded np.dot (rows × ·) @ (· × G·H) per step and the fused
gates — and the threads never wait for each other (torch's CPU LSTM splits every step's
product across its threads: a barrier per step). Each thread also makes its block's share of
the weight gradients, so a forward and a backward are one parallel region each: every BLAS
call runs on one thread (a multi-threaded OpenBLAS call costs a thread hand-off, which on a
loaded 2-core machine took 66 ms instead of 5 ms for the LSTM's dW). The activations are kept
block-major, (n_chunks, T, R, ·) with R rows per block (padding rows zero), so that a block's
rows of one step, and of all steps, are contiguous matrices for np.dot.

Masks (B, T), True = real token: at a padded step a row keeps its state and outputs 0; in the
backward its gate gradients are 0 and its state gradient passes through unchanged. The final
state is the state after each row's last real token.

The entry points take arrays the caller has checked (:mod:`attention_np.nn.backend`, whose
caller validates shapes and the mask) and return a state for the matching backward.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from attention_np.kernels._config import ELEMENTWISE, PARALLEL, single_threaded_blas
from attention_np.kernels._lstm_cell import contiguous as _out
from attention_np.kernels._lstm_cell import dtypes as _dtypes
from attention_np.kernels._lstm_cell import lstm_cell as _lstm_cell
from attention_np.kernels._lstm_cell import lstm_cell_backward as _lstm_cell_backward
from attention_np.kernels._lstm_cell import n_chunks as _n_chunks
from attention_np.kernels._lstm_cell import rows as _rows
from attention_np.kernels._special import fast_sigmoid, fast_tanh



# --- LSTM ------------------------------------------------------------------------------------
# The LSTM adds x's and h's products before any gate, so each step makes one product of the
# step's input rows [x_t | h_{t−1}] (D + H) with W = [W_x; W_h] (D + H, 4H): the inputs of all
# steps live in one buffer xh, whose x part is filled at the start and whose h part each step
# writes for the next. The backward's product dA_t Wᵀ gives [dx_t | dh_{t−1}] in one call, and
# each thread ends with its share of dW = Σ_t [x_t | h_{t−1}]ᵀ dA_t as one product over all its
# steps. The buffers are block-major, (n_chunks, T, R, ·) with R rows per block (padding rows
# zero), so that a block's rows of all steps are one contiguous (T·R, ·) matrix.

@njit(**PARALLEL)
def _lstm_scan(x, W, b, mask, h0, c0, h_T, c_T, hs, xh, act, cs, tc):
    """x (B, T, D); W (D + H, 4H); b (4H,); mask (B, T); h0, c0 (B, H). Writes the final state
    h_T, c_T (B, H), hs (B, T, H) (0 at padded steps) and, per block of rows (block-major,
    (n_chunks, T, R, ·)): xh (…, D + H) = [x_t | state entering step t], act (…, 4H) =
    [i | f | g | o], cs (n_chunks, T + 1, R, H) = the cell state entering each step,
    tc (…, H) = tanh(c')."""
    B, T, D = x.shape
    n_chunks = xh.shape[0]
    for chunk in prange(n_chunks):
        b0, b1 = _rows(chunk, n_chunks, B)
        nr = b1 - b0
        X, A, C, TC = xh[chunk], act[chunk], cs[chunk], tc[chunk]
        for t in range(T):
            X[t, nr:] = 0
            for i in range(nr):
                X[t][i][:D] = x[b0 + i, t]
        for i in range(nr):
            X[0][i][D:] = h0[b0 + i]
            C[0, i] = c0[b0 + i]
            h_T[b0 + i] = h0[b0 + i]                          # T = 0: the state is h0
        for t in range(T):
            a = A[t][:nr]
            np.dot(X[t][:nr], W, a)                              # a = [x_t | h] W  (nr, 4H)
            for i in range(nr):
                r = b0 + i
                h_new = X[t + 1][i][D:] if t + 1 < T else h_T[r]
                if mask[r, t]:
                    _lstm_cell(a[i], b, C[t, i], C[t + 1, i], TC[t, i], h_new, hs[r, t])
                else:
                    h_new[:] = X[t][i][D:]
                    C[t + 1, i] = C[t, i]
                    hs[r, t] = 0
        for i in range(nr):
            c_T[b0 + i] = C[T, i]


@njit(**PARALLEL)
def _lstm_scan_backward(dhs, WT, mask, xh, act, cs, tc, dh, dc, da, dx, dW, db):
    """dhs (B, T, H) = ∂L/∂hs; WT (4H, D + H) = [W_x; W_h]ᵀ; dh, dc (B, H): ∂L/∂ of the final
    state, left holding ∂L/∂ of the initial state; xh, act, cs, tc as :func:`_lstm_scan` left
    them. Writes da (n_chunks, T, R, 4H) = ∂L/∂a_t (0 at padded steps and rows), dx (B, T, D)
    and each block's share of the weight gradients: dW (n_chunks, D + H, 4H), db (n_chunks, 4H)."""
    B, T, D = dx.shape
    n_chunks, R, H = xh.shape[0], xh.shape[2], dh.shape[1]
    for chunk in prange(n_chunks):
        b0, b1 = _rows(chunk, n_chunks, B)
        nr = b1 - b0
        X, A, C, TC, dA = xh[chunk], act[chunk], cs[chunk], tc[chunk], da[chunk]
        dxh = np.empty((nr, D + H), dh.dtype)
        for t in range(T - 1, -1, -1):
            dA[t, nr:] = 0
            for i in range(nr):
                r = b0 + i
                if mask[r, t]:
                    _lstm_cell_backward(dh[r], dhs[r, t], dc[r], A[t, i], C[t, i], TC[t, i],
                                        dA[t, i])
                else:
                    dA[t, i] = 0
            np.dot(dA[t][:nr], WT, dxh)                               # a = [x_t | h] W + b
            for i in range(nr):
                r = b0 + i
                row = dxh[i]
                dx[r, t] = row[:D]
                if mask[r, t]:
                    dh[r] = row[D:]
        dA2 = dA.reshape(T * R, 4 * H)
        np.dot(X.reshape(T * R, D + H).T, dA2, dW[chunk])         # Σ_t [x_t | h]ᵀ dA_t
        g = db[chunk]
        g[:] = 0
        for k in range(T * R):
            row = dA2[k]
            for j in range(4 * H):
                g[j] += row[j]


# --- GRU -------------------------------------------------------------------------------------

@njit(inline="always", **ELEMENTWISE)
def _gru_cell(a, xw, b_x, b_h, h, hn, out):
    """One row of one step, in place: a = h W_h (3H,) ← [r, z, n] with
    r = σ(xw_r + b_xr + a_r + b_hr), z = σ(…z…), n = tanh(xw_n + b_xn + r hn), hn = a_n + b_hn;
    h ← out = (1 − z) n + z h."""
    H = h.shape[0]
    one = h.dtype.type(1)
    for j in range(H):
        r = fast_sigmoid(xw[j] + b_x[j] + a[j] + b_h[j])
        z = fast_sigmoid(xw[H + j] + b_x[H + j] + a[H + j] + b_h[H + j])
        hnj = a[2 * H + j] + b_h[2 * H + j]
        n = fast_tanh(xw[2 * H + j] + b_x[2 * H + j] + r * hnj)
        a[j], a[H + j], a[2 * H + j], hn[j] = r, z, n, hnj
        h[j] = out[j] = (one - z) * n + z * h[j]


@njit(**PARALLEL)
def _gru_scan(x, W_x, b_x, b_h, W_h, mask, h0, h_T, hs, xs, h_in, act, hn):
    """x (B, T, D); W_x (D, 3H); b_x, b_h (3H,); W_h (H, 3H); mask (B, T); h0 (B, H). Writes
    h_T (B, H), hs (B, T, H) (0 at padded steps) and, block-major (n_chunks, T, R, ·): xs
    (…, D) = x_t, h_in (…, H) = the state entering step t, act (…, 3H) = [r | z | n] and
    hn (…, H) = h W_hn + b_hn. Two products per step: x_t W_x and h W_h (the reset gate
    multiplies h's n part alone)."""
    B, T, D = x.shape
    n_chunks, R, H = xs.shape[0], xs.shape[2], h0.shape[1]
    for chunk in prange(n_chunks):
        b0, b1 = _rows(chunk, n_chunks, B)
        nr = b1 - b0
        X, Hin, A, HN = xs[chunk], h_in[chunk], act[chunk], hn[chunk]
        xw = np.empty((nr, 3 * H), x.dtype)
        h = np.empty((nr, H), x.dtype)
        for i in range(nr):
            h[i] = h0[b0 + i]
        for t in range(T):
            X[t, nr:] = 0
            Hin[t, nr:] = 0
            for i in range(nr):
                X[t, i] = x[b0 + i, t]
                Hin[t, i] = h[i]
            np.dot(X[t][:nr], W_x, xw)                              # x_t W_x  (nr, 3H)
            a = A[t][:nr]
            np.dot(Hin[t][:nr], W_h, a)                             # h W_h  (nr, 3H)
            for i in range(nr):
                r = b0 + i
                if mask[r, t]:
                    _gru_cell(a[i], xw[i], b_x, b_h, h[i], HN[t, i], hs[r, t])
                else:
                    hs[r, t] = 0
        for i in range(nr):
            h_T[b0 + i] = h[i]


@njit(inline="always", **ELEMENTWISE)
def _gru_cell_backward(dh, dy, act, hn, h_prev, dxw, dhw):
    """Undo :func:`_gru_cell` for one row: dh ∂L/∂h' from the later steps ← the direct path
    ∂L/∂h (z ⊙ ·), dy ∂L/∂out; dxw, dhw (3H,) = ∂L/∂ of x's and h's affine parts."""
    H = dh.shape[0]
    one = dh.dtype.type(1)
    for j in range(H):
        r, z, n = act[j], act[H + j], act[2 * H + j]
        d = dh[j] + dy[j]
        dn = d * (one - z) * (one - n * n)                         # h' = (1 − z) n + z h
        dz = d * (h_prev[j] - n) * z * (one - z)
        dr = dn * hn[j] * r * (one - r)                              # n = tanh(… + r hn)
        dxw[j], dxw[H + j], dxw[2 * H + j] = dr, dz, dn
        dhw[j], dhw[H + j], dhw[2 * H + j] = dr, dz, dn * r
        dh[j] = d * z


@njit(**PARALLEL)
def _gru_scan_backward(dhs, W_xT, W_hT, mask, xs, h_in, act, hn, dh, dxw, dhw, dx, dW_x, dW_h,
                       db_x, db_h):
    """dhs (B, T, H) = ∂L/∂hs; W_xT (3H, D), W_hT (3H, H); dh (B, H): ∂L/∂ of the final state,
    left holding ∂L/∂h0; xs, h_in, act, hn as :func:`_gru_scan` left them. Writes dxw, dhw
    (n_chunks, T, R, 3H) (0 at padded steps and rows), dx (B, T, D) and each block's share of
    the weight gradients dW_x (n_chunks, D, 3H), dW_h (n_chunks, H, 3H), db_x, db_h
    (n_chunks, 3H)."""
    B, T, D = dx.shape
    n_chunks, R, H = xs.shape[0], xs.shape[2], dh.shape[1]
    for chunk in prange(n_chunks):
        b0, b1 = _rows(chunk, n_chunks, B)
        nr = b1 - b0
        X, Hin, A, HN, dXW, dHW = (xs[chunk], h_in[chunk], act[chunk], hn[chunk], dxw[chunk],
                                   dhw[chunk])
        dh_prev = np.empty((nr, H), dh.dtype)
        dx_t = np.empty((nr, D), dh.dtype)
        for t in range(T - 1, -1, -1):
            dXW[t, nr:] = 0
            dHW[t, nr:] = 0
            for i in range(nr):
                r = b0 + i
                if mask[r, t]:
                    _gru_cell_backward(dh[r], dhs[r, t], A[t, i], HN[t, i], Hin[t, i],
                                       dXW[t, i], dHW[t, i])
                else:
                    dXW[t, i] = 0
                    dHW[t, i] = 0
            np.dot(dHW[t][:nr], W_hT, dh_prev)                        # hw = h W_h
            np.dot(dXW[t][:nr], W_xT, dx_t)                           # xw = x W_x
            for i in range(nr):
                r = b0 + i
                dx[r, t] = dx_t[i]
                if mask[r, t]:
                    dh[r] += dh_prev[i]
        dXW2, dHW2 = dXW.reshape(T * R, 3 * H), dHW.reshape(T * R, 3 * H)
        np.dot(X.reshape(T * R, D).T, dXW2, dW_x[chunk])            # Σ_t x_tᵀ dxw_t
        np.dot(Hin.reshape(T * R, H).T, dHW2, dW_h[chunk])          # Σ_t h_{t−1}ᵀ dhw_t
        gx, gh = db_x[chunk], db_h[chunk]
        gx[:] = 0
        gh[:] = 0
        for k in range(T * R):
            rx, rh = dXW2[k], dHW2[k]
            for j in range(3 * H):
                gx[j] += rx[j]
                gh[j] += rh[j]


# --- entry points (inputs checked by the caller: attention_np.nn.backend) -------------------

def _owned(s, shape, dt):
    """A fresh C-contiguous copy of ``s`` in dt (the kernels overwrite it), zeros if None."""
    return np.zeros(shape, dt) if s is None else np.array(s, dtype=dt, order="C", copy=True)


def _mask(mask, B, T):
    return np.ones((B, T), np.bool_) if mask is None else np.ascontiguousarray(mask, np.bool_)


def lstm_forward(x, h0, c0, W_x, W_h, b, mask):
    """x (B, T, D), h0, c0 (B, H) or None (zeros), W_x (D, 4H), W_h (H, 4H), b (4H,), mask
    (B, T) bool or None → (hs (B, T, H), h_T, c_T, state for :func:`lstm_backward`)."""
    out_dtype, dt = _dtypes(x, h0, c0, W_x, W_h, b)
    B, T, D = x.shape
    H = W_h.shape[0]
    W = np.concatenate([W_x, W_h]).astype(dt, copy=False)              # (D + H, 4H)
    n = _n_chunks(B)
    R = -(-B // n)                                                     # rows of the largest block
    xh, act = np.empty((n, T, R, D + H), dt), np.empty((n, T, R, 4 * H), dt)
    cs, tc = np.empty((n, T + 1, R, H), dt), np.empty((n, T, R, H), dt)
    h_T, c_T, hs = np.empty((B, H), dt), np.empty((B, H), dt), np.empty((B, T, H), dt)
    mask = _mask(mask, B, T)
    with single_threaded_blas():
        _lstm_scan(np.ascontiguousarray(x, dt), W, np.ascontiguousarray(b, dt), mask,
                   _owned(h0, (B, H), dt), _owned(c0, (B, H), dt), h_T, c_T, hs, xh, act, cs,
                   tc)
    state = {"xh": xh, "WT": np.ascontiguousarray(W.T), "mask": mask, "cs": cs,
             "act": act, "tc": tc, "B": B, "out_dtype": out_dtype}
    return _out(hs, out_dtype), _out(h_T, out_dtype), _out(c_T, out_dtype), state


def lstm_backward(dhs, dh_T, dc_T, state):
    """dhs (B, T, H), dh_T, dc_T (B, H) or None → (dx (B, T, D), dh0, dc0, grads) with
    grads keyed W_x, W_h, b, for the state of :func:`lstm_forward`."""
    s, dt = state, state["tc"].dtype
    n, T, R, H = s["tc"].shape
    B, D = s["B"], s["xh"].shape[3] - H
    dh, dc = _owned(dh_T, (B, H), dt), _owned(dc_T, (B, H), dt)
    da, dx = np.empty((n, T, R, 4 * H), dt), np.empty((B, T, D), dt)
    dW, db = np.empty((n, D + H, 4 * H), dt), np.empty((n, 4 * H), dt)
    with single_threaded_blas():
        _lstm_scan_backward(np.ascontiguousarray(dhs, dt), s["WT"], s["mask"], s["xh"],
                            s["act"], s["cs"], s["tc"], dh, dc, da, dx, dW, db)
    dW = dW.sum(axis=0)
    od = s["out_dtype"]
    grads = {"W_x": _out(dW[:D], od), "W_h": _out(dW[D:], od), "b": _out(db.sum(axis=0), od)}
    return _out(dx, od), _out(dh, od), _out(dc, od), grads


def gru_forward(x, h0, W_x, W_h, b_x, b_h, mask):
    """x (B, T, D), h0 (B, H) or None (zeros), W_x (D, 3H), W_h (H, 3H), b_x, b_h (3H,), mask
    (B, T) bool or None → (hs (B, T, H), h_T, state for :func:`gru_backward`)."""
    out_dtype, dt = _dtypes(x, h0, W_x, W_h, b_x, b_h)
    B, T, D = x.shape
    H = W_h.shape[0]
    n = _n_chunks(B)
    R = -(-B // n)                                                     # rows of the largest block
    xs, h_in = np.empty((n, T, R, D), dt), np.empty((n, T, R, H), dt)
    act, hn = np.empty((n, T, R, 3 * H), dt), np.empty((n, T, R, H), dt)
    h_T, hs = np.empty((B, H), dt), np.empty((B, T, H), dt)
    W_x, W_h = np.ascontiguousarray(W_x, dt), np.ascontiguousarray(W_h, dt)
    mask = _mask(mask, B, T)
    with single_threaded_blas():
        _gru_scan(np.ascontiguousarray(x, dt), W_x, np.ascontiguousarray(b_x, dt),
                  np.ascontiguousarray(b_h, dt), W_h, mask, _owned(h0, (B, H), dt), h_T, hs, xs,
                  h_in, act, hn)
    state = {"xs": xs, "h_in": h_in, "act": act, "hn": hn, "mask": mask, "B": B,
             "W_xT": np.ascontiguousarray(W_x.T), "W_hT": np.ascontiguousarray(W_h.T),
             "out_dtype": out_dtype}
    return _out(hs, out_dtype), _out(h_T, out_dtype), state


def gru_backward(dhs, dh_T, state):
    """dhs (B, T, H), dh_T (B, H) or None → (dx (B, T, D), dh0, grads) with grads keyed W_x,
    W_h, b_x, b_h, for the state of :func:`gru_forward`."""
    s, dt = state, state["h_in"].dtype
    n, T, R, H = s["h_in"].shape
    B, D = s["B"], s["xs"].shape[3]
    dh = _owned(dh_T, (B, H), dt)
    dxw, dhw = np.empty((n, T, R, 3 * H), dt), np.empty((n, T, R, 3 * H), dt)
    dx = np.empty((B, T, D), dt)
    dW_x, dW_h = np.empty((n, D, 3 * H), dt), np.empty((n, H, 3 * H), dt)
    db_x, db_h = np.empty((n, 3 * H), dt), np.empty((n, 3 * H), dt)
    with single_threaded_blas():
        _gru_scan_backward(np.ascontiguousarray(dhs, dt), s["W_xT"], s["W_hT"], s["mask"],
                           s["xs"], s["h_in"], s["act"], s["hn"], dh, dxw, dhw, dx, dW_x, dW_h,
                           db_x, db_h)
    od = s["out_dtype"]
    grads = {"W_x": _out(dW_x.sum(axis=0), od), "W_h": _out(dW_h.sum(axis=0), od),
             "b_x": _out(db_x.sum(axis=0), od), "b_h": _out(db_h.sum(axis=0), od)}
    return _out(dx, od), _out(dh, od), grads
