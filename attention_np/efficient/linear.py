"""Linear (kernelised) attention (Katharopoulos et al., 2020, "Transformers are RNNs").

Replace exp(q · k) by a kernel φ(q) · φ(k) with a positive feature map, here φ(x) = elu(x) + 1.
Then the T × T weights never need to exist, by associativity:

    out_i = Σ_j (φ(q_i) · φ(k_j)) v_j / Σ_j φ(q_i) · φ(k_j)
          = φ(q_i) (Σ_j φ(k_j) v_jᵀ) / φ(q_i) · (Σ_j φ(k_j))          — O(T · D · Dv)

With ``causal`` the sums run over j ≤ i: prefix sums S_i = Σ_{j≤i} φ(k_j) v_jᵀ, i.e. an RNN
whose state is the (D, Dv) matrix S. Here it is computed in chunks of C rows: a masked C × C
product inside the chunk plus the state carried from earlier chunks, O(T · (C + Dv) · D).

Numerator and denominator are one product: with v⁺ = [v, 1] (a column of ones appended),
N = A v⁺ where A = φ(Q) φ(K)ᵀ (lower-triangular part when causal). The backward reuses the
same product three times, with the roles of its arguments permuted (see the backward).
"""
from __future__ import annotations

import numpy as np

from attention_np.nn.checks import as_dout, as_float_array, check_attention_inputs, check_same_dim
from attention_np.self_attention import check_qkv

CHUNK = 64


def elu_feature_map_forward(x):
    """φ(x) = elu(x) + 1 = x + 1 (x > 0), eˣ (x ≤ 0): positive, so the weights stay ≥ 0.

    x (...) → φ (...)."""
    return _elu_feature_map(as_float_array(x, "x"))


def _elu_feature_map(x: np.ndarray):
    positive = x > 0
    phi = np.where(positive, x + 1, np.exp(np.minimum(x, 0))).astype(x.dtype, copy=False)
    return phi, {"positive": positive, "phi": phi}


def elu_feature_map_backward(dphi, cache):
    """dφ/dx = 1 (x > 0), eˣ = φ (x ≤ 0)."""
    return _elu_feature_map_backward(as_dout(dphi, cache["phi"].shape, name="dphi"), cache)


def _elu_feature_map_backward(dphi: np.ndarray, cache):
    return np.where(cache["positive"], dphi, dphi * cache["phi"])


def _product(a, b, c, causal: bool, reverse: bool = False, chunk: int = CHUNK):
    """M c with M = a bᵀ;  causal: M lower-triangular (j ≤ i), ``reverse``: upper (j ≥ i).

    a (..., Ta, Dk), b (..., Tb, Dk), c (..., Tb, Dc) → (..., Ta, Dc), never forming M whole.
    """
    if not causal:
        return a @ (np.swapaxes(b, -1, -2) @ c)                        # (Dk, Dc) state
    if reverse:                                                      # Σ_{j ≥ i}: flip time
        return _product(a[..., ::-1, :], b[..., ::-1, :], c[..., ::-1, :], True)[..., ::-1, :]
    T = a.shape[-2]
    out = np.empty(a.shape[:-1] + c.shape[-1:], dtype=c.dtype)
    state = np.zeros(a.shape[:-2] + (a.shape[-1], c.shape[-1]), dtype=c.dtype)   # Σ b_j c_jᵀ
    tri = np.tril(np.ones((chunk, chunk), dtype=bool))
    for s in range(0, T, chunk):
        e = min(s + chunk, T)
        a_c, b_c, c_c = a[..., s:e, :], b[..., s:e, :], c[..., s:e, :]
        inner = np.where(tri[:e - s, :e - s], a_c @ np.swapaxes(b_c, -1, -2), 0)  # (..., C, C)
        out[..., s:e, :] = inner @ c_c + a_c @ state
        state += np.swapaxes(b_c, -1, -2) @ c_c
    return out


