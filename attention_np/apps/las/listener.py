"""The listener of Listen, Attend and Spell (Chan et al., 2016): a pyramidal bidirectional LSTM.

    x (B, T, F) ──stack 2 frames──▶ (B, T/2, 2F) ──BiLSTM──▶ (B, T/2, 2H)
                ──concat pairs───▶ (B, T/4, 4H) ──BiLSTM──▶ h (B, T/4, 2H)

Each pyramid step halves the time resolution (×4 overall), so attention has 4× fewer frames
to look at and the LSTM's gradient crosses 4× fewer steps. Padded frames are masked throughout.
"""
from __future__ import annotations

import numpy as np

from attention_np.nn.recurrent import bidirectional_backward, bidirectional_forward, init_recurrent_params


def init_listener(F: int, H: int, rng, dtype=np.float32, layers: int = 2) -> dict:
    """Layer l reads 2·F (l = 0) or 4·H (the pair of the previous layer's 2H outputs)."""
    p = {}
    for layer in range(layers):
        d_in = 2 * F if layer == 0 else 4 * H
        for direction in ("fwd", "bwd"):
            for k, v in init_recurrent_params("lstm", d_in, H, rng, dtype).items():
                p[f"listen{layer}.{direction}.{k}"] = v
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


def _layer(params, layer):
    get = (lambda d: {k.split(".")[-1]: v for k, v in params.items()
                      if k.startswith(f"listen{layer}.{d}.")})
    return get("fwd"), get("bwd")


def listener_forward(params, x, mask):
    """x (B, T, F) features, mask (B, T) bool → h (B, ⌈T/2^L⌉, 2H), mask of h, cache."""
    n_layers = len({k.split(".")[0] for k in params if k.startswith("listen")})
    caches = []
    for layer in range(n_layers):
        x, mask, T = _pair_frames(x, mask)
        pf, pb = _layer(params, layer)
        x, _, c = bidirectional_forward("lstm", x, pf, pb, mask)
        caches.append((c, T))
    return x, mask, caches


def listener_backward(dh, caches) -> dict:
    """Backprop through the pyramid; returns the gradients keyed like the params."""
    grads = {}
    for layer in reversed(range(len(caches))):
        c, T = caches[layer]
        dx, gf, gb = bidirectional_backward(dh, c)
        grads.update({f"listen{layer}.fwd.{k}": v for k, v in gf.items()})
        grads.update({f"listen{layer}.bwd.{k}": v for k, v in gb.items()})
        dh = _unpair_frames(dx, T)
    return grads
