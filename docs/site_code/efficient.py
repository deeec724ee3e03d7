"""Chapter 12's measurements: memory of exact attention against the efficient variants, and
how far each variant's output is from exact attention (NumPy only, seconds)."""
from __future__ import annotations

import tracemalloc

import numpy as np

import attention_np as an
from attention_np import efficient as ef


def variants(T: int, D: int, rng, budget: int = 16) -> dict:
    """name → f(q, k, v) for exact attention and each variant at a comparable budget
    (keys per side, block size, random features, rank)."""
    W = ef.orthogonal_random_features(4 * budget, D, rng)
    layout = ef.block_layout(-(-T // budget), -(-T // budget), window=1)
    return {
        "exact": lambda q, k, v: an.scaled_dot_product_attention_forward(q, k, v)[0],
        f"sliding window w={budget}": lambda q, k, v: ef.sliding_window_attention_forward(
            q, k, v, budget)[0],
        f"block-sparse b={budget}": lambda q, k, v: ef.block_sparse_attention_forward(
            q, k, v, layout, budget)[0],
        "linear (elu+1)": lambda q, k, v: ef.linear_attention_forward(q, k, v)[0],
        f"Performer m={4 * budget}": lambda q, k, v: ef.performer_attention_forward(q, k, v, W)[0],
        f"Linformer r={budget}, mean-pool": lambda q, k, v: ef.linformer_attention_forward(
            q, k, v, ef.mean_pool_projections(budget, T))[0],
    }


def peak_memory(lengths=(256, 512, 1024, 2048), D: int = 32, seed: int = 0) -> dict:
    """Peak NumPy allocation (tracemalloc, MiB) of one forward pass, per variant and T."""
    rng = np.random.default_rng(seed)
    peaks: dict[str, list[float]] = {}
    for T in lengths:
        q, k, v = (rng.standard_normal((1, 1, T, D)) * 0.5 for _ in range(3))
        for name, f in variants(T, D, rng).items():
            tracemalloc.start()
            f(q, k, v)
            peaks.setdefault(name, []).append(tracemalloc.get_traced_memory()[1] / 2 ** 20)
            tracemalloc.stop()
    return {"T": list(lengths), **peaks}


def local_queries(T: int, D: int, rng, width: float = 3.0):
    """q, k, v (1, 1, T, D) where query i's best keys lie within about ``width`` positions of
    i (sinusoidal position features plus noise), as in a language model's local heads."""
    pe = an.sinusoidal_encoding(T, D)
    q = pe * width + 0.3 * rng.standard_normal((T, D))
    k = pe * width + 0.3 * rng.standard_normal((T, D))
    v = 1.0 + rng.standard_normal((T, D))
    return q[None, None], k[None, None], v[None, None]


def approximation_error(T: int = 512, D: int = 32, seed: int = 0) -> list[dict]:
    """‖out − exact‖ / ‖exact‖ of every variant for a broad head (random q, k ~ N(0, ¼): every
    key gets some weight) and a local one (:func:`local_queries`); values v ~ N(1, I)."""
    rng = np.random.default_rng(seed)
    broad = [rng.standard_normal((1, 1, T, D)) * 0.5 for _ in range(2)]
    inputs = {"broad head": (*broad, 1.0 + rng.standard_normal((1, 1, T, D))),
              "local head": local_queries(T, D, rng)}
    rows = []
    for name in variants(T, D, rng):
        row = {"variant": name}
        for label, (q, k, v) in inputs.items():
            fs = variants(T, D, np.random.default_rng(seed))
            exact, out = fs["exact"](q, k, v), fs[name](q, k, v)
            row[label] = float(np.linalg.norm(out - exact) / np.linalg.norm(exact))
        rows.append(row)
    return rows[1:]
