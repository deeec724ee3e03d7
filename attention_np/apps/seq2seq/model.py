"""One interface over every date-translation model: init, teacher-forced loss and gradients,
and the encode / decode-step pair that greedy and beam search drive.

    params = init_model(cfg, seed)
    loss, grads, _ = loss_and_grads(params, cfg, src, src_mask, tgt)      # one training step
    memory = encode(params, cfg, src, src_mask)                           # for decoding
    logits, state, α = decode_step(params, cfg, memory, y_prev, state)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attention_np.nn.losses import cross_entropy_backward, cross_entropy_forward
from attention_np.apps.seq2seq.encoder import encoder_backward, encoder_forward, init_encoder
from attention_np.apps.seq2seq.rnn_decoder import (init_rnn_decoder, rnn_decoder_backward,
                                              rnn_decoder_forward, rnn_decoder_step)
from attention_np.apps.seq2seq.transformer import (decoder_start, init_transformer,
                                              transformer_decode, transformer_decode_backward,
                                              transformer_decode_step, transformer_encode,
                                              transformer_encode_backward)


def init_model(cfg, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    if cfg.model == "transformer":
        return init_transformer(cfg, rng)
    return {**init_encoder(cfg, rng), **init_rnn_decoder(cfg, rng)}


def shift_right(cfg, tgt):
    """Teacher forcing: the decoder reads <start> y_1 … y_{T−1} and predicts y_1 … y_T."""
    return np.concatenate([np.full((tgt.shape[0], 1), cfg.start, tgt.dtype), tgt[:, :-1]],
                          axis=1)


def forward(params, cfg, src, src_mask, tgt_in):
    """Teacher-forced logits (B, T, V) and the alignment α (B, T, Tk) — for the Transformer, the
    last decoder layer's cross-attention, averaged over heads (``cache['cross']`` has all)."""
    if cfg.model == "transformer":
        memory, _, enc_cache = transformer_encode(cfg, params, src, src_mask)
        logits, cross, dec_cache = transformer_decode(cfg, params, memory, src_mask, tgt_in)
        return logits, cross[-1].mean(axis=1), {"model": cfg.model, "enc": enc_cache,
                                                "dec": dec_cache, "cross": cross}
    keys, state0, enc_cache = encoder_forward(params, src, src_mask, cfg.backend)
    logits, weights, dec_cache = rnn_decoder_forward(cfg, params, keys, src_mask, state0, tgt_in)
    return logits, weights, {"model": cfg.model, "enc": enc_cache, "dec": dec_cache}


def backward(dlogits, cache) -> dict:
    """dlogits (B, T, V) → gradients of every parameter (keyed like the params)."""
    if cache["model"] == "transformer":
        dmemory, grads = transformer_decode_backward(dlogits, cache["dec"])
        grads.update(transformer_encode_backward(dmemory, cache["enc"]))
        return grads
    dkeys, dstate0, grads = rnn_decoder_backward(dlogits, cache["dec"])
    grads.update(encoder_backward(dkeys, dstate0, cache["enc"]))
    return grads


def loss_and_grads(params, cfg, src, src_mask, tgt):
    """Mean cross-entropy of the teacher-forced targets.

    src (B, Tk) int, src_mask (B, Tk) bool, tgt (B, T) int (``cfg.pad`` after <end>)
    → (loss, grads keyed like params, α (B, T, Tk)).
    """
    logits, weights, cache = forward(params, cfg, src, src_mask, shift_right(cfg, tgt))
    loss, ce_cache = cross_entropy_forward(logits, tgt, ignore_index=cfg.pad)
    return float(loss), backward(cross_entropy_backward(1.0, ce_cache), cache), weights


@dataclass
class Memory:
    """What the decoder reads at every step: encoder outputs keys (N, Tk, d) and their mask
    (N, Tk) — the search's fixed ``context`` —, and the decoder's start ``state0``: (h, c) of
    the RNNs, the Transformer's empty KV cache with its memory's cross-attention keys and
    values (:func:`attention_np.apps.seq2seq.transformer.decoder_start`)."""
    keys: np.ndarray
    mask: np.ndarray
    state0: tuple


def encode(params, cfg, src, src_mask) -> Memory:
    """src (B, Tk) int, src_mask (B, Tk) bool → the :class:`Memory` the decoder reads."""
    if cfg.model == "transformer":
        memory, _, _ = transformer_encode(cfg, params, src, src_mask)
        return Memory(memory, src_mask, decoder_start(cfg, params, memory))
    keys, state0, _ = encoder_forward(params, src, src_mask, cfg.backend)
    return Memory(keys, src_mask, state0)


def decode_step(params, cfg, memory: Memory, y_prev, state):
    """y_prev (N,) → logits (N, V), new state, α (N, Tk). The Transformer's state is its KV
    cache: every layer's self-attention keys and values of the tokens read so far and its
    cross-attention keys and values of the memory (:func:`transformer_decode_step`)."""
    if cfg.model != "transformer":
        return rnn_decoder_step(cfg, params, memory.keys, memory.mask, y_prev, state)
    return transformer_decode_step(cfg, params, memory.mask, y_prev, state)
