"""A small pre-LN Transformer encoder–decoder (Vaswani et al., 2017) built on our multi-head
attention — the same task, with attention as the *only* way information moves.

    encoder layer:  x ← x + MHA(LN₁ x, LN₁ x, pad mask);     x ← x + FFN(LN₂ x)
    decoder layer:  y ← y + MHA(LN₁ y, LN₁ y, causal);       (masked self-attention)
                    y ← y + MHA(LN₂ y, memory, pad mask);     (cross-attention: the alignment)
                    y ← y + FFN(LN₃ y)
    memory = LN(encoder output),   logits = LN(y) W + b,   FFN(x) = relu(x W₁ + b₁) W₂ + b₂
    inputs: x = E[ids] + PE (sinusoidal)

The encoder is :func:`attention_np.transformer.encoder_forward`'s pre-LN stack (ReLU, no
dropout; its final LayerNorm gives the memory); the decoder layer is written out here from the
same pieces (layer norm, multi-head attention, the FFN). Parameter names, in the flat dict:
``enc.blocks.{l}.attn.W_q`` … ``enc.ln_f.beta`` (the encoder stack under ``enc``),
``dec.blocks.{l}.self_attn.W_q``, ``dec.blocks.{l}.cross_attn.W_q``, ``dec.blocks.{l}.ffn.W_1``,
``dec.blocks.{l}.ln1.gamma`` … ``ln3.beta``, ``dec.ln_f.gamma``, ``src_emb.W``, ``tgt_emb.W``,
``out.W``, ``out.b``.
"""
from __future__ import annotations

from attention_np.core import linear_backward, linear_forward
from attention_np.nn.init import normal
from attention_np.nn.layers import (embedding_backward, embedding_forward, layer_norm_backward,
                                    layer_norm_forward)
from attention_np.nn.params import linear_params, prefixed, sub
from attention_np.positional import sinusoidal_encoding
from attention_np.self_attention import (init_multi_head_params, multi_head_attention_backward,
                                         multi_head_attention_forward)
from attention_np.transformer import (EncoderConfig, encoder_backward, encoder_forward,
                                      feed_forward_backward, feed_forward_forward,
                                      init_encoder, init_feed_forward, norm_params)

# Token embeddings E ~ N(0, 0.5²): a row has norm ≈ 0.5 √d, a little below the sinusoidal
# encoding's √(d/2) that is added to it, so neither the token nor its position swamps the other.
EMBED_STD = 0.5


def encoder_config(cfg) -> EncoderConfig:
    """The encoder blocks of a :class:`Seq2SeqConfig`: pre-LN, ReLU, no dropout."""
    return EncoderConfig(d_model=cfg.d_model, num_heads=cfg.heads, d_ff=cfg.ffn,
                         num_layers=cfg.layers, activation="relu", norm_first=True)


def init_decoder_block(d_model: int, d_ff: int, rng, dtype) -> dict:
    """One decoder layer: masked self-attention, cross-attention and the FFN drawn in that
    order (as :func:`~attention_np.transformer.init_encoder_block`: Xavier, zero biases), and
    three layer norms γ = 1, β = 0."""
    params = {**prefixed("self_attn", init_multi_head_params(d_model, rng, dtype)),
              **prefixed("cross_attn", init_multi_head_params(d_model, rng, dtype)),
              **prefixed("ffn", init_feed_forward(d_model, d_ff, rng, dtype))}
    for norm in ("ln1", "ln2", "ln3"):
        params.update(prefixed(norm, norm_params(d_model, dtype)))
    return params


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


