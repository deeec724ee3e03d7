"""The public edge softmax (attention_np.graph.edge_softmax_forward / _backward) against torch
autograd, on Hypothesis graphs given as shuffled (2, E) edge lists: a dense masked softmax over
each attending node's row, gathered at the edges, and the same through torch's scatter ops
(scatter_reduce amax, index_add) — what torch_geometric's ``utils.softmax`` computes."""
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from attention_np.graph import check_edges, edge_softmax_backward, edge_softmax_forward
from attention_np.graph import edges as graph_edges
from tests.helpers import assert_matches_torch, check_finite_differences
from tests.strategies import dtypes, randn, seeds


@st.composite
def graphs(draw):
    """(N, H, dtype, seed): up to 7 nodes, 1–3 heads."""
    return draw(st.integers(1, 7)), draw(st.integers(1, 3)), draw(dtypes), draw(seeds)


def random_edges(rng, N):
    """A shuffled duplicate-free (2, E) edge list: density 0.6, self-loops allowed, some nodes
    with no incoming edge."""
    adj = rng.random((N, N)) < 0.6
    adj[rng.random(N) < 0.25] = False
    edges = np.argwhere(adj).T
    return edges[:, rng.permutation(edges.shape[1])]


def dense_softmax(edges, N):
    """torch: scores (H, E) → α (H, E) by a masked softmax over rows of an (H, N, N) matrix."""
    i, j = (torch.from_numpy(e) for e in edges)

    def theirs(scores):
        H = scores.shape[0]
        dense = torch.full((H, N, N), -torch.inf, dtype=scores.dtype)
        dense = dense.index_put((torch.arange(H)[:, None], i[None, :], j[None, :]), scores)
        alive = torch.isfinite(dense).any(-1, keepdim=True)
        alpha = torch.softmax(torch.where(alive, dense, torch.zeros_like(dense)), dim=-1)
        return alpha[:, i, j]
    return theirs


def scatter_softmax(edges, N):
    """torch: the same softmax with scatter ops over the attending node index i."""
    i = torch.from_numpy(edges[0]).long()

    def theirs(scores):
        H = scores.shape[0]
        m = torch.full((H, N), -torch.inf, dtype=scores.dtype).scatter_reduce(
            1, i.expand(H, -1), scores.detach(), "amax")
        ex = torch.exp(scores - m[:, i])
        total = torch.zeros((H, N), dtype=scores.dtype).index_add(1, i, ex)
        return ex / total[:, i]
    return theirs


def ours(edges, N):
    def run(scores):
        alpha, cache = edge_softmax_forward(scores, edges, N)
        return alpha, lambda dalpha: {"scores": edge_softmax_backward(dalpha, cache)}
    return run


@given(graphs())
def test_edge_softmax_matches_torch(case):
    N, H, dtype, seed = case
    rng = np.random.default_rng(seed)
    edges = random_edges(rng, N)
    scores = randn(rng, (H, edges.shape[1]), dtype, 2.0)
    for theirs in (dense_softmax(edges, N), scatter_softmax(edges, N)):
        assert_matches_torch("edge_softmax", ours(edges, N), theirs, {"scores": scores},
                             grad_wrt=["scores"])


@given(graphs())
def test_edge_softmax_finite_differences(case):
    N, H, _, seed = case
    rng = np.random.default_rng(seed)
    edges = random_edges(rng, N)
    check_finite_differences(ours(edges, N), {"scores": randn(rng, (H, edges.shape[1]))},
                             ["scores"])


def test_weights_come_back_in_the_caller_s_order_and_sum_to_one_per_node():
    rng = np.random.default_rng(0)
    edges = np.array([[2, 0, 2, 1, 0], [0, 1, 2, 2, 0]])
    scores = rng.standard_normal((2, 5))
    alpha, _ = edge_softmax_forward(scores, edges, 4)
    for h in range(2):
        for node in (0, 1, 2):
            into = edges[0] == node
            np.testing.assert_allclose(alpha[h, into].sum(), 1.0)
            np.testing.assert_allclose(alpha[h, into], np.exp(scores[h, into])
                                       / np.exp(scores[h, into]).sum())
    assert alpha.shape == (2, 5)                              # node 3 has no edge: nothing


def test_large_scores_do_not_overflow_and_float32_stays_float32():
    edges = np.array([[0, 0, 1], [0, 1, 1]])
    alpha, _ = edge_softmax_forward(np.array([[1000.0, 999.0, -1000.0]], np.float32), edges, 2)
    assert alpha.dtype == np.float32 and np.all(np.isfinite(alpha))
    np.testing.assert_allclose(alpha, [[1 / (1 + np.exp(-1)), 1 / (1 + np.e), 1.0]], rtol=1e-6)


def test_nan_reaches_only_its_node():
    edges = np.array([[0, 0, 1], [0, 1, 1]])
    alpha, cache = edge_softmax_forward(np.array([[np.nan, 0.0, 0.0]]), edges, 2)
    assert np.isnan(alpha[0, :2]).all() and alpha[0, 2] == 1.0
    dscores = edge_softmax_backward(np.array([[0.0, 0.0, np.nan]]), cache)
    assert np.isnan(dscores[0, 2])


