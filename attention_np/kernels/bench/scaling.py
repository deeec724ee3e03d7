"""Time and peak memory of one attention forward+backward vs sequence length T (B=1, H=1, D=64).

Each (implementation, T) point runs in a fresh subprocess so peak memory is its own: the child
compiles/warms up on a tiny problem, resets the kernel's high-water mark
(``/proc/self/clear_refs``), runs forward+backward once, and reports
VmHWM − (RSS before the run) − (size of the outputs), i.e. the working memory beyond inputs
and outputs. The time is the best of up to 3 runs (1 run when a run takes over 3 s). Linux only.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np

IMPLS = ("numpy", "torch", "flash")


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _runner(impl: str):
    """fwd+bwd callable(q, k, v, dout) -> outputs, for one implementation."""
    if impl == "flash":
        from attention_np.kernels import flash_attention_backward, flash_attention_forward

        def run(q, k, v, dout):
            out, lse = flash_attention_forward(q, k, v)
            return (out, lse) + flash_attention_backward(dout, q, k, v, out, lse)
    elif impl == "numpy":
        from attention_np.self_attention import (scaled_dot_product_attention_backward,
                                                 scaled_dot_product_attention_forward)

        def run(q, k, v, dout):
            out, _, cache = scaled_dot_product_attention_forward(q, k, v)
            return (out,) + scaled_dot_product_attention_backward(dout, cache)
    else:
        import torch
        torch.set_num_threads(__import__("numba").get_num_threads())

        def run(q, k, v, dout):
            tq, tk, tv = (torch.from_numpy(x).requires_grad_() for x in (q, k, v))
            out = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv)
            out.backward(torch.from_numpy(dout))
            return out.detach().numpy(), tq.grad.numpy(), tk.grad.numpy(), tv.grad.numpy()
    return run


def measure_one(impl: str, T: int, D: int = 64) -> dict:
    """Run in the child process: {"ms": time of fwd+bwd, "mib": working memory}."""
    run = _runner(impl)
    rng = np.random.default_rng(0)
    small = [rng.standard_normal((1, 1, 64, D), np.float32) for _ in range(4)]
    run(*small)                                       # compile / warm up
    q, k, v, dout = (rng.standard_normal((1, 1, T, D), np.float32) for _ in range(4))
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")                                  # reset VmHWM to the current RSS
    before = _rss_kib("VmRSS")
    t0 = time.perf_counter()
    outputs = run(q, k, v, dout)
    times = [time.perf_counter() - t0]
    peak = _rss_kib("VmHWM")                          # memory of the first run only
    out_bytes = sum(np.asarray(o).nbytes for o in outputs)
    del outputs
    while len(times) < 3 and sum(times) < 3.0:       # best of up to 3 runs for short ones
        t0 = time.perf_counter()
        run(q, k, v, dout)
        times.append(time.perf_counter() - t0)
    return {"ms": min(times) * 1e3, "mib": max(peak - before, 0) / 1024 - out_bytes / 2**20}


def scaling(Ts, max_numpy_T: int) -> dict:
    """{impl: [{"T", "ms", "mib"}, ...]} measured in subprocesses."""
    results = {impl: [] for impl in IMPLS}
    for T in Ts:
        for impl in IMPLS:
            if impl == "numpy" and T > max_numpy_T:
                continue
            code = (f"import json; from attention_np.kernels.bench.scaling import measure_one; "
                    f"print(json.dumps(measure_one({impl!r}, {T})))")
            res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
            if res.returncode != 0:
                print(f"  {impl} T={T} failed: {res.stderr.strip().splitlines()[-1:]}")
                continue
            point = json.loads(res.stdout.strip().splitlines()[-1])
            results[impl].append({"T": T, **point})
            print(f"  {impl:6s} T={T:6d}: {point['ms']:9.1f} ms  {point['mib']:8.1f} MiB")
    return results


def plot_scaling(results: dict, path, machine: str = "") -> None:
    """Two log-log panels: time and working memory vs T; ``machine`` goes in the title."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    labels = {"numpy": "naive NumPy", "torch": "torch SDPA", "flash": "ours (flash, Numba)"}
    for impl, points in results.items():
        if not points:
            continue
        T = [p["T"] for p in points]
        axes[0].plot(T, [p["ms"] for p in points], "o-", label=labels[impl])
        axes[1].plot(T, [max(p["mib"], 0.1) for p in points], "o-", label=labels[impl])
    for ax, title in zip(axes, ("forward + backward time (ms)", "working memory (MiB)")):
        ax.set(xscale="log", yscale="log", xlabel="sequence length T", title=title)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend()
    fig.suptitle("attention fwd+bwd, B=1, H=1, D=64, float32" + (f" — {machine}" if machine else ""))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
