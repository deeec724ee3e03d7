"""The decoder block's public entries (attention_np.decoder) for the bad-input table
(tests/test_bad_input.py collects this module through tests/bad_input_table.py).

Letters as in tests/public_entries.py: T = K target positions, Q memory positions, M = 2·H the
model width, F the FFN width; H, M and F are also fixed by the literal config (``tied``).
"""
from __future__ import annotations

import numpy as np

from attention_np import decoder
from attention_np.transformer import EncoderConfig
from tests.public_entries import BLOCK, FFN, MHA, Entry, _cache_bwd

CONFIG = EncoderConfig(d_model=6, num_heads=3, d_ff=8, norm_first=True)
DECODER = ({f"self_attn.{k}": v for k, v in MHA.items()}
           | {f"cross_attn.{k}": v for k, v in MHA.items()}
           | {f"ffn.{k}": v for k, v in FFN.items()}
           | {f"ln{i}.{g}": "f:M" for i in (1, 2, 3) for g in ("gamma", "beta")})


def _bwd(dout, result, args):
    return decoder.decoder_block_backward(dout, result[-1])


_bwd.library = decoder.decoder_block_backward

ENTRIES = [
    Entry("decoder_block", decoder.decoder_block_forward,
          {"y": "f:BTM", "memory": "f:BQM", "params": DECODER, "config": CONFIG,
           "memory_mask": "b:BHTQ"}, _bwd, tied="MHF", saturating=True),       # relu(−inf) = 0
]

CALLS = [
    ("init_decoder_block-d_ff", decoder.init_decoder_block,
     lambda: decoder.init_decoder_block(6, 0, np.random.default_rng(0)), ["d_ff"]),
    ("cross_attention_cache-memory", decoder.cross_attention_cache,
     lambda: decoder.cross_attention_cache(np.ones((2, 3)),
                                           decoder.init_decoder_block(6, 4, np.random.default_rng(0)),
                                           3), ["memory"]),
    ("decoder_block_step-self_kv", decoder.decoder_block_step,
     lambda: decoder.decoder_block_step(
         np.ones((2, 1, 6)), decoder.init_decoder_block(6, 4, np.random.default_rng(0)), CONFIG,
         np.zeros((2, 3, 0, 2)), (np.zeros((2, 3, 4, 2)), np.zeros((2, 3, 4, 2)))),
     ["self_kv", "pair"]),
    ("decoder_block_step-cross_kv", decoder.decoder_block_step,
     lambda: decoder.decoder_block_step(
         np.ones((2, 1, 6)), decoder.init_decoder_block(6, 4, np.random.default_rng(0)), CONFIG,
         (np.zeros((2, 3, 0, 2)), np.zeros((2, 3, 0, 2))),
         (np.zeros((2, 3, 4, 2)), np.zeros((2, 3, 5, 2)))), ["cross_kv", "differ"]),
]

MODULES = [(decoder, None)]
