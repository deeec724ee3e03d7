"""Linear attention, Performer (FAVOR+) and Linformer against torch, with finite differences
(sliding window, block-sparse and the argument checks: tests/test_efficient.py)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from attention_np import efficient as ef
from attention_np.self_attention import scaled_dot_product_attention_forward
from tests.helpers import assert_matches_torch, check_finite_differences
from tests.strategies import distinct_dims, dtypes, seeds
from tests.test_efficient import pair, qkv

# --- linear and Performer ---------------------------------------------------------------------

def torch_kernelized(phi, causal, eps):
    def attend(q, k, v):
        a = phi(q) @ phi(k).transpose(-1, -2)                         # (..., Tq, Tk)
        if causal:
            a = torch.tril(a)
        return (a @ v) / (a.sum(-1, keepdim=True) + eps)
    return attend


@given(dims=distinct_dims(6, hi=10), causal=st.booleans(), dtype=dtypes, seed=seeds)
def test_linear_attention_matches_torch(dims, causal, dtype, seed):
    B, H, Tq, Tk, D, Dv = dims
    Tk = Tq if causal else Tk
    inputs = qkv(np.random.default_rng(seed), B, H, Tq, Tk, D, Dv, dtype)
    assert_matches_torch(
        "linear_attention",
        pair(ef.linear_attention_forward, ef.linear_attention_backward, causal=causal),
        torch_kernelized(lambda x: F.elu(x) + 1, causal, 1e-6), inputs, ["q", "k", "v"],
        seed=seed)


def test_linear_attention_causal_chunks_cross_boundaries():
    """T = 150 spans three chunks of 64: the carried state must match the quadratic form."""
    rng = np.random.default_rng(6)
    x = qkv(rng, 1, 2, 150, 150, 5, 3)
    assert_matches_torch(
        "linear_attention",
        pair(ef.linear_attention_forward, ef.linear_attention_backward, causal=True),
        torch_kernelized(lambda t: F.elu(t) + 1, True, 1e-6), x, ["q", "k", "v"])


def favor_torch(W):
    Wt = torch.from_numpy(W)

    def phi(x, per_row):
        xs = x * x.shape[-1] ** -0.25
        logits = xs @ Wt.to(x.dtype).T - 0.5 * (xs * xs).sum(-1, keepdim=True)
        c = logits.amax(dim=(-1,) if per_row else (-2, -1), keepdim=True).detach()
        return torch.exp(logits - c) / W.shape[0] ** 0.5
    return phi


@given(dims=distinct_dims(6, hi=10), m=st.integers(1, 20), causal=st.booleans(), dtype=dtypes,
       seed=seeds)
def test_performer_matches_torch(dims, m, causal, dtype, seed):
    B, H, Tq, Tk, D, Dv = dims
    Tk = Tq if causal else Tk
    rng = np.random.default_rng(seed)
    W = ef.orthogonal_random_features(m, D, rng)
    inputs = qkv(rng, B, H, Tq, Tk, D, Dv, dtype)
    phi = favor_torch(W)

    def theirs(q, k, v):
        a = phi(q, True) @ phi(k, False).transpose(-1, -2)
        a = torch.tril(a) if causal else a
        return (a @ v) / (a.sum(-1, keepdim=True) + 1e-12)
    assert_matches_torch(
        "performer_attention",
        pair(ef.performer_attention_forward, ef.performer_attention_backward, W=W,
             causal=causal), theirs, inputs, ["q", "k", "v"], seed=seed)


def test_performer_converges_to_softmax_attention():
    rng = np.random.default_rng(7)
    x = qkv(rng, 1, 2, 32, 32, 8, 4)
    x["q"], x["k"] = 0.5 * x["q"], 0.5 * x["k"]
    exact, _, _ = scaled_dot_product_attention_forward(x["q"], x["k"], x["v"])
    errs = [np.abs(ef.performer_attention_forward(
        x["q"], x["k"], x["v"], ef.orthogonal_random_features(m, 8, rng))[0] - exact).mean()
        for m in (8, 512)]
    assert errs[1] < 0.25 * errs[0] and errs[1] < 0.03


def test_orthogonal_features_are_orthogonal_within_a_block():
    W = ef.orthogonal_random_features(10, 4, np.random.default_rng(0))
    G = W[:4] @ W[:4].T
    np.testing.assert_allclose(G - np.diag(np.diag(G)), 0, atol=1e-12)
    assert W.shape == (10, 4)


@pytest.mark.parametrize("causal", [False, True])
def test_linear_and_performer_finite_differences(causal):
    rng = np.random.default_rng(8)
    x = qkv(rng, 2, 2, 70, 70, 3, 2)                                 # 70 > one chunk
    check_finite_differences(pair(ef.linear_attention_forward, ef.linear_attention_backward,
                                  causal=causal), x, ["q", "k", "v"])
    W = ef.orthogonal_random_features(5, 3, rng)
    check_finite_differences(pair(ef.performer_attention_forward, ef.performer_attention_backward,
                                  W=W, causal=causal), x, ["q", "k", "v"])


# --- Linformer ------------------------------------------------------------------------------

@given(dims=distinct_dims(7, hi=10), dtype=dtypes, seed=seeds)
def test_linformer_matches_torch(dims, dtype, seed):
    B, H, Tq, Tk, D, Dv, r = dims
    rng = np.random.default_rng(seed)
    inputs = {**qkv(rng, B, H, Tq, Tk, D, Dv, dtype),
              **ef.init_linformer_projections(r, Tk, rng, dtype)}

    def theirs(q, k, v, E, F):
        return torch.nn.functional.scaled_dot_product_attention(q, E @ k, F @ v)
    assert_matches_torch("linformer_attention",
                         pair(ef.linformer_attention_forward, ef.linformer_attention_backward),
                         theirs, inputs, ["q", "k", "v", "E", "F"], seed=seed)


def test_linformer_finite_differences():
    rng = np.random.default_rng(9)
    inputs = {**qkv(rng, 2, 2, 5, 6, 3, 4), **ef.init_linformer_projections(3, 6, rng)}
    check_finite_differences(pair(ef.linformer_attention_forward,
                                  ef.linformer_attention_backward),
                             inputs, ["q", "k", "v", "E", "F"])


def test_linformer_with_identity_projection_is_exact_attention():
    rng = np.random.default_rng(10)
    x = qkv(rng, 2, 2, 5, 6, 3, 4)
    P = ef.mean_pool_projections(6, 6)
    np.testing.assert_allclose(P["E"], np.eye(6))
    out, w, _ = ef.linformer_attention_forward(x["q"], x["k"], x["v"], P)
    ref, ref_w, _ = scaled_dot_product_attention_forward(x["q"], x["k"], x["v"])
    np.testing.assert_allclose(out, ref, atol=1e-12)
    assert ef.mean_pool_projections(2, 5)["F"].sum(1).tolist() == [1.0, 1.0]
