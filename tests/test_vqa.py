"""Question-to-region attention hops and the VQA model (attention_np.apps.vqa) against torch
float64 autograd and finite differences; the question data (demos/_vqa_data.py)."""
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from attention_np.apps.vqa import (VQAConfig, hops_backward, hops_forward, init_vqa,
                                   loss_and_grads, predict, vqa_backward, vqa_forward)
from tests.helpers import assert_matches_torch, check_finite_differences, numba_scans
from tests.strategies import distinct_dims, dtypes, randn, seeds


def hop_names(hops):
    return ["q", "r", "query.W", "query.b"] + [f"hop{k}.{w}" for k in range(hops)
                                              for w in ("W_u", "W_r", "v")]


def make_hop_inputs(rng, B, L, Q, R, A, hops, dtype=np.float64):
    shapes = {"q": (B, Q), "r": (B, L, R), "query.W": (Q, R), "query.b": (R,)}
    for k in range(hops):
        shapes |= {f"hop{k}.W_u": (R, A), f"hop{k}.W_r": (R, A), f"hop{k}.v": (A,)}
    return {name: randn(rng, shapes[name], dtype) for name in hop_names(hops)}


def ours(hops):
    def run(**inputs):
        c, _, cache = hops_forward(inputs["q"], inputs["r"], inputs, hops)

        def backward(dc):
            dq, dr, grads = hops_backward(dc, cache)
            return grads | {"q": dq, "r": dr}
        return c, backward
    return run


def theirs(hops):
    """u_0 = q W + b; per hop α = softmax(vᵀ tanh(u W_u + r W_r)), c = α r, u ← u + c."""
    def run(**t):
        u, r = t["q"] @ t["query.W"] + t["query.b"], t["r"]
        for k in range(hops):
            e = torch.tanh((u @ t[f"hop{k}.W_u"])[:, None, :] + r @ t[f"hop{k}.W_r"]) \
                @ t[f"hop{k}.v"]                                              # (B, L)
            c = (torch.softmax(e, dim=-1)[:, :, None] * r).sum(dim=1)        # (B, R)
            u = u + c
        return c
    return run


@given(dims=distinct_dims(5, hi=7), hops=st.integers(1, 3), dtype=dtypes, seed=seeds)
def test_hops_match_torch(dims, hops, dtype, seed):
    inputs = make_hop_inputs(np.random.default_rng(seed), *dims, hops, dtype=dtype)
    assert_matches_torch("vqa_hops", ours(hops), theirs(hops), inputs, list(inputs), seed=seed)


def make_location_inputs(rng, B, L, Q, R, A, hops, K, width, dtype=np.float64):
    inputs = make_hop_inputs(rng, B, L, Q, R, A, hops, dtype)
    for k in range(1, hops):
        inputs |= {f"hop{k}.U": randn(rng, (K, A), dtype), f"hop{k}.F": randn(rng, (K, width), dtype),
                   f"hop{k}.b": randn(rng, (A,), dtype)}
    return inputs


def ours_location(hops):
    def run(**inputs):
        c, _, cache = hops_forward(inputs["q"], inputs["r"], inputs, hops, location=True)

        def backward(dc):
            dq, dr, grads = hops_backward(dc, cache)
            return grads | {"q": dq, "r": dr}
        return c, backward
    return run


