"""Seeded random inputs for the cases: distinct odd-and-even sizes, masks with fully masked rows,
and the four standard settings (float64/float32 × without/with a mask)."""
from __future__ import annotations

import numpy as np

from attention_np.exercises.lang import say

# (dtype, masked): every exercise with a mask runs all four, so the grader can tell a solution
# that is right only for one dtype, or only without a mask.
SETTINGS = ((np.float64, False), (np.float64, True), (np.float32, True), (np.float32, False))


def dims(rng: np.random.Generator, n: int, lo: int = 2, hi: int = 7) -> list[int]:
    """``n`` pairwise different sizes in [lo, hi], so that swapped axes change the shape."""
    return [int(d) for d in rng.choice(np.arange(lo, hi + 1), size=n, replace=False)]


def randn(rng: np.random.Generator, shape, dtype=np.float64, scale: float = 1.0) -> np.ndarray:
    return (scale * rng.standard_normal(shape)).astype(dtype)


def dead_row_mask(rng: np.random.Generator, shape) -> np.ndarray:
    """A boolean mask (True = may attend) over the last axis in which the first row is fully
    masked and every other row keeps at least one key."""
    mask = rng.random(shape) < 0.7
    rows = mask.reshape(-1, shape[-1])
    rows[np.arange(1, len(rows)), rng.integers(0, shape[-1], len(rows) - 1)] = True
    rows[0] = False
    return rows.reshape(shape)


def dead_positions(mask: np.ndarray, shape, axis: int = -1) -> np.ndarray:
    """True at every position of ``shape`` whose row (along ``axis``) the mask leaves empty."""
    return np.broadcast_to(~np.broadcast_to(mask, shape).any(axis=axis, keepdims=True), shape)


def shape_text(**arrays) -> str:
    """'q (2, 3, 5, 4), k (2, 3, 7, 4)' for the case labels."""
    return ", ".join(f"{name} {tuple(np.shape(a))}" for name, a in arrays.items())


def label(dtype, shapes: str, masked: bool | None = None, *extra: str) -> str:
    """'float32 · q (…), k (…) · mask with fully masked rows' — how a case is named."""
    parts = [np.dtype(dtype).name, shapes]
    if masked is not None:
        parts.append(say("mask with fully masked rows", "掩码中有整行被屏蔽") if masked
                     else say("no mask", "无掩码"))
    return " · ".join(parts + [e for e in extra if e])


def upcast(**arrays) -> dict:
    """float64 copies of the arrays (None stays None), for finite differences."""
    return {k: None if a is None else np.array(a, dtype=np.float64) for k, a in arrays.items()}
