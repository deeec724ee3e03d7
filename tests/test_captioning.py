"""Show, Attend and Tell: data, encoder vs torch, decoder gradients, REINFORCE (BLEU, training
and the demo: tests/test_captioning_eval.py; beam search: tests/test_decoding.py)."""
import itertools

import numpy as np
import pytest

from attention_np.apps.captioning.baseline import (baseline_decoder_backward,
                                                   baseline_decoder_forward, init_baseline_params)
from attention_np.apps.captioning.decoder import (decoder_forward, init_decoder_params, step_backward,
                                             step_forward)
from attention_np.apps.captioning.encoder import (encoder_backward, encoder_forward, grid_shape,
                                             init_encoder_params)
from attention_np.apps.captioning.model import CaptionConfig, caption_loss
from demos._digits_data import CANVAS, END, FIRST_DIGIT, PAD, START, decode, make_caption_data
from tests.helpers import assert_matches_torch, check_finite_differences, numerical_grad

TINY = dict(vocab=13, embed=5, hidden=6, attn=4)


# ----------------------------------------------------------------------------- data
def test_data_captions_boxes_and_images_agree():
    d = make_caption_data(40, "test", seed=3)
    assert d.images.shape == (40, *CANVAS) and 0 <= d.images.min() and d.images.max() <= 1
    for img, cap, digits, boxes in zip(d.images, d.captions, d.digits, d.boxes):
        k = int((digits >= 0).sum())
        assert 2 <= k <= 5 and cap[0] == START and cap[k + 1] == END and np.all(cap[k + 2:] == PAD)
        assert np.array_equal(cap[1:k + 1], digits[:k] + FIRST_DIGIT)
        b = boxes[:k]
        assert np.all(b[:, 0] >= 0) and np.all(b[:, 2] <= CANVAS[0]) and np.all(b[:, 3] <= CANVAS[1])
        assert np.all(b[1:, 1] >= b[:-1, 3]), "digits are left to right and do not overlap"
        assert np.all((b[:, 3] - b[:, 1] >= 8) & (b[:, 3] - b[:, 1] <= 12))
        inside = np.zeros(CANVAS, bool)
        for top, left, bottom, right in b:
            inside[top:bottom, left:right] = True
        assert img[inside].mean() > 3 * img[~inside].mean(), "the ink is inside the boxes"
    again = make_caption_data(40, "test", seed=3)
    assert np.array_equal(again.images, d.images) and decode(d.captions[0]) == decode(again.captions[0])


# -------------------------------------------------------------------------- encoder
@pytest.mark.parametrize("pools", [None, ((2, 1), (4, 3))])
def test_encoder_matches_torch(pools):
    import torch
    import torch.nn.functional as tf
    rng = np.random.default_rng(0)
    params = init_encoder_params((8, 12), (3, 5), rng, pools=pools)
    names = sorted(params)
    kernels = pools or ((2, 2), (2, 2))
    gh, gw = 8 // kernels[0][0] // kernels[1][0], 12 // kernels[0][1] // kernels[1][1]
    assert params["pos"].shape == (gh * gw, 5)

    def ours(images, **p):
        a, cache = encoder_forward(images, p, pools)
        return a, lambda da: encoder_backward(da, cache)

    def theirs(images, **p):
        x = images[:, None]
        for k in range(2):
            x = tf.max_pool2d(torch.relu(tf.conv2d(x, p[f"conv{k}.W"], p[f"conv{k}.b"], padding=1)),
                              kernels[k])
        return x.flatten(2).transpose(1, 2) + p["pos"]

    inputs = {"images": rng.random((3, 8, 12)), **params}
    assert_matches_torch("caption encoder", ours, theirs, inputs, names)


def test_grid_shape_follows_the_pools():
    assert grid_shape((16, 64), ((2, 2), (2, 2), (4, 1))) == (1, 16)
    assert grid_shape((16, 64), ((2, 2),) * 3) == (2, 8)
    with pytest.raises(ValueError, match="divisible"):
        grid_shape((16, 64), ((3, 2),))


