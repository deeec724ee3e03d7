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


F = np.ones


@pytest.mark.parametrize("call, message", [
    # the argument named exactly, the shapes given (issue 34)
    (lambda: an.soft_attention_forward(F((2, 3, 4)), F((5, 4, 6))),
     "scores (…, Tq, Tk) and values (…, Tk, Dv) must have the same leading dims, "
     "got scores(2, 3, 4) and values(5, 4, 6)"),
    (lambda: an.soft_attention_forward(F((2, 3, 4)), F((4, 6))),
     "scores (…, Tq, Tk) and values (…, Tk, Dv) must have the same leading dims, "
     "got scores(2, 3, 4) and values(4, 6)"),
    (lambda: an.soft_attention_forward(F((2, 3, 4)), F((2, 5, 6))),
     "scores dim -1 (4) must equal values dim -2 (5); got scores(2, 3, 4) and values(2, 5, 6)"),
    (lambda: an.soft_attention_forward(F(4), F((4, 6))),
     "scores must have at least 2 dimensions, got shape (4,)"),
    (lambda: an.soft_attention_forward(F((3, 4)), F(4)),
     "values must have at least 2 dimensions, got shape (4,)"),
    (lambda: an.soft_attention_forward(np.array([["a"]]), F((1, 6))), "scores must be a floating"),
    (lambda: an.soft_attention_forward(F((3, 4)), np.array([["a"]])), "values must be a floating"),
    (lambda: an.soft_attention_forward(F((3, 4)), F((4, 6)), F((3, 4))),
     "mask must be a boolean array"),
    (lambda: an.soft_attention_forward(F((3, 4)), F((4, 6)), F((5, 4), bool)),
     "mask with shape (5, 4) is not broadcastable to (3, 4)"),
    (lambda: an.soft_attention_forward(F((3, 4)), F((4, 6)), dropout_p=1.0),
     "dropout_p must be a number in [0, 1), got 1.0"),
    (lambda: an.soft_attention_forward(F((3, 4)), F((4, 6)), dropout_p=0.5),
     "rng must be a numpy.random.Generator when dropout_p > 0 (dropout_p=0.5)"),
])
def test_soft_attention_messages_name_the_argument(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert str(info.value).startswith(message), str(info.value)


def test_soft_attention_backward_checks_its_upstream_gradients():
    context, weights, cache = an.soft_attention_forward(F((2, 3, 4)), F((2, 4, 6)))
    assert context.shape == (2, 3, 6) and weights.shape == (2, 3, 4)
    with pytest.raises(ValueError) as info:
        an.soft_attention_backward(F((2, 3, 4)), cache)
    assert str(info.value) == "dcontext must have the forward output's shape (2, 3, 6), got (2, 3, 4)"
    with pytest.raises(ValueError) as info:
        an.soft_attention_backward(F((2, 3, 6)), cache, dweights=F((2, 3, 6)))
    assert str(info.value) == "dweights must have the forward output's shape (2, 3, 4), got (2, 3, 6)"
    assert len(an.soft_attention_backward(F((2, 3, 6)), cache)) == 2


def test_soft_attention_by_hand_with_a_masked_key():
    """Two queries over three keys, the last key masked: α = softmax over the first two."""
    scores = np.array([[0.0, np.log(3.0), 5.0], [0.0, 0.0, -5.0]])
    values = np.array([[1.0, 0.0], [0.0, 1.0], [7.0, 7.0]])
    mask = np.array([True, True, False])
    context, weights, cache = an.soft_attention_forward(scores, values, mask)
    np.testing.assert_allclose(weights, [[0.25, 0.75, 0.0], [0.5, 0.5, 0.0]], rtol=1e-15)
    np.testing.assert_allclose(context, [[0.25, 0.75], [0.5, 0.5]], rtol=1e-15)
    dscores, dvalues, dalpha = an.soft_attention_backward(np.array([[1.0, 0.0], [0.0, 0.0]]),
                                                          cache, return_dweights=True)
    np.testing.assert_allclose(dalpha, [[1.0, 0.0, 7.0], [0.0, 0.0, 0.0]], rtol=1e-15)
    np.testing.assert_allclose(dvalues, [[0.25, 0.0], [0.75, 0.0], [0.0, 0.0]], rtol=1e-15)
    # de = α ⊙ (dα − Σ α dα): row 0, Σ α dα = 0.25 → [0.25·0.75, 0.75·(−0.25), 0]
    np.testing.assert_allclose(dscores, [[0.1875, -0.1875, 0.0], [0.0, 0.0, 0.0]], rtol=1e-15)


class _FixedDraws:
    """Stands in for a Generator: ``random(shape)`` returns the given uniforms."""

    def __init__(self, u):
        self.u = np.asarray(u, float)

    def random(self, shape):
        return np.broadcast_to(self.u, shape).copy()


def _inverse_cdf(weights, u):
    """Reference sampler: the first j with Σ_{k≤j} w_k > u · Σ_k w_k, or −1 for a row whose
    weights are all zero or hold a NaN."""
    out = []
    for row, ui in zip(weights, u):
        total = row.sum()
        out.append(-1 if not total > 0 else int(np.searchsorted(np.cumsum(row), ui * total, side="right")))
    return np.array(out)


def test_hard_sampling_is_the_inverse_cdf_of_the_generators_uniforms():
    from attention_np.hard import _sample_rows
    weights = np.array([[2.0, 0.0, 2.0, 1.0], [0.1, 0.6, 0.3, 0.0], [0.0, 0.0, 0.0, 0.0],
                        [np.nan, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 5.0]])
    for seed in range(20):
        u = np.random.default_rng(seed).random((5, 1))[:, 0]
        index = _sample_rows(weights, np.random.default_rng(seed))
        np.testing.assert_array_equal(index, _inverse_cdf(weights, u))
    assert list(_sample_rows(np.zeros((3, 0)), np.random.default_rng(0))) == [-1, -1, -1]
    assert list(_sample_rows(np.ones((2, 1)), np.random.default_rng(0))) == [0, 0]


def test_hard_sampling_at_the_edges_of_the_cdf():
    from attention_np.hard import _sample_rows
    # u · total landing exactly on a cdf step takes the next key ("first cdf > u")
    assert list(_sample_rows(np.array([[0.5, 0.5]]), _FixedDraws(0.5))) == [1]
    assert list(_sample_rows(np.array([[0.25, 0.25, 0.5]]), _FixedDraws(0.5))) == [2]
    # rounding can push u · total to the end of the cdf: the last key with weight > 0 is taken
    weights = np.array([[0.2, 0.3, 0.5, 0.0], [0.0, 0.4, 0.0, 0.6]])
    assert list(_sample_rows(weights, _FixedDraws(1.0))) == [2, 3]
    assert list(_sample_rows(weights, _FixedDraws(0.0))) == [0, 1]


def test_hard_attention_with_one_key_always_takes_it():
    rng = np.random.default_rng(6)
    scores, values = randn(rng, (2, 3, 1)), randn(rng, (2, 1, 4))
    context, index, weights, _ = an.hard_attention_forward(scores, values, rng)
    np.testing.assert_array_equal(index, np.zeros((2, 3), int))
    np.testing.assert_array_equal(weights, np.ones((2, 3, 1)))
    np.testing.assert_array_equal(context, np.repeat(values, 3, axis=1))


def test_hard_attention_without_keys_and_with_nan_scores():
    context, index, weights, _ = an.hard_attention_forward(np.zeros((2, 3, 0)), np.zeros((2, 0, 4)),
                                                           np.random.default_rng(0))
    assert context.shape == (2, 3, 4) and np.all(context == 0)
    np.testing.assert_array_equal(index, np.full((2, 3), -1))
    scores = np.array([[0.0, np.nan], [0.0, 1.0]])
    context, index, _, _ = an.hard_attention_forward(scores, np.eye(2), np.random.default_rng(0))
    assert index[0] == -1 and np.all(np.isnan(context[0])) and index[1] in (0, 1)
    np.testing.assert_array_equal(context[1], np.eye(2)[index[1]])


@pytest.mark.parametrize("call, message", [
    (lambda: an.hard_attention_forward(F((3, 4)), F((4, 6)), None),
     "rng must be a numpy.random.Generator when no index is given (hard attention samples)"),
    (lambda: an.hard_attention_forward(F((3, 4)), F((4, 6)), None, index=np.zeros(2, int)),
     "index must be an integer array of shape (3,), got shape (2,) dtype int64"),
    (lambda: an.hard_attention_forward(F((3, 4)), F((4, 6)), None, index=np.zeros(3)),
     "index must be an integer array of shape (3,), got shape (3,) dtype float64"),
    (lambda: an.hard_attention_forward(F((3, 4)), F((4, 6)), None, index=np.array([0, -2, 1])),
     "index entries must lie in [-1, Tk=4), got -2..1"),
    (lambda: an.hard_attention_forward(F((3, 4)), F((4, 6)), None, index=np.array([0, 4, 1])),
     "index entries must lie in [-1, Tk=4), got 0..4"),
    (lambda: an.hard_attention_forward(F((3, 4)), F((5, 6)), np.random.default_rng(0)),
     "scores dim -1 (4) must equal values dim -2 (5)"),
])
def test_hard_attention_messages_name_the_argument(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert str(info.value).startswith(message), str(info.value)


def test_hard_attention_accepts_the_edges_of_a_given_path():
    context, index, _, _ = an.hard_attention_forward(np.zeros((3, 4)), np.eye(4), None,
                                                     index=np.array([-1, 0, 3]))
    np.testing.assert_array_equal(index, [-1, 0, 3])
    np.testing.assert_array_equal(context, [[0, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]])


def test_hard_attention_backward_checks_reward_and_gradients_naming_them():
    context, index, weights, cache = an.hard_attention_forward(
        np.zeros((2, 3, 4)), np.ones((2, 4, 5)), None, index=np.zeros((2, 3), int))
    with pytest.raises(ValueError) as info:
        an.hard_attention_backward(np.zeros((2, 3, 5)), cache, reward=np.ones(2))
    assert str(info.value) == ("reward with shape (2,) is not broadcastable to (2, 3) "
                               "(one reward per query)")
    with pytest.raises(ValueError) as info:
        an.hard_attention_backward(np.zeros((2, 3, 4)), cache, reward=1.0)
    assert str(info.value) == "dcontext must have the forward output's shape (2, 3, 5), got (2, 3, 4)"
    with pytest.raises(ValueError) as info:
        an.hard_attention_backward(np.zeros((2, 3, 5)), cache, 1.0, dweights=np.zeros((2, 3, 5)))
    assert str(info.value) == "dweights must have the forward output's shape (2, 3, 4), got (2, 3, 5)"
    with pytest.raises(ValueError) as info:
        an.hard_attention_backward(np.zeros((2, 3, 5)), cache, reward=np.array(["a"]))
    assert str(info.value).startswith("reward must be a floating-point array")
    # one reward per query: de = −r (onehot − α), α uniform over 4 keys, key 0 taken
    r = np.array([[1.0, 2.0, 0.0], [0.0, 0.0, -1.0]])
    dscores, dvalues = an.hard_attention_backward(np.zeros((2, 3, 5)), cache, reward=r)
    np.testing.assert_allclose(dscores, -r[..., None] * (np.eye(4)[0] - 0.25), rtol=1e-15)
    assert dscores.dtype == np.float64 and np.all(dvalues == 0)


def test_hard_attention_keeps_float32():
    """float32 scores and values give float32 weights, context and gradients, whatever the
    dtype of the reward (a Python float is float64)."""
    rng = np.random.default_rng(3)
    scores = rng.standard_normal((2, 3, 4)).astype(np.float32)
    values = rng.standard_normal((2, 4, 5)).astype(np.float32)
    context, index, weights, cache = an.hard_attention_forward(scores, values, rng)
    assert context.dtype == weights.dtype == np.float32
    np.testing.assert_array_equal(context, np.take_along_axis(values, index[..., None], axis=1))
    dscores, dvalues = an.hard_attention_backward(np.ones_like(context), cache, reward=0.5)
    assert dscores.dtype == dvalues.dtype == np.float32