def theirs_location(hops):
    """Hop 0 as above; hop k > 0: f = conv1d(α_{k−1}, F_k, same), α = softmax(vᵀ tanh(u W_u
    + r W_r + f U + b)), c = α r, u ← u + c."""
    def run(**t):
        u, r = t["q"] @ t["query.W"] + t["query.b"], t["r"]
        alpha = None
        for k in range(hops):
            a = (u @ t[f"hop{k}.W_u"])[:, None, :] + r @ t[f"hop{k}.W_r"]
            if k > 0:
                F = t[f"hop{k}.F"]
                f = torch.nn.functional.conv1d(alpha[:, None], F[:, None],
                                               padding=F.shape[1] // 2)     # (B, K, L)
                a = a + f.transpose(1, 2) @ t[f"hop{k}.U"] + t[f"hop{k}.b"]
            alpha = torch.softmax(torch.tanh(a) @ t[f"hop{k}.v"], dim=-1)   # (B, L)
            c = (alpha[:, :, None] * r).sum(dim=1)
            u = u + c
        return c
    return run


@given(dims=distinct_dims(5, hi=7), hops=st.integers(2, 3), K=st.integers(1, 3),
       width=st.sampled_from([1, 3, 5]), dtype=dtypes, seed=seeds)
def test_location_hops_match_torch(dims, hops, K, width, dtype, seed):
    inputs = make_location_inputs(np.random.default_rng(seed), *dims, hops, K, width, dtype)
    assert_matches_torch("vqa_location_hops", ours_location(hops), theirs_location(hops),
                         inputs, list(inputs), seed=seed)


def test_location_hops_finite_differences():
    inputs = make_location_inputs(np.random.default_rng(4), 2, 6, 4, 5, 3, 3, 2, 3)
    check_finite_differences(ours_location(3), inputs, list(inputs))


@pytest.mark.parametrize("hops", [1, 2])
def test_hops_finite_differences(hops):
    inputs = make_hop_inputs(np.random.default_rng(3), 2, 5, 4, 6, 3, hops)
    check_finite_differences(ours(hops), inputs, list(inputs))


def test_hops_weights_are_distributions():
    inputs = make_hop_inputs(np.random.default_rng(0), 3, 7, 4, 5, 6, 2)
    _, alpha, _ = hops_forward(inputs["q"], inputs["r"], inputs, 2)
    assert alpha.shape == (3, 2, 7)
    np.testing.assert_allclose(alpha.sum(-1), 1.0)


# ------------------------------------------------------------------------------ the model
TINY = dict(n_words=7, n_answers=5, image_shape=(8, 16), channels=(2, 3), pools=((2, 2), (4, 1)),
            context=3, embed=3, question=4, attn=3, hidden=5)


def tiny_batch(rng, B=2):
    images = rng.random((B, 8, 16))
    questions = np.array([[1, 2, 3, 0], [4, 5, 6, 2]])[:B]
    return images, questions, np.array([3, 4])[:B], np.array([1, 4])[:B]


@pytest.mark.parametrize("pooling, context, window, location", [
    ("attention", 3, 0, 0), ("attention", 0, 0, 0), ("attention", 3, 3, 0), ("mean", 3, 0, 0),
    ("mean", 3, 2, 0), ("question_only", 3, 0, 0), ("attention", 0, 0, 3)])
def test_vqa_model_finite_differences(pooling, context, window, location):
    cfg = VQAConfig(**(TINY | {"context": context, "window": window}), pooling=pooling, hops=2,
                    location=location)
    params = init_vqa(cfg, np.random.default_rng(0), dtype=np.float64)
    images, questions, lengths, _ = tiny_batch(np.random.default_rng(1))

    def run(**p):
        logits, _, cache = vqa_forward(images, questions, lengths, p, cfg)
        return logits, lambda d: vqa_backward(d, cache)
    check_finite_differences(run, params, list(params), n_entries=4)


def test_vqa_loss_grads_cover_params_and_predict():
    cfg = VQAConfig(**TINY, pooling="attention", hops=2)
    params = init_vqa(cfg, np.random.default_rng(0))
    images, questions, lengths, answers = tiny_batch(np.random.default_rng(1))
    loss, grads = loss_and_grads(params, cfg, images.astype(np.float32), questions, lengths,
                                 answers)
    assert np.isfinite(loss) and set(grads) == set(params)
    ids, weights = predict(params, cfg, images.astype(np.float32), questions, lengths, batch=1)
    assert ids.shape == (2,) and weights.shape == (2, 2, 8)         # L = 16 / 2 columns


def test_vqa_bad_input():
    cfg = VQAConfig(**TINY)
    params = init_vqa(cfg, np.random.default_rng(0))
    images, questions, lengths, _ = tiny_batch(np.random.default_rng(1))
    with pytest.raises(ValueError, match="images"):
        vqa_forward(images[:, :4], questions, lengths, params, cfg)
    with pytest.raises(ValueError, match="questions"):
        vqa_forward(images, questions.astype(float), lengths, params, cfg)
    with pytest.raises(ValueError, match="pooling"):
        VQAConfig(**TINY, pooling="max")


# ------------------------------------------------------------------------------ the data
def test_vqa_data_split_and_answers():
    from demos._vqa_data import (ANSWERS, FAMILIES, MAX_DIGITS, NO, YES, held_out,
                                 make_vqa_data, question_text)
    for split in ("train", "test"):
        data = make_vqa_data(200, split, seed=0)
        assert data.images.shape == (200, 16, 64) and 0 <= data.images.min() <= data.images.max() <= 1
        for i in range(len(data)):
            fam, k = FAMILIES[data.family[i]], int((data.digits[i] >= 0).sum())
            digits, answer = data.digits[i, :k], data.answers[i]
            if fam == "left_of":
                place = int(np.flatnonzero(digits == data.qdigit[i])[0])
                assert ANSWERS[answer] == str(digits[place - 1])
                key = data.qdigit[i]
            elif fam == "largest":
                place = int(digits.argmax())
                assert ANSWERS[answer] == str(digits.max()) and (digits == digits.max()).sum() == 1
                key = digits.max()
            elif fam == "is_there":
                assert answer == (YES if data.qdigit[i] in digits else NO)
                key, place = data.qdigit[i], k
            else:
                assert answer == (digits == data.qdigit[i]).sum()
                key, place = data.qdigit[i], k
            assert held_out(fam, int(key), place) == (split == "test")
            assert data.target[i].sum() == (fam in ("left_of", "largest")) and k <= MAX_DIGITS
    assert question_text("how_many", 5) == "how many 5s?"
    assert question_text("left_of", 7) == "what is left of 7?"


def test_vqa_on_fixed_cnn_columns_matches_finite_differences():
    """pixels=False: the model reads CNN columns (B, L, C) computed once, and has no CNN."""
    cfg = VQAConfig(**TINY, pooling="attention", hops=1, pixels=False, window=2)
    params = init_vqa(cfg, np.random.default_rng(0), dtype=np.float64)
    assert not any(name.startswith("cnn.") for name in params)
    columns = np.random.default_rng(2).standard_normal((2, 8, 3))
    _, questions, lengths, _ = tiny_batch(np.random.default_rng(1))

    def run(**p):
        logits, _, cache = vqa_forward(columns, questions, lengths, p, cfg)
        return logits, lambda d: vqa_backward(d, cache)
    check_finite_differences(run, params, list(params), n_entries=4)
    with pytest.raises(ValueError, match="CNN features"):
        vqa_forward(columns[:, :, :2], questions, lengths, params, cfg)


@pytest.mark.parametrize("context", [0, 3])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_numba_backend_gives_the_numpy_loss_and_gradients(context, dtype, monkeypatch):
    """backend="numba" (the demo's training) runs the question GRU and the regions' BiGRU on
    the fused kernels: the same logits and gradients as the NumPy reference."""
    from dataclasses import replace
    scans = numba_scans(monkeypatch)
    cfg = VQAConfig(**(TINY | {"context": context}), pooling="attention", hops=2)
    params = init_vqa(cfg, np.random.default_rng(0), dtype=dtype)
    images, questions, lengths, _ = tiny_batch(np.random.default_rng(1))
    images = images.astype(dtype)
    tol = dict(rtol=1e-9, atol=1e-12) if dtype == np.float64 else dict(rtol=2e-4, atol=2e-6)
    runs = []
    for config in (cfg, replace(cfg, backend="numba")):
        logits, _, cache = vqa_forward(images, questions, lengths, params, config)
        runs.append((logits, vqa_backward(np.ones_like(logits), cache)))
    (logits, grads), (logits_n, grads_n) = runs
    np.testing.assert_allclose(logits_n, logits, **tol)
    assert set(grads_n) == set(grads)
    for name in grads:
        np.testing.assert_allclose(grads_n[name], grads[name], err_msg=name, **tol)
    assert scans == ["gru"] * (3 if context else 1)        # the question; the regions' two


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="backend"):
        VQAConfig(**TINY, backend="cuda")
