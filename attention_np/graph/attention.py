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
(:mod:`attention_np.graph.edges`, converted once, ``np.nonzero`` for a dense adj): memory and
time are O(E·H·F'), never O(N²); a 10 000-node, 100 000-edge graph is an edge-list input.

A node with no neighbours gets zero weights and out_i = b, and its output row sends no gradient
anywhere (but b's). A NaN in x reaches every node that attends to it.

Relation-aware graph attention for knowledge graphs is GAT whose edges carry a relation type.
In a knowledge graph an edge (i, j) has a type ρ_ij ("works at", "lives in", …), and which
neighbours matter depends on it. Each relation ρ gets a learned embedding r_ρ, split into heads
like z; it enters the score, as in KBGAT (Nathani et al., 2019, "Learning Attention-based
Embeddings for Relation Prediction in Knowledge Graphs": b_ijk = LeakyReLU(W₂ [h_i ‖ h_j ‖ g_k])),
and the message, as a translation of the neighbour by its relation (TransE's h + r, Bordes et
al., 2013; one of CompGCN's composition operators, Vashishth et al., 2020):

    z = x W                                                      (H, N, F')
    e_ij = LeakyReLU(a · [z_i ‖ z_j ‖ r_ρij]) = LeakyReLU(a_dst·z_i + a_src·z_j + a_rel·r_ρij)
    α_ij = softmax_j e_ij  over the j with adj[i, j]
    out_i = Σ_j α_ij (z_j + r_ρij)  per head, concatenated or averaged over heads, + b

Shapes: x (N, F); relations: integer relation ids, (N, N) read where adj is True (dense adj) or
(E,) beside an (2, E) edge list; params W (F, H·F'), a_src, a_dst, a_rel (H, F'),
rel (R, H·F') (one row per relation type), b (H·F',) or (F',).

With rel = 0 this is :func:`gat_forward`, whatever the relation ids (a_rel·r = 0 and
z_j + r = z_j on every edge). Like GAT it works from the edge list, and a node with no
neighbours gets zero weights and out_i = b.
"""
from __future__ import annotations

import numbers

import numpy as np

from attention_np.core import linear_backward, linear_core
from attention_np.graph.edges import (Edges, check_edges, check_relations, neighbour_sum_backward,
                                      neighbour_sum_core, node_sum_core, segment_softmax_backward,
                                      segment_softmax_core, weights_as_input)
from attention_np.nn.checks import as_dout, as_float_array, check_params, check_positive_int
from attention_np.nn.init import xavier_uniform, zeros
from attention_np.self_attention import merge_heads_core, split_heads_core


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
    return out, weights_as_input(alpha, edges), cache


def gat_backward(dout, cache):
    """Walks :func:`gat_forward` back: + b, merge heads, Σ α z, softmax, LeakyReLU, z = x W.
    Returns (dx (N, F), grads keyed like params)."""
    dout = as_dout(dout, cache["out_shape"], cache["proj"]["x"].dtype, name="dout")
    dagg, db = _merge_backward(dout, cache["attend"]["zh"].shape, cache["concat"])
    dzh, da_src, da_dst, _ = _attend_backward(dagg, cache["attend"])
    dx, dW = _project_heads_backward(dzh, cache["proj"])
    return dx, {"W": dW, "a_src": da_src, "a_dst": da_dst, "b": db}


# --- the steps, shared by both layers -----------------------------------------------------------

def _project_heads(x: np.ndarray, W: np.ndarray, num_heads: int):
    """z = x W split into heads: x (N, F), W (F, H·F') → z (H, N, F'), cache."""
    z, cache = linear_core(x, W, None)                                       # (N, H·F')
    zh = split_heads_core(z[None], num_heads)[0]                             # (H, N, F')
    return np.ascontiguousarray(zh), cache                               # heads apart in memory


def _project_heads_backward(dzh: np.ndarray, cache):
    """z = x W → (dx, dW)."""
    dx, dW, _ = linear_backward(merge_heads_core(dzh[None])[0], cache)
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
    alpha = segment_softmax_core(e, edges)                                   # (H, E)
    agg, sum_cache = neighbour_sum_core(alpha, zh, edges)            # (H, N, F')
    cache = {"zh": zh, "pre": pre, "alpha": alpha, "a_src": a_src, "a_dst": a_dst,
             "slope": slope, "edges": edges, "sum": sum_cache}
    return alpha, agg, cache


def _attend_backward(dagg, cache, dalpha_extra=None):
    """Undo :func:`_attend_forward`; ``dalpha_extra`` (H, E): gradient reaching α from elsewhere.
    Returns (dz (H, N, F'), da_src, da_dst, dbias (H, E))."""
    zh, pre, alpha, edges = cache["zh"], cache["pre"], cache["alpha"], cache["edges"]
    dalpha, dzh = neighbour_sum_backward(dagg, cache["sum"])            # agg_i = Σ α_ij z_j
    if dalpha_extra is not None:
        dalpha = dalpha + dalpha_extra
    de = segment_softmax_backward(dalpha, alpha, edges)                 # α = softmax(e)
    dpre = np.where(pre > 0, de, cache["slope"] * de)                    # e = LeakyReLU(pre)
    ds_dst = node_sum_core(dpre, edges.dst, edges.n)                         # (H, N)
    ds_src = node_sum_core(dpre, edges.src, edges.n)                         # (H, N)
    dzh = dzh + ds_dst[..., None] * cache["a_dst"][:, None, :] \
        + ds_src[..., None] * cache["a_src"][:, None, :]                 # s = a · z
    da_dst = np.einsum("hn,hnf->hf", ds_dst, zh)
    da_src = np.einsum("hn,hnf->hf", ds_src, zh)
    return dzh, da_src, da_dst, dpre


def _merge_forward(agg: np.ndarray, b: np.ndarray, concat: bool) -> np.ndarray:
    """out = ‖_h agg_h + b (N, H·F') if concat, else mean_h agg_h + b (N, F')."""
    merged = merge_heads_core(agg[None])[0] if concat else agg.mean(axis=0)
    return merged + b


def _merge_backward(dout: np.ndarray, heads_shape: tuple, concat: bool):
    """Undo :func:`_merge_forward` → (dagg (H, N, F'), db)."""
    H = heads_shape[0]
    db = dout.sum(axis=0)
    if concat:
        return split_heads_core(dout[None], H)[0], db                        # (H, N, F')
    return np.broadcast_to(dout / H, heads_shape), db


# --- relation-aware graph attention (module docstring, second part) ---------------------------

def init_relation_gat_params(in_features: int, out_features: int, num_heads: int,
                             num_relations: int, rng: np.random.Generator, concat: bool = True,
                             dtype=np.float64) -> dict:
    """:func:`init_gat_params` plus a_rel (H, F') and the relation embeddings rel (R, H·F'),
    both Xavier-uniform. R = num_relations."""
    R = check_positive_int(num_relations, "num_relations")
    params = init_gat_params(in_features, out_features, num_heads, rng, concat, dtype)
    params["a_rel"] = xavier_uniform((num_heads, out_features), rng, dtype)
    params["rel"] = xavier_uniform((R, num_heads * out_features), rng, dtype)
    return params


def relation_gat_forward(x, adj, relations, params, num_heads, concat=True,
                         negative_slope=0.2):
    """out_i = ‖_h Σ_j α^h_ij (z^h_j + r^h_ρij) + b  (mean over h if not ``concat``),
    α^h_i = softmax_j LeakyReLU(a^h_dst·z^h_i + a^h_src·z^h_j + a^h_rel·r^h_ρij).

    x (N, F); adj (N, N) bool or an integer (2, E) edge list of (i, j) columns; relations
    (N, N) or (E,) integer ids in [0, R); params W, a_src, a_dst, a_rel, rel, b (module doc)
    → out (N, H·F') or (N, F'), weights α (H, N, N) — (H, E) for an edge list —, cache.
    """
    x, edges, p, Fp = _check_gat(x, adj, params, num_heads, concat, negative_slope)
    extra = check_params(params, {"a_rel": (num_heads, Fp), "rel": (None, num_heads * Fp)})
    p.update({n: a.astype(x.dtype, copy=False) for n, a in extra.items()})
    rho = check_relations(relations, edges, p["rel"].shape[0])           # (E,) sorted edges
    rh = split_heads_core(p["rel"][None], num_heads)[0]                      # (H, R, F')
    zh, proj = _project_heads(x, p["W"], num_heads)                      # (H, N, F')
    s_rel = np.einsum("hrf,hf->hr", rh, p["a_rel"])                      # (H, R)  a_rel · r_ρ
    alpha, agg, attend = _attend_forward(zh, edges, p["a_src"], p["a_dst"],
                                         float(negative_slope), bias=s_rel[:, rho])
    agg_rel, rel_sum = neighbour_sum_core(alpha, rh, edges, index=rho)  # Σ_j α_ij r_ρij
    out = _merge_forward(agg + agg_rel, p["b"], concat)
    cache = {"proj": proj, "attend": attend, "rel_sum": rel_sum, "rho": rho, "rh": rh,
             "a_rel": p["a_rel"], "concat": concat, "out_shape": out.shape}
    return out, weights_as_input(alpha, edges), cache


def relation_gat_backward(dout, cache):
    """Walks :func:`relation_gat_forward` back. Returns (dx (N, F), grads keyed like params)."""
    rh, rho, a_rel = cache["rh"], cache["rho"], cache["a_rel"]
    dout = as_dout(dout, cache["out_shape"], rh.dtype, name="dout")
    dagg, db = _merge_backward(dout, cache["attend"]["zh"].shape, cache["concat"])
    dalpha_rel, drh = neighbour_sum_backward(dagg, cache["rel_sum"])    # Σ_j α_ij r_ρij
    dzh, da_src, da_dst, dbias = _attend_backward(dagg, cache["attend"], dalpha_rel)
    ds_rel = node_sum_core(dbias, rho, rh.shape[1])                          # (H, R)  bias = s_rel[ρ]
    drh = drh + ds_rel[..., None] * a_rel[:, None, :]                    # s_rel = a_rel · r
    da_rel = np.einsum("hr,hrf->hf", ds_rel, rh)
    dx, dW = _project_heads_backward(dzh, cache["proj"])
    return dx, {"W": dW, "a_src": da_src, "a_dst": da_dst, "b": db, "a_rel": da_rel,
                "rel": merge_heads_core(drh[None])[0]}
