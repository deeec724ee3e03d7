"""Channel and spatial attention (SE, CBAM) against torch autograd, plus finite differences."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from attention_np.nn.params import sub
from attention_np.vision import (cbam_backward, cbam_forward, channel_attention_backward,
                                 channel_attention_forward, init_cbam, init_channel_mlp,
                                 init_spatial_attention, spatial_attention_backward,
                                 spatial_attention_forward, squeeze_excitation_backward,
                                 squeeze_excitation_forward)
from tests.helpers import assert_matches_torch, check_finite_differences
from tests.strategies import distinct_dims, dtypes, examples, randn, seeds

MLP = ("W_1", "b_1", "W_2", "b_2")


def pair(forward, backward, *extra, names=("x",)):
    """ours(x, **params) for the helpers, for a layer ``forward(x, params, *extra)``."""
    def ours(x, **params):
        y, _, cache = forward(x, params, *extra)

        def grads(dy):
            dx, g = backward(dy, cache)
            return {"x": dx, **g}
        return y, grads
    return ours


def torch_mlp(m, p):
    """The bottleneck MLP in torch:  ReLU(m W₁ + b₁) W₂ + b₂."""
    return torch.relu(m @ p["W_1"] + p["b_1"]) @ p["W_2"] + p["b_2"]


def torch_channel(x, p, use_max):
    z = torch_mlp(x.mean((2, 3)), p)
    if use_max:
        z = z + torch_mlp(x.flatten(2).max(2).values, p)
    return x * torch.sigmoid(z)[:, :, None, None]


def torch_spatial(x, W, b):
    pooled = torch.cat([x.mean(1, keepdim=True), x.max(1, keepdim=True).values], 1)
    return x * torch.sigmoid(F.conv2d(pooled, W, b, padding=W.shape[-1] // 2))


def random_params(params, rng, dtype):
    """Initialised params with non-zero biases (so their gradients are tested too)."""
    return {k: (v + 0.3 * rng.standard_normal(v.shape)).astype(dtype) if k.endswith(("b", "b_1",
            "b_2")) else v.astype(dtype) for k, v in params.items()}


@st.composite
def images(draw):
    """(B, C, H, W) all different, and a reduction ≤ C + 1 (C_r = 1 when it exceeds C)."""
    B, C, H, W = draw(distinct_dims(4, lo=1, hi=9))
    return (B, C, H, W), draw(st.integers(1, C + 1))


@examples(ci=100, thorough=3_000)          # torch autograd per example
@given(case=images(), use_max=st.booleans(), dtype=dtypes, seed=seeds)
def test_channel_attention_matches_torch(case, use_max, dtype, seed):
    """SE (mean only) and CBAM's channel half (mean + max through one MLP)."""
    shape, reduction = case
    rng = np.random.default_rng(seed)
    params = random_params(init_channel_mlp(shape[1], reduction, rng), rng, dtype)
    layer = ((channel_attention_forward, channel_attention_backward) if use_max else
             (squeeze_excitation_forward, squeeze_excitation_backward))
    assert_matches_torch("channel_attention" if use_max else "squeeze_excitation",
                         pair(*layer, reduction),
                         lambda x, **p: torch_channel(x, p, use_max),
                         {"x": randn(rng, shape, dtype), **params}, ["x", *MLP], seed=seed)


@examples(ci=100, thorough=3_000)
@given(case=images(), k=st.sampled_from([1, 3, 5, 7]), dtype=dtypes, seed=seeds)
def test_spatial_attention_matches_torch(case, k, dtype, seed):
    shape, _ = case
    rng = np.random.default_rng(seed)
    params = random_params(init_spatial_attention(k, rng), rng, dtype)
    assert_matches_torch("spatial_attention", pair(spatial_attention_forward,
                                                   spatial_attention_backward),
                         lambda x, W, b: torch_spatial(x, W, b),
                         {"x": randn(rng, shape, dtype), **params}, ["x", "W", "b"], seed=seed)


@examples(ci=50, thorough=1_000)
@given(case=images(), dtype=dtypes, seed=seeds)
def test_cbam_matches_torch(case, dtype, seed):
    shape, reduction = case
    rng = np.random.default_rng(seed)
    params = random_params(init_cbam(shape[1], reduction, 3, rng), rng, dtype)

    def theirs(x, **p):
        h = torch_channel(x, sub(p, "channel"), True)
        return torch_spatial(h, p["spatial.W"], p["spatial.b"])
    assert_matches_torch("cbam", pair(cbam_forward, cbam_backward, reduction), theirs,
                         {"x": randn(rng, shape, dtype), **params}, ["x", *params], seed=seed)


@pytest.mark.parametrize("name", ["se", "channel", "spatial", "cbam"])
def test_finite_differences(name):
    rng = np.random.default_rng(3)
    x = randn(rng, (3, 6, 5, 4))
    layers = {"se": (squeeze_excitation_forward, squeeze_excitation_backward, 2),
              "channel": (channel_attention_forward, channel_attention_backward, 3),
              "spatial": (spatial_attention_forward, spatial_attention_backward),
              "cbam": (cbam_forward, cbam_backward, 2)}
    init = {"se": lambda: init_channel_mlp(6, 2, rng),
            "channel": lambda: init_channel_mlp(6, 3, rng),
            "spatial": lambda: init_spatial_attention(3, rng),
            "cbam": lambda: init_cbam(6, 2, 5, rng)}
    params = random_params(init[name](), rng, np.float64)
    check_finite_differences(pair(*layers[name]), {"x": x, **params}, ["x", *params])


def test_weights_gate_and_shapes():
    """s ∈ (0, 1) per channel, a ∈ (0, 1) per position; y = x ⊙ weight exactly."""
    rng = np.random.default_rng(4)
    x = randn(rng, (2, 8, 5, 3), np.float32)
    y, s, _ = squeeze_excitation_forward(x, init_channel_mlp(8, 4, rng, np.float32), 4)
    assert s.shape == (2, 8) and y.dtype == np.float32 and np.all((s > 0) & (s < 1))
    np.testing.assert_array_equal(y, x * s[:, :, None, None])
    y, a, _ = spatial_attention_forward(x, init_spatial_attention(7, rng, np.float32))
    assert a.shape == (2, 1, 5, 3) and np.all((a > 0) & (a < 1))
    np.testing.assert_array_equal(y, x * a)


def test_bad_arguments_are_named():
    rng = np.random.default_rng(5)
    x, params = np.zeros((2, 8, 4, 4)), init_channel_mlp(8, 4, rng)
    with pytest.raises(ValueError, match="W_1"):
        squeeze_excitation_forward(x, params, 2)            # C_r = 4, params made for 2
    with pytest.raises(ValueError, match="reduction"):
        squeeze_excitation_forward(x, params, 0)
    with pytest.raises(ValueError, match="x must be 4-D"):
        channel_attention_forward(x[0], params, 4)
    with pytest.raises(ValueError, match="odd"):
        spatial_attention_forward(x, {"W": np.zeros((1, 2, 4, 4)), "b": np.zeros(1)})
    with pytest.raises(ValueError, match="kernel_size"):
        init_spatial_attention(4, rng)
    _, _, cache = squeeze_excitation_forward(x, params, 4)
    with pytest.raises(ValueError, match="dy"):
        squeeze_excitation_backward(np.zeros((2, 8, 4)), cache)
