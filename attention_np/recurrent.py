"""Recurrent cells (LSTM, GRU), whole-sequence scans with padding, and a bidirectional wrapper.

Parameter layout (row vectors, ``y = x W + b``; gate blocks in torch's order):

* LSTM: ``W_x (D, 4H)``, ``W_h (H, 4H)``, ``b (4H,)`` — columns ``[i | f | g | o]``.
  From ``torch.nn.LSTM``: ``W_x = weight_ih_l0.T``, ``W_h = weight_hh_l0.T``,
  ``b = bias_ih_l0 + bias_hh_l0``.
* GRU: ``W_x (D, 3H)``, ``W_h (H, 3H)``, ``b_x (3H,)``, ``b_h (3H,)`` — columns ``[r | z | n]``.
  The hidden bias is kept apart because the reset gate multiplies ``h W_hn + b_hn``
  (``b_x = bias_ih_l0``, ``b_h = bias_hh_l0``).

Sequences are batch-first ``(B, T, D)``. ``mask (B, T)`` (True = real token, as
:func:`attention_np.core.padding_mask` makes) freezes the state at padded steps and zeroes their
outputs, so the final state is the state after each row's last real token — what
``torch.nn.utils.rnn.pack_padded_sequence`` gives.
"""
from __future__ import annotations

import numpy as np

from attention_np._checks import as_float_array, check_shape


def _sigmoid(x):
    """σ(x) = 1 / (1 + e^{−x}) = (1 + tanh(x / 2)) / 2   (the tanh form cannot overflow)."""
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


# --------------------------------------------------------------- sequences
def _scan_forward(kind, x, state, params, mask):
    """Run the cell over T steps. x @ W_x for all steps is one matmul; only h W_h is per step."""
    x = as_float_array(x, "x", ndim=3)
    B, T, D = x.shape
    W_x, W_h, H = _check_params(kind, params, D)
    state = _initial_state(kind, state, B, H, x.dtype)
    if mask is not None:
        mask = np.asarray(mask)
        if mask.dtype != np.bool_:
            raise ValueError(f"mask must be boolean (True = real token), got dtype {mask.dtype}")
        check_shape(mask, "mask", (B, T))
    step = _CELLS[kind][0]
    xw = x @ W_x + _input_bias(kind, params)                          # (B, T, G·H)
    hs = np.zeros((B, T, H), x.dtype)
    h_prev = np.empty((B, T, H), x.dtype)            # state entering step t (for dW_h)
    steps = []
    for t in range(T):
        h_prev[:, t] = state[0]
        new, step_cache = step(xw[:, t], state[0] @ W_h, state, params)
        if mask is not None:
            m = mask[:, t, None]
            new = tuple(np.where(m, n, s) for n, s in zip(new, state))
            hs[:, t] = np.where(m, new[0], 0)
        else:
            hs[:, t] = new[0]
        state = new
        steps.append(step_cache)
    cache = {"kind": kind, "x": x, "W_x": W_x, "W_h": W_h, "h_prev": h_prev, "steps": steps,
             "mask": mask, "n_state": len(state)}
    return hs, state, cache


def _scan_backward(dhs, cache, dfinal):
    """Walk the steps in reverse; returns (dx, dstate0 tuple, grads)."""
    kind, x, W_h, mask = cache["kind"], cache["x"], cache["W_h"], cache["mask"]
    B, T, _ = x.shape
    H = W_h.shape[0]
    dhs = np.asarray(dhs)
    check_shape(dhs, "dhs", (B, T, H))
    dstate = tuple(np.zeros((B, H), x.dtype) if d is None else np.asarray(d, x.dtype)
                   for d in dfinal)
    step_backward = _CELLS[kind][1]
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
        dxw[:, t], dhw[:, t], dprev = step_backward(d_new, cache["steps"][t])
        dprev = (dprev[0] + dhw[:, t] @ W_h.T,) + dprev[1:]
        dstate = dprev if d_keep is None else tuple(a + b for a, b in zip(dprev, d_keep))
    G = dxw.shape[-1]
    dxw2, dhw2 = dxw.reshape(-1, G), dhw.reshape(-1, G)
    dx = dxw @ cache["W_x"].T
    grads = _grads_dict(kind, x.reshape(-1, x.shape[-1]).T @ dxw2,
                        cache["h_prev"].reshape(-1, H).T @ dhw2, dxw2.sum(0), dhw2.sum(0))
    return dx, dstate, grads


def lstm_forward(x, h0, c0, params, mask=None):
    """LSTM over a batch of sequences (torch.nn.LSTM, batch_first, one layer).

    x (B, T, D), h0/c0 (B, H) or None, mask (B, T) bool or None
    → hs (B, T, H) (zero at padded steps), (h_T, c_T) (state after each row's last real token).
    Returns ``(hs, (h_T, c_T), cache)``.
    """
    return _scan_forward("lstm", x, (h0, c0), params, mask)


def lstm_backward(dhs, cache, dh_T=None, dc_T=None):
    """Backprop through time: returns ``(dx (B, T, D), dh0, dc0, grads)``."""
    dx, (dh0, dc0), grads = _scan_backward(dhs, cache, (dh_T, dc_T))
    return dx, dh0, dc0, grads


def gru_forward(x, h0, params, mask=None):
    """GRU over a batch of sequences (torch.nn.GRU, batch_first, one layer).

    x (B, T, D), h0 (B, H) or None, mask (B, T) bool or None → hs (B, T, H), h_T (B, H).
    Returns ``(hs, h_T, cache)``.
    """
    hs, (h_T,), cache = _scan_forward("gru", x, (h0,), params, mask)
    return hs, h_T, cache


def gru_backward(dhs, cache, dh_T=None):
    """Backprop through time: returns ``(dx (B, T, D), dh0, grads)``."""
    dx, (dh0,), grads = _scan_backward(dhs, cache, (dh_T,))
    return dx, dh0, grads


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


def bidirectional_forward(kind: str, x, params_fwd, params_bwd, mask=None):
    """Two recurrent scans, left→right and right→left (within each row's length), concatenated.

    x (B, T, D) → hs (B, T, 2H) = [h→_t ; h←_t], finals = (state→, state←) — each the state
    tuple of that direction ((h, c) for LSTM, (h,) for GRU), like torch's ``bidirectional=True``.
    Returns ``(hs, finals, cache)``.
    """
    if kind not in _CELLS:
        raise ValueError(f"kind must be 'lstm' or 'gru', got {kind!r}")
    x = as_float_array(x, "x", ndim=3)
    B, T, _ = x.shape
    lengths = np.full(B, T) if mask is None else np.asarray(mask).sum(axis=1)
    init = (None,) * (2 if kind == "lstm" else 1)
    hf, sf, cf = _scan_forward(kind, x, init, params_fwd, mask)
    hb, sb, cb = _scan_forward(kind, reverse_padded(x, lengths), init, params_bwd, mask)
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
