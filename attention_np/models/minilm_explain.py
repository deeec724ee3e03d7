"""Explaining MiniLM's sentence similarity with gradients: which attention edges and which input
tokens the cosine similarity of two sentence embeddings depends on.

    s = cos(u_a, u_b) = u_a · u_b,      u = normalize(mean_t y_t)

* :func:`similarity_with_grads` runs forward and backward for s, giving ∂s/∂A for every
  attention matrix and ∂s/∂x for the input embeddings of both sentences.
* :func:`gradient_weighted_relevance` is Chefer, Gur & Wolf (2021), "Generic Attention-model
  Explainability", rule for self-attention encoders:
      Ā_l = mean_h (∇A_l ⊙ A_l)⁺,   R ← R + Ā_l R  (l = 1 … L, R starts at I)
* :func:`input_saliency`: gradient × input per token, |Σ_d x_td ∂s/∂x_td|.
"""
from __future__ import annotations

import numpy as np

from attention_np.core import linear_forward
from attention_np.models.minilm_layers import l2_normalize_backward, l2_normalize_forward
from attention_np.nn.layers import masked_mean_backward, masked_mean_forward
from attention_np.nn.params import sub
from attention_np.self_attention import split_heads


def similarity_with_grads(model, text_a: str, text_b: str) -> dict:
    """s = cos(encode(a), encode(b)) and its gradients, both sentences in one padded batch.

    Returns a dict with ``similarity`` (float) and, per sentence (lists of two): ``tokens``,
    ``attentions`` (L, H, T, T), ``dattentions`` = ∂s/∂A (L, H, T, T), ``inputs_embeds``
    (T, d) and ``dinputs_embeds`` = ∂s/∂x (T, d), trimmed to the sentence's real tokens.
    Needs the numpy backend (the flash kernel keeps no attention weights).
    """
    ids, mask, tokens = model.tokenize_batch([text_a, text_b])
    hidden, attentions, cache = model.forward_batch(ids, mask, backend="numpy")
    pooled, c_pool = masked_mean_forward(hidden, mask)                     # (2, d)
    u, c_norm = l2_normalize_forward(pooled)                               # (2, d)
    similarity = float(u[0] @ u[1])
    du = u[::-1].copy()                  # s = u_0·u_1 → ∂s/∂u_0 = u_1, ∂s/∂u_1 = u_0
    dhidden = masked_mean_backward(l2_normalize_backward(du, c_norm), c_pool)
    grads = model.backward(dhidden, cache)
    lengths = mask.sum(axis=1)
    x = cache["inputs_embeds"]                                             # (2, T, d)

    def trim(a, b):
        T = lengths[b]
        return a[b, ..., :T, :T] if a.ndim == 5 else a[b, :T]

    return {"similarity": similarity, "tokens": tokens,
            "attentions": [trim(attentions, b) for b in range(2)],
            "dattentions": [trim(grads["attentions"], b) for b in range(2)],
            "inputs_embeds": [trim(x, b) for b in range(2)],
            "dinputs_embeds": [trim(grads["inputs_embeds"], b) for b in range(2)]}


def gradient_weighted_relevance(attentions, dattentions) -> np.ndarray:
    """Chefer et al. (2021): Ā_l = mean_h (∂s/∂A_l ⊙ A_l)⁺,  R ← R + Ā_l R, from R = I.

    attentions, dattentions (L, H, T, T) → R (T, T); ``R[i, j]`` is the relevance of input
    token j for output token i. Only the positive part of gradient × attention counts: edges
    that raise s.
    """
    a = np.asarray(attentions, dtype=np.float64)
    g = np.asarray(dattentions, dtype=np.float64)
    if a.ndim != 4 or a.shape != g.shape or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"attentions and dattentions must both be (L, H, T, T), got "
                         f"{a.shape} and {g.shape}")
    R = np.eye(a.shape[-1])
    for a_l, g_l in zip(a, g):
        cam = np.maximum(g_l * a_l, 0).mean(axis=0)                         # (T, T)
        R = R + cam @ R
    return R


def input_saliency(inputs_embeds, dinputs_embeds) -> np.ndarray:
    """Gradient × input per token: |Σ_d x_td ∂s/∂x_td|.   (T, d), (T, d) → (T,)."""
    return np.abs((np.asarray(inputs_embeds) * np.asarray(dinputs_embeds)).sum(axis=-1))


def queries_keys(model, cache, layer: int):
    """The per-head queries and keys of ``layer`` for a batch run by ``model.forward_batch``:
    q = split(x_l W_q + b_q), k = split(x_l W_k + b_k) from the hidden states x_l the layer read
    → q, k (B, H, T, Dh) (for attention atlases; scores are q kᵀ / √Dh)."""
    x, p = cache["layer_inputs"][layer], sub(model.params, f"blocks.{layer}.attn")  # (B, T, d)
    H = model.config.encoder.num_heads
    q, _ = linear_forward(x, p["W_q"], p["b_q"])                             # (B, T, d)
    k, _ = linear_forward(x, p["W_k"], p["b_k"])                             # (B, T, d)
    return split_heads(q, H), split_heads(k, H)                              # (B, H, T, Dh)
