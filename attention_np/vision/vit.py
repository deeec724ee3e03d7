"""A small Vision Transformer classifier (Dosovitskiy et al., 2021, Eq. 1–4).

    z_0 = [x_class ; x_p^1 E ; … ; x_p^N E] + E_pos       (B, N + 1, d)   vision.patches
    z_l = Block(z_{l−1}),   l = 1 … L                      (B, N + 1, d)   the library's encoder
    ŷ   = LN(z_L^0) W_head + b_head                        (B, K)          read the [CLS] token

The blocks are :func:`attention_np.transformer.encoder_forward`'s stack (pre-LN and GELU by
default, as in the ViT paper, so the stack ends in the LayerNorm LN; nothing here re-implements
attention). Parameters are one flat dict (:mod:`attention_np.nn.params`): ``patch.W``,
``patch.b``, ``cls``, ``pos``, ``blocks.{l}.attn.W_q`` … (one encoder block each),
``ln_f.gamma``, ``ln_f.beta``, ``head.W``, ``head.b``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attention_np.core import linear_core, linear_backward
from attention_np.nn.checks import as_dout, as_float_array, check_params, check_shape
from attention_np.nn.init import normal, xavier_uniform, zeros
from attention_np.nn.losses import cross_entropy_backward, cross_entropy_forward
from attention_np.nn.params import prefixed, sub
from attention_np.transformer import EncoderConfig, encoder_backward, encoder_forward, init_encoder
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
    the encoder stack by :func:`~attention_np.transformer.init_encoder` (with its final
    LayerNorm for pre-LN), and a zero head (the paper's choice: every class starts equally
    likely)."""
    c, e, d = config, config.encoder, config.encoder.d_model
    params = {"patch.W": xavier_uniform((c.in_channels * c.patch_size ** 2, d), rng, dtype),
              "patch.b": zeros(d, dtype), "cls": zeros(d, dtype),
              "pos": normal((c.num_tokens, d), rng, 0.02, dtype)}
    params.update(init_encoder(e, rng, dtype))     # blocks.{l}.*, and ln_f.* for pre-LN
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
    z, weights, c_enc = encoder_forward(z0, params, e, rng=rng, training=training)   # LN(z_L)
    h = z[:, 0]                                                                       # (B, d)
    head = check_params(params, {"head.W": (e.d_model, c.num_classes),
                                 "head.b": (c.num_classes,)})
    logits, c_head = linear_core(h, head["head.W"], head["head.b"])                        # (B, K)
    cache = {"patch": c_patch, "cls": c_cls, "enc": c_enc, "head": c_head,
             "z_shape": z.shape, "logits_shape": logits.shape}
    return logits, weights, cache


def vit_backward(dlogits, cache) -> dict:
    """Undo :func:`vit_forward`: dlogits (B, K) → gradients keyed like the params."""
    grads = {}
    dlogits = as_dout(dlogits, cache["logits_shape"], name="dlogits")
    dh, grads["head.W"], grads["head.b"] = linear_backward(dlogits, cache["head"])
    dz = np.zeros(cache["z_shape"], dh.dtype)
    dz[:, 0] = dh                                        # only the [CLS] token reaches the head
    dz0, g_enc = encoder_backward(dz, cache["enc"])
    grads.update(g_enc)
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
