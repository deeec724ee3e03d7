"""A hand-built self-attention layer for "the animal didn't cross the street because it was tired".

No training: each token gets a small, readable feature vector (word class + sinusoidal position)
and the projection matrices are written by hand so that each head does one job a trained head is
known to do:

* head 0, "coreference": the query of a pronoun matches the key of an animate noun, so "it"
  attends to "animal" (the article's §4.2.3 example);
* head 1, "previous token": a rotation of the positional features makes query i match key i−1
  (sinusoidal encodings make relative positions a linear map — Vaswani et al. §3.5).

The matrices are real NumPy inputs to ``multi_head_attention_forward``; only their values were
chosen by a person instead of by gradient descent.
"""
from __future__ import annotations

import numpy as np

TOKENS = ["the", "animal", "didn't", "cross", "the", "street", "because", "it", "was", "tired"]
CLASSES = ["det", "noun", "animate", "verb", "pronoun", "negation", "adjective", "conjunction"]
WORD_CLASSES = {
    "the": ["det"], "animal": ["noun", "animate"], "didn't": ["verb", "negation"],
    "cross": ["verb"], "street": ["noun"], "because": ["conjunction"], "it": ["pronoun"],
    "was": ["verb"], "tired": ["adjective"],
}
N_FREQ = 4                                   # sinusoidal pairs: 2·N_FREQ positional features
D_SEM, D_MODEL, N_HEADS = len(CLASSES), len(CLASSES) + 2 * N_FREQ, 2


def frequencies() -> np.ndarray:
    """ω_f = 1 / 10000^{2f/d}, the sinusoidal encoding's frequencies (d = 2·N_FREQ here)."""
    return 1.0 / 10000 ** (np.arange(N_FREQ) * 2 / (2 * N_FREQ))


def embed(tokens: list[str]) -> np.ndarray:
    """x_i = [one-hot word classes (8) | sin(ω i), cos(ω i) pairs (8)]  → (T, 16)."""
    x = np.zeros((len(tokens), D_MODEL))
    for i, tok in enumerate(tokens):
        for c in WORD_CLASSES[tok]:
            x[i, CLASSES.index(c)] = 1.0
        angles = frequencies() * i
        x[i, D_SEM::2], x[i, D_SEM + 1::2] = np.sin(angles), np.cos(angles)
    return x


def _rotation_to_previous() -> np.ndarray:
    """R with [sin ω(i−1), cos ω(i−1)] = [sin ωi, cos ωi] R for every frequency ω (8 × 8)."""
    R = np.zeros((2 * N_FREQ, 2 * N_FREQ))
    for f, w in enumerate(frequencies()):
        c, s = np.cos(w), np.sin(w)
        # sin(a−w) = sin a cos w − cos a sin w;  cos(a−w) = cos a cos w + sin a sin w
        R[2 * f:2 * f + 2, 2 * f:2 * f + 2] = [[c, s], [-s, c]]
    return R


def hand_built_params(sharpness: float = 6.0) -> dict:
    """W_q, W_k, W_v, W_o (16, 16) and zero biases; head h owns output columns 8h … 8h+7."""
    d, Dh = D_MODEL, D_MODEL // N_HEADS
    W_q, W_k = np.zeros((d, d)), np.zeros((d, d))
    ci = CLASSES.index
    # head 0 (columns 0..7): pronoun query → direction 0; animate key → direction 0.
    W_q[ci("pronoun"), 0] = sharpness * 2.0
    W_k[ci("animate"), 0] = sharpness * 2.0
    # head 1 (columns 8..15): query = positional features rotated one step back, key = positions.
    pos = slice(D_SEM, d)
    W_q[pos, Dh:] = _rotation_to_previous() * sharpness
    W_k[pos, Dh:] = np.eye(2 * N_FREQ) * sharpness
    W_v = np.eye(d)                      # values: the token's own features, unchanged
    W_o = np.eye(d)                      # concat of the two heads, as is
    zeros = np.zeros(d)
    return {"W_q": W_q, "W_k": W_k, "W_v": W_v, "W_o": W_o,
            "b_q": zeros, "b_k": zeros.copy(), "b_v": zeros.copy(), "b_o": zeros.copy()}
