"""Greedy and beam search's public entries (attention_np.decoding) for the bad-input table
(tests/test_bad_input.py collects this module through tests/bad_input_table.py). They take a
step function and tuples, or (B, K) arrays of a search in progress, so they are rows of CALLS."""
from __future__ import annotations

import numpy as np

from attention_np import decoding


def _step(tokens, state, context):
    return np.log(np.full((len(tokens), 4), 0.25)), state, np.ones((len(tokens), 1))


def _search(**kwargs):
    return decoding.beam_search(_step, (np.zeros(2),), (np.zeros(2),), 1, 2, **kwargs)


def _beam_step(**kwargs):
    args = {"score": np.zeros((2, 3)), "lengths": np.ones((2, 3), int),
            "finished": np.zeros((2, 3), bool), "log_probs": np.zeros((2, 3, 5)), "end": 2}
    return decoding.beam_step(**(args | kwargs))


# (id, the public function the row exercises, the call, names its message may give)
CALLS = [
    ("greedy_decode-max_len", decoding.greedy_decode,
     lambda: decoding.greedy_decode(_step, (np.zeros(2),), (np.zeros(2),), 1, 2, max_len=0),
     ["max_len"]),
    ("greedy_decode-context", decoding.greedy_decode,
     lambda: decoding.greedy_decode(_step, (np.zeros(2),), np.zeros(2), 1, 2), ["context"]),
    ("beam_search-beam_size", decoding.beam_search, lambda: _search(beam_size=0),
     ["beam_size"]),
    ("beam_search-length_penalty", decoding.beam_search, lambda: _search(length_penalty=-0.5),
     ["length_penalty"]),
    ("beam_search-length_penalty-nan", decoding.beam_search,
     lambda: _search(length_penalty=float("nan")), ["length_penalty"]),
    ("beam_step-score-rank", decoding.beam_step, lambda: _beam_step(score=np.zeros(3)),
     ["score"]),
    ("beam_step-score-dtype", decoding.beam_step,
     lambda: _beam_step(score=np.zeros((2, 3), int)), ["score"]),
    ("beam_step-log_probs-shape", decoding.beam_step,
     lambda: _beam_step(log_probs=np.zeros((2, 4, 5))), ["log_probs"]),
    ("beam_step-log_probs-empty", decoding.beam_step,
     lambda: _beam_step(log_probs=np.zeros((2, 3, 0))), ["log_probs"]),
    ("beam_step-lengths-dtype", decoding.beam_step,
     lambda: _beam_step(lengths=np.ones((2, 3))), ["lengths"]),
    ("beam_step-lengths-negative", decoding.beam_step,
     lambda: _beam_step(lengths=-np.ones((2, 3), int)), ["lengths"]),
    ("beam_step-finished", decoding.beam_step,
     lambda: _beam_step(finished=np.zeros((2, 3))), ["finished"]),
    ("beam_step-end", decoding.beam_step, lambda: _beam_step(end=5), ["end"]),
    ("beam_step-length_penalty", decoding.beam_step, lambda: _beam_step(length_penalty=-1.0),
     ["length_penalty"]),
]

MODULES = [(decoding, None)]
