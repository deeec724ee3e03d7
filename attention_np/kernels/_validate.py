"""Input checks of the public kernel wrappers: dtype, rank, contiguity, masks.

The kernels are a leaf of the package (they import numpy, numba, scipy and threadpoolctl only),
so they check their own inputs here rather than with :mod:`attention_np.nn.checks`. The rules
are the library's: integers and booleans are promoted to float64, float16 is computed in
float32 and cast back, masks are boolean (True = may attend) and broadcast to the scores, and
every message names the argument and its shape. The private ``@njit`` kernels trust what these
functions return: C-contiguous float32 or float64 arrays of the documented shapes.
"""
from __future__ import annotations

import numpy as np

KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def compute_dtype(dtype) -> np.dtype:
    """The dtype a kernel computes in: float16 → float32 (its exp and sums lose too much)."""
    dtype = np.dtype(dtype)
    return np.dtype(np.float32) if dtype == np.float16 else dtype


def float_input(x, name: str, *, ndim=None, min_ndim=None, dtype=None):
    """Return (C-contiguous array in the compute dtype, the dtype the result should have).

    ``ndim`` is an exact rank, ``min_ndim`` a lower bound; ``dtype`` forces the compute dtype
    (so that every input of one kernel shares it).
    """
    arr = np.asarray(x)
    if arr.dtype.kind in ("b", "i", "u"):
        arr = arr.astype(np.float64)
    elif arr.dtype.kind != "f":
        raise ValueError(f"{name} must be a floating-point array, got dtype {arr.dtype}")
    if (ndim is not None and arr.ndim != ndim) or (min_ndim is not None and arr.ndim < min_ndim):
        want = f"be {ndim}-D" if ndim is not None else f"have at least {min_ndim} dimensions"
        raise ValueError(f"{name} must {want}, got shape {arr.shape}")
    work = compute_dtype(arr.dtype) if dtype is None else np.dtype(dtype)
    if work not in KERNEL_DTYPES:
        raise ValueError(f"{name} must be float16, float32 or float64 (the kernels compute in "
                         f"float32 or float64), got dtype {arr.dtype} with shape {arr.shape}")
    return np.ascontiguousarray(arr, dtype=work), arr.dtype


def bool_mask(mask, name: str, shape: tuple):
    """A boolean mask (True = may attend) as a read-only view broadcast to ``shape``, or None."""
    if mask is None:
        return None
    m = np.asarray(mask)
    if m.dtype != np.bool_:
        raise ValueError(f"{name} must be a boolean array (True = may attend), got dtype "
                         f"{m.dtype} with shape {m.shape}")
    try:
        return np.broadcast_to(m, shape)
    except ValueError:
        raise ValueError(f"{name} with shape {m.shape} is not broadcastable to {shape}") from None


def upstream_gradient(dout, shape: tuple, name: str) -> np.ndarray:
    """The gradient handed to a backward, which must have the forward output's ``shape``."""
    dout = np.asarray(dout)
    if dout.shape != tuple(shape):
        raise ValueError(f"{name} must have the forward output's shape {tuple(shape)}, "
                         f"got {dout.shape}")
    return dout
