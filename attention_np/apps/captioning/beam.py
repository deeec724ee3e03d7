"""Batched beam search: keep the K best partial captions of every image.

    score(y_1 … y_t) = Σ_{u ≤ t} log p(y_u | y_<u, image)

At each step every live beam is extended by every word; of the K·V candidates the K with the
highest score survive. A beam that has emitted ``<end>`` is finished: it can only be extended by
``<end>`` again at no cost, so it keeps its score and competes with the live ones. K = 1 is
greedy decoding.
"""
from __future__ import annotations

from typing import Callable

import numpy as np


def beam_search(step: Callable, state: tuple, context: tuple, start: int, end: int,
                beam_size: int = 3, max_len: int = 10, pad: int = 0):
    """Decode B inputs at once with K = ``beam_size`` beams each.

    step(tokens (N,), state, context) -> (log_probs (N, V), new_state, attention (N, L)),
        with N = B·K rows; ``state`` and ``context`` are tuples of arrays with leading dim B.
    Returns (tokens (B, max_len) int — ``<end>`` then ``pad`` after it —, attention
    (B, max_len, L) of the best beam, score (B,)).
    """
    if beam_size < 1 or max_len < 1:
        raise ValueError(f"beam_size and max_len must be ≥ 1, got {beam_size}, {max_len}")
    K = beam_size
    B = len(context[0])
    state = tuple(np.repeat(s, K, axis=0) for s in state)            # (B·K, …)
    context = tuple(np.repeat(c, K, axis=0) for c in context)
    score = np.full((B, K), -np.inf)
    score[:, 0] = 0.0                                                # one live beam at t = 0
    finished = np.zeros((B, K), dtype=bool)
    tokens = np.full((B, K, 0), pad, dtype=np.int64)
    attn = None
    prev = np.full(B * K, start, dtype=np.int64)
    for _ in range(max_len):
        logp, new_state, alpha = step(prev, state, context)          # (B·K, V), …, (B·K, L)
        V = logp.shape[1]
        logp = logp.reshape(B, K, V).copy()
        logp[finished] = -np.inf                                     # finished: only <end>, free
        logp[finished, end] = 0.0
        cand = (score[:, :, None] + logp).reshape(B, K * V)          # (B, K·V)
        top = np.argsort(-cand, axis=1, kind="stable")[:, :K]        # (B, K)
        score = np.take_along_axis(cand, top, axis=1)
        src, word = top // V, top % V                                # beam it came from, word
        rows = (np.arange(B)[:, None] * K + src).reshape(-1)         # flat source rows (B·K,)
        was_done = finished[np.arange(B)[:, None], src]
        word = np.where(was_done, pad, word)
        tokens = np.concatenate([tokens[np.arange(B)[:, None], src], word[..., None]], axis=2)
        alpha = alpha.reshape(B, K, -1)[np.arange(B)[:, None], src][:, :, None]   # (B, K, 1, L)
        alpha = np.where(was_done[..., None, None], 0.0, alpha)
        attn = alpha if attn is None else np.concatenate(
            [attn[np.arange(B)[:, None], src], alpha], axis=2)
        finished = was_done | (word == end)
        state = tuple(s[rows] for s in new_state)          # follow the surviving beams
        prev = np.where(finished.reshape(-1), end, word.reshape(-1))
        if finished.all():
            break
    best = score.argmax(axis=1)                                      # (B,)
    out_tokens = np.full((B, max_len), pad, dtype=np.int64)
    out_attn = np.zeros((B, max_len, attn.shape[-1]))
    T = tokens.shape[2]
    out_tokens[:, :T] = tokens[np.arange(B), best]
    out_attn[:, :T] = attn[np.arange(B), best]
    return out_tokens, out_attn, score[np.arange(B), best]
