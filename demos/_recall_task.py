"""Associative recall over a long sequence: the task that shows what a local window cannot reach.

A sequence of T tokens holds filler symbols and ``n_pairs`` (key, value) tokens; a question
token asks "which value went with key κ?". The queried pair sits ``distance`` positions before
its question. The model is one attention layer and an MLP readout at each question position:

    h = x W_in + b_in                      (B, T, d)    x: one-hot features of each token
    q, k, v = h W_q, h W_k, h W_v          (B, 1, T, d) one head
    z = attend(q, k, v)[:, 0, p_j]         (B, Q, d)    the output at question j's position p_j
    logits = relu(z W_1 + b_1) W_2 + b_2   (B, Q, n_values)

so the answer has to travel from the pair to the question through a single attention step: a
window of w < distance cannot carry it, unless the question is a global token.

Two settings. ``n_queries = 1``: one question, always the last token (p = T − 1) — so a sparse
pattern can make that one position global, which turns its row into exact attention. With
``n_queries > 1`` the questions stand at random positions, each after its own pair, and
distractor pairs fill the rest: no fixed position is "the question", so no global token can
stand in for exact attention (multi-query associative recall).
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
    n_queries: int = 1      # questions per sequence (1: the last token; more: random places)
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


def _last_question_layout(cfg: RecallConfig, rng, B: int):
    """One question at T − 1; pair 0, ``distance`` ~ U{1 … T − 1} before it, is the queried
    one → pair positions (B, P), question positions (B, 1)."""
    T, P = cfg.T, cfg.n_pairs
    distance = rng.integers(1, T, B)
    target = T - 1 - distance                                       # (B,) queried pair's position
    others = _distinct(rng, B, T - 2, P - 1)                        # other pairs: skip the target
    others += others >= target[:, None]
    return np.concatenate([target[:, None], others], axis=1), np.full((B, 1), T - 1)


def _random_questions_layout(cfg: RecallConfig, rng, B: int):
    """Q questions at random positions: 2Q distinct positions make Q (pair, question) couples,
    the earlier one the pair; P − Q more distinct positions hold distractor pairs
    → pair positions (B, P) (pairs 0 … Q − 1 queried, in order), question positions (B, Q)."""
    Q, P = cfg.n_queries, cfg.n_pairs
    pos = _distinct(rng, B, cfg.T, P + Q)                           # (B, P + Q)
    couples = pos[:, :2 * Q].reshape(B, Q, 2)
    pairs = np.concatenate([couples.min(axis=2), pos[:, 2 * Q:]], axis=1)
    return pairs, couples.max(axis=2)


def make_batch(cfg: RecallConfig, rng: np.random.Generator, B: int):
    """x (B, T, n_features) one-hot features, target values (B, Q), distances of the queried
    pairs to their questions (B, Q), question positions (B, Q). Question j asks for pair j."""
    T, nk, nv, P, Q = cfg.T, cfg.n_keys, cfg.n_values, cfg.n_pairs, cfg.n_queries
    if not 1 <= Q <= P <= nk or (Q > 1 and 2 * Q + P - Q > T):
        raise ValueError(f"need 1 ≤ n_queries ≤ n_pairs ≤ n_keys and room for them in T, got "
                         f"{Q}, {P}, {nk}, T={T}")
    layout = _last_question_layout if Q == 1 else _random_questions_layout
    pos, qpos = layout(cfg, rng, B)                                 # (B, P), (B, Q)
    rows = np.arange(B)[:, None]
    x = np.zeros((B, T, cfg.n_features))
    x[:, :, 0] = 1                                                  # type: filler …
    x[rows, np.arange(T)[None, :], 3 + nk + nv + rng.integers(0, cfg.n_filler, (B, T))] = 1
    keys, values = _distinct(rng, B, nk, P), rng.integers(0, nv, (B, P))
    for where, kind in ((pos, 1), (qpos, 2)):                       # pairs, then questions
        x[rows, where] = 0
        x[rows, where, kind] = 1
    x[rows, pos, 3 + keys] = 1
    x[rows, pos, 3 + nk + values] = 1
    x[rows, qpos, 3 + keys[:, :Q]] = 1                              # question j: key of pair j
    return x, values[:, :Q], qpos - pos[:, :Q], qpos


def init_params(cfg: RecallConfig, rng: np.random.Generator) -> dict:
    d, h = cfg.d_model, cfg.d_hidden
    shapes = {"W_in": (cfg.n_features, d), "W_q": (d, d), "W_k": (d, d), "W_v": (d, d),
              "W_1": (d, h), "W_2": (h, cfg.n_values)}
    params = {n: xavier_uniform(s, rng) for n, s in shapes.items()}
    params.update(b_in=np.zeros(d), b_1=np.zeros(h), b_2=np.zeros(cfg.n_values))
    return params


def forward(params: dict, x: np.ndarray, qpos: np.ndarray, attend):
    """Logits (B, Q, n_values) at the question positions ``qpos`` (B, Q), and the cache.
    ``attend(q, k, v, params) -> (out, backward)``."""
    h, c_in = linear_forward(x, params["W_in"], params["b_in"])      # (B, T, d)
    qkv = [linear_forward(h, params[f"W_{n}"]) for n in "qkv"]
    q, k, v = (t[:, None] for t, _ in qkv)                           # (B, 1, T, d)
    out, attn_backward = attend(q, k, v, params)                     # (B, 1, T, d)
    rows = np.arange(len(x))[:, None]
    z = out[rows, 0, qpos]                                           # (B, Q, d) question tokens
    a, c_1 = linear_forward(z, params["W_1"], params["b_1"])
    r, c_r = relu_forward(a)
    logits, c_2 = linear_forward(r, params["W_2"], params["b_2"])
    cache = {"in": c_in, "qkv": [c for _, c in qkv], "attn": attn_backward, "out_shape": out.shape,
             "qpos": qpos, "1": c_1, "r": c_r, "2": c_2}
    return logits, cache


def backward(dlogits: np.ndarray, cache: dict) -> dict:
    grads = {}
    dr, grads["W_2"], grads["b_2"] = linear_backward(dlogits, cache["2"])
    dz, grads["W_1"], grads["b_1"] = linear_backward(relu_backward(dr, cache["r"]), cache["1"])
    dout = np.zeros(cache["out_shape"])
    dout[np.arange(len(dz))[:, None], 0, cache["qpos"]] = dz        # distinct positions per row
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
            x, y, _, qpos = make_batch(cfg, rng, cfg.batch)
            logits, cache = forward(params, x, qpos, attend)              # (B, Q, n_values)
            loss, ce_cache = cross_entropy_forward(logits, y)             # mean over B·Q
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
        x, y, d, qpos = make_batch(cfg, rng, 250)
        logits, _ = forward(params, x, qpos, attend)
        correct.append((np.argmax(logits, axis=-1) == y).ravel())
        dist.append(d.ravel())
    correct, dist = np.concatenate(correct), np.concatenate(dist)
    edges = np.linspace(1, cfg.T, bins + 1)
    which = np.clip(np.digitize(dist, edges) - 1, 0, bins - 1)
    acc = np.array([correct[which == b].mean() for b in range(bins)])
    return edges, acc, float(correct.mean())
