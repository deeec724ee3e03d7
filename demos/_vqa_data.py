"""Questions in words about strips of handwritten digits (offline, seeded), for visual_question.

A strip is drawn as in demos/_digits_data.py: 3–5 of scikit-learn's 8×8 digits, each scaled to
8–12 px, placed left to right with random gaps and vertical offsets on a (16, 64) canvas, plus
pixel noise. Each strip comes with one question of four families:

    left_of    "what is left of 7 ?"      the digit just left of the (only) 7      → a digit
    largest    "which digit is largest ?" the largest digit of the strip           → a digit
    is_there   "is there a 3 ?"                                                    → yes / no
    how_many   "how many 5 s ?"           (printed "how many 5s?")                → 0 … 3

Every strip is built for its question (the 7 placed once and somewhere right of the first
place; the largest digit placed once, the others below it; "is there" answered yes half the
time; the counted digit placed 0–3 times), so that answers are balanced rather than left to
chance.

**Held-out combinations.** A question meets its image in a layout: the digit the question
names (or, for largest, the answer) stands at some place in a strip of k digits. A third of
these combinations (:func:`held_out`) never occurs in training — "what is left of 7?" is never
asked with the 7 in third place, "is there a 2?" never of a strip of four — and the test set
holds only them, drawn on the 397 held-out digit images. Every question, every answer and
every layout is seen in training, only not together, so the language prior is the same on
both sides of the split: what a model gains over it comes from reading the image, in
layouts it has not been asked about.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# The digit images, split and pre-scaled once (train: 1400 images, test: 397). A private name
# of the captioning demo's data module, reused so that both demos draw from the same split.
from demos._digits_data import CANVAS, SIZES, _load_digits

FAMILIES = ("left_of", "largest", "is_there", "how_many")
WORDS = ("<pad>", "what", "is", "left", "of", "which", "digit", "largest", "there", "a", "how",
         "many", "s", "?") + tuple(str(d) for d in range(10))
WORD_ID = {w: i for i, w in enumerate(WORDS)}
ANSWERS = tuple(str(d) for d in range(10)) + ("yes", "no")
YES, NO = ANSWERS.index("yes"), ANSWERS.index("no")
MAX_DIGITS, MIN_DIGITS, MAX_COUNT = 5, 3, 3
MAX_WORDS = 6                                         # "what is left of 7 ?"


def question_words(family: str, d: int | None) -> list[str]:
    """The question as a list of words."""
    return {"left_of": ["what", "is", "left", "of", str(d), "?"],
            "largest": ["which", "digit", "is", "largest", "?"],
            "is_there": ["is", "there", "a", str(d), "?"],
            "how_many": ["how", "many", str(d), "s", "?"]}[family]


def question_text(family: str, d: int | None) -> str:
    """The question as it is printed: "how many 5s?", "what is left of 7?"."""
    return " ".join(question_words(family, d)).replace(" s ?", "s?").replace(" ?", "?")


def held_out(family: str, key: int, place: int) -> bool:
    """Is this question–image combination kept out of training? ``key``: the digit the
    question names (for largest: the answer); ``place``: where it meets the image.

        left_of    (d, i):  the named digit d stands at place i = 1 … k − 1 of the strip
        largest    (a, j):  the largest digit a stands at place j = 0 … k − 1
        is_there   (d, k):  the question about d is asked of a strip of k digits (yes or no)
        how_many   (d, k):  likewise

    Held out: (key + place) mod 3 = 0, a third of each family's combinations.
    """
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    return (key + place) % 3 == 0


@dataclass
class VQAData:
    """images (N, 16, 64) in [0, 1]; questions (N, MAX_WORDS) word ids padded with <pad>;
    lengths (N,); answers (N,) ids into ANSWERS; family (N,) ids into FAMILIES; digits (N, 5)
    (−1 = none) and boxes (N, 5, 4) (top, left, bottom, right; −1 = none) left to right;
    target (N, 5) bool: the digits a left_of / largest answer names (all False otherwise);
    qdigit (N,) the digit the question names (−1 for largest)."""
    images: np.ndarray
    questions: np.ndarray
    lengths: np.ndarray
    answers: np.ndarray
    family: np.ndarray
    digits: np.ndarray
    boxes: np.ndarray
    target: np.ndarray
    qdigit: np.ndarray

    def __len__(self) -> int:
        return len(self.images)


def _render(rng, pool_images, by_class, digits, noise: float):
    """One canvas with the given digits left to right: (image (16, 64), boxes (k, 4)). Each
    digit is a random image of its class from the pool (``by_class[d]``: the indices of d)."""
    Hc, Wc = CANVAS
    k = len(digits)
    sizes = rng.integers(SIZES[0], SIZES[-1] + 1, size=k)
    gaps = np.floor(rng.dirichlet(np.ones(k + 1)) * (Wc - sizes.sum())).astype(int)   # (k + 1,)
    image, boxes, left = np.zeros(CANVAS), np.zeros((k, 4), dtype=int), gaps[0]
    for j, (digit, size) in enumerate(zip(digits, sizes)):
        pick = by_class[digit][rng.integers(len(by_class[digit]))]
        top = rng.integers(0, Hc - size + 1)
        patch = pool_images[size][pick] * rng.uniform(0.7, 1.0)
        image[top:top + size, left:left + size] = np.maximum(
            image[top:top + size, left:left + size], patch)
        boxes[j] = (top, left, top + size, left + size)
        left += size + gaps[j + 1]
    return np.clip(image + noise * rng.standard_normal(CANVAS), 0, 1), boxes


def _others(rng, n: int, exclude: int | None = None, high: int = 9) -> np.ndarray:
    """n random digits in [0, high], none equal to ``exclude``."""
    choices = np.array([d for d in range(high + 1) if d != exclude])
    return rng.choice(choices, size=n)


def _combinations(family: str, test: bool) -> list[tuple]:
    """The (key, place, k) combinations of a family on one side of the split."""
    ks = range(MIN_DIGITS, MAX_DIGITS + 1)
    if family == "left_of":
        combos = [(d, i, k) for d in range(10) for k in ks for i in range(1, k)]
    elif family == "largest":
        combos = [(a, j, k) for a in range(2, 10) for k in ks for j in range(k)]
    else:
        combos = [(d, k, k) for d in range(10) for k in ks]
    return [c for c in combos if held_out(family, c[0], c[1]) == test]


def _example(rng, family: str, combo: tuple):
    """(digits left to right, answer id, target places, the digit the question names)."""
    key, place, k = combo
    target = np.zeros(k, bool)
    if family == "left_of":                       # … a d …: d once, at ``place``
        digits = _others(rng, k, exclude=key)
        digits[place] = key
        target[place - 1] = True
        return digits, int(digits[place - 1]), target, key
    if family == "largest":                       # a at ``place``, the others below it
        digits = rng.integers(0, key, size=k)
        digits[place] = key
        target[place] = True
        return digits, key, target, -1
    digits = _others(rng, k, exclude=key)
    if family == "is_there":
        yes = rng.random() < 0.5
        if yes:
            digits[rng.integers(0, k)] = key
        return digits, YES if yes else NO, target, key
    count = int(rng.integers(0, MAX_COUNT + 1))   # how_many: 0 … 3 copies of d
    digits[rng.choice(k, size=count, replace=False)] = key
    return digits, count, target, key


def make_vqa_data(n: int, split: str = "train", seed=0, noise: float = 0.08,
                  families=FAMILIES) -> VQAData:
    """``n`` strips with one question each. split "train": the combinations not held out, on
    the training digit images; "test": only the held-out combinations, on the test images.
    Families take turns (n // 4 of each, in a shuffled order); ``seed`` is an int or a
    Generator."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    rng = np.random.default_rng(seed)
    pool_images, pool_labels = _load_digits(split)
    by_class = [np.flatnonzero(pool_labels == digit) for digit in range(10)]
    combos = {f: _combinations(f, split == "test") for f in families}
    fam_ids = rng.permutation(np.arange(n) % len(families))
    data = VQAData(images=np.zeros((n, *CANVAS)),
                   questions=np.zeros((n, MAX_WORDS), np.int64),
                   lengths=np.zeros(n, np.int64), answers=np.zeros(n, np.int64),
                   family=np.zeros(n, np.int64), digits=np.full((n, MAX_DIGITS), -1),
                   boxes=np.full((n, MAX_DIGITS, 4), -1), target=np.zeros((n, MAX_DIGITS), bool),
                   qdigit=np.full(n, -1))
    for i, f in enumerate(fam_ids):
        family = families[f]
        combo = combos[family][rng.integers(len(combos[family]))]
        digits, answer, target, named = _example(rng, family, combo)
        k = len(digits)
        data.images[i], data.boxes[i, :k] = _render(rng, pool_images, by_class, digits, noise)
        words = question_words(family, named)
        data.questions[i, :len(words)] = [WORD_ID[w] for w in words]
        data.lengths[i], data.answers[i] = len(words), answer
        data.family[i] = FAMILIES.index(family)
        data.digits[i, :k], data.target[i, :k], data.qdigit[i] = digits, target, named
    return data


def with_question(data: VQAData, index: int, family: str, d: int | None) -> tuple:
    """(question ids (1, MAX_WORDS), length (1,)) of another question about strip ``index``
    (for the figure that asks several questions of one image)."""
    words = question_words(family, d)
    ids = np.zeros((1, MAX_WORDS), np.int64)
    ids[0, :len(words)] = [WORD_ID[w] for w in words]
    return ids, np.array([len(words)])


def column_of(boxes: np.ndarray, columns: int = 16, width: int = CANVAS[1]) -> np.ndarray:
    """(N, 5, L) bool: column c (of ``columns`` equal slices of the strip) belongs to digit j
    when its centre lies inside the digit's box (columns between digits belong to none)."""
    centres = (np.arange(columns) + 0.5) * width / columns                 # (L,)
    left, right = boxes[..., 1:2], boxes[..., 3:4]                          # (N, 5, 1)
    return (centres >= left) & (centres < right) & (left >= 0)


def column_labels(data: VQAData, columns: int = 16) -> np.ndarray:
    """(N, L) the digit under each column, 10 where there is none: what the CNN is trained to
    read before it answers questions."""
    inside = column_of(data.boxes, columns)                                 # (N, 5, L)
    labels = np.full((len(data), columns), 10)
    for j in range(MAX_DIGITS):
        labels = np.where(inside[:, j], data.digits[:, j:j + 1], labels)
    return labels


def target_columns(data: VQAData, columns: int = 16) -> np.ndarray:
    """(N, L) bool: the columns of the digit a left_of / largest question's answer names."""
    return (column_of(data.boxes, columns) & data.target[:, :, None]).any(axis=1)
