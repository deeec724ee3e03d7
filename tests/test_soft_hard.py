"""Soft attention (vs torch) and hard attention (REINFORCE vs the exact expected gradient)."""
import numpy as np
import pytest
import torch
from hypothesis import given

import attention_np as an
from tests.helpers import assert_matches_torch, check_finite_differences
from tests.strategies import alive_rows, distinct_dims, dtypes, randn, random_mask, seeds


def soft_pair(mask=None, dweights=None):
    def ours(scores, values):
        context, _, cache = an.soft_attention_forward(scores, values, mask)
        return context, lambda dc: dict(zip(("scores", "values"),
                                            an.soft_attention_backward(dc, cache, dweights)))
    return ours


def torch_soft(mask):
    def theirs(scores, values):
        keep = torch.from_numpy(mask | ~mask.any(-1, keepdims=True))
        return torch.softmax(scores.masked_fill(~keep, float("-inf")), -1) @ values
    return theirs


@given(dims=distinct_dims(4), dtype=dtypes, seed=seeds)
def test_soft_attention_matches_torch_with_dead_rows(dims, dtype, seed):
    B, Tq, Tk, Dv = dims
    rng = np.random.default_rng(seed)
    mask = random_mask(rng, (B, Tq, Tk))
    inputs = {"scores": randn(rng, (B, Tq, Tk), dtype, 2.0), "values": randn(rng, (B, Tk, Dv), dtype)}
    assert_matches_torch("soft_attention", soft_pair(mask), torch_soft(mask), inputs,
                         ["scores", "values"], out_rows=alive_rows(mask), seed=seed)
    context, weights, cache = an.soft_attention_forward(**inputs, mask=mask)
    dead = ~mask.any(-1)
    assert np.all(weights[dead] == 0) and np.all(context[dead] == 0)
    dscores, dvalues = an.soft_attention_backward(np.ones_like(context), cache)
    assert np.all(dscores[dead] == 0) and np.all(np.isfinite(dvalues))


def test_soft_attention_dweights_adds_a_loss_on_the_weights():
    """dweights must be the gradient of an extra term placed on α (doubly-stochastic regulariser)."""
    rng = np.random.default_rng(0)
    scores, values = randn(rng, (2, 5, 4)), randn(rng, (2, 4, 3))
    extra = randn(rng, (2, 5, 4))           # gradient of a loss Σ α ⊙ extra
    s_t = torch.from_numpy(scores).requires_grad_()
    a = torch.softmax(s_t, -1)
    dc = randn(rng, (2, 5, 3))
    ((a @ torch.from_numpy(values)) * torch.from_numpy(dc)).sum().add((a * torch.from_numpy(extra)).sum()).backward()
    _, _, cache = an.soft_attention_forward(scores, values)
    dscores, _ = an.soft_attention_backward(dc, cache, dweights=extra)
    np.testing.assert_allclose(dscores, s_t.grad.numpy(), atol=1e-12)


def test_soft_attention_finite_differences():
    rng = np.random.default_rng(1)
    mask = random_mask(rng, (2, 3, 5))
    inputs = {"scores": randn(rng, (2, 3, 5)), "values": randn(rng, (2, 5, 4))}
    check_finite_differences(soft_pair(mask, dweights=None), inputs, ["scores", "values"])


def test_article_example_4_1_3():
    """Three encoder states, one decoder state: e_t, α_t, c_t by hand."""
    h = np.array([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]])
    s_t = np.array([[[2.0, 1.0]]])
    e, _ = an.dot_score_forward(s_t, h)                               # [2, 1, 3]
    c, alpha, _ = an.soft_attention_forward(e, h)
    expected_alpha = np.exp([2.0, 1.0, 3.0]) / np.exp([2.0, 1.0, 3.0]).sum()
    np.testing.assert_allclose(alpha[0, 0], expected_alpha)
    np.testing.assert_allclose(c[0, 0], expected_alpha @ h[0])


def test_hard_attention_samples_follow_alpha_and_never_masked():
    rng = np.random.default_rng(0)
    scores = np.log(np.array([[[0.1, 0.2, 0.7, 0.0]]]) + 1e-300)
    mask = np.array([True, True, True, False])
    values = np.eye(4)[None]
    counts = np.zeros(4)
    for _ in range(4000):
        context, index, weights, _ = an.hard_attention_forward(scores, values, rng, mask)
        counts[index[0, 0]] += 1
        np.testing.assert_array_equal(context[0, 0], values[0, index[0, 0]])
    np.testing.assert_allclose(counts / counts.sum(), [0.1, 0.2, 0.7, 0.0], atol=0.025)


def test_hard_attention_fully_masked_query_gives_index_minus_one_and_zeros():
    rng = np.random.default_rng(0)
    scores, values = randn(rng, (2, 3, 4)), randn(rng, (2, 4, 5))
    mask = np.ones((2, 3, 4), bool)
    mask[1, 2] = False
    context, index, _, cache = an.hard_attention_forward(scores, values, rng, mask)
    assert index[1, 2] == -1 and np.all(context[1, 2] == 0)
    dscores, _ = an.hard_attention_backward(np.ones_like(context), cache, reward=1.0)
    assert np.all(dscores[1, 2] == 0) and np.all(np.isfinite(dscores))


