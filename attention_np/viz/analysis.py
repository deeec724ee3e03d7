"""Numbers about attention maps: rollout, flow, per-head entropy and where each head looks.

Shapes: ``attentions`` is ``(L, H, T, T)`` — layers, heads, queries, keys — with rows that sum
to 1 (or 0 for a fully masked row).
"""
from __future__ import annotations

import numpy as np

from attention_np.nn.checks import as_float_array, check_mask
from attention_np.viz._util import as_square_layers, token_list

SEPARATORS = ("[SEP]", "</s>", "<sep>", "<eos>", "<EOS>", "[EOS]")
_FUSIONS = {"mean": np.mean, "max": np.max, "min": np.min}


def residual_attention(attentions, residual: float = 0.5, head_fusion: str = "mean") -> np.ndarray:
    """Per layer: Ā = fuse_h A_h,  Â = r·I + (1−r)·Ā,  rows of Â renormalised to sum 1.

    attentions (L, H, T, T) → Â (L, T, T). The identity stands for the residual connection
    (Abnar & Zuidema 2020); ``head_fusion`` is "mean", "max" or "min" over heads.
    """
    a = as_square_layers(attentions)
    if head_fusion not in _FUSIONS:
        raise ValueError(f"head_fusion must be one of {sorted(_FUSIONS)}, got {head_fusion!r}")
    if not 0.0 <= residual <= 1.0:
        raise ValueError(f"residual must lie in [0, 1], got {residual}")
    fused = _FUSIONS[head_fusion](a, axis=1)                        # (L, T, T)
    eye = np.eye(a.shape[-1], dtype=a.dtype)
    aug = residual * eye + (1.0 - residual) * fused                   # (L, T, T)
    total = aug.sum(axis=-1, keepdims=True)
    return aug / np.where(total > 0, total, 1)                         # zero rows stay zero


def attention_rollout(attentions, residual: float = 0.5, head_fusion: str = "mean") -> np.ndarray:
    """Attention rollout  R = Â_L @ … @ Â_2 @ Â_1  (Abnar & Zuidema 2020).

    attentions (L, H, T, T) → R (T, T); ``R[i, j]`` is how much output token ``i`` of the last
    layer draws on input token ``j`` when attention is pushed through every layer together with
    the residual path. Â is :func:`residual_attention`.
    """
    aug = residual_attention(attentions, residual, head_fusion)     # (L, T, T)
    rollout = np.eye(aug.shape[-1], dtype=aug.dtype)
    for layer in aug:                                                 # R ← Â_l @ R, l = 1 … L
        rollout = layer @ rollout
    return rollout


def attention_flow(attentions, residual: float = 0.5, head_fusion: str = "mean",
                   outputs=None, resolution: int = 10**6) -> np.ndarray:
    """Attention flow: F[i, j] = max-flow from input token j to output token i (Abnar & Zuidema).

    The graph has a node per (layer l = 0 … L, token t); an edge (l−1, j) → (l, i) has capacity
    Â_l[i, j] (:func:`residual_attention`). attentions (L, H, T, T) → F (T, T). ``outputs``
    restricts the rows computed (the rest stay 0). Capacities are rounded to 1/``resolution``
    because SciPy's max-flow works on integers.
    """
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import maximum_flow

    aug = residual_attention(attentions, residual, head_fusion)     # (L, T, T)
    n_layers, T = aug.shape[0], aug.shape[-1]
    layer, i, j = np.nonzero(np.round(aug * resolution) > 0)
    src = layer * T + j                                               # node (l, j) …
    dst = (layer + 1) * T + i                                         # … feeds node (l+1, i)
    cap = np.round(aug[layer, i, j] * resolution).astype(np.int32)
    n_nodes = (n_layers + 1) * T
    graph = csr_matrix((cap, (src, dst)), shape=(n_nodes, n_nodes))
    flow = np.zeros((T, T), dtype=aug.dtype)
    rows = range(T) if outputs is None else np.atleast_1d(outputs)
    for out in rows:
        for inp in range(T):
            sink = n_layers * T + int(out)
            flow[out, inp] = maximum_flow(graph, inp, sink).flow_value / resolution
    return flow


def head_entropy(attn, mask=None) -> np.ndarray:
    """Mean row entropy per head:  H = mean_i ( −Σ_j a_ij log a_ij )  in nats.

    attn (..., Tq, Tk), e.g. (L, H, T, T) → (L, H). 0·log 0 = 0. ``mask`` (bool, True = may
    attend, broadcastable to attn) drops the entries it marks False; query rows with no True
    entry (padding, fully masked) are left out of the mean. Uniform over k keys gives log k.
    """
    a = as_float_array(attn, "attn", min_ndim=2, check_finite=True)
    m = check_mask(mask, "mask", a.shape)
    p = a if m is None else np.where(m, a, 0)
    plogp = p * np.log(np.where(p > 0, p, 1))
    rows = -plogp.sum(axis=-1)                                        # (..., Tq)
    keep = np.ones(rows.shape, bool) if m is None else m.any(axis=-1)
    count = keep.sum(axis=-1)
    return ((rows * keep).sum(axis=-1) / np.maximum(count, 1)).astype(a.dtype)


def head_summary(attn, tokens, separators=SEPARATORS) -> dict[str, np.ndarray]:
    """Share of each head's attention that goes to fixed targets (Clark et al. 2019), averaged
    over query rows i:

    * ``first``:     a[i, 0]                    * ``self``:  a[i, i]
    * ``separator``: Σ_{j: token j ∈ separators} a[i, j]
    * ``previous``:  a[i, i−1] (rows i ≥ 1)     * ``next``:  a[i, i+1] (rows i ≤ T−2)

    attn (..., T, T), e.g. (L, H, T, T) → dict of (L, H) arrays. With T = 1, ``previous`` and
    ``next`` are 0.
    """
    a = as_float_array(attn, "attn", min_ndim=2, check_finite=True)
    if a.shape[-1] != a.shape[-2]:
        raise ValueError(f"attn must be self-attention (..., T, T), got shape {a.shape}")
    T = a.shape[-1]
    toks = token_list(tokens, T, "tokens")
    is_sep = np.array([t in set(separators) for t in toks])
    diag = np.diagonal(a, axis1=-2, axis2=-1)                         # (..., T)

    def off_diagonal(k: int) -> np.ndarray:
        if T <= abs(k):
            return np.zeros(a.shape[:-2], dtype=a.dtype)
        return np.diagonal(a, offset=k, axis1=-2, axis2=-1).mean(axis=-1)

    return {
        "first": a[..., :, 0].mean(axis=-1),
        "separator": a[..., :, is_sep].sum(axis=-1).mean(axis=-1),
        "previous": off_diagonal(-1),
        "next": off_diagonal(1),
        "self": diag.mean(axis=-1),
    }
