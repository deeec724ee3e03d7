"""Vision Transformer pieces against torch: patch embedding (a stride-p conv), [CLS] and
positions, the whole classifier (torch.nn.TransformerEncoderLayer per block); the mean
attention distance on hand-made maps."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from torch.func import functional_call

from attention_np.nn.params import sub
from attention_np.transformer import EncoderConfig
from attention_np.vision import (ViTConfig, class_token_backward, class_token_forward, init_vit,
                                 mean_attention_distance, patch_distances,
                                 patch_embedding_backward, patch_embedding_forward, vit)
from tests.helpers import (assert_matches_torch, check_finite_differences,
                           torch_layer_norm_condition)
from tests.strategies import distinct_dims, dtypes, examples, randn, seeds
from tests.test_transformer import torch_block, torch_params


def torch_patches(x, W, b, p):
    """Our patch embedding as torch's conv with kernel = stride = p: (B, N, d)."""
    d, C = W.shape[1], x.shape[1]
    return F.conv2d(x, W.T.reshape(d, C, p, p), b, stride=p).flatten(2).transpose(1, 2)


@examples(ci=100, thorough=3_000)          # torch autograd per example
@given(dims=distinct_dims(4, lo=1, hi=5), p=st.integers(1, 3), dtype=dtypes, seed=seeds)
def test_patch_embedding_matches_torch_conv(dims, p, dtype, seed):
    B, C, gh, d = dims
    gw = 5 - gh if gh < 5 else 2                  # a non-square grid
    rng = np.random.default_rng(seed)
    inputs = {"x": randn(rng, (B, C, gh * p, gw * p), dtype),
              "W": randn(rng, (C * p * p, d), dtype), "b": randn(rng, (d,), dtype)}

    def ours(x, W, b):
        t, cache = patch_embedding_forward(x, {"W": W, "b": b}, p)

        def backward(dt):
            dx, grads = patch_embedding_backward(dt, cache)
            return {"x": dx, **grads}
        return t, backward
    assert_matches_torch("patch_embedding", ours, lambda x, W, b: torch_patches(x, W, b, p),
                         inputs, ["x", "W", "b"], seed=seed)


@given(dims=distinct_dims(3, lo=1, hi=7), dtype=dtypes, seed=seeds)
def test_class_token_matches_torch(dims, dtype, seed):
    B, N, d = dims
    rng = np.random.default_rng(seed)
    inputs = {"tokens": randn(rng, (B, N, d), dtype), "cls": randn(rng, (d,), dtype),
              "pos": randn(rng, (N + 1, d), dtype)}

    def ours(tokens, cls, pos):
        z, cache = class_token_forward(tokens, {"cls": cls, "pos": pos})

        def backward(dz):
            dt, g = class_token_backward(dz, cache)
            return {"tokens": dt, **g}
        return z, backward
    assert_matches_torch("class_token", ours,
                         lambda tokens, cls, pos: torch.cat([cls.expand(B, 1, d), tokens], 1) + pos,
                         inputs, ["tokens", "cls", "pos"], seed=seed)


def vit_pair(config):
    def ours(images, **params):
        logits, _, cache = vit.vit_forward(images, params, config)
        return logits, lambda dl: {"images": None, **vit.vit_backward(dl, cache)}
    return ours


def torch_vit(config, dtype):
    """theirs(images, **params) and its layer-norm modules (for the float32 condition)."""
    c, e = config, config.encoder
    layers = [torch_block(e.d_model, e.num_heads, e.d_ff, e.activation, e.norm_first, dtype)
              for _ in range(e.num_layers)]
    final = torch.nn.LayerNorm(e.d_model, e.eps, dtype=torch.from_numpy(np.zeros(0, dtype)).dtype)

    def theirs(images, **p):
        t = torch_patches(images, p["patch.W"], p["patch.b"], c.patch_size)        # (B, N, d)
        z = torch.cat([p["cls"].expand(len(images), 1, e.d_model), t], 1) + p["pos"]
        for i, layer in enumerate(layers):
            z = functional_call(layer, torch_params(sub(p, f"blocks.{i}")), (z,))
        h = z[:, 0]
        if e.norm_first:
            h = functional_call(final, {"weight": p["ln_f.gamma"], "bias": p["ln_f.beta"]}, (h,))
        return h @ p["head.W"] + p["head.b"]
    return theirs, [m for layer in layers for m in (layer.norm1, layer.norm2)] + [final]


