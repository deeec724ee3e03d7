"""Element-wise nonlinearities: GELU (exact and tanh), ReLU, tanh, sigmoid.

Each is a ``<name>_forward(x) -> (y, cache)`` / ``<name>_backward(dy, cache) -> dx`` pair.
Shapes: x (...) of any rank; y, dy and dx have x's shape and dtype. float16 inputs are computed
in float32 and cast back, and every op stays finite for |x| up to 1e4.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.special import erf

from attention_np.nn.checks import as_dout, as_float_array, compute_dtype

_SQRT_2 = math.sqrt(2.0)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_GELU_TANH_C = 0.044715


def _prepare(x) -> tuple[np.ndarray, np.ndarray]:
    """(x as given, x in its compute dtype: float16 → float32)."""
    x = as_float_array(x, "x")
    return x, x.astype(compute_dtype(x.dtype), copy=False)


def _finish(dx, cache) -> np.ndarray:
    """Cast a gradient computed in the compute dtype back to the input's dtype."""
    return dx.astype(cache["dtype"], copy=False)


# --- GELU ------------------------------------------------------------------------------------

def gelu_forward(x, approximate: str = "none"):
    """GELU (Hendrycks & Gimpel, 2016).

        exact:  y = x Φ(x) = ½ x (1 + erf(x / √2))
        tanh:   y = ½ x (1 + tanh u),   u = √(2/π) (x + 0.044715 x³)

    ``approximate`` is "none" or "tanh", as in ``torch.nn.functional.gelu``.
    x (...) → y (...).
    """
    if approximate not in ("none", "tanh"):
        raise ValueError(f'approximate must be "none" or "tanh", got {approximate!r}')
    x, xc = _prepare(x)
    if approximate == "none":
        y = 0.5 * xc * (1.0 + erf(xc / _SQRT_2))
    else:
        y = 0.5 * xc * (1.0 + np.tanh(_SQRT_2_OVER_PI * (xc + _GELU_TANH_C * xc ** 3)))
    return y.astype(x.dtype, copy=False), {"x": xc, "approximate": approximate, "dtype": x.dtype}


def gelu_backward(dy, cache):
    """exact:  dx = dy (Φ(x) + x φ(x)),   φ(x) = exp(−x²/2) / √(2π)
    tanh:   dx = dy (½ (1 + tanh u) + ½ x (1 − tanh² u) √(2/π) (1 + 3·0.044715 x²))
    """
    x = cache["x"]
    dy = as_dout(dy, x.shape, x.dtype)
    if cache["approximate"] == "none":
        # forward: y = x Φ(x)  →  dy/dx = Φ(x) + x φ(x)
        dydx = 0.5 * (1.0 + erf(x / _SQRT_2)) + x * _INV_SQRT_2PI * np.exp(-0.5 * x * x)
    else:
        t = np.tanh(_SQRT_2_OVER_PI * (x + _GELU_TANH_C * x ** 3))
        du = _SQRT_2_OVER_PI * (1.0 + 3.0 * _GELU_TANH_C * x * x)
        dydx = 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du
    return _finish(dy * dydx, cache)


# --- ReLU ------------------------------------------------------------------------------------

def relu_forward(x):
    """y = max(x, 0).   x (...) → y (...)   (np.maximum keeps a NaN; a where on x > 0 would not).

    The backward passes dy where not x ≤ 0, as torch's threshold_backward does: at a NaN input
    the gradient is dy, not a silent 0.
    """
    x, _ = _prepare(x)
    return np.maximum(x, 0).astype(x.dtype, copy=False), {"positive": ~(x <= 0), "dtype": x.dtype}


def relu_backward(dy, cache):
    """dx = dy · [not x ≤ 0]   (the subgradient at x = 0 is taken as 0, like torch)."""
    positive = cache["positive"]
    dy = as_dout(dy, positive.shape, cache["dtype"])
    return np.where(positive, dy, 0).astype(cache["dtype"], copy=False)


# --- tanh ------------------------------------------------------------------------------------

def tanh_forward(x):
    """y = tanh x = (eˣ − e⁻ˣ) / (eˣ + e⁻ˣ).   x (...) → y (...)."""
    x, xc = _prepare(x)
    y = np.tanh(xc)
    return y.astype(x.dtype, copy=False), {"y": y, "dtype": x.dtype}


def tanh_backward(dy, cache):
    """dx = dy (1 − y²)."""
    y = cache["y"]
    dy = as_dout(dy, y.shape, y.dtype)
    return _finish(dy * (1.0 - y * y), cache)


# --- sigmoid ---------------------------------------------------------------------------------

def stable_sigmoid(x: np.ndarray) -> np.ndarray:
    """σ(x) = 1 / (1 + e⁻ˣ) = (1 + tanh(x / 2)) / 2, computed by the tanh form.

    tanh saturates at ±1 instead of overflowing, so any x is safe, and one tanh costs a third
    of the exp-based stable form (exp(−|x|), a where and a divide): this runs three times per
    LSTM step. The error is a few ε absolute, so where σ(x) < ε (x < −37 in float64) it
    returns 0 rather than the tiny true value. No validation: the building block of the
    layers that need a gate (recurrent cells, DIN, sigmoid_forward, the logistic loss).
    """
    y = np.tanh(0.5 * x)
    y += 1.0
    y *= 0.5
    return y


def sigmoid_forward(x):
    """y = σ(x) = 1 / (1 + e⁻ˣ).   x (...) → y (...)   (computed by :func:`stable_sigmoid`)."""
    x, xc = _prepare(x)
    y = stable_sigmoid(xc)
    return y.astype(x.dtype, copy=False), {"y": y, "dtype": x.dtype}


def sigmoid_backward(dy, cache):
    """dx = dy σ(x) (1 − σ(x))."""
    y = cache["y"]
    dy = as_dout(dy, y.shape, y.dtype)
    return _finish(dy * y * (1.0 - y), cache)
