"""Benchmark: our kernels vs the NumPy references and torch, in one process, same threads.

    python -m attention_np.kernels.bench [--quick] [--out DIR] [--retune] [--no-minilm] [--no-scaling]

Prints the CPU model and the kernel configuration that ran (tuned for this CPU by
:mod:`attention_np.kernels._tune`, at the first run), then one Markdown table (ms, GFLOPS, GB/s or
sentences/s, torch time / our time, % of a yardstick measured on this machine: OpenBLAS sgemm
GFLOPS for matmul/attention, one-pass 2-thread copy bandwidth for softmax — a yardstick, not a
ceiling, so a kernel can pass 100 %), the LSTM / GRU layer rows
(:mod:`attention_np.kernels.bench.recurrent`), the translator's training step
(:mod:`attention_np.kernels.bench.seq2seq`) and the MiniLM end-to-end rows last
(:mod:`attention_np.kernels.bench.minilm`), and writes DIR/bench.json and DIR/bench_attention_scaling.png
(time and working memory of attention fwd+bwd vs T for naive NumPy, torch SDPA and our flash
kernel).

Three thread pools share the cores in this process: OpenBLAS's, Numba's and torch's (OpenMP).
Left as they are, an idle pool keeps spinning after its call — OpenBLAS's for about 2²⁸ cycles,
a tenth of a second — and takes the cores from the next contender of the interleaved rounds
(measured on 2 cores: our 1024³ matmul 14 ms alone and 26 ms interleaved with NumPy's; NumPy's
11.6 and 18.6 ms). So the bench re-runs itself with idle threads that sleep at once
(:data:`QUIET_IDLE_THREADS`), the same for every contender, and prints the setting;
``ATTENTION_NP_BENCH_SPIN=1`` keeps the libraries' defaults.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numba
import numpy as np

from attention_np import kernels
from attention_np.core import softmax_backward as np_softmax_backward
from attention_np.core import softmax_forward as np_softmax_forward
from attention_np.self_attention import (scaled_dot_product_attention_backward,
                                         scaled_dot_product_attention_forward)
from attention_np.kernels import _tune
from attention_np.kernels.bench.minilm import minilm_rows
from attention_np.kernels.bench.recurrent import recurrent_rows
from attention_np.kernels.bench.seq2seq import seq2seq_rows
from attention_np.kernels.bench.scaling import plot_scaling, scaling
from attention_np.kernels._bench_utils import (Row, best_times, copy_into, cpu_model,
                                               format_table, machine_peaks)


def _torch():
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(numba.get_num_threads())
    return torch


def softmax_rows(repeats, torch):
    """Softmax rows; the copy that bounds them (:func:`copy_into`, a preallocated output) is
    timed in the same interleaved rounds (the machine is often shared, so a copy timed earlier
    is no fair yardstick)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8192, 4096), np.float32)
    dy = rng.standard_normal(x.shape, np.float32)
    y, cache = np_softmax_forward(x)
    tx, ty, tdy = (None,) * 3 if torch is None else map(torch.from_numpy, (x, y, dy))
    out = np.zeros_like(x)
    copy = (lambda: copy_into(x, out))
    fwd = best_times({"ours": lambda: kernels.softmax(x), "numpy": lambda: np_softmax_forward(x),
                      "torch": torch and (lambda: torch.softmax(tx, -1)), "copy": copy}, repeats)
    bwd = best_times({"ours": lambda: kernels.softmax_backward(y, dy),
                      "numpy": lambda: np_softmax_backward(dy, cache),
                      "torch": torch and (lambda: torch._softmax_backward_data(
                          tdy, ty, -1, torch.float32)), "copy": copy}, repeats)
    shape, n = "8192×4096", x.nbytes
    copy_gbs = [2 * n / (t["copy"] * 1e-3) / 1e9 for t in (fwd, bwd)]
    return [Row("softmax fwd", shape, fwd["ours"], fwd["numpy"], fwd["torch"], 2 * n, "GB/s",
                copy_gbs[0], {"copy_gbs": copy_gbs[0]}),
            Row("softmax bwd", shape, bwd["ours"], bwd["numpy"], bwd["torch"], 3 * n, "GB/s",
                copy_gbs[1], {"copy_gbs": copy_gbs[1]})]


def matmul_rows(peaks, repeats, torch, sizes):
    rows = []
    for n in sizes:
        a, b = (np.random.default_rng(n).standard_normal((n, n), np.float32) for _ in range(2))
        ta, tb = (None, None) if torch is None else (torch.from_numpy(a), torch.from_numpy(b))
        t = best_times({"ours": lambda: kernels.matmul(a, b), "numpy": lambda: a @ b,
                        "torch": torch and (lambda: torch.matmul(ta, tb))}, repeats)
        rows.append(Row("matmul", f"{n}³", t["ours"], t["numpy"], t["torch"], 2 * n**3,
                        "GFLOPS", peaks["gemm_gflops"]))
    return rows


def _torch_sdpa(torch, q, k, v, dout, causal):
    tq, tk, tv = (torch.from_numpy(x).requires_grad_() for x in (q, k, v))
    fwd = (lambda: torch.nn.functional.scaled_dot_product_attention(tq, tk, tv,
                                                                    is_causal=causal))
    out, tdout = fwd(), torch.from_numpy(dout)
    return (lambda: torch.no_grad()(fwd)()), (lambda: out.backward(tdout, retain_graph=True))


