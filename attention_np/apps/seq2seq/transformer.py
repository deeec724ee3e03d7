"""A small pre-LN Transformer encoder–decoder (Vaswani et al., 2017) built on our multi-head
attention — the same task, with attention as the *only* way information moves.

    encoder layer:  x ← x + MHA(LN x, LN x, pad mask);           x ← x + FFN(LN x)
    decoder layer:  y ← y + MHA(LN y, LN y, causal);             (masked self-attention)
                    y ← y + MHA(LN y, memory, pad mask);          (cross-attention: the alignment)
                    y ← y + FFN(LN y)
    memory = LN(encoder output),   logits = LN(y) W + b,   FFN(x) = relu(x W₁ + b₁) W₂ + b₂
    inputs: x = E[ids] + PE (sinusoidal)
"""
from __future__ import annotations

import numpy as np

from attention_np.core import linear_backward, linear_forward
from attention_np.nn.layers import (embedding_backward, embedding_forward, layer_norm_backward,
                                 layer_norm_forward, sinusoidal_positional_encoding)
from attention_np.self_attention import (init_multi_head_params, multi_head_attention_backward,
                                         multi_head_attention_forward)
from attention_np.nn.params import add_grads, linear_params, prefixed, sub


def _ln_params(d, dtype):
    return {"g": np.ones(d, dtype), "b": np.zeros(d, dtype)}


def init_transformer(cfg, rng) -> dict:
    d, dt = cfg.d_model, cfg.np_dtype
    p = {"src_emb.W": (rng.standard_normal((cfg.src_vocab, d)) * 0.5).astype(dt),
         "tgt_emb.W": (rng.standard_normal((cfg.tgt_vocab, d)) * 0.5).astype(dt)}
    blocks = {"enc": ("ln1", "att", "ln2", "ff"), "dec": ("ln1", "self", "ln2", "cross", "ln3", "ff")}
    for side, names in blocks.items():
        for layer in range(cfg.layers):
            for name in names:
                key = f"{side}{layer}.{name}"
                if name.startswith("ln"):
                    p.update(prefixed(key, _ln_params(d, dt)))
                elif name == "ff":
                    p.update(prefixed(key + "1", linear_params(rng, d, cfg.ffn, dt)))
                    p.update(prefixed(key + "2", linear_params(rng, cfg.ffn, d, dt)))
                else:
                    p.update(prefixed(key, init_multi_head_params(d, rng, dt)))
    p.update(prefixed("enc_ln", _ln_params(d, dt)))
    p.update(prefixed("dec_ln", _ln_params(d, dt)))
    p.update(prefixed("out", linear_params(rng, d, cfg.tgt_vocab, dt)))
    return p


def _ln(params, key, x):
    return layer_norm_forward(x, params[key + ".g"], params[key + ".b"])


def _ln_back(dy, cache, key):
    dx, dg, db = layer_norm_backward(dy, cache)
    return dx, {key + ".g": dg, key + ".b": db}


def _attn_block(params, key, ln_key, x, memory, heads, mask, causal):
    """x + MHA(LN x, memory or LN x). Returns (y, weights, cache)."""
    z, ln_cache = _ln(params, ln_key, x)
    kv = z if memory is None else memory
    out, w, c = multi_head_attention_forward(z, kv, sub(params, key), heads, mask=mask,
                                             causal=causal)
    return x + out, w, (ln_cache, c, key, ln_key, memory is None)


def _attn_block_back(dy, cache):
    """Returns (dx, dmemory or None, grads)."""
    ln_cache, c, key, ln_key, is_self = cache
    dz, dkv, g = multi_head_attention_backward(dy, c)
    grads = prefixed(key, g)
    if is_self:
        dz, dkv = dz + dkv, None
    dx_ln, g_ln = _ln_back(dz, ln_cache, ln_key)
    grads.update(g_ln)
    return dy + dx_ln, dkv, grads


