"""A small Vision Transformer classifier (Dosovitskiy et al., 2021, Eq. 1–4).

    z_0 = [x_class ; x_p^1 E ; … ; x_p^N E] + E_pos       (B, N + 1, d)   vision.patches
    z_l = Block(z_{l−1}),   l = 1 … L                      (B, N + 1, d)   the library's encoder
    ŷ   = LN(z_L^0) W_head + b_head                        (B, K)          read the [CLS] token

``Block`` is :func:`attention_np.transformer.encoder_block_forward` (pre-LN and GELU by default,
as in the ViT paper; nothing here re-implements attention). Parameters are one flat dict
(:mod:`attention_np.nn.params`): ``patch.W``, ``patch.b``, ``cls``, ``pos``, ``layer{l}.W_q`` …
(one encoder block each), ``norm.gamma``, ``norm.beta``, ``head.W``, ``head.b``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attention_np.core import _linear, linear_backward
from attention_np.nn.checks import as_dout, as_float_array, check_params, check_shape
from attention_np.nn.init import normal, ones, xavier_uniform, zeros
from attention_np.nn.layers import layer_norm_backward, layer_norm_forward
from attention_np.nn.losses import cross_entropy_backward, cross_entropy_forward
from attention_np.nn.params import prefixed, sub
from attention_np.transformer import (EncoderConfig, encoder_backward, encoder_forward,
                                      init_encoder_block)
from attention_np.vision.patches import (class_token_backward, class_token_forward,
                                         patch_embedding_backward, patch_embedding_forward)


# The ViT paper's block: pre-LN, GELU; widths of the demo's ~20 k-parameter model.
VIT_ENCODER = EncoderConfig(d_model=24, num_heads=4, d_ff=48, num_layers=4, activation="gelu",
                            norm_first=True)


@dataclass(frozen=True)
class ViTConfig:
    """Image and patch sizes, the number of classes, and the encoder stack (an
    :class:`~attention_np.transformer.EncoderConfig`; with ``norm_first`` a final LayerNorm
    comes before the head, as in ViT)."""
    image_size: int = 8
    in_channels: int = 1
    patch_size: int = 2
    num_classes: int = 10
    encoder: EncoderConfig = VIT_ENCODER

    def __post_init__(self):
        if self.image_size % self.patch_size:
            raise ValueError(f"image_size {self.image_size} must be a multiple of patch_size "
                             f"{self.patch_size}")

    @property
    def grid(self) -> int:
        """Patches per side, H / p."""
        return self.image_size // self.patch_size

    @property
    def num_tokens(self) -> int:
        """N + 1: the patches and the [CLS] token."""
        return self.grid ** 2 + 1


def init_vit(config: ViTConfig, rng: np.random.Generator, dtype=np.float64) -> dict:
    """Patch projection Xavier-uniform, [CLS] = 0 and E_pos ~ N(0, 0.02²) (the paper's code),
    encoder blocks by :func:`init_encoder_block`, a final LayerNorm γ = 1, β = 0 (pre-LN only),
    and a zero head (the paper's choice: every class starts equally likely)."""
    c, e, d = config, config.encoder, config.encoder.d_model
    params = {"patch.W": xavier_uniform((c.in_channels * c.patch_size ** 2, d), rng, dtype),
              "patch.b": zeros(d, dtype), "cls": zeros(d, dtype),
              "pos": normal((c.num_tokens, d), rng, 0.02, dtype)}
    for layer in range(e.num_layers):
        params.update(prefixed(f"layer{layer}", init_encoder_block(d, e.d_ff, rng, dtype)))
    if e.norm_first:                      # post-LN blocks already end in a LayerNorm
        params.update({"norm.gamma": ones(d, dtype), "norm.beta": zeros(d, dtype)})
    params.update({"head.W": zeros((d, c.num_classes), dtype),
                   "head.b": zeros(c.num_classes, dtype)})
    return params


def vit_forward(images, params: dict, config: ViTConfig, rng=None, training: bool = False):
    """Logits of a batch of images, and every layer's attention weights.

    images (B, C, S, S) with C = config.in_channels, S = config.image_size; params from
    :func:`init_vit`; ``rng`` a Generator when training with dropout
    → logits (B, K), weights [(B, H, N + 1, N + 1)] one per layer (token 0 is [CLS]), cache.
    """
    c, e = config, config.encoder
    x = as_float_array(images, "images", ndim=4)
    check_shape(x, "images", (None, c.in_channels, c.image_size, c.image_size))
    tokens, c_patch = patch_embedding_forward(x, sub(params, "patch"), c.patch_size)  # (B, N, d)
    z0, c_cls = class_token_forward(tokens, params)                                   # (B, N+1, d)
    layers = [sub(params, f"layer{layer}") for layer in range(e.num_layers)]
    z, weights, c_enc = encoder_forward(z0, layers, e, rng=rng, training=training)
    h, c_norm = z[:, 0], None                                                         # (B, d)
    if e.norm_first:
        norm = check_params(params, {"norm.gamma": (e.d_model,), "norm.beta": (e.d_model,)})
        h, c_norm = layer_norm_forward(h, norm["norm.gamma"], norm["norm.beta"], e.eps)
    head = check_params(params, {"head.W": (e.d_model, c.num_classes),
                                 "head.b": (c.num_classes,)})
    logits, c_head = _linear(h, head["head.W"], head["head.b"])                        # (B, K)
    cache = {"patch": c_patch, "cls": c_cls, "enc": c_enc, "norm": c_norm, "head": c_head,
             "z_shape": z.shape, "logits_shape": logits.shape}
    return logits, weights, cache


def vit_backward(dlogits, cache) -> dict:
    """Undo :func:`vit_forward`: dlogits (B, K) → gradients keyed like the params."""
    grads = {}
    dlogits = as_dout(dlogits, cache["logits_shape"], name="dlogits")
    dh, grads["head.W"], grads["head.b"] = linear_backward(dlogits, cache["head"])
    if cache["norm"] is not None:
        dh, grads["norm.gamma"], grads["norm.beta"] = layer_norm_backward(dh, cache["norm"])
    dz = np.zeros(cache["z_shape"], dh.dtype)
    dz[:, 0] = dh                                        # only the [CLS] token reaches the head
    dz0, layer_grads = encoder_backward(dz, cache["enc"])
    for layer, g in enumerate(layer_grads):
        grads.update(prefixed(f"layer{layer}", g))
    dtokens, g_cls = class_token_backward(dz0, cache["cls"])
    grads.update(g_cls)
    _, g_patch = patch_embedding_backward(dtokens, cache["patch"])
    return {**grads, **prefixed("patch", g_patch)}


def loss_and_grads(params: dict, config: ViTConfig, images, labels, rng=None,
                   training: bool = True):
    """Mean cross-entropy of a batch and its gradients for every parameter."""
    logits, _, cache = vit_forward(images, params, config, rng, training)
    loss, c_loss = cross_entropy_forward(logits, labels)
    return float(loss), vit_backward(cross_entropy_backward(1.0, c_loss), cache)


def predict(params: dict, config: ViTConfig, images, batch: int = 256):
    """(logits (B, K), [weights (B, H, N+1, N+1)] per layer), ``batch`` images at a time."""
    chunks = [vit_forward(images[i:i + batch], params, config)
              for i in range(0, len(images), batch)]
    weights = [np.concatenate([w[layer] for _, w, _ in chunks])
               for layer in range(config.encoder.num_layers)]
    return np.concatenate([logits for logits, _, _ in chunks]), weights
