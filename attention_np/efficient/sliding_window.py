"""Sliding-window (local) attention, optionally with global tokens (Longformer, BigBird).

Query i attends only to the keys within ``window`` positions of it:

    allowed(i, j) = |i − j| ≤ w            (causal: 0 ≤ i − j ≤ w)
    allowed(i, j) = True  if i ∈ G or j ∈ G   (global tokens see, and are seen by, everyone;
                                               with ``causal`` still only j ≤ i)

Two ways to compute it:

* :func:`sliding_window_mask` builds the (T, T) boolean mask for exact attention — O(T²).
* :func:`sliding_window_attention_forward` never forms the (T, T) scores. For each of the
  W = 2w + 1 (causal: w + 1) offsets o it computes one diagonal of the band,
  e_{i, o} = q_i · k_{i+o} / √D, plus |G| columns for the global keys: a compact (T, W + |G|)
  score matrix, softmaxed row by row. Cost O(T · (w + |G|) · D) time and O(T · (w + |G|))
  memory. The |G| global query rows are exact full rows, O(|G| · T · D).
"""
from __future__ import annotations

import numpy as np

from attention_np.core import softmax_core, softmax_backward
from attention_np.nn.checks import check_indices
from attention_np.nn.checks import as_dout, check_positive_int
from attention_np.scores import dot_product_scale
from attention_np.self_attention import sdpa_core, check_qkv, scaled_dot_product_attention_backward


def sliding_window_mask(T: int, window: int, causal: bool = False,
                        global_tokens=None) -> np.ndarray:
    """(T, T) boolean mask, True where query i may attend key j (see the module formula)."""
    T = check_positive_int(T, "T")
    window = check_positive_int(window, "window", minimum=0)
    g = check_indices(global_tokens, "global_tokens", T)
    lag = np.arange(T)[:, None] - np.arange(T)[None, :]             # (T, T): i − j
    mask = np.abs(lag) <= window
    mask[g, :] = True
    mask[:, g] = True
    return mask & (lag >= 0) if causal else mask


def _offsets(window: int, causal: bool) -> np.ndarray:
    return np.arange(-window, 1 if causal else window + 1)           # (W,)


def _compact_mask(T: int, offsets: np.ndarray, g: np.ndarray, causal: bool) -> np.ndarray:
    """(T, W + |G|): which compact scores exist. Band entries that land on a global key are
    dropped (that key has its own column); global query rows are left empty (computed in full)."""
    key = np.arange(T)[:, None] + offsets[None, :]                  # (T, W) key index of each slot
    band = (key >= 0) & (key < T) & ~np.isin(key, g)
    glob = g[None, :] <= np.arange(T)[:, None] if causal else np.ones((T, g.size), bool)
    valid = np.concatenate([band, glob], axis=1)                     # (T, W + |G|)
    valid[g, :] = False
    return valid


def _band(x_pad: np.ndarray, window: int, offset: int, T: int) -> np.ndarray:
    """Rows i + offset of x for i = 0 … T−1, as a view of x padded by ``window`` on each side."""
    return x_pad[..., window + offset: window + offset + T, :]


def _pad(x: np.ndarray, window: int) -> np.ndarray:
    widths = [(0, 0)] * (x.ndim - 2) + [(window, window), (0, 0)]
    return np.pad(x, widths)


