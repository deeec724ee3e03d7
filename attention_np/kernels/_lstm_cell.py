"""The pieces the recurrent kernels share (:mod:`attention_np.kernels.recurrent`, the LSTM and
GRU scans, and :mod:`attention_np.kernels.bahdanau`, the fused attentive decoder): the LSTM cell
of one row and its backward, the batch rows of a thread's block, the dtypes, the block count."""
from __future__ import annotations

import numba
import numpy as np
from numba import njit

from attention_np.kernels._config import ELEMENTWISE
from attention_np.kernels._special import fast_sigmoid, fast_tanh
from attention_np.kernels._validate import KERNEL_DTYPES, compute_dtype


@njit(inline="always", **ELEMENTWISE)
def rows(chunk, n_chunks, B):
    """[first, end) of the batch rows of task ``chunk``."""
    return chunk * B // n_chunks, (chunk + 1) * B // n_chunks


@njit(inline="always", **ELEMENTWISE)
def lstm_cell(a, b, c, c_new, tc, h_new, out):
    """One row of one step: a = [x_t | h] W (4H,) ← [i, f, g, o] = [σ, σ, tanh, σ](a + b);
    c_new = f c + i g;  tc = tanh(c_new);  h_new = out = o tc."""
    H = c.shape[0]
    for j in range(H):
        i = fast_sigmoid(a[j] + b[j])
        f = fast_sigmoid(a[H + j] + b[H + j])
        g = fast_tanh(a[2 * H + j] + b[2 * H + j])
        o = fast_sigmoid(a[3 * H + j] + b[3 * H + j])
        a[j], a[H + j], a[2 * H + j], a[3 * H + j] = i, f, g, o
        cj = f * c[j] + i * g
        t = fast_tanh(cj)
        c_new[j], tc[j] = cj, t
        h_new[j] = out[j] = o * t



@njit(inline="always", **ELEMENTWISE)
def lstm_cell_backward(dh, dy, dc, act, c_prev, tc, da):
    """Undo :func:`lstm_cell` for one row: dh ∂L/∂h' from the later steps, dy ∂L/∂out;
    dc ← ∂L/∂c (the direct path c' = f c + …); da (4H,) = ∂L/∂a."""
    H = dh.shape[0]
    one = dh.dtype.type(1)
    for j in range(H):
        i, f, g, o = act[j], act[H + j], act[2 * H + j], act[3 * H + j]
        t = tc[j]
        dhj = dh[j] + dy[j]
        dcj = dc[j] + dhj * o * (one - t * t)                      # h' = o tanh(c')
        da[j] = dcj * g * i * (one - i)                              # c' = f c + i g
        da[H + j] = dcj * c_prev[j] * f * (one - f)
        da[2 * H + j] = dcj * i * (one - g * g)
        da[3 * H + j] = dhj * t * o * (one - o)
        dc[j] = dcj * f



def dtypes(*arrays):
    """(the result's dtype, the compute dtype: float16 → float32)."""
    out_dtype = np.result_type(*(a for a in arrays if a is not None))
    dt = compute_dtype(out_dtype)
    if dt not in KERNEL_DTYPES:
        raise ValueError(f"x and the parameters must be float16, float32 or float64 for the "
                         f"Numba kernels (they compute in float32 or float64), got {out_dtype}")
    return out_dtype, dt


def n_chunks(B: int) -> int:
    """One block of batch rows per thread (at least one row each)."""
    return max(1, min(numba.get_num_threads(), B))


def contiguous(a, dtype):
    return np.ascontiguousarray(a, dtype)
