"""A self-attention text classifier (article §5.2): tokens → [CLS] + embeddings + positions →
Transformer encoder → the [CLS] vector → class logits, with its backward pass by hand.

    x_t = E[w_t] + PE(t)                           (B, T, d)    PE: sinusoidal, Vaswani et al.
    h = Encoder_L(… Encoder_1(Dropout(x)))         (B, T, d)    padding keys masked out
    logits = h_[CLS] W_c + b_c                     (B, C)

With pre-LN blocks (``encoder.norm_first``) the stack ends in a final LayerNorm, as in GPT-2
and torch's ``TransformerEncoder(norm=...)``.

``pooling="mean"`` is the baseline without attention (a bag of words): no positions, no
encoder, the mean of the word embeddings (``[CLS]`` left out) into the same linear layer:

    logits = (1/n) Σ_{t=1…n} E[w_t] W_c + b_c     (B, C)

Token 0 of every sequence is the [CLS] token; ``lengths`` count it. Parameters live in one
flat dict (``"tok_emb.W"``, ``"blocks.{l}.attn.W_q"`` …, ``"ln_f.gamma"`` for pre-LN,
``"head.W"``, ``"head.b"``) so that the optimisers of :mod:`attention_np.nn.optim` update them
directly.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from attention_np.core import linear_backward, linear_forward, padding_mask
from attention_np.nn.init import normal, xavier_uniform, zeros
from attention_np.nn.layers import (dropout_backward, dropout_forward, embedding_backward,
                                    embedding_forward, masked_mean_backward, masked_mean_forward)
from attention_np.nn.losses import cross_entropy_backward, cross_entropy_forward
from attention_np.positional import sinusoidal_encoding
from attention_np.transformer import EncoderConfig, encoder_backward, encoder_forward, init_encoder


@dataclass(frozen=True)
class SentimentConfig:
    """Vocabulary and class counts, the longest input (with [CLS]) and the encoder's shape."""
    vocab_size: int
    num_classes: int = 5
    max_len: int = 64
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    pooling: str = "cls"        # "cls": the encoder's [CLS] vector; "mean": bag-of-words baseline

    def __post_init__(self):
        if self.pooling not in ("cls", "mean"):
            raise ValueError(f"pooling must be 'cls' or 'mean', got {self.pooling!r}")


def init_sentiment_classifier(config: SentimentConfig, rng: np.random.Generator,
                              dtype=np.float32) -> dict:
    """E ~ N(0, 1) (V, d) like torch's nn.Embedding (entries of unit scale, as the sinusoidal
    positions in [−1, 1] added to them), the encoder blocks, W_c Xavier (d, C)."""
    d = config.encoder.d_model
    params = {"tok_emb.W": normal((config.vocab_size, d), rng, dtype=dtype)}
    if config.pooling == "cls":
        params.update(init_encoder(config.encoder, rng, dtype))   # blocks.{l}.*, ln_f (pre-LN)
    params["head.W"] = xavier_uniform((d, config.num_classes), rng, dtype)
    params["head.b"] = zeros(config.num_classes, dtype)
    return params


def sentiment_forward(ids, lengths, params: dict, config: SentimentConfig, rng=None,
                      training: bool = False, backend: str = "numpy"):
    """ids int (B, T) with [CLS] at t = 0, lengths (B,) ≤ T → logits (B, C),
    [attention weights (B, H, T, T) per layer], cache."""
    ids = np.asarray(ids)
    B, T = ids.shape
    if T > config.max_len:
        raise ValueError(f"ids has T={T} positions, more than config.max_len={config.max_len}")
    if config.pooling == "mean":
        return _mean_pool_forward(ids, np.asarray(lengths), params)
    enc = config.encoder
    pad = padding_mask(np.asarray(lengths), T)                           # (B, T) True = real
    x, emb_cache = embedding_forward(ids, params["tok_emb.W"])           # (B, T, d)
    x = x + sinusoidal_encoding(T, enc.d_model, dtype=x.dtype)
    x, drop_cache = dropout_forward(x, enc.dropout, rng, training)
    h, weights, enc_cache = encoder_forward(x, params, enc, mask=pad[:, None, None, :], rng=rng,
                                            training=training, backend=backend)
    logits, cls_cache = linear_forward(h[:, 0], params["head.W"], params["head.b"])  # (B, C)
    cache = {"emb": emb_cache, "drop": drop_cache, "enc": enc_cache, "cls": cls_cache,
             "h_shape": h.shape}
    return logits, weights, cache


def _mean_pool_forward(ids, lengths, params: dict):
    """The bag-of-words baseline: logits = mean of E[w_t] over the words (t ≥ 1) W_c + b_c."""
    x, emb_cache = embedding_forward(ids, params["tok_emb.W"])           # (B, T, d)
    words = padding_mask(lengths, ids.shape[1])                          # (B, T) True = real
    words[:, 0] = False                                                  # [CLS] is no word
    pooled, pool_cache = masked_mean_forward(x, words)                   # (B, d)
    logits, cls_cache = linear_forward(pooled, params["head.W"], params["head.b"])   # (B, C)
    return logits, [], {"emb": emb_cache, "pool": pool_cache, "cls": cls_cache}


