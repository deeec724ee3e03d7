"""Input checks of the public kernel wrappers: dtype, rank, contiguity.

The private ``@njit`` kernels trust their arguments: C-contiguous float32 or float64 arrays of
the documented shapes. Everything a user can get wrong is caught here, with the checks and the
compute-dtype rule of the reference library (:mod:`attention_np.nn.checks`,
:func:`attention_np.core.compute_dtype`: float16 is computed in float32 and cast back).
"""
from __future__ import annotations

import numpy as np

from attention_np.core import compute_dtype
from attention_np.nn.checks import as_float_array

KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def float_input(x, name: str, *, ndim=None, min_ndim=None, dtype=None):
    """Return (C-contiguous array in the compute dtype, dtype the result should have).

    ``dtype`` forces the compute dtype (used so every input of a kernel shares one dtype).
    """
    arr = as_float_array(x, name, ndim=ndim, min_ndim=min_ndim)
    work = compute_dtype(arr.dtype) if dtype is None else np.dtype(dtype)
    if work not in KERNEL_DTYPES:
        raise ValueError(f"{name} must be float16, float32 or float64 (the kernels compute in "
                         f"float32 or float64), got dtype {arr.dtype} with shape {arr.shape}")
    return np.ascontiguousarray(arr, dtype=work), arr.dtype
