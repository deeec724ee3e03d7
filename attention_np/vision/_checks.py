"""Checks shared by the vision layers (the rest come from :mod:`attention_np.nn.checks`)."""
from __future__ import annotations

import numpy as np

from attention_np.nn.checks import check_positive_int


def check_rng(rng) -> np.random.Generator:
    """``rng`` must be a ``np.random.Generator`` (initialisers draw from it)."""
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    return rng


def check_odd_size(value, name: str) -> int:
    """A kernel size: a positive odd integer, so 'same' padding (k − 1)/2 is whole."""
    k = check_positive_int(value, name)
    if k % 2 == 0:
        raise ValueError(f"{name} must be odd for 'same' padding, got {value!r}")
    return k