# -------------------------------------------------------------------------- decoder
def _step_case(attention, seed=0, B=2, L=3, D=4):
    rng = np.random.default_rng(seed)
    p = init_decoder_params(13, D, 5, 6, 4, rng)
    for name in p:                       # non-zero biases, so their gradients are exercised
        p[name] = p[name] + 0.1 * rng.standard_normal(p[name].shape)
    inputs = {"emb": rng.standard_normal((B, 5)), "h": rng.standard_normal((B, 6)),
              "c": rng.standard_normal((B, 6)), "a": rng.standard_normal((B, L, D)), **p}
    return inputs, sorted(set(p) - {"E", "init_h.W", "init_h.b", "init_c.W", "init_c.b"})   # used outside a step


@pytest.mark.parametrize("attention", ["soft", "hard"])
def test_decoder_step_finite_differences(attention):
    """One step, every output (logits, h', c', α) and every input, against central differences.

    Hard attention replays a fixed location s_b per row; the checked output then also holds
    q_b = log α_{b, s_b}: REINFORCE's score gradient −r (onehot − α) with r = −∂L/∂q_b is
    exactly ∂L/∂e through q, so the whole step (sampled path + estimator) is checked at once.
    """
    inputs, names = _step_case(attention)
    index = np.array([2, 0])

    def ours(emb, h, c, a, **p):
        logits, (h2, c2), alpha, cache = step_forward(emb, (h, c), a, p, attention, None, index)
        parts = [logits, h2, c2, alpha]
        if attention == "hard":
            parts.append(np.log(alpha[np.arange(len(index)), index])[:, None])  # q (B, 1)
        out = np.concatenate(parts, axis=1)

        def backward(dout):
            V, H, L = logits.shape[1], h2.shape[1], alpha.shape[1]
            dl, dh, dc, dal, dq = np.split(dout, np.cumsum([V, H, H, L]), axis=1)
            reward = -dq[:, 0] if attention == "hard" else None
            grads = {}
            demb, (dh0, dc0), da = step_backward(dl, (dh, dc), dal, cache, grads, reward)
            return {"emb": demb, "h": dh0, "c": dc0, "a": da, **grads}
        return out, backward

    check_finite_differences(ours, inputs, ["emb", "h", "c", "a"] + names, n_entries=4)


def _tiny_problem(attention, seed=0, B=1, L=3, D=4, **cfg_kw):
    rng = np.random.default_rng(seed)
    cfg = CaptionConfig(attention=attention, **TINY, **cfg_kw)
    p = init_decoder_params(13, D, 5, 6, 4, rng)
    a = rng.standard_normal((B, L, D))
    captions = np.array([[START, FIRST_DIGIT + 4, FIRST_DIGIT + 1, END, PAD]] * B)
    return cfg, p, a, captions


