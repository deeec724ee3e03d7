"""The teacher-forced Bahdanau decoder in two kernel calls: all T steps of additive attention
and the LSTM cell forward, then backward through time — the fast version of
``attention_np.apps.seq2seq.rnn_decoder._bahdanau_forward`` / ``_bahdanau_backward`` (the
NumPy reference, whose equations and parameter layout these kernels share), which the
translator runs for ``backend="numba"``.

    t = 1 … T:   u_j = vᵀ tanh(s_{t−1} W_q + kp_j)        kp = h W_k, projected once outside
                 α = softmax_j(u) (masked keys: α = 0),   c_t = Σ_j α_j h_j
                 [i | f | g | o] = [e_t | c_t | s_{t−1}] [W_x; W_h] + b      one np.dot per step
                 cell_t = f ⊙ cell_{t−1} + i ⊙ g,   s_t = o ⊙ tanh(cell_t)

The backward walks the steps in reverse: the cell's gate gradients dA_t, then one np.dot
dA_t [W_x; W_h]ᵀ = [de_t | dc_t | ds_{t−1}], then the attention's (dα = dc_t · h_j,
du = α ⊙ (dα − Σ α dα), dkp_j = du_j v ⊙ (1 − tanh²), dq = Σ_j dkp_j, ds_{t−1} += dq W_qᵀ).
The weight gradients are summed over the steps afterwards in one product each
(dW = [e | c | s]ᵀ dA, dW_q = Sᵀ dQ, dv = Σ du ⊙ tanh).

Parallel over the batch as the LSTM scans of :mod:`attention_np.kernels.recurrent`: each
thread runs its block of rows through all T steps (rows never interact), its per-step np.dot
single-threaded. Activations are kept time-major (T, B, ·) so that a block's rows of one step
are contiguous for np.dot.

The entry points take arrays the caller has checked (shapes as in the reference) and return a
state for the matching backward.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from attention_np.kernels._config import ELEMENTWISE, PARALLEL, single_threaded_blas
from attention_np.kernels._special import fast_tanh
from attention_np.kernels._lstm_cell import contiguous as _out
from attention_np.kernels._lstm_cell import dtypes as _dtypes
from attention_np.kernels._lstm_cell import lstm_cell as _lstm_cell
from attention_np.kernels._lstm_cell import lstm_cell_backward as _lstm_cell_backward
from attention_np.kernels._lstm_cell import n_chunks as _n_chunks
from attention_np.kernels._lstm_cell import rows as _rows


@njit(inline="always", **ELEMENTWISE)
def _attend(h, W_q, v, kp, keys, mask, q, a, w, ctx):
    """One row of one step: q = h W_q (A,); a_j = tanh(q + kp_j) (Tk, A) (0 at masked keys);
    w = softmax over the unmasked keys of u_j = a_j · v (all masked: w = 0);
    ctx = Σ_j w_j keys_j."""
    Hd, A = W_q.shape
    Tk, Hk = keys.shape
    zero = h.dtype.type(0)
    q[:] = 0
    for k in range(Hd):
        hk = h[k]
        row = W_q[k]
        for m in range(A):
            q[m] += hk * row[m]
    top = -np.inf
    for j in range(Tk):
        aj = a[j]
        if mask[j]:
            kj = kp[j]
            u = zero
            for m in range(A):
                x = fast_tanh(q[m] + kj[m])
                aj[m] = x
                u += x * v[m]
            w[j] = u
            top = max(top, u)
        else:
            aj[:] = 0
            w[j] = 0
    total = zero
    for j in range(Tk):
        if mask[j]:
            ej = math.exp(w[j] - top)
            w[j] = ej
            total += ej
    inv = zero if total == 0 else 1 / total
    ctx[:] = 0
    for j in range(Tk):
        wj = w[j] * inv
        w[j] = wj
        if mask[j]:
            kj = keys[j]
            for m in range(Hk):
                ctx[m] += wj * kj[m]


@njit(**PARALLEL)
def _decode(xh, W, b, W_q, v, kp, keys, mask, n_chunks, cs, hs, act, tc, a, w, q):
    """xh (T + 1, B, E + Hk + Hd): e_t in xh[t, :, :E], s_0 in xh[0, :, E + Hk:]; W (E + Hk + Hd,
    4Hd); cs (T + 1, B, Hd) with cell_0 in cs[0]. Writes c_t into xh[t, :, E:E + Hk], s_t into
    xh[t + 1, :, E + Hk:] (the last into xh[T]), cs[t + 1], hs (B, T, Hd), act (T, B, 4Hd) =
    [i | f | g | o], tc (T, B, Hd) = tanh(cell_t), a (T, B, Tk, A), w (T, B, Tk) = α,
    q (T, B, A)."""
    T, B = act.shape[0], act.shape[1]
    Hk = keys.shape[2]
    Hd = cs.shape[2]
    E = xh.shape[2] - Hk - Hd
    for chunk in prange(n_chunks):
        b0, b1 = _rows(chunk, n_chunks, B)
        for t in range(T):
            for r in range(b0, b1):
                row = xh[t][r]
                _attend(row[E + Hk:], W_q, v, kp[r], keys[r], mask[r], q[t, r], a[t, r],
                        w[t, r], row[E:E + Hk])
            g = act[t][b0:b1]
            np.dot(xh[t][b0:b1], W, g)                     # [e_t | c_t | s_{t−1}] W  (rows, 4Hd)
            for r in range(b0, b1):
                _lstm_cell(g[r - b0], b, cs[t, r], cs[t + 1, r], tc[t, r],
                           xh[t + 1][r][E + Hk:], hs[r, t])


@njit(inline="always", **ELEMENTWISE)
def _attend_backward(dc, W_q, v, keys, a, w, du, dq, dkeys, dkp, ds):
    """Undo :func:`_attend` for one row: dc (Hk,) = ∂L/∂ctx → du (Tk,) = ∂L/∂u,
    dq (A,) = ∂L/∂q; adds to dkeys (Tk, Hk), dkp (Tk, A) and ds (Hd,) (+= dq W_qᵀ)."""
    Tk, Hk = keys.shape
    Hd, A = W_q.shape
    zero = dc.dtype.type(0)
    one = dc.dtype.type(1)
    dot = zero
    for j in range(Tk):                                     # dα_j = dc · h_j
        kj, dkj, wj = keys[j], dkeys[j], w[j]
        s = zero
        for m in range(Hk):
            s += dc[m] * kj[m]
            dkj[m] += wj * dc[m]                            # ctx = Σ_j α_j h_j
        du[j] = s
        dot += wj * s
    dq[:] = 0
    for j in range(Tk):
        duj = w[j] * (du[j] - dot)                          # softmax: du = α ⊙ (dα − Σ α dα)
        du[j] = duj
        if duj != 0:
            aj, dkpj = a[j], dkp[j]
            for m in range(A):                              # a = tanh(q + kp), u = a · v
                g = duj * v[m] * (one - aj[m] * aj[m])
                dkpj[m] += g
                dq[m] += g
    for k in range(Hd):                                     # q = s W_q
        row = W_q[k]
        s = zero
        for m in range(A):
            s += row[m] * dq[m]
        ds[k] += s


@njit(**PARALLEL)
def _decode_backward(dhs, dctx, WT, W_q, v, keys, n_chunks, act, cs, tc, a, w, dh, dc, da,
                     du, dq, de, dkeys, dkp):
    """dhs (B, T, Hd), dctx (B, T, Hk): ∂L/∂ of the outputs s_t and c_t; WT (4Hd, E + Hk + Hd);
    dh, dc (B, Hd) start at ∂L/∂ of the final state and end at ∂L/∂(s_0, cell_0). Writes
    da (T, B, 4Hd), du (T, B, Tk), dq (T, B, A), de (B, T, E); adds to dkeys (B, Tk, Hk) and
    dkp (B, Tk, A) (zeroed by the caller)."""
    T, B, Hd = tc.shape
    Hk = keys.shape[2]
    E = WT.shape[1] - Hk - Hd
    for chunk in prange(n_chunks):
        b0, b1 = _rows(chunk, n_chunks, B)
        dx = np.empty((b1 - b0, E + Hk + Hd), dh.dtype)
        for t in range(T - 1, -1, -1):
            for r in range(b0, b1):
                _lstm_cell_backward(dh[r], dhs[r, t], dc[r], act[t, r], cs[t, r], tc[t, r],
                                    da[t, r])
            np.dot(da[t][b0:b1], WT, dx)                   # [de_t | dc_t | ds_{t−1}]
            for r in range(b0, b1):
                row = dx[r - b0]
                de[r, t] = row[:E]
                dcr, dct = row[E:E + Hk], dctx[r, t]
                for m in range(Hk):
                    dcr[m] += dct[m]
                dh[r] = row[E + Hk:]
                _attend_backward(dcr, W_q, v, keys[r], a[t, r], w[t, r], du[t, r], dq[t, r],
                                 dkeys[r], dkp[r], dh[r])


# --- entry points (inputs checked by the caller) ----------------------------------------------

def decoder_forward(e, keys, kp, key_mask, h0, c0, W_q, v, W_x, W_h, b):
    """e (B, T, E), keys (B, Tk, Hk), kp = keys W_k (B, Tk, A), key_mask (B, Tk) bool, h0, c0
    (B, Hd), W_q (Hd, A), v (A,), W_x (E + Hk, 4Hd), W_h (Hd, 4Hd), b (4Hd,)
    → (s (B, T, Hd), c (B, T, Hk), α (B, T, Tk), state for :func:`decoder_backward`)."""
    out_dtype, dt = _dtypes(e, keys, kp, h0, c0, W_q, v, W_x, W_h, b)
    B, T, E = e.shape
    Tk, Hk = keys.shape[1], keys.shape[2]
    Hd, A = W_q.shape
    W = np.concatenate([W_x, W_h]).astype(dt, copy=False)               # (E + Hk + Hd, 4Hd)
    xh = np.empty((T + 1, B, E + Hk + Hd), dt)
    xh[:T, :, :E] = np.swapaxes(e, 0, 1)
    xh[0, :, E + Hk:] = h0
    cs = np.empty((T + 1, B, Hd), dt)
    cs[0] = c0
    keys_c, kp_c = np.ascontiguousarray(keys, dt), np.ascontiguousarray(kp, dt)
    W_q_c, v_c = np.ascontiguousarray(W_q, dt), np.ascontiguousarray(v, dt)
    mask = np.ascontiguousarray(key_mask, np.bool_)
    hs, tc = np.empty((B, T, Hd), dt), np.empty((T, B, Hd), dt)
    act = np.empty((T, B, 4 * Hd), dt)
    a, w, q = np.empty((T, B, Tk, A), dt), np.empty((T, B, Tk), dt), np.empty((T, B, A), dt)
    n = _n_chunks(B)
    with single_threaded_blas():
        _decode(xh, W, np.ascontiguousarray(b, dt), W_q_c, v_c, kp_c, keys_c, mask, n, cs, hs,
                act, tc, a, w, q)
    ctx = np.swapaxes(xh[:T, :, E:E + Hk], 0, 1)                       # (B, T, Hk)
    state = {"xh": xh, "WT": np.ascontiguousarray(W.T), "W_q": W_q_c, "v": v_c, "keys": keys_c,
             "cs": cs, "act": act, "tc": tc, "a": a, "w": w, "E": E, "out_dtype": out_dtype}
    return (_out(hs, out_dtype), _out(ctx, out_dtype), _out(np.swapaxes(w, 0, 1), out_dtype),
            state)


def decoder_backward(dhs, dctx, state):
    """dhs (B, T, Hd), dctx (B, T, Hk) → (de (B, T, E), dkeys (B, Tk, Hk) through the context
    only, dkp (B, Tk, A), (dh0, dc0), grads keyed W_q, v, W_x, W_h, b); the caller
    back-propagates dkp through kp = keys W_k."""
    s, dt = state, state["tc"].dtype
    T, B, Hd = s["tc"].shape
    Tk, Hk, A = s["keys"].shape[1], s["keys"].shape[2], s["v"].shape[0]
    E = s["E"]
    dh, dc = np.zeros((B, Hd), dt), np.zeros((B, Hd), dt)
    da = np.empty((T, B, 4 * Hd), dt)
    du, dq = np.empty((T, B, Tk), dt), np.empty((T, B, A), dt)
    de = np.empty((B, T, E), dt)
    dkeys, dkp = np.zeros((B, Tk, Hk), dt), np.zeros((B, Tk, A), dt)
    n = _n_chunks(B)
    with single_threaded_blas():
        _decode_backward(np.ascontiguousarray(dhs, dt), np.ascontiguousarray(dctx, dt), s["WT"],
                         s["W_q"], s["v"], s["keys"], n, s["act"], s["cs"], s["tc"], s["a"],
                         s["w"], dh, dc, da, du, dq, de, dkeys, dkp)
    xh, F = s["xh"], s["xh"].shape[2]
    da2 = da.reshape(T * B, 4 * Hd)
    dW = np.dot(xh[:T].reshape(T * B, F).T, da2)                       # Σ_t [e|c|s]ᵀ dA_t
    dW_q = np.dot(xh[:T, :, E + Hk:].reshape(T * B, Hd).T, dq.reshape(T * B, A))
    dv = np.dot(du.reshape(T * B * Tk), s["a"].reshape(T * B * Tk, A))  # u = a · v
    od = s["out_dtype"]
    grads = {"W_q": _out(dW_q, od), "v": _out(dv, od), "W_x": _out(dW[:E + Hk], od),
             "W_h": _out(dW[E + Hk:], od), "b": _out(da2.sum(axis=0), od)}
    return (_out(de, od), _out(dkeys, od), _out(dkp, od), (_out(dh, od), _out(dc, od)), grads)
