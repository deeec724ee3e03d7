"""Greedy and beam-search decoding over :func:`attention_np.apps.seq2seq.model.decode_step`."""
from __future__ import annotations

import numpy as np

from attention_np.nn.losses import log_softmax
from attention_np.apps.seq2seq.model import decode_step, encode


def greedy_decode(cfg, params, src, src_mask):
    """y_t = argmax p(y | y_<t, x); after <eos> a row keeps emitting <eos>.
    Returns tokens (B, T) and the alignment α (B, T, Tk)."""
    memory = encode(cfg, params, src, src_mask)
    y = np.full(src.shape[0], cfg.bos)
    done = np.zeros(src.shape[0], bool)
    state, tokens, weights = memory.state0, [], []
    for _ in range(cfg.max_tgt_len):
        logits, state, w = decode_step(cfg, params, memory, y, state)
        y = np.where(done, cfg.eos, logits.argmax(axis=-1))
        done |= y == cfg.eos
        tokens.append(y)
        weights.append(w)
    return np.stack(tokens, 1), np.stack(weights, 1)


def beam_search(cfg, params, src, src_mask, beam: int = 4):
    """Keep the ``beam`` best prefixes by Σ log p; a prefix that emitted <eos> is finished and
    keeps its score. Returns the best tokens (B, T), α (B, T, Tk) and scores (B,)."""
    B, K = src.shape[0], beam
    rows = np.repeat(np.arange(B), K)                                    # (B·K,)
    memory = encode(cfg, params, src, src_mask).take(rows)
    state = memory.state0
    y = np.full(B * K, cfg.bos)
    score = np.tile(np.r_[0.0, np.full(K - 1, -np.inf)], B)              # one live beam at first
    done = np.zeros(B * K, bool)
    tokens = np.zeros((B * K, 0), np.int64)
    weights = np.zeros((B * K, 0, src.shape[1]))
    for _ in range(cfg.max_tgt_len):
        logits, state, w = decode_step(cfg, params, memory, y, state)
        logp = log_softmax(logits.astype(np.float64))                    # (B·K, V)
        logp[done] = -np.inf
        logp[done, cfg.eos] = 0.0                                        # finished: stay put
        total = (score[:, None] + logp).reshape(B, -1)                   # (B, K·V)
        best = np.argsort(-total, axis=1)[:, :K]                         # (B, K)
        src_beam = (np.arange(B)[:, None] * K + best // logp.shape[1]).reshape(-1)
        y = (best % logp.shape[1]).reshape(-1)
        score = np.take_along_axis(total, best, axis=1).reshape(-1)
        state = tuple(s[src_beam] for s in state)
        tokens = np.concatenate([tokens[src_beam], y[:, None]], axis=1)
        weights = np.concatenate([weights[src_beam], w[src_beam][:, None]], axis=1)
        done = done[src_beam] | (y == cfg.eos)
    top = score.reshape(B, K).argmax(axis=1) + np.arange(B) * K
    return tokens[top], weights[top], score[top]