def test_soft_caption_loss_gradient_finite_differences():
    """Whole teacher-forced caption (BPTT through 4 steps, padding, the doubly stochastic
    regulariser) against central differences of the scalar loss."""
    cfg, p, a, captions = _tiny_problem("soft", B=2, ds_lambda=0.3)
    captions[1, 3:] = [FIRST_DIGIT + 9, END]
    _, da, grads = caption_loss(a, captions, p, cfg)
    loss = lambda: caption_loss(a, captions, p, cfg)[0]["loss"]      # noqa: E731
    for name, x, g in [("a", a, da)] + [(k, p[k], grads[k]) for k in sorted(p)]:
        for idx in [tuple(np.unravel_index(j, x.shape)) for j in range(0, x.size, max(1, x.size // 3))]:
            np.testing.assert_allclose(g[idx], numerical_grad(loss, x, idx, 1e-6),
                                       rtol=1e-5, atol=1e-8, err_msg=f"d{name}{idx}")


def _path_probability(a, captions, p, path):
    _, alphas, _ = decoder_forward(a, captions[:, :-1], p, "hard", locations=path[None])
    return float(np.prod(alphas[0, np.arange(len(path)), path][:3]))  # 3 real target steps


def test_hard_attention_estimator_is_unbiased():
    """Enumerate all L^T = 27 location paths of a one-strip, 3-word caption. The expectation of
    our REINFORCE estimator (sampled-path gradient + (R − b) ∇log p(s)) under p(s) equals the
    exact gradient of J = E_s[−log p(y | s)] / N, for any baseline b."""
    cfg, p, a, captions = _tiny_problem("hard", ds_lambda=0.0, entropy=0.0, soft_mix=0.0)
    captions = captions[:, :4]                       # <start> four one <end>: T = 3 steps
    paths = [np.array(s) for s in itertools.product(range(3), repeat=3)]
    probs = [_path_probability(a, captions, p, s) for s in paths]
    assert abs(sum(probs) - 1) < 1e-12

    def exact_objective():
        return sum(_path_probability(a, captions, p, s)
                   * caption_loss(a, captions, p, cfg, locations=s[None])[0]["ce"] for s in paths)

    def expected_estimate(baseline):
        total = {}
        for s, prob in zip(paths, probs):
            _, da, grads = caption_loss(a, captions, p, cfg, baseline=baseline, locations=s[None])
            for k, g in {"a": da, **grads}.items():
                total[k] = total.get(k, 0.0) + prob * g
        return total

    estimates = [expected_estimate(b) for b in (0.0, -4.0)]
    for name in ["a", "att.v", "att.W_h", "L_o"]:
        x = a if name == "a" else p[name]
        for j in (0, x.size // 2):
            idx = tuple(np.unravel_index(j, x.shape))
            exact = numerical_grad(exact_objective, x, idx, 1e-6)
            for est in estimates:
                np.testing.assert_allclose(est[name][idx], exact, rtol=1e-5, atol=1e-8,
                                           err_msg=f"d{name}{idx}")


def test_hard_entropy_bonus_is_the_pathwise_gradient():
    """With λ_r = 0 and a fixed path, the gradient is that of CE + reg − λ_e Σ_t H(α_t) / N."""
    cfg, p, a, captions = _tiny_problem("hard", entropy=0.3, reinforce=0.0, soft_mix=0.0)
    path = np.array([[2, 0, 1, 1]])
    _, da, grads = caption_loss(a, captions, p, cfg, locations=path)

    def loss():
        stats = caption_loss(a, captions, p, cfg, locations=path)[0]
        return stats["ce"] + stats["reg"] - cfg.entropy * stats["entropy"]
    for name, x, g in [("a", a, da), ("att.v", p["att.v"], grads["att.v"]),
                       ("att.W_h", p["att.W_h"], grads["att.W_h"])]:
        for j in range(0, x.size, max(1, x.size // 4)):
            idx = tuple(np.unravel_index(j, x.shape))
            np.testing.assert_allclose(g[idx], numerical_grad(loss, x, idx, 1e-6),
                                       rtol=1e-5, atol=1e-8, err_msg=f"d{name}{idx}")


def test_article_baseline_decoder_finite_differences():
    rng = np.random.default_rng(4)
    cfg = CaptionConfig(**TINY, channels=(3,), image_shape=(2, 6))
    p = {k: v for k, v in init_baseline_params(cfg, rng).items() if not k.startswith(("conv", "pos"))}
    tokens = np.array([[START, 5, 7, 4], [START, 9, 3, 3]])

    def ours(a, **params):
        logits, weights, cache = baseline_decoder_forward(a, tokens, params)
        return logits, lambda d: dict(zip(("a", "grads"), baseline_decoder_backward(d, cache)))

    def flat(a, **params):                                     # grads dict → flat names
        out, backward = ours(a, **params)

        def b(d):
            g = backward(d)
            return {"a": g["a"], **g["grads"]}
        return out, b
    inputs = {"a": rng.standard_normal((2, 3, 3)), **p}
    check_finite_differences(flat, inputs, ["a"] + sorted(p), n_entries=3)
    _, weights, _ = baseline_decoder_forward(inputs["a"], tokens, p)
    assert np.allclose(np.triu(weights[0], 1), 0), "the article's weights are causal, over time"
