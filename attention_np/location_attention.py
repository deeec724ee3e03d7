"""Location-aware attention (Chorowski et al., 2015, "Attention-based models for speech
recognition"): the score of frame j also looks at where the previous step attended.

One decoder step i, for decoder state s_i (B, Ds), keys k_j = h_j V (B, T, A) computed once per
utterance, values h (B, T, Dh) and the previous weights α_{i−1} (B, T):

    f_i = F ∗ α_{i−1}            f_ij ∈ ℝ^K: K filters of odd width r, zero-padded ("same")
    e_ij = wᵀ tanh(s_i W + k_j + f_ij U + b)                        (B, T)
    α_i = softmax_j(e_ij)  (over the frames with mask True),   c_i = Σ_j α_ij h_j  (B, Dh)

The last line is soft attention with one query (:func:`attention_np.soft.soft_attention_forward`);
what is new here is the score e_ij.

Parameters: W (Ds, A), U (K, A), F (K, r), b (A,), w (A,). The keys' projection V is a plain
linear layer, applied once outside the decoder loop; the backward returns dkeys for it.
``conv1d_same_forward`` is torch.nn.functional.conv1d(α[:, None], F[:, None], padding=r // 2).
"""
from __future__ import annotations

import numpy as np

from attention_np.nn.checks import (as_dout, as_float_array, check_mask, check_params,
                                    check_positive_int, check_same_dim, check_shape)
from attention_np.nn.init import uniform_fan_in, zeros
from attention_np.soft import soft_attention_core, soft_attention_backward


def init_location_params(Ds: int, Dh: int, A: int, K: int, r: int, rng,
                         dtype=np.float64) -> dict:
    """W (Ds, A), V (Dh, A), U (K, A), F (K, r), b (A,), w (A,), uniform ±1/√fan_in
    (torch's default for linear and conv layers; F's fan-in is its width r)."""
    Ds, Dh, A, K, r = (check_positive_int(n, name) for n, name in
                       zip((Ds, Dh, A, K, r), ("Ds", "Dh", "A", "K", "r")))
    if r % 2 != 1:
        raise ValueError(f"filter width r must be odd (same-length convolution), got {r}")
    return {"W": uniform_fan_in((Ds, A), rng, dtype=dtype),
            "V": uniform_fan_in((Dh, A), rng, dtype=dtype),
            "U": uniform_fan_in((K, A), rng, dtype=dtype),
            "F": uniform_fan_in((K, r), rng, fan_in=r, dtype=dtype),
            "b": zeros(A, dtype), "w": uniform_fan_in(A, rng, dtype=dtype)}


def _check_filters(F, name: str) -> np.ndarray:
    """F (K, r) float with an odd width r (a same-length convolution)."""
    F = as_float_array(F, name, ndim=2)
    if F.shape[1] % 2 != 1:
        raise ValueError(f"{name} must have an odd width r (axis 1), got shape {F.shape}")
    return F


def conv1d_same_forward(alpha, F):
    """f[b, j, k] = Σ_τ F[k, τ] α[b, j + τ − r//2]  (α zero outside 0 … T−1).

    alpha (B, T), F (K, r) with r odd → f (B, T, K) (T = 0 gives an empty f).
    """
    return _conv1d_same(as_float_array(alpha, "alpha", ndim=2), _check_filters(F, "F"))


