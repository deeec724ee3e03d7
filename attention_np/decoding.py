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

Beam search prefers short outputs: every token adds a log-probability ≤ 0. GNMT's length penalty
(Wu et al., 2016, "Google's Neural Machine Translation System", §7) ranks the beams by

    score / lp(Y),   lp(Y) = ((5 + |Y|) / 6)^α

instead, |Y| the number of tokens the beam has emitted (its ``end`` included; a finished beam
keeps its length). α = 0 (``length_penalty=0.0``, the default) is plain Σ log p; GNMT used
α ∈ [0.6, 1]. One step of the search — extend every beam by every token, keep the K best — is
:func:`beam_step`; :func:`beam_search` runs it until every beam has ended.

Both start every row from ``start``; a row that emitted ``end`` is finished (beam search: it
can only be extended by ``end`` again, at no cost, so it keeps its score and competes with the
live ones). Both stop once every row is finished (beam search: every beam of finite score — a
beam of score −∞ is impossible and never chosen). Outputs are (B, max_len): ``pad`` after
``end`` and zero attention there. Ties go to the lower beam, then the lower token id (a stable
sort), the same choice as ``argmax`` — so beam search with K = 1 is greedy search.
"""
from __future__ import annotations

import numbers
from typing import Callable

import numpy as np

__all__ = ["greedy_decode", "beam_search", "beam_step"]


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


def _length_penalty_factor(lengths, alpha: float) -> np.ndarray:
    """GNMT's lp(Y) = ((5 + |Y|) / 6)^α for integer lengths |Y| → float64 array (1 when α = 0)."""
    return ((5.0 + np.asarray(lengths, dtype=np.float64)) / 6.0) ** float(alpha)


def _check_beam_step(score, lengths, finished, log_probs, end, length_penalty):
    score = np.asarray(score)
    if not np.issubdtype(score.dtype, np.floating) or score.ndim != 2:
        raise ValueError(f"score must be a float (B, K) array of Σ log p per beam, got dtype "
                         f"{score.dtype} with shape {score.shape}")
    log_probs = np.asarray(log_probs)
    if not np.issubdtype(log_probs.dtype, np.floating) or log_probs.ndim != 3 \
            or log_probs.shape[:2] != score.shape or log_probs.shape[2] == 0:
        raise ValueError(f"log_probs must be a float (B, K, V) array with V ≥ 1 and score's "
                         f"(B, K) = {score.shape}, got dtype {log_probs.dtype} with shape "
                         f"{log_probs.shape}")
    lengths = np.asarray(lengths)
    if not np.issubdtype(lengths.dtype, np.integer) or lengths.shape != score.shape or \
            (lengths.size and lengths.min() < 0):
        raise ValueError(f"lengths must be a (B, K) integer array ≥ 0 like score {score.shape}, "
                         f"got dtype {lengths.dtype} with shape {lengths.shape}")
    finished = np.asarray(finished)
    if finished.dtype != np.bool_ or finished.shape != score.shape:
        raise ValueError(f"finished must be a (B, K) boolean array like score {score.shape}, "
                         f"got dtype {finished.dtype} with shape {finished.shape}")
    V = log_probs.shape[2]
    if not isinstance(end, (int, np.integer)) or isinstance(end, bool) or not 0 <= end < V:
        raise ValueError(f"end must be a token id in [0, V = {V}), got {end!r}")
    if not isinstance(length_penalty, numbers.Real) or isinstance(length_penalty, bool) or \
            not np.isfinite(length_penalty) or length_penalty < 0:
        raise ValueError(f"length_penalty must be a finite number ≥ 0 (GNMT's α), got "
                         f"{length_penalty!r}")
    return score, lengths, finished, log_probs, int(end), float(length_penalty)


