"""Fused LSTM and GRU scans over padded sequences, forward and backward through time: the fast
version of :mod:`attention_np.nn.recurrent` (the NumPy reference, whose parameter layout and
mask convention these kernels share), which the library runs for ``backend="numba"``.

    xw = x W_x                                one BLAS product for all steps     (T·B, G·H)
    t = 1 … T:   a_t = xw_t + b + h_{t−1} W_h   one np.dot per step, then the gates and the
                                              new state in one fused loop
    t = T … 1:   dA_t = the gate gradients    fused loop, then dh_{t−1} = dA_t W_hᵀ (np.dot)
    dW_x = Xᵀ dA,  dW_h = H_prevᵀ dA,  dx = dA W_xᵀ,  db = Σ dA       big BLAS products at the end

G = 4 for the LSTM's gates [i | f | g | o]; G = 3 for the GRU's [r | z | n], whose hidden
product keeps its own bias b_h (the reset gate multiplies h W_hn + b_hn), so the gradient of
h's product differs from x's in the n block (dhw_n = r ⊙ dxw_n).

Parallel over the batch: rows never interact, so each thread scans its own block of rows
through all T steps — a single-threaded np.dot (rows × H) @ (H × G·H) per step and the fused
gates — and the threads never wait for each other (torch's CPU LSTM splits every step's
product across its threads: a barrier per step). The activations kept for the backward are
time-major (T, B, ·), so that a block's rows of one step are contiguous for np.dot.

Masks (B, T), True = real token: at a padded step a row keeps its state and outputs 0; in the
backward its gate gradients are 0 and its state gradient passes through unchanged. The final
state is the state after each row's last real token.

The entry points take arrays the caller has checked (:mod:`attention_np.nn.backend`, whose
caller validates shapes and the mask) and return a state for the matching backward.
"""
from __future__ import annotations

import contextlib

import numba
import numpy as np
from numba import njit, prange

from attention_np.kernels._config import ELEMENTWISE, PARALLEL, single_threaded_blas
from attention_np.kernels._special import fast_sigmoid, fast_tanh
from attention_np.kernels._validate import KERNEL_DTYPES, compute_dtype


@njit(**ELEMENTWISE)
def _rows(chunk, n_chunks, B):
    """[first, end) of the batch rows of task ``chunk``."""
    return chunk * B // n_chunks, (chunk + 1) * B // n_chunks


# --- LSTM ------------------------------------------------------------------------------------

@njit(**ELEMENTWISE)
def _lstm_cell(a, xw, b, c, h, tc, out):
    """One row of one step, in place: a = h W_h (4H,) ← [i, f, g, o] = [σ, σ, tanh, σ](a + xw + b);
    c ← c' = f c + i g;  tc = tanh(c');  h ← out = o tc."""
    H = c.shape[0]
    for j in range(H):
        i = fast_sigmoid(a[j] + xw[j] + b[j])
        f = fast_sigmoid(a[H + j] + xw[H + j] + b[H + j])
        g = fast_tanh(a[2 * H + j] + xw[2 * H + j] + b[2 * H + j])
        o = fast_sigmoid(a[3 * H + j] + xw[3 * H + j] + b[3 * H + j])
        a[j], a[H + j], a[2 * H + j], a[3 * H + j] = i, f, g, o
        cj = f * c[j] + i * g
        t = fast_tanh(cj)
        c[j], tc[j] = cj, t
        h[j] = out[j] = o * t


@njit(**PARALLEL)
def _lstm_scan(xw, b, W_h, mask, n_chunks, h, c, hs, h_in, c_in, act, tc):
    """xw (T, B, 4H) = x W_x; b (4H,); W_h (H, 4H); mask (B, T); h, c (B, H): the initial
    state, left holding the final one. Writes hs (B, T, H) (0 at padded steps), h_in, c_in
    (T, B, H) (the state entering each step), act (T, B, 4H) ([i | f | g | o]) and
    tc (T, B, H) = tanh(c')."""
    T, B = xw.shape[0], xw.shape[1]
    for chunk in prange(n_chunks):
        b0, b1 = _rows(chunk, n_chunks, B)
        for t in range(T):
            for r in range(b0, b1):
                h_in[t, r] = h[r]
                c_in[t, r] = c[r]
            a = act[t][b0:b1]
            np.dot(h_in[t][b0:b1], W_h, a)                          # a = h W_h  (rows, 4H)
            for r in range(b0, b1):
                if mask[r, t]:
                    _lstm_cell(a[r - b0], xw[t, r], b, c[r], h[r], tc[t, r], hs[r, t])
                else:
                    hs[r, t] = 0


