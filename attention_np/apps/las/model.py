"""Listen, Attend and Spell (Chan et al., 2016), small: pyramidal BiLSTM listener + LSTM speller
with location-aware attention. One config, one parameter dict, a loss with its gradient."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attention_np.apps.las.listener import init_listener, listener_backward, listener_forward
from attention_np.apps.las.speller import init_speller, speller_backward, speller_forward
from attention_np.nn.backend import check_backend
from attention_np.nn.losses import cross_entropy_backward, cross_entropy_forward


@dataclass
class LASConfig:
    n_mels: int = 40
    vocab: int = 13              # <pad> <start> <end> and the ten digits
    listener_hidden: int = 64    # per direction; the listener's output has 2 × this
    listener_layers: int = 2     # each halves the frame rate: ×4 fewer frames with 2
    emb: int = 16
    speller_hidden: int = 96
    attn_dim: int = 64
    conv_filters: int = 8        # K location filters …
    conv_width: int = 15         # … of width r (odd)
    pad: int = 0
    start: int = 1
    end: int = 2
    max_len: int = 8
    dtype: str = "float32"
    backend: str = "numpy"       # "numba": the listener's LSTM scans run on the fused kernels

    def __post_init__(self):
        check_backend(self.backend)


def init_las(cfg: LASConfig, rng) -> dict:
    dt = np.dtype(cfg.dtype)
    p = init_listener(cfg.n_mels, cfg.listener_hidden, rng, dt, cfg.listener_layers)
    p.update(init_speller(cfg.vocab, cfg.emb, 2 * cfg.listener_hidden, cfg.speller_hidden,
                          cfg.attn_dim, cfg.conv_filters, cfg.conv_width, rng, dt))
    return p


def loss_and_grads(params, cfg: LASConfig, x, mask, y_in, y_out):
    """Mean cross-entropy of the next token under teacher forcing, and its gradient.

    x (B, T, n_mels), mask (B, T), y_in = <start> y₁ … and y_out = y₁ … <end> (B, L), padded
    with cfg.pad → (loss, grads keyed like params, alignments α (B, L, T')).
    """
    h, hmask, listener_cache = listener_forward(params, x.astype(cfg.dtype), mask,
                                                      cfg.backend)
    logits, alphas, speller_cache = speller_forward(params, h, hmask, y_in)
    loss, ce_cache = cross_entropy_forward(logits, y_out, ignore_index=cfg.pad)
    dh, grads = speller_backward(cross_entropy_backward(1.0, ce_cache), speller_cache)
    grads.update(listener_backward(dh, listener_cache))
    return float(loss), grads, alphas