def beam_step(score, lengths, finished, log_probs, end: int, length_penalty: float = 0.0):
    """One step of beam search: extend each of the K beams of each of B rows by every token,
    keep the K best candidates.

    score (B, K) float: Σ log p of each beam (−inf: an impossible beam, e.g. the K − 1 copies
    of the first step); lengths (B, K) int: the tokens each beam has emitted; finished (B, K)
    bool: the beam has emitted ``end``; log_probs (B, K, V) float: log p of the next token for
    each beam; end: the end token's id; length_penalty: GNMT's α ≥ 0.

    A finished beam is extended only by ``end``, at no cost, and keeps its length; a live beam
    extended by token v scores score + log_probs[v] and grows by one. Candidates are ranked by
    score / lp(length) (module docstring), ties to the lower beam and then the lower token.
    → parent (B, K) int: the beam each survivor extends, token (B, K) int: its new token
    (``end`` for a finished beam), score (B, K): its Σ log p (not divided by lp), lengths (B, K).
    """
    return beam_step_core(*_check_beam_step(score, lengths, finished, log_probs, end,
                                            length_penalty))


def beam_step_core(score, lengths, finished, log_probs, end: int, length_penalty: float):
    """:func:`beam_step` on checked input."""
    B, K, V = log_probs.shape
    logp = log_probs.copy()
    logp[finished] = -np.inf                                         # finished: only <end>, free
    logp[finished, end] = 0.0
    cand = (score[:, :, None] + logp).reshape(B, K * V)              # (B, K·V)
    grown = (lengths + ~finished)[:, :, None]                        # (B, K, 1)
    if length_penalty:
        rank = cand / np.repeat(_length_penalty_factor(grown, length_penalty), V, axis=2
                                ).reshape(B, K * V)
    else:
        rank = cand                                                  # α = 0: Σ log p itself
    top = np.argsort(-rank, axis=1, kind="stable")[:, :K]            # (B, K)
    parent, token = top // V, top % V                                # beam it extends, token
    new_lengths = np.take_along_axis(grown[:, :, 0], parent, axis=1)
    return parent, token, np.take_along_axis(cand, top, axis=1), new_lengths


def beam_search(step: Callable, state: tuple, context: tuple, start: int, end: int,
                beam_size: int = 3, max_len: int = 10, pad: int = 0,
                length_penalty: float = 0.0):
    """Decode B rows at once with K = ``beam_size`` beams each (module docstring: the step
    contract; the step sees N = B·K rows, beam k of row b at index b·K + k).

    state, context: tuples of arrays with leading dim B; ``length_penalty``: GNMT's α ≥ 0, the
    beams ranked by Σ log p / ((5 + |Y|) / 6)^α (0: by Σ log p). Returns tokens (B, max_len) of
    the best beam — ``end`` then ``pad`` —, its attention (B, max_len, L) and its score
    Σ log p (B,) (not divided by the length penalty).
    """
    B, K = _check(beam_size, max_len, context), beam_size
    if not isinstance(length_penalty, numbers.Real) or isinstance(length_penalty, bool) or \
            not np.isfinite(length_penalty) or length_penalty < 0:
        raise ValueError(f"length_penalty must be a finite number ≥ 0 (GNMT's α), got "
                         f"{length_penalty!r}")
    state = tuple(np.repeat(s, K, axis=0) for s in state)            # (B·K, …)
    context = tuple(np.repeat(c, K, axis=0) for c in context)
    score = np.tile(np.r_[0.0, np.full(K - 1, -np.inf)], (B, 1))      # (B, K): one live beam
    finished = np.zeros((B, K), dtype=bool)
    lengths = np.zeros((B, K), dtype=np.int64)
    tokens = np.zeros((B * K, 0), dtype=np.int64)                    # (B·K, t) per beam
    attention = None                                                 # (B·K, t, L)
    y = np.full(B * K, start, dtype=np.int64)
    for _ in range(max_len):
        logp, new_state, alpha = step(y, state, context)             # (B·K, V), …, (B·K, L)
        parent, word, score, lengths = beam_step_core(
            score, lengths, finished, logp.reshape(B, K, -1), end, float(length_penalty))
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
    ranked = score / _length_penalty_factor(lengths, length_penalty) if length_penalty else score
    best = np.arange(B) * K + ranked.argmax(axis=1)                  # flat row of each best
    return (*_padded(tokens[best], attention[best], max_len, pad), score.reshape(-1)[best])
