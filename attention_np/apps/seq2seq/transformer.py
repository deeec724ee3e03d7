"""A small pre-LN Transformer encoder–decoder (Vaswani et al., 2017) built on our multi-head
attention — the same task, with attention as the *only* way information moves.

    encoder layer:  x ← x + MHA(LN₁ x, LN₁ x, pad mask);     x ← x + FFN(LN₂ x)
    decoder layer:  y ← y + MHA(LN₁ y, LN₁ y, causal);       (masked self-attention)
                    y ← y + MHA(LN₂ y, memory, pad mask);     (cross-attention: the alignment)
                    y ← y + FFN(LN₃ y)
    memory = LN(encoder output),   logits = LN(y) W + b,   FFN(x) = relu(x W₁ + b₁) W₂ + b₂
    inputs: x = E[ids] + PE (sinusoidal)

The encoder is :func:`attention_np.transformer.encoder_forward`'s pre-LN stack (ReLU, no
dropout; its final LayerNorm gives the memory); each decoder layer is
:func:`attention_np.decoder.decoder_block_forward` (masked self-attention, cross-attention, the
FFN), then a final LayerNorm and the output layer. Parameter names, in the flat dict:
``enc.blocks.{l}.attn.W_q`` … ``enc.ln_f.beta`` (the encoder stack under ``enc``),
``dec.blocks.{l}.self_attn.W_q``, ``dec.blocks.{l}.cross_attn.W_q``, ``dec.blocks.{l}.ffn.W_1``,
``dec.blocks.{l}.ln1.gamma`` … ``ln3.beta``, ``dec.ln_f.gamma``, ``src_emb.W``, ``tgt_emb.W``,
``out.W``, ``out.b``.
"""
from __future__ import annotations

import numpy as np

from attention_np.core import linear_backward, linear_forward
from attention_np.nn.init import normal
from attention_np.nn.layers import (embedding_backward, embedding_forward, layer_norm_backward,
                                    layer_norm_forward)
from attention_np.decoder import (cross_attention_cache, decoder_block_backward,
                                  decoder_block_forward, decoder_block_step_core,
                                  init_decoder_block)
from attention_np.nn.params import linear_params, prefixed, sub
from attention_np.positional import sinusoidal_encoding
from attention_np.transformer import (EncoderConfig, encoder_backward, encoder_forward,
                                      init_encoder, norm_params)

# Token embeddings E ~ N(0, 0.5²): a row has norm ≈ 0.5 √d, a little below the sinusoidal
# encoding's √(d/2) that is added to it, so neither the token nor its position swamps the other.
EMBED_STD = 0.5


def encoder_config(cfg) -> EncoderConfig:
    """The encoder blocks of a :class:`Seq2SeqConfig`: pre-LN, ReLU, no dropout."""
    return EncoderConfig(d_model=cfg.d_model, num_heads=cfg.heads, d_ff=cfg.ffn,
                         num_layers=cfg.layers, activation="relu", norm_first=True)


def init_transformer(cfg, rng) -> dict:
    """Embeddings, ``cfg.layers`` encoder and decoder layers, final norms and the output layer
    (random draws in this order: embeddings, the encoder blocks, the decoder blocks, the
    output layer)."""
    d, dt = cfg.d_model, cfg.np_dtype
    p = {"src_emb.W": normal((cfg.src_vocab, d), rng, std=EMBED_STD, dtype=dt),
         "tgt_emb.W": normal((cfg.tgt_vocab, d), rng, std=EMBED_STD, dtype=dt)}
    p.update(init_encoder(encoder_config(cfg), rng, dt, prefix="enc"))   # enc.blocks.*, enc.ln_f
    for layer in range(cfg.layers):
        p.update(prefixed(f"dec.blocks.{layer}", init_decoder_block(d, cfg.ffn, rng, dt)))
    p.update(prefixed("dec.ln_f", norm_params(d, dt)))
    p.update(prefixed("out", linear_params(rng, d, cfg.tgt_vocab, dt)))
    return p


def _embed(params, key, ids):
    e, cache = embedding_forward(ids, params[key])                      # (B, T, d)
    return e + sinusoidal_encoding(ids.shape[1], e.shape[-1], dtype=e.dtype), cache


def transformer_encode(cfg, params, src, src_mask):
    """src (B, Tk) → memory (B, Tk, d), encoder self-attention per layer, cache."""
    x, e_cache = _embed(params, "src_emb.W", src)
    memory, weights, enc_cache = encoder_forward(x, params, encoder_config(cfg), prefix="enc",
                                                 mask=src_mask[:, None, None, :])  # (B, Tk, d)
    return memory, weights, {"e": e_cache, "encoder": enc_cache}


def transformer_encode_backward(dmemory, cache) -> dict:
    """Gradients of the encoder's parameters for dmemory (B, Tk, d)."""
    dx, grads = encoder_backward(dmemory, cache["encoder"])            # memory = LN(blocks(x))
    grads["src_emb.W"] = embedding_backward(dx, cache["e"])            # x = E[src] + PE
    return grads


