"""Greedy and beam-search decoding for the LAS model: the speller fed its own outputs, as the
step of :mod:`attention_np.decoding` (which holds the search itself)."""
from __future__ import annotations

import numpy as np

from attention_np import decoding
from attention_np.nn.losses import log_softmax
from attention_np.apps.las.listener import listener_forward
from attention_np.apps.las.speller import DecoderState, initial_state, speller_step


def _listen(params, cfg, x, mask):
    """The search's start state and fixed context: listener features h (B, T', Dh), their
    mask and the keys h V (B, T', A), computed once per utterance."""
    h, hmask, _ = listener_forward(params, x.astype(cfg.dtype), mask, cfg.backend)
    return initial_state(params, h), (h @ params["att.V"], h, hmask)


def _step(params):
    """(tokens (N,), state, context = (keys, h, mask)) → (log p (N, V), new state, α (N, T')),
    log p in float64 whatever the model's dtype (beam scores add up over the steps)."""
    def step(tokens, state, context):
        keys, h, hmask = context
        logits, new_state, _ = speller_step(params, keys, h, hmask, tokens, DecoderState(*state))
        return log_softmax(logits.astype(np.float64)), new_state, new_state.alpha
    return step


def transcribe_greedy(params, cfg, x, mask):
    """y_i = argmax p(y | y_<i, x) → tokens (B, cfg.max_len) — <end>, then <pad> — and
    α (B, cfg.max_len, T')."""
    state, context = _listen(params, cfg, x, mask)
    return decoding.greedy_decode(_step(params), state, context, cfg.start, cfg.end,
                                  cfg.max_len, cfg.pad)


def transcribe_beam(params, cfg, x, mask, beam: int = 4):
    """The ``beam`` prefixes with the highest Σ log p → the best tokens (B, cfg.max_len), its
    α (B, cfg.max_len, T') and its total log-probability (B,)."""
    state, context = _listen(params, cfg, x, mask)
    return decoding.beam_search(_step(params), state, context, cfg.start, cfg.end, beam,
                                cfg.max_len, cfg.pad)
