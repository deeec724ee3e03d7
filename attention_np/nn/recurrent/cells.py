"""Recurrent cells: one LSTM or GRU step (torch.nn.LSTMCell / GRUCell) with its backward,
and the pieces the sequence scans in :mod:`attention_np.nn.recurrent.sequences` share.

The parameter layout is described in :mod:`attention_np.nn.recurrent`.
"""
from __future__ import annotations

import numpy as np

from attention_np.nn.checks import as_float_array, check_shape


def _sigmoid(x):
    """σ(x) = 1 / (1 + e^{−x}) = (1 + tanh(x / 2)) / 2   (the tanh form cannot overflow).

    Not :func:`attention_np.nn.activations.stable_sigmoid`: one tanh is cheaper than its
    exp + where + divide in the per-time-step gates, and absolute accuracy is what a gate needs."""
    return 0.5 * (1.0 + np.tanh(0.5 * x))


# ---------------------------------------------------------------- LSTM step
def _lstm_step(xw, hw, state, params):
    """One LSTM step given the two affine parts ``xw = x W_x + b`` and ``hw = h W_h`` (B, 4H).

        [i, f, g, o] = [σ, σ, tanh, σ](xw + hw)
        c' = f ⊙ c + i ⊙ g,   h' = o ⊙ tanh(c')
    """
    _, c = state
    H = c.shape[-1]
    a = xw + hw                                                      # (B, 4H)
    i, f, o = _sigmoid(a[:, :H]), _sigmoid(a[:, H:2 * H]), _sigmoid(a[:, 3 * H:])
    g = np.tanh(a[:, 2 * H:3 * H])
    c_new = f * c + i * g
    tc = np.tanh(c_new)
    h_new = o * tc
    return (h_new, c_new), (i, f, g, o, c, tc)


def _lstm_step_backward(dstate, cache):
    """Undo :func:`_lstm_step`. Returns (da, dstate_prev) with da = ∂L/∂(xw + hw) (B, 4H).

    dstate_prev holds only the direct paths (dc_prev = dc' ⊙ f; dh_prev = 0 here — the
    caller adds ``da W_hᵀ``, the path through the gates).
    """
    dh, dc = dstate
    i, f, g, o, c, tc = cache
    do = dh * tc                                  # h' = o ⊙ tanh(c')
    dc = dc + dh * o * (1 - tc * tc)
    di, df, dg = dc * g, dc * c, dc * i           # c' = f ⊙ c + i ⊙ g
    da = np.concatenate([di * i * (1 - i), df * f * (1 - f), dg * (1 - g * g),
                         do * o * (1 - o)], axis=-1)
    return da, (np.zeros_like(dh), dc * f)


# ----------------------------------------------------------------- GRU step
def _gru_step(xw, hw, state, params):
    """One GRU step given ``xw = x W_x + b_x`` and ``hw = h W_h`` (B, 3H) (torch's equations).

        r = σ(xw_r + hw_r + b_hr),   z = σ(xw_z + hw_z + b_hz)
        n = tanh(xw_n + r ⊙ (hw_n + b_hn)),   h' = (1 − z) ⊙ n + z ⊙ h
    """
    (h,) = state
    H = h.shape[-1]
    hb = hw + params["b_h"]                                          # (B, 3H)
    r = _sigmoid(xw[:, :H] + hb[:, :H])
    z = _sigmoid(xw[:, H:2 * H] + hb[:, H:2 * H])
    hn = hb[:, 2 * H:]
    n = np.tanh(xw[:, 2 * H:] + r * hn)
    h_new = (1 - z) * n + z * h
    return (h_new,), (r, z, n, hn, h)


def _gru_step_backward(dstate, cache):
    """Undo :func:`_gru_step`. Returns (dxw, dhw, dstate_prev) with dhw = ∂L/∂(h W_h + b_h)."""
    (dh,) = dstate
    r, z, n, hn, h = cache
    dn = dh * (1 - z)                             # h' = (1 − z) ⊙ n + z ⊙ h
    dz = dh * (h - n)
    dn_pre = dn * (1 - n * n)                     # n = tanh(xw_n + r ⊙ hn)
    dr_pre = dn_pre * hn * r * (1 - r)
    dz_pre = dz * z * (1 - z)
    dxw = np.concatenate([dr_pre, dz_pre, dn_pre], axis=-1)
    dhw = np.concatenate([dr_pre, dz_pre, dn_pre * r], axis=-1)
    return dxw, dhw, (dh * z,)


