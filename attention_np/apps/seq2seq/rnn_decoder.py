"""LSTM decoders: none (the fixed-vector bottleneck), Bahdanau, and Luong dot/general/concat/local.

Luong (global and local-p, without input feeding): the decoder LSTM runs first, its state s_t
is the query, so attention over all T target steps is one batched call:

    s_t = LSTM(E[y_{t−1}], s_{t−1}),   c_t = attention(s_t, h),   h̃_t = tanh([c_t ; s_t] W_c + b_c)

Bahdanau: the *previous* state is the query and the context is fed into the LSTM, so the
decoder has to loop over time:

    c_t = attention_additive(s_{t−1}, h),   s_t = LSTM([E[y_{t−1}] ; c_t], s_{t−1}),
    h̃_t = tanh([c_t ; s_t] W_c + b_c)

No attention (Sutskever et al. 2014 / Cho et al. 2014): h̃_t = tanh(s_t W_c + b_c). Everything
the decoder knows about the source is the encoder's final state s_0.
Every model ends in logits_t = h̃_t W_s + b_s.
"""
from __future__ import annotations

import numpy as np

from attention_np.core import linear_backward, linear_forward
from attention_np.nn import backend as numba_backend
from attention_np.nn import init
from attention_np.nn.layers import embedding_backward, embedding_forward
from attention_np.nn.recurrent import (init_recurrent_params, lstm_backward, lstm_cell_forward,
                                    lstm_forward)
from attention_np.nn.recurrent.steps import lstm_step, lstm_step_backward
from attention_np.apps.seq2seq.attention import (attention_backward, attention_forward,
                                            bahdanau_step_backward, bahdanau_step_forward,
                                            init_attention)
from attention_np.nn.params import add_grads, linear_params, prefixed, sub

ATTENTION_OF = {"bahdanau": "concat", "luong_dot": "dot", "luong_general": "general",
                "luong_concat": "concat", "luong_local": "local", "none": None}


def init_rnn_decoder(cfg, rng) -> dict:
    dt, Hd, Hk = cfg.np_dtype, cfg.d_model, cfg.d_model
    kind = ATTENTION_OF[cfg.model]
    d_in = cfg.emb + (Hk if cfg.model == "bahdanau" else 0)
    p = {"tgt_emb.W": init.normal((cfg.tgt_vocab, cfg.emb), rng, 0.3, dt)}   # encoder.py: why 0.3
    p.update(prefixed("dec", init_recurrent_params("lstm", d_in, Hd, rng, dt)))
    if kind is not None:
        p.update(prefixed("att", init_attention(kind, Hd, Hk, cfg.attn_dim, rng, dt)))
    p.update(prefixed("out_c", linear_params(rng, Hd + (Hk if kind else 0), Hd, dt)))
    p.update(prefixed("out_s", linear_params(rng, Hd, cfg.tgt_vocab, dt)))
    return p


def _head_forward(params, feats):
    """h̃ = tanh(feats W_c + b_c),  logits = h̃ W_s + b_s.   feats (..., F) → logits (..., V)."""
    a, c1 = linear_forward(feats, params["out_c.W"], params["out_c.b"])
    ht = np.tanh(a)
    logits, c2 = linear_forward(ht, params["out_s.W"], params["out_s.b"])
    return logits, {"out_c": c1, "ht": ht, "out_s": c2}


def _head_backward(dlogits, cache):
    ht = cache["ht"]
    dht, dW_s, db_s = linear_backward(dlogits, cache["out_s"])
    dfeats, dW_c, db_c = linear_backward(dht * (1 - ht * ht), cache["out_c"])   # tanh' = 1 − h̃²
    return dfeats, {"out_c.W": dW_c, "out_c.b": db_c, "out_s.W": dW_s, "out_s.b": db_s}


