"""Decoding an autoregressive model: greedy search and beam search, for every application.

A model is driven through one *step* function that reads the previous token of each row and
returns the log-probabilities of the next one:

    step(tokens (N,), state, context) → (log_probs (N, V), new_state, attention (N, L))

* ``tokens``  the token each row emitted last (``start`` at the first step);
* ``state``   a tuple of arrays with leading dimension N, whatever the model carries from one
  step to the next (an LSTM's (h, c), the prefix read so far, the previous α …);
* ``context`` a tuple of arrays with leading dimension N that stay fixed (encoder output, mask);
* ``log_probs`` log p(y_t = v | y_<t, x) (the step applies log_softmax to its logits: then it
  chooses the precision); ``attention`` the weights of this step over the L source positions.

Greedy:   y_t = argmax_v log p(y_t = v | y_<t, x)        (the first maximum on a tie)
Beam:     score(y_1 … y_t) = Σ_{u ≤ t} log p(y_u | y_<u, x),  the K best prefixes survive.

Both start every row from ``start``; a row that emitted ``end`` is finished (beam search: it
can only be extended by ``end`` again, at no cost, so it keeps its score and competes with the
live ones). Both stop once every row is finished (beam search: every beam of finite score — a
beam of score −∞ is impossible and never chosen). Outputs are (B, max_len): ``pad`` after
``end`` and zero attention there. Ties go to the lower beam, then the lower token id (a stable
sort), the same choice as ``argmax`` — so beam search with K = 1 is greedy search.
"""
from __future__ import annotations

from typing import Callable

import numpy as np


def _check(beam_size: int, max_len: int, context: tuple) -> int:
    if beam_size < 1 or max_len < 1:
        raise ValueError(f"beam_size and max_len must be ≥ 1, got {beam_size}, {max_len}")
    if not isinstance(context, tuple) or not context:
        raise ValueError("context must be a non-empty tuple of arrays with leading dim B, "
                         f"got {type(context).__name__}")
    return len(context[0])


def _padded(tokens: np.ndarray, attention: np.ndarray, max_len: int, pad: int):
    """tokens (B, t), attention (B, t, L) of the t steps that ran → (B, max_len) tokens and
    (B, max_len, L) attention, filled with ``pad`` and zeros after step t."""
    B, t, L = attention.shape
    out_tokens = np.full((B, max_len), pad, dtype=np.int64)
    out_attention = np.zeros((B, max_len, L), dtype=attention.dtype)
    out_tokens[:, :t], out_attention[:, :t] = tokens, attention
    return out_tokens, out_attention


def greedy_decode(step: Callable, state: tuple, context: tuple, start: int, end: int,
                  max_len: int = 10, pad: int = 0):
    """y_t = argmax p(y | y_<t, x) for B rows at once (module docstring: the step contract).

    state, context: tuples of arrays with leading dim B. Returns tokens (B, max_len) —
    ``end`` then ``pad`` — and attention (B, max_len, L).
    """
    B = _check(1, max_len, context)
    y = np.full(B, start, dtype=np.int64)
    finished = np.zeros(B, dtype=bool)
    tokens, attention = [], []
    for _ in range(max_len):
        logp, state, alpha = step(y, state, context)                # (B, V), …, (B, L)
        word = logp.argmax(axis=-1)
        tokens.append(np.where(finished, pad, word))
        attention.append(np.where(finished[:, None], 0, alpha))
        finished = finished | (word == end)
        y = np.where(finished, end, word)                           # finished rows read <end>
        if finished.all():
            break
    return _padded(np.stack(tokens, axis=1), np.stack(attention, axis=1), max_len, pad)


def beam_search(step: Callable, state: tuple, context: tuple, start: int, end: int,
                beam_size: int = 3, max_len: int = 10, pad: int = 0):
    """Decode B rows at once with K = ``beam_size`` beams each (module docstring: the step
    contract; the step sees N = B·K rows, beam k of row b at index b·K + k).

    state, context: tuples of arrays with leading dim B. Returns tokens (B, max_len) of the
    best beam — ``end`` then ``pad`` —, its attention (B, max_len, L) and its score Σ log p (B,).
    """
    B, K = _check(beam_size, max_len, context), beam_size
    state = tuple(np.repeat(s, K, axis=0) for s in state)            # (B·K, …)
    context = tuple(np.repeat(c, K, axis=0) for c in context)
    score = np.tile(np.r_[0.0, np.full(K - 1, -np.inf)], (B, 1))      # (B, K): one live beam
    finished = np.zeros((B, K), dtype=bool)
    tokens = np.zeros((B * K, 0), dtype=np.int64)                    # (B·K, t) per beam
    attention = None                                                 # (B·K, t, L)
    y = np.full(B * K, start, dtype=np.int64)
    for _ in range(max_len):
        logp, new_state, alpha = step(y, state, context)             # (B·K, V), …, (B·K, L)
        V = logp.shape[-1]
        logp = logp.reshape(B, K, V).copy()
        logp[finished] = -np.inf                                     # finished: only <end>, free
        logp[finished, end] = 0.0
        cand = (score[:, :, None] + logp).reshape(B, K * V)          # (B, K·V)
        top = np.argsort(-cand, axis=1, kind="stable")[:, :K]        # (B, K)
        score = np.take_along_axis(cand, top, axis=1)
        parent, word = top // V, top % V                             # beam it extends, word
        rows = (np.arange(B)[:, None] * K + parent).reshape(-1)      # flat parent rows (B·K,)
        was_done = np.take_along_axis(finished, parent, axis=1)      # (B, K)
        word = np.where(was_done, pad, word)
        alpha = np.where(was_done.reshape(-1, 1), 0, alpha[rows])    # (B·K, L)
        tokens = np.concatenate([tokens[rows], word.reshape(-1, 1)], axis=1)
        attention = alpha[:, None] if attention is None else np.concatenate(
            [attention[rows], alpha[:, None]], axis=1)
        finished = was_done | (word == end)
        state = tuple(s[rows] for s in new_state)                    # follow the survivors
        y = np.where(finished, end, word).reshape(-1)
        if np.all(finished | (score == -np.inf)):                   # −∞: impossible, never best
            break
    best = np.arange(B) * K + score.argmax(axis=1)                   # flat row of each best
    return (*_padded(tokens[best], attention[best], max_len, pad), score.reshape(-1)[best])
