"""The speller of Listen, Attend and Spell with Chorowski's location-aware attention.

For output step i = 1 … L, with listener features h (B, T, 2H) and keys k = h V:

    s_i, m_i = LSTMCell([E[y_{i−1}] ; c_{i−1}], (s_{i−1}, m_{i−1}))
    c_i, α_i = location_attention(s_i, k, h, α_{i−1})              (α_0 = one-hot on frame 0)
    logits_i = [s_i ; c_i] W_y + b_y

Training feeds the true y_{i−1} (teacher forcing); decoding feeds the model's own choice
(:mod:`attention_np.apps.las.search`). ``speller_backward`` runs the steps in reverse.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from attention_np.location_attention import (init_location_params, location_attention_backward,
                                             location_attention_forward)
from attention_np.nn import init
from attention_np.nn.layers import embedding_backward, embedding_forward
from attention_np.nn.params import add_grads, linear_params, prefixed, sub
from attention_np.nn.recurrent import init_recurrent_params, lstm_cell_backward, lstm_cell_forward


def init_speller(V: int, E: int, Dh: int, Hd: int, A: int, K: int, r: int, rng,
                 dtype=np.float32) -> dict:
    """``emb`` (V, E), ``out.W`` (Hd + Dh, V), ``out.b``, the LSTM ``dec.*`` and the attention
    ``att.*`` (location_attention's W, V, U, F, b, w).

    The embedding is N(0, 0.3²) for the reason given in seq2seq/encoder.py: the LSTM's input
    weights are U(±1/√Hd), so each gate gets a term of std ≈ 0.3 · √(E / 3Hd) ≈ 0.07 here, in the
    linear range of σ and tanh, while different digits still get clearly different inputs.
    """
    p = {"emb": init.normal((V, E), rng, 0.3, dtype)}
    p.update(prefixed("out", linear_params(rng, Hd + Dh, V, dtype)))
    p.update(prefixed("dec", init_recurrent_params("lstm", E + Dh, Hd, rng, dtype)))
    p.update(prefixed("att", init_location_params(Hd, Dh, A, K, r, rng, dtype)))
    return p


class DecoderState(NamedTuple):
    """What one step hands to the next: LSTM state (s, m), context c, weights α — each (B, ·).
    A tuple of arrays, as :mod:`attention_np.decoding` wants its search state."""
    s: np.ndarray
    m: np.ndarray
    c: np.ndarray
    alpha: np.ndarray


def initial_state(params, h) -> DecoderState:
    """s_0 = m_0 = 0, c_0 = 0, α_0 = one-hot on frame 0, for listener features h (B, T, Dh)."""
    B, T, Dh = h.shape
    Hd = params["dec.W_h"].shape[0]
    alpha = np.zeros((B, T), h.dtype)
    alpha[:, 0] = 1
    return DecoderState(np.zeros((B, Hd), h.dtype), np.zeros((B, Hd), h.dtype),
                        np.zeros((B, Dh), h.dtype), alpha)


def speller_step(params, keys, h, mask, y_prev, state: DecoderState):
    """One step: y_prev (B,) int → (logits (B, V), new state, cache)."""
    e, emb_cache = embedding_forward(y_prev, params["emb"])                   # (B, E)
    s, m, lstm_cache = lstm_cell_forward(np.concatenate([e, state.c], -1), state.s, state.m,
                                         sub(params, "dec"))                  # (B, Hd) each
    c, alpha, att_cache = location_attention_forward(s, keys, h, state.alpha,
                                                     sub(params, "att"), mask)   # (B, Dh)
    feats = np.concatenate([s, c], axis=-1)                                   # (B, Hd + Dh)
    logits = feats @ params["out.W"] + params["out.b"]
    cache = {"emb": emb_cache, "lstm": lstm_cache, "att": att_cache, "feats": feats,
             "E": e.shape[-1]}
    return logits, DecoderState(s, m, c, alpha), cache
def speller_forward(params, h, mask, y_in):
    """Teacher forcing. h (B, T, Dh), mask (B, T), y_in (B, L) = <sos> y_1 … y_{L−1}
    → logits (B, L, V), alignments α (B, L, T), cache."""
    keys = h @ params["att.V"]                                                 # (B, T, A)
    state, logits, alphas, caches = initial_state(params, h), [], [], []
    for i in range(y_in.shape[1]):
        z, state, cache = speller_step(params, keys, h, mask, y_in[:, i], state)
        logits.append(z)
        alphas.append(state.alpha)
        caches.append(cache)
    cache = {"h": h, "steps": caches, "out.W": params["out.W"], "V": params["att.V"]}
    return np.stack(logits, 1), np.stack(alphas, 1), cache


def speller_backward(dlogits, cache):
    """dlogits (B, L, V) → (dh (B, T, Dh), grads keyed like the params)."""
    h, steps = cache["h"], cache["steps"]
    B, T, Dh = h.shape
    Hd = cache["out.W"].shape[0] - Dh                                         # feats = [s ; c]
    g = {k: 0 for k in ("emb", "out.W", "out.b")}
    dkeys, dh = np.zeros((B, T, cache["V"].shape[1]), h.dtype), np.zeros_like(h)
    ds_next, dm_next = np.zeros((B, Hd), h.dtype), np.zeros((B, Hd), h.dtype)
    dc_next, dalpha_next = np.zeros((B, Dh), h.dtype), None
    for i in reversed(range(len(steps))):
        step = steps[i]
        g["out.W"] = g["out.W"] + step["feats"].T @ dlogits[:, i]          # logits = feats W + b
        g["out.b"] = g["out.b"] + dlogits[:, i].sum(0)
        dfeats = dlogits[:, i] @ cache["out.W"].T
        ds = dfeats[:, :Hd] + ds_next
        dc = dfeats[:, Hd:] + dc_next
        ds_att, dk, dv, dalpha_next, ga = location_attention_backward(dc, step["att"],
                                                                      dalpha_next)
        dkeys += dk
        dh += dv
        dx, ds_next, dm_next, gl = lstm_cell_backward(ds + ds_att, dm_next, step["lstm"])
        E = step["E"]
        dc_next = dx[:, E:]                                    # the LSTM read [E y ; c_{i−1}]
        g["emb"] = g["emb"] + embedding_backward(dx[:, :E], step["emb"])
        add_grads(g, prefixed("dec", gl))
        add_grads(g, prefixed("att", ga))
    g["att.V"] = np.einsum("btd,bta->da", h, dkeys)                          # keys = h V
    return dh + dkeys @ cache["V"].T, g
