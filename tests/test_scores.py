"""The four score functions of the article against torch and finite differences."""
import numpy as np
import pytest
import torch
from hypothesis import given

import attention_np as an
from tests.helpers import assert_matches_torch, check_finite_differences
from tests.strategies import distinct_dims, dtypes, randn, seeds

NAMES = {  # forward, backward, names of its inputs in argument order, torch formula
    "dot_score": (an.dot_score_forward, an.dot_score_backward, ("q", "k"),
                  lambda q, k: q @ k.transpose(-1, -2)),
    "scaled_dot_score": (an.scaled_dot_score_forward, an.scaled_dot_score_backward, ("q", "k"),
                         lambda q, k: q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5),
    "general_score": (an.general_score_forward, an.general_score_backward, ("q", "k", "W"),
                      lambda q, k, W: q @ W @ k.transpose(-1, -2)),
    "additive_score": (an.additive_score_forward, an.additive_score_backward,
                       ("q", "k", "W_q", "W_k", "v"),
                       lambda q, k, W_q, W_k, v: torch.tanh(
                           (q @ W_q)[:, :, None, :] + (k @ W_k)[:, None, :, :]) @ v),
}


def pair(name):
    forward, backward, args, _ = NAMES[name]

    def ours(**inputs):
        scores, cache = forward(*(inputs[a] for a in args))
        return scores, lambda d: dict(zip(args, backward(d, cache)))
    return ours


def make_inputs(name, rng, B, Tq, Tk, Dq, Dk, A, dtype=np.float64):
    same = name in ("dot_score", "scaled_dot_score")
    shapes = {"q": (B, Tq, Dq), "k": (B, Tk, Dq if same else Dk), "W": (Dq, Dk),
              "W_q": (Dq, A), "W_k": (Dk, A), "v": (A,)}
    return {a: randn(rng, shapes[a], dtype) for a in NAMES[name][2]}


@pytest.mark.parametrize("name", list(NAMES))
@given(dims=distinct_dims(6), dtype=dtypes, seed=seeds)
def test_score_matches_torch(name, dims, dtype, seed):
    inputs = make_inputs(name, np.random.default_rng(seed), *dims, dtype=dtype)
    assert_matches_torch(name, pair(name), NAMES[name][3], inputs, list(inputs), seed=seed)


@pytest.mark.parametrize("name", list(NAMES))
def test_score_finite_differences(name):
    inputs = make_inputs(name, np.random.default_rng(3), 2, 3, 4, 5, 6, 7)
    check_finite_differences(pair(name), inputs, list(inputs))


def test_article_example_dot_score_is_s_dot_h():
    s_t = np.array([[[1.0, 0.0, 2.0]]])                 # decoder state, (B=1, Tq=1, D=3)
    h = np.array([[[1.0, 1.0, 1.0], [0.0, 2.0, 0.0], [1.0, 0.0, -1.0]]])   # 3 encoder states
    e, _ = an.dot_score_forward(s_t, h)
    np.testing.assert_array_equal(e, [[[3.0, 0.0, -1.0]]])


@pytest.mark.parametrize("call, words", [
    (lambda: an.dot_score_forward(np.ones((2, 3, 4)), np.ones((2, 5, 6))), ["q", "k", "(2, 3, 4)"]),
    (lambda: an.dot_score_forward(np.ones((3, 4)), np.ones((2, 5, 4))), ["q", "3-D"]),
    (lambda: an.scaled_dot_score_forward(np.ones((2, 3, 4)), np.ones((1, 5, 4))), ["q", "k"]),
    (lambda: an.general_score_forward(np.ones((2, 3, 4)), np.ones((2, 5, 6)), np.ones((6, 4))),
     ["W", "(4, 6)", "(6, 4)"]),
    (lambda: an.additive_score_forward(np.ones((2, 3, 4)), np.ones((2, 5, 6)), np.ones((4, 7)),
                                       np.ones((6, 7)), np.ones(8)), ["v", "(7,)", "(8,)"]),
])
def test_score_bad_input(call, words):
    with pytest.raises(ValueError) as info:
        call()
    for w in words:
        assert w in str(info.value)


F = np.ones


