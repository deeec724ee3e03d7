"""Numba sliding-window and linear-attention kernels vs the NumPy references and torch."""
import os
import re
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from attention_np import efficient as ef
from attention_np.kernels import efficient as ke
from tests.helpers import assert_close, assert_matches_torch
from tests.strategies import randn

ROOT = Path(__file__).resolve().parents[1]


def inputs(dtype, B=2, H=3, T=41, D=6, Dv=5, seed=0):
    rng = np.random.default_rng(seed)
    return {"q": randn(rng, (B, H, T, D), dtype), "k": randn(rng, (B, H, T, D), dtype),
            "v": randn(rng, (B, H, T, Dv), dtype)}


def window_kernel(window, causal, scale=None):
    def ours(q, k, v):
        out, lse = ke.sliding_window_attention_forward(q, k, v, window, causal, scale=scale)
        return out, lambda d: dict(zip("qkv", ke.sliding_window_attention_backward(
            d, q, k, v, out, lse, window, causal, scale=scale)))
    return ours


def linear_kernel(causal):
    def ours(q, k, v):
        out, den = ke.linear_attention_forward(q, k, v, causal)
        return out, lambda d: dict(zip("qkv", ke.linear_attention_backward(
            d, q, k, v, out, den, causal)))
    return ours


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("causal", [False, True])
def test_sliding_window_kernel_matches_torch(dtype, causal):
    x = inputs(dtype)
    mask = torch.from_numpy(ef.sliding_window_mask(41, 4, causal))
    assert_matches_torch("kernels.sliding_window_attention", window_kernel(4, causal),
                         lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=mask),
                         x, ["q", "k", "v"])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("causal", [False, True])
def test_linear_kernel_matches_numpy_reference_and_torch(dtype, causal):
    x = inputs(dtype, T=70)
    out, den = ke.linear_attention_forward(**x, causal=causal)
    ref, _, cache = ef.linear_attention_forward(**x, causal=causal)
    x64 = {k: v.astype(np.float64) for k, v in x.items()}          # float32's yardstick
    truth, _, cache64 = ef.linear_attention_forward(**x64, causal=causal)
    assert_close("linear kernel vs reference", out, ref, dtype, truth=truth)
    dout = randn(np.random.default_rng(1), out.shape, dtype)
    for name, g, g_ref, g_true in zip("qkv", ke.linear_attention_backward(
            dout, **x, out=out, den=den, causal=causal), ef.linear_attention_backward(dout, cache),
            ef.linear_attention_backward(dout.astype(np.float64), cache64)):
        assert_close(f"linear kernel d{name}", g, g_ref, dtype, truth=g_true)

    def theirs(q, k, v):
        a = (F.elu(q) + 1) @ (F.elu(k) + 1).transpose(-1, -2)
        a = torch.tril(a) if causal else a
        return (a @ v) / (a.sum(-1, keepdim=True) + 1e-6)
    assert_matches_torch("kernels.linear_attention", linear_kernel(causal), theirs, x,
                         ["q", "k", "v"])


def test_window_kernel_equals_banded_reference_with_wide_window():
    x = inputs(np.float64, T=9)
    out, _ = ke.sliding_window_attention_forward(**x, window=20)
    ref, _, _ = ef.sliding_window_attention_forward(**x, window=20)
    np.testing.assert_allclose(out, ref, atol=1e-12)


def test_kernel_arguments_are_checked():
    x = inputs(np.float64, T=5)
    with pytest.raises(ValueError, match="window"):
        ke.sliding_window_attention_forward(**x, window=-2)
    with pytest.raises(ValueError, match="same B, H, T"):
        ke.linear_attention_forward(x["q"], x["k"][:, :, :3], x["v"])
    with pytest.raises(ValueError, match="q must be 4-D"):
        ke.linear_attention_forward(x["q"][0], x["k"], x["v"])


@pytest.mark.parametrize("causal", [False, True])
def test_sliding_window_kernel_explicit_scale_matches_torch(causal):
    """An explicit ``scale`` (not 1/√D) reaches both the forward and the backward: values and
    gradients equal torch's SDPA with the same ``scale``."""
    x = inputs(np.float64, T=13)
    mask = torch.from_numpy(ef.sliding_window_mask(13, 3, causal))
    assert_matches_torch("kernels.sliding_window_attention scale=0.7",
                         window_kernel(3, causal, scale=0.7),
                         lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                                                        scale=0.7),
                         x, ["q", "k", "v"])


