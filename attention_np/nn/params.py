"""Parameters of a model live in one flat dict ``{"enc_f.W_x": ..., "dec.W_h": ...}`` so that the
optimiser sees every array; each layer reads its own slice through :func:`sub`."""
from __future__ import annotations

import numpy as np


def sub(params: dict, prefix: str) -> dict:
    """The entries under ``prefix.`` with the prefix removed (the same arrays, not copies)."""
    p = prefix + "."
    return {k[len(p):]: v for k, v in params.items() if k.startswith(p)}


def prefixed(prefix: str, d: dict) -> dict:
    """``{name: x}`` → ``{prefix.name: x}`` (for parameters and their gradients)."""
    return {f"{prefix}.{k}": v for k, v in d.items()}


def add_grads(total: dict, new: dict) -> dict:
    """Accumulate ``new`` into ``total`` (keys missing from ``total`` are added)."""
    for k, g in new.items():
        total[k] = g if k not in total else total[k] + g
    return total


def uniform(rng, shape, fan_in: int, dtype) -> np.ndarray:
    """U(−1/√fan_in, 1/√fan_in), torch's default for linear layers."""
    k = 1.0 / np.sqrt(fan_in)
    return rng.uniform(-k, k, size=shape).astype(dtype)


def linear_params(rng, d_in: int, d_out: int, dtype) -> dict:
    return {"W": uniform(rng, (d_in, d_out), d_in, dtype), "b": np.zeros(d_out, dtype)}
