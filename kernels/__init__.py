"""Fast Numba kernels for attention: softmax, matmul and fused (flash) attention, plus the fused
Transformer encoder block that ``backend="numba"`` runs (``kernels.encoder``, built on the row
kernels of ``kernels.fused``) and the sliding-window / linear attention of ``kernels.efficient``.

Each public function validates its inputs and calls a private ``@njit`` kernel; the plain
NumPy versions in ``attention_np`` are their references. Compile flags: ``kernels._config``;
block sizes and thread chunking are tuned per machine (:func:`tune`, ``kernels._tune``).
Benchmark: ``python -m kernels.bench [--quick]``.
"""
from kernels._config import FASTMATH  # noqa: F401  (sets Numba's flags before any compile)
from kernels._tune import tune
from kernels.flash import flash_attention_backward, flash_attention_forward
from kernels.matmul import matmul
from kernels.softmax import softmax, softmax_backward

__all__ = ["softmax", "softmax_backward", "matmul", "flash_attention_forward",
           "flash_attention_backward", "tune"]