def kernelized_attention_forward(phi_q, phi_k, v, causal: bool = False, eps: float = 1e-6):
    """out_i = φq_i S / (φq_i · z + ε),  S = Σ_j φk_j v_jᵀ,  z = Σ_j φk_j  (j ≤ i if causal).

    phi_q (..., Tq, F), phi_k (..., Tk, F), v (..., Tk, Dv), features ≥ 0; ``causal`` needs
    Tq = Tk → out (..., Tq, Dv). The building block of linear attention and of the Performer.
    """
    phi_q, phi_k, v = check_attention_inputs(phi_q, phi_k, v, ("phi_q", "phi_k", "v"))
    if causal:
        check_same_dim(phi_q, "phi_q", -2, phi_k, "phi_k", -2)
    return _kernelized_attention(phi_q, phi_k, v, causal, eps)


def _kernelized_attention(phi_q, phi_k, v, causal: bool, eps: float):
    """:func:`kernelized_attention_forward` on checked input."""
    ones = np.ones(v.shape[:-1] + (1,), dtype=v.dtype)
    v1 = np.concatenate([v, ones], axis=-1)                          # (..., Tk, Dv + 1) = [v, 1]
    n = _product(phi_q, phi_k, v1, causal)                           # (..., Tq, Dv + 1)
    den = n[..., -1:] + eps                                          # (..., Tq, 1)
    out = n[..., :-1] / den
    cache = {"phi_q": phi_q, "phi_k": phi_k, "v1": v1, "out": out, "den": den, "causal": causal}
    return out, cache


def kernelized_attention_backward(dout, cache):
    """Returns (dφq, dφk, dv). With N = A v⁺ (A = φq φkᵀ, masked when causal) and dN:

        dφq = (dN v⁺ᵀ ∘ mask) φk,   dφk = (v⁺ dNᵀ ∘ maskᵀ) φq,   dv⁺ = (φk φqᵀ ∘ maskᵀ) dN

    — each is the forward's product again, the transposed ones running backwards in time.
    """
    phi_q, phi_k, v1, out, den, causal = (cache[n] for n in
                                          ("phi_q", "phi_k", "v1", "out", "den", "causal"))
    dout = as_dout(dout, out.shape, out.dtype, name="dout")
    # forward: out = num / den  →  dnum = dout / den,  dden = −Σ dout ⊙ out / den
    dn = np.concatenate([dout, -np.sum(dout * out, axis=-1, keepdims=True)], axis=-1) / den
    dphi_q = _product(dn, v1, phi_k, causal)
    dphi_k = _product(v1, dn, phi_q, causal, reverse=True)
    dv1 = _product(phi_k, phi_q, dn, causal, reverse=True)
    return dphi_q, dphi_k, dv1[..., :-1]


def featurized_attention_forward(q, k, v, feature_q, feature_k, causal: bool, eps: float):
    """φ's forward on q and on k, then kernelised attention (shared with the Performer).

    feature_q(q) -> (φ(q), cache), feature_k(k) -> (φ(k), cache).
    """
    phi_q, cache_q = feature_q(q)
    phi_k, cache_k = feature_k(k)
    out, cache = _kernelized_attention(phi_q, phi_k, v, causal, eps)
    return out, None, {"q": cache_q, "k": cache_k, "attn": cache}


def featurized_attention_backward(dout, cache, feature_backward):
    """Kernelised-attention backward, then φ's backward on each side. Returns (dq, dk, dv)."""
    dphi_q, dphi_k, dv = kernelized_attention_backward(dout, cache["attn"])
    return (feature_backward(dphi_q, cache["q"]), feature_backward(dphi_k, cache["k"]), dv)


def linear_attention_forward(q, k, v, causal: bool = False, eps: float = 1e-6):
    """Linear attention with φ(x) = elu(x) + 1 (see the module docstring), O(T).

    q (..., Tq, D), k (..., Tk, D), v (..., Tk, Dv); ``causal`` needs Tq = Tk
    → out (..., Tq, Dv), weights None, cache.
    """
    q, k, v = check_qkv(q, k, v, same_length=causal)
    return featurized_attention_forward(q, k, v, _elu_feature_map, _elu_feature_map, causal, eps)


def linear_attention_backward(dout, cache):
    """Returns (dq, dk, dv)."""
    return featurized_attention_backward(dout, cache, _elu_feature_map_backward)
