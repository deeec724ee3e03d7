"""Timing helpers and the machine's reference speeds (OpenBLAS GEMM, 2-thread copy) for the bench."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from numba import njit, prange

from attention_np.kernels._config import PARALLEL


def best_times(fns: dict, repeats: int) -> dict:
    """Best wall time (ms) of each callable; the callables are interleaved, round after round,
    so a burst of load from other processes hits all of them alike. One warm-up call each."""
    for fn in fns.values():
        if fn is not None:
            fn()
    best = {name: np.inf for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            if fn is None:
                continue
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], (time.perf_counter() - t0) * 1e3)
    return {name: (None if fns[name] is None else t) for name, t in best.items()}


@njit(**PARALLEL)
def _copy_rows(x, y):
    """y[i] = x[i] for every row, the rows split between the threads."""
    for i in prange(x.shape[0]):
        y[i] = x[i]


def copy_into(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The bandwidth yardstick: y = x (2-D, C-contiguous) with all of Numba's threads, into an
    output that was allocated and touched before (so no page faults are timed). Moves
    2 · x.nbytes (read + write)."""
    _copy_rows(x, y)
    return y


@dataclass
class Row:
    """One line of a benchmark table (times in ms; None = not run)."""
    kernel: str
    shape: str
    ours: float
    numpy: float | None
    torch: float | None
    work: float                    # FLOP, bytes moved or items (sentences) done by one call
    unit: str                      # "GFLOPS", "GB/s" or "sent/s"
    yardstick: float | None        # a measured rate of this machine in the same unit: OpenBLAS
                                   # GFLOPS or one-pass copy GB/s (None: none applies). Not a
                                   # ceiling: a kernel that moves less than it is credited with
                                   # (softmax backward) or beats OpenBLAS goes above 100 %
    notes: dict = field(default_factory=dict)

    @property
    def rate(self) -> float:
        giga = 1e9 if self.unit in ("GFLOPS", "GB/s") else 1.0
        return self.work / (self.ours * 1e-3) / giga

    @property
    def percent_of_yardstick(self) -> float | None:
        return None if self.yardstick is None else 100 * self.rate / self.yardstick

    @property
    def vs_torch(self) -> float | None:
        """torch time / our time: > 1 means we are faster."""
        return None if self.torch is None else self.torch / self.ours

    def as_dict(self) -> dict:
        return dict(kernel=self.kernel, shape=self.shape, ours_ms=self.ours, numpy_ms=self.numpy,
                    torch_ms=self.torch, rate=self.rate, unit=self.unit,
                    speedup_vs_torch=self.vs_torch, percent_of_yardstick=self.percent_of_yardstick,
                    **self.notes)


def format_table(rows: list[Row]) -> str:
    """A Markdown table of the rows."""
    fmt = (lambda t: "—" if t is None else f"{t:.1f}")
    lines = ["| kernel | shape | ours ms | NumPy ms | torch ms | rate | torch/ours | % of yardstick |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        ratio = "—" if r.vs_torch is None else f"{r.vs_torch:.2f}×"
        peak = "—" if r.percent_of_yardstick is None else f"{r.percent_of_yardstick:.0f}%"
        lines.append(f"| {r.kernel} | {r.shape} | {fmt(r.ours)} | {fmt(r.numpy)} | "
                     f"{fmt(r.torch)} | {r.rate:.1f} {r.unit} | {ratio} | {peak} |")
    return "\n".join(lines)


def machine_peaks(repeats: int) -> dict:
    """OpenBLAS sgemm GFLOPS (1024³, np.matmul) and the 2-thread copy bandwidth: GB/s of read +
    write bytes of :func:`copy_into` on 128 MiB (far beyond the caches) into a preallocated,
    already touched output, best of several runs. (It used to time the copy into a freshly
    allocated output, i.e. mostly the kernel's page faults: 1.7 GB/s on the AMD EPYC where the
    softmax itself moved 22 GB/s.)"""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((1024, 1024), np.float32)
    t_gemm = best_times({"gemm": lambda: a @ a}, repeats)["gemm"]
    x = rng.standard_normal((8192, 4096), np.float32)
    y = np.zeros_like(x)
    t_copy = best_times({"copy": lambda: copy_into(x, y)}, max(repeats, 5))["copy"]
    return {"gemm_gflops": 2 * 1024**3 / (t_gemm * 1e-3) / 1e9,
            "copy_gbs": 2 * x.nbytes / (t_copy * 1e-3) / 1e9, "copy_ms": t_copy}


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform
    return platform.processor() or "unknown"