def _ffn_block(params, key, ln_key, x):
    z, ln_cache = _ln(params, ln_key, x)
    a, c1 = linear_forward(z, params[key + "1.W"], params[key + "1.b"])
    r = np.maximum(a, 0)
    out, c2 = linear_forward(r, params[key + "2.W"], params[key + "2.b"])
    return x + out, (ln_cache, c1, a > 0, c2, key, ln_key)


def _ffn_block_back(dy, cache):
    ln_cache, c1, positive, c2, key, ln_key = cache
    dr, dW2, db2 = linear_backward(dy, c2)
    dz, dW1, db1 = linear_backward(dr * positive, c1)
    dx_ln, grads = _ln_back(dz, ln_cache, ln_key)
    grads.update({key + "1.W": dW1, key + "1.b": db1, key + "2.W": dW2, key + "2.b": db2})
    return dy + dx_ln, grads


def _embed(params, key, ids):
    e, cache = embedding_forward(ids, params[key])
    return e + sinusoidal_positional_encoding(ids.shape[1], e.shape[-1], e.dtype), cache


def transformer_encode(cfg, params, src, src_mask):
    """src (B, Tk) → memory (B, Tk, d), encoder self-attention per layer, cache."""
    x, e_cache = _embed(params, "src_emb.W", src)
    mask = src_mask[:, None, None, :]                                  # (B, 1, 1, Tk)
    caches, weights = [], []
    for l in range(cfg.layers):
        x, w, ca = _attn_block(params, f"enc{l}.att", f"enc{l}.ln1", x, None, cfg.heads, mask, False)
        x, cf = _ffn_block(params, f"enc{l}.ff", f"enc{l}.ln2", x)
        caches.append((ca, cf))
        weights.append(w)
    memory, ln_cache = _ln(params, "enc_ln", x)
    return memory, weights, {"e": e_cache, "layers": caches, "ln": ln_cache}


def transformer_decode(cfg, params, memory, src_mask, tgt_in):
    """tgt_in (B, T) → logits (B, T, V), cross-attention weights [(B, H, T, Tk)] per layer, cache."""
    y, e_cache = _embed(params, "tgt_emb.W", tgt_in)
    mask = src_mask[:, None, None, :]
    caches, cross = [], []
    for l in range(cfg.layers):
        y, _, cs = _attn_block(params, f"dec{l}.self", f"dec{l}.ln1", y, None, cfg.heads, None, True)
        y, w, cc = _attn_block(params, f"dec{l}.cross", f"dec{l}.ln2", y, memory, cfg.heads,
                               mask, False)
        y, cf = _ffn_block(params, f"dec{l}.ff", f"dec{l}.ln3", y)
        caches.append((cs, cc, cf))
        cross.append(w)
    z, ln_cache = _ln(params, "dec_ln", y)
    logits, out_cache = linear_forward(z, params["out.W"], params["out.b"])
    return logits, cross, {"e": e_cache, "layers": caches, "ln": ln_cache, "out": out_cache}


def transformer_decode_backward(dlogits, cache):
    """Returns (dmemory, grads)."""
    dz, dW, db = linear_backward(dlogits, cache["out"])
    dy, grads = _ln_back(dz, cache["ln"], "dec_ln")
    grads.update({"out.W": dW, "out.b": db})
    dmemory = 0
    for cs, cc, cf in reversed(cache["layers"]):
        dy, g = _ffn_block_back(dy, cf)
        add_grads(grads, g)
        dy, dmem, g = _attn_block_back(dy, cc)
        dmemory = dmemory + dmem
        add_grads(grads, g)
        dy, _, g = _attn_block_back(dy, cs)
        add_grads(grads, g)
    grads["tgt_emb.W"] = embedding_backward(dy, cache["e"])
    return dmemory, grads


def transformer_encode_backward(dmemory, cache) -> dict:
    dx, grads = _ln_back(dmemory, cache["ln"], "enc_ln")
    for ca, cf in reversed(cache["layers"]):
        dx, g = _ffn_block_back(dx, cf)
        add_grads(grads, g)
        dx, _, g = _attn_block_back(dx, ca)
        add_grads(grads, g)
    grads["src_emb.W"] = embedding_backward(dx, cache["e"])
    return grads