def test_reinforce_gradient_is_unbiased_for_the_expected_reward():
    """Mean of the REINFORCE estimate ≈ exact ∇_e of −E_{j~α}[r_j], enumerated over positions."""
    rng = np.random.default_rng(42)
    B, Tq, Tk, D = 2, 3, 5, 2
    scores, values = randn(rng, (B, Tq, Tk)), randn(rng, (B, Tk, D))
    r = randn(rng, (B, Tq, Tk))                        # reward of choosing key j for query i
    exact = torch.from_numpy(scores).requires_grad_()
    (-(torch.softmax(exact, -1) * torch.from_numpy(r)).sum()).backward()
    n, total = 20000, np.zeros_like(scores)
    for _ in range(n):
        _, index, _, cache = an.hard_attention_forward(scores, values, rng)
        reward = np.take_along_axis(r, index[..., None], -1)[..., 0]       # (B, Tq)
        total += an.hard_attention_backward(np.zeros((B, Tq, D)), cache, reward)[0]
    np.testing.assert_allclose(total / n, exact.grad.numpy(), atol=0.03)


def test_hard_attention_value_gradient_follows_the_sampled_path():
    rng = np.random.default_rng(3)
    scores, values = randn(rng, (2, 3, 4)), randn(rng, (2, 4, 5))
    context, index, _, cache = an.hard_attention_forward(scores, values, rng)
    dc = randn(rng, context.shape)
    _, dvalues = an.hard_attention_backward(dc, cache, reward=0.0)
    expected = np.zeros_like(values)
    for b in range(2):
        for i in range(3):
            expected[b, index[b, i]] += dc[b, i]
    np.testing.assert_allclose(dvalues, expected)


def test_hard_attention_dweights_adds_the_exact_gradient_of_a_loss_on_alpha():
    """With reward 0 the scores' gradient is only that of Σ α ⊙ g, which torch can compute."""
    rng = np.random.default_rng(4)
    scores, values = randn(rng, (2, 3, 4)), randn(rng, (2, 4, 5))
    mask = random_mask(rng, (2, 3, 4))
    context, _, weights, cache = an.hard_attention_forward(scores, values, rng, mask=mask)
    g = randn(rng, weights.shape)
    dscores, _ = an.hard_attention_backward(np.zeros_like(context), cache, reward=0.0,
                                            dweights=g)
    e = torch.from_numpy(scores).requires_grad_(True)
    keep = torch.from_numpy(mask | ~mask.any(-1, keepdims=True))
    alpha = torch.softmax(e.masked_fill(~keep, float("-inf")), -1)
    (alpha * torch.from_numpy(np.where(alive_rows(mask), g, 0))).sum().backward()
    np.testing.assert_allclose(np.where(alive_rows(mask), dscores, 0), e.grad.numpy(),
                               rtol=1e-12, atol=1e-12)
    assert np.all(dscores[~alive_rows(mask)[..., 0]] == 0)


def test_hard_attention_replays_a_given_index_path():
    rng = np.random.default_rng(5)
    scores, values = randn(rng, (2, 3, 4)), randn(rng, (2, 4, 5))
    context, index, _, cache = an.hard_attention_forward(scores, values, rng)
    again, same, _, cache2 = an.hard_attention_forward(scores, values, None, index=index)
    np.testing.assert_array_equal(same, index)
    np.testing.assert_array_equal(again, context)
    dc = randn(rng, context.shape)
    for a, b in zip(an.hard_attention_backward(dc, cache, 0.7), an.hard_attention_backward(dc, cache2, 0.7)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("call, words", [
    (lambda: an.hard_attention_forward(np.ones((2, 3, 4)), np.ones((2, 4, 6)), None,
                                       index=np.zeros((2, 4), int)), ["index", "(2, 3)"]),
    (lambda: an.hard_attention_forward(np.ones((2, 3, 4)), np.ones((2, 4, 6)), None,
                                       index=np.full((2, 3), 4)), ["index", "Tk=4"]),
    (lambda: an.soft_attention_forward(np.ones((2, 3, 4)), np.ones((2, 5, 6))),
     ["scores", "values", "(2, 3, 4)", "(2, 5, 6)"]),
    (lambda: an.soft_attention_forward(np.ones((2, 3, 4)), np.ones((5, 4, 6))), ["scores", "values"]),
    (lambda: an.soft_attention_forward(np.ones((2, 3, 4)), np.ones((2, 4, 6)), np.ones((3, 4))),
     ["mask", "boolean"]),
    (lambda: an.hard_attention_forward(np.ones((2, 3, 4)), np.ones((2, 4, 6)), 0), ["rng"]),
])
def test_soft_hard_bad_input(call, words):
    with pytest.raises(ValueError) as info:
        call()
    for w in words:
        assert w in str(info.value)
