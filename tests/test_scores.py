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
                                       np.ones((6, 7)), np.ones(8)), ["v", "(7)", "(8,)"]),
])
def test_score_bad_input(call, words):
    with pytest.raises(ValueError) as info:
        call()
    for w in words:
        assert w in str(info.value)
