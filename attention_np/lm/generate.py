"""Autoregressive generation with a KV cache.

A causal model's keys and values at position s never change once s is read (they depend on
tokens ≤ s only), so each layer keeps them in a cache and a new token runs the model on itself
alone: its query attends to the cached keys,

    k_t = LN₁(h_t) W_k + b_k,   v_t likewise,   K ← [K; k_t],   V ← [V; v_t]     (per layer)
    a_t = MultiHead(q_t, K, V)                  O(t·d) for the new token instead of O(t²·d)

Without the cache every step re-runs :func:`attention_np.lm.lm_forward` on the whole prefix.
Both give the same logits up to rounding (the same sums, in another order).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attention_np.core import linear_core, softmax_core
from attention_np.lm.model import (LMConfig, check_ids, check_lm_params, embed_core, lm_core,
                                   unembed_core)
from attention_np.nn.checks import as_float_array, check_positive_int, check_rng
from attention_np.nn.layers import layer_norm_forward
from attention_np.nn.params import sub
from attention_np.self_attention import (check_qkv, merge_heads_core, sdpa_core,
                                         split_heads_core)
from attention_np.transformer import ffn_sublayer_core


@dataclass
class KVCache:
    """Every layer's keys and values of the first ``length`` positions: ``k[l]``, ``v[l]``
    (B, H, max_len, Dh), filled up to ``length``. :func:`lm_step` writes to it."""
    k: list
    v: list
    length: int = 0


def init_kv_cache(cfg: LMConfig, batch: int, dtype=np.float64) -> KVCache:
    """An empty cache for ``batch`` sequences of up to ``cfg.max_len`` tokens."""
    check_positive_int(batch, "batch")
    shape = (batch, cfg.num_heads, cfg.max_len, cfg.d_model // cfg.num_heads)
    return KVCache([np.zeros(shape, dtype) for _ in range(cfg.num_layers)],
                   [np.zeros(shape, dtype) for _ in range(cfg.num_layers)])


def cached_attention(q, k_new, v_new, k_cache, v_cache, length: int, backend: str = "numpy"):
    """One decoding step of attention with a KV cache: store the new keys and values, attend.

        K[:, :, L:L+Tn] ← k_new,  V[:, :, L:L+Tn] ← v_new      (L = length, written in place)
        out_i = softmax(q_i K[:L+i+1]ᵀ / √D) V[:L+i+1]          new query i sees ≤ L + i

    q, k_new, v_new (B, H, Tn, D); k_cache, v_cache (B, H, max_len, D) with L + Tn ≤ max_len
    → out (B, H, Tn, D), weights (B, H, Tn, L + Tn) (None for backend "numba"). Equals causal
    attention over all L + Tn positions, restricted to the last Tn queries.
    """
    q, k_new, v_new = check_qkv(q, k_new, v_new)
    k_cache = as_float_array(k_cache, "k_cache", ndim=4)
    v_cache = as_float_array(v_cache, "v_cache", ndim=4)
    for name, new, cache in (("k_cache", k_new, k_cache), ("v_cache", v_new, v_cache)):
        if cache.shape[:2] != new.shape[:2] or cache.shape[3] != new.shape[3]:
            raise ValueError(f"{name} with shape {cache.shape} does not hold heads of the new "
                             f"keys' shape {new.shape} (B, H and D must agree)")
    length = check_positive_int(length, "length", minimum=0)
    if length + q.shape[2] > k_cache.shape[2] or k_cache.shape != v_cache.shape:
        raise ValueError(f"length {length} + {q.shape[2]} new positions must fit the caches "
                         f"(k_cache {k_cache.shape}, v_cache {v_cache.shape})")
    return cached_attention_core(q, k_new, v_new, k_cache, v_cache, length, backend)


def cached_attention_core(q, k_new, v_new, k_cache, v_cache, length: int, backend: str):
    """:func:`cached_attention` on checked input."""
    L, Tn = length, q.shape[2]
    k_cache[:, :, L:L + Tn] = k_new
    v_cache[:, :, L:L + Tn] = v_new
    K, V = k_cache[:, :, :L + Tn], v_cache[:, :, :L + Tn]                # (B, H, L + Tn, D)
    mask = None if Tn == 1 else np.arange(L + Tn)[None, :] <= L + np.arange(Tn)[:, None]
    out, weights, _ = sdpa_core(q, K, V, mask, False, backend, 0.0, None)  # (B, H, Tn, D)
    return out, weights


def _cached_attention(z, p, num_heads: int, kv: KVCache, layer: int, backend: str):
    """MultiHead(z W_q, K, V) for the Tn new positions z (B, Tn, d): their keys and values go
    into the cache at [L, L + Tn), and new position i attends to cached positions ≤ L + i."""
    qh, kh, vh = (split_heads_core(linear_core(z, p[f"W_{n}"], p[f"b_{n}"])[0], num_heads)
                  for n in "qkv")                                       # (B, H, Tn, Dh)
    heads, weights = cached_attention_core(qh, kh, vh, kv.k[layer], kv.v[layer], kv.length,
                                           backend)                    # (B, H, Tn, Dh)
    out, _ = linear_core(merge_heads_core(heads), p["W_o"], p["b_o"])  # (B, Tn, d)
    return out, weights


def lm_step(new_ids, params, cfg: LMConfig, kv: KVCache):
    """Run the model on the next tokens new_ids (B, Tn) (positions L … L + Tn − 1, L =
    kv.length) reading earlier positions from the cache, and append theirs to it.

    → logits (B, Tn, V), weights [(B, H, Tn, L + Tn)] per layer (None for backend "numba").
    Each block: h = x + MultiHead(LN₁ x | cache), y = the FFN sub-layer of h (as the block).
    """
    params = check_lm_params(params, cfg)
    if not isinstance(kv, KVCache) or len(kv.k) != cfg.num_layers:
        raise ValueError(f"kv must be a KVCache with {cfg.num_layers} layers (init_kv_cache)")
    new_ids = check_ids(new_ids, cfg, "new_ids", start=kv.length)
    if new_ids.shape[0] != kv.k[0].shape[0]:
        raise ValueError(f"new_ids has {new_ids.shape[0]} rows but kv holds "
                         f"{kv.k[0].shape[0]} sequences (new_ids shape {new_ids.shape})")
    return _lm_step(new_ids, params, cfg, kv)


def _lm_step(ids, p, cfg: LMConfig, kv: KVCache):
    """:func:`lm_step` on checked input."""
    x, _ = embed_core(ids, p, start=kv.length)                         # (B, Tn, d)
    block, weights = cfg.block(), []
    for layer in range(cfg.num_layers):
        bp = sub(p, f"blocks.{layer}")
        z1, _ = layer_norm_forward(x, bp["ln1.gamma"], bp["ln1.beta"], cfg.eps)   # z₁ = LN₁(x)
        a, w = _cached_attention(z1, sub(bp, "attn"), cfg.num_heads, kv, layer, cfg.backend)
        x, _ = ffn_sublayer_core(x + a, bp, block)                     # h = x + a → y
        weights.append(w)
    kv.length += ids.shape[1]
    z, _ = layer_norm_forward(x, p["ln_f.gamma"], p["ln_f.beta"], cfg.eps)          # LN_f
    logits, _ = unembed_core(z, p, cfg)                                 # (B, Tn, V)
    return logits, weights


def _choose(logits, temperature: float, rng):
    """The next token per row: argmax (temperature 0) or a draw from softmax(logits / τ)."""
    if temperature == 0:
        return np.argmax(logits, axis=-1)                               # (B,)
    p, _ = softmax_core(logits / temperature, -1, None)                     # (B, V)
    u = rng.random((p.shape[0], 1))
    return np.minimum((np.cumsum(p, axis=-1) < u).sum(axis=-1), p.shape[1] - 1)


def _check_generate(params, cfg, prompt_ids, max_new_tokens, temperature, rng):
    """Everything :func:`generate` relies on → (params as float arrays, prompt_ids)."""
    params = check_lm_params(params, cfg)
    n = max_new_tokens
    n = check_positive_int(n, "max_new_tokens", minimum=0)
    prompt_ids = check_ids(prompt_ids, cfg, "prompt_ids")
    if prompt_ids.shape[1] + n - 1 > cfg.max_len:                       # the last is not fed
        raise ValueError(f"prompt_ids (shape {prompt_ids.shape}) + max_new_tokens ({n}) − 1 "
                         f"must not exceed max_len {cfg.max_len}")
    number = isinstance(temperature, (int, float, np.integer, np.floating))
    if isinstance(temperature, bool) or not number or not temperature >= 0:
        raise ValueError(f"temperature must be a number ≥ 0, got {temperature!r}")
    if temperature > 0:
        check_rng(rng, f"when temperature > 0 (temperature={temperature})")
    return params, prompt_ids


def generate(params, cfg: LMConfig, prompt_ids, max_new_tokens: int, temperature: float = 0.0,
             rng=None, use_cache: bool = True):
    """w_{t+1} = argmax_v p(v | w_≤t) (temperature 0), or a draw from softmax(logits_t / τ).

    prompt_ids (B, T0) → (ids (B, T0 + n) with the n = max_new_tokens new tokens appended,
    logits (B, n, V) each new token was chosen from). ``use_cache``: the KV cache (a step costs
    O(t)); False re-runs the whole prefix every step (O(t²)). ``rng``: a Generator, needed when
    temperature > 0.
    """
    params, ids = _check_generate(params, cfg, prompt_ids, max_new_tokens, temperature, rng)
    kv = init_kv_cache(cfg, ids.shape[0], params["tok_emb.W"].dtype) if use_cache else None
    fed, step_logits = ids, []                                          # fed: tokens not yet run
    for _ in range(max_new_tokens):
        logits = _lm_step(fed, params, cfg, kv)[0] if use_cache else lm_core(ids, params, cfg)[0]
        step_logits.append(logits[:, -1])                               # (B, V)
        fed = _choose(logits[:, -1], temperature, rng)[:, None]         # (B, 1)
        ids = np.concatenate([ids, fed], axis=1)
    empty = np.zeros((ids.shape[0], 0, cfg.vocab_size), params["tok_emb.W"].dtype)
    return ids, np.stack(step_logits, axis=1) if step_logits else empty
