"""Soft attention (article §3.1, §4.1): a differentiable weighted average of the values.

    α_ij = exp(e_ij) / Σ_k exp(e_ik)        (softmax over the Tk keys)
    c_i  = Σ_j α_ij h_j                     (context = expected value under α)

The article's §4.1.3 example is one decoder step: three encoder states h = [h_1, h_2, h_3], a
decoder state s_t, e_t = [s_tᵀh_1, s_tᵀh_2, s_tᵀh_3], α_t = softmax(e_t), c_t = α_t · h.
With B = 1, Tq = 1, Tk = 3 that is exactly ``soft_attention_forward(dot_score(s_t, h), h)``.
"""
from __future__ import annotations

import numpy as np

from attention_np.nn.checks import as_float_array, check_mask, check_same_dim
from attention_np.core import softmax_backward, softmax_forward


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


def soft_attention_forward(scores, values, mask=None):
    """α = softmax(e) over Tk (masked keys get α = 0), c = α h.

    scores (..., Tq, Tk), values (..., Tk, Dv), mask broadcastable to scores (True = may attend)
    → context (..., Tq, Dv), weights α (..., Tq, Tk).
    A query whose keys are all masked gets α = 0 and c = 0.
    """
    scores, values, mask = check_scores_values(scores, values, mask)
    weights, softmax_cache = softmax_forward(scores, axis=-1, mask=mask)   # (..., Tq, Tk)
    context = weights @ values                                          # (..., Tq, Dv)
    cache = {"weights": weights, "values": values, "softmax": softmax_cache}
    return context, weights, cache


def soft_attention_backward(dcontext, cache, dweights=None):
    """c = α h  →  dα = dc hᵀ (+ dweights),  dh = αᵀ dc;  then de = softmax_backward(dα).

    ``dweights`` (same shape as α) adds the gradient of any loss placed on the weights, e.g. the
    doubly-stochastic regulariser λ Σ_i (1 − Σ_t α_ti)² of Show, Attend and Tell.
    Returns (dscores, dvalues).
    """
    weights, values = cache["weights"], cache["values"]
    dweights_total = dcontext @ np.swapaxes(values, -1, -2)              # (..., Tq, Tk)
    if dweights is not None:
        dweights_total = dweights_total + dweights
    dvalues = np.swapaxes(weights, -1, -2) @ dcontext                    # (..., Tk, Dv)
    dscores = softmax_backward(dweights_total, cache["softmax"])
    return dscores, dvalues
