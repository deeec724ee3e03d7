"""Data and measurements of the induction-heads demo.

Data: repeated rows of 2h tokens whose second half repeats the first, ``[A B C … | A B C …]``
(the h tokens of a half are distinct and random, so each token of the second half has exactly
one earlier occurrence), and control rows without repeats. h varies from batch to batch, so no
fixed look-back distance predicts the second half: only matching content does.

The control rows are text-like rather than uniform noise: a fixed random trigram table gives
the next token from the two before it with probability ``p`` (else a uniform token). As in
text, a head that looks at the previous token pays off on them by itself, and that head is
the first half of the induction circuit. (Measured: with uniform control rows the same model
and budget grow no induction head; it lowers the second-half loss with position tricks.)

Measurements on a model's attention weights α (B, H, T, T) and next-token losses:
* in-context loss: the mean −log p of the targets at positions 1 … h−1 (first half: random)
  and h+1 … 2h−1 (second half: predictable by copying; the target at h, the start of the
  repeat, is left out of both);
* induction score of a head: mean α[i, i−h+1] over the second-half queries i = h … 2h−2
  (attention to the token after the earlier occurrence of the current token, i.e. to the
  token that comes next);
* previous-token score: mean α[i, i−1] over i = 1 … 2h−2.
Both are measured on the model's input ids[:, :−1], the queries whose next token is known
(:func:`attention_np.lm.circuits.induction_scores` and ``previous_token_scores``).
"""
from __future__ import annotations

import numpy as np

from attention_np.lm import LMConfig, lm_forward
from attention_np.nn.losses import log_softmax


def repeated_rows(rng: np.random.Generator, n: int, half: int, vocab: int) -> np.ndarray:
    """(n, 2·half) ids: h distinct random tokens, then the same h again."""
    first = np.argsort(rng.random((n, vocab)), axis=1)[:, :half]        # distinct per row
    return np.concatenate([first, first], axis=1)


def trigram_table(vocab: int, rng: np.random.Generator) -> np.ndarray:
    """(V, V) ids: the token that follows the pair (a, b) in a control row (when it is not
    drawn uniformly)."""
    return rng.integers(0, vocab, size=(vocab, vocab))


def control_rows(rng: np.random.Generator, n: int, half: int, table: np.ndarray,
                 p: float) -> np.ndarray:
    """(n, 2·half) ids without planted repeats: x_t = table[x_{t−2}, x_{t−1}] with probability
    p, else uniform."""
    ids = rng.integers(0, len(table), size=(n, 2 * half))
    for t in range(2, 2 * half):
        rule = rng.random(n) < p                                        # (n,)
        ids[rule, t] = table[ids[rule, t - 2], ids[rule, t - 1]]
    return ids


def training_batch(rng: np.random.Generator, rows: int, halves: tuple[int, int],
                   table: np.ndarray, control: float, p: float) -> np.ndarray:
    """``rows`` rows of one random half length h ∈ [halves]: a fraction ``control`` of them
    control rows, the rest repeated rows."""
    half = int(rng.integers(halves[0], halves[1] + 1))
    n_control = int(round(control * rows))
    return np.concatenate([control_rows(rng, n_control, half, table, p),
                           repeated_rows(rng, rows - n_control, half, len(table))])


def token_losses(ids: np.ndarray, params: dict, cfg: LMConfig):
    """−log p(ids[:, t+1] | ids[:, ≤t]) (B, T−1) and the attention weights [(B, H, T−1, T−1)]."""
    logits, weights, _ = lm_forward(ids[:, :-1], params, cfg, return_weights=True)
    logp = log_softmax(logits)                                          # (B, T−1, V)
    return -np.take_along_axis(logp, ids[:, 1:, None], axis=-1)[..., 0], weights


def half_losses(nll: np.ndarray, half: int) -> tuple[float, float]:
    """(first-half, second-half) mean loss of rows of 2·half tokens (module docstring)."""
    return float(nll[:, :half - 1].mean()), float(nll[:, half:].mean())


def current_token_scores(weights: list) -> np.ndarray:
    """Mean α[i, i] of every head (L, H): how much a head looks at its own position."""
    T = weights[0].shape[-1]
    return np.array([w[:, :, np.arange(T), np.arange(T)].mean(axis=(0, 2)) for w in weights])


def without_head(params: dict, cfg: LMConfig, layer: int, head: int) -> dict:
    """The parameters with one head's output zeroed: rows h·Dh … (h+1)·Dh − 1 of its layer's
    W_o (the head's slice of Concat(head_1 … head_H) W_o) set to 0."""
    Dh = cfg.d_model // cfg.num_heads
    W_o = params[f"blocks.{layer}.attn.W_o"].copy()
    W_o[head * Dh:(head + 1) * Dh] = 0
    return {**params, f"blocks.{layer}.attn.W_o": W_o}
