"""The one door from the library to its Numba kernels (:mod:`attention_np.kernels`).

Layers that offer ``backend="numba"`` call the functions here and nothing else of the kernels
package; each takes arrays and plain numbers the caller has already checked, imports the
kernels on first use (so ``import attention_np`` never starts Numba) and hands back a state the
caller keeps in its cache and passes to the matching backward untouched.

    backend="numpy"   the readable reference: every layer as the site teaches it
    backend="numba"   the same function on fused kernels: flash attention (no (Tq, Tk) weights
                      are formed, so none are returned), a fused post-LN encoder block,
                      LSTM / GRU scans over whole sequences (forward and backward through time)
                      the translator's Bahdanau decoder (attention + LSTM cell, all steps)
                      and the data movement of the im2col convolution and of max pooling
                      (bit for bit the NumPy layer's results: the products stay NumPy's)
"""
from __future__ import annotations

import contextlib

import numpy as np

BACKENDS = ("numpy", "numba")


def check_backend(backend) -> str:
    """``backend`` is one of :data:`BACKENDS`, or ValueError."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    return backend


def _kernels():
    from attention_np import kernels          # sets Numba's compile flags before any compile
    return kernels


# --- flash attention: scaled dot-product attention of any leading shape ----------------------

def _as_bhtd(x: np.ndarray) -> np.ndarray:
    """(..., T, D) → (B, H, T, D) for the kernels (leading dims folded into B)."""
    return x if x.ndim == 4 else x.reshape((-1, 1) + x.shape[-2:])


def flash_sdpa_forward(q, k, v, mask, causal: bool):
    """softmax(q kᵀ/√D, masked) v without forming the weights.

    q (..., Tq, D), k (..., Tk, D), v (..., Tk, Dv) float arrays of one rank; mask boolean
    broadcast to (..., Tq, Tk) or None → (out (..., Tq, Dv), state for the backward)."""
    mask4 = mask if mask is None or q.ndim == 4 else mask.reshape((-1, 1) + mask.shape[-2:])
    out, lse = _kernels().flash_attention_forward(_as_bhtd(q), _as_bhtd(k), _as_bhtd(v),
                                                  mask=mask4, causal=causal)
    state = {"q": q, "k": k, "v": v, "out": out, "lse": lse, "mask": mask4, "causal": causal}
    return out.reshape(q.shape[:-1] + (v.shape[-1],)), state


def flash_sdpa_backward(dout, state):
    """(dq, dk, dv) in the shapes of the forward's q, k, v, for dout (..., Tq, Dv)."""
    q, k, v = state["q"], state["k"], state["v"]
    dq, dk, dv = _kernels().flash_attention_backward(
        _as_bhtd(np.asarray(dout, dtype=q.dtype)), _as_bhtd(q), _as_bhtd(k), _as_bhtd(v),
        state["out"], state["lse"], mask=state["mask"], causal=state["causal"])
    return dq.reshape(q.shape), dk.reshape(k.shape), dv.reshape(v.shape)


# --- the fused post-LN encoder block ---------------------------------------------------------

def fused_block_covers(norm_first: bool, mlp: bool, activation: str, dropout_active: bool) -> bool:
    """Whether the fused block computes a block of this shape: post-LN with the FFN, ReLU or
    GELU, and no dropout active (other blocks run in NumPy with flash attention)."""
    return not norm_first and mlp and not dropout_active and activation in ("relu", "gelu")


def fused_block_forward(x, weights: dict, num_heads: int, causal: bool, gelu: bool, eps: float,
                        mask=None):
    """y = LN₂(h + FFN(h)), h = LN₁(x + MultiHead(x)) on x (B, T, d); ``weights`` named as
    :data:`attention_np.kernels.encoder.WEIGHTS`; mask bool broadcast to (B, H, T, T) or None
    → (y (B, T, d), state)."""
    from attention_np.kernels import encoder
    return encoder.run_block(x, weights, num_heads, causal, gelu, eps, mask)


def fused_block_backward(dy, state):
    """(dx (B, T, d), grads named as the forward's ``weights``) for dy (B, T, d)."""
    from attention_np.kernels import encoder
    return encoder.run_block_backward(dy, state)


def fused_packed_blocks(rows, lengths, layers: list[dict], num_heads: int, causal: bool,
                        gelu: bool, eps: float) -> np.ndarray:
    """Inference on sequences stored back to back without padding: rows (N, d) (sequence b at
    rows Σ_{b'<b} lengths[b'] …) through the post-LN blocks ``layers`` (each a ``weights``
    dict as for :func:`fused_block_forward`) → rows (N, d). Every token sees its own sequence
    only; the products, norms and activations cost nothing for padding. No cache is kept."""
    from attention_np.kernels import encoder
    rows = np.ascontiguousarray(rows)
    for weights in layers:
        rows = encoder.run_packed(rows, lengths, weights, num_heads, causal, gelu, eps)
    return rows


def fused_segment_mean_normalize(rows, lengths) -> np.ndarray:
    """u_b = s_b / ‖s_b‖, s_b the mean of sequence b's rows, for rows stored back to back as in
    :func:`fused_packed_blocks` → (B, d)."""
    from attention_np.kernels import encoder, fused
    starts, lengths, _ = encoder.packed_layout(lengths)
    u = np.empty((len(lengths), rows.shape[1]), rows.dtype)
    fused.segment_mean_normalize(np.ascontiguousarray(rows), starts, lengths, u)
    return u


