"""Relation-aware graph attention for knowledge graphs: GAT whose edges carry a relation type.

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

With rel = 0 this is :func:`attention_np.graph_attention.gat_forward`, whatever the relation
ids (a_rel·r = 0 and z_j + r = z_j on every edge). Like GAT it works from the edge list (see
:mod:`attention_np.graph_edges`); a node with no neighbours gets zero weights and out_i = b.
"""
from __future__ import annotations

import numpy as np

from attention_np.graph_attention import (_attend_backward, _attend_forward,
                                          _check_gat, _merge_backward, _merge_forward,
                                          _project_heads, _project_heads_backward,
                                          init_gat_params)
from attention_np.graph_edges import (_neighbour_sum_backward, _neighbour_sum_forward,
                                      _node_sum, _weights_as_input, check_relations)
from attention_np.nn.checks import as_dout, check_params, check_positive_int
from attention_np.nn.init import xavier_uniform
from attention_np.self_attention import _merge_heads, _split_heads

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
    rh = _split_heads(p["rel"][None], num_heads)[0]                      # (H, R, F')
    zh, proj = _project_heads(x, p["W"], num_heads)                      # (H, N, F')
    s_rel = np.einsum("hrf,hf->hr", rh, p["a_rel"])                      # (H, R)  a_rel · r_ρ
    alpha, agg, attend = _attend_forward(zh, edges, p["a_src"], p["a_dst"],
                                         float(negative_slope), bias=s_rel[:, rho])
    agg_rel, rel_sum = _neighbour_sum_forward(alpha, rh, edges, index=rho)  # Σ_j α_ij r_ρij
    out = _merge_forward(agg + agg_rel, p["b"], concat)
    cache = {"proj": proj, "attend": attend, "rel_sum": rel_sum, "rho": rho, "rh": rh,
             "a_rel": p["a_rel"], "concat": concat, "out_shape": out.shape}
    return out, _weights_as_input(alpha, edges), cache


def relation_gat_backward(dout, cache):
    """Walks :func:`relation_gat_forward` back. Returns (dx (N, F), grads keyed like params)."""
    rh, rho, a_rel = cache["rh"], cache["rho"], cache["a_rel"]
    dout = as_dout(dout, cache["out_shape"], rh.dtype, name="dout")
    dagg, db = _merge_backward(dout, cache["attend"]["zh"].shape, cache["concat"])
    dalpha_rel, drh = _neighbour_sum_backward(dagg, cache["rel_sum"])    # Σ_j α_ij r_ρij
    dzh, da_src, da_dst, dbias = _attend_backward(dagg, cache["attend"], dalpha_rel)
    ds_rel = _node_sum(dbias, rho, rh.shape[1])                          # (H, R)  bias = s_rel[ρ]
    drh = drh + ds_rel[..., None] * a_rel[:, None, :]                    # s_rel = a_rel · r
    da_rel = np.einsum("hr,hrf->hf", ds_rel, rh)
    dx, dW = _project_heads_backward(dzh, cache["proj"])
    return dx, {"W": dW, "a_src": da_src, "a_dst": da_dst, "b": db, "a_rel": da_rel,
                "rel": _merge_heads(drh[None])[0]}
