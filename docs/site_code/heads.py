"""One head or several? A task where every position must report the tokens just before it.

Input x_t = [one-hot token (V) | sinusoidal position (P)], d_model = V + P. One causal
multi-head self-attention layer, then a linear read-out to one V-way softmax per offset:
"token at t−1", "token at t−2" (and "token at t−3" … with ``offsets=3`` …). The number of heads
H changes nothing else (same d_model, same number of parameters).

One head must mix the two positions into one weighted average, α v_{t−1} + (1 − α) v_{t−2}:
the linear read-out can recover the larger part but not both. Two heads can each look at one
position and Concat keeps the two answers apart.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import attention_np as an
from attention_np.nn.optim import Adam


@dataclass(frozen=True)
class TaskConfig:
    vocab: int = 8          # V
    positions: int = 8      # P sinusoidal features
    length: int = 12        # T
    batch: int = 64
    steps: int = 600
    lr: float = 1e-2
    offsets: int = 2        # N: report the tokens at t−1 … t−N


def make_batch(cfg: TaskConfig, rng):
    """x (B, T, V + P) and targets (B, T, N): tokens at t−1 … t−N (−100 where none)."""
    tokens = rng.integers(0, cfg.vocab, (cfg.batch, cfg.length))           # (B, T)
    pe = an.sinusoidal_encoding(cfg.length, cfg.positions)      # (T, P)
    x = np.concatenate([np.eye(cfg.vocab)[tokens],
                        np.broadcast_to(pe, (cfg.batch,) + pe.shape)], axis=-1)
    targets = np.full((cfg.batch, cfg.length, cfg.offsets), -100)
    for n in range(1, cfg.offsets + 1):
        targets[:, n:, n - 1] = tokens[:, :-n]                           # token at t − n
    return x, targets


def init_model(cfg: TaskConfig, rng) -> dict:
    d = cfg.vocab + cfg.positions
    return {**an.init_multi_head_params(d, rng),
            "W_out": an.init.xavier_uniform((d, cfg.offsets * cfg.vocab), rng),
            "b_out": np.zeros(cfg.offsets * cfg.vocab)}


def loss_and_grads(params, cfg: TaskConfig, heads: int, x, targets):
    """Cross-entropy of the N read-outs; gradients of every parameter, by hand."""
    B, T, _ = x.shape
    attn = {k: v for k, v in params.items() if not k.endswith("_out")}
    y, weights, cache_attn = an.multi_head_attention_forward(x, x, attn, heads, causal=True)
    logits, cache_out = an.linear_forward(y, params["W_out"], params["b_out"])     # (B, T, N·V)
    loss, cache_ce = an.cross_entropy_forward(logits.reshape(B, T, cfg.offsets, cfg.vocab),
                                              targets)
    dlogits = an.cross_entropy_backward(1.0, cache_ce).reshape(logits.shape)
    dy, dW_out, db_out = an.linear_backward(dlogits, cache_out)
    _, _, grads = an.multi_head_attention_backward(dy, cache_attn)   # x is data: no dx needed
    return loss, {**grads, "W_out": dW_out, "b_out": db_out}, logits, weights


def train_and_score(cfg: TaskConfig, heads: int, seed: int = 0) -> dict:
    """Adam for ``cfg.steps`` steps; accuracy of each read-out on 20 fresh batches."""
    rng = np.random.default_rng(seed)
    params, opt = init_model(cfg, rng), Adam(lr=cfg.lr)
    for _ in range(cfg.steps):
        x, targets = make_batch(cfg, rng)
        _, grads, _, _ = loss_and_grads(params, cfg, heads, x, targets)
        opt.step(params, grads)
    hits, weights = [], None
    for _ in range(20):
        x, targets = make_batch(cfg, rng)
        _, _, logits, weights = loss_and_grads(params, cfg, heads, x, targets)
        pred = logits.reshape(*targets.shape, cfg.vocab).argmax(-1)             # (B, T, N)
        hits.append((pred == targets)[:, cfg.offsets:])                # t ≥ N: all N exist
    hits = np.concatenate(hits)
    return {"heads": heads,
            **{f"token at t−{n + 1}": float(hits[..., n].mean()) for n in range(cfg.offsets)},
            ("both right" if cfg.offsets == 2 else "all right"): float(hits.all(-1).mean()),
            "weights": weights[0]}
