"""One step of each recurrent cell, and what the cell and sequence modules share about them.

A step receives its two affine parts already computed, ``xw = x W_x + b`` and ``hw = h W_h``
(B, G·H), because a sequence scan computes ``x W_x`` for every time step in one matrix product
and only ``h W_h`` inside the loop. Each step is a ``*_step(xw, hw, state, params) ->
(new_state, cache)`` / ``*_step_backward(dstate, cache) -> (dxw, dhw, dstate_prev)`` pair;
``dstate_prev`` holds only the direct paths (the caller adds ``dhw W_hᵀ`` to dh).

:data:`CELLS` describes LSTM and GRU side by side (gate count, bias and state names), so that
:mod:`~attention_np.nn.recurrent.cells` and :mod:`~attention_np.nn.recurrent.sequences` handle
both without an ``if kind == ...`` at every turn.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from attention_np.nn.activations import stable_sigmoid
from attention_np.nn.checks import as_float_array, check_shape


# ---------------------------------------------------------------- LSTM step
def lstm_step(xw, hw, state, params):
    """[i, f, g, o] = [σ, σ, tanh, σ](xw + hw),   c' = f ⊙ c + i ⊙ g,   h' = o ⊙ tanh(c').

    xw, hw (B, 4H), state (h, c) each (B, H) → ((h', c'), cache). ``params`` is unused (the
    LSTM's one bias is already in xw).
    """
    _, c = state
    H = c.shape[-1]
    a = xw + hw                                                      # (B, 4H)
    i, f = stable_sigmoid(a[:, :H]), stable_sigmoid(a[:, H:2 * H])
    g, o = np.tanh(a[:, 2 * H:3 * H]), stable_sigmoid(a[:, 3 * H:])
    c_new = f * c + i * g
    tc = np.tanh(c_new)
    return (o * tc, c_new), {"i": i, "f": f, "g": g, "o": o, "c": c, "tc": tc}


def lstm_step_backward(dstate, cache):
    """Undo :func:`lstm_step`: da = ∂L/∂(xw + hw) (B, 4H), returned as both dxw and dhw.

    dstate_prev = (0, dc' ⊙ f): the direct paths (h reaches the step only through hw).
    """
    dh, dc = dstate
    i, f, g, o, c, tc = (cache[k] for k in ("i", "f", "g", "o", "c", "tc"))
    do = dh * tc                                  # h' = o ⊙ tanh(c')
    dc = dc + dh * o * (1 - tc * tc)
    di, df, dg = dc * g, dc * c, dc * i           # c' = f ⊙ c + i ⊙ g
    da = np.concatenate([di * i * (1 - i), df * f * (1 - f), dg * (1 - g * g),
                         do * o * (1 - o)], axis=-1)
    return da, da, (np.zeros_like(dh), dc * f)


# ----------------------------------------------------------------- GRU step
def gru_step(xw, hw, state, params):
    """torch's GRU equations, with hb = hw + b_h:

        r = σ(xw_r + hb_r),   z = σ(xw_z + hb_z)
        n = tanh(xw_n + r ⊙ hb_n),   h' = (1 − z) ⊙ n + z ⊙ h

    xw, hw (B, 3H), state (h,) (B, H), params["b_h"] (3H,) → ((h',), cache).
    """
    (h,) = state
    H = h.shape[-1]
    hb = hw + params["b_h"]                                          # (B, 3H)
    r = stable_sigmoid(xw[:, :H] + hb[:, :H])
    z = stable_sigmoid(xw[:, H:2 * H] + hb[:, H:2 * H])
    hn = hb[:, 2 * H:]
    n = np.tanh(xw[:, 2 * H:] + r * hn)
    return ((1 - z) * n + z * h,), {"r": r, "z": z, "n": n, "hn": hn, "h": h}


def gru_step_backward(dstate, cache):
    """Undo :func:`gru_step`: returns (dxw, dhw, (dh_direct,)), dhw = ∂L/∂(h W_h + b_h)."""
    (dh,) = dstate
    r, z, n, hn, h = (cache[k] for k in ("r", "z", "n", "hn", "h"))
    dn = dh * (1 - z)                             # h' = (1 − z) ⊙ n + z ⊙ h
    dz = dh * (h - n)
    dn_pre = dn * (1 - n * n)                     # n = tanh(xw_n + r ⊙ hn)
    dr_pre = dn_pre * hn * r * (1 - r)
    dz_pre = dz * z * (1 - z)
    dxw = np.concatenate([dr_pre, dz_pre, dn_pre], axis=-1)
    dhw = np.concatenate([dr_pre, dz_pre, dn_pre * r], axis=-1)
    return dxw, dhw, (dh * z,)


# ------------------------------------------------------- the two cells, side by side
@dataclass(frozen=True)
class Cell:
    """What differs between LSTM and GRU for the code that handles both."""
    step: Callable
    step_backward: Callable
    gates: int                   # G: W_x is (D, G·H), W_h is (H, G·H)
    biases: tuple[str, ...]      # the first is added to xw; GRU's second to hw inside the step
    states: tuple[str, ...]      # the names of the initial state arguments


CELLS = {"lstm": Cell(lstm_step, lstm_step_backward, 4, ("b",), ("h0", "c0")),
         "gru": Cell(gru_step, gru_step_backward, 3, ("b_x", "b_h"), ("h0",))}


def cell_of(kind: str) -> Cell:
    """The :class:`Cell` of ``kind`` ('lstm' or 'gru'); raises ValueError for anything else."""
    if kind not in CELLS:
        raise ValueError(f"kind must be 'lstm' or 'gru', got {kind!r}")
    return CELLS[kind]


def check_params(cell: Cell, params: dict, D: int):
    """Validate a parameter dict for inputs of width D; return (W_x, W_h, H)."""
    W_x = as_float_array(params["W_x"], "params['W_x']", ndim=2)
    H = W_x.shape[1] // cell.gates
    check_shape(W_x, "params['W_x']", (D, cell.gates * H))
    W_h = as_float_array(params["W_h"], "params['W_h']", ndim=2)
    check_shape(W_h, "params['W_h']", (H, cell.gates * H))
    for name in cell.biases:
        check_shape(as_float_array(params[name], f"params['{name}']"), f"params['{name}']",
                    (cell.gates * H,))
    return W_x, W_h, H


def initial_state(cell: Cell, state: tuple, B: int, H: int, dtype) -> tuple:
    """The state tuple with zeros (B, H) for missing (None) entries; validates the others."""
    out = []
    for name, s in zip(cell.states, state):
        if s is None:
            out.append(np.zeros((B, H), dtype))
        else:
            s = as_float_array(s, name, ndim=2)
            check_shape(s, name, (B, H))
            out.append(s.astype(dtype, copy=False))
    return tuple(out)


def param_grads(cell: Cell, dW_x, dW_h, dxw_sum, dhw_sum) -> dict:
    """Gradients keyed like the parameters: b gets Σ dxw (LSTM); b_x Σ dxw, b_h Σ dhw (GRU)."""
    return {"W_x": dW_x, "W_h": dW_h, **dict(zip(cell.biases, (dxw_sum, dhw_sum)))}
