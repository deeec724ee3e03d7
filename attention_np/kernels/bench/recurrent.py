"""Recurrent rows of the benchmark: one LSTM and one GRU layer over a batch of sequences, forward
and backward (the gradients of Σ hs ⊙ dout with respect to x and every parameter), for our
fused kernels (``backend="numba"``), the NumPy reference and torch.nn.LSTM / nn.GRU
(batch_first, autograd), all on the same parameters and threads.

Work credited: the products, 2·B·T·(D + H)·G·H FLOP forward (x W_x and h W_h, G = 4 gates for
the LSTM, 3 for the GRU) and twice that backward (the input and the weight gradients).
"""
from __future__ import annotations

import numpy as np

from attention_np.kernels._bench_utils import Row, best_times
from attention_np.nn.recurrent import (gru_backward, gru_forward, init_recurrent_params,
                                       lstm_backward, lstm_forward)

SHAPE = {"B": 64, "T": 40, "D": 32, "H": 128}
GATES = {"lstm": 4, "gru": 3}


def _ours(kind, x, params, dout, backend):
    def run():
        if kind == "lstm":
            _, _, cache = lstm_forward(x, None, None, params, backend=backend)
            return lstm_backward(dout, cache)
        _, _, cache = gru_forward(x, None, params, backend=backend)
        return gru_backward(dout, cache)
    return run


def _torch_fwd_bwd(torch, kind, x, params, dout):
    """torch's module with our parameters (row vectors → torch's (G·H, ·) weights)."""
    B, T, D = x.shape
    H = params["W_h"].shape[0]
    module = (torch.nn.LSTM if kind == "lstm" else torch.nn.GRU)(D, H, batch_first=True)
    b_ih, b_hh = ((params["b"], np.zeros_like(params["b"])) if kind == "lstm"
                  else (params["b_x"], params["b_h"]))
    with torch.no_grad():
        for name, value in (("weight_ih_l0", params["W_x"].T), ("weight_hh_l0", params["W_h"].T),
                            ("bias_ih_l0", b_ih), ("bias_hh_l0", b_hh)):
            getattr(module, name).copy_(torch.from_numpy(np.ascontiguousarray(value)))
    tx, tdout = torch.from_numpy(x).requires_grad_(), torch.from_numpy(dout)

    def run():
        module.zero_grad(set_to_none=True)
        tx.grad = None
        hs, _ = module(tx)
        hs.backward(tdout)
    return run


def recurrent_rows(peaks: dict, repeats: int, torch) -> list[Row]:
    """Rows "LSTM seq fwd+bwd" and "GRU seq fwd+bwd" (float32, :data:`SHAPE`)."""
    B, T, D, H = (SHAPE[k] for k in "BTDH")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((B, T, D)).astype(np.float32)
    dout = rng.standard_normal((B, T, H)).astype(np.float32)
    rows = []
    for kind, G in GATES.items():
        params = init_recurrent_params(kind, D, H, rng, np.float32)
        t = best_times({"ours": _ours(kind, x, params, dout, "numba"),
                        "numpy": _ours(kind, x, params, dout, "numpy"),
                        "torch": torch and _torch_fwd_bwd(torch, kind, x, params, dout)},
                       repeats)
        flops = 3 * 2 * B * T * (D + H) * G * H
        rows.append(Row(f"{kind.upper()} seq fwd+bwd", f"B={B} T={T} D={D} H={H}", t["ours"],
                        t["numpy"], t["torch"], flops, "GFLOPS", peaks["gemm_gflops"]))
    return rows