def test_no_edges_at_all():
    alpha, cache = edge_softmax_forward(np.zeros((2, 0)), np.zeros((2, 0), int), 3)
    assert alpha.shape == (2, 0) and edge_softmax_backward(np.zeros((2, 0)), cache).shape == (2, 0)


def test_a_graph_of_zero_nodes():
    """num_nodes may be 0 (the docstring's num_nodes ≥ 0): no edges, no weights, no error."""
    alpha, cache = edge_softmax_forward(np.zeros((2, 0)), np.zeros((2, 0), int), 0)
    assert alpha.shape == (2, 0) and edge_softmax_backward(np.zeros((2, 0)), cache).shape == (2, 0)


def test_backward_works_in_alpha_s_dtype():
    """A float64 dalpha on a float32 forward gives float32 dscores, equal to those of the same
    dalpha rounded to float32 first (the backward casts dalpha to α's dtype)."""
    rng = np.random.default_rng(1)
    edges = random_edges(rng, 6)
    _, cache = edge_softmax_forward(randn(rng, (2, edges.shape[1]), np.float32), edges, 6)
    dalpha = rng.standard_normal((2, edges.shape[1]))                    # float64
    dscores = edge_softmax_backward(dalpha, cache)
    assert dscores.dtype == np.float32
    np.testing.assert_array_equal(dscores,
                                  edge_softmax_backward(dalpha.astype(np.float32), cache))


def test_check_edges_sorts_by_i_then_j_like_the_dense_form():
    """A shuffled edge list becomes the same Edges as its dense adjacency (sorted by the
    attending node i, then by j), and ``order`` maps each sorted edge back to its column."""
    rng = np.random.default_rng(2)
    edges = random_edges(rng, 7)
    adj = np.zeros((7, 7), bool)
    adj[edges[0], edges[1]] = True
    ours, dense = check_edges(edges, 7), check_edges(adj, 7)
    for field in ("dst", "src", "indptr", "starts", "counts"):
        np.testing.assert_array_equal(getattr(ours, field), getattr(dense, field), field)
    np.testing.assert_array_equal(edges[:, ours.order], np.stack([ours.dst, ours.src]))


def test_check_edges_large_node_ids_do_not_collide(monkeypatch):
    """The duplicate check keys each pair (i, j) by the integer i·N + j: with N = 2²⁷ that key
    passes 2⁵³, where float64 would round (N−1, 0) and (N−1, 1) to one key. (The Edges built
    from such a graph would take gigabytes, so _make_edges is replaced by a recorder here.)"""
    n = 2 ** 27
    monkeypatch.setattr(graph_edges, "_make_edges", lambda n, dst, src, order: (dst, src))
    dst, src = check_edges(np.array([[n - 1, n - 1, 0], [1, 0, 1]]), n)
    np.testing.assert_array_equal(dst, [0, n - 1, n - 1])
    np.testing.assert_array_equal(src, [1, 0, 1])


@pytest.mark.parametrize("edges, num_nodes, names", [
    (np.eye(2, dtype=bool), 2, ["edges"]),
    (np.array([[0, 0], [1, 1]]), 2, ["edges"]),                      # (0, 1) twice
    (np.array([[0, 2], [1, 1]]), 2, ["edges"]),                      # node 2 of 2 nodes
    (np.array([[0, 1], [1, 0]]), -1, ["num_nodes"]),
    (np.array([[0], [1]]), 2, ["scores"]),                            # 1 edge, 2 scores
])
def test_bad_input_names_the_argument(edges, num_nodes, names):
    with pytest.raises(ValueError) as info:
        edge_softmax_forward(np.zeros((1, 2)), edges, num_nodes)
    assert any(n in str(info.value) for n in names), str(info.value)


@pytest.mark.parametrize("edges, message", [
    (np.eye(2, dtype=bool), "edges must be an integer (2, E) edge list of (i, j) columns, got a "
     "boolean array of shape (2, 2) (np.argwhere(adj).T makes one from an adjacency)"),
    (np.array([[0, 1], [1, 0], [0, 0]], np.int64), "edges must be a boolean (N, N) adjacency or an "
     "integer (2, E) edge list of (i, j) columns, got dtype int64 and shape (3, 2)"),
    (np.array([0, 1], np.int64), "edges must be a boolean (N, N) adjacency or an integer (2, E) edge "
     "list of (i, j) columns, got dtype int64 and shape (2,)"),
    (np.array([[0, 1, 1], [0, 0, 0]]),                      # (1, 0) twice, after the first edge
     "edges lists an edge (i, j) more than once; each pair may appear once"),
])
def test_bad_edges_exact_message(edges, message):
    """The whole message, so that a changed word or a check that lets the input through fails;
    scores have one column per edge, so the edges are the only thing wrong."""
    scores = np.zeros((1, np.shape(edges)[-1]))
    with pytest.raises(ValueError) as info:
        edge_softmax_forward(scores, edges, 2)
    assert str(info.value) == message
