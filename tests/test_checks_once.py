"""Checks at the door: a public call validates its mask once (the ``mask_checks`` fixture of
tests/conftest.py counts the calls); every backward checks its dout."""
import numpy as np
import pytest

import attention_np as an
from tests.strategies import randn, random_mask


def test_multi_head_attention_checks_its_mask_once(mask_checks):
    rng = np.random.default_rng(0)
    params = an.init_multi_head_params(6, rng)
    x_q, x_kv = randn(rng, (2, 3, 6)), randn(rng, (2, 5, 6))
    an.multi_head_attention_forward(x_q, x_kv, params, 2, mask=random_mask(rng, (2, 1, 3, 5)),
                                    causal=True)
    assert mask_checks == ["mask"]


def test_multi_head_attention_with_dropout_checks_its_mask_once(mask_checks):
    rng = np.random.default_rng(1)
    params = an.init_multi_head_params(6, rng)
    x = randn(rng, (2, 4, 6))
    an.multi_head_attention_forward(x, x, params, 3, mask=random_mask(rng, (2, 3, 4, 4)),
                                    dropout_p=0.3, rng=rng)
    assert mask_checks == ["mask"]


def test_sdpa_checks_its_mask_once(mask_checks):
    rng = np.random.default_rng(2)
    q, k, v = randn(rng, (2, 3, 4, 5)), randn(rng, (2, 3, 6, 5)), randn(rng, (2, 3, 6, 2))
    an.scaled_dot_product_attention_forward(q, k, v, random_mask(rng, (4, 6)), causal=True)
    assert mask_checks == ["mask"]


@pytest.mark.parametrize("forward", ["soft", "hard", "softmax"])
def test_soft_hard_and_softmax_check_their_mask_once(mask_checks, forward):
    rng = np.random.default_rng(3)
    scores, values, mask = randn(rng, (2, 3, 4)), randn(rng, (2, 4, 5)), random_mask(rng, (3, 4))
    if forward == "soft":
        an.soft_attention_forward(scores, values, mask, dropout_p=0.5, rng=rng)
    elif forward == "hard":
        an.hard_attention_forward(scores, values, rng, mask)
    else:
        an.softmax_forward(scores, mask=mask)
    assert mask_checks == ["mask"]


def test_check_multi_head_inputs_broadcasts_the_mask_for_the_private_core():
    rng = np.random.default_rng(4)
    params = an.init_multi_head_params(4, rng)
    x_q, x_kv = randn(rng, (3, 2, 4)), randn(rng, (3, 5, 4))
    pad = an.padding_mask(np.array([5, 1, 3]), 5)[:, None, None, :]
    checked = an.self_attention.check_multi_head_inputs(x_q, x_kv, params, 2, pad)
    assert checked[3].shape == (3, 2, 2, 5)
    out, w, _ = an.self_attention.multi_head_attention_core(*checked[:3], 2, checked[3], False,
                                                        "numpy", 0.0, None)
    ref, ref_w, _ = an.multi_head_attention_forward(x_q, x_kv, params, 2, pad)
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_array_equal(w, ref_w)


def _forward_backward_pairs():
    """(name of the dout argument, forward output, backward taking a dout) for each op."""
    rng = np.random.default_rng(5)
    q, k, v = randn(rng, (2, 3, 4)), randn(rng, (2, 5, 4)), randn(rng, (2, 5, 6))
    y, c_sm = an.softmax_forward(q)
    ctx, _, c_soft = an.soft_attention_forward(randn(rng, (2, 3, 5)), v)
    hard, _, _, c_hard = an.hard_attention_forward(randn(rng, (2, 3, 5)), v, rng)
    out, _, c_sdpa = an.scaled_dot_product_attention_forward(q, k, v)
    params = an.init_multi_head_params(4, rng)
    mha, _, c_mha = an.multi_head_attention_forward(q, k, params, 2)
    pairs = [("dy", y, lambda d: an.softmax_backward(d, c_sm)),
             ("dcontext", ctx, lambda d: an.soft_attention_backward(d, c_soft)),
             ("dcontext", hard, lambda d: an.hard_attention_backward(d, c_hard, 1.0)),
             ("dout", out, lambda d: an.scaled_dot_product_attention_backward(d, c_sdpa)),
             ("dout", mha, lambda d: an.multi_head_attention_backward(d, c_mha))]
    W, W_q, W_k, a = randn(rng, (4, 4)), randn(rng, (4, 7)), randn(rng, (4, 7)), randn(rng, (7,))
    for name, args in [("dot", (q, k)), ("scaled_dot", (q, k)), ("general", (q, k, W)),
                       ("additive", (q, k, W_q, W_k, a))]:
        e, cache = getattr(an, f"{name}_score_forward")(*args)
        backward = getattr(an, f"{name}_score_backward")
        pairs.append(("dscores", e, lambda d, backward=backward, cache=cache: backward(d, cache)))
    return pairs


@pytest.mark.parametrize("index", range(9))
def test_backward_rejects_a_dout_of_the_wrong_shape_naming_both_shapes(index):
    name, out, backward = _forward_backward_pairs()[index]
    wrong = np.ones(out.shape[:-1] + (out.shape[-1] + 1,))
    with pytest.raises(ValueError) as info:
        backward(wrong)
    for word in [name, str(out.shape), str(wrong.shape)]:
        assert word in str(info.value)
    backward(np.ones_like(out))                                  # the right shape still works


@pytest.mark.parametrize("dropout_p, rng, words", [
    (1.0, np.random.default_rng(0), ["dropout_p", "[0, 1)"]),
    (-0.1, np.random.default_rng(0), ["dropout_p"]),
    ("0.1", np.random.default_rng(0), ["dropout_p"]),
    (0.1, None, ["rng", "dropout_p"]),
    (0.1, 3, ["rng", "Generator"]),
])
def test_bad_dropout_arguments_raise_at_every_door(dropout_p, rng, words):
    r = np.random.default_rng(6)
    x, values, params = randn(r, (2, 3, 4)), randn(r, (2, 4, 5)), an.init_multi_head_params(4, r)
    calls = [lambda: an.soft_attention_forward(x, values, None, dropout_p, rng),
             lambda: an.scaled_dot_product_attention_forward(x, x, x, dropout_p=dropout_p, rng=rng),
             lambda: an.multi_head_attention_forward(x, x, params, 2, dropout_p=dropout_p, rng=rng)]
    for call in calls:
        with pytest.raises(ValueError) as info:
            call()
        for word in words:
            assert word in str(info.value)
