"""Graphs for attention: the edge list the graph layers work from, and the two operations on it.

A graph of N nodes comes in one of two forms, both saying "node i attends to node j":

* a dense boolean adjacency ``adj`` (N, N), True at [i, j] (fine for small N);
* an edge list, an integer array (2, E) whose columns are the pairs (i, j), no pair twice
  (``np.argwhere(adj).T`` turns the first form into the second). At N = 10 000 the dense form
  alone is 10⁸ booleans, so a large graph should come as an edge list.

Either form is converted once (``np.nonzero`` for the dense one) into :class:`Edges`, sorted by
the attending node i and then by j. The layers never form an (N, N) array; everything is O(E):

    segment softmax   α_e = exp(g_e − m_i) / Σ_{e' into i} exp(g_e' − m_i),  m_i = max g_e'
    neighbour sum     out_i = Σ_{e = (i, j)} α_e v_j       (= A v, the sparse matrix A_ij = α_e)

The segment softmax is :func:`attention_np.core.softmax_forward` with the adjacency as the mask,
computed edge by edge (``np.maximum.reduceat`` / ``np.add.reduceat`` over each node's run of
edges). As there, a node with no edge gets no weight and a zero sum, never NaN, and a NaN score
makes its node's weights NaN. Edge arrays are heads-first, (H, E), like (B, H, T, D) elsewhere.

The public pair :func:`edge_softmax_forward` / :func:`edge_softmax_backward` is that softmax on
the caller's edge list, in the caller's edge order (GAT's α_ij, torch_geometric's
``utils.softmax(src, index)``): what the graph layers compute inside, for any scores.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from attention_np.nn.checks import as_dout, as_float_array, check_positive_int


@dataclass(frozen=True)
class Edges:
    """The edges (i = dst[e], j = src[e]) sorted by i then j; the edges into node i are
    e = indptr[i] … indptr[i+1] − 1 (CSR layout). ``starts`` and ``counts``: first edge and
    number of edges of each node that has any. ``order``: for an edge-list input, sorted edge
    e is the caller's column order[e] (None for a dense input)."""
    n: int
    dst: np.ndarray
    src: np.ndarray
    indptr: np.ndarray
    starts: np.ndarray
    counts: np.ndarray
    order: np.ndarray | None


def check_edges(adj, n_nodes: int, name: str = "adj") -> Edges:
    """Validate a dense (N, N) boolean adjacency or an integer (2, E) edge list over
    ``n_nodes`` nodes and convert it to :class:`Edges` (raises ValueError naming ``name``)."""
    a = np.asarray(adj)
    if a.dtype == np.bool_:
        if a.shape != (n_nodes, n_nodes):
            raise ValueError(f"{name} as a boolean adjacency must have shape (N, N) = "
                             f"({n_nodes}, {n_nodes}) for x's {n_nodes} nodes, got {a.shape}")
        dst, src = np.nonzero(a)                        # row-major: sorted by i, then j
        return _make_edges(n_nodes, dst, src, None)
    if not np.issubdtype(a.dtype, np.integer) or a.ndim != 2 or a.shape[0] != 2:
        raise ValueError(f"{name} must be a boolean (N, N) adjacency or an integer (2, E) edge "
                         f"list of (i, j) columns, got dtype {a.dtype} and shape {a.shape}")
    if a.size and (a.min() < 0 or a.max() >= n_nodes):
        raise ValueError(f"{name} holds node ids outside [0, {n_nodes}) (x has {n_nodes} "
                         f"nodes): min {a.min()}, max {a.max()}")
    a = a.astype(np.intp)
    key = a[0].astype(np.int64) * n_nodes + a[1]        # one integer per pair (i, j)
    order = np.argsort(key, kind="stable")
    if np.any(key[order][1:] == key[order][:-1]):
        raise ValueError(f"{name} lists an edge (i, j) more than once; each pair may appear once")
    return _make_edges(n_nodes, a[0, order], a[1, order], order)


