"""Captioned digit strips built from scikit-learn's 8×8 ``digits`` (offline, seeded).

Each image is a (16, 64) canvas holding 2–5 handwritten digits left to right. Every digit is
scaled by a random factor in [1, 1.5] (8–12 px), placed with random gaps and a random vertical
offset, then the canvas gets Gaussian pixel noise. The caption is the digit words in reading
order between ``<start>`` and ``<end>``: "<start> three seven one <end>".

We know where each digit was drawn, so ``boxes`` lets the demo *measure* whether attention
looks at the digit being named. A box is (top, left, bottom, right) in pixels, bottom/right
exclusive: the square patch the digit was drawn into.

The 1797 scikit-learn digit images are split once, by a seeded random permutation, into 1400
for "train" and 397 for "test": test strips are drawn only from digit images the model never
saw. (The images come from 13 writers, so a test digit's writer has most likely also written
training digits. Splitting by index instead — first 1400 / last 397 — seems to keep writers
apart far more often and is a much harder task: see the README's captioning section.)
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
VOCAB = ("<pad>", "<start>", "<end>") + WORDS
PAD, START, END = 0, 1, 2
FIRST_DIGIT = 3                                  # token of "zero"; digit d is 3 + d
CANVAS = (16, 64)
MAX_DIGITS = 5
_SPLIT, _SPLIT_SEED = 1400, 0                    # train images, permutation seed
SIZES = (8, 9, 10, 11, 12)                       # digit sizes in px


@dataclass
class CaptionData:
    """images (N, 16, 64) in [0, 1]; captions (N, 2 + MAX_DIGITS) int, padded with PAD;
    digits (N, MAX_DIGITS) int (−1 = none); boxes (N, MAX_DIGITS, 4) int (−1 = none)."""
    images: np.ndarray
    captions: np.ndarray
    digits: np.ndarray
    boxes: np.ndarray

    def __len__(self) -> int:
        return len(self.images)


def decode(tokens) -> list[str]:
    """Token ids → words, stopping at <end> and skipping <start>/<pad>."""
    words = []
    for t in tokens:
        if t == END:
            break
        if t not in (PAD, START):
            words.append(VOCAB[t])
    return words


@lru_cache(maxsize=2)
def _load_digits(split: str) -> tuple[dict, np.ndarray]:
    """The split's digits, pre-scaled to every size a strip uses: ({size: (n, size, size)},
    labels (n,)). Scaling once here instead of per strip makes fresh strips cheap to draw."""
    from scipy.ndimage import zoom
    from sklearn.datasets import load_digits
    d = load_digits()
    images, labels = d.images / 16.0, d.target                    # (1797, 8, 8) in [0, 1]
    order = np.random.default_rng(_SPLIT_SEED).permutation(len(labels))
    part = order[:_SPLIT] if split == "train" else order[_SPLIT:]
    images, labels = images[part], labels[part]
    scaled = {size: np.clip(zoom(images, (1, size / 8, size / 8), order=1), 0, 1)
              for size in SIZES}
    return scaled, labels


def _compose(rng, pool_images, pool_labels, n_digits: int, noise: float):
    """One canvas: (image (16, 64), digits (n,), boxes (n, 4))."""
    Hc, Wc = CANVAS
    picks = rng.integers(len(pool_labels), size=n_digits)
    sizes = rng.integers(SIZES[0], SIZES[-1] + 1, size=n_digits)  # scale 1 … 1.5 of 8 px
    free = Wc - sizes.sum()
    gaps = np.floor(rng.dirichlet(np.ones(n_digits + 1)) * free).astype(int)   # (n + 1,)
    image = np.zeros(CANVAS)
    boxes = np.zeros((n_digits, 4), dtype=int)
    left = gaps[0]
    for k, (pick, size) in enumerate(zip(picks, sizes)):
        top = rng.integers(0, Hc - size + 1)
        patch = pool_images[size][pick] * rng.uniform(0.7, 1.0)
        image[top:top + size, left:left + size] = np.maximum(
            image[top:top + size, left:left + size], patch)
        boxes[k] = (top, left, top + size, left + size)
        left += size + gaps[k + 1]
    image = np.clip(image + noise * rng.standard_normal(CANVAS), 0, 1)
    return image, pool_labels[picks], boxes


def make_caption_data(n: int, split: str = "train", seed: int = 0, min_digits: int = 2,
                      max_digits: int = MAX_DIGITS, noise: float = 0.08) -> CaptionData:
    """``n`` seeded captioned strips from the ``split`` ("train" or "test") digit images."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if not 1 <= min_digits <= max_digits <= MAX_DIGITS:
        raise ValueError(f"need 1 ≤ min_digits ≤ max_digits ≤ {MAX_DIGITS}, "
                         f"got {min_digits}, {max_digits}")
    rng = np.random.default_rng(seed)
    pool_images, pool_labels = _load_digits(split)
    images = np.zeros((n, *CANVAS))
    captions = np.full((n, MAX_DIGITS + 2), PAD, dtype=np.int64)
    digits = np.full((n, MAX_DIGITS), -1, dtype=np.int64)
    boxes = np.full((n, MAX_DIGITS, 4), -1, dtype=np.int64)
    for i in range(n):
        k = int(rng.integers(min_digits, max_digits + 1))
        images[i], digits[i, :k], boxes[i, :k] = _compose(rng, pool_images, pool_labels, k, noise)
        captions[i, 0], captions[i, k + 1] = START, END
        captions[i, 1:k + 1] = digits[i, :k] + FIRST_DIGIT
    return CaptionData(images, captions, digits, boxes)
