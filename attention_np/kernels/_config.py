"""Every Numba compile flag of the package, in one place.

Three process-wide switches are set here, before anything in ``kernels`` is compiled:

* ``SLP_VECTORIZE``: Numba leaves LLVM's SLP vectoriser off; without it the register-tiled GEMM
  micro-kernel stays scalar (~10x slower).
* ``CPU_FEATURES``: the host's features plus ``-prefer-256-bit`` so that LLVM emits 512-bit
  vectors on AVX-512 machines (it prefers 256-bit by default). The features string is part of
  Numba's on-disk cache key, so cached code never runs on a machine without those features.
* ``threadpool_limits``: BLAS calls made *inside* ``prange`` loops (the flash kernels) must run
  single-threaded, or each of Numba's threads starts its own OpenBLAS team and the cores are
  oversubscribed (3-4x slower, silently).

* ``THREADING_LAYER``: Numba's "workqueue" pool rather than OpenMP. With the OpenMP layer, a
  parallel kernel run before torch starts a second OpenMP runtime in the process and torch's
  CPU attention then ran 2-5x slower (47 → 95-237 ms for SDPA, measured on the AMD EPYC);
  the workqueue pool leaves torch's speed alone (tests/test_kernels_threading.py checks it).
  A ``NUMBA_THREADING_LAYER`` set by the user wins.

Set ``ATTENTION_NP_NATIVE_FEATURES=0`` to keep Numba's default CPU features.

**The cache must not change the numbers.** Numba compiles an ``@njit`` function that another
one calls (and the loop body of a ``prange`` kernel) into a library of its own, and links a copy
of it into the caller. The process that compiles them calls the callee's own library; a process
that loads the caller from the on-disk cache (``cache=True``) runs the copy, which LLVM
optimised once more inside the caller. Under ``fastmath`` (``contract``) the two fused
multiply-adds differently: the LSTM kernels gave other bits on a demo's second run than on its
first (measured on an AMD EPYC, Zen 5, and an Intel Xeon). So every fastmath function that a
kernel calls is declared ``inline="always"`` (Numba inlines it: one function, one compile), and
kernels that only ever run on one thread are not ``prange`` loops (:mod:`kernels.fused`).
tests/test_kernel_cache.py checks both, and runs kernels compiled and then cached.
"""
from __future__ import annotations

import contextlib
import os

from numba.core import config as _numba_config

_NATIVE = os.environ.get("ATTENTION_NP_NATIVE_FEATURES", "1") != "0"


def _set_codegen_flags() -> None:
    _numba_config.SLP_VECTORIZE = 1
    if "NUMBA_THREADING_LAYER" not in os.environ:
        _numba_config.THREADING_LAYER = "workqueue"
    if _NATIVE and _numba_config.CPU_FEATURES is None:
        import llvmlite.binding as llvm
        features = llvm.get_host_cpu_features().flatten()
        if "+avx512f" in features:
            features += ",-prefer-256-bit"
        _numba_config.CPU_FEATURES = features


_set_codegen_flags()

# Element-wise kernels (softmax, exp, flash): reassociation lets LLVM vectorise reductions.
# No 'nnan'/'ninf': masked scores use a finite fill, but user inputs may hold ±inf.
FASTMATH = {"reassoc", "contract", "arcp", "nsz", "afn"}
ELEMENTWISE = dict(cache=True, fastmath=FASTMATH, error_model="numpy")
PARALLEL = dict(ELEMENTWISE, parallel=True)
# GEMM micro-kernel: strict math; the FMA is explicit (kernels._intrinsics.fma). With fastmath
# LLVM rewrites the k-loop into a gather reduction and loses half the speed.
STRICT = dict(cache=True, fastmath=False, error_model="numpy")
STRICT_PARALLEL = dict(STRICT, parallel=True)

# Block sizes and thread chunking are chosen per machine at run time: kernels._tune.


_CONTROLLER = None


@contextlib.contextmanager
def single_threaded_blas():
    """Limit OpenBLAS (NumPy's and SciPy's) to one thread inside the block."""
    global _CONTROLLER
    from threadpoolctl import ThreadpoolController
    if _CONTROLLER is None:
        # Numba's np.dot calls SciPy's BLAS, which SciPy loads only when first imported: load it
        # now, or the controller sees NumPy's OpenBLAS alone and SciPy's keeps all its threads.
        import scipy.linalg.cython_blas  # noqa: F401
        _CONTROLLER = ThreadpoolController()
    with _CONTROLLER.limit(limits=1, user_api="blas"):
        yield


@contextlib.contextmanager
def numba_on_one_thread():
    """Numba's kernels run on the calling thread while the block runs: the fused encoder block,
    whose OpenBLAS threads do the products (three quarters of the work), and a demo's worker
    processes, two of which on two cores would only fight over them. On a shared 2-core
    machine, Numba's and OpenBLAS's thread pools taking turns let each pool's spinning workers
    steal the cores from the other (a 64-sentence MiniLM encode took 4.5 s instead of 1.6 s)."""
    import numba
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(before)
