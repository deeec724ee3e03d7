"""The attention layers a recurrent decoder can use (Luong et al., 2015, §3.1–3.2).

    score(s_t, h_j) = s_tᵀ h_j                    dot
                    = s_tᵀ W h_j                  general
                    = vᵀ tanh(s_t W_q + h_j W_k)  concat (= Bahdanau's additive score)
    α_t = softmax_j score(s_t, h_j),   c_t = Σ_j α_tj h_j

Local-p (Luong §3.2) predicts an aligned position and keeps a Gaussian window around it:

    p_t = S · σ(v_pᵀ tanh(s_t W_p)),   S = source length − 1
    α_tj = softmax_{|j − p_t| ≤ D}(s_tᵀ W h_j) · exp(−(j − p_t)² / 2σ²),   σ = D / 2

Shapes: queries s (B, Tq, Hq), keys h (B, Tk, Hk), key mask (B, Tk) → context (B, Tq, Hk),
weights α (B, Tq, Tk). ``params`` holds only this layer's entries.
"""
from __future__ import annotations

import numpy as np

from attention_np.core import softmax_backward, softmax_forward
from attention_np.scores import (additive_score_backward, additive_score_forward,
                                 dot_score_backward, dot_score_forward,
                                 general_score_backward, general_score_forward)
from attention_np.nn.activations import stable_sigmoid
from attention_np.nn.init import uniform_fan_in
from attention_np.soft import soft_attention_backward, soft_attention_forward

KINDS = ("dot", "general", "concat", "local")


def init_attention(kind: str, Hq: int, Hk: int, A: int, rng, dtype) -> dict:
    """The layer's weights, U(±1/√fan_in) each (torch's ``nn.Linear`` default); dot has none."""
    if kind == "dot":
        return {}
    if kind == "concat":
        return {"W_q": uniform_fan_in((Hq, A), rng, dtype=dtype),
                "W_k": uniform_fan_in((Hk, A), rng, dtype=dtype),
                "v": uniform_fan_in((A,), rng, dtype=dtype)}
    p = {"W": uniform_fan_in((Hq, Hk), rng, dtype=dtype)}
    if kind == "local":
        p.update({"W_p": uniform_fan_in((Hq, A), rng, dtype=dtype),
                  "v_p": uniform_fan_in((A,), rng, dtype=dtype)})
    return p


def _scores_forward(kind, params, q, k):
    if kind == "dot":
        return dot_score_forward(q, k)
    if kind == "concat":
        return additive_score_forward(q, k, params["W_q"], params["W_k"], params["v"])
    return general_score_forward(q, k, params["W"])


def _scores_backward(kind, dscores, cache):
    """Returns (dq, dk, grads)."""
    if kind == "dot":
        dq, dk = dot_score_backward(dscores, cache)
        return dq, dk, {}
    if kind == "concat":
        dq, dk, dW_q, dW_k, dv = additive_score_backward(dscores, cache)
        return dq, dk, {"W_q": dW_q, "W_k": dW_k, "v": dv}
    dq, dk, dW = general_score_backward(dscores, cache)
    return dq, dk, {"W": dW}


def _local_window(params, q, key_mask, lengths, D):
    """p_t (B, Tq), the Gaussian g (B, Tq, Tk) and the window mask."""
    t = np.tanh(q @ params["W_p"])                                  # (B, Tq, A)
    u = t @ params["v_p"]                                           # (B, Tq)
    sig = stable_sigmoid(u)
    S = (lengths - 1).astype(q.dtype)[:, None]                      # (B, 1)
    p = S * sig                                                     # (B, Tq)
    j = np.arange(key_mask.shape[1], dtype=q.dtype)
    dist = j[None, None, :] - p[..., None]                          # (B, Tq, Tk)
    sigma2 = (D / 2.0) ** 2
    g = np.exp(-dist ** 2 / (2 * sigma2))
    window = (np.abs(dist) <= D) & key_mask[:, None, :]
    return p, g, window, {"t": t, "sig": sig, "S": S, "dist": dist, "sigma2": sigma2}


