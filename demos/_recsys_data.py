"""Generated click logs for the DIN demo (seeded; no download).

Catalogue: ``n_items`` items, each in one of ``n_categories`` categories; categories come in
pairs (2k, 2k + 1) that go together ("phones" and "phone cases"): two items are *related* when
their categories are equal or partners. Every item has a popularity p_i ~ N(0, 0.5²).

Users: each has 3–5 interest categories. A history holds 10–40 items: 85 % drawn from the
interest categories, 15 % from anywhere (noise clicks), in random order.

Samples: a candidate item drawn half the time from a category related to one random past item
and half the time uniformly. The click is Bernoulli with

    logit = 4.0 · 1[∃ j: related(candidate, h_j)] − 2.5 + p_candidate

So the label depends on
the relation between the candidate and *some* past items — the few related ones — not on the
whole history, which is what DIN's candidate-dependent attention can pick out and a
candidate-independent mean cannot. Train and test use disjoint users.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attention_np.nn.activations import stable_sigmoid

MAX_LEN = 40


@dataclass
class ClickData:
    """history (N, MAX_LEN) item ids (0-padded), mask (N, MAX_LEN) bool, candidate (N,) ids,
    label (N,) 0/1, related (N, MAX_LEN) bool (ground truth: behaviour j relates to the candidate)."""
    history: np.ndarray
    mask: np.ndarray
    candidate: np.ndarray
    label: np.ndarray
    related: np.ndarray

    def __len__(self) -> int:
        return len(self.label)

    def take(self, idx) -> "ClickData":
        return ClickData(self.history[idx], self.mask[idx], self.candidate[idx],
                         self.label[idx], self.related[idx])


@dataclass
class Catalogue:
    """category (n_items,) int, popularity (n_items,) float."""
    category: np.ndarray
    popularity: np.ndarray

    def related(self, a, b) -> np.ndarray:
        """Items a and b (broadcastable id arrays) are in the same category or partner categories."""
        return (self.category[a] // 2) == (self.category[b] // 2)

    def features(self, ids) -> np.ndarray:
        """The model's view of items: ids (...) → (..., 2) int, [item id, category id]."""
        ids = np.asarray(ids)
        return np.stack([ids, self.category[ids]], axis=-1)


def make_catalogue(n_items: int = 1000, n_categories: int = 60, seed: int = 0) -> Catalogue:
    rng = np.random.default_rng(seed)
    return Catalogue(rng.integers(0, n_categories, n_items), rng.normal(0, 0.5, n_items))


def _history(rng, cat: Catalogue, by_category: list[np.ndarray]) -> np.ndarray:
    n_cat = len(by_category)
    interests = rng.choice(n_cat, size=rng.integers(3, 6), replace=False)
    length = rng.integers(10, MAX_LEN + 1)
    from_interest = rng.random(length) < 0.85
    items = np.where(from_interest,
                     [rng.choice(by_category[rng.choice(interests)]) for _ in range(length)],
                     rng.integers(0, len(cat.category), length))
    return items


def _candidate(rng, cat: Catalogue, by_category, items) -> int:
    if rng.random() < 0.5:
        c = cat.category[rng.choice(items)] ^ rng.integers(0, 2)   # same or partner category
        pool = by_category[c]
        if len(pool):
            return int(rng.choice(pool))
    return int(rng.integers(0, len(cat.category)))


def make_clicks(cat: Catalogue, n_users: int, samples_per_user: int, seed: int) -> ClickData:
    """Histories and labelled candidates for ``n_users`` fresh users (see the module docstring)."""
    rng = np.random.default_rng(seed)
    by_category = [np.flatnonzero(cat.category == c) for c in range(cat.category.max() + 1)]
    N = n_users * samples_per_user
    history, mask = np.zeros((N, MAX_LEN), np.int64), np.zeros((N, MAX_LEN), bool)
    candidate, label = np.zeros(N, np.int64), np.zeros(N, np.int64)   # label: filled below
    for u in range(n_users):
        items = _history(rng, cat, by_category)
        for s in range(samples_per_user):
            n = u * samples_per_user + s
            history[n, :len(items)], mask[n, :len(items)] = items, True
            candidate[n] = _candidate(rng, cat, by_category, items)
    related = cat.related(history, candidate[:, None]) & mask
    data = ClickData(history, mask, candidate, label, related)
    data.label = (rng.random(N) < stable_sigmoid(bayes_logit(cat, data))).astype(np.int64)
    return data


def bayes_logit(cat: Catalogue, data: ClickData) -> np.ndarray:
    """The true click logit of every sample (for the AUC an ideal model would reach)."""
    return 4.0 * data.related.any(1) - 2.5 + cat.popularity[data.candidate]
