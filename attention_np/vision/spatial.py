"""Spatial attention and the whole CBAM block (Woo et al., 2018): where in the image to look.

CBAM's spatial half pools the channels two ways, convolves the two maps with one k×k filter
(k = 7 in the paper; 'same' zero padding, stride 1) and gates every position:

    P = [mean_c x ; max_c x]                          (B, 2, H, W)
    a = σ(conv_{k×k}(P; W, b))                        (B, 1, H, W)   one weight per position
    y = x ⊙ a                                         (B, C, H, W)   (a broadcast over channels)

W (1, 2, k, k) in torch's conv layout, b (1,). A CBAM block applies the channel attention of
:mod:`attention_np.vision.channel` first, then this:  y = SA(CA(x)).
The convolution is :func:`attention_np.nn.conv.conv2d_forward` with padding (k − 1)/2.
"""
from __future__ import annotations

import numpy as np

from attention_np.nn.activations import sigmoid_backward, sigmoid_forward
from attention_np.nn.checks import as_dout, as_float_array, check_params
from attention_np.nn.conv import conv2d_backward, conv2d_forward
from attention_np.nn.init import uniform_fan_in, zeros
from attention_np.nn.params import prefixed
from attention_np.nn.checks import check_odd_size, check_rng
from attention_np.vision.channel import (channel_attention_core, channel_attention_backward,
                                         check_channel_inputs, init_channel_mlp)


def init_spatial_attention(kernel_size: int, rng: np.random.Generator, dtype=np.float64) -> dict:
    """W (1, 2, k, k) ~ U(±1/√(2k²)) (torch's Conv2d default bound), b = 0 (shape (1,))."""
    k, rng = check_odd_size(kernel_size, "kernel_size"), check_rng(rng)
    return {"W": uniform_fan_in((1, 2, k, k), rng, fan_in=2 * k * k, dtype=dtype),
            "b": zeros(1, dtype)}


def check_spatial_params(x: np.ndarray, params, prefix: str = ""):
    """The filter ``{prefix}W`` (1, 2, k, k), k odd, and ``{prefix}b`` (1,) for images x
    (B, C, H, W) with C ≥ 1 → (W, b)."""
    if x.shape[1] == 0:
        raise ValueError(f"x must have at least one channel to pool over, got shape {x.shape}")
    W = check_params(params, {prefix + "W": (1, 2, None, None)})[prefix + "W"]
    k = W.shape[2]
    p = check_params(params, {prefix + "W": (1, 2, k, k), prefix + "b": (1,)})
    if k % 2 == 0:
        raise ValueError(f"params[{prefix + 'W'!r}] must have an odd kernel size for 'same' "
                         f"padding, got shape {W.shape}")
    return p[prefix + "W"], p[prefix + "b"]


def spatial_attention_forward(x, params):
    """CBAM spatial attention:  a = σ(conv([mean_c x ; max_c x])),  y = x ⊙ a.

    x (B, C, H, W); params W (1, 2, k, k) with k odd, b (1,) (:func:`init_spatial_attention`)
    → y (B, C, H, W), a (B, 1, H, W) the spatial map, cache.
    """
    x = as_float_array(x, "x", ndim=4)
    return _spatial_attention(x, *check_spatial_params(x, params))


def _spatial_attention(x, W, b, backend="numpy"):
    """:func:`spatial_attention_forward` on checked input (``backend``: the convolution's)."""
    arg = x.argmax(axis=1)[:, None]                                  # (B, 1, H, W)
    pooled = np.concatenate([x.mean(axis=1, keepdims=True),
                             np.take_along_axis(x, arg, axis=1)], axis=1)   # (B, 2, H, W)
    z, c_conv = conv2d_forward(pooled, W, b, padding=W.shape[2] // 2, backend=backend)
    a, c_sig = sigmoid_forward(z)
    y = x * a                                                               # (B, C, H, W)
    return y, a, {"x": x, "a": a, "arg": arg, "conv": c_conv, "sigmoid": c_sig}


def spatial_attention_backward(dy, cache):
    """∂L/∂a = Σ_c dy ⊙ x; back through σ and the conv to P; the mean half spreads over the C
    channels, the max half goes to each position's largest channel (the first on ties).

    dy (B, C, H, W) → (dx (B, C, H, W), grads W (1, 2, k, k), b (1,)).
    """
    x, a, arg = cache["x"], cache["a"], cache["arg"]
    dy = as_dout(dy, x.shape, x.dtype, name="dy")
    dz = sigmoid_backward((dy * x).sum(axis=1, keepdims=True), cache["sigmoid"])   # y = x ⊙ a
    dpooled, dW, db = conv2d_backward(dz, cache["conv"])                  # (B, 2, H, W)
    dx = dy * a + dpooled[:, :1] / x.shape[1]                             # P₀ = mean_c x
    dmax = np.zeros_like(dx)
    np.put_along_axis(dmax, arg, dpooled[:, 1:], axis=1)                  # P₁ = x[argmax_c]
    return (dx + dmax).astype(x.dtype, copy=False), {"W": dW, "b": db}


def init_cbam(channels: int, reduction: int, kernel_size: int, rng: np.random.Generator,
              dtype=np.float64) -> dict:
    """``channel.`` W_1 … b_2 (:func:`init_channel_mlp`) and ``spatial.`` W, b."""
    return {**prefixed("channel", init_channel_mlp(channels, reduction, rng, dtype)),
            **prefixed("spatial", init_spatial_attention(kernel_size, rng, dtype))}


def cbam_forward(x, params, reduction, backend="numpy"):
    """CBAM:  y = SA(CA(x)),  channel attention then spatial attention.

    x (B, C, H, W); params from :func:`init_cbam` (``channel.W_1`` … ``channel.b_2``,
    ``spatial.W``, ``spatial.b``) → y (B, C, H, W), (s (B, C), a (B, 1, H, W)), cache.
    ``backend="numba"``: the spatial convolution's copies on the Numba kernels (the same
    numbers, :func:`attention_np.nn.conv.conv2d_forward`).
    """
    x, p_ca = check_channel_inputs(x, params, reduction, prefix="channel.")
    W, b = check_spatial_params(x, params, prefix="spatial.")
    h, s, c_ca = channel_attention_core(x, p_ca)
    y, a, c_sa = _spatial_attention(h, W, b, backend)
    return y, (s, a), {"ca": c_ca, "sa": c_sa}


def cbam_backward(dy, cache):
    """dy (B, C, H, W) → (dx, grads keyed like :func:`init_cbam`'s params)."""
    dh, g_sa = spatial_attention_backward(dy, cache["sa"])
    dx, g_ca = channel_attention_backward(dh, cache["ca"])
    return dx, {**prefixed("channel", g_ca), **prefixed("spatial", g_sa)}
