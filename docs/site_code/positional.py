"""Chapter 7's experiment: a task that only order can decide, learned with no position
information, sinusoidal encodings, learned positions and rotary embeddings, at the same budget.

The task: a row of T tokens holds filler words and exactly one ``A`` and one ``B`` at random
places; is A before B? The bag of words is the same either way, so a model that cannot see
order is at chance (½), however long it trains. The model: token embeddings (+ positions,
added for sinusoidal and learned), one multi-head self-attention layer (RoPE rotates its
queries and keys instead), the mean over positions, a linear read-out to two classes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import attention_np as an
from attention_np.nn.params import prefixed
from attention_np.self_attention import merge_heads_core, split_heads_core

VARIANTS = ("none", "sinusoidal", "learned", "rotary")
A, B, FILLER = 0, 1, 10                       # ids 0 and 1; fillers 2 … 11


@dataclass(frozen=True)
class Setup:
    d: int = 16
    heads: int = 2
    train_lengths: tuple = (6, 12)            # T drawn per batch from this range
    test_lengths: tuple = (12, 24)            # in range, and twice as long as trained
    max_len: int = 24                         # the learned table's rows (12 … 23 never trained)
    steps: int = 600
    batch: int = 64
    lr: float = 1e-2


def make_rows(rng, n: int, T: int):
    """n rows of T ids with one A and one B at distinct random positions → (ids, A first?)."""
    ids = rng.integers(2, 2 + FILLER, size=(n, T))
    where = np.argsort(rng.random((n, T)), axis=1)[:, :2]              # two distinct positions
    rows = np.arange(n)
    ids[rows, where[:, 0]], ids[rows, where[:, 1]] = A, B
    return ids, (where[:, 0] < where[:, 1]).astype(np.int64)


def init(variant: str, s: Setup, rng) -> dict:
    p = {"emb.W": rng.standard_normal((2 + FILLER, s.d)),
         **prefixed("attn", an.init_multi_head_params(s.d, rng)),
         "out.W": an.init.xavier_uniform((s.d, 2), rng), "out.b": np.zeros(2)}
    if variant == "learned":
        p["pos.W"] = 0.5 * rng.standard_normal((s.max_len, s.d))
    return p


def forward(ids, p: dict, variant: str, s: Setup):
    """logits (n, 2) of rows ids (n, T), and the cache of :func:`backward`."""
    T = ids.shape[1]
    x, c_emb = an.embedding_forward(ids, p["emb.W"])                      # (n, T, d)
    c_pos = None
    if variant == "sinusoidal":
        x = x + an.sinusoidal_encoding(T, s.d)
    elif variant == "learned":
        pos, c_pos = an.learned_positions_forward(np.arange(T), p["pos.W"])
        x = x + pos
    proj = {n: an.linear_forward(x, p[f"attn.W_{n}"], p[f"attn.b_{n}"]) for n in "qkv"}
    q, k, v = (split_heads_core(proj[n][0], s.heads) for n in "qkv")       # (n, H, T, Dh)
    c_rope = {}
    if variant == "rotary":
        (q, c_rope["q"]), (k, c_rope["k"]) = (an.rope_forward(t, np.arange(T)) for t in (q, k))
    heads, _, c_att = an.scaled_dot_product_attention_forward(q, k, v)
    a, c_o = an.linear_forward(merge_heads_core(heads), p["attn.W_o"], p["attn.b_o"])
    pooled = (x + a).mean(axis=1)                                          # residual, mean
    logits, c_out = an.linear_forward(pooled, p["out.W"], p["out.b"])      # (n, 2)
    return logits, {"emb": c_emb, "pos": c_pos, "proj": {n: c for n, (_, c) in proj.items()},
                    "rope": c_rope, "att": c_att, "o": c_o, "out": c_out, "T": T,
                    "variant": variant, "heads": s.heads}


def backward(dlogits, c) -> dict:
    """Gradients of every parameter for dlogits (n, 2)."""
    g = {}
    dpooled, g["out.W"], g["out.b"] = an.linear_backward(dlogits, c["out"])
    dh = np.repeat(dpooled[:, None, :], c["T"], axis=1) / c["T"]          # h = x + a
    dmerged, g["attn.W_o"], g["attn.b_o"] = an.linear_backward(dh, c["o"])
    dq, dk, dv = an.scaled_dot_product_attention_backward(
        split_heads_core(dmerged, c["heads"]), c["att"])
    if c["variant"] == "rotary":
        dq, dk = an.rope_backward(dq, c["rope"]["q"]), an.rope_backward(dk, c["rope"]["k"])
    dx = dh.copy()
    for n, d in zip("qkv", (dq, dk, dv)):
        dxn, g[f"attn.W_{n}"], g[f"attn.b_{n}"] = an.linear_backward(merge_heads_core(d),
                                                                     c["proj"][n])
        dx += dxn
    if c["pos"] is not None:
        g["pos.W"] = an.learned_positions_backward(dx.sum(axis=0), c["pos"])
    g["emb.W"] = an.embedding_backward(dx, c["emb"])
    return g


def accuracy(p, variant, s: Setup, T: int, n: int = 2000, seed: int = 99) -> float:
    ids, labels = make_rows(np.random.default_rng(seed + T), n, T)
    return float((forward(ids, p, variant, s)[0].argmax(axis=1) == labels).mean())


def run(setup: Setup = Setup(), seed: int = 0) -> list[dict]:
    """Train each variant for ``setup.steps`` Adam steps on the same batches; accuracy on
    held-out rows at each test length."""
    rows = []
    for variant in VARIANTS:
        rng = np.random.default_rng(seed)
        p, opt = init(variant, setup, rng), an.Adam(lr=setup.lr)
        data = np.random.default_rng(seed + 1)                  # the same batches for all
        for _ in range(setup.steps):
            T = int(data.integers(setup.train_lengths[0], setup.train_lengths[1] + 1))
            ids, labels = make_rows(data, setup.batch, T)
            logits, cache = forward(ids, p, variant, setup)
            loss, c_ce = an.cross_entropy_forward(logits, labels)
            opt.step(p, backward(an.cross_entropy_backward(1.0, c_ce), cache))
        rows.append({"positions": variant, "train_steps": setup.steps,
                     **{f"accuracy T={T}": accuracy(p, variant, setup, T)
                        for T in setup.test_lengths}})
    return rows
