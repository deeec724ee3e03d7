"""A small CNN classifier, plain or with channel (SE) or channel + spatial (CBAM) attention.

Block i (i = 0 … len(channels) − 1):

    h ← ReLU(conv_{k×k}(h; W_i, b_i))          'same' zero padding, stride 1   (B, C_i, S_i, S_i)
    h ← SE(h)  or  CBAM(h)  or  h                attention = "se" / "cbam" / "none"
    h ← maxpool_{2×2}(h)                         if pool[i]

then  ŷ = mean_{h,w}(h) W_head + b_head  (global average pooling, B × K logits).

Convolution and pooling are :mod:`attention_np.nn.conv`; the attention modules are
:mod:`attention_np.vision.channel` and :mod:`attention_np.vision.spatial`. Parameters are one
flat dict: ``conv{i}.W`` (C_i, C_{i−1}, k, k), ``conv{i}.b``, ``se{i}.*`` or ``cbam{i}.*``,
``head.W``, ``head.b``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from attention_np.core import linear_core, linear_backward
from attention_np.nn.activations import relu_backward, relu_forward
from attention_np.nn.backend import check_backend
from attention_np.nn.checks import as_dout, as_float_array, check_params, check_shape
from attention_np.nn.conv import (conv2d_backward, conv2d_forward, max_pool2d_backward,
                                  max_pool2d_forward)
from attention_np.nn.init import normal, zeros
from attention_np.nn.losses import cross_entropy_backward, cross_entropy_forward
from attention_np.nn.params import linear_params, prefixed, sub
from attention_np.nn.checks import check_rng
from attention_np.vision.channel import (init_channel_mlp, squeeze_excitation_backward,
                                         squeeze_excitation_forward)
from attention_np.vision.spatial import cbam_backward, cbam_forward, init_cbam

ATTENTIONS = ("none", "se", "cbam")


@dataclass(frozen=True)
class CNNConfig:
    """Widths of the conv blocks, which of them end in a 2×2 max-pool, and the attention."""
    image_size: int = 8
    in_channels: int = 1
    channels: tuple = (16, 32, 48)
    pool: tuple = (True, True, False)
    kernel_size: int = 3
    attention: str = "none"         # "none", "se" or "cbam"
    reduction: int = 4              # SE / CBAM bottleneck: C_r = C // reduction
    spatial_kernel: int = 7         # CBAM's spatial filter
    num_classes: int = 10
    backend: str = "numpy"          # "numba": the blocks' convolutions (CBAM's too) and pool
                                    # copies on Numba kernels (the same numbers, nn.conv)

    def __post_init__(self):
        check_backend(self.backend)
        if self.attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {ATTENTIONS}, got {self.attention!r}")
        if len(self.pool) != len(self.channels):
            raise ValueError(f"pool {self.pool} needs one entry per block of channels "
                             f"{self.channels}")
        if self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd ('same' padding), got {self.kernel_size}")


def init_cnn(config: CNNConfig, rng: np.random.Generator, dtype=np.float64) -> dict:
    """Conv filters ~ N(0, 2 / fan_in) (He et al., 2015: keeps the ReLU activations' scale),
    zero biases, the attention modules' own initialisers, and a linear head."""
    c, params, c_in, rng = config, {}, config.in_channels, check_rng(rng)
    for i, c_out in enumerate(c.channels):
        fan_in = c_in * c.kernel_size ** 2
        params[f"conv{i}.W"] = normal((c_out, c_in, c.kernel_size, c.kernel_size), rng,
                                      math.sqrt(2.0 / fan_in), dtype)
        params[f"conv{i}.b"] = zeros(c_out, dtype)
        if c.attention == "se":
            params.update(prefixed(f"se{i}", init_channel_mlp(c_out, c.reduction, rng, dtype)))
        elif c.attention == "cbam":
            params.update(prefixed(f"cbam{i}", init_cbam(c_out, c.reduction, c.spatial_kernel,
                                                         rng, dtype)))
        c_in = c_out
    params.update(prefixed("head", linear_params(rng, c_in, c.num_classes, dtype)))
    return params


def _block_forward(h, params, config: CNNConfig, i: int):
    """conv → ReLU → attention → pool for block i → (h, attention weights or None, cache)."""
    c = config
    h, c_conv = conv2d_forward(h, params[f"conv{i}.W"], params[f"conv{i}.b"],
                               padding=c.kernel_size // 2, backend=c.backend)   # (B, C_i, S, S)
    h, c_relu = relu_forward(h)
    weights, c_att = None, None
    if c.attention == "se":
        h, weights, c_att = squeeze_excitation_forward(h, sub(params, f"se{i}"), c.reduction)
    elif c.attention == "cbam":
        h, weights, c_att = cbam_forward(h, sub(params, f"cbam{i}"), c.reduction, c.backend)
    c_pool = None
    if c.pool[i]:
        h, c_pool = max_pool2d_forward(h, 2, backend=c.backend)         # (B, C_i, S/2, S/2)
    return h, weights, {"conv": c_conv, "relu": c_relu, "att": c_att, "pool": c_pool}


def _block_backward(dh, cache, config: CNNConfig, i: int) -> tuple:
    grads = {}
    if cache["pool"] is not None:
        dh = max_pool2d_backward(dh, cache["pool"])
    if config.attention == "se":
        dh, g = squeeze_excitation_backward(dh, cache["att"])
        grads.update(prefixed(f"se{i}", g))
    elif config.attention == "cbam":
        dh, g = cbam_backward(dh, cache["att"])
        grads.update(prefixed(f"cbam{i}", g))
    dh = relu_backward(dh, cache["relu"])
    dh, grads[f"conv{i}.W"], grads[f"conv{i}.b"] = conv2d_backward(dh, cache["conv"])
    return dh, grads


def cnn_features_forward(images, params: dict, config: CNNConfig, num_blocks: int | None = None):
    """The first ``num_blocks`` blocks (all by default).

    images (B, C, S, S) → features (B, C_i, S_i, S_i), [attention weights per block: SE s (B, C_i),
    CBAM (s, a (B, 1, S_i, S_i)) or None], cache.
    """
    c = config
    h = as_float_array(images, "images", ndim=4)
    check_shape(h, "images", (None, c.in_channels, c.image_size, c.image_size))
    n = len(c.channels) if num_blocks is None else int(num_blocks)
    weights, caches = [], []
    for i in range(n):
        h, w, cache = _block_forward(h, params, c, i)
        weights.append(w)
        caches.append(cache)
    return h, weights, {"blocks": caches, "config": c, "shape": h.shape}


def cnn_features_backward(dfeatures, cache) -> tuple:
    """dfeatures (B, C_i, S_i, S_i) → (dimages (B, C, S, S), grads of the blocks' parameters)."""
    grads, dh = {}, as_dout(dfeatures, cache["shape"], name="dfeatures")
    for i in reversed(range(len(cache["blocks"]))):
        dh, g = _block_backward(dh, cache["blocks"][i], cache["config"], i)
        grads.update(g)
    return dh, grads


def cnn_forward(images, params: dict, config: CNNConfig):
    """images (B, C, S, S) → logits (B, K), [attention weights per block], cache."""
    h, weights, c_feat = cnn_features_forward(images, params, config)
    K = config.num_classes
    head = check_params(params, {"head.W": (h.shape[1], K), "head.b": (K,)})
    pooled = h.mean(axis=(2, 3))                                                 # (B, C_last)
    logits, c_head = linear_core(pooled, head["head.W"], head["head.b"])             # (B, K)
    return logits, weights, {"features": c_feat, "head": c_head, "shape": h.shape,
                             "logits_shape": logits.shape}


def cnn_backward(dlogits, cache) -> dict:
    """Undo :func:`cnn_forward`: dlogits (B, K) → gradients keyed like the params."""
    dlogits = as_dout(dlogits, cache["logits_shape"], name="dlogits")
    dpooled, dW, db = linear_backward(dlogits, cache["head"])
    B, C, S1, S2 = cache["shape"]
    dh = np.broadcast_to(dpooled[:, :, None, None] / (S1 * S2), cache["shape"])   # mean_{h,w}
    _, grads = cnn_features_backward(np.ascontiguousarray(dh), cache["features"])
    return {**grads, "head.W": dW, "head.b": db}


def loss_and_grads(params: dict, config: CNNConfig, images, labels, rng=None):
    """Mean cross-entropy of a batch and its gradients (``rng`` unused: no dropout)."""
    logits, _, cache = cnn_forward(images, params, config)
    loss, c_loss = cross_entropy_forward(logits, labels)
    return float(loss), cnn_backward(cross_entropy_backward(1.0, c_loss), cache)


def predict(params: dict, config: CNNConfig, images, batch: int = 256):
    """(logits (B, K), [attention weights per block]) computed ``batch`` images at a time."""
    chunks = [cnn_forward(images[i:i + batch], params, config)[:2]
              for i in range(0, len(images), batch)]
    weights = [_concat([w[i] for _, w in chunks]) for i in range(len(config.channels))]
    return np.concatenate([logits for logits, _ in chunks]), weights


def _concat(parts):
    """Concatenate per-chunk weights along the batch (tuples element-wise; None stays None)."""
    if parts[0] is None:
        return None
    if isinstance(parts[0], tuple):
        return tuple(np.concatenate(p) for p in zip(*parts))
    return np.concatenate(parts)


def receptive_fields(config: CNNConfig) -> list[tuple[int, int]]:
    """(side r, stride j) in input pixels of each block's output units (after its pool, if any):
    r ← r + (k − 1)·j after a k×k conv; r ← r + j, j ← 2j after a 2×2 pool. The plain CNN's;
    CBAM's k×k spatial filter widens it further."""
    if not isinstance(config, CNNConfig):
        raise ValueError(f"config must be a CNNConfig, got {type(config).__name__}")
    r, j, fields = 1, 1, []
    for i in range(len(config.channels)):
        r += (config.kernel_size - 1) * j
        if config.pool[i]:
            r, j = r + j, 2 * j
        fields.append((r, j))
    return fields
