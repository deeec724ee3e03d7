"""Fast Numba kernels for attention: softmax, matmul and fused (flash) attention, plus the fused
Transformer encoder block that ``backend="numba"`` runs (``encoder``, built on the row kernels
of ``fused``) and the sliding-window / linear attention of ``efficient``.

A leaf of the package: these modules import numpy, numba (and its llvmlite), scipy and
threadpoolctl, and check their own inputs (``_validate``); the library reaches them through
:mod:`attention_np.nn.backend` alone. Each public function validates its inputs and calls a
private ``@njit`` kernel; the plain NumPy versions in ``attention_np`` are their references.
Compile flags: ``_config``; block sizes and thread chunking are tuned per machine
(:func:`tune`; the choice is kept by ``_tune``). Benchmark, the one module here that imports
the rest of the library (the NumPy references it compares with):
``python -m attention_np.kernels.bench [--quick]``.
"""
from attention_np.kernels._config import FASTMATH  # noqa: F401  (Numba's flags, before any compile)
from attention_np.kernels import _tune
from attention_np.kernels._tune_search import tune
from attention_np.kernels.flash import flash_attention_backward, flash_attention_forward
from attention_np.kernels.matmul import matmul
from attention_np.kernels.softmax import softmax, softmax_backward

_tune.register_tuner(tune)          # run by the first big call when nothing is saved

__all__ = ["softmax", "softmax_backward", "matmul", "flash_attention_forward",
           "flash_attention_backward", "tune"]
