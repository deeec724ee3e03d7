"""The convolutional encoder: an image → a grid of L annotation vectors a_1 … a_L (Xu et al. §3.1.1).

Each block is conv 3×3 (padding 1) → ReLU → max-pool. With the default 2×2 pools a (H, W)
image becomes a (H / 2ᵏ, W / 2ᵏ) grid after k blocks. Pools are per block (``pools``), so the
grid can follow the layout of the images: the digit strips of demos/caption_digits.py are one
line of text, read left to right, and pools (2, 2), (2, 2), (4, 1) turn a (16, 64) strip into
one row of 16 columns, each a 16 × 4 px slice seen through an 18 px wide receptive field.

    a_i = CNN(x)_i + p_i,     i = 1 … L   (row-major over the grid),   a (B, L, D)

p_i is a learned location embedding. Xu et al. did not need one: a VGG's receptive field spans
the whole image, so its features already know where they are. Ours span ~20 px of a 64 px strip;
without p the decoder would see *what* is at each cell but not *where*, and could not read the
digits in left-to-right order.
"""
from __future__ import annotations

import numpy as np

from attention_np.nn import init
from attention_np.nn.checks import as_float_array
from attention_np.nn.activations import relu_backward, relu_forward
from attention_np.nn.conv import (conv2d_backward, conv2d_forward, max_pool2d_backward,
                               max_pool2d_forward)


POS_STD = 1.0        # init scale of p_i: larger than the conv features at init (std ≈ 0.4 on
                     # the demo's strips), so locations are clearly distinct from the first step


def default_pools(n_blocks: int) -> tuple:
    return ((2, 2),) * n_blocks


def grid_shape(image_shape: tuple[int, int], pools) -> tuple[int, int]:
    """(gh, gw) after the blocks' pools, one (ph, pw) per block; raises unless they divide
    the image."""
    fh, fw = int(np.prod([p[0] for p in pools])), int(np.prod([p[1] for p in pools]))
    if image_shape[0] % fh or image_shape[1] % fw:
        raise ValueError(f"image shape {tuple(image_shape)} must be divisible by the pools' "
                         f"total factor ({fh}, {fw}); pools={tuple(pools)}")
    return image_shape[0] // fh, image_shape[1] // fw


def init_encoder_params(image_shape, channels, rng, dtype=np.float64, pools=None) -> dict:
    """Conv filters ``conv{k}.W`` (F, C, 3, 3), biases ``conv{k}.b`` and the location embedding
    ``pos`` (L, D), D = channels[-1]; ``pools`` default: 2×2 per block.

    Filters are He-initialised, N(0, 2 / fan_in) with fan_in = 9 C: a ReLU zeroes half of its
    inputs, and the factor 2 makes up for it, so activations keep their scale through the
    blocks (He et al., 2015).
    """
    params, c_in = {}, 1
    for k, c_out in enumerate(channels):
        std = np.sqrt(2.0 / (9 * c_in))
        params[f"conv{k}.W"] = init.normal((c_out, c_in, 3, 3), rng, std, dtype)
        params[f"conv{k}.b"] = init.zeros(c_out, dtype)
        c_in = c_out
    gh, gw = grid_shape(image_shape, pools or default_pools(len(channels)))
    params["pos"] = init.normal((gh * gw, c_in), rng, POS_STD, dtype)
    return params


def _n_blocks(params: dict) -> int:
    return sum(1 for name in params if name.startswith("conv") and name.endswith(".W"))


def encoder_forward(images, params, pools=None, backend="numpy"):
    """images (B, H, W) → annotations a (B, L, D) and a cache. ``pools``: the (ph, pw) max-pool
    of each block (default 2×2 each); ``backend="numba"``: the convolutions' and pools' copies
    on Numba kernels (the same numbers, :mod:`attention_np.nn.conv`)."""
    x = as_float_array(images, "images", ndim=3)[:, None]          # (B, 1, H, W)
    caches = []
    pools = pools or default_pools(_n_blocks(params))
    for k in range(_n_blocks(params)):
        x, conv_cache = conv2d_forward(x, params[f"conv{k}.W"], params[f"conv{k}.b"], padding=1,
                                       backend=backend)
        x, relu_cache = relu_forward(x)
        x, pool_cache = max_pool2d_forward(x, pools[k], backend=backend)   # (B, C_k, H/ph, W/pw)
        caches.append({"conv": conv_cache, "relu": relu_cache, "pool": pool_cache})
    B, D, gh, gw = x.shape
    pos = params["pos"]
    if pos.shape != (gh * gw, D):
        raise ValueError(f"params['pos'] must have shape ({gh * gw}, {D}) for a {gh}×{gw} grid "
                         f"of {D} channels, got {pos.shape}")
    a = x.reshape(B, D, gh * gw).transpose(0, 2, 1) + pos          # (B, L, D)
    return a, {"blocks": caches, "grid": (gh, gw)}


def encoder_backward(da, cache) -> dict:
    """da (B, L, D) → grads for every encoder parameter (keyed like the params)."""
    gh, gw = cache["grid"]
    B, L, D = da.shape
    grads = {"pos": da.sum(axis=0)}                                # a = CNN + p
    dx = da.transpose(0, 2, 1).reshape(B, D, gh, gw)
    for k in reversed(range(len(cache["blocks"]))):
        block = cache["blocks"][k]
        dx = max_pool2d_backward(dx, block["pool"])
        dx = relu_backward(dx, block["relu"])
        dx, grads[f"conv{k}.W"], grads[f"conv{k}.b"] = conv2d_backward(dx, block["conv"])
    return grads
