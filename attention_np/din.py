"""Deep Interest Network attention (Zhou et al., 2018): pool a user's behaviour history with
weights that depend on the candidate item.

Activation unit, for behaviour embeddings e_j (B, T, D) and candidate e_a (B, D):

    z_j = [e_j ; e_a ; e_j ⊙ e_a ; e_j − e_a]                         (B, T, 4D)
    u_j = σ(z_j W₁ + b₁)                                             (B, T, H)
    s_j = u_j w₂ + b₂                                                (B, T)

Pooling ("none", the paper's choice, keeps the intensity of interest — weights need not sum
to 1; "softmax" normalises them over the history):

    a_j = s_j ⊙ m_j   or   a = softmax(s, mask),        v_U = Σ_j a_j e_j   (B, D)

With "softmax" this is soft attention with the candidate as the one query
(:func:`attention_np.soft.soft_attention_forward` on the scores s).

The baseline it replaces is the masked mean v_U = Σ_j m_j e_j / Σ_j m_j
(:func:`attention_np.nn.layers.masked_mean_forward`; m = mask, True = real behaviour).
A row with no behaviour gives v_U = 0 and zero gradients.
"""
from __future__ import annotations

import numpy as np

from attention_np.nn.activations import stable_sigmoid
from attention_np.nn.checks import (as_dout, as_float_array, check_mask, check_params,
                                    check_positive_int, check_same_dim)
from attention_np.nn.init import xavier_uniform, zeros
from attention_np.soft import soft_attention_core, soft_attention_backward


def _check_inputs(behaviours, candidate, mask):
    h = as_float_array(behaviours, "behaviours", ndim=3)
    a = as_float_array(candidate, "candidate", ndim=2)
    check_same_dim(h, "behaviours", 0, a, "candidate", 0)
    check_same_dim(h, "behaviours", 2, a, "candidate", 1)
    mask = check_mask(mask, "mask", h.shape[:2])
    mask = np.ones(h.shape[:2], bool) if mask is None else mask
    return h, a.astype(h.dtype, copy=False), mask


def _check_params(params, D: int) -> dict:
    """W1 (4D, H), b1 (H,), w2 (H,), b2 (1,) as float arrays."""
    p = check_params(params, {"W1": (4 * D, None)})
    H = p["W1"].shape[1]
    return p | check_params(params, {"b1": (H,), "w2": (H,), "b2": (1,)})


def init_din_params(D: int, H: int, rng, dtype=np.float64) -> dict:
    """W₁ (4D, H) ~ U(±√(6/(4D+H))), b₁ = 0, w₂ (H,) ~ U(±√(6/(H+1))), b₂ = 0 (shape (1,)):
    Xavier for both layers, w₂ being the (H, 1) matrix of the last one."""
    D, H = check_positive_int(D, "D"), check_positive_int(H, "H")
    return {"W1": xavier_uniform((4 * D, H), rng, dtype), "b1": zeros(H, dtype),
            "w2": xavier_uniform((H, 1), rng, dtype)[:, 0], "b2": zeros(1, dtype)}


def din_activation_forward(behaviours, candidate, params):
    """Activation unit scores s_j = σ([e_j; e_a; e_j⊙e_a; e_j−e_a] W₁ + b₁) w₂ + b₂.

    behaviours (B, T, D), candidate (B, D), params W1 (4D, H), b1 (H,), w2 (H,), b2 (1,)
    → scores (B, T). Returns ``(scores, cache)``.
    """
    h, a, _ = _check_inputs(behaviours, candidate, None)
    return _din_activation(h, a, _check_params(params, h.shape[2]))


def _din_activation(h: np.ndarray, a: np.ndarray, p: dict):
    """:func:`din_activation_forward` on checked input."""
    ab = np.broadcast_to(a[:, None, :], h.shape)                       # (B, T, D)
    z = np.concatenate([h, ab, h * ab, h - ab], axis=-1)               # (B, T, 4D)
    u = stable_sigmoid(z @ p["W1"] + p["b1"]).astype(h.dtype, copy=False)   # (B, T, H)
    scores = u @ p["w2"] + p["b2"][0]                                  # (B, T)
    return scores, {"h": h, "a": a, "z": z, "u": u, "W1": p["W1"], "w2": p["w2"]}


