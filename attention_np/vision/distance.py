"""How far a Vision Transformer's heads look: the mean attention distance (Dosovitskiy et al.,
2021, §4.5 and Fig. 7), the attention analogue of a CNN's receptive field.

For query patch i and key patch j with centres c_i, c_j (in pixels):

    d(i) = Σ_j α̃_ij ‖c_i − c_j‖,    α̃_ij = α_ij / Σ_{j' patch} α_ij'      (keys: patches only)
    mean attention distance of a head = mean over images and query patches of d(i)

The [CLS] token has no position, so it is left out as a query and as a key, and each query's
weights on the patches are renormalised to sum 1 (a query that puts all its weight on [CLS]
counts as distance 0).
"""
from __future__ import annotations

import numpy as np

from attention_np.nn.checks import as_float_array, check_positive_int


def patch_distances(grid: int, patch_size: int) -> np.ndarray:
    """‖c_i − c_j‖ in pixels between the centres of the grid × grid patches (row-major order)
    of side ``patch_size`` → (N, N), N = grid²."""
    grid = check_positive_int(grid, "grid")
    patch_size = check_positive_int(patch_size, "patch_size")
    rows, cols = np.divmod(np.arange(int(grid) ** 2), int(grid))                 # (N,), (N,)
    centres = patch_size * np.stack([rows, cols], axis=1).astype(np.float64)     # (N, 2)
    return np.linalg.norm(centres[:, None, :] - centres[None, :, :], axis=-1)    # (N, N)


def mean_attention_distance(weights, grid: int, patch_size: int, num_prefix: int = 1) -> np.ndarray:
    """Per layer and head, the attention-weighted mean distance between query and key patches.

    weights: a list of per-layer arrays (B, H, T, T), or one array (L, B, H, T, T), where
    T = num_prefix + grid² (the first ``num_prefix`` tokens, e.g. [CLS], have no position)
    → (L, H) distances in pixels.
    """
    layers = [as_float_array(w, "weights", ndim=4) for w in weights]
    if not layers:
        raise ValueError("weights must hold at least one layer")
    N = int(grid) ** 2
    D = patch_distances(grid, patch_size)
    out = []
    for w in layers:
        if w.shape[2:] != (num_prefix + N, num_prefix + N):
            raise ValueError(f"weights must have shape (B, H, {num_prefix + N}, {num_prefix + N}) "
                             f"for grid {grid} and num_prefix {num_prefix}, got {w.shape}")
        a = w[:, :, num_prefix:, num_prefix:]                                    # (B, H, N, N)
        total = a.sum(axis=-1)                                                   # (B, H, N)
        d = (a * D).sum(axis=-1) / np.where(total > 0, total, 1)                 # (B, H, N)
        out.append(d.mean(axis=(0, 2)))                                          # (H,)
    return np.stack(out)                                                         # (L, H)