def _make_edges(n: int, dst: np.ndarray, src: np.ndarray, order) -> Edges:
    degree = np.bincount(dst, minlength=n)                              # (N,)
    indptr = np.concatenate([[0], np.cumsum(degree)])                   # (N + 1,)
    has_edges = degree > 0
    return Edges(n, dst, src, indptr, indptr[:-1][has_edges], degree[has_edges], order)


def check_relations(relations, edges: Edges, num_relations: int,
                    name: str = "relations") -> np.ndarray:
    """The relation id of each sorted edge (E,), from an (N, N) integer array read where the
    adjacency is True (dense input) or an (E,) array beside the edge list; ids in [0, R)."""
    r = np.asarray(relations)
    want = (edges.n, edges.n) if edges.order is None else (len(edges.dst),)
    if not np.issubdtype(r.dtype, np.integer) or r.shape != want:
        raise ValueError(f"{name} must be an integer array of shape {want} (one relation id "
                         f"per {'(i, j)' if edges.order is None else 'edge'}), got dtype "
                         f"{r.dtype} and shape {r.shape}")
    per_edge = r[edges.dst, edges.src] if edges.order is None else r[edges.order]   # (E,)
    if per_edge.size and (per_edge.min() < 0 or per_edge.max() >= num_relations):
        raise ValueError(f"{name} holds relation ids outside [0, {num_relations}) on the edges "
                         f"(params hold {num_relations} relations): min {per_edge.min()}, "
                         f"max {per_edge.max()}")
    return per_edge.astype(np.intp)


def weights_as_input(alpha: np.ndarray, edges: Edges) -> np.ndarray:
    """α (H, E) of the sorted edges → (H, N, N) with zeros off the graph (dense input), or
    (H, E) in the caller's edge order (edge-list input)."""
    if edges.order is not None:
        out = np.empty_like(alpha)
        out[:, edges.order] = alpha
        return out
    dense = np.zeros((alpha.shape[0], edges.n, edges.n), alpha.dtype)
    dense[:, edges.dst, edges.src] = alpha
    return dense


# --- segment softmax over each node's incoming edges ------------------------------------------

def segment_softmax_core(g: np.ndarray, edges: Edges) -> np.ndarray:
    """α_e = exp(g_e − m_i) / Σ_{e' into i} exp(g_e' − m_i), m_i = max_{e' into i} g_e'.
    g (H, E) → α (H, E). Trusts its input."""
    if g.shape[1] == 0:
        return g.copy()
    m = np.repeat(np.maximum.reduceat(g, edges.starts, axis=1), edges.counts, axis=1)  # (H, E)
    ex = np.exp(g - m)                            # the max of each run gives exp(0) = 1 > 0
    return ex / np.repeat(np.add.reduceat(ex, edges.starts, axis=1), edges.counts, axis=1)


def segment_softmax_backward(dalpha: np.ndarray, alpha: np.ndarray, edges: Edges) -> np.ndarray:
    """dg_e = α_e (dα_e − Σ_{e' into i} dα_e' α_e')   (softmax_backward, edge by edge)."""
    if alpha.shape[1] == 0:
        return dalpha.copy()
    dot = np.add.reduceat(dalpha * alpha, edges.starts, axis=1)                      # (H, S)
    return alpha * (dalpha - np.repeat(dot, edges.counts, axis=1))