def din_activation_backward(dscores, cache):
    """Undo :func:`din_activation_forward`. Returns ``(dbehaviours, dcandidate, grads)``."""
    h = cache["h"]
    return _din_activation_backward(as_dout(dscores, h.shape[:2], name="dscores"), cache)


def _din_activation_backward(dscores: np.ndarray, cache):
    h, a, z, u, W1, w2 = (cache[k] for k in ("h", "a", "z", "u", "W1", "w2"))
    D = h.shape[2]
    grads = {"w2": np.einsum("bth,bt->h", u, dscores),                # s = u w₂ + b₂
             "b2": np.atleast_1d(dscores.sum()).astype(h.dtype)}
    du = dscores[..., None] * w2 * u * (1 - u)                         # u = σ(z W₁ + b₁)
    grads["W1"] = z.reshape(-1, 4 * D).T @ du.reshape(-1, du.shape[-1])
    grads["b1"] = du.sum(axis=(0, 1))
    dz = du @ W1.T                                                     # (B, T, 4D)
    dz_h, dz_a, dz_prod, dz_diff = np.split(dz, 4, axis=-1)            # z = [h; a; h⊙a; h−a]
    dh = dz_h + dz_prod * a[:, None, :] + dz_diff
    da = (dz_a + dz_prod * h - dz_diff).sum(axis=1)
    return dh, da, grads


def din_attention_forward(behaviours, candidate, params, mask=None, normalize: str = "none"):
    """DIN attention pooling v_U = Σ_j a_j e_j with a_j from the activation unit.

    behaviours (B, T, D), candidate (B, D), mask (B, T) bool (True = real behaviour) or None,
    normalize "none" (a_j = s_j, masked to 0) or "softmax" (a = softmax over the real steps)
    → pooled (B, D), weights a (B, T). Returns ``(pooled, weights, cache)``.
    """
    if normalize not in ("none", "softmax"):
        raise ValueError(f"normalize must be 'none' or 'softmax', got {normalize!r}")
    h, a, mask = _check_inputs(behaviours, candidate, mask)
    scores, act = _din_activation(h, a, _check_params(params, h.shape[2]))
    if normalize == "softmax":                                         # a = softmax(s, mask)
        pooled, weights, soft = soft_attention_core(scores[:, None, :], h, mask[:, None, :], 0.0, None)
        pooled, weights = pooled[:, 0], weights[:, 0]                  # (B, D), (B, T)
    else:                                                              # a_j = s_j m_j
        weights, soft = np.where(mask, scores, 0).astype(h.dtype, copy=False), None
        pooled = np.einsum("bt,btd->bd", weights, h)                   # (B, D)
    return pooled, weights, {"act": act, "soft": soft, "mask": mask, "weights": weights, "h": h}


def din_attention_backward(dpooled, cache, dweights=None):
    """Returns ``(dbehaviours (B, T, D), dcandidate (B, D), grads)`` keyed like the params."""
    h, weights, mask = cache["h"], cache["weights"], cache["mask"]
    dpooled = as_dout(dpooled, (h.shape[0], h.shape[2]), h.dtype, name="dpooled")
    if dweights is not None:
        dweights = as_dout(dweights, weights.shape, name="dweights")
    if cache["soft"] is not None:                                      # a = softmax(s, mask)
        dw = None if dweights is None else dweights[:, None, :]
        dscores, dh_direct = soft_attention_backward(dpooled[:, None, :], cache["soft"], dw)
        dscores = dscores[:, 0]                                        # (B, T)
    else:                                                              # v = Σ_j a_j e_j
        dw = np.einsum("bd,btd->bt", dpooled, h)
        dw = dw if dweights is None else dw + dweights
        dh_direct = weights[..., None] * dpooled[:, None, :]           # (B, T, D)
        dscores = np.where(mask, dw, 0)                                # a_j = s_j m_j
    dh, da, grads = _din_activation_backward(dscores, cache["act"])
    return dh + dh_direct, da, grads
