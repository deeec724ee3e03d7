"""Per-machine block sizes and thread chunking of the kernels: an autotuner with an on-disk cache.

The fastest block sizes depend on the CPU's caches and vector width (an AMD Zen 4 wants a
deeper K slice in the GEMM than an Intel Xeon), so they are measured, not guessed:
:func:`attention_np.kernels.tune` (in ``_tune_search``) times a few candidates of each kernel on this CPU (best of 3, candidates
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

from attention_np.kernels._bench_utils import cpu_model

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
# The search that tune() runs times the kernels, and the kernels read their configuration here,
# so this module cannot import it: the package registers it (attention_np/kernels/__init__.py).
_TUNER = {}


def register_tuner(tune) -> None:
    """Set the function :func:`config` runs at the first big call (``tune()``, no arguments)."""
    _TUNER["tune"] = tune


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


def save_choice(config: KernelConfig, timings: dict) -> None:
    """Write ``config`` (and the timings that chose it) to :func:`cache_path` for this machine."""
    path = cache_path()
    entries = _read_all()
    entries[machine_key()] = {"config": dataclasses.asdict(config), "timings_ms": timings,
                              "tuned": time.strftime("%Y-%m-%d %H:%M:%S")}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(entries, indent=1))
    os.replace(tmp, path)                             # atomic: concurrent processes are safe


def enabled() -> bool:
    """Whether tuning is on (``ATTENTION_NP_TUNE`` is not "0")."""
    return os.environ.get("ATTENTION_NP_TUNE", "1") != "0"


def config(flop: float = 0.0) -> KernelConfig:
    """The configuration in use: the saved choice for this machine, else the defaults; the
    first call for a problem of ≥ :data:`TUNE_AT_FLOP` with nothing saved runs :func:`tune`."""
    if _STATE["config"] is None:
        saved = _load() if enabled() else None
        _STATE.update(config=saved or DEFAULT, source="saved" if saved else "default")
    if flop >= TUNE_AT_FLOP and _STATE["source"] == "default" and enabled():
        print("kernels: tuning block sizes for this CPU (once; saved in "
              f"{cache_path()})", file=sys.stderr)
        _TUNER["tune"]()
    return _STATE["config"]


def choose(cfg: KernelConfig, source: str) -> None:
    """Use ``cfg`` from now on in this process (``source``: where it came from, for source())."""
    _STATE.update(config=cfg, source=source)


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
