"""Efficient attention variants against torch autograd: sliding window, block-sparse, argument
checks, the recall task (linear, Performer, Linformer: tests/test_efficient_lowrank.py)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from attention_np import efficient as ef
from attention_np.self_attention import scaled_dot_product_attention_forward
from tests.helpers import assert_matches_torch, check_finite_differences
from tests.strategies import distinct_dims, dtypes, randn, seeds


def qkv(rng, B, H, Tq, Tk, D, Dv, dtype=np.float64):
    return {"q": randn(rng, (B, H, Tq, D), dtype), "k": randn(rng, (B, H, Tk, D), dtype),
            "v": randn(rng, (B, H, Tk, Dv), dtype)}


def pair(forward, backward, **kwargs):
    """Adapt a variant's (forward, backward) to the helpers' ``ours`` contract."""
    def ours(q, k, v, **params):
        out, _, cache = forward(q, k, v, **({"params": params} if params else {}), **kwargs)

        def grads(d):
            dq, dk, dv, *dparams = backward(d, cache)
            return {"q": dq, "k": dk, "v": dv, **(dparams[0] if dparams else {})}
        return out, grads
    return ours


def torch_masked_sdpa(mask):
    """torch's SDPA under our mask; rows with no key attend everywhere (their dout is 0)."""
    m = torch.from_numpy(mask | ~mask.any(-1, keepdims=True))
    return lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=m)


# --- sliding window ---------------------------------------------------------------------------

@st.composite
def window_case(draw):
    B, H, T, D, Dv = draw(distinct_dims(5, hi=11))
    window = draw(st.integers(0, T))
    g = draw(st.lists(st.integers(0, T - 1), max_size=3, unique=True))
    return B, H, T, D, Dv, window, g


@given(case=window_case(), causal=st.booleans(), dtype=dtypes, seed=seeds)
def test_sliding_window_matches_torch(case, causal, dtype, seed):
    B, H, T, D, Dv, window, g = case
    inputs = qkv(np.random.default_rng(seed), B, H, T, T, D, Dv, dtype)
    mask = ef.sliding_window_mask(T, window, causal, g)
    assert_matches_torch(
        "sliding_window_attention",
        pair(ef.sliding_window_attention_forward, ef.sliding_window_attention_backward,
             window=window, causal=causal, global_tokens=g),
        torch_masked_sdpa(mask), inputs, ["q", "k", "v"], seed=seed)


def test_sliding_window_mask_pattern():
    m = ef.sliding_window_mask(6, 1, global_tokens=[4])
    assert m[0].tolist() == [True, True, False, False, True, False]
    assert m[4].all() and m[:, 4].all()
    c = ef.sliding_window_mask(6, 2, causal=True, global_tokens=[0])
    assert c[5].tolist() == [True, False, False, True, True, True]
    assert not np.any(np.triu(c, 1))


def test_sliding_window_wide_window_is_exact_attention():
    rng = np.random.default_rng(3)
    x = qkv(rng, 2, 1, 7, 7, 4, 3)
    out, w, _ = ef.sliding_window_attention_forward(x["q"], x["k"], x["v"], window=7)
    ref, _, _ = scaled_dot_product_attention_forward(x["q"], x["k"], x["v"])
    assert w is None
    np.testing.assert_allclose(out, ref, atol=1e-12)


def test_sliding_window_finite_differences():
    rng = np.random.default_rng(4)
    check_finite_differences(
        pair(ef.sliding_window_attention_forward, ef.sliding_window_attention_backward,
             window=2, causal=True, global_tokens=[1, 6]), qkv(rng, 2, 2, 9, 9, 3, 4),
        ["q", "k", "v"])


# --- block sparse -----------------------------------------------------------------------------

@given(dims=distinct_dims(5, hi=8), Tq=st.integers(1, 13), Tk=st.integers(1, 13),
       block=st.integers(1, 5), causal=st.booleans(), dtype=dtypes, seed=seeds)
