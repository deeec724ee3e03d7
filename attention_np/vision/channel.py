"""Channel attention: which feature maps matter for this image.

Squeeze-and-Excitation (Hu et al., 2018), for feature maps x (B, C, H, W):

    m = mean_{h,w} x                                   (B, C)    squeeze
    s = σ(ReLU(m W₁ + b₁) W₂ + b₂)                     (B, C)    excitation: one weight per channel
    y = x ⊙ s                                          (B, C, H, W)  (s broadcast over h, w)

W₁ (C, C_r), W₂ (C_r, C) with C_r = max(1, C // reduction): a bottleneck MLP shared by all
images. The channel half of CBAM (Woo et al., 2018) feeds the same MLP twice, with the average-
and the max-pooled descriptor, and adds the results before the sigmoid:

    s = σ(MLP(mean_{h,w} x) + MLP(max_{h,w} x)),       y = x ⊙ s

Both are attention whose "keys" are the channels and whose query is the image's own summary:
the weights s ∈ (0, 1) need not sum to 1 (gating, not a softmax).
"""
from __future__ import annotations

import numpy as np

from attention_np.core import linear_core, linear_backward
from attention_np.nn.activations import (relu_backward, relu_forward, sigmoid_backward,
                                         sigmoid_forward)
from attention_np.nn.checks import as_dout, as_float_array, check_params, check_positive_int
from attention_np.nn.params import linear_params
from attention_np.nn.checks import check_rng


