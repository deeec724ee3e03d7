"""Recurrent layers over whole sequences: LSTM / GRU scans with padding masks and
hand-written backprop through time, and the bidirectional wrapper.

The parameter layout and the mask convention are described in :mod:`attention_np.nn.recurrent`.
``backend="numba"`` runs the same scans on fused kernels (through :mod:`attention_np.nn.backend`):
one kernel call for all T steps, forward and backward; the code here is their reference.
"""
from __future__ import annotations

import numpy as np

from attention_np.nn import backend as numba_backend
from attention_np.nn.backend import check_backend
from attention_np.nn.checks import as_float_array, check_shape
from attention_np.nn.recurrent.steps import (cell_of, check_params, initial_state,
                                             param_grads)


# --------------------------------------------------------------- sequences
def _check_scan(cell, x, state, params, mask):
    """Validate a scan's inputs: (x, W_x, W_h, state with zeros (B, H) for None, mask)."""
    x = as_float_array(x, "x", ndim=3)
    B, T, D = x.shape
    W_x, W_h, H = check_params(cell, params, D)
    state = initial_state(cell, state, B, H, x.dtype)
    if mask is not None:
        mask = np.asarray(mask)
        if mask.dtype != np.bool_:
            raise ValueError(f"mask must be boolean (True = real token), got dtype {mask.dtype}")
        check_shape(mask, "mask", (B, T))
    return x, W_x, W_h, state, mask


def _scan_forward(kind, x, state, params, mask, backend="numpy"):
    """Run the cell over T steps. x @ W_x for all steps is one matmul; only h W_h is per step."""
    cell = cell_of(kind)
    x, W_x, W_h, state, mask = _check_scan(cell, x, state, params, mask)
    if backend == "numba" and 0 not in (*x.shape, W_h.shape[0]):
        # (an empty axis runs the NumPy scan: the kernels' BLAS products assume every
        # dimension is at least 1 — with D = 0 they wrote outside their buffers)
        return _numba_scan_forward(kind, x, state, W_x, W_h, params, mask)
    B, T, _ = x.shape
    H = W_h.shape[0]
    xw = x @ W_x + params[cell.biases[0]]                            # (B, T, G·H)
    hs = np.zeros((B, T, H), x.dtype)
    h_prev = np.empty((B, T, H), x.dtype)            # state entering step t (for dW_h)
    steps = []
    for t in range(T):
        h_prev[:, t] = state[0]
        new, step_cache = cell.step(xw[:, t], state[0] @ W_h, state, params)
        if mask is not None:
            m = mask[:, t, None]
            new = tuple(np.where(m, n, s) for n, s in zip(new, state))
            hs[:, t] = np.where(m, new[0], 0)
        else:
            hs[:, t] = new[0]
        state = new
        steps.append(step_cache)
    cache = {"kind": kind, "backend": "numpy", "x": x, "W_x": W_x, "W_h": W_h,
             "h_prev": h_prev, "steps": steps, "mask": mask, "n_state": len(state)}
    return hs, state, cache


def _numba_scan_forward(kind, x, state, W_x, W_h, params, mask):
    """The same scan on the fused kernels; the cache keeps their state for the backward."""
    if kind == "lstm":
        hs, h_T, c_T, kernel = numba_backend.lstm_sequence_forward(
            x, *state, W_x, W_h, np.asarray(params["b"]), mask)
        final = (h_T, c_T)
    else:
        hs, h_T, kernel = numba_backend.gru_sequence_forward(
            x, *state, W_x, W_h, np.asarray(params["b_x"]), np.asarray(params["b_h"]), mask)
        final = (h_T,)
    cache = {"kind": kind, "backend": "numba", "kernel": kernel, "x": x, "W_h": W_h,
             "n_state": len(final)}
    return hs, final, cache


def _check_scan_gradients(dhs, cache, dfinal):
    """dhs (B, T, H) and the final-state gradients (B, H) or None, checked."""
    x, W_h, kind = cache["x"], cache["W_h"], cache["kind"]
    B, T, _ = x.shape
    H = W_h.shape[0]
    dhs = np.asarray(dhs)
    check_shape(dhs, "dhs", (B, T, H))
    for name, d in zip(("dh_T", "dc_T") if kind == "lstm" else ("dh_T",), dfinal):
        if d is not None:
            check_shape(np.asarray(d), name, (B, H))
    return dhs


def _scan_backward(dhs, cache, dfinal):
    """Walk the steps in reverse; returns (dx, dstate0 tuple, grads)."""
    dhs = _check_scan_gradients(dhs, cache, dfinal)
    if cache["backend"] == "numba":
        return _numba_scan_backward(dhs, cache, dfinal)
    cell, x, W_h, mask = cell_of(cache["kind"]), cache["x"], cache["W_h"], cache["mask"]
    B, T, _ = x.shape
    H = W_h.shape[0]
    dstate = tuple(np.zeros((B, H), x.dtype) if d is None else np.asarray(d, x.dtype)
                   for d in dfinal)
    dxw = np.empty(x.shape[:2] + (W_h.shape[1],), x.dtype)          # (B, T, G·H)
    dhw = np.empty_like(dxw)
    for t in reversed(range(T)):
        if mask is None:
            d_new, d_keep = (dstate[0] + dhs[:, t],) + dstate[1:], None
        else:                                          # state = where(m, new, old)
            m = mask[:, t, None]
            d_new = tuple(np.where(m, d, 0) for d in dstate)
            d_new = (d_new[0] + np.where(m, dhs[:, t], 0),) + d_new[1:]
            d_keep = tuple(np.where(m, 0, d) for d in dstate)
        dxw[:, t], dhw[:, t], dprev = cell.step_backward(d_new, cache["steps"][t])
        dprev = (dprev[0] + dhw[:, t] @ W_h.T,) + dprev[1:]
        dstate = dprev if d_keep is None else tuple(a + b for a, b in zip(dprev, d_keep))
    G = dxw.shape[-1]
    dxw2, dhw2 = dxw.reshape(-1, G), dhw.reshape(-1, G)
    dx = dxw @ cache["W_x"].T
    grads = param_grads(cell, x.reshape(-1, x.shape[-1]).T @ dxw2,
                        cache["h_prev"].reshape(-1, H).T @ dhw2, dxw2.sum(0), dhw2.sum(0))
    return dx, dstate, grads


