"""Linformer (Wang et al., 2020): low-rank projection of keys and values along the sequence.

The (T, T) attention matrix of a trained model is close to low rank, so project the T keys and
values to r ≪ T "summary" rows with learned matrices E, F of shape (r, T):

    K' = E K (r, D),   V' = F V (r, Dv),   out = softmax(Q K'ᵀ / √D) V'      — O(T · r · D)

E and F are parameters (initialised N(0, 1/r), a Johnson–Lindenstrauss projection), so the
backward also returns their gradients. The sequence length is fixed by E's shape.
"""
from __future__ import annotations

import numpy as np

from attention_np.nn.checks import check_nonempty, check_params, check_positive_int
from attention_np.self_attention import sdpa_core, check_qkv, scaled_dot_product_attention_backward


def init_linformer_projections(rank: int, T: int, rng: np.random.Generator,
                               dtype=np.float64) -> dict:
    """{"E": (r, T), "F": (r, T)} with entries N(0, 1/r)."""
    r = check_positive_int(rank, "rank")
    T = check_positive_int(T, "T")
    return {n: (rng.standard_normal((r, T)) / np.sqrt(r)).astype(dtype) for n in "EF"}


def mean_pool_projections(rank: int, T: int, dtype=np.float64) -> dict:
    """E = F = segment means: row a averages the keys of the a-th of ``rank`` contiguous segments.

    An untrained choice that *does* approximate attention (each summary key/value is a local
    average, as Nyström landmarks are); random E, F only make sense once trained.
    """
    r, T = check_positive_int(rank, "rank"), check_positive_int(T, "T")
    if r > T:
        raise ValueError(f"rank ({r}) must be at most T ({T})")
    segment = np.arange(T) * r // T                                  # (T,) segment of each row
    P = (segment[None, :] == np.arange(r)[:, None]).astype(dtype)    # (r, T) one-hot
    P /= P.sum(axis=1, keepdims=True)
    return {"E": P, "F": P.copy()}


def _check_params(params: dict, Tk: int) -> tuple[np.ndarray, np.ndarray]:
    """E, F (r, Tk) float, r ≥ 1 (what init_linformer_projections makes)."""
    E = check_params(params, {"E": (None, Tk)})["E"]
    check_nonempty(E, "params['E']", 0, "rank r")
    F = check_params(params, {"F": E.shape})["F"]
    return E, F


def linformer_attention_forward(q, k, v, params: dict):
    """out = softmax(Q (E K)ᵀ / √D) (F V).

    q (..., Tq, D), k (..., Tk, D), v (..., Tk, Dv), params E, F (r, Tk)
    → out (..., Tq, Dv), weights (..., Tq, r) over the r projected keys, cache.
    """
    q, k, v = check_qkv(q, k, v)
    E, F = _check_params(params, k.shape[-2])
    E, F = E.astype(q.dtype, copy=False), F.astype(q.dtype, copy=False)
    k_proj, v_proj = E @ k, F @ v                                    # (..., r, D), (..., r, Dv)
    out, weights, attn_cache = sdpa_core(q, k_proj, v_proj, mask=None, causal=False,
                                     backend="numpy", dropout_p=0.0, rng=None)
    return out, weights, {"k": k, "v": v, "E": E, "F": F, "attn": attn_cache}


def _sum_leading(x: np.ndarray) -> np.ndarray:
    return x.reshape((-1,) + x.shape[-2:]).sum(axis=0)


def linformer_attention_backward(dout, cache):
    """K' = E K  →  dK = Eᵀ dK',  dE = Σ_batch dK' Kᵀ  (same for V, F).

    Returns (dq, dk, dv, {"E": dE, "F": dF})."""
    k, v, E, F = cache["k"], cache["v"], cache["E"], cache["F"]
    dq, dk_proj, dv_proj = scaled_dot_product_attention_backward(dout, cache["attn"])
    dk, dv = E.T @ dk_proj, F.T @ dv_proj                            # (..., Tk, D), (..., Tk, Dv)
    dE = _sum_leading(dk_proj @ np.swapaxes(k, -1, -2))              # (r, Tk)
    dF = _sum_leading(dv_proj @ np.swapaxes(v, -1, -2))
    return dq, dk, dv, {"E": dE, "F": dF}
