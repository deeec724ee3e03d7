"""Pointer attention (attention_np.pointer) and the sorting models (attention_np.apps.pointer)
against torch float64 autograd and finite differences."""
import numpy as np
import pytest
import torch
from hypothesis import given

from attention_np.apps.pointer import (PointerConfig, chosen_before_mask, init_pointer_model,
                                       loss_and_grads, pointer_model_backward,
                                       pointer_model_forward, sequence_loss, sort_greedy)
from attention_np.pointer import pointer_attention_backward, pointer_attention_forward
from tests.helpers import assert_matches_torch, check_finite_differences, numba_scans
from tests.strategies import distinct_dims, dtypes, randn, random_mask, seeds

ARGS = ("q", "k", "W_q", "W_k", "v")


def ours(mask):
    """log p with the masked entries (−∞, a constant) written as 0, so that torch and we
    compare finite numbers; the backward ignores d log p there."""
    def run(**inputs):
        log_p, _, cache = pointer_attention_forward(*(inputs[a] for a in ARGS), mask=mask)
        out = log_p if mask is None else np.where(mask, log_p, 0).astype(log_p.dtype)
        return out, lambda d: dict(zip(ARGS, pointer_attention_backward(d, cache)))
    return run


def theirs(mask):
    def run(q, k, W_q, W_k, v):
        u = torch.tanh((q @ W_q)[:, :, None, :] + (k @ W_k)[:, None, :, :]) @ v   # (B, Tq, Tk)
        if mask is None:
            return torch.log_softmax(u, dim=-1)
        m = torch.from_numpy(np.broadcast_to(mask, u.shape).copy())
        log_p = torch.log_softmax(torch.where(m, u, torch.tensor(-torch.inf, dtype=u.dtype)),
                                  dim=-1)
        return torch.where(m, log_p, torch.zeros((), dtype=u.dtype))
    return run


def make_inputs(rng, B, Tq, Tk, Dq, Dk, A, dtype=np.float64):
    shapes = {"q": (B, Tq, Dq), "k": (B, Tk, Dk), "W_q": (Dq, A), "W_k": (Dk, A), "v": (A,)}
    return {a: randn(rng, shapes[a], dtype) for a in ARGS}


@given(dims=distinct_dims(6), dtype=dtypes, seed=seeds)
def test_pointer_attention_matches_torch(dims, dtype, seed):
    rng = np.random.default_rng(seed)
    inputs = make_inputs(rng, *dims, dtype=dtype)
    B, Tq, Tk = dims[:3]
    mask = random_mask(rng, (B, Tq, Tk))
    alive = mask & mask.any(axis=-1, keepdims=True)
    assert_matches_torch("pointer_attention", ours(mask), theirs(mask), inputs, list(inputs),
                         out_rows=alive, seed=seed)


@given(dims=distinct_dims(6), seed=seeds)
def test_pointer_attention_without_mask_matches_torch(dims, seed):
    inputs = make_inputs(np.random.default_rng(seed), *dims)
    assert_matches_torch("pointer_attention", ours(None), theirs(None), inputs, list(inputs),
                         seed=seed)


def test_pointer_attention_finite_differences():
    rng = np.random.default_rng(3)
    inputs = make_inputs(rng, 2, 3, 4, 5, 6, 7)
    mask = np.ones((2, 3, 4), bool)
    mask[0, 1, 2] = mask[1, 2, 0] = False
    check_finite_differences(ours(mask), inputs, list(inputs))


def test_pointer_distribution_masked_and_dead_rows():
    rng = np.random.default_rng(0)
    inputs = make_inputs(rng, 2, 3, 4, 5, 6, 7)
    mask = np.ones((2, 3, 4), bool)
    mask[0, 0, :2] = False
    mask[1, 2] = False                                   # a row with nothing left to point at
    log_p, p, cache = pointer_attention_forward(*inputs.values(), mask=mask)
    assert np.all(p[~mask] == 0) and np.all(np.isneginf(log_p[~mask]))
    np.testing.assert_allclose(p[mask.any(-1)].sum(-1), 1.0)
    assert np.all(p[1, 2] == 0) and not np.any(np.isnan(p))
    grads = pointer_attention_backward(np.ones_like(log_p), cache)
    assert all(np.all(np.isfinite(g)) for g in grads)


def test_pointer_attention_nan_propagates():
    inputs = make_inputs(np.random.default_rng(1), 1, 2, 3, 4, 4, 5)
    inputs["k"][0, 1, 0] = np.nan
    log_p, p, _ = pointer_attention_forward(*inputs.values())
    assert np.all(np.isnan(p))