def _bahdanau_forward(params, e, keys, key_mask, state0, backend="numpy"):
    """The time loop. e (B, T, E) → s (B, T, Hd), c (B, T, Hk), α (B, T, Tk), caches.
    ``backend="numba"``: the whole loop in two fused kernels (:func:`_bahdanau_forward_numba`).

    As in the LSTM scans of :mod:`attention_np.nn.recurrent`, what does not depend on the
    previous step is computed once for all T steps: the keys' projection kp = h W_k and the
    embeddings' share of the LSTM's input, E[y] W_x[:E] + b (the LSTM reads [E[y] ; c_t], so
    x W_x = E[y] W_x[:E] + c_t W_x[E:]); the backward sums the weight gradients over the steps
    in one product each. The gate equations are the LSTM cell's (:func:`lstm_step`).
    """
    if backend == "numba":
        return _bahdanau_forward_numba(params, e, keys, key_mask, state0)
    h, c = state0
    att, dec = sub(params, "att"), sub(params, "dec")
    E = e.shape[-1]
    W_xc, W_h = dec["W_x"][E:], dec["W_h"]                               # (Hk, 4Hd), (Hd, 4Hd)
    kp, kp_cache = linear_forward(keys, att["W_k"])                     # (B, Tk, A), once
    ew = e @ dec["W_x"][:E] + dec["b"]                                  # (B, T, 4Hd), once
    hs, ctxs, weights, h_prev, steps = [], [], [], [], []
    for t in range(e.shape[1]):
        ctx, w, a_cache = bahdanau_step_forward(att, h, kp, keys, key_mask)
        h_prev.append(h)
        (h, c), l_cache = lstm_step(ew[:, t] + ctx @ W_xc, h @ W_h, (h, c), dec)
        hs.append(h), ctxs.append(ctx), weights.append(w)
        steps.append({"att": a_cache, "lstm": l_cache})
    ctxs = np.stack(ctxs, 1)                                            # (B, T, Hk)
    cache = {"steps": steps, "kp": kp_cache, "x": np.concatenate([e, ctxs], -1),
             "h_prev": np.stack(h_prev, 1), "W_x": dec["W_x"], "W_h": W_h}
    return np.stack(hs, 1), ctxs, np.stack(weights, 1), cache


def _bahdanau_backward(dhs, dctx, keys, cache, E):
    """Reverse time loop. Returns (de, dkeys, (dh0, dc0), grads)."""
    if "numba" in cache:
        return _bahdanau_backward_numba(dhs, dctx, cache)
    B, T, _ = dhs.shape
    W_x, W_h = cache["W_x"], cache["W_h"]
    W_xcT, W_hT = W_x[E:].T, W_h.T
    dh_next, dc_next = np.zeros_like(dhs[:, 0]), np.zeros_like(dhs[:, 0])
    da = np.empty((B, T, W_h.shape[1]), dhs.dtype)                     # ∂L/∂(x W_x + h W_h + b)
    dkeys, dkp, grads = np.zeros_like(keys), 0, {}
    for t in reversed(range(T)):
        step = cache["steps"][t]
        da[:, t], _, (_, dc_next) = lstm_step_backward((dhs[:, t] + dh_next, dc_next),
                                                       step["lstm"])
        dq, dkp_t, dk, ga = bahdanau_step_backward(da[:, t] @ W_xcT + dctx[:, t], step["att"])
        dkeys, dkp = dkeys + dk, dkp + dkp_t
        dh_next = da[:, t] @ W_hT + dq          # h_{t−1} fed step t's hw and its query
        add_grads(grads, prefixed("att", ga))
    dk, dW_k, _ = linear_backward(dkp, cache["kp"])                     # kp = h W_k
    grads["att.W_k"] = dW_k
    G = da.shape[-1]
    da2 = da.reshape(-1, G)                                             # (B·T, 4Hd)
    x, h_prev = cache["x"], cache["h_prev"]
    grads.update({"dec.W_x": x.reshape(-1, x.shape[-1]).T @ da2,       # Σ_t x_tᵀ da_t
                  "dec.W_h": h_prev.reshape(-1, h_prev.shape[-1]).T @ da2,
                  "dec.b": da2.sum(0)})
    de = da @ W_x[:E].T                                                 # (B, T, E)
    return de, dkeys + dk, (dh_next, dc_next), grads


def _bahdanau_forward_numba(params, e, keys, key_mask, state0):
    """:func:`_bahdanau_forward` on the fused kernels (attention_np.kernels.bahdanau, through
    attention_np.nn.backend): the same equations, all T steps in one call."""
    att, dec = sub(params, "att"), sub(params, "dec")
    kp, kp_cache = linear_forward(keys, att["W_k"])                     # (B, Tk, A), once
    hs, ctx, weights, state = numba_backend.bahdanau_decoder_forward(
        e, keys, kp, key_mask, *state0, att["W_q"], att["v"], dec["W_x"], dec["W_h"], dec["b"])
    return hs, ctx, weights, {"numba": state, "kp": kp_cache}


