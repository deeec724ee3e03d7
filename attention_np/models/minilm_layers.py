"""The parts of a BERT encoder (Devlin et al. 2019) around its layers, as forward/backward pairs.

    embeddings:  e = LN(W_word[ids] + W_pos[0 … T−1] + W_type[type_ids])
    each layer:  a = MultiHead(x, x, x),  h = LN₁(x + a),
                 f = GELU(h W₁ + b₁) W₂ + b₂,  y = LN₂(h + f)   (post-LN, exact erf GELU)
                 — that is :func:`attention_np.transformer.encoder_block_forward`
    pooling:     s = Σ_t m_t y_t / Σ_t m_t,  u = s / ‖s‖             (sentence-transformers)

Shapes: ids (B, T) int, key mask (B, T) bool (True = real token), hidden (B, T, d).
Parameters use the row-vector convention of attention_np: ``y = x @ W + b`` with W (d_in, d_out).
"""
from __future__ import annotations

import numpy as np

from attention_np.nn.layers import (embedding_backward, embedding_forward, layer_norm_backward,
                                    layer_norm_forward)


# --- embeddings ------------------------------------------------------------------------------

def bert_embeddings_forward(ids, type_ids, p, eps):
    """x = W_word[ids] + W_pos[t] + W_type[type_ids],  e = LN(x).

    ids, type_ids (B, T) int; p the tables ``word.W``, ``position.W``, ``type.W`` and the norm's
    ``ln.gamma``, ``ln.beta`` → e (B, T, d), x (B, T, d) (the "input embeddings" whose gradient
    :func:`bert_embeddings_backward` returns, for explanations), cache.
    """
    T = ids.shape[1]
    words, c_word = embedding_forward(ids, p["word.W"])                     # (B, T, d)
    positions, c_pos = embedding_forward(np.arange(T)[None, :], p["position.W"])  # (1, T, d)
    types, c_type = embedding_forward(type_ids, p["type.W"])               # (B, T, d)
    x = words + positions + types
    e, c_ln = layer_norm_forward(x, p["ln.gamma"], p["ln.beta"], eps)
    return e, x, {"word": c_word, "pos": c_pos, "type": c_type, "ln": c_ln}


def bert_embeddings_backward(de, cache):
    """Returns (dx (B, T, d) — the gradient w.r.t. the summed input embeddings — and the
    parameter gradients). The sum x = words + positions + types passes dx to each table."""
    dx, dgamma, dbeta = layer_norm_backward(de, cache["ln"])
    grads = {"word.W": embedding_backward(dx, cache["word"]),
             "position.W": embedding_backward(dx.sum(axis=0, keepdims=True), cache["pos"]),
             "type.W": embedding_backward(dx, cache["type"]),
             "ln.gamma": dgamma, "ln.beta": dbeta}
    return dx, grads


# --- sentence embedding: mean pooling and L2 normalisation -----------------------------------

# Mean pooling is attention_np.nn.layers.masked_mean_forward/backward.


def l2_normalize_forward(s, eps: float = 1e-12):
    """u = s / max(‖s‖, ε) row-wise.   s (B, d) → u (B, d)."""
    norm = np.maximum(np.linalg.norm(s, axis=-1, keepdims=True), eps)        # (B, 1)
    u = s / norm
    return u, {"u": u, "norm": norm}


def l2_normalize_backward(du, cache):
    """ds = (du − u (u·du)) / ‖s‖: the gradient with its component along u removed."""
    u, norm = cache["u"], cache["norm"]
    return (du - u * (u * du).sum(axis=-1, keepdims=True)) / norm