def test_pointer_attention_bad_mask():
    inputs = make_inputs(np.random.default_rng(1), 2, 3, 4, 5, 6, 7)
    with pytest.raises(ValueError, match="mask"):
        pointer_attention_forward(*inputs.values(), mask=np.ones((2, 5, 4), bool))


# ------------------------------------------------------------------------------ the models
def test_chosen_before_mask():
    order = np.array([[2, 0, 1]])
    mask = chosen_before_mask(order)
    np.testing.assert_array_equal(mask[0], [[1, 1, 1], [1, 1, 0], [0, 1, 0]])


@pytest.mark.parametrize("model", ["pointer", "seq2seq"])
def test_sorting_model_finite_differences(model):
    cfg = PointerConfig(model=model, vocab=12, embed=3, hidden=4, attn=5)
    params = init_pointer_model(cfg, np.random.default_rng(0))
    values = np.array([[3, 7, 1, 9], [0, 11, 5, 2]])

    def loss_of(**p):
        out, _, cache = pointer_model_forward(values, p, cfg)
        loss, dout = sequence_loss(out, cache)     # the loss is the output: d loss scales dout
        loss = np.array(loss)
        return loss, lambda d: {k: g * d for k, g in pointer_model_backward(dout, cache).items()}
    check_finite_differences(loss_of, params, list(params), n_entries=6)


@pytest.mark.parametrize("model", ["pointer", "seq2seq"])
def test_greedy_outputs(model):
    cfg = PointerConfig(model=model, vocab=20, embed=4, hidden=6, attn=5)
    params = init_pointer_model(cfg, np.random.default_rng(0))
    values = np.array([[3, 7, 1, 9, 4], [0, 19, 5, 2, 8]])
    out, weights = sort_greedy(values, params, cfg)
    assert out.shape == values.shape and weights.shape == (2, 5, 5)
    np.testing.assert_allclose(weights.sum(-1), 1.0)
    if model == "pointer":           # a permutation of the input, whatever the training
        np.testing.assert_array_equal(np.sort(out, 1), np.sort(values, 1))
    loss, grads = loss_and_grads(params, cfg, values)
    assert np.isfinite(loss) and set(grads) == set(params)


@pytest.mark.parametrize("values, words", [
    (np.array([[1, 1, 2]]), ["distinct"]),
    (np.array([[1, 30, 2]]), ["vocab", "30"]),
    (np.array([1, 2, 3]), ["2-D", "(3,)"]),
])
def test_sorting_model_bad_input(values, words):
    cfg = PointerConfig(vocab=20)
    params = init_pointer_model(cfg, np.random.default_rng(0))
    with pytest.raises(ValueError) as info:
        pointer_model_forward(values, params, cfg)
    for w in words:
        assert w in str(info.value)


@pytest.mark.parametrize("model", ["pointer", "seq2seq"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_numba_backend_gives_the_numpy_loss_gradients_and_sort(model, dtype, monkeypatch):
    """backend="numba" (the demo's training) runs both LSTMs on the fused kernels: the same
    loss, gradients and greedy output as the NumPy reference."""
    from dataclasses import replace
    scans = numba_scans(monkeypatch)
    cfg = PointerConfig(model=model, vocab=20, embed=4, hidden=6, attn=5)
    params = init_pointer_model(cfg, np.random.default_rng(0), dtype=dtype)
    values = np.array([[3, 7, 1, 9, 4], [0, 19, 5, 2, 8], [11, 6, 13, 17, 1]])
    fast = replace(cfg, backend="numba")
    loss, grads = loss_and_grads(params, cfg, values)
    loss_n, grads_n = loss_and_grads(params, fast, values)
    tol = dict(rtol=1e-9, atol=1e-12) if dtype == np.float64 else dict(rtol=2e-4, atol=2e-6)
    np.testing.assert_allclose(loss_n, loss, **tol)
    assert set(grads_n) == set(grads)
    for name in grads:
        np.testing.assert_allclose(grads_n[name], grads[name], err_msg=name, **tol)
    np.testing.assert_array_equal(sort_greedy(values, params, fast)[0],
                                  sort_greedy(values, params, cfg)[0])
    assert scans == ["lstm"] * 3               # training: encoder and decoder; sorting: encoder


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="backend"):
        PointerConfig(backend="cuda")