def hidden_channels(channels: int, reduction: int) -> int:
    """C_r = max(1, C // reduction), the width of the bottleneck."""
    C = check_positive_int(channels, "channels", minimum=0)
    return max(1, C // check_positive_int(reduction, "reduction"))


def init_channel_mlp(channels: int, reduction: int, rng: np.random.Generator,
                     dtype=np.float64) -> dict:
    """The bottleneck MLP of SE and of CBAM's channel half: W_1 (C, C_r), b_1, W_2 (C_r, C), b_2,
    initialised as torch's ``nn.Linear`` (U(±1/√fan_in)) with zero biases."""
    c_r, rng = hidden_channels(channels, reduction), check_rng(rng)
    first = linear_params(rng, channels, c_r, dtype)
    second = linear_params(rng, c_r, channels, dtype)
    return {"W_1": first["W"], "b_1": first["b"], "W_2": second["W"], "b_2": second["b"]}


def check_channel_inputs(x, params, reduction, prefix: str = ""):
    """x as a 4-D float array with at least one pixel, and the MLP's parameters
    ``{prefix}W_1`` … checked against C and ``reduction`` → (x, {"W_1": …, …})."""
    x = as_float_array(x, "x", ndim=4)
    if x.shape[2] * x.shape[3] == 0:
        raise ValueError(f"x must have at least one pixel per channel, got shape {x.shape}")
    C, c_r = x.shape[1], hidden_channels(x.shape[1], reduction)
    shapes = {"W_1": (C, c_r), "b_1": (c_r,), "W_2": (c_r, C), "b_2": (C,)}
    p = check_params(params, {prefix + n: shape for n, shape in shapes.items()})
    return x, {n: p[prefix + n] for n in shapes}


def _mlp_forward(m, p):
    """z = ReLU(m W₁ + b₁) W₂ + b₂.   m (B, C) → z (B, C)."""
    u, c1 = linear_core(m, p["W_1"], p["b_1"])                       # (B, C_r)
    a, c_relu = relu_forward(u)
    z, c2 = linear_core(a, p["W_2"], p["b_2"])                       # (B, C)
    return z, {"fc1": c1, "relu": c_relu, "fc2": c2}


def _mlp_backward(dz, cache):
    """→ (dm (B, C), grads W_1, b_1, W_2, b_2)."""
    da, dW_2, db_2 = linear_backward(dz, cache["fc2"])           # z = a W₂ + b₂
    du = relu_backward(da, cache["relu"])                        # a = ReLU(u)
    dm, dW_1, db_1 = linear_backward(du, cache["fc1"])           # u = m W₁ + b₁
    return dm, {"W_1": dW_1, "b_1": db_1, "W_2": dW_2, "b_2": db_2}


def squeeze_excitation_forward(x, params, reduction):
    """Squeeze-and-Excitation:  s = σ(ReLU(mean_{h,w}(x) W₁ + b₁) W₂ + b₂),  y = x ⊙ s.

    x (B, C, H, W); params from :func:`init_channel_mlp` (W_1 (C, C_r), b_1 (C_r,), W_2 (C_r, C),
    b_2 (C,), C_r = max(1, C // reduction)) → y (B, C, H, W), s (B, C) the channel weights, cache.
    """
    x, p = check_channel_inputs(x, params, reduction)
    m = x.mean(axis=(2, 3))                                      # (B, C)   squeeze
    z, c_mlp = _mlp_forward(m, p)                                # (B, C)
    s, c_sig = sigmoid_forward(z)                                # (B, C)   excitation
    y = x * s[:, :, None, None]                                  # (B, C, H, W)
    return y, s, {"x": x, "s": s, "mlp": c_mlp, "sigmoid": c_sig}


def squeeze_excitation_backward(dy, cache):
    """Walks SE back: dx = dy ⊙ s + (1/HW) ∂L/∂m,  ∂L/∂s = Σ_{h,w} dy ⊙ x.

    dy (B, C, H, W) → (dx (B, C, H, W), grads W_1, b_1, W_2, b_2).
    """
    x, s = cache["x"], cache["s"]
    dy = as_dout(dy, x.shape, x.dtype, name="dy")
    ds = (dy * x).sum(axis=(2, 3))                               # y = x ⊙ s  →  (B, C)
    dz = sigmoid_backward(ds, cache["sigmoid"])                  # s = σ(z)
    dm, grads = _mlp_backward(dz, cache["mlp"])                  # z = MLP(m)
    H, W = x.shape[2:]
    dx = dy * s[:, :, None, None] + dm[:, :, None, None] / (H * W)   # m = mean_{h,w} x
    return dx.astype(x.dtype, copy=False), grads


def channel_attention_forward(x, params, reduction):
    """CBAM's channel attention:  s = σ(MLP(mean_{h,w} x) + MLP(max_{h,w} x)),  y = x ⊙ s.

    x (B, C, H, W); params as for :func:`squeeze_excitation_forward` (one MLP, used twice)
    → y (B, C, H, W), s (B, C), cache.
    """
    return channel_attention_core(*check_channel_inputs(x, params, reduction))


def channel_attention_core(x, p):
    """:func:`channel_attention_forward` on checked input (p: W_1 … b_2 as arrays)."""
    B, C, H, W = x.shape
    flat = x.reshape(B, C, H * W)
    arg = flat.argmax(axis=2)                                        # (B, C) where the max is
    m_avg = flat.mean(axis=2)                                        # (B, C)
    m_max = np.take_along_axis(flat, arg[:, :, None], 2)[:, :, 0]   # (B, C)
    z_avg, c_avg = _mlp_forward(m_avg, p)
    z_max, c_max = _mlp_forward(m_max, p)
    s, c_sig = sigmoid_forward(z_avg + z_max)                        # (B, C)
    y = x * s[:, :, None, None]
    return y, s, {"x": x, "s": s, "arg": arg, "avg": c_avg, "max": c_max, "sigmoid": c_sig}


def channel_attention_backward(dy, cache):
    """The mean path spreads ∂L/∂m_avg over all H·W positions; the max path sends ∂L/∂m_max to
    the position of each channel's maximum (the first one on ties).

    dy (B, C, H, W) → (dx (B, C, H, W), grads W_1, b_1, W_2, b_2 summed over both paths).
    """
    x, s = cache["x"], cache["s"]
    dy = as_dout(dy, x.shape, x.dtype, name="dy")
    B, C, H, W = x.shape
    dz = sigmoid_backward((dy * x).sum(axis=(2, 3)), cache["sigmoid"])   # s = σ(z_avg + z_max)
    dm_avg, g_avg = _mlp_backward(dz, cache["avg"])
    dm_max, g_max = _mlp_backward(dz, cache["max"])
    dflat = np.repeat(dm_avg[:, :, None] / (H * W), H * W, axis=2)     # (B, C, H·W)
    arg = cache["arg"][:, :, None]
    np.put_along_axis(dflat, arg, np.take_along_axis(dflat, arg, 2) + dm_max[:, :, None],
                      axis=2)                                           # m_max = x[argmax]
    dx = dy * s[:, :, None, None] + dflat.reshape(B, C, H, W)
    grads = {n: g_avg[n] + g_max[n] for n in g_avg}
    return dx.astype(x.dtype, copy=False), grads
