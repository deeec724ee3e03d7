"""Greedy and beam-search decoding of a date-translation model: :func:`decode_step` as the step
of :mod:`attention_np.decoding` (which holds the search itself)."""
from __future__ import annotations

import numpy as np

from attention_np import decoding
from attention_np.nn.losses import log_softmax
from attention_np.apps.seq2seq.model import Memory, decode_step, encode


def _step(params, cfg):
    """(tokens (N,), state, context = (keys, mask)) → (log p (N, V), new state, α (N, Tk)),
    log p in float64 whatever the model's dtype (beam scores add up over the steps)."""
    def step(tokens, state, context):
        keys, mask = context
        logits, state, alpha = decode_step(params, cfg, Memory(keys, mask, state0=()), tokens,
                                           state)
        return log_softmax(logits.astype(np.float64)), state, alpha
    return step


def translate_greedy(params, cfg, src, src_mask):
    """y_t = argmax p(y | y_<t, x) for src (B, Tk), src_mask (B, Tk) → tokens
    (B, cfg.max_tgt_len) — <end>, then <pad> — and the alignment α (B, cfg.max_tgt_len, Tk)."""
    memory = encode(params, cfg, src, src_mask)
    return decoding.greedy_decode(_step(params, cfg), memory.state0, (memory.keys, memory.mask),
                                  cfg.start, cfg.end, cfg.max_tgt_len, cfg.pad)


def translate_beam(params, cfg, src, src_mask, beam: int = 4):
    """The ``beam`` best prefixes by Σ log p → the best tokens (B, cfg.max_tgt_len), its α
    (B, cfg.max_tgt_len, Tk) and its score (B,)."""
    memory = encode(params, cfg, src, src_mask)
    return decoding.beam_search(_step(params, cfg), memory.state0, (memory.keys, memory.mask),
                                cfg.start, cfg.end, beam, cfg.max_tgt_len, cfg.pad)