def test_block_sparse_matches_torch(dims, Tq, Tk, block, causal, dtype, seed):
    B, H, D, Dv, _ = dims
    rng = np.random.default_rng(seed)
    layout = rng.random((-(-Tq // block), -(-Tk // block))) < 0.5
    inputs = qkv(rng, B, H, Tq, Tk, D, Dv, dtype)
    mask = ef.block_layout_mask(layout, block, Tq, Tk)
    if causal:
        mask = mask & np.tril(np.ones((Tq, Tk), bool))
    assert_matches_torch(
        "block_sparse_attention",
        pair(ef.block_sparse_attention_forward, ef.block_sparse_attention_backward,
             layout=layout, block_size=block, causal=causal),
        torch_masked_sdpa(mask), inputs, ["q", "k", "v"], out_rows=mask.any(-1)[:, None],
        seed=seed)


def test_bigbird_layout_has_band_global_and_random_blocks():
    lay = ef.block_layout(8, 8, window=1, global_blocks=[0], random_blocks=2,
                          rng=np.random.default_rng(0))
    assert lay[0].all() and lay[:, 0].all()
    assert all(lay[a, max(a - 1, 0):a + 2].all() for a in range(8))
    assert (lay.sum(1) >= 3).all() and lay.sum() < 64


def test_block_sparse_finite_differences():
    rng = np.random.default_rng(5)
    layout = ef.block_layout(3, 3, window=0, global_blocks=[2])
    check_finite_differences(
        pair(ef.block_sparse_attention_forward, ef.block_sparse_attention_backward,
             layout=layout, block_size=3, causal=True), qkv(rng, 2, 2, 8, 8, 3, 2),
        ["q", "k", "v"])


# --- argument checks --------------------------------------------------------------------------

def test_bad_arguments_raise_value_errors_naming_them():
    rng = np.random.default_rng(0)
    x = qkv(rng, 1, 1, 4, 5, 3, 2)
    with pytest.raises(ValueError, match="Tq = Tk"):
        ef.sliding_window_attention_forward(x["q"], x["k"], x["v"], window=1)
    y = qkv(rng, 1, 1, 4, 4, 3, 2)
    with pytest.raises(ValueError, match="window"):
        ef.sliding_window_attention_forward(y["q"], y["k"], y["v"], window=-1)
    with pytest.raises(ValueError, match="global_tokens"):
        ef.sliding_window_mask(4, 1, global_tokens=[4])
    with pytest.raises(ValueError, match="layout"):
        ef.block_sparse_attention_forward(x["q"], x["k"], x["v"], np.ones((2, 2), bool), 2)
    with pytest.raises(ValueError, match=r"\bW\b.*\bq\b"):          # W (m, D) and q (…, D)
        ef.performer_attention_forward(x["q"], x["k"], x["v"], np.ones((4, 2)))
    with pytest.raises(ValueError, match="params"):
        ef.linformer_attention_forward(x["q"], x["k"], x["v"], {"E": np.ones((2, 4)),
                                                                "F": np.ones((2, 4))})


def test_recall_task_smoke_loss_decreases():
    """The demo's associative-recall model trains (tiny: T = 16, 80 Adam steps)."""
    from demos import _recall_task as recall
    from demos._efficient_recall import recall_variants
    cfg = recall.RecallConfig(T=16, n_pairs=2, steps=80, batch=32, lr=1e-2)
    attend, extra = recall_variants(cfg, window=2)["window w=2 + global question"]
    _, losses = recall.train(cfg, attend, extra)
    assert np.mean(losses[-10:]) < 0.8 * np.mean(losses[:10])
    x, y, d, qpos = recall.make_batch(cfg, np.random.default_rng(0), 5)
    assert x.shape == (5, 16, cfg.n_features) and y.shape == d.shape == qpos.shape == (5, 1)
    assert np.all(qpos == 15) and np.all((d >= 1) & (d < 16))
    assert np.all(x[np.arange(5), 15 - d[:, 0], 3 + cfg.n_keys + y[:, 0]] == 1)   # the value


@given(seed=seeds, T=st.integers(12, 40), Q=st.integers(2, 4))
def test_multi_query_batches_put_each_pair_before_its_question(seed, T, Q):
    """Questions at random positions: question j carries the key of pair j, which stands
    ``distance`` tokens earlier and carries the target value; every token has one type."""
    from demos import _recall_task as recall
    cfg = recall.RecallConfig(T=T, n_pairs=Q + 1, n_queries=Q)
    x, y, d, qpos = recall.make_batch(cfg, np.random.default_rng(seed), 6)
    rows = np.arange(6)[:, None]
    nk = cfg.n_keys
    assert y.shape == d.shape == qpos.shape == (6, Q) and np.all(d >= 1)
    pair = qpos - d
    assert np.all(x[rows, qpos, 2] == 1) and np.all(x[rows, pair, 1] == 1)
    np.testing.assert_array_equal(x[rows, qpos, 3:3 + nk], x[rows, pair, 3:3 + nk])  # same key
    assert np.all(x[rows, pair, 3 + nk + y] == 1)
    np.testing.assert_array_equal(x[..., :3].sum(-1), 1)
    assert np.all(x[:, :, 1].sum(1) == Q + 1) and np.all(x[:, :, 2].sum(1) == Q)
    assert len({tuple(r) for r in qpos}) > 1 or Q == 1                 # not one fixed place


@pytest.mark.parametrize("n_queries", [1, 3])
def test_recall_model_gradients_match_torch_and_finite_differences(n_queries):
    """The readout at the question positions (B, Q) and the scatter of its gradient back."""
    from demos import _recall_task as recall
    from demos._efficient_recall import recall_variants
    cfg = recall.RecallConfig(T=10, n_pairs=3, n_queries=n_queries, d_model=6, d_hidden=5)
    rng = np.random.default_rng(0)
    params = recall.init_params(cfg, rng)
    x, y, _, qpos = recall.make_batch(cfg, rng, 4)
    attend, _ = recall_variants(cfg, window=2)["exact"]

    def ours(**p):
        logits, cache = recall.forward(p, x, qpos, attend)
        return logits, lambda d: recall.backward(d, cache)

    def theirs(W_in, b_in, W_q, W_k, W_v, W_1, b_1, W_2, b_2):
        h = torch.from_numpy(x) @ W_in + b_in
        out = F.scaled_dot_product_attention(h @ W_q, h @ W_k, h @ W_v)      # (B, T, d)
        z = out[torch.arange(4)[:, None], torch.from_numpy(qpos)]            # (B, Q, d)
        return torch.relu(z @ W_1 + b_1) @ W_2 + b_2
    assert_matches_torch("recall model", ours, theirs, params, grad_wrt=list(params))
    check_finite_differences(ours, params, list(params), n_entries=4)


def test_a_global_question_row_is_exact_attention():
    """Why "window + global question" scores like exact attention: its question row is exact."""
    from demos._efficient_recall import global_row_gap
    assert global_row_gap(T=40, window=3) < 1e-12
