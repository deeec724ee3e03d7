"""Hypothesis strategies shared by the op tests: arrays, distinct shapes, masks with dead rows."""
from __future__ import annotations

import os

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st

seeds = st.integers(0, 2**32 - 1)
dtypes = st.sampled_from([np.float64, np.float32])


def examples(ci: int, thorough: int) -> settings:
    """The example budget of an expensive property test, for each profile (see conftest.py).

    ``ci`` examples under the ci profile, ``thorough`` under thorough (a deliberate number,
    stated beside the test, instead of the profile's 10 000), and at most the dev profile's
    count under dev. Other settings come from the loaded profile.
    """
    profile = os.environ.get("HYPOTHESIS_PROFILE", "dev")
    n = {"ci": ci, "thorough": thorough}.get(profile, min(ci, settings.default.max_examples))
    return settings(max_examples=n)


@st.composite
def distinct_dims(draw, n: int, lo: int = 1, hi: int = 9) -> list[int]:
    """``n`` pairwise different sizes (so swapped axes cannot go unnoticed)."""
    return draw(st.lists(st.integers(lo, hi), min_size=n, max_size=n, unique=True))


def randn(rng: np.random.Generator, shape, dtype=np.float64, scale: float = 1.0) -> np.ndarray:
    return (scale * rng.standard_normal(shape)).astype(dtype)


def random_mask(rng: np.random.Generator, shape, p_dead_row: float = 0.25) -> np.ndarray:
    """Random boolean mask (True = may attend) in which some rows are fully masked."""
    mask = rng.random(shape) < 0.7
    dead = rng.random(shape[:-1]) < p_dead_row
    mask[dead] = False
    return mask


def alive_rows(mask: np.ndarray) -> np.ndarray:
    """(..., Tq, 1): True where the query row has at least one key it may attend to."""
    return mask.any(axis=-1, keepdims=True)
