"""Small measured experiments the chapters run at build time (seconds each, NumPy only).

Each function computes with the library's own layers and returns plain numbers; the figure
functions in :mod:`site_code.plots` draw them.
"""
from __future__ import annotations

import numpy as np

import attention_np as an
from attention_np.nn.conv import conv2d_backward, conv2d_forward
from attention_np.nn.recurrent.cells import init_recurrent_params
from attention_np.nn.recurrent.sequences import gru_backward, gru_forward, lstm_backward, lstm_forward


def softmax_saturation(d_ks=(2, 8, 32, 128, 512, 2048), T: int = 32, trials: int = 200,
                       seed: int = 0) -> list[dict]:
    """Scores of random q, k ~ N(0, I) in d_k dimensions, with and without the 1/√d_k scale:
    their spread, how peaked α = softmax(e) is, and how much gradient reaches e.

    ∂L/∂e = softmax_backward(∂L/∂α) for a random upstream gradient ∂L/∂α ~ N(0, I)."""
    rng = np.random.default_rng(seed)
    rows = []
    for d in d_ks:
        q = rng.standard_normal((trials, 1, d))                          # (B, Tq=1, d_k)
        k = rng.standard_normal((trials, T, d))                          # (B, Tk, d_k)
        for scaled, score in ((False, an.dot_score_forward), (True, an.scaled_dot_score_forward)):
            e, _ = score(q, k)                                           # (B, 1, Tk)
            alpha, cache = an.softmax_forward(e)
            de = an.softmax_backward(rng.standard_normal(alpha.shape), cache)
            rows.append({"d_k": d, "scaled": scaled, "score std": float(e.std()),
                         "mean max α": float(alpha.max(axis=-1).mean()),
                         "mean ‖∂L/∂e‖": float(np.linalg.norm(de, axis=-1).mean())})
    return rows


def reinforce_error(e, reward, samples=(10, 30, 100, 300, 1000, 3000), repeats: int = 40,
                    seed: int = 0) -> list[dict]:
    """How far the REINFORCE estimate of ∇_e(−E[r]) is from the exact gradient, against the
    number of samples it averages (mean over ``repeats`` independent estimates)."""
    rng = np.random.default_rng(seed)
    e = np.asarray(e, dtype=np.float64)[None, None]                      # (1, 1, Tk)
    h = np.zeros((1, e.shape[-1], 1))                                    # values do not matter
    alpha = an.softmax_forward(e)[0][0, 0]
    exact = -alpha * (reward - alpha @ reward)
    rows = []
    for n in samples:
        errors = []
        for _ in range(repeats):
            scores = np.broadcast_to(e, (n, 1, e.shape[-1]))             # n samples at once
            values = np.broadcast_to(h, (n,) + h.shape[1:])              # (n, Tk, 1)
            _, index, _, cache = an.hard_attention_forward(scores, values, rng)
            grad = an.hard_attention_backward(np.zeros((n, 1, 1)), cache,
                                              reward[index[:, 0]][:, None])[0]
            errors.append(np.linalg.norm(grad.mean(axis=0)[0] - exact))
        rows.append({"samples": n, "error": float(np.mean(errors))})
    return rows


def gradient_reach(T: int = 48, d: int = 16, trials: int = 8, seed: int = 0,
                   recurrent: str = "lstm", conv_layers: int = 3, conv_width: int = 3) -> dict:
    """‖∂y_T/∂x_j‖ (the last output's sensitivity to input j) against the distance T − j, for a
    recurrent layer (``"lstm"`` or ``"gru"``), a stack of ``conv_layers`` convolutions of width
    ``conv_width`` and one self-attention layer, all at their default initialisation (mean over
    ``trials`` random inputs and parameters)."""
    rng = np.random.default_rng(seed)
    rnn, cnn = recurrent.upper(), f"CNN ({conv_layers} × conv width {conv_width})"
    reach = {rnn: [], cnn: [], "self-attention": []}
    for _ in range(trials):
        x = rng.standard_normal((1, T, d))
        u = rng.standard_normal(d)                                       # dL/dy_T
        dy = np.zeros((1, T, d))
        dy[0, -1] = u
        # LSTM or GRU: y = hs
        params = init_recurrent_params(recurrent, d, d, rng)
        if recurrent == "lstm":
            reach[rnn].append(lstm_backward(dy, lstm_forward(x, None, None, params)[2])[0][0])
        else:
            reach[rnn].append(gru_backward(dy, gru_forward(x, None, params)[2])[0][0])
        # CNN on (N, C, 1, T): 'same' convolutions, tanh between
        reach[cnn].append(_conv_stack_grad(x, dy, rng, conv_layers, conv_width))
        # self-attention: y = MHA(x, x)
        params = an.init_multi_head_params(d, rng)
        _, _, cache = an.multi_head_attention_forward(x, x, params, num_heads=2)
        dx_q, dx_kv, _ = an.multi_head_attention_backward(dy, cache)
        reach["self-attention"].append((dx_q + dx_kv)[0])
    distance = np.arange(T)[::-1]                                        # T − 1 − j
    norms = {k: np.mean([np.linalg.norm(g, axis=-1) for g in v], axis=0)  # (T,) per model
             for k, v in reach.items()}
    return {"distance": distance, **norms}


