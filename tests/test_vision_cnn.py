"""The small CNN classifier (plain, + SE, + CBAM) against the same network in torch; finite
differences; receptive fields by hand; the demo's training step lowers the loss."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from attention_np.nn.optim import Adam
from attention_np.nn.params import sub
from attention_np.vision import CNNConfig, cnn, init_cnn, receptive_fields
from tests.helpers import assert_matches_torch, check_finite_differences
from tests.strategies import dtypes, examples, randn, seeds
from tests.test_vision import torch_channel, torch_spatial


def cnn_pair(config):
    def ours(images, **params):
        logits, _, cache = cnn.cnn_forward(images, params, config)
        return logits, lambda dlogits: cnn.cnn_backward(dlogits, cache)
    return ours


def torch_cnn(config):
    c = config

    def theirs(images, **p):
        h = images
        for i in range(len(c.channels)):
            h = F.conv2d(h, p[f"conv{i}.W"], p[f"conv{i}.b"], padding=c.kernel_size // 2)
            h = torch.relu(h)
            if c.attention == "se":
                h = torch_channel(h, sub(p, f"se{i}"), use_max=False)
            elif c.attention == "cbam":
                h = torch_channel(h, sub(p, f"cbam{i}.channel"), use_max=True)
                h = torch_spatial(h, p[f"cbam{i}.spatial.W"], p[f"cbam{i}.spatial.b"])
            if c.pool[i]:
                h = F.max_pool2d(h, 2)
        return h.mean((2, 3)) @ p["head.W"] + p["head.b"]
    return theirs


@st.composite
def cnn_configs(draw):
    pool = (draw(st.booleans()), draw(st.booleans()))
    size = draw(st.integers(1, 3)) * 2 ** sum(pool)
    return CNNConfig(image_size=size, in_channels=draw(st.integers(1, 3)),
                     channels=(draw(st.integers(1, 6)), draw(st.integers(1, 6))), pool=pool,
                     kernel_size=draw(st.sampled_from([1, 3])),
                     attention=draw(st.sampled_from(["none", "se", "cbam"])),
                     reduction=draw(st.integers(1, 3)),
                     spatial_kernel=draw(st.sampled_from([3, 5])),
                     num_classes=draw(st.integers(2, 4)))


def noisy(params, rng, dtype):
    """Initialised params with non-zero biases everywhere (so every gradient is tested)."""
    return {k: (v + 0.2 * rng.standard_normal(v.shape)).astype(dtype) for k, v in params.items()}


@examples(ci=60, thorough=1_000)           # a whole network through torch per example
@given(config=cnn_configs(), batch=st.integers(1, 4), dtype=dtypes, seed=seeds)
def test_cnn_matches_torch(config, batch, dtype, seed):
    rng = np.random.default_rng(seed)
    params = noisy(init_cnn(config, rng), rng, dtype)
    images = randn(rng, (batch, config.in_channels, config.image_size, config.image_size), dtype)
    assert_matches_torch(f"cnn_{config.attention}", cnn_pair(config), torch_cnn(config),
                         {"images": images, **params}, list(params), seed=seed)


@pytest.mark.parametrize("attention", ["none", "se", "cbam"])
def test_cnn_finite_differences(attention):
    config = CNNConfig(image_size=4, in_channels=2, channels=(3, 4), pool=(True, False),
                       attention=attention, reduction=2, spatial_kernel=3, num_classes=3)
    rng = np.random.default_rng(1)
    params = noisy(init_cnn(config, rng), rng, np.float64)
    inputs = {"images": randn(rng, (2, 2, 4, 4)), **params}
    check_finite_differences(cnn_pair(config), inputs, list(params), n_entries=4)


def test_features_backward_gives_the_image_gradient():
    """cnn_features_backward's dimages against finite differences of one feature."""
    config = CNNConfig(image_size=4, channels=(2, 3), pool=(True, False), attention="cbam",
                       reduction=1, spatial_kernel=3)
    rng = np.random.default_rng(2)
    params = noisy(init_cnn(config, rng), rng, np.float64)
    x = randn(rng, (1, 1, 4, 4))
    h, _, cache = cnn.cnn_features_forward(x, params, config)
    dh = np.zeros_like(h)
    dh[0, :, 1, 0] = 1.0
    dx, _ = cnn.cnn_features_backward(dh, cache)
    eps, num = 1e-6, np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        for sign in (1, -1):
            x[idx] += sign * eps
            num[idx] += sign * cnn.cnn_features_forward(x, params, config)[0][0, :, 1, 0].sum()
            x[idx] -= sign * eps
    np.testing.assert_allclose(dx, num / (2 * eps), rtol=1e-5, atol=1e-8)


def test_receptive_fields_by_hand():
    """3×3 convs, 2×2 pools after blocks 1 and 2: 3 → pool 4 (stride 2) → +2·2 = 8 → pool 10
    (stride 4) → +2·4 = 18."""
    assert receptive_fields(CNNConfig()) == [(4, 2), (10, 4), (18, 4)]
    assert receptive_fields(CNNConfig(channels=(1, 1), pool=(False, False))) == [(3, 1), (5, 1)]


def test_training_lowers_the_loss_and_predict_batches():
    rng = np.random.default_rng(3)
    config = CNNConfig(image_size=4, channels=(4, 4), pool=(True, False), attention="se",
                       num_classes=2)
    params = init_cnn(config, rng)
    x = randn(rng, (16, 1, 4, 4))
    y = (x[:, 0, :, :2].mean((1, 2)) > x[:, 0, :, 2:].mean((1, 2))).astype(int)   # left vs right
    opt, first = Adam(1e-2), cnn.loss_and_grads(params, config, x, y)[0]
    for _ in range(60):
        loss, grads = cnn.loss_and_grads(params, config, x, y)
        opt.step(params, grads)
    assert loss < 0.5 * first
    logits, weights = cnn.predict(params, config, x, batch=5)
    np.testing.assert_allclose(logits, cnn.cnn_forward(x, params, config)[0], rtol=1e-12)
    assert [w.shape for w in weights] == [(16, 4), (16, 4)]


def test_config_and_images_are_checked():
    with pytest.raises(ValueError, match="attention"):
        CNNConfig(attention="self")
    with pytest.raises(ValueError, match="pool"):
        CNNConfig(channels=(4,), pool=(True, True))
    config = CNNConfig()
    params = init_cnn(config, np.random.default_rng(0))
    with pytest.raises(ValueError, match="images"):
        cnn.cnn_forward(np.zeros((2, 1, 6, 6)), params, config)