def transformer_decode(cfg, params, memory, src_mask, tgt_in):
    """tgt_in (B, T) → logits (B, T, V), cross-attention weights [(B, H, T, Tk)] per layer,
    cache."""
    y, e_cache = _embed(params, "tgt_emb.W", tgt_in)                    # (B, T, d)
    mask = src_mask[:, None, None, :]                                    # (B, 1, 1, Tk)
    layer_caches, cross, masked, config = [], [], [], encoder_config(cfg)
    for l in range(cfg.layers):
        y, (w_self, w), c = decoder_block_forward(y, memory, sub(params, f"dec.blocks.{l}"),
                                                  config, mask)
        layer_caches.append(c)
        cross.append(w)
        masked.append(w_self)
    z, ln_cache = layer_norm_forward(y, params["dec.ln_f.gamma"], params["dec.ln_f.beta"])
    logits, out_cache = linear_forward(z, params["out.W"], params["out.b"])  # (B, T, V)
    return logits, cross, {"e": e_cache, "layers": layer_caches, "ln": ln_cache,
                           "out": out_cache, "self_attention": masked}


def decoder_start(cfg, params, memory) -> tuple:
    """The decoder's state before its first token, for :func:`transformer_decode_step`: per
    layer four arrays (N, H, ·, Dh) — the masked self-attention's keys and values so far (none
    yet) and the cross-attention's keys and values of ``memory`` (N, Tk, d), which stay the
    same at every step and so are computed here, once."""
    N, H = memory.shape[0], cfg.heads
    empty = np.zeros((N, H, 0, memory.shape[2] // H), memory.dtype)
    state = ()
    for layer in range(cfg.layers):
        state += (empty, empty) + cross_attention_cache(memory, sub(params, f"dec.blocks.{layer}"),
                                                        H)
    return state


def transformer_decode_step(cfg, params, src_mask, y_prev, state):
    """The decoder on one new token per row, with a KV cache: y_prev (N,) at position t (the
    number of tokens the state has read) → logits (N, V), the new state, cross-attention α of
    the last layer averaged over the heads (N, Tk).

    The self-attention is causal, so the keys and values of positions < t never change: each
    layer keeps them in the state and the new token's query attends to them and to its own
    (:func:`attention_np.decoder.decoder_block_step`),

        K ← [K; k_t],  V ← [V; v_t],  a_t = MultiHead(q_t, K, V)

    which gives :func:`transformer_decode`'s logits at position t (the same sums, up to
    rounding) for the cost of one position instead of t + 1."""
    e, _ = embedding_forward(y_prev[:, None], params["tgt_emb.W"])               # (N, 1, d)
    t = state[0].shape[2]
    y = e + sinusoidal_encoding(t + 1, e.shape[-1], dtype=e.dtype)[t:]           # E[y] + PE(t)
    mask, config, new_state = src_mask[:, None, None, :], encoder_config(cfg), ()  # (N,1,1,Tk)
    for layer in range(cfg.layers):
        self_kv, cross_kv = state[4 * layer:4 * layer + 2], state[4 * layer + 2:4 * layer + 4]
        y, (_, cross), self_kv = decoder_block_step_core(
            y, sub(params, f"dec.blocks.{layer}"), config, self_kv, cross_kv, mask)
        new_state += self_kv + cross_kv
    z, _ = layer_norm_forward(y, params["dec.ln_f.gamma"], params["dec.ln_f.beta"])
    logits, _ = linear_forward(z, params["out.W"], params["out.b"])              # (N, 1, V)
    return logits[:, 0], new_state, cross[:, :, 0].mean(axis=1)


def attention_maps(cfg, params, src, src_mask, tgt_in) -> dict:
    """Every attention map of the model on one teacher-forced batch: ``encoder`` self-attention,
    ``decoder`` masked self-attention and ``cross``-attention, each a list over layers of
    (B, H, T_query, T_key)."""
    memory, encoder, _ = transformer_encode(cfg, params, src, src_mask)
    _, cross, cache = transformer_decode(cfg, params, memory, src_mask, tgt_in)
    return {"encoder": encoder, "decoder": cache["self_attention"], "cross": cross}


def transformer_decode_backward(dlogits, cache):
    """Returns (dmemory (B, Tk, d), grads of the decoder's parameters)."""
    dz, dW, db = linear_backward(dlogits, cache["out"])                 # logits = z W + b
    dy, dgamma, dbeta = layer_norm_backward(dz, cache["ln"])            # z = LN(y)
    grads = {"out.W": dW, "out.b": db, "dec.ln_f.gamma": dgamma, "dec.ln_f.beta": dbeta}
    dmemory = 0
    for l in reversed(range(len(cache["layers"]))):
        dy, dmem, g = decoder_block_backward(dy, cache["layers"][l])
        dmemory = dmemory + dmem                     # every layer reads the same memory
        grads.update(prefixed(f"dec.blocks.{l}", g))
    grads["tgt_emb.W"] = embedding_backward(dy, cache["e"])            # y = E[tgt] + PE
    return dmemory, grads
