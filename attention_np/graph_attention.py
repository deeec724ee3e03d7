"""Graph attention (Veličković et al., 2018, "Graph Attention Networks"; article §8.1.1:
attention combined with knowledge graphs). Attention over a node's neighbours is soft attention
with the adjacency as the mask:

    z = x W                                          (N, H·F') → heads (H, N, F')
    e_ij = LeakyReLU(a_dst · z_i + a_src · z_j)      for each edge: node i attends to node j
    α_ij = exp(e_ij) / Σ_{k: adj[i, k]} exp(e_ik)    (softmax over i's neighbours)
    out_i = Σ_j α_ij z_j  per head, then heads concatenated (N, H·F') or averaged (N, F'), + b

Shapes: x (N, F); params W (F, H·F'), a_src (H, F'), a_dst (H, F'), b (H·F',) if concat else
(F',). Head h owns the columns h·F' … (h+1)·F' − 1 of z, as in multi-head attention. The
layer adds no self-loops (put True on the diagonal if a node should see itself).

The graph is a dense boolean ``adj`` (N, N) (True where i attends to j; weights come back as
(H, N, N), zero off the graph) or an integer edge list (2, E) of (i, j) columns (weights come
back as (H, E), in the caller's column order). Either way the layer works from the edge list
(:mod:`attention_np.graph_edges`, converted once, ``np.nonzero`` for a dense adj): memory and
time are O(E·H·F'), never O(N²); a 10 000-node, 100 000-edge graph is an edge-list input.

A node with no neighbours gets zero weights and out_i = b, and its output row sends no gradient
anywhere (but b's). A NaN in x reaches every node that attends to it.
"""
from __future__ import annotations

import numbers

import numpy as np

from attention_np.core import _linear, linear_backward
from attention_np.graph_edges import (Edges, _neighbour_sum_backward, _neighbour_sum_forward,
                                      _node_sum, _segment_softmax, _segment_softmax_backward,
                                      _weights_as_input, check_edges)
from attention_np.nn.checks import as_dout, as_float_array, check_params, check_positive_int
from attention_np.nn.init import xavier_uniform, zeros
from attention_np.self_attention import _merge_heads, _split_heads


def init_gat_params(in_features: int, out_features: int, num_heads: int,
                    rng: np.random.Generator, concat: bool = True, dtype=np.float64) -> dict:
    """W (F, H·F') and a_src, a_dst (H, F') Xavier-uniform (as the paper's code and PyG's
    GATConv), b = 0 with H·F' entries if ``concat`` else F'. F = in_features, F' = out_features
    (per head), H = num_heads."""
    F = check_positive_int(in_features, "in_features")
    Fp = check_positive_int(out_features, "out_features")
    H = check_positive_int(num_heads, "num_heads")
    return {"W": xavier_uniform((F, H * Fp), rng, dtype),
            "a_src": xavier_uniform((H, Fp), rng, dtype),
            "a_dst": xavier_uniform((H, Fp), rng, dtype),
            "b": zeros(H * Fp if concat else Fp, dtype)}


def _check_gat(x, adj, params, num_heads, concat, negative_slope):
    """Everything :func:`gat_forward` checks → (x, Edges, params cast to x's dtype, F')."""
    x = as_float_array(x, "x", ndim=2)
    H = check_positive_int(num_heads, "num_heads")
    if not isinstance(concat, (bool, np.bool_)):
        raise ValueError(f"concat must be True or False, got {concat!r}")
    if not (isinstance(negative_slope, numbers.Real) and not isinstance(negative_slope, bool)
            and np.isfinite(negative_slope)):
        raise ValueError(f"negative_slope must be a finite number, got {negative_slope!r}")
    W = check_params(params, {"W": (x.shape[1], None)})["W"]
    if W.shape[1] % H:
        raise ValueError(f"params['W'] has {W.shape[1]} columns, not a multiple of "
                         f"num_heads = {H} (W is (F, H·F'))")
    Fp = W.shape[1] // H
    p = check_params(params, {"W": W.shape, "a_src": (H, Fp), "a_dst": (H, Fp),
                              "b": (H * Fp if concat else Fp,)})
    p = {n: a.astype(x.dtype, copy=False) for n, a in p.items()}
    return x, check_edges(adj, x.shape[0]), p, Fp


def gat_forward(x, adj, params, num_heads, concat=True, negative_slope=0.2):
    """out_i = ‖_h Σ_j α^h_ij z^h_j + b   (mean over h instead of ‖ if not ``concat``),
    α^h_i = softmax_j LeakyReLU(a^h_dst · z^h_i + a^h_src · z^h_j) over j with adj[i, j].

    x (N, F); adj (N, N) bool or an integer (2, E) edge list of (i, j) columns; params W
    (F, H·F'), a_src (H, F'), a_dst (H, F'), b (H·F',) or (F',); num_heads H
    → out (N, H·F') or (N, F'), weights α (H, N, N) — or (H, E) for an edge list —, cache.
    """
    x, edges, p, _ = _check_gat(x, adj, params, num_heads, concat, negative_slope)
    return _gat(x, edges, p, num_heads, concat, float(negative_slope))


