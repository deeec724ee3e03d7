"""The speller of Listen, Attend and Spell with Chorowski's location-aware attention.

For output step i = 1 … L, with listener features h (B, T, 2H) and keys k = h V:

    s_i, m_i = LSTMCell([E[y_{i−1}] ; c_{i−1}], (s_{i−1}, m_{i−1}))
    c_i, α_i = location_attention(s_i, k, h, α_{i−1})              (α_0 = one-hot on frame 0)
    logits_i = [s_i ; c_i] W_y + b_y

Training feeds the true y_{i−1} (teacher forcing); decoding feeds the model's own choice
(:mod:`attention_np.apps.las.search`). ``speller_backward`` runs the steps in reverse.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attention_np.nn.layers import embedding_backward, embedding_forward
from attention_np.location_attention import (init_location_params, location_attention_backward,
                                             location_attention_forward)
from attention_np.nn.recurrent import init_recurrent_params, lstm_cell_backward, lstm_cell_forward


def init_speller(V: int, E: int, Dh: int, Hd: int, A: int, K: int, r: int, rng,
                 dtype=np.float32) -> dict:
    p = {"emb": (rng.standard_normal((V, E)) * 0.3).astype(dtype),
         "out.W": (rng.uniform(-1, 1, (Hd + Dh, V)) / np.sqrt(Hd + Dh)).astype(dtype),
         "out.b": np.zeros(V, dtype)}
    p.update({f"dec.{k}": v for k, v in init_recurrent_params("lstm", E + Dh, Hd, rng, dtype).items()})
    p.update({f"att.{k}": v for k, v in init_location_params(Hd, Dh, A, K, r, rng, dtype).items()})
    return p


def _sub(params, prefix):
    return {k[len(prefix) + 1:]: v for k, v in params.items() if k.startswith(prefix + ".")}


@dataclass
class DecoderState:
    """What one step hands to the next: LSTM state (s, m), context c, weights α — each (B, ·)."""
    s: np.ndarray
    m: np.ndarray
    c: np.ndarray
    alpha: np.ndarray

    def take(self, rows) -> "DecoderState":
        return DecoderState(self.s[rows], self.m[rows], self.c[rows], self.alpha[rows])


def initial_state(params, h) -> DecoderState:
    B, T, Dh = h.shape
    Hd = params["dec.W_h"].shape[0]
    alpha = np.zeros((B, T), h.dtype)
    alpha[:, 0] = 1
    return DecoderState(np.zeros((B, Hd), h.dtype), np.zeros((B, Hd), h.dtype),
                        np.zeros((B, Dh), h.dtype), alpha)


def speller_step(params, keys, h, mask, y_prev, state: DecoderState):
    """One step: returns (logits (B, V), new state, cache)."""
    e, ce = embedding_forward(y_prev, params["emb"])
    s, m, cl = lstm_cell_forward(np.concatenate([e, state.c], -1), state.s, state.m,
                                 _sub(params, "dec"))
    c, alpha, ca = location_attention_forward(s, keys, h, state.alpha, _sub(params, "att"), mask)
    feats = np.concatenate([s, c], axis=-1)
    logits = feats @ params["out.W"] + params["out.b"]
    return logits, DecoderState(s, m, c, alpha), (ce, cl, ca, feats)


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
    Hd = steps[0][1]["h"].shape[1]
    g = {k: 0 for k in ("emb", "out.W", "out.b")}
    dkeys, dh = np.zeros(h.shape[:2] + (steps[0][2]["U"].shape[1],), h.dtype), np.zeros_like(h)
    ds_next, dm_next = np.zeros((B, Hd), h.dtype), np.zeros((B, Hd), h.dtype)
    dc_next, dalpha_next = np.zeros((B, Dh), h.dtype), None
    for i in reversed(range(len(steps))):
        ce, cl, ca, feats = steps[i]
        g["out.W"] = g["out.W"] + feats.T @ dlogits[:, i]                  # logits = feats W + b
        g["out.b"] = g["out.b"] + dlogits[:, i].sum(0)
        dfeats = dlogits[:, i] @ cache["out.W"].T
        ds = dfeats[:, :Hd] + ds_next
        dc = dfeats[:, Hd:] + dc_next
        ds_att, dk, dv, dalpha_next, ga = location_attention_backward(dc, ca, dalpha_next)
        dkeys += dk
        dh += dv
        dx, ds_next, dm_next, gl = lstm_cell_backward(ds + ds_att, dm_next, cl)
        E = ce["W_shape"][1]
        dc_next = dx[:, E:]
        g["emb"] = g["emb"] + embedding_backward(dx[:, :E], ce)
        for k, v in gl.items():
            g[f"dec.{k}"] = g.get(f"dec.{k}", 0) + v
        for k, v in ga.items():
            g[f"att.{k}"] = g.get(f"att.{k}", 0) + v
    g["att.V"] = np.einsum("btd,bta->da", h, dkeys)                          # keys = h V
    return dh + dkeys @ cache["V"].T, g
