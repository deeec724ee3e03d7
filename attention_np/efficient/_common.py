"""Argument checks shared by the efficient variants (q, k, v: ``self_attention.check_qkv``;
sizes: ``nn.checks.check_positive_int``)."""
from __future__ import annotations

import numpy as np


def check_indices(indices, name: str, size: int) -> np.ndarray:
    """Sorted unique int positions in [0, size) (an empty array for None)."""
    if indices is None:
        return np.zeros(0, dtype=np.intp)
    idx = np.asarray(indices)
    if idx.ndim != 1 or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
        raise ValueError(f"{name} must be a 1-D sequence of integer positions, got {indices!r}")
    idx = idx.astype(np.intp)
    if idx.size and (idx.min() < 0 or idx.max() >= size or np.unique(idx).size != idx.size):
        raise ValueError(f"{name} must hold distinct positions in [0, {size}), got {indices!r}")
    return np.sort(idx)
