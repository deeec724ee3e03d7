"""Positional information (attention_np.positional) against torch and against the properties
that make each scheme what it is: the sinusoidal table as Vaswani et al. write it, learned
positions as an embedding lookup with its scatter-add gradient, and RoPE as a rotation whose
scores depend on the offset between positions only."""
import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from attention_np.positional import (learned_positions_backward, learned_positions_forward,
                                     rope_angles, rope_backward, rope_forward,
                                     sinusoidal_encoding)
from tests.helpers import assert_matches_torch, check_finite_differences
from tests.strategies import distinct_dims, dtypes, randn, seeds

TIGHT = 1e-12          # float64 against torch: issue 31's bound


def torch_sinusoidal(T, d, base):
    """The table as The Annotated Transformer builds it (div_term = base^{−2i/d})."""
    pos = torch.arange(T, dtype=torch.float64)[:, None]
    div = torch.exp(torch.arange(0, d, 2, dtype=torch.float64) * (-np.log(base) / d))
    pe = torch.zeros(T, d, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div)[:, : d // 2]
    return pe.numpy()


@given(T=st.integers(1, 60), d=st.integers(1, 40), base=st.sampled_from([10000.0, 500.0, 2.5]))
def test_sinusoidal_matches_torch(T, d, base):
    ours = sinusoidal_encoding(T, d, base)
    np.testing.assert_allclose(ours, torch_sinusoidal(T, d, base), rtol=0, atol=TIGHT)
    assert sinusoidal_encoding(T, d, base, np.float32).dtype == np.float32


@given(T=st.integers(8, 40), half=st.integers(1, 12), k=st.integers(1, 7))
def test_sinusoidal_shift_is_a_rotation_and_dots_depend_on_distance(T, half, k):
    """PE(m + k) = R_k PE(m) with R_k block-diagonal rotations independent of m, so
    PE(m)·PE(n) depends on |m − n| only."""
    d = 2 * half
    pe = sinusoidal_encoding(T + k, d)
    theta = 10000.0 ** (-np.arange(0, d, 2) / d) * k                     # (d/2,)
    c, s = np.cos(theta), np.sin(theta)
    shifted = np.empty_like(pe[:T])
    shifted[:, 0::2] = pe[:T, 0::2] * c + pe[:T, 1::2] * s               # sin(a + b)
    shifted[:, 1::2] = pe[:T, 1::2] * c - pe[:T, 0::2] * s               # cos(a + b)
    np.testing.assert_allclose(shifted, pe[k:T + k], atol=1e-12)
    dots = pe[:T] @ pe[:T].T
    for offset in range(T):
        diag = np.diagonal(dots, offset)
        np.testing.assert_allclose(diag, diag[0], atol=1e-10)


def learned_pair(positions):
    def ours(W):
        P, cache = learned_positions_forward(positions, W)
        return P, lambda dP: {"W": learned_positions_backward(dP, cache)}
    return ours


@given(dims=distinct_dims(3, lo=1, hi=9), batched=st.booleans(), dtype=dtypes, seed=seeds)
def test_learned_positions_match_torch_embedding(dims, batched, dtype, seed):
    B, T, d = dims
    rng = np.random.default_rng(seed)
    max_len = T + 3
    positions = rng.integers(0, max_len, (B, T) if batched else (T,))   # repeats accumulate
    W = randn(rng, (max_len, d), dtype)
    assert_matches_torch("learned_positions", learned_pair(positions),
                         lambda W: torch.nn.functional.embedding(torch.from_numpy(positions), W),
                         {"W": W}, ["W"], seed=seed)


def torch_rope(x, positions, base):
    """RoPE as a complex multiplication (RoFormer, eq. 13): (x_{2i} + i x_{2i+1}) e^{i m θ_i}."""
    D = x.shape[-1]
    theta = base ** (-torch.arange(0, D, 2, dtype=torch.float64) / D)
    angles = torch.as_tensor(positions, dtype=torch.float64)[..., None] * theta
    angles = angles[None, None] if angles.ndim == 2 else angles[:, None]
    rot = torch.polar(torch.ones_like(angles), angles).to(
        torch.complex128 if x.dtype == torch.float64 else torch.complex64)
    z = torch.view_as_complex(x.reshape(*x.shape[:-1], D // 2, 2).contiguous())
    return torch.view_as_real(z * rot).reshape(x.shape)


def rope_pair(positions, base):
    def ours(x):
        y, cache = rope_forward(x, positions, base)
        return y, lambda dy: {"x": rope_backward(dy, cache)}
    return ours


@given(dims=distinct_dims(4, lo=1, hi=7), batched=st.booleans(),
       base=st.sampled_from([10000.0, 100.0]), dtype=dtypes, seed=seeds)
def test_rope_matches_torch(dims, batched, base, dtype, seed):
    B, H, T, half = dims
    rng = np.random.default_rng(seed)
    positions = rng.integers(0, 50, (B, T) if batched else (T,))      # any positions, not 0…T−1
    x = randn(rng, (B, H, T, 2 * half), dtype)
    assert_matches_torch("rope", rope_pair(positions, base),
                         lambda x: torch_rope(x, positions, base), {"x": x}, ["x"], seed=seed)
    if dtype == np.float64:
        y = rope_forward(x, positions, base)[0]
        ref = torch_rope(torch.from_numpy(x), positions, base).numpy()
        assert np.max(np.abs(y - ref)) <= TIGHT * max(1.0, np.abs(ref).max())


@given(half=st.integers(1, 8), m=st.integers(0, 200), n=st.integers(0, 200),
       shift=st.integers(-50, 300), seed=seeds)
def test_rope_scores_depend_on_the_offset_only(half, m, n, shift, seed):
    """⟨RoPE(q, m), RoPE(k, n)⟩ = ⟨RoPE(q, m + s), RoPE(k, n + s)⟩ for every shift s, and it
    equals qᵀ R((n − m)θ) k; lengths are kept."""
    shift = max(shift, -min(m, n))                                       # positions stay ≥ 0
    rng = np.random.default_rng(seed)
    q, k = rng.standard_normal((2, 1, 1, 1, 2 * half))

    def score(a, b):
        qa = rope_forward(q, np.array([a]))[0]
        kb = rope_forward(k, np.array([b]))[0]
        return float((qa * kb).sum())
    base = score(m, n)
    np.testing.assert_allclose(score(m + shift, n + shift), base, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(score(0, n - m) if n >= m else score(m - n, 0), base,
                               rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(rope_forward(q, np.array([m]))[0]),
                               np.linalg.norm(q), rtol=1e-12)


def test_rope_finite_differences_and_position_zero_is_identity():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 5, 4))
    positions = np.array([[0, 1, 2, 7, 3], [4, 4, 0, 9, 1]])
    check_finite_differences(rope_pair(positions, 10000.0), {"x": x}, ["x"])
    np.testing.assert_array_equal(rope_forward(x, np.zeros(5, int))[0], x)
    assert rope_angles(np.arange(3), 4).shape == (3, 2)


def test_learned_positions_gradient_accumulates_and_checks():
    W = np.arange(12.0).reshape(4, 3)
    P, cache = learned_positions_forward(np.array([1, 1, 3]), W)
    np.testing.assert_array_equal(P, W[[1, 1, 3]])
    dW = learned_positions_backward(np.ones((3, 3)), cache)
    np.testing.assert_array_equal(dW, [[0, 0, 0], [2, 2, 2], [0, 0, 0], [1, 1, 1]])
    with pytest.raises(ValueError, match="past the table's 4 rows"):
        learned_positions_forward(np.array([4]), W)
    with pytest.raises(ValueError, match="dP"):
        learned_positions_backward(np.ones((2, 3)), cache)


@pytest.mark.parametrize("call, words", [
    (lambda: rope_forward(np.ones((1, 1, 2, 3)), np.arange(2)), "x's last axis D must be even"),
    (lambda: rope_angles(np.arange(2), 3), "D must be even"),
    (lambda: rope_forward(np.ones((1, 1, 2, 4)), np.arange(3)), "positions"),
    (lambda: rope_forward(np.ones((1, 1, 2, 4)), np.array([0, -1])), "≥ 0"),
    (lambda: rope_forward(np.ones((1, 1, 2, 4)), np.arange(2), base=1.0), "base"),
    (lambda: rope_forward(np.ones((2, 4)), np.arange(2)), "x must be 4-D"),
    (lambda: sinusoidal_encoding(0, 4), "T must be"),
    (lambda: sinusoidal_encoding(4, 4, base=float("nan")), "base"),
    (lambda: learned_positions_forward(np.arange(3.0), np.ones((4, 2))), "integer"),
])
def test_bad_arguments_raise_value_error_naming_them(call, words):
    with pytest.raises(ValueError, match=words):
        call()


@given(T=st.integers(1, 20), d=st.integers(1, 17))
def test_positional_encoding_matches_the_formula(T, d):
    pe = sinusoidal_encoding(T, d)
    assert pe.shape == (T, d) and pe.dtype == np.float64
    for pos in range(T):
        for j in range(d):
            angle = pos / 10000 ** ((j - j % 2) / d)
            want = math.sin(angle) if j % 2 == 0 else math.cos(angle)
            assert pe[pos, j] == pytest.approx(want, abs=1e-12)


def test_positional_encoding_properties():
    pe = sinusoidal_encoding(50, 7, dtype=np.float32)
    assert pe.dtype == np.float32 and pe.shape == (50, 7)
    np.testing.assert_array_equal(pe[0], [0, 1, 0, 1, 0, 1, 0])       # odd d ends with a sine
    assert np.all(np.abs(pe) <= 1)
    with pytest.raises(ValueError, match="T must be an integer ≥ 1, got 0"):
        sinusoidal_encoding(0, 4)
    with pytest.raises(ValueError, match="d must be an integer ≥ 1, got 2.5"):
        sinusoidal_encoding(3, 2.5)
