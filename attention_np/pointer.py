"""Pointer attention (Vinyals, Fortunato & Jaitly, 2015, "Pointer Networks"; article §8.3.2):
the attention weights *are* the output.

One decoder step i with state q_i against the encoder states k_1 … k_n of the input:

    u_ij = vᵀ tanh(q_i W_q + k_j W_k)               additive score (Bahdanau; attention_np.scores)
    p(C_i = j | C_1 … C_{i−1}, P) = softmax_j(u_ij)  over the inputs that may be chosen (mask)

Soft attention goes on to average the values, c_i = Σ_j α_ij h_j, and predicts a word from a
fixed vocabulary; a pointer network stops at α: the distribution over the n input positions
*is* the prediction. So the output "vocabulary" is the input itself and grows with it, which
a fixed softmax layer cannot do — sorting, convex hulls, tours.

The mask (True = may be chosen) lets a model rule inputs out, e.g. those already pointed at
when the output is a permutation. Masked inputs get p = 0 and log p = −∞; a row whose inputs
are all masked gets p = 0 everywhere (and log p = −∞).

Shapes: q (B, Tq, Dq), k (B, Tk, Dk), W_q (Dq, A), W_k (Dk, A), v (A,), mask broadcastable to
(B, Tq, Tk) → log p (B, Tq, Tk), p (B, Tq, Tk). The log-probabilities are the output (a
pointer's loss is −log p of the right input), p the weights, as every attention op returns.
"""
from __future__ import annotations

import numpy as np

from attention_np.nn.checks import as_dout, check_mask
from attention_np.scores import additive_score_backward, additive_score_forward


def pointer_attention_forward(q, k, W_q, W_k, v, mask=None):
    """log p_ij = u_ij − log Σ_{j' ∈ mask} exp u_ij',   u_ij = vᵀ tanh(q_i W_q + k_j W_k).

    Returns ``(log_p, p, cache)``: log_p (B, Tq, Tk) (−∞ where masked), p = exp(log_p) the
    pointer distribution over the Tk inputs.
    """
    scores, score_cache = additive_score_forward(q, k, W_q, W_k, v)       # u (B, Tq, Tk)
    mask = check_mask(mask, "mask", scores.shape)
    u = scores if mask is None else np.where(mask, scores, -np.inf)
    m = np.max(u, axis=-1, keepdims=True, initial=-np.inf)                 # (B, Tq, 1)
    m = np.where(np.isfinite(m), m, 0)             # a fully masked row: exp(−∞ − 0) = 0
    e = np.exp(u - m)
    s = np.sum(e, axis=-1, keepdims=True)                                  # (B, Tq, 1)
    log_s = np.log(np.where(s == 0, 1, s))         # a fully masked row: log p = −∞ below
    log_p = np.where(s == 0, -np.inf, u - m - log_s)
    p = e / np.where(s == 0, 1, s)
    return log_p, p, {"scores": score_cache, "p": p, "mask": mask}


def pointer_attention_backward(dlog_p, cache):
    """log p = u − logsumexp(u)  →  du_j = m_j (dlog p_j − p_j Σ_{j'} m_j' dlog p_j'),
    then the additive score's backward. Masked inputs (log p = −∞, a constant) take no
    gradient: their dlog p is ignored. Returns (dq, dk, dW_q, dW_k, dv)."""
    p, mask = cache["p"], cache["mask"]
    dlog_p = as_dout(dlog_p, p.shape, name="dlog_p")
    if mask is not None:
        dlog_p = np.where(mask, dlog_p, 0)
    du = dlog_p - p * np.sum(dlog_p, axis=-1, keepdims=True)     # (B, Tq, Tk); 0 where masked
    return additive_score_backward(du.astype(p.dtype, copy=False), cache["scores"])
