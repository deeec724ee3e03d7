"""Parameter initialisers. Weights use the row-vector convention: W (d_in, d_out), y = x W + b."""
from __future__ import annotations

import math

import numpy as np

from attention_np.nn.checks import check_rng


def xavier_uniform(shape: tuple[int, ...], rng: np.random.Generator, dtype=np.float64,
                   gain: float = 1.0) -> np.ndarray:
    """Glorot & Bengio (2010): W ~ U(−a, a),  a = gain · √(6 / (fan_in + fan_out)).

    shape (d_in, d_out), or (..., d_in, d_out) for a stack of matrices (each one gets the
    same bound, computed from its last two axes). Var W = 2 / (fan_in + fan_out) for gain 1.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) < 2 or min(shape) < 1:
        raise ValueError(f"shape must have at least 2 positive dimensions (.., d_in, d_out), "
                         f"got {shape}")
    check_rng(rng)
    fan_in, fan_out = shape[-2], shape[-1]
    a = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-a, a, size=shape).astype(dtype)


def uniform_fan_in(shape: tuple[int, ...] | int, rng: np.random.Generator,
                   fan_in: int | None = None, dtype=np.float64) -> np.ndarray:
    """torch's ``nn.Linear`` default: W ~ U(−1/√fan_in, 1/√fan_in),  fan_in = shape[0] by default.

    Var W = 1 / (3 fan_in), so x W keeps the scale of x divided by √3 whatever the width.
    """
    shape = (int(shape),) if np.ndim(shape) == 0 else tuple(int(s) for s in shape)
    fan_in = shape[0] if fan_in is None else int(fan_in)
    if fan_in < 1:
        raise ValueError(f"fan_in must be a positive integer, got {fan_in} (shape {shape})")
    k = 1.0 / math.sqrt(fan_in)
    return rng.uniform(-k, k, size=shape).astype(dtype)


def normal(shape: tuple[int, ...] | int, rng: np.random.Generator, std: float = 1.0,
           dtype=np.float64) -> np.ndarray:
    """W ~ N(0, std²): embeddings, positional tables and conv filters (the caller says why std)."""
    return (rng.standard_normal(shape) * std).astype(dtype)


def zeros(shape: tuple[int, ...] | int, dtype=np.float64) -> np.ndarray:
    """An all-zero parameter (biases, layer-norm β)."""
    return np.zeros(shape, dtype=dtype)


def ones(shape: tuple[int, ...] | int, dtype=np.float64) -> np.ndarray:
    """An all-one parameter (layer-norm γ)."""
    return np.ones(shape, dtype=dtype)