# --- recurrent layers: LSTM / GRU scans over padded sequences --------------------------------

def lstm_sequence_forward(x, h0, c0, W_x, W_h, b, mask):
    """The LSTM scan of :mod:`attention_np.nn.recurrent` on fused kernels: x (B, T, D), h0, c0
    (B, H), W_x (D, 4H), W_h (H, 4H), b (4H,), mask (B, T) bool or None
    → (hs (B, T, H), h_T, c_T, state for :func:`lstm_sequence_backward`)."""
    from attention_np.kernels import recurrent
    return recurrent.lstm_forward(x, h0, c0, W_x, W_h, b, mask)


def lstm_sequence_backward(dhs, dh_T, dc_T, state):
    """(dx (B, T, D), dh0, dc0, grads keyed W_x, W_h, b) for dhs (B, T, H), dh_T, dc_T (B, H)
    or None (zeros)."""
    from attention_np.kernels import recurrent
    return recurrent.lstm_backward(dhs, dh_T, dc_T, state)


def gru_sequence_forward(x, h0, W_x, W_h, b_x, b_h, mask):
    """The GRU scan on fused kernels: x (B, T, D), h0 (B, H), W_x (D, 3H), W_h (H, 3H), b_x,
    b_h (3H,), mask (B, T) bool or None → (hs (B, T, H), h_T, state)."""
    from attention_np.kernels import recurrent
    return recurrent.gru_forward(x, h0, W_x, W_h, b_x, b_h, mask)


def gru_sequence_backward(dhs, dh_T, state):
    """(dx (B, T, D), dh0, grads keyed W_x, W_h, b_x, b_h) for dhs (B, T, H), dh_T (B, H) or
    None (zeros)."""
    from attention_np.kernels import recurrent
    return recurrent.gru_backward(dhs, dh_T, state)


# --- the Bahdanau decoder of the translator (attention_np.apps.seq2seq) ----------------------

def bahdanau_decoder_forward(e, keys, kp, key_mask, h0, c0, W_q, v, W_x, W_h, b):
    """All T teacher-forced steps of additive attention + the LSTM cell on fused kernels:
    e (B, T, E), keys (B, Tk, Hk), kp = keys W_k (B, Tk, A), key_mask (B, Tk) bool, h0, c0
    (B, Hd), W_q (Hd, A), v (A,), W_x (E + Hk, 4Hd), W_h (Hd, 4Hd), b (4Hd,)
    → (s (B, T, Hd), ctx (B, T, Hk), α (B, T, Tk), state for the backward)."""
    from attention_np.kernels import bahdanau
    return bahdanau.decoder_forward(e, keys, kp, key_mask, h0, c0, W_q, v, W_x, W_h, b)


def bahdanau_decoder_backward(dhs, dctx, state):
    """(de (B, T, E), dkeys through the context (B, Tk, Hk), dkp (B, Tk, A), (dh0, dc0),
    grads keyed W_q, v, W_x, W_h, b) for dhs (B, T, Hd), dctx (B, T, Hk)."""
    from attention_np.kernels import bahdanau
    return bahdanau.decoder_backward(dhs, dctx, state)


# --- convolution and max pooling (attention_np.nn.conv): the copies around the products ------

def conv_im2col(x, kernel, stride, padding, out_hw):
    """The column matrix (N·Ho·Wo, C·kh·kw) of x (N, C, H, W), padding read as zeros; kernel,
    stride, padding, out_hw: (along H, along W) pairs."""
    from attention_np.kernels import conv
    return conv.im2col(np.ascontiguousarray(x), kernel, stride, padding, out_hw)


def conv_col2im(dcols, x_shape, kernel, stride, padding, out_hw):
    """col2im: the gradient (N, C, H, W) of x for the gradient of its column matrix."""
    from attention_np.kernels import conv
    return conv.col2im(dcols, x_shape, kernel, stride, padding, out_hw)


def conv_rows_to_nchw(rows, b, out_hw):
    """(N·Ho·Wo, F) product rows (+ bias (F,) or None) → (N, F, Ho, Wo)."""
    from attention_np.kernels import conv
    return conv.rows_to_nchw(rows, b, out_hw)


def max_pool2d_forward(x, kernel, stride, padding, out_hw):
    """(y (N, C, Ho, Wo), argmax within each window (N, C, Ho, Wo)) of x (N, C, H, W)."""
    from attention_np.kernels import conv
    return conv.max_pool(np.ascontiguousarray(x), kernel, stride, padding, out_hw)


def max_pool2d_backward(dy, arg, x_shape, kernel, stride, padding):
    """dx (N, C, H, W): dy added at each window's maximum."""
    from attention_np.kernels import conv
    return conv.max_pool_backward(dy, arg, x_shape, kernel, stride, padding)


@contextlib.contextmanager
def one_numba_thread():
    """Numba's parallel kernels on one thread while the block runs — for worker processes that
    share the cores. Importing the kernels first lets them pick the workqueue threading layer:
    setting the thread count before that starts Numba's OpenMP layer, which is not fork-safe."""
    from attention_np.kernels._config import numba_on_one_thread
    with numba_on_one_thread():
        yield