def _gat(x: np.ndarray, edges: Edges, p: dict, num_heads: int, concat: bool, slope: float):
    """:func:`gat_forward` on checked input."""
    zh, proj = _project_heads(x, p["W"], num_heads)                      # (H, N, F')
    alpha, agg, attend = _attend_forward(zh, edges, p["a_src"], p["a_dst"], slope)
    out = _merge_forward(agg, p["b"], concat)                            # (N, H·F') or (N, F')
    cache = {"proj": proj, "attend": attend, "concat": concat, "out_shape": out.shape}
    return out, _weights_as_input(alpha, edges), cache


def gat_backward(dout, cache):
    """Walks :func:`gat_forward` back: + b, merge heads, Σ α z, softmax, LeakyReLU, z = x W.
    Returns (dx (N, F), grads keyed like params)."""
    dout = as_dout(dout, cache["out_shape"], cache["proj"]["x"].dtype, name="dout")
    dagg, db = _merge_backward(dout, cache["attend"]["zh"].shape, cache["concat"])
    dzh, da_src, da_dst, _ = _attend_backward(dagg, cache["attend"])
    dx, dW = _project_heads_backward(dzh, cache["proj"])
    return dx, {"W": dW, "a_src": da_src, "a_dst": da_dst, "b": db}


# --- the steps, shared with the relation-aware layer (attention_np.graph_relation) -------------

def _project_heads(x: np.ndarray, W: np.ndarray, num_heads: int):
    """z = x W split into heads: x (N, F), W (F, H·F') → z (H, N, F'), cache."""
    z, cache = _linear(x, W, None)                                       # (N, H·F')
    zh = _split_heads(z[None], num_heads)[0]                             # (H, N, F')
    return np.ascontiguousarray(zh), cache                               # heads apart in memory


def _project_heads_backward(dzh: np.ndarray, cache):
    """z = x W → (dx, dW)."""
    dx, dW, _ = linear_backward(_merge_heads(dzh[None])[0], cache)
    return dx, dW


def _attend_forward(zh, edges: Edges, a_src, a_dst, slope: float, bias=None):
    """e = LeakyReLU(a_dst·z_i + a_src·z_j + bias_e) per edge (H, E), α = segment softmax of e,
    agg_i = Σ_j α_ij z_j (H, N, F'). ``bias`` (H, E): an extra score term, or None.
    Returns (α (H, E) on the sorted edges, agg, cache)."""
    s_dst = np.einsum("hnf,hf->hn", zh, a_dst)                           # (H, N)  a_dst · z_i
    s_src = np.einsum("hnf,hf->hn", zh, a_src)                           # (H, N)  a_src · z_j
    pre = s_dst[:, edges.dst] + s_src[:, edges.src]                      # (H, E)
    if bias is not None:
        pre = pre + bias
    e = np.where(pre > 0, pre, slope * pre)                              # LeakyReLU
    alpha = _segment_softmax(e, edges)                                   # (H, E)
    agg, sum_cache = _neighbour_sum_forward(alpha, zh, edges)            # (H, N, F')
    cache = {"zh": zh, "pre": pre, "alpha": alpha, "a_src": a_src, "a_dst": a_dst,
             "slope": slope, "edges": edges, "sum": sum_cache}
    return alpha, agg, cache


def _attend_backward(dagg, cache, dalpha_extra=None):
    """Undo :func:`_attend_forward`; ``dalpha_extra`` (H, E): gradient reaching α from elsewhere.
    Returns (dz (H, N, F'), da_src, da_dst, dbias (H, E))."""
    zh, pre, alpha, edges = cache["zh"], cache["pre"], cache["alpha"], cache["edges"]
    dalpha, dzh = _neighbour_sum_backward(dagg, cache["sum"])            # agg_i = Σ α_ij z_j
    if dalpha_extra is not None:
        dalpha = dalpha + dalpha_extra
    de = _segment_softmax_backward(dalpha, alpha, edges)                 # α = softmax(e)
    dpre = np.where(pre > 0, de, cache["slope"] * de)                    # e = LeakyReLU(pre)
    ds_dst = _node_sum(dpre, edges.dst, edges.n)                         # (H, N)
    ds_src = _node_sum(dpre, edges.src, edges.n)                         # (H, N)
    dzh = dzh + ds_dst[..., None] * cache["a_dst"][:, None, :] \
        + ds_src[..., None] * cache["a_src"][:, None, :]                 # s = a · z
    da_dst = np.einsum("hn,hnf->hf", ds_dst, zh)
    da_src = np.einsum("hn,hnf->hf", ds_src, zh)
    return dzh, da_src, da_dst, dpre


def _merge_forward(agg: np.ndarray, b: np.ndarray, concat: bool) -> np.ndarray:
    """out = ‖_h agg_h + b (N, H·F') if concat, else mean_h agg_h + b (N, F')."""
    merged = _merge_heads(agg[None])[0] if concat else agg.mean(axis=0)
    return merged + b


def _merge_backward(dout: np.ndarray, heads_shape: tuple, concat: bool):
    """Undo :func:`_merge_forward` → (dagg (H, N, F'), db)."""
    H = heads_shape[0]
    db = dout.sum(axis=0)
    if concat:
        return _split_heads(dout[None], H)[0], db                        # (H, N, F')
    return np.broadcast_to(dout / H, heads_shape), db
