"""Numba sliding-window and linear-attention kernels vs the NumPy references and torch."""
import os
import subprocess
import sys
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


def window_kernel(window, causal):
    def ours(q, k, v):
        out, lse = ke.sliding_window_attention_forward(q, k, v, window, causal)
        return out, lambda d: dict(zip("qkv", ke.sliding_window_attention_backward(
            d, q, k, v, out, lse, window, causal)))
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
