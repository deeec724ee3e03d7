"""Recurrent cells: one LSTM or GRU step (torch.nn.LSTMCell / GRUCell) with its backward, and
the parameter initialiser.

The gate equations live in :mod:`attention_np.nn.recurrent.steps` (shared with the sequence
scans); the parameter layout is described in :mod:`attention_np.nn.recurrent`.
"""
from __future__ import annotations

import numpy as np

from attention_np.nn.checks import as_float_array
from attention_np.nn.init import uniform_fan_in
from attention_np.nn.recurrent.steps import (cell_of, check_params, initial_state,
                                             param_grads)


def _cell_forward(kind, x, state, params):
    """Validate, compute the affine parts, run one step."""
    cell = cell_of(kind)
    x = as_float_array(x, "x", ndim=2)
    W_x, W_h, H = check_params(cell, params, x.shape[1])
    state = initial_state(cell, state, x.shape[0], H, x.dtype)
    xw = x @ W_x + params[cell.biases[0]]                            # (B, G·H)
    new, step_cache = cell.step(xw, state[0] @ W_h, state, params)
    return new, {"kind": kind, "x": x, "h": state[0], "W_x": W_x, "W_h": W_h, "step": step_cache}


def _cell_backward(dstate, cache):
    """Undo :func:`_cell_forward`; a None entry of ``dstate`` is a zero gradient."""
    cell = cell_of(cache["kind"])
    dstate = tuple(np.zeros_like(cache["h"]) if d is None else np.asarray(d) for d in dstate)
    dxw, dhw, dprev = cell.step_backward(dstate, cache["step"])
    dx = dxw @ cache["W_x"].T                                        # xw = x W_x + b
    dh = dprev[0] + dhw @ cache["W_h"].T                             # hw = h W_h
    grads = param_grads(cell, cache["x"].T @ dxw, cache["h"].T @ dhw, dxw.sum(0), dhw.sum(0))
    return dx, (dh,) + tuple(dprev[1:]), grads


def lstm_cell_forward(x, h, c, params):
    """One LSTM step (torch.nn.LSTMCell).   x (B, D), h (B, H), c (B, H) → h' (B, H), c' (B, H)

        [i, f, g, o] = [σ, σ, tanh, σ](x W_x + h W_h + b)
        c' = f ⊙ c + i ⊙ g,   h' = o ⊙ tanh(c')

    ``h`` or ``c`` may be None (zeros). Returns ``(h', c', cache)``.
    """
    (h_new, c_new), cache = _cell_forward("lstm", x, (h, c), params)
    return h_new, c_new, cache


def lstm_cell_backward(dh_new, dc_new, cache):
    """Gradients of one LSTM step: returns ``(dx, dh, dc, grads)``; ``dc_new`` may be None."""
    dx, (dh, dc), grads = _cell_backward((dh_new, dc_new), cache)
    return dx, dh, dc, grads


def gru_cell_forward(x, h, params):
    """One GRU step (torch.nn.GRUCell).   x (B, D), h (B, H) or None → h' (B, H)

        r = σ(x W_xr + b_xr + h W_hr + b_hr),   z = σ(x W_xz + b_xz + h W_hz + b_hz)
        n = tanh(x W_xn + b_xn + r ⊙ (h W_hn + b_hn)),   h' = (1 − z) ⊙ n + z ⊙ h

    Returns ``(h', cache)``.
    """
    (h_new,), cache = _cell_forward("gru", x, (h,), params)
    return h_new, cache


def gru_cell_backward(dh_new, cache):
    """Gradients of one GRU step: returns ``(dx, dh, grads)``."""
    dx, (dh,), grads = _cell_backward((dh_new,), cache)
    return dx, dh, grads


def init_recurrent_params(kind: str, D: int, H: int, rng, dtype=np.float64) -> dict:
    """Torch's default init: every weight and bias ~ U(−1/√H, 1/√H). ``kind`` is 'lstm' or 'gru'."""
    G = cell_of(kind).gates

    def u(*shape):
        return uniform_fan_in(shape, rng, fan_in=H, dtype=dtype)
    if kind == "lstm":                    # torch's two biases, b_ih + b_hh, act as one
        return {"W_x": u(D, G * H), "W_h": u(H, G * H), "b": u(G * H) + u(G * H)}
    return {"W_x": u(D, G * H), "W_h": u(H, G * H), "b_x": u(G * H), "b_h": u(G * H)}
