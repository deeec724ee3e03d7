"""Score functions e_ij = score(q_i, k_j): how well query i matches key j.

Shapes: q (B, Tq, Dq), k (B, Tk, Dk) → scores (B, Tq, Tk). Each ``…_backward(dscores, cache)``
returns the gradients of the forward's inputs as a tuple in argument order.

Row vectors, as everywhere in the library (q_i is row i of q):

| name        | formula                              | from                     |
|-------------|--------------------------------------|--------------------------|
| dot         | e_ij = q_i k_jᵀ                      | the article's s_tᵀ h_j   |
| scaled_dot  | e_ij = q_i k_jᵀ / √D                 | Vaswani et al. 2017      |
| general     | e_ij = q_i W k_jᵀ,  W (Dq, Dk)       | Luong et al. 2015        |
| additive    | e_ij = vᵀ tanh(q_i W_q + k_j W_k)    | Bahdanau et al. 2015     |
"""
from __future__ import annotations

import numpy as np

from attention_np.nn.checks import (as_dout, as_float_array, check_nonempty, check_same_dim,
                                    check_shape)


def _check_qk(q, k, same_dim: bool):
    q = as_float_array(q, "q", ndim=3)
    k = as_float_array(k, "k", ndim=3)
    check_same_dim(q, "q", 0, k, "k", 0)
    if same_dim:
        check_same_dim(q, "q", 2, k, "k", 2)
    return q, k


def _dscores(dscores, cache) -> np.ndarray:
    """The upstream gradient, checked to have the scores' shape (B, Tq, Tk)."""
    q, k = cache["q"], cache["k"]
    return as_dout(dscores, q.shape[:2] + k.shape[1:2], name="dscores")


def dot_product_scale(q: np.ndarray):
    """s = 1/√D in q's dtype, the scale of scaled dot-product scores (D = q.shape[-1])."""
    return q.dtype.type(1.0 / np.sqrt(q.shape[-1]))


def _swap(x: np.ndarray) -> np.ndarray:
    """(…, A, B) → (…, B, A)"""
    return np.swapaxes(x, -1, -2)


def _sum_outer(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Σ_{b,t} a_bt ⊗ b_bt for a (B, T, I), b (B, T, J) → (I, J), as one BLAS matmul."""
    return a.reshape(-1, a.shape[-1]).T @ b.reshape(-1, b.shape[-1])


def dot_score_forward(q, k):
    """e_ij = q_iᵀ k_j.   q (B, Tq, D), k (B, Tk, D) → e (B, Tq, Tk)."""
    q, k = _check_qk(q, k, same_dim=True)
    return q @ _swap(k), {"q": q, "k": k}


def dot_score_backward(dscores, cache):
    """e = q kᵀ  →  dq = de k,  dk = deᵀ q."""
    return _dot_backward(_dscores(dscores, cache), cache)


def _dot_backward(dscores: np.ndarray, cache):
    return dscores @ cache["k"], _swap(dscores) @ cache["q"]


def scaled_dot_score_forward(q, k):
    """e_ij = q_iᵀ k_j / √D.   q (B, Tq, D), k (B, Tk, D), D ≥ 1 → e (B, Tq, Tk)."""
    q, k = _check_qk(q, k, same_dim=True)
    check_nonempty(q, "q", -1, "feature dimension D (the scale is 1/√D)")
    scale = dot_product_scale(q)
    return (q @ _swap(k)) * scale, {"q": q, "k": k, "scale": scale}


def scaled_dot_score_backward(dscores, cache):
    """e = s·q kᵀ  →  dq = s·de k,  dk = s·deᵀ q."""
    return _dot_backward(_dscores(dscores, cache) * cache["scale"], cache)


def general_score_forward(q, k, W):
    """e_ij = q_iᵀ W k_j.   q (B, Tq, Dq), k (B, Tk, Dk), W (Dq, Dk) → e (B, Tq, Tk)."""
    q, k = _check_qk(q, k, same_dim=False)
    W = as_float_array(W, "W", ndim=2)
    check_shape(W, "W", (q.shape[2], k.shape[2]))
    qW = q @ W                                                   # (B, Tq, Dk)
    return qW @ _swap(k), {"q": q, "k": k, "W": W, "qW": qW}


def general_score_backward(dscores, cache):
    """e = (qW) kᵀ  →  d(qW) = de k,  dk = deᵀ (qW),  dq = d(qW) Wᵀ,  dW = Σ_b qᵀ d(qW)."""
    q, k, W, qW = cache["q"], cache["k"], cache["W"], cache["qW"]
    dscores = _dscores(dscores, cache)
    dqW = dscores @ k                                            # (B, Tq, Dk)
    dk = _swap(dscores) @ qW                                     # (B, Tk, Dk)
    dq = dqW @ W.T                                               # (B, Tq, Dq)
    dW = _sum_outer(q, dqW)                                      # (Dq, Dk)
    return dq, dk, dW


def additive_score_forward(q, k, W_q, W_k, v):
    """Bahdanau: e_ij = vᵀ tanh(q_i W_q + k_j W_k).

    q (B, Tq, Dq), k (B, Tk, Dk), W_q (Dq, A), W_k (Dk, A), v (A,) → e (B, Tq, Tk).
    Memory is O(B·Tq·Tk·A): the (B, Tq, Tk, A) tanh activations are kept for the backward.
    """
    q, k = _check_qk(q, k, same_dim=False)
    W_q = as_float_array(W_q, "W_q", ndim=2)
    W_k = as_float_array(W_k, "W_k", ndim=2)
    v = as_float_array(v, "v", ndim=1)
    check_shape(W_q, "W_q", (q.shape[2], None))
    check_shape(W_k, "W_k", (k.shape[2], W_q.shape[1]))
    check_shape(v, "v", (W_q.shape[1],))
    qa = q @ W_q                                                 # (B, Tq, A)
    ka = k @ W_k                                                 # (B, Tk, A)
    h = np.tanh(qa[:, :, None, :] + ka[:, None, :, :])           # (B, Tq, Tk, A)
    scores = h @ v                                               # (B, Tq, Tk)
    return scores, {"q": q, "k": k, "W_q": W_q, "W_k": W_k, "v": v, "h": h}


def additive_score_backward(dscores, cache):
    """Walks the forward backwards: e = h v,  h = tanh(a),  a_ij = qa_i + ka_j.

    dv = Σ h ⊙ de,  da = (de ⊗ v) ⊙ (1 − h²),  dqa = Σ_j da,  dka = Σ_i da,
    dq = dqa W_qᵀ, dW_q = Σ qᵀ dqa, dk = dka W_kᵀ, dW_k = Σ kᵀ dka.
    Returns (dq, dk, dW_q, dW_k, dv).
    """
    q, k, W_q, W_k, v, h = (cache[n] for n in ("q", "k", "W_q", "W_k", "v", "h"))
    dscores = _dscores(dscores, cache)
    dv = np.tensordot(h, dscores, axes=([0, 1, 2], [0, 1, 2]))  # (A,)
    da = dscores[..., None] * v * (1 - h * h)                    # (B, Tq, Tk, A)
    dqa = da.sum(axis=2)                                         # (B, Tq, A)
    dka = da.sum(axis=1)                                         # (B, Tk, A)
    dq, dW_q = dqa @ W_q.T, _sum_outer(q, dqa)                   # (B, Tq, Dq), (Dq, A)
    dk, dW_k = dka @ W_k.T, _sum_outer(k, dka)                   # (B, Tk, Dk), (Dk, A)
    return dq, dk, dW_q, dW_k, dv
