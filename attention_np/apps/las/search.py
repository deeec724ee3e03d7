"""Greedy and beam-search decoding for the LAS model (the speller fed its own outputs)."""
from __future__ import annotations

import numpy as np

from attention_np.nn.losses import log_softmax
from attention_np.apps.las.listener import listener_forward
from attention_np.apps.las.speller import initial_state, speller_step


def _listen(cfg, params, x, mask):
    h, hmask, _ = listener_forward(params, x.astype(cfg.dtype), mask)
    return h, hmask, h @ params["att.V"]


def greedy_decode(cfg, params, x, mask):
    """y_i = argmax p(y | y_<i, x) until <eos> or cfg.max_len → tokens (B, L), α (B, L, T')."""
    h, hmask, keys = _listen(cfg, params, x, mask)
    state, y = initial_state(params, h), np.full(len(x), cfg.sos)
    tokens, alphas = [], []
    for _ in range(cfg.max_len):
        logits, state, _ = speller_step(params, keys, h, hmask, y, state)
        y = logits.argmax(-1)
        tokens.append(y)
        alphas.append(state.alpha)
    return np.stack(tokens, 1), np.stack(alphas, 1)


def beam_search(cfg, params, x, mask, beam: int = 4):
    """Keep the ``beam`` prefixes with the highest Σ log p; a finished prefix (it emitted
    <eos>) keeps its score and stays put. Returns the best tokens (B, L), its α (B, L, T')
    and its total log-probability (B,)."""
    B, K = len(x), beam
    h, hmask, keys = _listen(cfg, params, x, mask)
    rows = np.repeat(np.arange(B), K)                                    # beam b·K + k
    h, hmask, keys = h[rows], hmask[rows], keys[rows]
    state, y = initial_state(params, h), np.full(B * K, cfg.sos)
    score = np.tile(np.r_[0.0, np.full(K - 1, -np.inf)], B)              # one live beam at first
    done = np.zeros(B * K, bool)
    tokens = np.zeros((B * K, 0), np.int64)
    alphas = np.zeros((B * K, 0, h.shape[1]), h.dtype)
    for _ in range(cfg.max_len):
        logits, new_state, _ = speller_step(params, keys, h, hmask, y, state)
        logp = log_softmax(logits.astype(np.float64))                   # (B·K, V)
        logp[done] = -np.inf
        logp[done, cfg.eos] = 0.0
        total = (score[:, None] + logp).reshape(B, -1)                   # (B, K·V)
        best = np.argsort(-total, axis=1, kind="stable")[:, :K]          # (B, K)
        parent = (np.arange(B)[:, None] * K + best // logp.shape[1]).reshape(-1)
        y = (best % logp.shape[1]).reshape(-1)
        score = np.take_along_axis(total, best, axis=1).reshape(-1)
        state = new_state.take(parent)
        tokens = np.concatenate([tokens[parent], y[:, None]], axis=1)
        alphas = np.concatenate([alphas[parent], state.alpha[:, None]], axis=1)
        done = done[parent] | (y == cfg.eos)
        if done.all():
            break
    pick = np.arange(B) * K + score.reshape(B, K).argmax(1)
    return tokens[pick], alphas[pick], score[pick]
