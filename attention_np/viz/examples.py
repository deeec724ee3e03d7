"""Synthetic attention with known behaviour, for trying the viewers and for tests."""
from __future__ import annotations

import numpy as np

PATTERNS = ("previous", "first", "self", "next", "broad", "random")


def _pattern(kind: str, T: int, rng: np.random.Generator) -> np.ndarray:
    """Scores (T, T) whose softmax makes a head of the named kind."""
    i, j = np.indices((T, T))
    sharp = 6.0
    if kind == "previous":
        return sharp * (j == np.maximum(i - 1, 0))
    if kind == "next":
        return sharp * (j == np.minimum(i + 1, T - 1))
    if kind == "first":
        return sharp * (j == 0)
    if kind == "self":
        return sharp * (j == i)
    if kind == "broad":
        return -0.3 * np.abs(i - j)
    return 2.0 * rng.standard_normal((T, T))


def example_attention(layers: int = 2, heads: int = 4, T: int = 8, seed: int = 0,
                      dtype=np.float64) -> np.ndarray:
    """(L, H, T, T) softmax weights; head h of every layer follows ``PATTERNS[h % 6]`` plus
    noise (previous token, first token, self, next token, broad local, random)."""
    rng = np.random.default_rng(seed)
    scores = np.stack([np.stack([_pattern(PATTERNS[h % len(PATTERNS)], T, rng)
                                 + 0.3 * rng.standard_normal((T, T)) for h in range(heads)])
                       for _ in range(layers)])                    # (L, H, T, T)
    e = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).astype(dtype)