@pytest.mark.parametrize("call, message", [
    # every argument's name and axis, exactly (issue 34: a misspelt or swapped name fails)
    (lambda: an.dot_score_forward(F((2, 3, 4)), F((2, 5, 6))),
     "q dim 2 (4) must equal k dim 2 (6); got q(2, 3, 4) and k(2, 5, 6)"),
    (lambda: an.dot_score_forward(F((2, 3, 4)), F((3, 5, 4))),
     "q dim 0 (2) must equal k dim 0 (3); got q(2, 3, 4) and k(3, 5, 4)"),
    (lambda: an.dot_score_forward(F((2, 3, 4)), F((2, 5))), "k must be 3-D, got shape (2, 5)"),
    (lambda: an.dot_score_forward(np.array([["a"]]), F((2, 5, 4))), "q must be a floating-point"),
    (lambda: an.dot_score_forward(F((2, 3, 4)), np.array([["a"]])), "k must be a floating-point"),
    (lambda: an.scaled_dot_score_forward(F((2, 3, 4)), F((2, 5, 6))),
     "q dim 2 (4) must equal k dim 2 (6)"),
    (lambda: an.scaled_dot_score_forward(F((2, 3, 0)), F((2, 5, 0))),
     "q must have a positive feature dimension D (the scale is 1/√D) (axis -1), got shape (2, 3, 0)"),
    (lambda: an.general_score_forward(F((2, 3, 4)), F((2, 5, 6)), F((2, 4, 6))),
     "W must be 2-D, got shape (2, 4, 6)"),
    (lambda: an.general_score_forward(F((2, 3, 4)), F((2, 5, 6)), np.array([["a"]])),
     "W must be a floating-point"),
    (lambda: an.general_score_forward(F((2, 3, 4)), F((2, 5, 6)), F((4, 5))),
     "W must have shape (4, 6), got (4, 5)"),
    (lambda: an.general_score_forward(F((2, 3, 4)), F((3, 5, 6)), F((4, 6))),
     "q dim 0 (2) must equal k dim 0 (3)"),
    (lambda: an.additive_score_forward(F((2, 3, 4)), F((2, 5, 6)), F(4), F((6, 7)), F(7)),
     "W_q must be 2-D, got shape (4,)"),
    (lambda: an.additive_score_forward(F((2, 3, 4)), F((2, 5, 6)), F((4, 7)), F(6), F(7)),
     "W_k must be 2-D, got shape (6,)"),
    (lambda: an.additive_score_forward(F((2, 3, 4)), F((2, 5, 6)), F((4, 7)), F((6, 7)), F((7, 1))),
     "v must be 1-D, got shape (7, 1)"),
    (lambda: an.additive_score_forward(F((2, 3, 4)), F((2, 5, 6)), F((5, 7)), F((6, 7)), F(7)),
     "W_q must have shape (4, ?), got (5, 7)"),
    (lambda: an.additive_score_forward(F((2, 3, 4)), F((2, 5, 6)), F((4, 7)), F((4, 7)), F(7)),
     "W_k must have shape (6, 7), got (4, 7)"),
    (lambda: an.additive_score_forward(F((2, 3, 4)), F((2, 5, 6)), F((4, 7)), F((6, 8)), F(7)),
     "W_k must have shape (6, 7), got (6, 8)"),
    (lambda: an.additive_score_forward(F((2, 3, 4)), F((2, 5, 6)), F((4, 7)), F((6, 7)), F(8)),
     "v must have shape (7,), got (8,)"),
    (lambda: an.additive_score_forward(F((2, 3, 4)), F((3, 5, 6)), F((4, 7)), F((6, 7)), F(7)),
     "q dim 0 (2) must equal k dim 0 (3)"),
    (lambda: an.additive_score_forward(np.array([["a"]]), F((2, 5, 6)), F((4, 7)), F((6, 7)), F(7)),
     "q must be a floating-point"),
    (lambda: an.additive_score_forward(F((2, 3, 4)), F((2, 5, 6)), F((4, 7)), np.array(["a"]), F(7)),
     "W_k must be a floating-point"),
    (lambda: an.additive_score_forward(F((2, 3, 4)), F((2, 5, 6)), np.array(["a"]), F((6, 7)), F(7)),
     "W_q must be a floating-point"),
    (lambda: an.additive_score_forward(F((2, 3, 4)), F((2, 5, 6)), F((4, 7)), F((6, 7)), np.array(["a"])),
     "v must be a floating-point"),
])
def test_score_messages_name_the_argument_and_axis(call, message):
    with pytest.raises(ValueError) as info:
        call()
    assert str(info.value).startswith(message), str(info.value)


@pytest.mark.parametrize("name", list(NAMES))
def test_score_backward_checks_dscores(name):
    forward, backward, args, _ = NAMES[name]
    shapes = {"q": (2, 3, 4), "k": (2, 5, 4), "W": (4, 4), "W_q": (4, 6), "W_k": (4, 6), "v": (6,)}
    rng = np.random.default_rng(0)
    scores, cache = forward(*(randn(rng, shapes[a]) for a in args))
    assert scores.shape == (2, 3, 5)
    with pytest.raises(ValueError) as info:
        backward(np.ones((2, 5, 3)), cache)
    assert str(info.value) == "dscores must have the forward output's shape (2, 3, 5), got (2, 5, 3)"


def test_scaled_dot_score_by_hand():
    """D = 4: the scale is 1/2, in the forward and the backward."""
    q, k = np.array([[[1.0, 2.0, 0.0, 2.0]]]), np.array([[[2.0, 0.0, 1.0, 1.0], [0.0, 0.0, 0.0, 4.0]]])
    e, cache = an.scaled_dot_score_forward(q, k)
    np.testing.assert_array_equal(e, [[[2.0, 4.0]]])
    dq, dk = an.scaled_dot_score_backward(np.array([[[1.0, 0.0]]]), cache)
    np.testing.assert_array_equal(dq, k[:, :1] / 2)
    np.testing.assert_array_equal(dk, [[[0.5, 1.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0]]])