def attention_forward(kind, params, q, k, key_mask, local_window: int = 4):
    """Context and weights of one of :data:`KINDS` (module docstring). Returns (c, α, cache)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    scores, score_cache = _scores_forward(kind, params, q, k)           # (B, Tq, Tk)
    cache = {"kind": kind, "score": score_cache}
    if kind != "local":
        context, weights, cache["soft"] = soft_attention_forward(scores, k, key_mask[:, None, :])
        return context, weights, cache
    lengths = key_mask.sum(axis=1)
    p, g, window, cache["local"] = _local_window(params, q, key_mask, lengths,
                                                 local_window)
    align, cache["softmax"] = softmax_forward(scores, mask=window)     # (B, Tq, Tk)
    weights = (align * g).astype(q.dtype)
    context = weights @ k                                              # (B, Tq, Hk)
    cache.update({"align": align, "g": g, "weights": weights, "k": k, "q": q, "p": p,
                  "W_p": params["W_p"], "v_p": params["v_p"]})
    return context, weights, cache


def _local_backward(dcontext, cache):
    """Undo α = align ⊙ g, g = exp(−(j − p)² / 2σ²), p = S σ(u), u = v_pᵀ tanh(q W_p)."""
    lc, k = cache["local"], cache["k"]
    dweights = dcontext @ np.swapaxes(k, -1, -2)                        # (B, Tq, Tk)
    dk = np.swapaxes(cache["weights"], -1, -2) @ dcontext               # (B, Tk, Hk)
    dalign = dweights * cache["g"]
    dg = dweights * cache["align"]
    dp = np.sum(dg * cache["g"] * lc["dist"], axis=-1) / lc["sigma2"]   # ∂g/∂p = g (j − p)/σ²
    du = dp * lc["S"] * lc["sig"] * (1 - lc["sig"])                     # (B, Tq)
    dt = du[..., None] * cache["v_p"]                                   # (B, Tq, A)
    dpre = dt * (1 - lc["t"] ** 2)
    q2 = cache["q"].reshape(-1, cache["q"].shape[-1])
    grads = {"v_p": np.einsum("bta,bt->a", lc["t"], du),
             "W_p": q2.T @ dpre.reshape(-1, dpre.shape[-1])}
    dscores = softmax_backward(dalign, cache["softmax"])
    return dscores, dk, dpre @ cache["W_p"].T, grads


def bahdanau_step_forward(params, q, kp, keys, key_mask):
    """One decoder step of Bahdanau's additive attention with the keys projected once.

        e_j = vᵀ tanh(q W_q + kp_j),   α = softmax(e),   c = Σ_j α_j h_j,
        kp = h W_k computed once per sentence (Bahdanau et al., Appendix A.1.2: "Since U_a h_j
        does not depend on i, we can pre-compute it in advance")

    q (B, Hq), kp (B, Tk, A), keys (B, Tk, Hk) → c (B, Hk), α (B, Tk), cache.
    """
    a = np.tanh((q @ params["W_q"])[:, None, :] + kp)                  # (B, Tk, A)
    scores = (a @ params["v"])[:, None, :]                             # (B, 1, Tk)
    context, weights, soft_cache = soft_attention_forward(scores, keys, key_mask[:, None, :])
    cache = {"a": a, "q": q, "soft": soft_cache, "W_q": params["W_q"], "v": params["v"]}
    return context[:, 0], weights[:, 0], cache


def bahdanau_step_backward(dcontext, cache):
    """Returns (dq, dkp, dkeys, grads {W_q, v}); the caller back-propagates dkp through W_k."""
    a, q, v = cache["a"], cache["q"], cache["v"]
    dscores, dkeys = soft_attention_backward(dcontext[:, None], cache["soft"])
    de = dscores[:, 0]                                                 # (B, Tk)
    dv = np.einsum("bja,bj->a", a, de, optimize=True)
    dkp = de[..., None] * v * (1 - a * a)                              # (B, Tk, A)
    dqa = dkp.sum(axis=1)                                              # (B, A)
    return dqa @ cache["W_q"].T, dkp, dkeys, {"W_q": q.T @ dqa, "v": dv}


def attention_backward(dcontext, cache):
    """Returns (dq, dk, grads) with grads keyed like the layer's params."""
    kind = cache["kind"]
    if kind != "local":
        dscores, dk_values = soft_attention_backward(dcontext, cache["soft"])
        dq, dk, grads = _scores_backward(kind, dscores, cache["score"])
        return dq, dk + dk_values, grads
    dscores, dk_values, dq_pos, grads = _local_backward(dcontext, cache)
    dq, dk, score_grads = _scores_backward(kind, dscores, cache["score"])
    grads.update(score_grads)
    return dq + dq_pos, dk + dk_values, grads
