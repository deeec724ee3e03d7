"""Per-machine block sizes and thread chunking of the kernels: an autotuner with an on-disk cache.

The fastest block sizes depend on the CPU's caches and vector width (an AMD Zen 4 wants a
deeper K slice in the GEMM than an Intel Xeon), so they are measured, not guessed:
:func:`tune` times a few candidates of each kernel on this CPU (best of 3, candidates
interleaved) and keeps the fastest. The choice is saved in
``$XDG_CACHE_HOME/attention_np/kernels_tune.json`` (default ``~/.cache``), keyed by CPU model,
Numba version and thread count, and loaded by every later process.

It runs by itself the first time a kernel gets a problem big enough for the blocks to matter
(:data:`TUNE_AT_FLOP`) and no saved choice exists; small calls use the saved choice or the
defaults. ``ATTENTION_NP_TUNE=0`` turns tuning off (defaults, no file). Block sizes and
chunking change only the order of float additions, never the result beyond rounding.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numba

from kernels._bench_utils import cpu_model

TUNE_AT_FLOP = 2.0**30          # a problem of ≥ 1 GFLOP triggers the first-use tuning


@dataclass(frozen=True)
class KernelConfig:
    """Block sizes (rows) and thread chunking of the kernels that have them."""
    flash_block_q: int = 256      # query rows per forward task
    flash_block_k: int = 256      # key rows per score tile
    flash_bwd_block_q: int = 128  # query rows per backward tile
    flash_bwd_block_k: int = 128  # key rows per backward task
    flash_chunk: int = 1          # flash tasks a thread takes at a time (0: static split)
    matmul_mc: int = 64           # rows of A per packed block (L2)
    matmul_kc: int = 512          # depth of a K slice (the B panel and A block)

    def describe(self) -> str:
        return ", ".join(f"{f.name}={getattr(self, f.name)}"
                         for f in dataclasses.fields(self))


DEFAULT = KernelConfig()
_STATE = {"config": None, "source": "default"}


def machine_key() -> str:
    """What the saved choice is valid for: CPU model, Numba version, thread count."""
    return f"{cpu_model()} | numba {numba.__version__} | {numba.config.NUMBA_NUM_THREADS} threads"


def cache_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "attention_np" / "kernels_tune.json"


def _read_all() -> dict:
    try:
        return json.loads(cache_path().read_text())
    except (OSError, ValueError):
        return {}


def _load() -> KernelConfig | None:
    entry = _read_all().get(machine_key())
    names = {f.name for f in dataclasses.fields(KernelConfig)}
    if not isinstance(entry, dict) or set(entry.get("config", {})) != names:
        return None                                   # absent, or from an older version
    return KernelConfig(**entry["config"])


def _save(config: KernelConfig, timings: dict) -> None:
    path = cache_path()
    entries = _read_all()
    entries[machine_key()] = {"config": dataclasses.asdict(config), "timings_ms": timings,
                              "tuned": time.strftime("%Y-%m-%d %H:%M:%S")}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(entries, indent=1))
    os.replace(tmp, path)                             # atomic: concurrent processes are safe


def _enabled() -> bool:
    return os.environ.get("ATTENTION_NP_TUNE", "1") != "0"


def config(flop: float = 0.0) -> KernelConfig:
    """The configuration in use: the saved choice for this machine, else the defaults; the
    first call for a problem of ≥ :data:`TUNE_AT_FLOP` with nothing saved runs :func:`tune`."""
    if _STATE["config"] is None:
        saved = _load() if _enabled() else None
        _STATE.update(config=saved or DEFAULT, source="saved" if saved else "default")
    if flop >= TUNE_AT_FLOP and _STATE["source"] == "default" and _enabled():
        print("kernels: tuning block sizes for this CPU (once; saved in "
              f"{cache_path()})", file=sys.stderr)
        tune()
    return _STATE["config"]


def source() -> str:
    """Where the configuration in use came from: "default", "saved", "tuned" or "override"."""
    config()
    return _STATE["source"]


@contextlib.contextmanager
def using(cfg: KernelConfig):
    """Run the kernels with ``cfg`` inside the block (tests, and the tuner's timings)."""
    saved = dict(_STATE)
    _STATE.update(config=cfg, source="override")
    try:
        yield cfg
    finally:
        _STATE.update(saved)


def tune(save: bool = True, verbose: bool = False, repeats: int = 3) -> KernelConfig:
    """Time the candidate block sizes and chunkings on this CPU, keep and return the fastest.

    Takes a few seconds (float32 problems: flash attention B=1 H=4 T=1024 D=64, matmul 1024³).
    ``save``: write the choice to :func:`cache_path` for later processes.
    """
    from kernels._tune_search import search
    if not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be a positive integer, got {repeats!r}")
    threads = numba.get_num_threads()
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)  # the count machine_key names
    try:
        with using(DEFAULT):                          # the kernels must not tune themselves
            best, timings = search(repeats, verbose)
    finally:
        numba.set_num_threads(threads)
    _STATE.update(config=best, source="tuned")
    if save and _enabled():
        _save(best, timings)
    return best