def decoder_layer_forward(y, memory, p, num_heads, mask):
    """One pre-LN decoder layer (module docstring). y (B, T, d), memory (B, Tk, d), p the
    layer's parameters, mask broadcastable to (B, H, T, Tk) → y (B, T, d), cross-attention
    weights (B, H, T, Tk), cache."""
    z1, c_ln1 = layer_norm_forward(y, p["ln1.gamma"], p["ln1.beta"])    # z₁ = LN₁(y)
    a, _, c_self = multi_head_attention_forward(z1, z1, sub(p, "self_attn"), num_heads,
                                                causal=True)
    h1 = y + a                                                           # (B, T, d)
    z2, c_ln2 = layer_norm_forward(h1, p["ln2.gamma"], p["ln2.beta"])   # z₂ = LN₂(h₁)
    c, weights, c_cross = multi_head_attention_forward(z2, memory, sub(p, "cross_attn"),
                                                       num_heads, mask=mask)   # (B, T, d)
    h2 = h1 + c
    z3, c_ln3 = layer_norm_forward(h2, p["ln3.gamma"], p["ln3.beta"])   # z₃ = LN₃(h₂)
    f, c_ffn = feed_forward_forward(z3, sub(p, "ffn"), "relu")          # (B, T, d)
    cache = {"ln1": c_ln1, "self": c_self, "ln2": c_ln2, "cross": c_cross, "ln3": c_ln3,
             "ffn": c_ffn}
    return h2 + f, weights, cache


def decoder_layer_backward(dy, cache):
    """Walks the layer back → (dy_in (B, T, d), dmemory (B, Tk, d), grads keyed like p)."""
    dz3, g_ffn = feed_forward_backward(dy, cache["ffn"])                # y = h₂ + FFN(z₃)
    dh2_ln, dg3, db3 = layer_norm_backward(dz3, cache["ln3"])           # z₃ = LN₃(h₂)
    dh2 = dy + dh2_ln
    dz2, dmemory, g_cross = multi_head_attention_backward(dh2, cache["cross"])  # h₂ = h₁ + c
    dh1_ln, dg2, db2 = layer_norm_backward(dz2, cache["ln2"])           # z₂ = LN₂(h₁)
    dh1 = dh2 + dh1_ln
    dz1_q, dz1_kv, g_self = multi_head_attention_backward(dh1, cache["self"])   # h₁ = y + a
    dy_ln, dg1, db1 = layer_norm_backward(dz1_q + dz1_kv, cache["ln1"])  # z₁ = LN₁(y)
    grads = {**prefixed("self_attn", g_self), **prefixed("cross_attn", g_cross),
             **prefixed("ffn", g_ffn), "ln1.gamma": dg1, "ln1.beta": db1, "ln2.gamma": dg2,
             "ln2.beta": db2, "ln3.gamma": dg3, "ln3.beta": db3}
    return dh1 + dy_ln, dmemory, grads


def transformer_decode(cfg, params, memory, src_mask, tgt_in):
    """tgt_in (B, T) → logits (B, T, V), cross-attention weights [(B, H, T, Tk)] per layer,
    cache."""
    y, e_cache = _embed(params, "tgt_emb.W", tgt_in)                    # (B, T, d)
    mask = src_mask[:, None, None, :]                                    # (B, 1, 1, Tk)
    layer_caches, cross = [], []
    for l in range(cfg.layers):
        y, w, c = decoder_layer_forward(y, memory, sub(params, f"dec.blocks.{l}"), cfg.heads,
                                        mask)
        layer_caches.append(c)
        cross.append(w)
    z, ln_cache = layer_norm_forward(y, params["dec.ln_f.gamma"], params["dec.ln_f.beta"])
    logits, out_cache = linear_forward(z, params["out.W"], params["out.b"])  # (B, T, V)
    return logits, cross, {"e": e_cache, "layers": layer_caches, "ln": ln_cache,
                           "out": out_cache}


def transformer_decode_backward(dlogits, cache):
    """Returns (dmemory (B, Tk, d), grads of the decoder's parameters)."""
    dz, dW, db = linear_backward(dlogits, cache["out"])                 # logits = z W + b
    dy, dgamma, dbeta = layer_norm_backward(dz, cache["ln"])            # z = LN(y)
    grads = {"out.W": dW, "out.b": db, "dec.ln_f.gamma": dgamma, "dec.ln_f.beta": dbeta}
    dmemory = 0
    for l in reversed(range(len(cache["layers"]))):
        dy, dmem, g = decoder_layer_backward(dy, cache["layers"][l])
        dmemory = dmemory + dmem                     # every layer reads the same memory
        grads.update(prefixed(f"dec.blocks.{l}", g))
    grads["tgt_emb.W"] = embedding_backward(dy, cache["e"])            # y = E[tgt] + PE
    return dmemory, grads