def _conv1d_same(alpha: np.ndarray, F: np.ndarray):
    """:func:`conv1d_same_forward` on checked input."""
    r, T = F.shape[1], alpha.shape[1]
    padded = np.pad(alpha, ((0, 0), (r // 2, r // 2)))                     # (B, T + r − 1)
    windows = padded[:, np.arange(T)[:, None] + np.arange(r)]              # (B, T, r) α_pad[j+τ]
    return windows @ F.T, {"windows": windows, "F": F}                     # (B, T, K)


def conv1d_same_backward(df, cache):
    """dF[k, τ] = Σ_{b,j} df[b,j,k] α_pad[b, j+τ];  dα_pad[b, j+τ] += Σ_k df[b,j,k] F[k,τ]."""
    B, T, _ = cache["windows"].shape
    return _conv1d_same_backward(as_dout(df, (B, T, cache["F"].shape[0]), name="df"), cache)


def _conv1d_same_backward(df: np.ndarray, cache):
    windows, F = cache["windows"], cache["F"]
    B, T, r = windows.shape
    dF = np.einsum("btk,btr->kr", df, windows)
    dwin = df @ F                                                          # (B, T, r)
    dpad = np.zeros((B, T + r - 1), df.dtype)
    for tau in range(r):                                                   # r is small (≤ 31)
        dpad[:, tau:tau + T] += dwin[:, :, tau]
    return dpad[:, r // 2:r // 2 + T], dF


def _check_step(s, keys, values, alpha_prev, params, mask):
    s = as_float_array(s, "s", ndim=2)
    keys = as_float_array(keys, "keys", ndim=3)
    values = as_float_array(values, "values", ndim=3)
    alpha_prev = as_float_array(alpha_prev, "alpha_prev", ndim=2)
    check_same_dim(s, "s", 0, keys, "keys", 0)
    check_shape(values, "values", keys.shape[:2] + (None,))
    check_shape(alpha_prev, "alpha_prev", keys.shape[:2])
    A = keys.shape[2]
    p = check_params(params, {"W": (s.shape[1], A), "U": (None, A), "b": (A,), "w": (A,)})
    p |= check_params(params, {"F": (p["U"].shape[0], None)})
    _check_filters(p["F"], "params['F']")
    return s, keys, values, alpha_prev, p, check_mask(mask, "mask", keys.shape[:2])


def location_attention_forward(s, keys, values, alpha_prev, params, mask=None):
    """One step of location-aware attention (see the module docstring for the formula).

    s (B, Ds), keys (B, T, A), values (B, T, Dh), alpha_prev (B, T), mask (B, T) bool or None
    → context c (B, Dh), weights α (B, T). Returns ``(context, weights, cache)``.
    """
    s, keys, values, alpha_prev, p, mask = _check_step(s, keys, values, alpha_prev, params, mask)
    f, conv = _conv1d_same(alpha_prev, p["F"])                            # (B, T, K)
    a = (s @ p["W"])[:, None, :] + keys + f @ p["U"] + p["b"]             # (B, T, A)
    t = np.tanh(a)
    e = t @ p["w"]                                                        # (B, T)
    m = None if mask is None else mask[:, None, :]                        # (B, 1, T)
    context, alpha, soft = soft_attention_core(e[:, None, :], values, m, 0.0, None)   # one query
    cache = {"s": s, "f": f, "t": t, "soft": soft, "conv": conv, "Dh": values.shape[2],
             "W": p["W"], "U": p["U"], "w": p["w"]}
    return context[:, 0], alpha[:, 0], cache                              # (B, Dh), (B, T)


def location_attention_backward(dcontext, cache, dalpha=None):
    """Returns ``(ds, dkeys, dvalues, dalpha_prev, grads)``, grads keyed W, U, F, b, w.

    ``dalpha`` is the gradient reaching α_i from later steps (through their convolution).
    """
    s, f, t = cache["s"], cache["f"], cache["t"]
    dcontext = as_dout(dcontext, (t.shape[0], cache["Dh"]), t.dtype, name="dcontext")
    dal = None if dalpha is None else as_dout(dalpha, t.shape[:2], name="dalpha")[:, None, :]
    de, dvalues = soft_attention_backward(dcontext[:, None, :], cache["soft"], dal)
    de = de[:, 0]                                                         # α = softmax(e), c = α h
    grads = {"w": np.einsum("bta,bt->a", t, de)}                          # e = t w
    da = de[..., None] * cache["w"] * (1 - t * t)                         # t = tanh(a)
    ds_a = da.sum(axis=1)                                                 # (B, A)
    grads["W"], grads["b"] = s.T @ ds_a, ds_a.sum(axis=0)
    rows = t.shape[0] * t.shape[1]                         # B·T, not −1: K or A may be 0
    grads["U"] = f.reshape(rows, f.shape[-1]).T @ da.reshape(rows, da.shape[-1])
    dalpha_prev, grads["F"] = _conv1d_same_backward(da @ cache["U"].T, cache["conv"])
    return ds_a @ cache["W"].T, da, dvalues, dalpha_prev, grads
