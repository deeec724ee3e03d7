"""Character embedding + bidirectional LSTM encoder (Bahdanau et al., 2015, §3.2).

    e_j = E[x_j],   h→_j = LSTM→(e_j, h→_{j−1}),   h←_j = LSTM←(e_j, h←_{j+1}),   h_j = [h→_j ; h←_j]

The decoder starts from the concatenated final states: s_0 = [h→_L ; h←_1], c_0 likewise.
"""
from __future__ import annotations

import numpy as np

from attention_np.nn import init
from attention_np.nn.layers import embedding_backward, embedding_forward
from attention_np.nn.recurrent import (bidirectional_backward, bidirectional_forward,
                                    init_recurrent_params)
from attention_np.nn.params import prefixed, sub


def init_encoder(cfg, rng) -> dict:
    """Character embeddings E ~ N(0, 0.3²) and two LSTMs (torch's default init).

    Why 0.3: the LSTM's input weights are U(±1/√H), so an input x adds to each gate a term of
    standard deviation ≈ std(E) · √(E / 3H) — 0.12 for 0.3, E = 32, H = 64 — which leaves the
    gates in the linear part of σ and tanh at the start; N(0, 1) rows would push them 3× harder.
    The decoder's target embeddings use the same scale for the same reason.
    """
    dt = cfg.np_dtype
    p = {"src_emb.W": init.normal((cfg.src_vocab, cfg.emb), rng, 0.3, dt)}
    for name in ("enc_f", "enc_b"):
        p.update(prefixed(name, init_recurrent_params("lstm", cfg.emb, cfg.hidden, rng, dt)))
    return p


def encoder_forward(params, src, src_mask, backend: str = "numpy"):
    """src (B, Tk) int, src_mask (B, Tk) bool → keys h (B, Tk, 2H), state0 (h, c) each (B, 2H).
    ``backend="numba"`` runs both LSTM scans on the fused kernels."""
    e, emb_cache = embedding_forward(src, params["src_emb.W"])          # (B, Tk, E)
    hs, (sf, sb), rnn_cache = bidirectional_forward(
        "lstm", e, sub(params, "enc_f"), sub(params, "enc_b"), src_mask, backend)
    state0 = (np.concatenate([sf[0], sb[0]], -1), np.concatenate([sf[1], sb[1]], -1))
    return hs, state0, {"emb": emb_cache, "rnn": rnn_cache}


def encoder_backward(dhs, dstate0, cache) -> dict:
    """dhs (B, Tk, 2H), dstate0 = (dh0, dc0) of the decoder's start → parameter gradients."""
    H = dhs.shape[-1] // 2
    dh, dc = dstate0
    dfinals = ((dh[:, :H], dc[:, :H]), (dh[:, H:], dc[:, H:]))
    de, gf, gb = bidirectional_backward(dhs, cache["rnn"], dfinals)
    grads = {"src_emb.W": embedding_backward(de, cache["emb"])}
    grads.update(prefixed("enc_f", gf))
    grads.update(prefixed("enc_b", gb))
    return grads
