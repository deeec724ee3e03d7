"""Graph attention (GAT) against torch autograd on a dense re-implementation of the paper's
formula, on Hypothesis graphs with isolated nodes, self-loops and random duplicate-free edges,
given as a dense adjacency or as a shuffled edge list."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from attention_np.graph import gat_backward, gat_forward, init_gat_params
from attention_np.nn.layers import masked_mean_forward
from tests.helpers import (assert_backward_casts_dout, assert_close, assert_matches_torch,
                           check_finite_differences)
from tests.strategies import distinct_dims, dtypes, examples, randn, random_mask, seeds

GAT_NAMES = ["W", "a_src", "a_dst", "b"]


@st.composite
def gat_cases(draw):
    """(N, F, F', H, concat, form, dtype, seed): F, F', H pairwise different."""
    N = draw(st.integers(1, 7))
    H, F_in, Fp = draw(distinct_dims(3, 1, 5))
    return (N, F_in, Fp, H, draw(st.booleans()), draw(st.sampled_from(["dense", "edges"])),
            draw(dtypes), draw(seeds))


def random_graph(rng, N):
    """(N, N) bool: density 0.7, a quarter of the nodes without neighbours, random self-loops."""
    return random_mask(rng, (N, N))


def as_form(adj, form, rng):
    """The adjacency itself, or its (2, E) edge list with the columns shuffled."""
    if form == "dense":
        return adj
    edges = np.argwhere(adj).T
    return edges[:, rng.permutation(edges.shape[1])]


def gat_inputs(rng, N, F_in, Fp, H, concat, dtype, scale=0.7):
    params = init_gat_params(F_in, Fp, H, rng, concat, dtype)
    params = {k: randn(rng, v.shape, dtype, scale) for k, v in params.items()}   # b ≠ 0 too
    return {"x": randn(rng, (N, F_in), dtype), **params}


def torch_attention(e, adj):
    """softmax_j e[h, i, j] over adj[i, j]; a row without neighbours gets zero weights (its
    softmax runs over all j so that torch's backward sees no NaN, and is then multiplied by 0)."""
    adj = torch.from_numpy(adj)
    alive = adj.any(-1, keepdim=True)                                   # (N, 1)
    alpha = torch.softmax(e.masked_fill(~(adj | ~alive), -torch.inf), dim=-1)
    return alpha * alive.to(e.dtype)                                    # (H, N, N)


def torch_gat(adj, H, concat, slope, messages=None):
    """The paper's GAT, dense: ``messages(z, e)`` may add a relation term (returns e, msg)."""
    def theirs(x, W, a_src, a_dst, b, **extra):
        N = x.shape[0]
        z = (x @ W).reshape(N, H, -1).transpose(0, 1)                   # (H, N, F')
        e = (z * a_dst[:, None]).sum(-1)[:, :, None] + (z * a_src[:, None]).sum(-1)[:, None, :]
        msg = z[:, None]                                                # (H, 1, N, F')
        if messages is not None:
            e, msg = messages(z, e, msg, **extra)
        alpha = torch_attention(F.leaky_relu(e, slope), adj)            # (H, N, N)
        heads = (alpha[..., None] * msg).sum(2)                         # (H, N, F')
        out = heads.transpose(0, 1).reshape(N, -1) if concat else heads.mean(0)
        return out + b
    return theirs


def ours_gat(adj, H, concat, slope):
    def ours(x, **params):
        out, _, cache = gat_forward(x, adj, params, H, concat, slope)

        def backward(dout):
            dx, grads = gat_backward(dout, cache)
            return {"x": dx, **grads}
        return out, backward
    return ours


@examples(ci=100, thorough=3_000)          # torch autograd per example
@given(case=gat_cases(), slope=st.sampled_from([0.2, 0.0, 1.5]))
def test_gat_matches_torch(case, slope):
    N, F_in, Fp, H, concat, form, dtype, seed = case
    rng = np.random.default_rng(seed)
    adj = random_graph(rng, N)
    inputs = gat_inputs(rng, N, F_in, Fp, H, concat, dtype)
    assert_matches_torch("gat", ours_gat(as_form(adj, form, rng), H, concat, slope),
                         torch_gat(adj, H, concat, slope), inputs, ["x"] + GAT_NAMES, seed=seed)


@given(case=gat_cases())
def test_gat_weights_match_torch_and_the_edge_list_form(case):
    N, F_in, Fp, H, concat, _, _, seed = case
    rng = np.random.default_rng(seed)
    adj = random_graph(rng, N)
    inputs = gat_inputs(rng, N, F_in, Fp, H, concat, np.float64)
    x, params = inputs.pop("x"), inputs
    out, weights, _ = gat_forward(x, adj, params, H, concat)
    t = {k: torch.from_numpy(v) for k, v in params.items()}
    z = (torch.from_numpy(x) @ t["W"]).reshape(N, H, -1).transpose(0, 1)
    e = (z * t["a_dst"][:, None]).sum(-1)[:, :, None] + (z * t["a_src"][:, None]).sum(-1)[:, None]
    ref = torch_attention(F.leaky_relu(e, 0.2), adj).numpy()
    assert_close("gat weights", weights, ref, np.float64, op="gat weights")
    edges = as_form(adj, "edges", rng)                                  # (2, E), shuffled
    out_e, weights_e, _ = gat_forward(x, edges, params, H, concat)
    np.testing.assert_allclose(out_e, out, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(weights_e, weights[:, edges[0], edges[1]], rtol=1e-13, atol=0)


def test_gat_gradient_at_a_score_of_exactly_zero_matches_torch():
    """LeakyReLU'(0) is the negative slope, as in torch: nodes 0 and 1 have x = 0, so every
    edge between them has the score a_dst·0 + a_src·0 = 0 exactly, and their softmax rows
    (which also hold non-zero scores) send a gradient through those edges."""
    rng = np.random.default_rng(11)
    adj = np.ones((4, 4), bool)
    inputs = gat_inputs(rng, 4, 3, 2, 2, True, np.float64)
    inputs["x"][:2] = 0.0
    assert_matches_torch("gat", ours_gat(adj, 2, True, 0.2), torch_gat(adj, 2, True, 0.2),
                         inputs, ["x"] + GAT_NAMES, seed=11)


def test_gat_finite_differences():
    rng = np.random.default_rng(3)
    adj = random_graph(rng, 6)
    for concat in (True, False):
        inputs = gat_inputs(rng, 6, 4, 3, 2, concat, np.float64)
        check_finite_differences(ours_gat(adj, 2, concat, 0.2), inputs, ["x"] + GAT_NAMES)


def test_isolated_node_gets_zero_weights_out_b_and_no_gradient():
    rng = np.random.default_rng(4)
    adj = random_graph(rng, 6)
    adj[:, 2] = True                                    # everybody attends to node 2,
    adj[2] = False                                      # but node 2 attends to nobody
    inputs = gat_inputs(rng, 6, 4, 3, 2, True, np.float64)
    x, params = inputs.pop("x"), inputs
    out, weights, cache = gat_forward(x, adj, params, 2)
    assert np.all(weights[:, 2] == 0)
    np.testing.assert_array_equal(out[2], params["b"])
    dout = np.zeros_like(out)
    dout[2] = rng.standard_normal(out.shape[1])         # a loss on node 2's output only
    dx, grads = gat_backward(dout, cache)
    assert np.all(dx == 0) and all(np.all(grads[k] == 0) for k in ("W", "a_src", "a_dst"))
    np.testing.assert_array_equal(grads["b"], dout[2])


def test_graph_without_edges_and_weights_sum_to_one():
    rng = np.random.default_rng(5)
    inputs = gat_inputs(rng, 5, 3, 2, 3, False, np.float32)
    x, params = inputs.pop("x"), inputs
    out, weights, cache = gat_forward(x, np.zeros((2, 0), int), params, 3, concat=False)
    assert weights.shape == (3, 0) and out.dtype == np.float32
    np.testing.assert_array_equal(out, np.broadcast_to(params["b"], (5, 2)))
    dx, grads = gat_backward(np.ones_like(out), cache)
    assert np.all(dx == 0) and np.all(grads["W"] == 0)
    adj = random_graph(rng, 5)
    _, weights, _ = gat_forward(x, adj, params, 3, concat=False)
    np.testing.assert_allclose(weights.sum(-1), np.broadcast_to(adj.any(-1), (3, 5)), rtol=1e-6)


def test_float32_weights_stay_float32_in_both_forms():
    """The weights come back in x's dtype: (H, N, N) for a dense adjacency, (H, E) for an edge
    list, equal to each other at the edges."""
    rng = np.random.default_rng(9)
    adj = random_graph(rng, 5)
    inputs = gat_inputs(rng, 5, 3, 2, 2, True, np.float32)
    x, params = inputs.pop("x"), inputs
    edges = as_form(adj, "edges", rng)
    _, dense, _ = gat_forward(x, adj, params, 2)
    _, listed, _ = gat_forward(x, edges, params, 2)
    assert dense.dtype == listed.dtype == np.float32 and dense.shape == (2, 5, 5)
    np.testing.assert_allclose(dense[:, edges[0], edges[1]], listed, rtol=1e-6)


def test_zero_attention_vectors_give_the_mean_over_neighbours():
    """a_src = a_dst = 0: every score is 0, α_ij = 1/|N(i)| — mean aggregation (GCN-style)."""
    rng = np.random.default_rng(6)
    adj = random_graph(rng, 7)
    inputs = gat_inputs(rng, 7, 5, 4, 1, True, np.float64)
    x, params = inputs.pop("x"), inputs
    params["a_src"][:] = 0
    params["a_dst"][:] = 0
    out, _, _ = gat_forward(x, adj, params, 1)
    z = np.broadcast_to(x @ params["W"], (7, 7, 4))                   # row i: every z_j
    mean, _ = masked_mean_forward(z, adj)
    np.testing.assert_allclose(out, mean + params["b"], rtol=1e-12, atol=1e-13)


def test_nan_in_x_reaches_exactly_the_nodes_that_attend_to_it():
    rng = np.random.default_rng(7)
    adj = random_graph(rng, 6)
    inputs = gat_inputs(rng, 6, 4, 3, 2, True, np.float64)
    x, params = inputs.pop("x"), inputs
    x[1, 0] = np.nan
    out, _, _ = gat_forward(x, adj, params, 2)
    np.testing.assert_array_equal(np.isnan(out).any(-1), adj[:, 1])


def test_ten_thousand_nodes_as_an_edge_list():
    """The sparse path runs at a size where a dense (N, N) adjacency would be 10⁸ entries."""
    rng = np.random.default_rng(8)
    N, E = 10_000, 20_000
    flat = rng.choice(N * N, E, replace=False)
    edges = np.stack(np.divmod(flat, N))                                # (2, E), (i, j)
    params = init_gat_params(8, 4, 2, rng)
    x = randn(rng, (N, 8))
    out, weights, cache = gat_forward(x, edges, params, 2)
    assert out.shape == (N, 8) and weights.shape == (2, E)
    has = np.bincount(edges[0], minlength=N) > 0
    sums = np.stack([np.bincount(edges[0], weights=w, minlength=N) for w in weights])
    np.testing.assert_allclose(sums, np.broadcast_to(has, (2, N)).astype(float), rtol=1e-12)
    dx, _ = gat_backward(np.ones_like(out), cache)
    assert np.all(np.isfinite(dx))


@pytest.mark.parametrize("concat", [True, False])
def test_init_gat_params_shapes_dtype_and_glorot_bounds(concat):
    """W (F, H·F') and a_src, a_dst (H, F') are U(−a, a) with a = √(6 / (fan_in + fan_out)),
    b = 0; a float32 init is the float64 init (same seed) rounded, in float32 throughout."""
    F_in, Fp, H = 40, 20, 3
    params = init_gat_params(F_in, Fp, H, np.random.default_rng(0), concat)
    low = init_gat_params(F_in, Fp, H, np.random.default_rng(0), concat, np.float32)
    shapes = {"W": (F_in, H * Fp), "a_src": (H, Fp), "a_dst": (H, Fp),
              "b": (H * Fp,) if concat else (Fp,)}
    assert {k: v.shape for k, v in params.items()} == shapes
    assert all(v.dtype == np.float64 for v in params.values())
    assert all(v.dtype == np.float32 for v in low.values())
    for k in shapes:
        np.testing.assert_array_equal(low[k], params[k].astype(np.float32))
    assert np.all(params["b"] == 0)
    for k in ("W", "a_src", "a_dst"):
        bound = np.sqrt(6 / sum(shapes[k]))
        assert 0.9 * bound < np.abs(params[k]).max() <= bound, k
    assert not np.array_equal(params["a_src"], params["a_dst"])       # separate draws


@pytest.mark.parametrize("args, message", [
    ((0, 2, 3), "in_features must be an integer ≥ 1, got 0"),
    ((3, 0, 3), "out_features must be an integer ≥ 1, got 0"),
    ((3, 2, 0), "num_heads must be an integer ≥ 1, got 0"),
])
def test_init_gat_params_bad_sizes(args, message):
    with pytest.raises(ValueError) as info:
        init_gat_params(*args, np.random.default_rng(0))
    assert str(info.value) == message


def test_gat_bad_param_shape_message():
    """F' = W's columns / H is an integer in the message, (3, 2) not (3, 2.0)."""
    rng = np.random.default_rng(0)
    params = {**init_gat_params(3, 2, 3, rng), "a_src": np.ones((2, 4))}
    with pytest.raises(ValueError) as info:
        gat_forward(np.ones((5, 3)), np.eye(5, dtype=bool), params, 3)
    assert str(info.value) == "params['a_src'] must have shape (3, 2), got (2, 4)"


@pytest.mark.parametrize("change, message", [
    (lambda a: {**a, "adj": np.ones((4, 5), bool)}, "adj"),
    (lambda a: {**a, "adj": np.ones((5, 5))}, "adj"),
    (lambda a: {**a, "adj": np.array([[0, 1], [5, 2]])}, "adj"),
    (lambda a: {**a, "adj": np.array([[0, 0, 1], [1, 1, 2]])}, "more than once"),
    (lambda a: {**a, "x": np.ones((5, 2, 3))}, "x"),
    (lambda a: {**a, "num_heads": 4}, "num_heads"),
    (lambda a: {**a, "num_heads": 0}, "num_heads"),
    (lambda a: {**a, "concat": "yes"}, "concat"),
    (lambda a: {**a, "negative_slope": np.nan}, "negative_slope"),
    (lambda a: {**a, "params": {**a["params"], "a_src": np.ones((2, 4))}}, "a_src"),
    (lambda a: {**a, "params": {**a["params"], "b": np.ones(3)}}, "'b'"),
    (lambda a: {**a, "params": {k: v for k, v in a["params"].items() if k != "a_dst"}}, "a_dst"),
])
def test_gat_bad_input_names_the_argument(change, message):
    rng = np.random.default_rng(0)
    args = {"x": np.ones((5, 3)), "adj": np.eye(5, dtype=bool),
            "params": init_gat_params(3, 2, 3, rng), "num_heads": 3}
    with pytest.raises(ValueError, match=message):
        gat_forward(**change(args))


def test_gat_backward_checks_dout():
    rng = np.random.default_rng(0)
    out, _, cache = gat_forward(np.ones((4, 3)), np.eye(4, dtype=bool),
                                init_gat_params(3, 2, 2, rng), 2)
    with pytest.raises(ValueError, match="dout"):
        gat_backward(np.ones((4, 5)), cache)


def test_gat_backward_works_in_the_forward_dtype_and_keeps_no_param_copy():
    """A float64 dout on a float32 forward gives float32 gradients; the cache refers to the
    caller's params (no copy when they already have x's dtype)."""
    rng = np.random.default_rng(12)
    adj = random_graph(rng, 5)
    for concat in (True, False):
        inputs = gat_inputs(rng, 5, 4, 3, 2, concat, np.float32)
        x, params = inputs.pop("x"), inputs
        out, _, cache = gat_forward(x, adj, params, 2, concat)
        assert np.shares_memory(cache["proj"]["W"], params["W"])
        assert np.shares_memory(cache["attend"]["a_src"], params["a_src"])
        assert np.shares_memory(cache["attend"]["a_dst"], params["a_dst"])
        assert_backward_casts_dout(gat_backward, cache, out, GAT_NAMES, rng)
