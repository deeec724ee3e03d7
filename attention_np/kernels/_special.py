"""Special functions, vectorisable inside ``@njit`` loops: erfc and the two terms of GELU and its
derivative (the fused GELU), the sigmoid and tanh (the fused recurrent cells). Like
:mod:`kernels._intrinsics`, each is a plain Python function (used when ``NUMBA_DISABLE_JIT=1``)
with an ``@overload`` whose constants are typed for float32 or float64, so float32 code stays
float32 (a Python float constant would widen it).

Note: Numba's on-disk cache does not track this module; delete ``kernels/__pycache__`` after
editing it.
"""
from __future__ import annotations

import math

import numpy as np
from numba.core import types
from numba.extending import overload

from attention_np.kernels._intrinsics import fast_exp


def fast_erfc(x):
    """erfc(x) = 1 − erf(x) = (2/√π) ∫ₓ^∞ e^(−t²) dt.

    float64: libm's erfc. float32: the Chebyshev fit of Numerical Recipes (Press et al., §6.2),
    erfc(z) ≈ t · exp(−z² + P(t)), t = 1 / (1 + z/2), z = |x|, P of degree 9, with relative
    error < 1.2e-7 for x ≥ 0 (so the tail of Φ(x) = erfc(−x/√2)/2 keeps its digits);
    erfc(−z) = 2 − erfc(z). One exponential and a division: vectorises.
    """
    return math.erfc(x)


_ERFC_P = (0.17087277, -0.82215223, 1.48851587, -1.13520398, 0.27886807, -0.18628806,
           0.09678418, 0.37409196, 1.00002368, -1.26551223)   # Horner order, highest first


@overload(fast_erfc, inline="always")
def _fast_erfc_ol(x):
    if x == types.float64:
        return lambda x: math.erfc(x)
    if x != types.float32:
        return None
    f = np.float32
    top, rest = f(_ERFC_P[0]), tuple(f(c) for c in _ERFC_P[1:])
    one, half, two = f(1.0), f(0.5), f(2.0)

    def impl(x):
        z = abs(x)
        t = one / (one + half * z)
        p = top
        for c in rest:                                 # constant trip count, unrolled
            p = p * t + c
        e = t * fast_exp(p - z * z)
        return e if x >= 0 else two - e                # NaN: two − NaN = NaN
    return impl


def normal_cdf(u):
    """Φ(u) = erfc(−u/√2) / 2, the standard normal CDF: GELU(u) = u Φ(u)."""
    return 0.5 * math.erfc(-u / math.sqrt(2.0))


def normal_pdf(u):
    """φ(u) = e^(−u²/2) / √(2π): GELU′(u) = Φ(u) + u φ(u)."""
    return math.exp(-0.5 * u * u) / math.sqrt(2.0 * math.pi)


def _typed(u):
    return None if u not in (types.float32, types.float64) else (
        np.float32 if u == types.float32 else np.float64)


# inline="always" (inlined by Numba, not left to LLVM): an overload that calls another
# overload is otherwise not inlined, and the loop calling it stays scalar (measured: 18 ns
# instead of 0.8 ns an element for the float32 GELU).
@overload(normal_cdf, inline="always")
def _normal_cdf_ol(u):
    f = _typed(u)
    if f is None:
        return None
    half, sqrt_half = f(0.5), f(math.sqrt(0.5))
    return lambda u: half * fast_erfc(-u * sqrt_half)


@overload(normal_pdf, inline="always")
def _normal_pdf_ol(u):
    f = _typed(u)
    if f is None:
        return None
    minus_half, inv_sqrt_2pi = f(-0.5), f(1.0 / math.sqrt(2.0 * math.pi))
    return lambda u: inv_sqrt_2pi * fast_exp(minus_half * u * u)


def fast_sigmoid(x):
    """σ(x) = 1 / (1 + e^(−x)), with the vectorisable :func:`fast_exp` inside ``@njit`` code.

    Saturates to 1 for large x (e^(−x) → 0) and to a tiny positive number or 0 for very
    negative x (fast_exp saturates near the largest float instead of overflowing); NaN gives NaN.
    """
    return 0.5 * (1.0 + math.tanh(0.5 * x))            # the same function, without overflow


def fast_tanh(x):
    """tanh(x) = 1 − 2 / (e^(2x) + 1), with the vectorisable :func:`fast_exp`.

    Exactly ±1 where e^(2x) saturates (|x| ≳ 44 in float32); NaN gives NaN. Near 0 the
    subtraction leaves an absolute (not relative) error of about one unit in the last place of
    1 — what a cell's state adds to anyway (c' = f ⊙ c + i ⊙ g).
    """
    return math.tanh(x)


@overload(fast_sigmoid, inline="always")
def _fast_sigmoid_ol(x):
    f = _typed(x)
    if f is None:
        return None
    one = f(1.0)
    return lambda x: one / (one + fast_exp(-x))


@overload(fast_tanh, inline="always")
def _fast_tanh_ol(x):
    f = _typed(x)
    if f is None:
        return None
    one, two = f(1.0), f(2.0)
    return lambda x: one - two / (fast_exp(two * x) + one)