def edge_softmax_forward(scores, edges, num_nodes: int):
    """α_e = exp(g_e − m_i) / Σ_{e' into i} exp(g_e' − m_i) over the edges e = (i, j) into each
    attending node i (m_i: the largest of those scores).

    scores (H, E) float, one per head and edge; edges (2, E) integer, the columns (i, j) with i,
    j in [0, num_nodes) and no pair twice; num_nodes ≥ 0 → α (H, E) in the caller's edge order
    and dtype, cache. A node with no edge simply has no weight; the weights into a node with a
    NaN score are NaN.
    """
    num_nodes = check_positive_int(num_nodes, "num_nodes", minimum=0)
    scores = as_float_array(scores, "scores", ndim=2)
    if np.asarray(edges).dtype == np.bool_:
        raise ValueError(f"edges must be an integer (2, E) edge list of (i, j) columns, got a "
                         f"boolean array of shape {np.shape(edges)} (np.argwhere(adj).T makes "
                         "one from an adjacency)")
    graph = check_edges(edges, num_nodes, "edges")
    if scores.shape[1] != len(graph.dst):
        raise ValueError(f"scores (H, E) must have one column per edge: scores has shape "
                         f"{scores.shape}, edges has {len(graph.dst)} columns")
    alpha = segment_softmax_core(scores[:, graph.order], graph)               # sorted edges
    alpha = weights_as_input(alpha, graph)                                   # caller's order
    return alpha, {"alpha": alpha, "dst": np.asarray(edges)[0].astype(np.intp),
                   "num_nodes": num_nodes}


def edge_softmax_backward(dalpha, cache) -> np.ndarray:
    """dg_e = α_e (dα_e − Σ_{e' into i} dα_e' α_e')   (softmax_backward, node by node).

    dalpha (H, E) → dscores (H, E), in α's dtype."""
    alpha, dst = cache["alpha"], cache["dst"]
    dalpha = as_dout(dalpha, alpha.shape, alpha.dtype, name="dalpha")
    dot = node_sum_core(dalpha * alpha, dst, cache["num_nodes"])                # (H, N)
    return alpha * (dalpha - dot[:, dst])


def node_sum_core(values: np.ndarray, index: np.ndarray, n: int) -> np.ndarray:
    """s_k = Σ_{e: index_e = k} values_e.   values (H, E), index (E,) → (H, n)."""
    out = np.zeros((values.shape[0], n), values.dtype)
    for h in range(values.shape[0]):
        out[h] = np.bincount(index, weights=values[h], minlength=n)
    return out


# --- weighted sum over each node's neighbours --------------------------------------------------

def _matrix(alpha_h: np.ndarray, edges: Edges, columns: np.ndarray, n_cols: int):
    """The sparse (N, n_cols) matrix with α_e at (dst_e, columns_e) (repeated entries add up)."""
    return sp.csr_matrix((alpha_h, columns, edges.indptr), shape=(edges.n, n_cols))


def neighbour_sum_core(alpha: np.ndarray, values: np.ndarray, edges: Edges,
                           index: np.ndarray | None = None):
    """out_i = Σ_{e into i} α_e values[index_e]   (index = the source j by default).

    alpha (H, E), values (H, K, F) → out (H, N, F). Trusts its input."""
    index = edges.src if index is None else index
    values = np.ascontiguousarray(values)                              # (H, K, F), heads apart
    H, K, F = values.shape
    out = np.empty((H, edges.n, F), values.dtype)
    for h in range(H):
        out[h] = _matrix(alpha[h], edges, index, K) @ values[h]                       # (N, F)
    return out, {"alpha": alpha, "values": values, "edges": edges, "index": index}


def neighbour_sum_backward(dout: np.ndarray, cache):
    """out = A v  →  dα_e = dout_i · v[index_e],  dv = Aᵀ dout.   Returns (dalpha, dvalues)."""
    alpha, values, edges, index = (cache[k] for k in ("alpha", "values", "edges", "index"))
    H, K, F = values.shape
    dout = np.ascontiguousarray(dout)             # row gathers from a strided view are slow
    dalpha = np.empty_like(alpha)
    dvalues = np.empty_like(values)
    for h in range(H):
        dalpha[h] = np.einsum("ef,ef->e", dout[h].take(edges.dst, axis=0),
                              values[h].take(index, axis=0))                           # (E,)
        dvalues[h] = _matrix(alpha[h], edges, index, K).T @ dout[h]                    # (K, F)
    return dalpha, dvalues