@njit(**ELEMENTWISE)
def _lstm_cell_backward(dh, dy, dc, act, c_prev, tc, da):
    """Undo :func:`_lstm_cell` for one row: dh ∂L/∂h' from the later steps, dy ∂L/∂out;
    dc ← ∂L/∂c (the direct path c' = f c + …); da (4H,) = ∂L/∂a."""
    H = dh.shape[0]
    one = dh.dtype.type(1)
    for j in range(H):
        i, f, g, o = act[j], act[H + j], act[2 * H + j], act[3 * H + j]
        t = tc[j]
        dhj = dh[j] + dy[j]
        dcj = dc[j] + dhj * o * (one - t * t)                      # h' = o tanh(c')
        da[j] = dcj * g * i * (one - i)                              # c' = f c + i g
        da[H + j] = dcj * c_prev[j] * f * (one - f)
        da[2 * H + j] = dcj * i * (one - g * g)
        da[3 * H + j] = dhj * t * o * (one - o)
        dc[j] = dcj * f


@njit(**PARALLEL)
def _lstm_scan_backward(dhs, W_hT, mask, n_chunks, act, c_in, tc, dh, dc, da):
    """dhs (B, T, H) = ∂L/∂hs; W_hT (4H, H); dh, dc (B, H): ∂L/∂ of the final state, left
    holding ∂L/∂ of the initial state. Writes da (T, B, 4H) = ∂L/∂a_t (0 at padded steps)."""
    T, B, H = c_in.shape
    for chunk in prange(n_chunks):
        b0, b1 = _rows(chunk, n_chunks, B)
        dh_prev = np.empty((b1 - b0, H), dh.dtype)
        for t in range(T - 1, -1, -1):
            for r in range(b0, b1):
                if mask[r, t]:
                    _lstm_cell_backward(dh[r], dhs[r, t], dc[r], act[t, r], c_in[t, r],
                                        tc[t, r], da[t, r])
                else:
                    da[t, r] = 0
            np.dot(da[t][b0:b1], W_hT, dh_prev)                       # a = h W_h + …
            for r in range(b0, b1):
                if mask[r, t]:
                    dh[r] = dh_prev[r - b0]


# --- GRU -------------------------------------------------------------------------------------

@njit(**ELEMENTWISE)
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
def _gru_scan(xw, b_x, b_h, W_h, mask, n_chunks, h, hs, h_in, act, hn):
    """xw (T, B, 3H) = x W_x; b_x, b_h (3H,); W_h (H, 3H); mask (B, T); h (B, H): the initial
    state, left holding the final one. Writes hs (B, T, H) (0 at padded steps), h_in (T, B, H)
    (the state entering each step), act (T, B, 3H) ([r | z | n]) and hn (T, B, H)."""
    T, B = xw.shape[0], xw.shape[1]
    for chunk in prange(n_chunks):
        b0, b1 = _rows(chunk, n_chunks, B)
        for t in range(T):
            for r in range(b0, b1):
                h_in[t, r] = h[r]
            a = act[t][b0:b1]
            np.dot(h_in[t][b0:b1], W_h, a)                          # a = h W_h  (rows, 3H)
            for r in range(b0, b1):
                if mask[r, t]:
                    _gru_cell(a[r - b0], xw[t, r], b_x, b_h, h[r], hn[t, r], hs[r, t])
                else:
                    hs[r, t] = 0


@njit(**ELEMENTWISE)
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
def _gru_scan_backward(dhs, W_hT, mask, n_chunks, act, hn, h_in, dh, dxw, dhw):
    """dhs (B, T, H) = ∂L/∂hs; W_hT (3H, H); dh (B, H): ∂L/∂ of the final state, left holding
    ∂L/∂h0. Writes dxw, dhw (T, B, 3H) (0 at padded steps)."""
    T, B, H = h_in.shape
    for chunk in prange(n_chunks):
        b0, b1 = _rows(chunk, n_chunks, B)
        dh_prev = np.empty((b1 - b0, H), dh.dtype)
        for t in range(T - 1, -1, -1):
            for r in range(b0, b1):
                if mask[r, t]:
                    _gru_cell_backward(dh[r], dhs[r, t], act[t, r], hn[t, r], h_in[t, r],
                                       dxw[t, r], dhw[t, r])
                else:
                    dxw[t, r] = 0
                    dhw[t, r] = 0
            np.dot(dhw[t][b0:b1], W_hT, dh_prev)                      # hw = h W_h
            for r in range(b0, b1):
                if mask[r, t]:
                    dh[r] += dh_prev[r - b0]