def sliding_window_attention_forward(q, k, v, window: int, causal: bool = False,
                                     global_tokens=None):
    """Banded attention: out_i = Σ_{j allowed(i, j)} softmax_j(q_i · k_j / √D) v_j in O(T · w).

    q, k (..., T, D), v (..., T, Dv), window w ≥ 0, global_tokens: positions in [0, T)
    → out (..., T, Dv), weights None (the band is never laid out as a (T, T) matrix), cache.
    Equals exact attention with ``mask=sliding_window_mask(T, w, causal, global_tokens)``.
    """
    q, k, v = check_qkv(q, k, v, same_length=True)
    T = q.shape[-2]
    window = check_positive_int(window, "window", minimum=0)
    g = check_indices(global_tokens, "global_tokens", T)
    scale, offsets = dot_product_scale(q), _offsets(window, causal)
    k_pad, v_pad = _pad(k, window), _pad(v, window)                 # (..., T + 2w, D)
    scores = np.empty(q.shape[:-1] + (offsets.size + g.size,), q.dtype)   # (..., T, W + |G|)
    for c, off in enumerate(offsets):                                # one diagonal per offset
        scores[..., c] = np.sum(q * _band(k_pad, window, off, T), axis=-1) * scale
    k_g, v_g = k[..., g, :], v[..., g, :]                            # (..., |G|, D)
    scores[..., offsets.size:] = (q @ np.swapaxes(k_g, -1, -2)) * scale
    weights, sm_cache = softmax_core(scores, -1, _compact_mask(T, offsets, g, causal))
    out = weights[..., offsets.size:] @ v_g                          # (..., T, Dv)
    for c, off in enumerate(offsets):
        out += weights[..., c, None] * _band(v_pad, window, off, T)
    cache = {"q": q, "k_pad": k_pad, "v_pad": v_pad, "g": g, "offsets": offsets,
             "window": window, "scale": scale, "weights": weights, "softmax": sm_cache}
    if g.size:                                                       # global query rows: full rows
        row_mask = np.arange(T)[None, :] <= g[:, None] if causal else None   # (|G|, T)
        out[..., g, :], _, cache["global_rows"] = sdpa_core(
            q[..., g, :], k, v, mask=row_mask, causal=False, backend="numpy", dropout_p=0.0,
            rng=None)
    return out, None, cache


def sliding_window_attention_backward(dout, cache):
    """Reverse of the banded forward, diagonal by diagonal. Returns (dq, dk, dv)."""
    q, k_pad, v_pad, g = cache["q"], cache["k_pad"], cache["v_pad"], cache["g"]
    offsets, window = cache["offsets"], cache["window"]
    scale, weights = cache["scale"], cache["weights"]
    T, W = q.shape[-2], offsets.size
    dout = as_dout(dout, q.shape[:-1] + v_pad.shape[-1:], q.dtype, name="dout")
    k_g, v_g = _band(k_pad, window, 0, T)[..., g, :], _band(v_pad, window, 0, T)[..., g, :]
    dk_pad, dv_pad = np.zeros_like(k_pad), np.zeros_like(v_pad)
    # forward: out = Σ_c α_c v_{i+o_c} + α_G v_G
    dweights = np.empty_like(weights)
    dweights[..., W:] = dout @ np.swapaxes(v_g, -1, -2)
    for c, off in enumerate(offsets):
        dweights[..., c] = np.sum(dout * _band(v_pad, window, off, T), axis=-1)
        _band(dv_pad, window, off, T)[...] += weights[..., c, None] * dout
    dv_g = np.swapaxes(weights[..., W:], -1, -2) @ dout
    # forward: α = softmax(e),  e_c = s q_i · k_{i+o_c}
    de = softmax_backward(dweights, cache["softmax"]) * scale
    dq = de[..., W:] @ k_g
    dk_g = np.swapaxes(de[..., W:], -1, -2) @ q
    for c, off in enumerate(offsets):
        dq += de[..., c, None] * _band(k_pad, window, off, T)
        _band(dk_pad, window, off, T)[...] += de[..., c, None] * q
    dk, dv = _band(dk_pad, window, 0, T).copy(), _band(dv_pad, window, 0, T).copy()
    dk[..., g, :] += dk_g
    dv[..., g, :] += dv_g
    if g.size:
        dq_g, dk_rows, dv_rows = scaled_dot_product_attention_backward(dout[..., g, :],
                                                                       cache["global_rows"])
        dq[..., g, :] += dq_g
        dk += dk_rows
        dv += dv_rows
    return dq, dk, dv
