"""Exercises 4–5: the backward passes of the dot and the additive (Bahdanau) score."""
from __future__ import annotations

import numpy as np

from attention_np.exercises.data import dims, label, randn, shape_text, upcast
from attention_np.exercises.spec import Case, Exercise, FiniteDiff
from attention_np.scores import (additive_score_backward, additive_score_forward,
                                 dot_score_backward, dot_score_forward)

DTYPES = (np.float64, np.float32, np.float64, np.float32)


def _dot_cases(rng):
    cases = []
    for dtype in DTYPES:
        B, Tq, Tk, D = dims(rng, 4)
        q, k = randn(rng, (B, Tq, D), dtype), randn(rng, (B, Tk, D), dtype)
        scores, cache = dot_score_forward(q, k)
        dscores = randn(rng, scores.shape, dtype)
        dq, dk = dot_score_backward(dscores, cache)
        fd = FiniteDiff(lambda q, k: dot_score_forward(q, k)[0], upcast(q=q, k=k),
                        dscores.astype(np.float64), {"dq": "q", "dk": "k"})
        cases.append(Case(label(dtype, shape_text(q=q, k=k)), (dscores, cache),
                          {"dq": dq, "dk": dk}, dtype=dtype, fd=fd))
    return cases


def _additive_cases(rng):
    cases = []
    for dtype in DTYPES:
        B, Tq, Tk, Dq, Dk, A = dims(rng, 6, 2, 8)
        q, k = randn(rng, (B, Tq, Dq), dtype), randn(rng, (B, Tk, Dk), dtype)
        W_q, W_k, v = (randn(rng, s, dtype, 0.7) for s in ((Dq, A), (Dk, A), (A,)))
        scores, cache = additive_score_forward(q, k, W_q, W_k, v)
        dscores = randn(rng, scores.shape, dtype)
        names = ("dq", "dk", "dW_q", "dW_k", "dv")
        fd = FiniteDiff(lambda **a: additive_score_forward(**a)[0],
                        upcast(q=q, k=k, W_q=W_q, W_k=W_k, v=v), dscores.astype(np.float64),
                        dict(zip(names, ("q", "k", "W_q", "W_k", "v"))))
        cases.append(Case(label(dtype, shape_text(q=q, k=k, W_q=W_q, W_k=W_k)),
                          (dscores, cache),
                          dict(zip(names, additive_score_backward(dscores, cache))),
                          dtype=dtype, fd=fd))
    return cases


EXERCISES = [
    Exercise(
        name="dot_score_backward", title="the dot-product score's backward", section="§4.1.3",
        signature="dot_score_backward(dscores, cache)", outputs=("dq", "dk"),
        make_cases=_dot_cases, solution="attention_np.scores.dot_score_backward",
        cache_from="dot_score_forward(q, k)",
        cache_fields=(("q", "the queries, (B, Tq, D)"), ("k", "the keys, (B, Tk, D)")),
        doc="""Forward: e = q kᵀ, that is e_ij = q_iᵀ k_j

dscores (B, Tq, Tk) = ∂L/∂e → dq (B, Tq, D), dk (B, Tk, D).""",
        task="""The simplest score, e_ij = q_iᵀ k_j (the article's s_tᵀ h_j), is one batched
matrix product e = q kᵀ. Given dscores = ∂L/∂e, return the gradients of q and of k. Tq and Tk
differ, so a transposed product has the wrong shape.""",
        hints=("e_ij = Σ_d q_id k_jd: ∂e_ij/∂q_id = k_jd, so dq_id = Σ_j de_ij k_jd.",
               "The transpose of a batch of matrices swaps the last two axes only: "
               "np.swapaxes(x, -1, -2), not x.T (which reverses every axis).",
               "Return (dq, dk) in that order.")),
    Exercise(
        name="additive_score_backward", title="the additive (Bahdanau) score's backward",
        section="§4.1.3", signature="additive_score_backward(dscores, cache)",
        outputs=("dq", "dk", "dW_q", "dW_k", "dv"), make_cases=_additive_cases,
        solution="attention_np.scores.additive_score_backward",
        cache_from="additive_score_forward(q, k, W_q, W_k, v)",
        cache_fields=(("q", "the queries, (B, Tq, Dq)"), ("k", "the keys, (B, Tk, Dk)"),
                      ("W_q", "(Dq, A)"), ("W_k", "(Dk, A)"), ("v", "(A,)"),
                      ("h", "tanh(q_i W_q + k_j W_k) for every pair, (B, Tq, Tk, A)")),
        doc="""Forward: e_ij = vᵀ h_ij,   h_ij = tanh(q_i W_q + k_j W_k)

dscores (B, Tq, Tk) → dq (B, Tq, Dq), dk (B, Tk, Dk), dW_q (Dq, A), dW_k (Dk, A), dv (A,).""",
        task="""Bahdanau's score runs a one-layer network on every (query, key) pair:
e_ij = vᵀ tanh(q_i W_q + k_j W_k). Walk the forward backwards — e = h v, h = tanh(a),
a_ij = q_i W_q + k_j W_k — and return the gradients of q, k, W_q, W_k and v. The cache keeps
the tanh activations h of every pair.""",
        hints=("tanh'(a) = 1 − tanh(a)² = 1 − h², and h is in the cache.",
               "da = de[..., None] * v * (1 − h²) has shape (B, Tq, Tk, A). The query part "
               "q_i W_q is shared by every key j: sum da over the key axis to get its "
               "gradient, and over the query axis for the key part.",
               "W_q is used by every batch row and query: dW_q sums over both "
               "(flatten to (B·Tq, Dq) and (B·Tq, A), then one matrix product).")),
]