def _bahdanau_backward_numba(dhs, dctx, cache):
    """The backward of :func:`_bahdanau_forward_numba`: (de, dkeys, (dh0, dc0), grads)."""
    de, dkeys, dkp, dstate0, g = numba_backend.bahdanau_decoder_backward(dhs, dctx,
                                                                        cache["numba"])
    dk, dW_k, _ = linear_backward(dkp, cache["kp"])                     # kp = h W_k
    grads = {"att.W_q": g["W_q"], "att.v": g["v"], "att.W_k": dW_k, "dec.W_x": g["W_x"],
             "dec.W_h": g["W_h"], "dec.b": g["b"]}
    return de, dkeys + dk, dstate0, grads


def rnn_decoder_forward(cfg, params, keys, key_mask, state0, tgt_in):
    """Teacher-forced decoder. keys (B, Tk, Hk), tgt_in (B, T) int → logits (B, T, V), α, cache.

    α is (B, T, Tk) (zeros for the no-attention model).
    """
    kind = ATTENTION_OF[cfg.model]
    e, e_cache = embedding_forward(tgt_in, params["tgt_emb.W"])          # (B, T, E)
    cache = {"model": cfg.model, "e": e_cache, "E": e.shape[-1], "keys": keys}
    if cfg.model == "bahdanau":
        hs, ctx, weights, cache["bahdanau"] = _bahdanau_forward(params, e, keys, key_mask, state0,
                                                                cfg.backend)
    else:
        hs, _, cache["lstm"] = lstm_forward(e, state0[0], state0[1], sub(params, "dec"),
                                            backend=cfg.backend)
        if kind is None:
            ctx, weights = None, np.zeros(hs.shape[:2] + keys.shape[1:2], hs.dtype)
        else:
            ctx, weights, cache["att"] = attention_forward(
                kind, sub(params, "att"), hs, keys, key_mask, cfg.local_window)
    feats = hs if ctx is None else np.concatenate([ctx, hs], -1)          # (B, T, Hk + Hd)
    logits, cache["head"] = _head_forward(params, feats)
    return logits, weights, cache


def rnn_decoder_backward(dlogits, cache):
    """dlogits (B, T, V) → (dkeys (B, Tk, Hk), (dh0, dc0), grads)."""
    dfeats, grads = _head_backward(dlogits, cache["head"])
    keys, kind = cache["keys"], ATTENTION_OF[cache["model"]]
    Hk = keys.shape[-1] if kind else 0
    dctx, dhs = dfeats[..., :Hk], dfeats[..., Hk:]
    if cache["model"] == "bahdanau":
        de, dkeys, dstate0, g = _bahdanau_backward(dhs, dctx, keys, cache["bahdanau"], cache["E"])
        add_grads(grads, g)
    else:
        dkeys = np.zeros_like(keys)
        if kind is not None:
            dq, dkeys, ga = attention_backward(dctx, cache["att"])
            dhs = dhs + dq
            grads.update(prefixed("att", ga))
        de, dh0, dc0, g = lstm_backward(dhs, cache["lstm"])
        dstate0 = (dh0, dc0)
        grads.update(prefixed("dec", g))
    grads["tgt_emb.W"] = embedding_backward(de, cache["e"])
    return dkeys, dstate0, grads


def rnn_decoder_step(cfg, params, keys, key_mask, y_prev, state):
    """One inference step. y_prev (N,) int, state (h, c) → logits (N, V), new state, α (N, Tk)."""
    kind = ATTENTION_OF[cfg.model]
    h, c = state
    e = params["tgt_emb.W"][y_prev]                                       # (N, E)
    att, dec = sub(params, "att"), sub(params, "dec")
    if cfg.model == "bahdanau":
        kp = keys @ att["W_k"]                          # re-projected per step: fine at inference
        ctx, w, _ = bahdanau_step_forward(att, h, kp, keys, key_mask)
        ctx, w = ctx[:, None], w[:, None]
        h, c, _ = lstm_cell_forward(np.concatenate([e, ctx[:, 0]], -1), h, c, dec)
    else:
        h, c, _ = lstm_cell_forward(e, h, c, dec)
        if kind is None:
            ctx, w = None, np.zeros((h.shape[0], 1, keys.shape[1]), h.dtype)
        else:
            ctx, w, _ = attention_forward(kind, att, h[:, None], keys, key_mask, cfg.local_window)
    feats = h if ctx is None else np.concatenate([ctx[:, 0], h], -1)
    logits, _ = _head_forward(params, feats)
    return logits, (h, c), w[:, 0]
