"""The relation-aware graph attention layer against torch autograd (the dense GAT of
test_graph_attention.py plus its relation terms), and its reduction to GAT."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from attention_np.graph import (gat_forward, init_relation_gat_params, relation_gat_backward,
                                relation_gat_forward)
from tests.helpers import (assert_backward_casts_dout, assert_matches_torch,
                           check_finite_differences)
from tests.strategies import examples, randn
from tests.test_graph_attention import (GAT_NAMES, as_form, gat_cases, random_graph,
                                        torch_gat)

NAMES = GAT_NAMES + ["a_rel", "rel"]


def relation_inputs(rng, N, F_in, Fp, H, R, concat, dtype, scale=0.7):
    params = init_relation_gat_params(F_in, Fp, H, R, rng, concat, dtype)
    params = {k: randn(rng, v.shape, dtype, scale) for k, v in params.items()}
    return {"x": randn(rng, (N, F_in), dtype), **params}


def torch_relation_terms(relations, H):
    """e_ij += a_rel · r_ρij, message z_j + r_ρij (added to torch_gat's dense GAT)."""
    def messages(z, e, msg, a_rel, rel):
        r = rel.reshape(rel.shape[0], H, -1).transpose(0, 1)[:, relations]   # (H, N, N, F')
        return e + (r * a_rel[:, None, None]).sum(-1), msg + r
    return messages


def ours_relation(adj, relations, H, concat, slope):
    def ours(x, **params):
        out, _, cache = relation_gat_forward(x, adj, relations, params, H, concat, slope)

        def backward(dout):
            dx, grads = relation_gat_backward(dout, cache)
            return {"x": dx, **grads}
        return out, backward
    return ours


def relation_form(relations, adj, form, edges):
    """The (N, N) relation ids for a dense adj, or the ids of the edge list's columns."""
    return relations if form == "dense" else relations[edges[0], edges[1]]


@examples(ci=100, thorough=3_000)          # torch autograd per example
@given(case=gat_cases(), R=st.integers(1, 4), slope=st.sampled_from([0.2, 0.0]))
def test_relation_gat_matches_torch(case, R, slope):
    N, F_in, Fp, H, concat, form, dtype, seed = case
    rng = np.random.default_rng(seed)
    adj = random_graph(rng, N)
    relations = rng.integers(0, R, (N, N))
    graph = as_form(adj, form, rng)
    inputs = relation_inputs(rng, N, F_in, Fp, H, R, concat, dtype)
    assert_matches_torch(
        "relation_gat", ours_relation(graph, relation_form(relations, adj, form, graph), H,
                                      concat, slope),
        torch_gat(adj, H, concat, slope, torch_relation_terms(relations, H)),
        inputs, ["x"] + NAMES, seed=seed)


def test_relation_gat_finite_differences():
    rng = np.random.default_rng(3)
    adj = random_graph(rng, 6)
    relations = rng.integers(0, 3, (6, 6))
    for concat in (True, False):
        inputs = relation_inputs(rng, 6, 4, 3, 2, 3, concat, np.float64)
        check_finite_differences(ours_relation(adj, relations, 2, concat, 0.2), inputs,
                                 ["x"] + NAMES)


@given(case=gat_cases(), R=st.integers(1, 4))
def test_zero_relation_embeddings_give_gat(case, R):
    N, F_in, Fp, H, concat, form, _, seed = case
    rng = np.random.default_rng(seed)
    adj = random_graph(rng, N)
    graph = as_form(adj, form, rng)
    inputs = relation_inputs(rng, N, F_in, Fp, H, R, concat, np.float64)
    x, params = inputs.pop("x"), inputs
    params["rel"][:] = 0
    relations = relation_form(rng.integers(0, R, (N, N)), adj, form, graph)
    out, weights, _ = relation_gat_forward(x, graph, relations, params, H, concat)
    ref, ref_weights, _ = gat_forward(x, graph, {k: params[k] for k in GAT_NAMES}, H, concat)
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_array_equal(weights, ref_weights)


def test_isolated_node_relation_gat():
    rng = np.random.default_rng(4)
    adj = random_graph(rng, 5)
    adj[:, 0] = True
    adj[0] = False
    inputs = relation_inputs(rng, 5, 3, 2, 2, 3, False, np.float64)
    x, params = inputs.pop("x"), inputs
    out, weights, cache = relation_gat_forward(x, adj, rng.integers(0, 3, (5, 5)), params, 2,
                                               concat=False)
    assert np.all(weights[:, 0] == 0)
    np.testing.assert_array_equal(out[0], params["b"])
    dout = np.zeros_like(out)
    dout[0] = 1.0
    dx, grads = relation_gat_backward(dout, cache)
    assert np.all(dx == 0) and all(np.all(grads[k] == 0) for k in NAMES if k != "b")


def test_the_weights_follow_a_relation_bias():
    """A large a_rel · r on one relation puts (almost) all of each node's weight on it."""
    rng = np.random.default_rng(5)
    N, R = 8, 3
    adj = np.ones((N, N), bool)
    relations = rng.integers(0, R, (N, N))
    relations[:, 0] = 2                                 # every node has a relation-2 neighbour
    params = init_relation_gat_params(4, 2, 1, R, rng)
    params["a_rel"][:] = 1.0
    params["rel"][:] = 0
    params["rel"][2] = 30.0                             # a_rel · r_2 = 60, the others 0
    _, weights, _ = relation_gat_forward(randn(rng, (N, 4), scale=0.1), adj, relations,
                                         params, 1)
    np.testing.assert_allclose(weights[0][relations == 2].sum(), N, rtol=1e-6)


@pytest.mark.parametrize("concat", [True, False])
def test_init_relation_gat_params_shapes_dtype_and_glorot_bounds(concat):
    """GAT's params plus a_rel (H, F') and rel (R, H·F'), U(−a, a) with
    a = √(6 / (fan_in + fan_out)); a float32 init is the float64 one (same seed) rounded."""
    F_in, Fp, H, R = 6, 20, 3, 30
    params = init_relation_gat_params(F_in, Fp, H, R, np.random.default_rng(0), concat)
    low = init_relation_gat_params(F_in, Fp, H, R, np.random.default_rng(0), concat,
                                   np.float32)
    shapes = {"W": (F_in, H * Fp), "a_src": (H, Fp), "a_dst": (H, Fp),
              "b": (H * Fp,) if concat else (Fp,), "a_rel": (H, Fp), "rel": (R, H * Fp)}
    assert {k: v.shape for k, v in params.items()} == shapes
    assert all(v.dtype == np.float64 for v in params.values())
    assert all(v.dtype == np.float32 for v in low.values())
    for k in shapes:
        np.testing.assert_array_equal(low[k], params[k].astype(np.float32))
    for k in ("a_rel", "rel"):
        bound = np.sqrt(6 / sum(shapes[k]))
        assert 0.9 * bound < np.abs(params[k]).max() <= bound, k


def test_relation_gat_backward_works_in_the_forward_dtype_and_keeps_no_param_copy():
    """A float64 dout on a float32 forward gives float32 gradients; the cache refers to the
    caller's a_rel and rel (no copy when they already have x's dtype)."""
    rng = np.random.default_rng(12)
    adj = random_graph(rng, 5)
    relations = rng.integers(0, 3, (5, 5))
    for concat in (True, False):
        inputs = relation_inputs(rng, 5, 4, 3, 2, 3, concat, np.float32)
        x, params = inputs.pop("x"), inputs
        out, _, cache = relation_gat_forward(x, adj, relations, params, 2, concat)
        assert np.shares_memory(cache["a_rel"], params["a_rel"])
        assert np.shares_memory(cache["rh"], params["rel"])
        assert_backward_casts_dout(relation_gat_backward, cache, out, NAMES, rng)


@pytest.mark.parametrize("relations, message", [
    (np.zeros((4, 4)), "relations"),                          # not integer
    (np.zeros((4, 3), int), "relations"),                     # wrong shape
    (np.full((4, 4), 3), r"relations holds relation ids outside \[0, 3\)"),
    (np.full((4, 4), -1), "relations"),
])
def test_relation_gat_bad_relations(relations, message):
    rng = np.random.default_rng(0)
    params = init_relation_gat_params(3, 2, 2, 3, rng)
    with pytest.raises(ValueError, match=message):
        relation_gat_forward(np.ones((4, 3)), np.ones((4, 4), bool), relations, params, 2)


def test_relation_gat_bad_params_and_edge_list_relations():
    rng = np.random.default_rng(0)
    params = init_relation_gat_params(3, 2, 2, 3, rng)
    edges = np.array([[0, 1, 2], [1, 2, 3]])
    with pytest.raises(ValueError, match="relations"):              # (N, N) beside an edge list
        relation_gat_forward(np.ones((4, 3)), edges, np.zeros((4, 4), int), params, 2)
    with pytest.raises(ValueError, match="a_rel"):
        relation_gat_forward(np.ones((4, 3)), edges, np.zeros(3, int),
                             {**params, "a_rel": np.ones((2, 3))}, 2)
    with pytest.raises(ValueError, match="rel'"):
        relation_gat_forward(np.ones((4, 3)), edges, np.zeros(3, int),
                             {**params, "rel": np.ones((3, 5))}, 2)
    with pytest.raises(ValueError, match="num_relations"):
        init_relation_gat_params(3, 2, 2, 0, rng)


@pytest.mark.parametrize("adj, relations, message", [
    (np.ones((4, 4), bool), np.zeros((4, 4)), "relations must be an integer array of shape "
     "(4, 4) (one relation id per (i, j)), got dtype float64 and shape (4, 4)"),
    (np.array([[0, 1, 2], [1, 2, 3]]), np.zeros((4, 4), np.int64), "relations must be an "
     "integer array of shape (3,) (one relation id per edge), got dtype int64 and shape (4, 4)"),
])
def test_relation_gat_bad_relations_exact_message(adj, relations, message):
    """The whole message, in both forms: per (i, j) beside a dense adjacency, per edge beside
    an edge list."""
    params = init_relation_gat_params(3, 2, 2, 3, np.random.default_rng(0))
    with pytest.raises(ValueError) as info:
        relation_gat_forward(np.ones((4, 3)), adj, relations, params, 2)
    assert str(info.value) == message
