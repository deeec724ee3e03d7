"""Scalar building blocks that LLVM can vectorise: max, fused multiply-add and exp.

Numba's ``max``/``np.maximum`` keep NumPy's NaN rules, which LLVM cannot turn into a vector
reduction, and ``math.exp`` is a scalar libm call (llvmlite ships no SVML). The functions here
emit LLVM intrinsics (``llvm.maxnum``, ``llvm.fma``, ``llvm.floor``) or plain arithmetic, so a
loop that calls them becomes SIMD code.

Each function is a plain Python function (used when ``NUMBA_DISABLE_JIT=1``) with an
``@overload`` that Numba uses inside ``@njit`` code.

Note: Numba's on-disk cache does not track this module; delete ``kernels/__pycache__`` after
editing it.
"""
from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic, overload


def maxnum(a, b):
    """max(a, b); when one is NaN, the other (LLVM ``maxnum`` semantics)."""
    return b if (a < b or a != a) else a


def fma(a, b, c):
    """a·b + c, rounded once."""
    return a * b + c


def fast_exp(x):
    """eˣ via range reduction and a polynomial (float32: ~1 ulp; float64: ~2 ulp).

    eˣ = 2ⁿ · eʳ,  n = round(x / ln 2),  r = x − n ln 2 ∈ [−ln2/2, ln2/2],
    eʳ ≈ Σ_{k≤K} rᵏ/k! (Horner),  2ⁿ built directly in the exponent bits.
    Underflows to exactly 0 below ln(smallest normal); saturates near the largest float;
    NaN gives NaN (the clamp alone would turn it into a finite number).
    """
    return 0.0 if x < -700.0 else math.exp(x)


def _call_llvm(builder, name, args):
    ty = args[0].type
    suffix = "f32" if isinstance(ty, ir.FloatType) else "f64"
    fnty = ir.FunctionType(ty, [ty] * len(args))
    fn = cgutils.get_or_insert_function(builder.module, fnty, f"llvm.{name}.{suffix}")
    return builder.call(fn, args)


def _same_floats(*args):
    return isinstance(args[0], types.Float) and all(a == args[0] for a in args)


def _codegen(name):
    return lambda context, builder, sig, args: _call_llvm(builder, name, args)


@intrinsic
def _llvm_maxnum(typingctx, a, b):
    return (a(a, b), _codegen("maxnum")) if _same_floats(a, b) else None


@intrinsic
def _llvm_minnum(typingctx, a, b):
    return (a(a, b), _codegen("minnum")) if _same_floats(a, b) else None


@intrinsic
def _llvm_fma(typingctx, a, b, c):
    return (a(a, b, c), _codegen("fma")) if _same_floats(a, b, c) else None


@intrinsic
def _llvm_floor(typingctx, a):
    return (a(a), _codegen("floor")) if _same_floats(a) else None


@intrinsic
def _pow2(typingctx, n):
    """2ⁿ for an integral-valued float n inside the normal exponent range (exponent bits)."""
    if not isinstance(n, types.Float):
        return None

    def codegen(context, builder, sig, args):
        f32 = isinstance(args[0].type, ir.FloatType)
        ity = ir.IntType(32 if f32 else 64)
        bias, shift = (127, 23) if f32 else (1023, 52)
        e = builder.add(builder.fptosi(args[0], ity), ir.Constant(ity, bias))
        return builder.bitcast(builder.shl(e, ir.Constant(ity, shift)), args[0].type)
    return n(n), codegen


@overload(maxnum)
def _maxnum_ol(a, b):
    return lambda a, b: _llvm_maxnum(a, b)


@overload(fma)
def _fma_ol(a, b, c):
    return lambda a, b, c: _llvm_fma(a, b, c)


def _exp_constants(dtype):
    """(lowest x with eˣ > 0, highest safe x, ln2 split in two, 1/ln2, Taylor coefficients)."""
    f = np.dtype(dtype).type
    if dtype == np.float32:
        lo, hi, degree = -87.3, 88.7, 7
        ln2_hi, ln2_lo = 0.693359375, -2.12194440e-4       # ln2_hi has 9 significant bits
    else:
        lo, hi, degree = -708.3, 709.7, 12
        ln2_hi, ln2_lo = 0.693145751953125, 1.42860682030941723212e-6
    coefs = tuple(f(1.0 / math.factorial(k)) for k in range(degree, -1, -1))
    return f(lo), f(hi), f(ln2_hi), f(ln2_lo), f(1.0 / math.log(2.0)), coefs


@overload(fast_exp)
def _fast_exp_ol(x):
    if x not in (types.float32, types.float64):
        return None
    dtype = np.float32 if x == types.float32 else np.float64
    lo, hi, ln2_hi, ln2_lo, log2e, coefs = _exp_constants(dtype)
    zero, half = dtype(0.0), dtype(0.5)
    top, rest = coefs[0], coefs[1:]

    def impl(x):
        xc = _llvm_minnum(_llvm_maxnum(x, lo), hi)
        n = _llvm_floor(xc * log2e + half)
        r = (xc - n * ln2_hi) - n * ln2_lo
        p = top
        for c in rest:                                 # Horner: constant trip count, unrolled
            p = p * r + c
        y = p * _pow2(n)
        return y if x >= lo else (zero if x < lo else x)      # x < lo: 0;  NaN: NaN
    return impl


def register_tile(zero, rows: int, cols: int):
    """A zeroed (rows, cols) scratch array of zero's dtype that LLVM can keep in registers.

    Inside ``@njit`` code it lives on the caller's stack (an ``alloca`` of constant size, which
    LLVM promotes to registers once the loops over it are unrolled); ``rows`` and ``cols`` must
    be compile-time constants (module globals).
    """
    return np.zeros((rows, cols), type(zero))


@intrinsic
def _stack_array(typingctx, zero, rows, cols):
    if not (isinstance(rows, types.IntegerLiteral) and isinstance(cols, types.IntegerLiteral)):
        return None
    arrty = types.Array(zero, 2, "C")
    R, C = rows.literal_value, cols.literal_value

    def codegen(context, builder, sig, args):
        from numba.np.arrayobj import make_array, populate_array
        llty = context.get_data_type(zero)
        itemsize = context.get_abi_sizeof(llty)
        data = cgutils.alloca_once(builder, llty, size=R * C)
        ary = make_array(arrty)(context, builder)
        intp = context.get_value_type(types.intp)
        populate_array(ary, data=data,
                       shape=[ir.Constant(intp, R), ir.Constant(intp, C)],
                       strides=[ir.Constant(intp, C * itemsize), ir.Constant(intp, itemsize)],
                       itemsize=ir.Constant(intp, itemsize), meminfo=None)
        return ary._getvalue()
    return arrty(zero, rows, cols), codegen


@overload(register_tile, inline="always")
def _register_tile_ol(zero, rows, cols):
    def impl(zero, rows, cols):
        tile = _stack_array(zero, rows, cols)
        for i in range(rows):
            for j in range(cols):
                tile[i, j] = zero
        return tile
    return impl
