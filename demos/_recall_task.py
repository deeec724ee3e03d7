"""Associative recall over a long sequence: the task that shows what a local window cannot reach.

A sequence of T tokens holds filler symbols and ``n_pairs`` (key, value) tokens; the last token
asks "which value went with key κ?". The queried pair sits ``distance`` positions before the
question. The model is one attention layer and an MLP readout:

    h = x W_in + b_in                      (B, T, d)   x: one-hot features of each token
    q, k, v = h W_q, h W_k, h W_v          (B, 1, T, d) one head
    z = attend(q, k, v)[:, 0, T − 1]       (B, d)       the question token's output
    logits = relu(z W_1 + b_1) W_2 + b_2   (B, n_values)

so the answer has to travel from the pair to the last position through a single attention step:
a window of w < distance cannot carry it, unless the question is a global token.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attention_np.nn.activations import relu_backward, relu_forward
from attention_np.core import linear_backward, linear_forward
from attention_np.nn.init import xavier_uniform
from attention_np.nn.losses import cross_entropy_backward, cross_entropy_forward
from attention_np.nn.optim import Adam
from demos._progress import progress


@dataclass
class RecallConfig:
    T: int = 128            # sequence length (question at position T − 1)
    n_keys: int = 8
    n_values: int = 8
    n_pairs: int = 4        # (key, value) tokens per sequence, distinct keys
    n_filler: int = 8
    d_model: int = 32
    d_hidden: int = 64
    steps: int = 600
    batch: int = 64
    lr: float = 3e-3
    seed: int = 0

    @property
    def n_features(self) -> int:        # type (filler / pair / question) + key + value + filler
        return 3 + self.n_keys + self.n_values + self.n_filler


def _distinct(rng: np.random.Generator, B: int, n: int, k: int) -> np.ndarray:
    """(B, k): k distinct integers from [0, n) in each row."""
    return np.argsort(rng.random((B, n)), axis=1)[:, :k]


def make_batch(cfg: RecallConfig, rng: np.random.Generator, B: int):
    """x (B, T, n_features) one-hot features, target value (B,), distance of the queried pair (B,).

    Pair 0 is the queried one; it sits ``distance`` tokens before the question at T − 1.
    """
    T, nk, nv, P = cfg.T, cfg.n_keys, cfg.n_values, cfg.n_pairs
    rows = np.arange(B)[:, None]
    x = np.zeros((B, T, cfg.n_features))
    x[:, :, 0] = 1                                                  # type: filler …
    x[rows, np.arange(T)[None, :], 3 + nk + nv + rng.integers(0, cfg.n_filler, (B, T))] = 1
    distance = rng.integers(1, T, B)
    target = T - 1 - distance                                       # (B,) queried pair's position
    others = _distinct(rng, B, T - 2, P - 1)                        # other pairs: skip the target
    others += others >= target[:, None]
    pos = np.concatenate([target[:, None], others], axis=1)         # (B, P), pair 0 first
    keys, values = _distinct(rng, B, nk, P), rng.integers(0, nv, (B, P))
    x[rows, pos] = 0
    x[rows, pos, 1] = 1
    x[rows, pos, 3 + keys] = 1
    x[rows, pos, 3 + nk + values] = 1
    x[:, T - 1] = 0
    x[:, T - 1, 2] = 1                                              # question: key of pair 0
    x[np.arange(B), T - 1, 3 + keys[:, 0]] = 1
    return x, values[:, 0], distance


def init_params(cfg: RecallConfig, rng: np.random.Generator) -> dict:
    d, h = cfg.d_model, cfg.d_hidden
    shapes = {"W_in": (cfg.n_features, d), "W_q": (d, d), "W_k": (d, d), "W_v": (d, d),
              "W_1": (d, h), "W_2": (h, cfg.n_values)}
    params = {n: xavier_uniform(s, rng) for n, s in shapes.items()}
    params.update(b_in=np.zeros(d), b_1=np.zeros(h), b_2=np.zeros(cfg.n_values))
    return params


def forward(params: dict, x: np.ndarray, attend):
    """Logits (B, n_values) and the cache. ``attend(q, k, v, params) -> (out, backward)``."""
    h, c_in = linear_forward(x, params["W_in"], params["b_in"])      # (B, T, d)
    qkv = [linear_forward(h, params[f"W_{n}"]) for n in "qkv"]
    q, k, v = (t[:, None] for t, _ in qkv)                           # (B, 1, T, d)
    out, attn_backward = attend(q, k, v, params)                     # (B, 1, T, d)
    z = out[:, 0, -1]                                                # (B, d) question token
    a, c_1 = linear_forward(z, params["W_1"], params["b_1"])
    r, c_r = relu_forward(a)
    logits, c_2 = linear_forward(r, params["W_2"], params["b_2"])
    cache = {"in": c_in, "qkv": [c for _, c in qkv], "attn": attn_backward, "out_shape": out.shape,
             "1": c_1, "r": c_r, "2": c_2}
    return logits, cache


def backward(dlogits: np.ndarray, cache: dict) -> dict:
    grads = {}
    dr, grads["W_2"], grads["b_2"] = linear_backward(dlogits, cache["2"])
    dz, grads["W_1"], grads["b_1"] = linear_backward(relu_backward(dr, cache["r"]), cache["1"])
    dout = np.zeros(cache["out_shape"])
    dout[:, 0, -1] = dz
    dq, dk, dv, extra = cache["attn"](dout)
    grads.update(extra)
    dh = 0
    for n, d, c in zip("qkv", (dq, dk, dv), cache["qkv"]):
        dh_n, grads[f"W_{n}"], _ = linear_backward(d[:, 0], c)
        dh = dh + dh_n
    _, grads["W_in"], grads["b_in"] = linear_backward(dh, cache["in"])
    return grads


def train(cfg: RecallConfig, attend, extra_params: dict | None = None, desc: str = "") -> tuple:
    """Adam on fresh batches; returns (params, losses)."""
    rng = np.random.default_rng(cfg.seed)
    params = {**init_params(cfg, rng), **(extra_params or {})}
    opt, losses = Adam(lr=cfg.lr), []
    with progress(cfg.steps, desc or "  recall", every=max(cfg.steps // 5, 1)) as bar:
        for step in range(cfg.steps):
            x, y, _ = make_batch(cfg, rng, cfg.batch)
            logits, cache = forward(params, x, attend)
            loss, ce_cache = cross_entropy_forward(logits, y)
            opt.step(params, backward(cross_entropy_backward(1.0, ce_cache), cache))
            losses.append(float(loss))
            bar.set_postfix(loss=float(np.mean(losses[-50:])))
            bar.update()
    return params, losses


def accuracy_by_distance(cfg: RecallConfig, params: dict, attend, n: int = 2000,
                         bins: int = 8, seed: int = 123) -> tuple:
    """(bin edges, accuracy per distance bin, overall accuracy) on fresh sequences."""
    rng = np.random.default_rng(seed)
    correct, dist = [], []
    for _ in range(-(-n // 250)):
        x, y, d = make_batch(cfg, rng, 250)
        logits, _ = forward(params, x, attend)
        correct.append(np.argmax(logits, axis=-1) == y)
        dist.append(d)
    correct, dist = np.concatenate(correct), np.concatenate(dist)
    edges = np.linspace(1, cfg.T, bins + 1)
    which = np.clip(np.digitize(dist, edges) - 1, 0, bins - 1)
    acc = np.array([correct[which == b].mean() for b in range(bins)])
    return edges, acc, float(correct.mean())