@pytest.mark.parametrize("causal", [False, True])
def test_sliding_window_kernel_window_zero_attends_to_itself(causal):
    """window = 0 is allowed: each query sees only its own key, so out = v, and the one-key
    softmax has zero gradient: dq = dk = 0, dv = dout (derived by hand; up to the rounding of
    the kernel's polynomial exp, whose e⁰ may miss 1 by an ulp)."""
    x = inputs(np.float64, T=7)
    out, lse = ke.sliding_window_attention_forward(**x, window=0, causal=causal)
    np.testing.assert_allclose(out, x["v"], rtol=1e-14, atol=0)
    dout = randn(np.random.default_rng(1), out.shape)
    dq, dk, dv = ke.sliding_window_attention_backward(dout, **x, out=out, lse=lse, window=0,
                                                      causal=causal)
    np.testing.assert_allclose(dq, 0, atol=1e-13)
    np.testing.assert_allclose(dk, 0, atol=1e-13)
    np.testing.assert_allclose(dv, dout, rtol=1e-14, atol=0)


@pytest.mark.parametrize("kernel", ["sliding_window", "linear"])
def test_kernels_causal_defaults_to_false(kernel):
    """Leaving ``causal`` out of the forward and of the backward means non-causal attention:
    values and gradients equal the NumPy reference called with causal=False."""
    x = inputs(np.float64, T=9)
    dout = randn(np.random.default_rng(1), x["v"].shape)
    if kernel == "sliding_window":
        out, lse = ke.sliding_window_attention_forward(**x, window=2)
        grads = ke.sliding_window_attention_backward(dout, **x, out=out, lse=lse, window=2)
        ref, _, cache = ef.sliding_window_attention_forward(**x, window=2, causal=False)
        ref_grads = ef.sliding_window_attention_backward(dout, cache)
    else:
        out, den = ke.linear_attention_forward(**x)
        grads = ke.linear_attention_backward(dout, **x, out=out, den=den)
        ref, _, cache = ef.linear_attention_forward(**x, causal=False)
        ref_grads = ef.linear_attention_backward(dout, cache)
    assert_close(f"{kernel} default forward", out, ref, np.float64)
    for name, g, g_ref in zip("qkv", grads, ref_grads):
        assert_close(f"{kernel} default d{name}", g, g_ref, np.float64)


def _backward_call(kernel, x, dout, out, causal=False):
    """The kernel's backward on inputs ``x`` with the forward's own cache (lse or den)."""
    if kernel == "sliding_window":
        _, lse = ke.sliding_window_attention_forward(**x, window=2, causal=causal)
        return lambda **kw: ke.sliding_window_attention_backward(
            **{"dout": dout, **x, "out": out, "lse": lse, "window": 2, "causal": causal, **kw})
    _, den = ke.linear_attention_forward(**x, causal=causal)
    return lambda **kw: ke.linear_attention_backward(
        **{"dout": dout, **x, "out": out, "den": den, "causal": causal, **kw})


@pytest.mark.parametrize("kernel", ["sliding_window", "linear"])
@pytest.mark.parametrize("arg, shape, message", [
    ("k", (3, 5, 6), "k must be 4-D, got shape (3, 5, 6)"),
    ("v", (2, 3, 5, 5, 1), "v must be 4-D, got shape (2, 3, 5, 5, 1)"),
    ("dout", (3, 5, 5), "dout must be 4-D, got shape (3, 5, 5)"),
    ("dout", (2, 3, 5, 6), "dout must have shape (2, 3, 5, 5), got (2, 3, 5, 6)"),
    ("out", (2, 3, 5, 6), "out must have shape (2, 3, 5, 5), got (2, 3, 5, 6)"),
    ("out", (2, 3, 4, 5), "out must have shape (2, 3, 5, 5), got (2, 3, 4, 5)"),
])
def test_kernel_backward_errors_name_the_argument_and_shapes(kernel, arg, shape, message):
    """A wrong rank or shape of k, v, dout or out raises a ValueError whose whole message names
    that argument, its shape and (for dout/out) the output's shape (B, H, T, Dv) it must have.
    q is (2, 3, 5, 6) and v (2, 3, 5, 5): D ≠ Dv, so a message built from D is caught."""
    x = inputs(np.float64, T=5, D=6, Dv=5)
    dout = randn(np.random.default_rng(1), x["v"].shape)
    backward = _backward_call(kernel, x, dout, np.zeros_like(x["v"]))
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        backward(**{arg: np.zeros(shape)})