# --- entry points (inputs checked by the caller: attention_np.nn.backend) -------------------

def _dtypes(*arrays):
    """(the result's dtype, the compute dtype: float16 → float32)."""
    out_dtype = np.result_type(*(a for a in arrays if a is not None))
    dt = compute_dtype(out_dtype)
    if dt not in KERNEL_DTYPES:
        raise ValueError(f"x and the parameters must be float16, float32 or float64 for the "
                         f"Numba kernels (they compute in float32 or float64), got {out_dtype}")
    return out_dtype, dt


def _owned(s, shape, dt):
    """A fresh C-contiguous copy of ``s`` in dt (the kernels overwrite it), zeros if None."""
    return np.zeros(shape, dt) if s is None else np.array(s, dtype=dt, order="C", copy=True)


def _n_chunks(B: int) -> int:
    """One block of batch rows per thread (at least one row each)."""
    return max(1, min(numba.get_num_threads(), B))


def _blas_limit(n_chunks: int):
    """The per-step np.dot of each task runs on its own thread: one BLAS thread each (else
    every task starts an OpenBLAS team and the cores are oversubscribed)."""
    return single_threaded_blas() if n_chunks > 1 else contextlib.nullcontext()


def _projection(x, W_x, dt):
    """(x time-major (T, B, D), xw = x W_x (T, B, G·H)), C-contiguous in dt."""
    B, T, D = x.shape
    xt = np.ascontiguousarray(np.swapaxes(x, 0, 1), dt)                  # (T, B, D)
    W_x = np.ascontiguousarray(W_x, dt)
    return xt, W_x, np.dot(xt.reshape(T * B, D), W_x).reshape(T, B, W_x.shape[1])


def _mask(mask, B, T):
    return np.ones((B, T), np.bool_) if mask is None else np.ascontiguousarray(mask, np.bool_)


def _input_grads(state, dxw, dhw):
    """dx (B, T, D), dW_x, dW_h from the gate gradients dxw, dhw (T, B, G·H)."""
    xt, h_in, W_x = state["xt"], state["h_in"], state["W_x"]
    (T, B, D), H, G = xt.shape, h_in.shape[2], dxw.shape[2]
    dxw2, dhw2 = dxw.reshape(T * B, G), dhw.reshape(T * B, G)
    dW_x = np.dot(xt.reshape(T * B, D).T, dxw2)                         # xw = x W_x
    dW_h = np.dot(h_in.reshape(T * B, H).T, dhw2)                       # hw = h W_h
    dx = np.dot(dxw2, W_x.T).reshape(T, B, D)
    return np.swapaxes(dx, 0, 1), dW_x, dW_h


def _out(a, dtype):
    return np.ascontiguousarray(a, dtype)


def lstm_forward(x, h0, c0, W_x, W_h, b, mask):
    """x (B, T, D), h0, c0 (B, H) or None (zeros), W_x (D, 4H), W_h (H, 4H), b (4H,), mask
    (B, T) bool or None → (hs (B, T, H), h_T, c_T, state for :func:`lstm_backward`)."""
    out_dtype, dt = _dtypes(x, h0, c0, W_x, W_h, b)
    B, T, _ = x.shape
    H = W_h.shape[0]
    xt, W_x, xw = _projection(x, W_x, dt)
    W_h = np.ascontiguousarray(W_h, dt)
    h, c = _owned(h0, (B, H), dt), _owned(c0, (B, H), dt)
    mask = _mask(mask, B, T)
    hs = np.empty((B, T, H), dt)
    h_in, c_in, tc = (np.empty((T, B, H), dt) for _ in range(3))
    act = np.empty((T, B, 4 * H), dt)
    n = _n_chunks(B)
    with _blas_limit(n):
        _lstm_scan(xw, np.ascontiguousarray(b, dt), W_h, mask, n, h, c, hs, h_in, c_in, act,
                   tc)
    state = {"xt": xt, "W_x": W_x, "W_hT": np.ascontiguousarray(W_h.T), "mask": mask,
             "h_in": h_in, "c_in": c_in, "act": act, "tc": tc, "out_dtype": out_dtype}
    return _out(hs, out_dtype), _out(h, out_dtype), _out(c, out_dtype), state


