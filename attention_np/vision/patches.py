"""An image as a sequence of tokens: the input end of a Vision Transformer (Dosovitskiy et al.,
2021, §3.1, Eq. 1).

    x_p^n = vec(patch n of x)                       (B, N, C·p·p)   N = (H/p)(W/p), row-major
    t_n   = x_p^n E + b                             (B, N, d)       patch embedding
    z_0   = [x_class ; t_1 … t_N] + E_pos           (B, N + 1, d)   [CLS] token and positions

Patches do not overlap: the patch embedding is a convolution with kernel = stride = p, and a
patch is flattened channel-major (c, u, v), so ``E.T.reshape(d, C, p, p)`` is the weight of the
equivalent ``torch.nn.Conv2d(C, d, p, stride=p)``. E_pos is learned, one row per token.
"""
from __future__ import annotations

import numpy as np

from attention_np.core import linear_core, linear_backward
from attention_np.nn.checks import as_dout, as_float_array, check_params, check_positive_int


def _patchify(x: np.ndarray, patch_size: int) -> np.ndarray:
    """(B, C, H, W) → (B, N, C·p·p), N = (H/p)(W/p) patches in row-major order (trusting)."""
    B, C, H, W = x.shape
    p = patch_size
    patches = x.reshape(B, C, H // p, p, W // p, p)                # (B, C, gh, p, gw, p)
    patches = patches.transpose(0, 2, 4, 1, 3, 5)                   # (B, gh, gw, C, p, p)
    return patches.reshape(B, (H // p) * (W // p), C * p * p)


def _unpatchify(patches: np.ndarray, image_shape: tuple, patch_size: int) -> np.ndarray:
    """The inverse of :func:`_patchify`: (B, N, C·p·p) → (B, C, H, W)."""
    B, C, H, W = image_shape
    p = patch_size
    x = patches.reshape(B, H // p, W // p, C, p, p)                 # (B, gh, gw, C, p, p)
    x = x.transpose(0, 3, 1, 4, 2, 5)                               # (B, C, gh, p, gw, p)
    return x.reshape(B, C, H, W)


def _check_patch_inputs(x, params, patch_size):
    x = as_float_array(x, "x", ndim=4)
    p = check_positive_int(patch_size, "patch_size")
    if x.shape[2] % p or x.shape[3] % p:
        raise ValueError(f"x height and width must be multiples of patch_size {p}, "
                         f"got shape {x.shape}")
    W = check_params(params, {"W": (x.shape[1] * p * p, None)})["W"]
    b = check_params(params, {"b": (W.shape[1],)})["b"]
    return x, W, b, p


def patch_embedding_forward(x, params, patch_size):
    """t = patchify(x) E + b:  non-overlapping p×p patches, each projected to d features.

    x (B, C, H, W) with H, W multiples of p; params W (C·p·p, d), b (d,)
    → tokens (B, N, d), N = (H/p)(W/p) (row-major), cache.
    """
    x, W, b, p = _check_patch_inputs(x, params, patch_size)
    tokens, c_lin = linear_core(_patchify(x, p), W, b)                       # (B, N, d)
    return tokens, {"lin": c_lin, "image_shape": x.shape, "patch_size": p,
                    "tokens_shape": tokens.shape}


def patch_embedding_backward(dtokens, cache):
    """dE = Σ patchesᵀ dt,  db = Σ dt,  dx = unpatchify(dt Eᵀ) (each pixel is in one patch).

    dtokens (B, N, d) → (dx (B, C, H, W), grads W, b).
    """
    dtokens = as_dout(dtokens, cache["tokens_shape"], name="dtokens")
    dpatches, dW, db = linear_backward(dtokens, cache["lin"])
    return _unpatchify(dpatches, cache["image_shape"], cache["patch_size"]), {"W": dW, "b": db}


def class_token_forward(tokens, params):
    """z = [cls ; t_1 … t_N] + E_pos:  prepend the learned [CLS] token, add learned positions.

    tokens (B, N, d); params cls (d,), pos (N + 1, d) → z (B, N + 1, d), cache.
    """
    t = as_float_array(tokens, "tokens", ndim=3)
    B, N, d = t.shape
    p = check_params(params, {"cls": (d,), "pos": (N + 1, d)})
    cls, pos = p["cls"], p["pos"]
    z = np.concatenate([np.broadcast_to(cls, (B, 1, d)), t], axis=1) + pos   # (B, N + 1, d)
    return z, {"shape": z.shape, "dtype": z.dtype}


def class_token_backward(dz, cache):
    """dtokens = dz[:, 1:],  dcls = Σ_b dz[:, 0],  dpos = Σ_b dz.

    dz (B, N + 1, d) → (dtokens (B, N, d), grads cls (d,), pos (N + 1, d)).
    """
    dz = as_dout(dz, cache["shape"], cache["dtype"], name="dz")
    return dz[:, 1:], {"cls": dz[:, 0].sum(axis=0), "pos": dz.sum(axis=0)}
