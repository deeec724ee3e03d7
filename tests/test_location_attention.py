"""Location-aware attention (Chorowski et al. 2015) against torch autograd and finite differences."""
import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st

from attention_np.location_attention import (conv1d_same_backward, conv1d_same_forward,
                                             init_location_params, location_attention_backward,
                                             location_attention_forward)
from tests.helpers import assert_matches_torch, check_finite_differences
from tests.strategies import distinct_dims, dtypes, examples, randn, seeds

PARAMS = ["W", "V", "U", "F", "b", "w"]


def _inputs(B, T, Ds, Dh, A, K, r, dtype, seed):
    rng = np.random.default_rng(seed)
    p = init_location_params(Ds, Dh, A, K, r, rng, dtype)
    p = {k: (v * 2 + (randn(rng, v.shape, dtype, 0.3) if k == "b" else 0)).astype(dtype)
         for k, v in p.items()}
    alpha0 = rng.dirichlet(np.ones(T), size=B).astype(dtype)
    return {"s1": randn(rng, (B, Ds), dtype), "s2": randn(rng, (B, Ds), dtype),
            "h": randn(rng, (B, T, Dh), dtype), "alpha0": alpha0, **p}


def _torch_step(s, keys, h, alpha_prev, W, U, F, b, w, mask):
    r = F.shape[1]
    f = torch.nn.functional.conv1d(alpha_prev[:, None, :], F[:, None, :], padding=r // 2)
    e = torch.tanh((s @ W)[:, None, :] + keys + f.transpose(1, 2) @ U + b) @ w
    alpha = torch.softmax(e.masked_fill(~mask, -torch.inf), dim=-1).nan_to_num(0.0)
    return torch.einsum("bt,btd->bd", alpha, h), alpha


def _theirs(mask):
    m = torch.from_numpy(mask)

    def theirs(s1, s2, h, alpha0, W, V, U, F, b, w):
        keys = h @ V
        c1, a1 = _torch_step(s1, keys, h, alpha0, W, U, F, b, w, m)
        c2, a2 = _torch_step(s2, keys, h, a1, W, U, F, b, w, m)
        return torch.cat([c1, a1, c2, a2], dim=1)
    return theirs


def _ours(mask):
    """Two decoder steps: α₁ feeds step 2's convolution, so dα_prev is exercised."""
    def ours(s1, s2, h, alpha0, W, V, U, F, b, w):
        p = {"W": W, "U": U, "F": F, "b": b, "w": w}
        keys = h @ V
        c1, a1, k1 = location_attention_forward(s1, keys, h, alpha0, p, mask)
        c2, a2, k2 = location_attention_forward(s2, keys, h, a1, p, mask)
        Dh, T = h.shape[2], h.shape[1]

        def backward(dout):
            dc1, da1, dc2, da2 = np.split(dout, np.cumsum([Dh, T, Dh]), axis=1)
            ds2, dk2, dh2, da1_from2, g2 = location_attention_backward(dc2, k2, da2)
            ds1, dk1, dh1, dalpha0, g1 = location_attention_backward(dc1, k1, da1 + da1_from2)
            dkeys = dk1 + dk2
            grads = {k: g1[k] + g2[k] for k in g1}
            return {"s1": ds1, "s2": ds2, "h": dh1 + dh2 + dkeys @ V.T, "alpha0": dalpha0,
                    "V": np.einsum("btd,bta->da", h, dkeys), **grads}
        return np.concatenate([c1, a1, c2, a2], axis=1), backward
    return ours


@examples(ci=60, thorough=10_000)   # each example runs torch autograd; keep CI short
@given(dims=distinct_dims(5, 2, 9), K=st.integers(1, 4), r=st.sampled_from([1, 3, 5, 7]),
       dtype=dtypes, seed=seeds)
def test_two_steps_match_torch(dims, K, r, dtype, seed):
    B, T, Ds, Dh, A = dims
    inputs = _inputs(B, T, Ds, Dh, A, K, r, dtype, seed)
    mask = np.random.default_rng(seed).random((B, T)) < 0.8
    mask[0] = False                                          # fully masked utterance
    alive = mask.any(1, keepdims=True)
    assert_matches_torch("location_attention", _ours(mask), _theirs(mask), inputs,
                         ["s1", "s2", "h", "alpha0"] + PARAMS, out_rows=alive)


def test_finite_differences():
    inputs = _inputs(3, 7, 4, 5, 6, 2, 5, np.float64, 0)
    mask = np.ones((3, 7), bool)
    mask[1, 5:] = False
    check_finite_differences(_ours(mask), inputs, ["s1", "s2", "h", "alpha0"] + PARAMS)


@pytest.mark.parametrize("r", [1, 3, 9])
def test_conv1d_same_matches_torch(r):
    rng = np.random.default_rng(r)
    alpha, F = rng.random((3, 6)), rng.standard_normal((4, r))

    def ours(alpha, F):
        f, cache = conv1d_same_forward(alpha, F)
        return f, lambda df: dict(zip(("alpha", "F"), conv1d_same_backward(df, cache)))

    def theirs(alpha, F):
        return torch.nn.functional.conv1d(alpha[:, None], F[:, None], padding=r // 2).transpose(1, 2)
    assert_matches_torch("conv1d_same", ours, theirs, {"alpha": alpha, "F": F}, ["alpha", "F"])


def test_attention_follows_the_previous_alignment():
    """With keys and state giving no information, a shift filter moves the peak one frame right."""
    B, T, A = 1, 9, 3
    p = {"W": np.zeros((2, A)), "U": np.eye(1, A) * 20, "F": np.array([[1.0, 0.0, 0.0]]),
         "b": np.zeros(A), "w": np.eye(1, A)[0]}
    alpha_prev = np.eye(T)[[3]]
    _, alpha, _ = location_attention_forward(np.zeros((B, 2)), np.zeros((B, T, A)),
                                             np.zeros((B, T, 2)), alpha_prev, p)
    assert alpha.argmax() == 4          # f_j = α_{j−1}: the filter looks one frame back


def test_even_filter_width_raises():
    with pytest.raises(ValueError, match="odd"):
        init_location_params(2, 3, 4, 2, 4, np.random.default_rng(0))
