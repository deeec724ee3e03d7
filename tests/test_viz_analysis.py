"""attention_np.viz.analysis / atlas / interop: each number checked against a direct computation."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy.optimize import linprog

from attention_np.viz import (align_queries_keys, attention_flow, attention_rollout,
                              head_entropy, head_summary, project_2d, residual_attention,
                              to_bertviz, to_circuitsvis)
from attention_np.viz.examples import example_attention


def random_attention(rng, shape, dtype=np.float64):
    e = np.exp(2 * rng.standard_normal(shape))
    return (e / e.sum(-1, keepdims=True)).astype(dtype)


def rollout_by_loops(a, residual, fusion):
    """R = Â_L … Â_1 written out with Python loops, one entry at a time."""
    L, H, T, _ = a.shape
    fuse = {"mean": np.mean, "max": np.max, "min": np.min}[fusion]
    R = np.eye(T)
    for l in range(L):
        hat = np.zeros((T, T))
        for i in range(T):
            for j in range(T):
                hat[i, j] = residual * (i == j) + (1 - residual) * fuse([a[l, h, i, j] for h in range(H)])
            hat[i] /= hat[i].sum()
        R = hat @ R
    return R


@settings(deadline=None)
@given(L=st.integers(1, 4), H=st.integers(1, 3), T=st.integers(1, 6),
       residual=st.floats(0.0, 1.0), fusion=st.sampled_from(["mean", "max", "min"]),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**16))
def test_rollout_matches_direct_computation(L, H, T, residual, fusion, dtype, seed):
    a = random_attention(np.random.default_rng(seed), (L, H, T, T), dtype)
    got = attention_rollout(a, residual=residual, head_fusion=fusion)
    assert got.shape == (T, T) and got.dtype == dtype
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(got, rollout_by_loops(a.astype(np.float64), residual, fusion),
                               rtol=tol * 10, atol=tol)
    np.testing.assert_allclose(got.sum(-1), 1, atol=tol * 10)


def test_rollout_edge_cases():
    a = random_attention(np.random.default_rng(0), (3, 2, 5, 5))
    np.testing.assert_allclose(attention_rollout(a, residual=1.0), np.eye(5))
    np.testing.assert_allclose(attention_rollout(a[:1], residual=0.0), a[0].mean(0), atol=1e-15)
    a[1, :, 2] = 0                                  # a fully masked query row: no NaN
    assert np.isfinite(attention_rollout(a, residual=0.0)).all()
    with pytest.raises(ValueError, match="head_fusion"):
        attention_rollout(a, head_fusion="median")
    with pytest.raises(ValueError, match="attentions"):
        attention_rollout(a[0])


def flow_by_linprog(hat, source, sink):
    """Max-flow as a linear programme on the layered graph (independent of scipy's max-flow)."""
    L, T = hat.shape[0], hat.shape[-1]
    edges = [(l * T + j, (l + 1) * T + i, hat[l, i, j]) for l in range(L) for i in range(T)
             for j in range(T)]
    n = (L + 1) * T
    A_eq = np.zeros((n, len(edges)))
    for e, (u, v, _) in enumerate(edges):
        A_eq[u, e] -= 1
        A_eq[v, e] += 1
    inner = [v for v in range(n) if v not in (source, sink)]
    gain = np.array([1.0 if v == sink else 0.0 for _, v, _ in edges])
    res = linprog(-gain, A_eq=A_eq[inner], b_eq=np.zeros(len(inner)),
                  bounds=[(0, c) for *_, c in edges], method="highs")
    return -res.fun


def test_flow_matches_linear_programme():
    a = random_attention(np.random.default_rng(1), (2, 3, 4, 4))
    flow = attention_flow(a, residual=0.5)
    hat = residual_attention(a, residual=0.5)
    for i in range(4):
        for j in range(4):
            assert flow[i, j] == pytest.approx(flow_by_linprog(hat, j, 2 * 4 + i), abs=2e-5)


def test_flow_with_one_layer_is_the_attention_and_outputs_restricts_rows():
    a = random_attention(np.random.default_rng(2), (1, 2, 5, 5), np.float32)
    flow = attention_flow(a)
    assert flow.dtype == np.float32
    np.testing.assert_allclose(flow, residual_attention(a)[0], atol=2e-6)
    part = attention_flow(a, outputs=[3])
    np.testing.assert_allclose(part[3], flow[3])
    assert not part[[0, 1, 2, 4]].any()


def test_entropy_of_known_distributions():
    T = 6
    attn = np.zeros((2, 3, T, T), np.float32)
    attn[0, 0] = 1 / T                                        # uniform → log T
    attn[0, 1] = np.eye(T)                                    # one-hot → 0
    attn[0, 2, :, :2] = 0.5                                   # two keys → log 2
    attn[1] = np.tril(np.ones((T, T))) / np.arange(1, T + 1)[:, None]   # causal uniform
    ent = head_entropy(attn)
    assert ent.shape == (2, 3) and ent.dtype == np.float32
    np.testing.assert_allclose(ent[0], [np.log(T), 0, np.log(2)], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(ent[1], np.log(np.arange(1, T + 1)).mean(), rtol=1e-6)


def test_entropy_mask_drops_entries_and_fully_masked_rows():
    T = 5
    mask = np.ones((T, T), bool)
    mask[:, 3:] = False                                      # keys 3, 4 are padding
    mask[4] = False                                          # query 4 is padding
    attn = np.where(mask, 1 / 3, 0.0)[None, None]
    np.testing.assert_allclose(head_entropy(attn, mask=mask), [[np.log(3)]])
    with pytest.raises(ValueError, match="mask"):
        head_entropy(attn, mask=mask.astype(int))


def test_head_summary_on_exact_patterns():
    T = 5
    tokens = ["[CLS]", "a", "b", "c", "[SEP]"]
    prev = np.eye(T, k=-1)
    prev[0, 0] = 1
    heads = np.stack([prev, np.eye(T, k=1), np.eye(T),
                      np.tile(np.eye(T)[4], (T, 1)), np.tile(np.eye(T)[0], (T, 1))])
    heads[1, 4, 4] = 1                                       # last row of "next" looks at itself
    s = head_summary(heads[None], tokens)
    assert set(s) == {"first", "separator", "previous", "next", "self"}
    np.testing.assert_allclose(s["previous"][0], [1, 0, 0, 0, 0.25])
    np.testing.assert_allclose(s["next"][0], [0, 1, 0, 0.25, 0])
    np.testing.assert_allclose(s["self"][0], [1 / T, 1 / T, 1, 1 / T, 1 / T])
    np.testing.assert_allclose(s["separator"][0], [0, 2 / T, 1 / T, 1, 0])
    np.testing.assert_allclose(s["first"][0], [2 / T, 0, 1 / T, 0, 1])
    one = head_summary(np.ones((1, 1, 1, 1)), ["x"])         # T = 1: no previous/next token
    assert one["previous"][0, 0] == 0 and one["self"][0, 0] == 1


def test_pca_matches_sklearn_and_qk_alignment_keeps_softmax():
    from sklearn.decomposition import PCA
    rng = np.random.default_rng(3)
    x = rng.standard_normal((40, 6)) * np.arange(1, 7)
    ours, ref = project_2d(x), PCA(2).fit_transform(x)
    np.testing.assert_allclose(np.abs(ours), np.abs(ref), atol=1e-10)
    assert project_2d(x[:, :1]).shape == (40, 2)
    q, k = rng.standard_normal((7, 4)), rng.standard_normal((9, 4)) + 3
    q2, k2 = align_queries_keys(q, k)
    def soft(s):
        e = np.exp(s - s.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)
    np.testing.assert_allclose(soft(q2 @ k2.T), soft(q @ k.T), atol=1e-12)
    assert np.linalg.norm(q2, axis=1).mean() == pytest.approx(np.linalg.norm(k2, axis=1).mean())


def test_interop_shapes():
    torch = pytest.importorskip("torch")
    a = example_attention(3, 2, 5)
    cv = to_circuitsvis(a, list("abcde"))
    assert cv["attention"].shape == (6, 5, 5) and cv["tokens"] == list("abcde")
    assert cv["attention_head_names"][:3] == ["L0H0", "L0H1", "L1H0"]
    np.testing.assert_array_equal(cv["attention"][3], a[1, 1])
    assert to_circuitsvis(a, list("abcde"), layers=2)["attention"].shape == (2, 5, 5)
    bv = to_bertviz(a)
    assert len(bv) == 3 and isinstance(bv[0], torch.Tensor) and tuple(bv[0].shape) == (1, 2, 5, 5)
    np.testing.assert_array_equal(bv[2][0].numpy(), a[2])
    assert isinstance(to_bertviz(a, as_torch=False)[0], np.ndarray)
    with pytest.raises(ValueError, match="tokens"):
        to_circuitsvis(a, list("abc"))