def lstm_backward(dhs, dh_T, dc_T, state):
    """dhs (B, T, H), dh_T, dc_T (B, H) or None → (dx (B, T, D), dh0, dc0, grads) with
    grads keyed W_x, W_h, b, for the state of :func:`lstm_forward`."""
    s, dt = state, state["h_in"].dtype
    T, B, H = s["h_in"].shape
    dh, dc = _owned(dh_T, (B, H), dt), _owned(dc_T, (B, H), dt)
    da = np.empty((T, B, 4 * H), dt)
    n = _n_chunks(B)
    with _blas_limit(n):
        _lstm_scan_backward(np.ascontiguousarray(dhs, dt), s["W_hT"], s["mask"], n, s["act"],
                            s["c_in"], s["tc"], dh, dc, da)
    dx, dW_x, dW_h = _input_grads(s, da, da)
    od = s["out_dtype"]
    grads = {"W_x": _out(dW_x, od), "W_h": _out(dW_h, od),
             "b": _out(da.reshape(T * B, 4 * H).sum(axis=0), od)}
    return _out(dx, od), _out(dh, od), _out(dc, od), grads


def gru_forward(x, h0, W_x, W_h, b_x, b_h, mask):
    """x (B, T, D), h0 (B, H) or None (zeros), W_x (D, 3H), W_h (H, 3H), b_x, b_h (3H,), mask
    (B, T) bool or None → (hs (B, T, H), h_T, state for :func:`gru_backward`)."""
    out_dtype, dt = _dtypes(x, h0, W_x, W_h, b_x, b_h)
    B, T, _ = x.shape
    H = W_h.shape[0]
    xt, W_x, xw = _projection(x, W_x, dt)
    W_h = np.ascontiguousarray(W_h, dt)
    h = _owned(h0, (B, H), dt)
    mask = _mask(mask, B, T)
    hs = np.empty((B, T, H), dt)
    h_in, hn = np.empty((T, B, H), dt), np.empty((T, B, H), dt)
    act = np.empty((T, B, 3 * H), dt)
    n = _n_chunks(B)
    with _blas_limit(n):
        _gru_scan(xw, np.ascontiguousarray(b_x, dt), np.ascontiguousarray(b_h, dt), W_h, mask,
                  n, h, hs, h_in, act, hn)
    state = {"xt": xt, "W_x": W_x, "W_hT": np.ascontiguousarray(W_h.T), "mask": mask,
             "h_in": h_in, "act": act, "hn": hn, "out_dtype": out_dtype}
    return _out(hs, out_dtype), _out(h, out_dtype), state


def gru_backward(dhs, dh_T, state):
    """dhs (B, T, H), dh_T (B, H) or None → (dx (B, T, D), dh0, grads) with grads keyed W_x,
    W_h, b_x, b_h, for the state of :func:`gru_forward`."""
    s, dt = state, state["h_in"].dtype
    T, B, H = s["h_in"].shape
    dh = _owned(dh_T, (B, H), dt)
    dxw, dhw = np.empty((T, B, 3 * H), dt), np.empty((T, B, 3 * H), dt)
    n = _n_chunks(B)
    with _blas_limit(n):
        _gru_scan_backward(np.ascontiguousarray(dhs, dt), s["W_hT"], s["mask"], n, s["act"],
                           s["hn"], s["h_in"], dh, dxw, dhw)
    dx, dW_x, dW_h = _input_grads(s, dxw, dhw)
    od = s["out_dtype"]
    grads = {"W_x": _out(dW_x, od), "W_h": _out(dW_h, od),
             "b_x": _out(dxw.reshape(T * B, 3 * H).sum(axis=0), od),
             "b_h": _out(dhw.reshape(T * B, 3 * H).sum(axis=0), od)}
    return _out(dx, od), _out(dh, od), grads
