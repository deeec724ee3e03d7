"""Soft attention (article §3.1, §4.1): a differentiable weighted average of the values.

    α_ij = exp(e_ij) / Σ_k exp(e_ik)        (softmax over the Tk keys)
    c_i  = Σ_j α_ij h_j                     (context = expected value under α)

The article's §4.1.3 example is one decoder step: three encoder states h = [h_1, h_2, h_3], a
decoder state s_t, e_t = [s_tᵀh_1, s_tᵀh_2, s_tᵀh_3], α_t = softmax(e_t), c_t = α_t · h.
With B = 1, Tq = 1, Tk = 3 that is exactly ``soft_attention_forward(dot_score(s_t, h), h)``.

Attention dropout (as torch applies inside scaled dot-product attention and
``nn.MultiheadAttention``) drops entries of α before they weigh the values:
c = Dropout(α) h, inverted dropout, so E[c] is unchanged. The weights returned are α itself.
"""
from __future__ import annotations

import numpy as np

from attention_np.core import softmax_core, softmax_backward
from attention_np.nn.checks import (as_dout, as_float_array, check_dropout, check_mask,
                                    check_same_dim)
from attention_np.nn.layers import dropout_backward, dropout_forward


def check_scores_values(scores, values, mask):
    """Validate scores (..., Tq, Tk), values (..., Tk, Dv) and a mask broadcastable to scores;
    return them as arrays (the mask broadcast, or None)."""
    scores = as_float_array(scores, "scores", min_ndim=2)
    values = as_float_array(values, "values", min_ndim=2)
    if scores.ndim != values.ndim or scores.shape[:-2] != values.shape[:-2]:
        raise ValueError(f"scores (…, Tq, Tk) and values (…, Tk, Dv) must have the same leading dims, "
                         f"got scores{scores.shape} and values{values.shape}")
    check_same_dim(scores, "scores", -1, values, "values", -2)
    mask = check_mask(mask, "mask", scores.shape)
    return scores, values, mask


def soft_attention_forward(scores, values, mask=None, dropout_p=0.0, rng=None):
    """α = softmax(e) over Tk (masked keys get α = 0), c = Dropout(α) h.

    scores (..., Tq, Tk), values (..., Tk, Dv), mask broadcastable to scores (True = may attend),
    dropout_p in [0, 1) with an ``np.random.Generator`` rng when it is > 0
    → context (..., Tq, Dv), weights α (..., Tq, Tk) (before dropout), cache.
    A query whose keys are all masked gets α = 0 and c = 0 (so does every query when Tk = 0).
    """
    scores, values, mask = check_scores_values(scores, values, mask)
    return soft_attention_core(scores, values, mask, check_dropout(dropout_p, rng), rng)


def soft_attention_core(scores: np.ndarray, values: np.ndarray, mask: np.ndarray | None,
                    dropout_p: float, rng: np.random.Generator | None):
    """:func:`soft_attention_forward` on checked input (a boolean mask that broadcasts to
    scores, or None; dropout_p in [0, 1) with a Generator when > 0)."""
    weights, softmax_cache = softmax_core(scores, -1, mask)                 # α (..., Tq, Tk)
    dropout_cache = None
    attended = weights                                                  # the α that meets h
    if dropout_p > 0:
        attended, dropout_cache = dropout_forward(weights, dropout_p, rng)
    context = attended @ values                                         # (..., Tq, Dv)
    cache = {"attended": attended, "values": values, "softmax": softmax_cache,
             "dropout": dropout_cache}
    return context, weights, cache


def soft_attention_backward(dcontext, cache, dweights=None, return_dweights=False):
    """c = α̃ h, α̃ = Dropout(α)  →  dα̃ = dc hᵀ,  dh = α̃ᵀ dc,  dα = Dropout'(dα̃) (+ dweights);
    then de = softmax_backward(dα).

    ``dweights`` (same shape as α) adds the gradient of any loss placed on the weights, e.g. the
    doubly-stochastic regulariser λ Σ_i (1 − Σ_t α_ti)² of Show, Attend and Tell.
    Returns (dscores, dvalues), or (dscores, dvalues, dα) with ``return_dweights``: dα = ∂L/∂α
    (..., Tq, Tk), the gradient reaching the pre-dropout weights (including ``dweights``).
    """
    attended, values = cache["attended"], cache["values"]
    dcontext = as_dout(dcontext, attended.shape[:-1] + values.shape[-1:], name="dcontext")
    dattended = dcontext @ np.swapaxes(values, -1, -2)                  # (..., Tq, Tk)
    dalpha = dattended if cache["dropout"] is None else dropout_backward(dattended,
                                                                         cache["dropout"])
    if dweights is not None:
        dalpha = dalpha + as_dout(dweights, attended.shape, name="dweights")
    dvalues = np.swapaxes(attended, -1, -2) @ dcontext                  # (..., Tk, Dv)
    dscores = softmax_backward(dalpha, cache["softmax"])
    return (dscores, dvalues, dalpha) if return_dweights else (dscores, dvalues)
