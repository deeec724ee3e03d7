"""One convention for a model's parameters: a flat dict of named arrays.

    params = {"enc_f.W_x": ..., "enc_f.W_h": ..., "dec.W_x": ..., "out.W": ..., "out.b": ...}

The optimiser and the gradient clipping see every array of the model in one dict; a layer reads
only its own slice, ``sub(params, "dec")`` → ``{"W_x": ..., "W_h": ..., "b": ...}``, and hands
back gradients keyed like that slice, which ``prefixed("dec", grads)`` files under the model's
names again. A layer used at several time steps adds its gradients up with :func:`add_grads`.
Names are ``prefix.name``; prefixes nest (``listen0.fwd.W_x``).
"""
from __future__ import annotations

from attention_np.nn import init


def sub(params: dict, prefix: str) -> dict:
    """The entries under ``prefix.`` with the prefix removed (the same arrays, not copies)."""
    p = prefix + "."
    return {k[len(p):]: v for k, v in params.items() if k.startswith(p)}


def join(prefix: str, name: str) -> str:
    """``prefix.name``, or ``name`` for an empty prefix (a model's top level)."""
    return f"{prefix}.{name}" if prefix else name


def prefixed(prefix: str, d: dict) -> dict:
    """``{name: x}`` → ``{prefix.name: x}`` (for parameters and their gradients)."""
    return {f"{prefix}.{k}": v for k, v in d.items()}


def add_grads(total: dict, new: dict) -> dict:
    """Accumulate ``new`` into ``total`` (keys missing from ``total`` are added); returns total."""
    for k, g in new.items():
        total[k] = g if k not in total else total[k] + g
    return total


def linear_params(rng, d_in: int, d_out: int, dtype) -> dict:
    """``{"W": (d_in, d_out), "b": (d_out,)}`` for y = x W + b, initialised as torch's
    ``nn.Linear``: W ~ U(−1/√d_in, 1/√d_in), b = 0."""
    return {"W": init.uniform_fan_in((d_in, d_out), rng, dtype=dtype),
            "b": init.zeros(d_out, dtype)}
