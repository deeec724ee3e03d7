"""The listener of Listen, Attend and Spell (Chan et al., 2016): a pyramidal bidirectional LSTM.

    x (B, T, F) ──stack 2 frames──▶ (B, T/2, 2F) ──BiLSTM──▶ (B, T/2, 2H)
                ──concat pairs───▶ (B, T/4, 4H) ──BiLSTM──▶ h (B, T/4, 2H)

Each pyramid step halves the time resolution (×4 overall), so attention has 4× fewer frames
to look at and the LSTM's gradient crosses 4× fewer steps. Padded frames are masked throughout.
"""
from __future__ import annotations

import numpy as np

from attention_np.nn.params import prefixed, sub
from attention_np.nn.recurrent import (bidirectional_backward, bidirectional_forward,
                                       init_recurrent_params)


def init_listener(F: int, H: int, rng, dtype=np.float32, layers: int = 2) -> dict:
    """``listen{l}.fwd.*`` and ``listen{l}.bwd.*``: layer l reads 2·F (l = 0) or 4·H (the pair
    of the previous layer's 2H outputs)."""
    p = {}
    for layer in range(layers):
        d_in = 2 * F if layer == 0 else 4 * H
        for direction in ("fwd", "bwd"):
            p.update(prefixed(f"listen{layer}.{direction}",
                              init_recurrent_params("lstm", d_in, H, rng, dtype)))
    return p


def _pair_frames(x, mask):
    """(B, T, D) → (B, ⌈T/2⌉, 2D): frames 2t and 2t+1 side by side; mask keeps frame 2t's value."""
    B, T, D = x.shape
    if T % 2:
        x = np.concatenate([x, np.zeros((B, 1, D), x.dtype)], axis=1)
        mask = np.concatenate([mask, np.zeros((B, 1), bool)], axis=1)
    return x.reshape(B, -1, 2 * D), mask[:, ::2], T


def _unpair_frames(dx, T):
    B, T2, D2 = dx.shape
    return dx.reshape(B, 2 * T2, D2 // 2)[:, :T]


def listener_forward(params, x, mask, backend: str = "numpy"):
    """x (B, T, F) features, mask (B, T) bool → h (B, ⌈T/2^L⌉, 2H), mask of h, cache.
    ``backend="numba"`` runs the LSTM scans on the fused kernels."""
    n_layers = len({k.split(".")[0] for k in params if k.startswith("listen")})
    layers = []
    for layer in range(n_layers):
        x, mask, T = _pair_frames(x, mask)                          # (B, ⌈T/2⌉, 2·D)
        x, _, rnn_cache = bidirectional_forward("lstm", x, sub(params, f"listen{layer}.fwd"),
                                                sub(params, f"listen{layer}.bwd"), mask,
                                                backend)
        layers.append({"rnn": rnn_cache, "T": T})                   # x: (B, ⌈T/2⌉, 2H)
    return x, mask, {"layers": layers}


def listener_backward(dh, cache) -> dict:
    """dh (B, T', 2H) → the gradients keyed like the params (back through the pyramid)."""
    grads = {}
    for layer in reversed(range(len(cache["layers"]))):
        c = cache["layers"][layer]
        dx, gf, gb = bidirectional_backward(dh, c["rnn"])
        grads.update(prefixed(f"listen{layer}.fwd", gf))
        grads.update(prefixed(f"listen{layer}.bwd", gb))
        dh = _unpair_frames(dx, c["T"])
    return grads