def _numba_scan_backward(dhs, cache, dfinal):
    """The backward of :func:`_numba_scan_forward`: (dx, dstate0 tuple, grads)."""
    if cache["kind"] == "lstm":
        dx, dh0, dc0, grads = numba_backend.lstm_sequence_backward(dhs, *dfinal,
                                                                   cache["kernel"])
        return dx, (dh0, dc0), grads
    dx, dh0, grads = numba_backend.gru_sequence_backward(dhs, *dfinal, cache["kernel"])
    return dx, (dh0,), grads


def lstm_forward(x, h0, c0, params, mask=None, backend="numpy"):
    """LSTM over a batch of sequences (torch.nn.LSTM, batch_first, one layer).

    x (B, T, D), h0/c0 (B, H) or None, mask (B, T) bool or None
    → hs (B, T, H) (zero at padded steps), (h_T, c_T) (state after each row's last real token).
    Returns ``(hs, (h_T, c_T), cache)``; ``backend="numba"`` runs the fused kernels (the
    backward follows the cache).
    """
    check_backend(backend)
    return _scan_forward("lstm", x, (h0, c0), params, mask, backend)


def lstm_backward(dhs, cache, dh_T=None, dc_T=None):
    """Backprop through time: returns ``(dx (B, T, D), dh0, dc0, grads)``."""
    dx, (dh0, dc0), grads = _scan_backward(dhs, cache, (dh_T, dc_T))
    return dx, dh0, dc0, grads


def gru_forward(x, h0, params, mask=None, backend="numpy"):
    """GRU over a batch of sequences (torch.nn.GRU, batch_first, one layer).

    x (B, T, D), h0 (B, H) or None, mask (B, T) bool or None → hs (B, T, H), h_T (B, H).
    Returns ``(hs, h_T, cache)``; ``backend="numba"`` runs the fused kernels.
    """
    check_backend(backend)
    hs, (h_T,), cache = _scan_forward("gru", x, (h0,), params, mask, backend)
    return hs, h_T, cache


def gru_backward(dhs, cache, dh_T=None):
    """Backprop through time: returns ``(dx (B, T, D), dh0, grads)``."""
    dx, (dh0,), grads = _scan_backward(dhs, cache, (dh_T,))
    return dx, dh0, grads


# ----------------------------------------------------------- bidirectional
def reverse_padded(x, lengths):
    """Reverse each row's first ``lengths[b]`` steps, leaving the padding in place.

    x (B, T, ...) → y with y[b, t] = x[b, L_b − 1 − t] for t < L_b. Its own inverse.
    """
    B, T = x.shape[:2]
    t = np.arange(T)[None, :]
    L = np.asarray(lengths)[:, None]
    idx = np.where(t < L, L - 1 - t, t)                                 # (B, T)
    return x[np.arange(B)[:, None], idx]


def bidirectional_forward(kind: str, x, params_fwd, params_bwd, mask=None, backend="numpy"):
    """Two recurrent scans, left→right and right→left (within each row's length), concatenated.

    x (B, T, D) → hs (B, T, 2H) = [h→_t ; h←_t], finals = (state→, state←) — each the state
    tuple of that direction ((h, c) for LSTM, (h,) for GRU), like torch's ``bidirectional=True``.
    Returns ``(hs, finals, cache)``; ``backend="numba"`` runs both scans on the fused kernels.
    """
    cell = cell_of(kind)
    check_backend(backend)
    x = as_float_array(x, "x", ndim=3)
    B, T, _ = x.shape
    lengths = np.full(B, T) if mask is None else np.asarray(mask).sum(axis=1)
    init = (None,) * len(cell.states)
    hf, sf, cf = _scan_forward(kind, x, init, params_fwd, mask, backend)
    hb, sb, cb = _scan_forward(kind, reverse_padded(x, lengths), init, params_bwd, mask,
                               backend)
    hs = np.concatenate([hf, reverse_padded(hb, lengths)], axis=-1)
    return hs, (sf, sb), {"fwd": cf, "bwd": cb, "lengths": lengths, "H": hf.shape[-1]}


def bidirectional_backward(dhs, cache, dfinals=None):
    """Returns ``(dx, grads_fwd, grads_bwd)``; ``dfinals`` = (dstate→, dstate←) tuples or None."""
    H, lengths = cache["H"], cache["lengths"]
    n = cache["fwd"]["n_state"]
    dfinals = ((None,) * n, (None,) * n) if dfinals is None else dfinals
    dxf, _, gf = _scan_backward(dhs[..., :H], cache["fwd"], dfinals[0])
    dxb, _, gb = _scan_backward(reverse_padded(dhs[..., H:], lengths), cache["bwd"], dfinals[1])
    return dxf + reverse_padded(dxb, lengths), gf, gb