@pytest.mark.parametrize("kernel", ["sliding_window", "linear"])
@pytest.mark.parametrize("causal", [False, True])
def test_kernel_inputs_are_cast_to_q_compute_dtype(kernel, causal):
    """q sets the compute dtype: float64 k, v, dout, out and cache (lse / den, here from a
    float64 forward) with a float32 q give, bit for bit, the results of casting them to
    float32 by hand; results and the cache come back in float32."""
    x32 = inputs(np.float32, T=11, seed=2)
    x64 = {name: a.astype(np.float64) + 1e-4 * randn(np.random.default_rng(3), a.shape)
           for name, a in x32.items()}                       # not exactly float32 values
    mixed = {"q": x32["q"], "k": x64["k"], "v": x64["v"]}
    cast = {"q": x32["q"], "k": x64["k"].astype(np.float32), "v": x64["v"].astype(np.float32)}
    if kernel == "sliding_window":
        forward = lambda **a: ke.sliding_window_attention_forward(**a, window=2, causal=causal)
        backward = lambda cache, **a: ke.sliding_window_attention_backward(
            **a, lse=cache, window=2, causal=causal)
    else:
        forward = lambda **a: ke.linear_attention_forward(**a, causal=causal)
        backward = lambda cache, **a: ke.linear_attention_backward(**a, den=cache, causal=causal)
    out, cache = forward(**mixed)
    out_cast, cache_cast = forward(**cast)
    assert out.dtype == cache.dtype == np.float32
    np.testing.assert_array_equal(out, out_cast)
    np.testing.assert_array_equal(cache, cache_cast)
    _, cache64 = forward(**x64)                              # float64 cache, another dtype
    dout64 = randn(np.random.default_rng(4), out.shape, np.float64)
    grads = backward(cache64, dout=dout64, out=out.astype(np.float64), **mixed)
    grads_cast = backward(cache64.astype(np.float32), dout=dout64.astype(np.float32), out=out,
                          **cast)
    for name, g, g_cast in zip("qkv", grads, grads_cast):
        assert g.dtype == np.float32, f"d{name} dtype {g.dtype}"
        np.testing.assert_array_equal(g, g_cast, err_msg=f"d{name}")


def _peak_bytes(f):
    """(f's result, the peak of memory traced while it runs, NumPy's buffers included)."""
    tracemalloc.start()
    try:
        result = f()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("kernel", ["sliding_window", "linear"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernel_wrappers_allocate_only_their_results(kernel, dtype):
    """The wrappers hand back the kernels' own buffers: with inputs already C-contiguous in
    the compute dtype, the forward's peak memory is its (out, cache) and the backward's its
    (dq, dk, dv), within 25 % (no second copy of an output, no float64 buffer for float32)."""
    x = inputs(dtype, B=1, H=2, T=256, D=4, Dv=256)
    dout = randn(np.random.default_rng(1), x["v"].shape, dtype)
    if kernel == "sliding_window":
        forward = lambda: ke.sliding_window_attention_forward(**x, window=2)
        backward = lambda out, lse: ke.sliding_window_attention_backward(
            dout, **x, out=out, lse=lse, window=2)
    else:
        forward = lambda: ke.linear_attention_forward(**x)
        backward = lambda out, den: ke.linear_attention_backward(dout, **x, out=out, den=den)
    backward(*forward())                                     # compile outside the measurement
    (out, cache), peak = _peak_bytes(forward)
    assert out.dtype == cache.dtype == dtype
    assert peak <= 1.25 * (out.nbytes + cache.nbytes), (peak, out.nbytes + cache.nbytes)
    grads, peak = _peak_bytes(lambda: backward(out, cache))
    assert all(g.dtype == dtype for g in grads)
    assert peak <= 1.25 * sum(g.nbytes for g in grads), (peak, [g.nbytes for g in grads])


PURE_PYTHON_CASE = """
import numpy as np
from attention_np import efficient as ef
from attention_np.kernels import efficient as ke
rng = np.random.default_rng(0)
q, k, v, g = (rng.standard_normal((1, 2, 6, 3)) for _ in range(4))
for causal in (False, True):
    o, lse = ke.sliding_window_attention_forward(q, k, v, 2, causal)
    r, _, c = ef.sliding_window_attention_forward(q, k, v, 2, causal)
    grads = zip(ke.sliding_window_attention_backward(g, q, k, v, o, lse, 2, causal),
                ef.sliding_window_attention_backward(g, c))
    assert np.allclose(o, r) and all(np.allclose(a, b) for a, b in grads)
    o, den = ke.linear_attention_forward(q, k, v, causal)
    r, _, c = ef.linear_attention_forward(q, k, v, causal)
    grads = zip(ke.linear_attention_backward(g, q, k, v, o, den, causal),
                ef.linear_attention_backward(g, c))
    assert np.allclose(o, r) and all(np.allclose(a, b) for a, b in grads)
print("ok")
"""


def test_kernels_without_jit_match_reference():
    """NUMBA_DISABLE_JIT=1 runs the kernel source as Python, so coverage sees it."""
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    res = subprocess.run([sys.executable, "-c", PURE_PYTHON_CASE], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "ok"
