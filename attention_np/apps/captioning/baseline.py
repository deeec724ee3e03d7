"""The article's printed captioning decoder, kept as a labelled baseline.

Its RNNDecoder does, in PyTorch terms:

    hiddens = lstm(cat(features, embeddings))                  # features: ONE vector per image
    attn_weights = softmax(Linear(hidden→1)(hiddens), dim=1)   # over the decoder's time steps
    context = sum(attn_weights * hiddens, dim=1)
    output = Linear(context)

The attention runs over the decoder's *own LSTM states*, not over image regions: the image
enters only as the pooled vector f = mean_i a_i, so no weight is ever attached to a location
and the model cannot say where a word came from. Read literally, the sum over dim 1 also mixes
all T steps into one vector, future words included; to get one prediction per step without
reading the answer we apply the same score causally:

    e_s = h_s w + b,   α_ts = softmax_{s ≤ t}(e_s),   c_t = Σ_{s ≤ t} α_ts h_s,
    p(y_t) = softmax(c_t W_o + b_o),   h_1 … h_T = LSTM([f, E y_{t−1}]).
"""
from __future__ import annotations

import numpy as np

from attention_np.apps.captioning.encoder import (encoder_backward, encoder_forward,
                                             init_encoder_params)
from attention_np.core import causal_mask, linear_backward, linear_forward
from attention_np.decoding import beam_search
from attention_np.nn import init
from attention_np.nn.init import xavier_uniform, zeros
from attention_np.nn.layers import embedding_backward, embedding_forward
from attention_np.nn.losses import cross_entropy_backward, cross_entropy_forward, log_softmax
from attention_np.nn.params import prefixed, sub
from attention_np.nn.recurrent import init_recurrent_params, lstm_backward, lstm_forward
from attention_np.soft import soft_attention_backward, soft_attention_forward


def init_baseline_params(cfg, rng, dtype=np.float64) -> dict:
    """Same encoder as Show-Attend-Tell; ``cfg`` a CaptionConfig (vocab, embed, hidden).
    ``E`` (the same N(0, 0.1²) as Show-Attend-Tell's, for a like-for-like comparison),
    ``att.*`` (the score e_s = h_s W + b), ``out.*`` and ``lstm.*``."""
    D, m, H, V = cfg.channels[-1], cfg.embed, cfg.hidden, cfg.vocab
    p = init_encoder_params(cfg.image_shape, cfg.channels, rng, dtype, cfg.block_pools)
    p.update({"E": init.normal((V, m), rng, 0.1, dtype),
              "att.W": xavier_uniform((H, 1), rng, dtype), "att.b": zeros(1, dtype),
              "out.W": xavier_uniform((H, V), rng, dtype), "out.b": zeros(V, dtype)})
    p.update(prefixed("lstm", init_recurrent_params("lstm", D + m, H, rng, dtype)))
    return p


def baseline_decoder_forward(a, tokens, p):
    """a (B, L, D), tokens (B, T) → logits (B, T, V), weights over own states (B, T, T), cache."""
    B, T = tokens.shape
    f = a.mean(axis=1)                                              # (B, D) pooled feature
    emb, ec = embedding_forward(tokens, p["E"])                     # (B, T, m)
    x = np.concatenate([np.repeat(f[:, None], T, axis=1), emb], axis=2)   # (B, T, D + m)
    hs, _, lc = lstm_forward(x, None, None, sub(p, "lstm"))         # (B, T, H)
    e, sc = linear_forward(hs, p["att.W"], p["att.b"])              # (B, T, 1)
    scores = np.broadcast_to(e[:, None, :, 0], (B, T, T))           # row t: e_1 … e_T
    ctx, weights, ac = soft_attention_forward(scores, hs, mask=causal_mask(T))   # (B, T, H)
    logits, oc = linear_forward(ctx, p["out.W"], p["out.b"])        # (B, T, V)
    cache = {"ec": ec, "lc": lc, "sc": sc, "ac": ac, "oc": oc, "L": a.shape[1],
             "D": a.shape[2]}
    return logits, weights, cache


def baseline_decoder_backward(dlogits, cache):
    """dlogits (B, T, V) → (da (B, L, D), grads)."""
    dctx, dW_out, db_out = linear_backward(dlogits, cache["oc"])
    dscores, dhs = soft_attention_backward(dctx, cache["ac"])
    de = dscores.sum(axis=1)[..., None]                             # e_s feeds every row t ≥ s
    dhs_att, datt_w, datt_b = linear_backward(de, cache["sc"])
    dx, _, _, lstm_grads = lstm_backward(dhs + dhs_att, cache["lc"])
    D, L = cache["D"], cache["L"]
    grads = {"out.W": dW_out, "out.b": db_out, "att.W": datt_w, "att.b": datt_b,
             "E": embedding_backward(dx[..., D:], cache["ec"])}
    grads.update(prefixed("lstm", lstm_grads))
    df = dx[..., :D].sum(axis=1)                                    # (B, D)
    return np.repeat(df[:, None] / L, L, axis=1), grads


def baseline_loss_and_grads(params, cfg, images, captions):
    """Cross-entropy of the teacher-forced captions: images (B, H, W), captions (B, T + 1)
    → (stats, grads keyed like params)."""
    a, enc_cache = encoder_forward(images, params, cfg.block_pools, cfg.backend)
    inputs, targets = captions[:, :-1], captions[:, 1:]
    logits, _, cache = baseline_decoder_forward(a, inputs, params)
    ce, ce_cache = cross_entropy_forward(logits, np.where(targets != cfg.pad, targets, -100))
    da, grads = baseline_decoder_backward(cross_entropy_backward(1.0, ce_cache), cache)
    grads.update(encoder_backward(da, enc_cache))
    return {"loss": float(ce), "ce": float(ce)}, grads


def baseline_generate(params, cfg, images, beam_size: int = 3, max_len: int = 7):
    """Beam search (attention_np.decoding); the state is the prefix so far (the model re-reads
    it at every step) → (tokens (B, max_len), log-prob (B,))."""
    a, _ = encoder_forward(images, params, cfg.block_pools, cfg.backend)

    def step(tokens, state, context):
        prefix = np.concatenate([state[0], tokens[:, None]], axis=1)   # (N, t + 1)
        logits, _, _ = baseline_decoder_forward(context[0], prefix, params)
        no_image_attention = np.zeros((len(tokens), 1))
        return log_softmax(logits[:, -1]), (prefix,), no_image_attention

    empty_prefix = (np.zeros((len(images), 0), dtype=np.int64),)
    tokens, _, score = beam_search(step, empty_prefix, (a,), cfg.start, cfg.end, beam_size,
                                   max_len, cfg.pad)
    return tokens, score