def _mean_pool_backward(dlogits, cache) -> dict:
    dpooled, dW, db = linear_backward(dlogits, cache["cls"])
    dx = masked_mean_backward(dpooled, cache["pool"])                    # (B, T, d)
    return {"tok_emb.W": embedding_backward(dx, cache["emb"]), "head.W": dW, "head.b": db}


def sentiment_backward(dlogits, cache, return_dweights: bool = False):
    """Gradients of every parameter, keyed like the params dict; with ``return_dweights``
    also [∂L/∂α (B, H, T, T) per layer] for the attention weights the forward returned."""
    if "pool" in cache:                                                  # pooling="mean"
        grads = _mean_pool_backward(dlogits, cache)
        return (grads, []) if return_dweights else grads
    dh_cls, dW, db = linear_backward(dlogits, cache["cls"])
    dh = np.zeros(cache["h_shape"], dtype=dh_cls.dtype)
    dh[:, 0] = dh_cls                          # only the [CLS] position reaches the classifier
    dx, grads, dweights = encoder_backward(dh, cache["enc"], return_dweights=True)
    dx = dropout_backward(dx, cache["drop"])   # the positional encoding is fixed: no gradient
    grads.update({"tok_emb.W": embedding_backward(dx, cache["emb"]), "head.W": dW, "head.b": db})
    return (grads, dweights) if return_dweights else grads


def loss_and_grads(params: dict, config: SentimentConfig, ids, lengths, labels, rng=None,
                   training: bool = True):
    """Mean cross-entropy of the logits for one batch → (loss, grads, logits)."""
    logits, _, cache = sentiment_forward(ids, lengths, params, config, rng, training)
    loss, ce_cache = cross_entropy_forward(logits, np.asarray(labels))
    return float(loss), sentiment_backward(cross_entropy_backward(1.0, ce_cache), cache), logits


def predict(ids, lengths, params: dict, config: SentimentConfig, batch_size: int = 256,
            return_weights: bool = False):
    """Class predictions (N,) in evaluation mode; with ``return_weights`` also the attention
    weights of every layer, each (N, H, T, T) padded to ids' width T."""
    preds, weights = [], []
    for s in range(0, len(ids), batch_size):
        chunk, lens = ids[s:s + batch_size], lengths[s:s + batch_size]
        width = int(lens.max())
        logits, w, _ = sentiment_forward(chunk[:, :width], lens, params, config)
        preds.append(logits.argmax(axis=-1))
        if return_weights:
            pad = ((0, 0), (0, 0), (0, ids.shape[1] - width), (0, ids.shape[1] - width))
            weights.append([np.pad(a, pad) for a in w])
    preds = np.concatenate(preds)
    if not return_weights:
        return preds
    return preds, [np.concatenate([w[l] for w in weights]) for l in range(len(weights[0]))]


def ablate_head(params: dict, layer: int, head: int, num_heads: int) -> dict:
    """A copy of ``params`` in which head ``head`` of block ``layer`` contributes nothing:
    the rows of W_o that read its slice of Concat(head_1 … head_H) are set to zero."""
    key = f"blocks.{layer}.attn.W_o"
    W_o = params[key].copy()                                             # (H·Dh, d)
    dh = W_o.shape[0] // num_heads
    W_o[head * dh:(head + 1) * dh] = 0
    return {**params, key: W_o}


def role_scores(weights, token_classes, lengths, classes, query: int = 0) -> np.ndarray:
    """How much more attention a head gives a word class than that class's share of tokens.

        score(h, c) = Σ_n Σ_{j ∈ c} α_n[h, q, j]  /  Σ_n |{j ∈ c}| / L_n

    over the sentences n that contain class c (L_n real tokens, [CLS] included), for the
    query position ``q`` (default [CLS]). 1 = attention proportional to frequency.
    weights (N, H, T, T); token_classes (N, T) of class names → (H, len(classes)).
    """
    weights = np.asarray(weights)
    real = padding_mask(np.asarray(lengths), weights.shape[-1])          # (N, T)
    scores = np.zeros((weights.shape[1], len(classes)))
    for i, c in enumerate(classes):
        member = (np.asarray(token_classes) == c) & real                # (N, T)
        present = member.any(axis=1)
        if not present.any():
            scores[:, i] = np.nan
            continue
        mass = (weights[present, :, query, :] * member[present, None, :]).sum(axis=(0, 2))  # (H,)
        share = (member[present].sum(axis=1) / real[present].sum(axis=1)).sum()
        scores[:, i] = mass / share
    return scores
