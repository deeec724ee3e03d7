"""Run the public Numba kernels once on seeded inputs and print a JSON map of
{call: SHA-256 of its outputs}. tests/test_kernel_cache.py runs this twice with one fresh
``NUMBA_CACHE_DIR``: the first process compiles the kernels (and writes the cache), the second
loads them from the cache — and both must print the same bits.

Run as a script: ``python tests/_kernel_cache_probe.py DTYPE [GROUP ...]``, DTYPE float32 or
float64, GROUP among :data:`GROUPS` (default: all of them — compiling every group cold takes
about 70 s on a 2-core machine).
"""
from __future__ import annotations

import hashlib
import json
import sys
import zlib

import numpy as np

from attention_np.kernels import bahdanau, conv, efficient, encoder, flash, recurrent
from attention_np.kernels.matmul import matmul
from attention_np.kernels.softmax import softmax, softmax_backward


def digest(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        for x in ([a[n] for n in sorted(a)] if isinstance(a, dict) else [a]):
            h.update(np.ascontiguousarray(x).tobytes())
    return h.hexdigest()[:16]


def _lstm(r, out):
    B, T, D, H = 6, 7, 5, 32
    mask = np.ones((B, T), bool)
    mask[1, 4:] = False
    hs, h_T, c_T, st = recurrent.lstm_forward(r(B, T, D), r(B, H), r(B, H),
                                              r(D, 4 * H, scale=.3), r(H, 4 * H, scale=.3),
                                              r(4 * H), mask)
    out["lstm"] = digest(hs, h_T, c_T)
    out["lstm_backward"] = digest(*recurrent.lstm_backward(r(B, T, H), r(B, H), r(B, H), st))


def _gru(r, out):
    B, T, D, H = 6, 7, 5, 32
    mask = np.ones((B, T), bool)
    mask[2, 3:] = False
    hs, h_T, st = recurrent.gru_forward(r(B, T, D), r(B, H), r(D, 3 * H, scale=.3),
                                        r(H, 3 * H, scale=.3), r(3 * H), r(3 * H), mask)
    out["gru"] = digest(hs, h_T)
    out["gru_backward"] = digest(*recurrent.gru_backward(r(B, T, H), r(B, H), st))


def _bahdanau(r, out):
    B, T, E, Tk, Hk, A, H = 6, 7, 4, 6, 5, 3, 32
    key_mask = np.ones((B, Tk), bool)
    key_mask[2, 3:] = False
    s, ctx, alpha, st = bahdanau.decoder_forward(
        r(B, T, E), r(B, Tk, Hk), r(B, Tk, A), key_mask, r(B, H), r(B, H), r(H, A), r(A),
        r(E + Hk, 4 * H, scale=.3), r(H, 4 * H, scale=.3), r(4 * H))
    out["bahdanau"] = digest(s, ctx, alpha)
    out["bahdanau_backward"] = digest(*bahdanau.decoder_backward(r(B, T, H), r(B, T, Hk), st))


def _flash(r, out):
    q, k, v = r(2, 3, 9, 4), r(2, 3, 11, 4), r(2, 3, 11, 5)
    for causal in (False, True):
        o, lse = flash.flash_attention_forward(q, k, v, causal=causal)
        out[f"flash_causal={causal}"] = digest(o, lse)
        out[f"flash_backward_causal={causal}"] = digest(*flash.flash_attention_backward(
            r(2, 3, 9, 5), q, k, v, o, lse, causal=causal))


def _efficient(r, out):
    q, k, v = r(2, 3, 9, 4), r(2, 3, 9, 4), r(2, 3, 9, 5)
    o, lse = efficient.sliding_window_attention_forward(q, k, v, window=2)
    out["sliding_window"] = digest(o, lse)
    out["sliding_window_backward"] = digest(*efficient.sliding_window_attention_backward(
        r(2, 3, 9, 5), q, k, v, o, lse, window=2))
    o, den = efficient.linear_attention_forward(q, k, v, causal=True)
    out["linear"] = digest(o, den)
    out["linear_backward"] = digest(*efficient.linear_attention_backward(
        r(2, 3, 9, 5), q, k, v, o, den, causal=True))


def _softmax_matmul(r, out):
    y = softmax(r(4, 7, 9))
    out["softmax"] = digest(y, softmax_backward(y, r(4, 7, 9)))
    out["matmul"] = digest(matmul(r(33, 70), r(70, 29)))


def _encoder(r, out):
    d, heads, ff = 8, 2, 12
    weights = {n: r(d, d, scale=.3) for n in ("W_q", "W_k", "W_v", "W_o")}
    weights.update({n: r(d, scale=.1) for n in ("b_q", "b_k", "b_v", "b_o", "b_2", "ln1_beta",
                                          "ln2_beta")})
    weights.update(W_1=r(d, ff, scale=.3), b_1=r(ff, scale=.1), W_2=r(ff, d, scale=.3),
                   ln1_gamma=1 + r(d, scale=.1), ln2_gamma=1 + r(d, scale=.1))
    for gelu in (False, True):
        y, cache = encoder.run_block(r(3, 5, d), weights, heads, causal=not gelu, gelu=gelu,
                                     eps=1e-5)
        out[f"encoder_block_gelu={gelu}"] = digest(y)
        out[f"encoder_block_backward_gelu={gelu}"] = digest(
            *encoder.run_block_backward(r(3, 5, d), cache))


def _conv(r, out):
    img = r(2, 3, 6, 6)
    cols = conv.im2col(img, (3, 3), (1, 1), (1, 1), (6, 6))
    out["im2col"] = digest(cols)
    out["col2im"] = digest(conv.col2im(cols, img.shape, (3, 3), (1, 1), (1, 1), (6, 6)))
    out["rows_to_nchw"] = digest(conv.rows_to_nchw(r(2 * 36, 4), r(4), (6, 6)))
    pooled, arg = conv.max_pool(img, (2, 2), (2, 2), (0, 0), (3, 3))
    out["max_pool"] = digest(pooled, arg)
    out["max_pool_backward"] = digest(conv.max_pool_backward(r(2, 3, 3, 3), arg, img.shape,
                                                             (2, 2), (2, 2), (0, 0)))


GROUPS = {"lstm": _lstm, "gru": _gru, "bahdanau": _bahdanau, "flash": _flash,
          "efficient": _efficient, "softmax_matmul": _softmax_matmul, "encoder": _encoder,
          "conv": _conv}


def main(dtype: str, groups=()) -> dict:
    """{call: digest} for the kernels of ``groups`` (all when empty), inputs in ``dtype``; each
    group draws from its own seed, so a group's digests do not depend on the others."""
    dt = np.dtype(dtype)
    out = {}
    for name in groups or GROUPS:
        rng = np.random.default_rng(zlib.crc32(name.encode()))

        def r(*shape, scale=1.0, rng=rng):
            return (rng.standard_normal(shape) * scale).astype(dt)
        GROUPS[name](r, out)
    return out


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1] if len(sys.argv) > 1 else "float32", sys.argv[2:])))
