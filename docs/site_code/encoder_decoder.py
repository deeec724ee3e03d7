"""Chapter 9's encoder–decoder section: the date translator's Transformer (demos.translate_dates)
trained briefly at build time, its attention maps, and the cross-attention cache checked
against recomputing the keys and values."""
from __future__ import annotations

import numpy as np

from attention_np.apps.seq2seq.model import shift_right
from attention_np.apps.seq2seq.search import translate_greedy
from attention_np.apps.seq2seq.train import crop
from attention_np.apps.seq2seq.transformer import (attention_maps, encoder_config,
                                                   transformer_encode)
from attention_np.decoder import cross_attention_cache, decoder_block_forward
from attention_np.nn.params import sub


def example(cfg, params, test, row: int):
    """One held-out input: its tokens, the greedy output and every attention map of the model
    reading that output with teacher forcing."""
    src, mask = crop(test.src, test.src_len, np.array([row]))
    tokens, _ = translate_greedy(params, cfg, src, mask)
    ends = np.flatnonzero(tokens[0] == cfg.end)
    tokens = tokens[:, :ends[0] + 1] if len(ends) else tokens           # up to <end>
    maps = attention_maps(cfg, params, src, mask, shift_right(cfg, tokens))
    return src, mask, tokens, maps


def cache_check(cfg, params, test, rows) -> float:
    """max |decoder output with cached cross-attention keys/values − recomputed| over the
    decoder layers, teacher-forced on ``rows`` of the test set."""
    src, mask = crop(test.src, test.src_len, np.asarray(rows))
    memory, _, _ = transformer_encode(cfg, params, src, mask)
    y = np.random.default_rng(0).standard_normal((len(rows), 5, cfg.d_model)).astype(memory.dtype)
    config, gap = encoder_config(cfg), 0.0
    for layer in range(cfg.layers):
        p = sub(params, f"dec.blocks.{layer}")
        kv = cross_attention_cache(memory, p, cfg.heads)              # once per source
        full, _, _ = decoder_block_forward(y, memory, p, config, mask[:, None, None, :])
        cached, _, _ = decoder_block_forward(y, memory, p, config, mask[:, None, None, :],
                                             cross_kv=kv)
        gap = max(gap, float(np.abs(full - cached).max()))
    return gap
