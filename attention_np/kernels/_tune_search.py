"""The autotuner's search (the store of the choice: :mod:`attention_np.kernels._tune`): a few
candidates per kernel, each timed on one float32 problem, best of ``repeats`` with the
candidates interleaved round by round so that a burst of load from other processes hits them
alike. Kernels are tuned one after the other, each with the choices made so far."""
from __future__ import annotations

import dataclasses

import numba
import numpy as np

from attention_np.kernels import flash, matmul
from attention_np.kernels._bench_utils import best_times
from attention_np.kernels._tune import (DEFAULT, KernelConfig, choose, enabled, save_choice,
                                        using)

# (field, field) pairs tried together, per kernel; the defaults are always among them
FLASH_FWD = [(64, 256), (128, 256), (256, 256), (128, 512), (256, 512), (512, 256), (512, 512)]
FLASH_BWD = [(64, 128), (128, 128), (128, 256), (256, 128)]
FLASH_CHUNK = [0, 1, 2]
MATMUL = [(32, 512), (64, 512), (128, 512), (64, 1024), (128, 256)]


def _problems():
    rng = np.random.default_rng(0)
    q, k, v, dout = (rng.standard_normal((1, 4, 1024, 64), np.float32) for _ in range(4))
    out, lse = flash.flash_attention_forward(q, k, v)
    a, b = (rng.standard_normal((1024, 1024), np.float32) for _ in range(2))
    return {
        "flash fwd": lambda: flash.flash_attention_forward(q, k, v),
        "flash bwd": lambda: flash.flash_attention_backward(dout, q, k, v, out, lse),
        "flash causal fwd+bwd": lambda: flash.flash_attention_backward(
            dout, q, k, v, *flash.flash_attention_forward(q, k, v, causal=True), causal=True),
        "matmul": lambda: matmul.matmul(a, b),
    }


def _pick(best: KernelConfig, problem, fields, candidates, repeats, timings, verbose):
    """The candidate of ``fields`` with the least time on ``problem`` → updated config."""
    configs = {c: dataclasses.replace(best, **dict(zip(fields, c))) for c in candidates}

    def timed(cfg):
        def run():
            with using(cfg):
                problem()
        return run
    times = best_times({str(c): timed(cfg) for c, cfg in configs.items()}, repeats)
    winner = min(candidates, key=lambda c: times[str(c)])
    timings["/".join(fields)] = {k: round(t, 3) for k, t in times.items()}
    if verbose:
        shown = ", ".join(f"{k} {t:.1f} ms" for k, t in times.items())
        print(f"  {'/'.join(fields)}: {shown} → {winner}")
    return configs[winner]


def search(repeats: int, verbose: bool):
    """→ (fastest KernelConfig, {fields: {candidate: best ms}})."""
    problems, best, timings = _problems(), DEFAULT, {}
    steps = [("flash fwd", ("flash_block_q", "flash_block_k"), FLASH_FWD),
             ("flash bwd", ("flash_bwd_block_q", "flash_bwd_block_k"), FLASH_BWD),
             ("flash causal fwd+bwd", ("flash_chunk",), [(c,) for c in FLASH_CHUNK]),
             ("matmul", ("matmul_mc", "matmul_kc"), MATMUL)]
    for name, fields, candidates in steps:
        best = _pick(best, problems[name], fields, candidates, repeats, timings, verbose)
    return best, timings


def tune(save: bool = True, verbose: bool = False, repeats: int = 3) -> KernelConfig:
    """Time the candidate block sizes and chunkings on this CPU, keep and return the fastest.

    Takes a few seconds (float32 problems: flash attention B=1 H=4 T=1024 D=64, matmul 1024³).
    ``save``: write the choice to :func:`~attention_np.kernels._tune.cache_path` for later
    processes.
    """
    if not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be a positive integer, got {repeats!r}")
    threads = numba.get_num_threads()
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)  # the count machine_key names
    try:
        with using(DEFAULT):                          # the kernels must not tune themselves
            best, timings = search(repeats, verbose)
    finally:
        numba.set_num_threads(threads)
    choose(best, "tuned")
    if save and enabled():
        save_choice(best, timings)
    return best