def _conv_stack_grad(x, dy, rng, layers: int = 3, width: int = 3):
    """∂L/∂x through ``layers`` convolutions (width ``width``, zero 'same' padding) with tanh."""
    h = x.transpose(0, 2, 1)[:, :, None, :]                              # (1, d, 1, T)
    caches = []
    for _ in range(layers):
        d = h.shape[1]
        W = rng.uniform(-1, 1, (d, d, 1, width)) / np.sqrt(d * width)
        h, cache = conv2d_forward(h, W, None, padding=(0, width // 2))
        t, t_cache = an.tanh_forward(h)
        caches.append((cache, t_cache))
        h = t
    g = dy.transpose(0, 2, 1)[:, :, None, :]
    for cache, t_cache in reversed(caches):
        g = conv2d_backward(an.tanh_backward(g, t_cache), cache)[0]
    return g[:, :, 0, :].transpose(0, 2, 1)[0]                           # (T, d)


def order_blindness(T: int = 8, d: int = 16, seed: int = 0) -> list[dict]:
    """The article's §5.2 classifier has no positions: its mean-pooled sentence vector is the
    same for every word order. ‖pool(x) − pool(shuffled x)‖ with and without sinusoidal
    positions, through one encoder block."""
    rng = np.random.default_rng(seed)
    cfg = an.EncoderConfig(d_model=d, num_heads=2, d_ff=32, num_layers=1)
    block = an.init_encoder_block(d, 32, rng)
    words = rng.standard_normal((1, T, d))                               # word embeddings
    rows = []
    for positions in (False, True):
        pe = an.sinusoidal_encoding(T, d)[None] if positions else 0.0
        pooled = []
        for order in (np.arange(T), rng.permutation(T)):
            y = an.encoder_block_forward(words[:, order] + pe, block, cfg)[0]
            pooled.append(y.mean(axis=1)[0])
        rows.append({"positional encoding": "yes" if positions else "no (article §5.2)",
                     "‖pool(x) − pool(shuffled x)‖": float(np.linalg.norm(pooled[0] - pooled[1])),
                     "‖pool(x)‖": float(np.linalg.norm(pooled[0]))})
    return rows


def score_cache_kib(lengths=(16, 64, 256), B: int = 4, D: int = 64, A: int = 64,
                    seed: int = 0) -> list[dict]:
    """KiB each score function's forward keeps in its cache for the backward (float64)."""
    def kib(cache):
        return sum(v.nbytes for v in cache.values() if isinstance(v, np.ndarray)) / 1024
    rng = np.random.default_rng(seed)
    rows = []
    for T in lengths:
        q, k = rng.standard_normal((B, T, D)), rng.standard_normal((B, T, D))
        W, W_q, W_k = (rng.standard_normal((D, A)) for _ in range(3))
        rows.append({"T": T, "dot (KiB)": kib(an.dot_score_forward(q, k)[1]),
                     "scaled dot (KiB)": kib(an.scaled_dot_score_forward(q, k)[1]),
                     "general (KiB)": kib(an.general_score_forward(q, k, W[:, :D])[1]),
                     "additive (KiB)": kib(an.additive_score_forward(q, k, W_q, W_k,
                                                                     rng.standard_normal(A))[1])})
    return rows