def _lstm_step_backward_split(dstate, cache):
    da, dprev = _lstm_step_backward(dstate, cache)
    return da, da, dprev


_CELLS = {"lstm": (_lstm_step, _lstm_step_backward_split, 4),
          "gru": (_gru_step, _gru_step_backward, 3)}


# ------------------------------------------------------------------ checks
def _check_params(kind: str, params: dict, D: int, H: int | None = None):
    """Validate a parameter dict; return (W_x, W_h, H)."""
    gates = _CELLS[kind][2]
    W_x = as_float_array(params["W_x"], "params['W_x']", ndim=2)
    H = W_x.shape[1] // gates if H is None else H
    check_shape(W_x, "params['W_x']", (D, gates * H))
    W_h = as_float_array(params["W_h"], "params['W_h']", ndim=2)
    check_shape(W_h, "params['W_h']", (H, gates * H))
    bias_names = ("b",) if kind == "lstm" else ("b_x", "b_h")
    for name in bias_names:
        check_shape(np.asarray(params[name]), f"params['{name}']", (gates * H,))
    return W_x, W_h, H


def _input_bias(kind, params):
    return params["b"] if kind == "lstm" else params["b_x"]


def _initial_state(kind, state, B, H, dtype):
    """Zeros for missing entries; validates shapes (B, H)."""
    names = ("h0", "c0") if kind == "lstm" else ("h0",)
    out = []
    for name, s in zip(names, state):
        if s is None:
            out.append(np.zeros((B, H), dtype))
        else:
            s = as_float_array(s, name, ndim=2)
            check_shape(s, name, (B, H))
            out.append(s.astype(dtype, copy=False))
    return tuple(out)


def _grads_dict(kind, dW_x, dW_h, dxw_sum, dhw_sum):
    if kind == "lstm":
        return {"W_x": dW_x, "W_h": dW_h, "b": dxw_sum}
    return {"W_x": dW_x, "W_h": dW_h, "b_x": dxw_sum, "b_h": dhw_sum}


# ------------------------------------------------------------------ cells
def _cell_forward(kind, x, state, params):
    x = as_float_array(x, "x", ndim=2)
    W_x, W_h, H = _check_params(kind, params, x.shape[1])
    state = _initial_state(kind, state, x.shape[0], H, x.dtype)
    step = _CELLS[kind][0]
    xw = x @ W_x + _input_bias(kind, params)
    new, step_cache = step(xw, state[0] @ W_h, state, params)
    return new, {"kind": kind, "x": x, "h": state[0], "W_x": W_x, "W_h": W_h, "step": step_cache}


def _cell_backward(dstate, cache):
    kind = cache["kind"]
    dstate = tuple(np.zeros_like(cache["h"]) if d is None else np.asarray(d) for d in dstate)
    dxw, dhw, dprev = _CELLS[kind][1](dstate, cache["step"])
    dx = dxw @ cache["W_x"].T
    dh = dprev[0] + dhw @ cache["W_h"].T
    grads = _grads_dict(kind, cache["x"].T @ dxw, cache["h"].T @ dhw, dxw.sum(0), dhw.sum(0))
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
    if kind not in _CELLS:
        raise ValueError(f"kind must be 'lstm' or 'gru', got {kind!r}")
    G, k = _CELLS[kind][2], 1.0 / np.sqrt(H)

    def u(*shape):
        return rng.uniform(-k, k, size=shape).astype(dtype)
    if kind == "lstm":
        return {"W_x": u(D, G * H), "W_h": u(H, G * H), "b": u(G * H) + u(G * H)}
    return {"W_x": u(D, G * H), "W_h": u(H, G * H), "b_x": u(G * H), "b_h": u(G * H)}