@examples(ci=30, thorough=500)             # a whole model through torch per example
@given(dims=distinct_dims(5, lo=1, hi=5), p=st.integers(1, 2), layers=st.integers(1, 2),
       norm_first=st.booleans(), dtype=dtypes, seed=seeds)
def test_vit_matches_torch(dims, p, layers, norm_first, dtype, seed):
    B, C, grid, H, Dh = dims
    config = ViTConfig(image_size=grid * p, in_channels=C, patch_size=p, num_classes=3,
                       encoder=EncoderConfig(d_model=H * Dh, num_heads=H, d_ff=5,
                                             num_layers=layers, activation="gelu",
                                             norm_first=norm_first))
    rng = np.random.default_rng(seed)
    params = {k: (v + 0.3 * rng.standard_normal(v.shape)).astype(dtype)   # no zero head/biases
              for k, v in init_vit(config, rng).items()}
    theirs, norms = torch_vit(config, dtype)
    inputs = {"images": randn(rng, (B, C, grid * p, grid * p), dtype), **params}
    cond = 1.0 if dtype == np.float64 else torch_layer_norm_condition(norms, theirs, inputs)
    assert_matches_torch("vit", vit_pair(config), theirs, inputs, list(params), seed=seed,
                         cond=cond)


def test_vit_finite_differences_and_weights():
    config = ViTConfig(image_size=4, in_channels=2, patch_size=2, num_classes=3,
                       encoder=EncoderConfig(d_model=6, num_heads=3, d_ff=5, num_layers=2,
                                             activation="gelu", norm_first=True))
    rng = np.random.default_rng(1)
    params = {k: v + 0.3 * rng.standard_normal(v.shape) for k, v in init_vit(config, rng).items()}
    images = randn(rng, (2, 2, 4, 4))
    logits, weights, _ = vit.vit_forward(images, params, config)
    assert logits.shape == (2, 3) and len(weights) == 2 and weights[0].shape == (2, 3, 5, 5)
    np.testing.assert_allclose(weights[1].sum(-1), 1.0)
    np.testing.assert_allclose(vit.predict(params, config, images, batch=1)[0], logits, rtol=1e-12)
    check_finite_differences(vit_pair(config), {"images": images, **params}, list(params),
                             n_entries=4)


def test_patch_embedding_inverts_and_checks():
    rng = np.random.default_rng(2)
    x = randn(rng, (2, 3, 4, 6))
    t, cache = patch_embedding_forward(x, {"W": np.eye(12), "b": np.zeros(12)}, 2)
    assert t.shape == (2, 6, 12)                   # 2 × 3 patches of 3·2·2 values
    np.testing.assert_array_equal(t[0, 1], x[0, :, 0:2, 2:4].ravel())   # row-major, channel-major
    dx, _ = patch_embedding_backward(t, cache)
    np.testing.assert_array_equal(dx, x)           # W = I: each pixel is in exactly one patch
    with pytest.raises(ValueError, match="patch_size"):
        patch_embedding_forward(x, {"W": np.eye(27), "b": np.zeros(27)}, 3)
    with pytest.raises(ValueError, match="params\\['W'\\]"):
        patch_embedding_forward(x, {"W": np.eye(5), "b": np.zeros(5)}, 2)


def test_mean_attention_distance_by_hand():
    """2×2 grid of 1-px patches: uniform attention gives (0 + 1 + 1 + √2) / 4 for every query;
    attention to itself gives 0; weight on [CLS] is left out and the rest renormalised."""
    D = patch_distances(2, 1)
    np.testing.assert_allclose(D[0], [0, 1, 1, np.sqrt(2)])
    uniform = np.full((1, 1, 5, 5), 0.2)                               # [CLS] + 4 patches
    self_only = np.eye(5)[None, None]
    mixed = np.concatenate([uniform, self_only], axis=1)               # two heads
    got = mean_attention_distance([mixed, mixed[:, ::-1]], grid=2, patch_size=1)   # (L, H)
    np.testing.assert_allclose(got, [[(2 + np.sqrt(2)) / 4, 0.0], [0.0, (2 + np.sqrt(2)) / 4]])
    assert mean_attention_distance([uniform], 2, 3)[0, 0] == pytest.approx(3 * (2 + np.sqrt(2)) / 4)
    with pytest.raises(ValueError, match="weights"):
        mean_attention_distance([uniform], grid=3, patch_size=1)
