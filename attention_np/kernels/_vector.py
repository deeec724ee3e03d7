"""Loops over one row vector, inlined by the kernels that work row by row
(:mod:`kernels.efficient`): dot product, y += a x, outer-product update, vector × matrix and
matrix × vector. They trust their inputs: 1-D / 2-D arrays of matching lengths, one dtype.
"""
from __future__ import annotations

from numba import njit

from attention_np.kernels._config import ELEMENTWISE


@njit(inline="always", **ELEMENTWISE)
def dot(a, b):
    """a · b, accumulated in the arrays' dtype."""
    acc = a.dtype.type(0)
    for d in range(a.shape[0]):
        acc += a[d] * b[d]
    return acc


@njit(inline="always", **ELEMENTWISE)
def axpy(a, x, y):
    """y += a x."""
    for d in range(x.shape[0]):
        y[d] += a * x[d]


@njit(inline="always", **ELEMENTWISE)
def outer_add(state, a, b):
    """state += a bᵀ."""
    for d in range(a.shape[0]):
        axpy(a[d], b, state[d])


@njit(inline="always", **ELEMENTWISE)
def vecmat(a, M, out):
    """out = a M  (a (n,), M (n, m))."""
    out[:] = 0
    for d in range(a.shape[0]):
        axpy(a[d], M[d], out)


@njit(inline="always", **ELEMENTWISE)
def matvec(M, x, out):
    """out = M x  (M (n, m), x (m,))."""
    for d in range(M.shape[0]):
        out[d] = dot(M[d], x)