def attention_rows(peaks, repeats, torch, T, H=8, D=64):
    rng = np.random.default_rng(1)
    q, k, v, dout = (rng.standard_normal((1, H, T, D), np.float32) for _ in range(4))
    rows = []
    for causal in (False, True):
        out, lse = kernels.flash_attention_forward(q, k, v, causal=causal)
        _, _, cache = scaled_dot_product_attention_forward(q, k, v, causal=causal)
        t_fwd, t_bwd = (None, None) if torch is None else _torch_sdpa(torch, q, k, v, dout,
                                                                     causal)
        fwd = best_times({
            "ours": lambda: kernels.flash_attention_forward(q, k, v, causal=causal),
            "numpy": lambda: scaled_dot_product_attention_forward(q, k, v, causal=causal),
            "torch": t_fwd}, repeats)
        bwd = best_times({
            "ours": lambda: kernels.flash_attention_backward(dout, q, k, v, out, lse,
                                                             causal=causal),
            "numpy": lambda: scaled_dot_product_attention_backward(dout, cache),
            "torch": t_bwd}, repeats)
        flops = 4 * H * T * T * D / (2 if causal else 1)    # QKᵀ and PV (causal: half)
        name = "flash causal" if causal else "flash"
        shape = f"B=1 H={H} T={T} D={D}"
        rows += [Row(f"{name} fwd", shape, fwd["ours"], fwd["numpy"], fwd["torch"], flops,
                     "GFLOPS", peaks["gemm_gflops"]),
                 Row(f"{name} bwd", shape, bwd["ours"], bwd["numpy"], bwd["torch"], 2.5 * flops,
                     "GFLOPS", peaks["gemm_gflops"])]
    return rows


QUIET_IDLE_THREADS = {"OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_THREAD_TIMEOUT": "4"}


def _idle_threads() -> str:
    """The idle-thread setting this process runs with, for the header line."""
    return ", ".join(f"{k}={os.environ.get(k, '(default)')}" for k in QUIET_IDLE_THREADS)


def reexec_with_quiet_idle_threads() -> None:
    """Start the bench again with :data:`QUIET_IDLE_THREADS` (read by OpenBLAS and OpenMP when
    they load, so they cannot be changed in a running process)."""
    missing = {k: v for k, v in QUIET_IDLE_THREADS.items() if os.environ.get(k) != v}
    if missing and os.environ.get("ATTENTION_NP_BENCH_SPIN") != "1":
        os.execve(sys.executable, [sys.executable, "-m", "attention_np.kernels.bench", *sys.argv[1:]],
                  {**os.environ, **missing})


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer repeats, T ≤ 4096 in the plot")
    p.add_argument("--out", default=".", help="directory for bench.json and the plot")
    p.add_argument("--max-numpy-T", type=int, default=None,
                   help="largest T for naive NumPy in the plot (its memory is O(T²))")
    p.add_argument("--no-scaling", action="store_true", help="skip the time/memory vs T plot")
    p.add_argument("--no-minilm", action="store_true", help="skip the MiniLM end-to-end rows")
    p.add_argument("--retune", action="store_true", help="tune the kernels again first")
    args = p.parse_args(argv)
    repeats = 3 if args.quick else 7
    torch = _torch()
    print(f"CPU: {cpu_model()}, {numba.get_num_threads()} threads, "
          f"torch {'not installed' if torch is None else torch.__version__}; idle threads: "
          f"{_idle_threads()}")
    cfg = kernels.tune(verbose=True) if args.retune else _tune.config(_tune.TUNE_AT_FLOP)
    print(f"kernel configuration ({_tune.source()}, {_tune.cache_path()}): {cfg.describe()}")
    peaks = machine_peaks(repeats)
    print(f"machine: OpenBLAS sgemm 1024³ {peaks['gemm_gflops']:.0f} GFLOPS, "
          f"2-thread copy {peaks['copy_gbs']:.1f} GB/s ({peaks['copy_ms']:.1f} ms for 128 MiB)")
    rows = softmax_rows(repeats, torch)
    rows += matmul_rows(peaks, repeats, torch, (1024,) if args.quick else (1024, 2048))
    rows += attention_rows(peaks, repeats, torch, T=1024 if args.quick else 2048)
    rows += recurrent_rows(peaks, repeats, torch)
    rows += seq2seq_rows(peaks, repeats, torch)
    if not args.no_minilm:
        rows += minilm_rows(repeats, torch)
    print(format_table(rows))
    result = {"cpu": cpu_model(), "threads": numba.get_num_threads(), "peaks": peaks,
              "idle_threads": _idle_threads(),
              "config": cfg.describe(), "rows": [r.as_dict() for r in rows]}
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not args.no_scaling:
        top = 4096 if args.quick else 16384
        Ts = [2**i for i in range(9, top.bit_length())]
        print("attention fwd+bwd vs T (B=1, H=1, D=64, float32), one subprocess per point:")
        result["scaling"] = scaling(Ts, args.max_numpy_T or top)
        plot_scaling(result["scaling"], out_dir / "bench_attention_scaling.png",
                     f"{cpu_model()}, {numba.get_num_threads()} threads")
    (out_dir / "bench.json").write_text(json.dumps(result, indent=1))
    print(f"wrote {out_dir / 'bench.json'}")
    return result

