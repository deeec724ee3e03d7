"""Input checks of the public kernel wrappers: dtype, rank, contiguity.

The private ``@njit`` kernels trust their arguments: C-contiguous float32 or float64 arrays of
the documented shapes. Everything a user can get wrong is caught here.
"""
from __future__ import annotations

import numpy as np

from attention_np.nn.checks import as_float_array

COMPUTE_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def compute_dtype(dtype) -> np.dtype:
    """float32 and float64 are computed as is; float16 in float32."""
    dtype = np.dtype(dtype)
    return dtype if dtype in COMPUTE_DTYPES else np.dtype(np.float32)


def float_input(x, name: str, *, ndim=None, min_ndim=None, dtype=None):
    """Return (C-contiguous array in the compute dtype, dtype the result should have).

    ``dtype`` forces the compute dtype (used so every input of a kernel shares one dtype).
    """
    arr = as_float_array(x, name, ndim=ndim, min_ndim=min_ndim)
    work = compute_dtype(arr.dtype) if dtype is None else np.dtype(dtype)
    return np.ascontiguousarray(arr, dtype=work), arr.dtype
