"""Flash attention kernels against torch SDPA (autograd), the NumPy reference, and themselves
without the JIT (NUMBA_DISABLE_JIT=1, in a subprocess, so coverage sees the kernel source)."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from attention_np.core import causal_mask
from attention_np.self_attention import (scaled_dot_product_attention_backward,
                                         scaled_dot_product_attention_forward)
from attention_np.kernels import flash_attention_backward, flash_attention_forward
from attention_np.kernels._tune import DEFAULT
from tests.helpers import assert_close, assert_matches_torch, check_finite_differences
from tests.strategies import dtypes, examples, randn, random_mask, seeds

MASK_SHAPES = {"none": None, "full": "BHQK", "keys": "B11K", "2d": "QK", "heads": "1HQK"}


def _mask_shape(kind, B, H, Tq, Tk):
    sizes = {"B": B, "H": H, "Q": Tq, "K": Tk, "1": 1}
    if MASK_SHAPES[kind] is None:
        return None
    return tuple(sizes[c] for c in MASK_SHAPES[kind])


def _visible(mask, causal, shape):
    """Full (B, H, Tq, Tk) boolean of visible pairs (mask ∧ causal)."""
    vis = np.ones(shape, bool) if mask is None else np.broadcast_to(mask, shape)
    return vis & causal_mask(shape[2], shape[3]) if causal else vis


@st.composite
def attention_cases(draw):
    """Shapes with B, H, Tq, Tk, D all different; blocks cut through odd T; masks with dead rows."""
    B, H, D = draw(st.lists(st.integers(1, 5), min_size=3, max_size=3, unique=True))
    Tq = draw(st.sampled_from([7, 33, DEFAULT.flash_bwd_block_q + 3, DEFAULT.flash_block_k + 9]))
    Tk = draw(st.sampled_from([6, 31, DEFAULT.flash_block_k + 11]).filter(lambda t: t != Tq))
    Dv = draw(st.sampled_from([D, D + 3]))
    kind = draw(st.sampled_from(sorted(MASK_SHAPES)))
    return (B, H, Tq, Tk, D + 2, Dv + 1), kind, draw(st.booleans())


def _ours(mask, causal):
    def ours(q, k, v):
        out, lse = flash_attention_forward(q, k, v, mask=mask, causal=causal)
        return out, lambda dout: dict(zip("qkv", flash_attention_backward(
            dout, q, k, v, out, lse, mask=mask, causal=causal)))
    return ours


def _torch_sdpa(visible):
    """torch SDPA with an additive finite mask (dead rows are excluded from the comparison)."""
    import torch
    bias = torch.from_numpy(np.where(visible, 0.0, -1e9))

    def theirs(q, k, v):
        return torch.nn.functional.scaled_dot_product_attention(q, k, v,
                                                                attn_mask=bias.to(q.dtype))
    return theirs


@examples(ci=25, thorough=5_000)   # ~30 ms an example (Numba kernels + torch, both dtypes)
@given(attention_cases(), dtypes, seeds)
def test_flash_matches_torch_sdpa(case, dtype, seed):
    (B, H, Tq, Tk, D, Dv), kind, causal = case
    rng = np.random.default_rng(seed)
    q, k = randn(rng, (B, H, Tq, D), dtype), randn(rng, (B, H, Tk, D), dtype)
    v = randn(rng, (B, H, Tk, Dv), dtype)
    shape = _mask_shape(kind, B, H, Tq, Tk)
    mask = None if shape is None else random_mask(rng, shape)
    visible = _visible(mask, causal, (B, H, Tq, Tk))
    alive = visible.any(-1, keepdims=True)
    assert_matches_torch("kernels.flash_attention", _ours(mask, causal), _torch_sdpa(visible),
                         {"q": q, "k": k, "v": v}, grad_wrt=["q", "k", "v"], out_rows=alive,
                         seed=seed)
    _check_lse(q, k, v, mask, causal, visible, dtype)


def _check_lse(q, k, v, mask, causal, visible, dtype):
    _, lse = flash_attention_forward(q, k, v, mask=mask, causal=causal)
    scores = np.einsum("bhqd,bhkd->bhqk", q.astype(float), k.astype(float)) / np.sqrt(q.shape[3])
    scores = np.where(visible, scores, -np.inf)
    top = np.max(scores, -1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        ref = np.log(np.sum(np.exp(scores - np.where(np.isfinite(top), top, 0)), -1)) + top[..., 0]
    assert lse.dtype == dtype and lse.shape == visible.shape[:3]
    assert np.all(lse[~visible.any(-1)] == -np.inf)
    peer = ref if dtype == np.float64 else _torch_lse(q, k, visible)   # float32's yardstick
    assert_close("lse", lse, peer, dtype, where=visible.any(-1), truth=ref)


def _torch_lse(q, k, visible):
    """torch's logsumexp of the visible scores, in q's dtype."""
    import torch
    scores = torch.einsum("bhqd,bhkd->bhqk", torch.from_numpy(q), torch.from_numpy(k))
    scores = scores / np.sqrt(q.shape[3])
    hidden = torch.from_numpy(~np.ascontiguousarray(visible))
    return torch.logsumexp(scores.masked_fill(hidden, -torch.inf), -1).numpy()


@examples(ci=10, thorough=5_000)
@given(attention_cases(), seeds)
def test_flash_matches_numpy_reference_float64(case, seed):
    (B, H, Tq, Tk, D, Dv), kind, causal = case
    rng = np.random.default_rng(seed)
    q, k = randn(rng, (B, H, Tq, D)), randn(rng, (B, H, Tk, D))
    v, dout = randn(rng, (B, H, Tk, Dv)), randn(rng, (B, H, Tq, Dv))
    shape = _mask_shape(kind, B, H, Tq, Tk)
    mask = None if shape is None else random_mask(rng, shape)
    out_ref, _, cache = scaled_dot_product_attention_forward(q, k, v, mask=mask, causal=causal)
    grads_ref = scaled_dot_product_attention_backward(dout, cache)
    out, lse = flash_attention_forward(q, k, v, mask=mask, causal=causal)
    assert_close("flash out vs numpy", out, out_ref, np.float64)
    grads = flash_attention_backward(dout, q, k, v, out, lse, mask=mask, causal=causal)
    for name, g, g_ref in zip("qkv", grads, grads_ref):
        assert_close(f"flash d{name} vs numpy", g, g_ref, np.float64)


def test_flash_finite_differences():
    rng = np.random.default_rng(4)
    inputs = {"q": rng.standard_normal((2, 1, 5, 3)), "k": rng.standard_normal((2, 1, 4, 3)),
              "v": rng.standard_normal((2, 1, 4, 2))}
    mask = rng.random((2, 1, 5, 4)) < 0.6
    check_finite_differences(_ours(mask, True), inputs, ["q", "k", "v"])


def test_flash_non_contiguous_inputs_custom_scale_and_dtype():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 40, 2, 8)).astype(np.float32)     # (B, T, H, D) layout
    q = k = v = x.transpose(0, 2, 1, 3)                            # (B, H, T, D) view
    out, lse = flash_attention_forward(q, k, v, scale=0.3)
    qc = np.ascontiguousarray(q, np.float64)
    w = np.exp(0.3 * qc @ qc.transpose(0, 1, 3, 2))
    ref = (w / w.sum(-1, keepdims=True)) @ qc
    assert out.dtype == np.float32 and lse.dtype == np.float32
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5)
    grads = flash_attention_backward(np.ones_like(out), q, k, v, out, lse, scale=0.3)
    assert all(g.dtype == np.float32 and g.shape == q.shape for g in grads)


def test_flash_errors_name_the_arguments():
    q = np.zeros((1, 2, 3, 4))
    with pytest.raises(ValueError, match="k's head dim"):
        flash_attention_forward(q, np.zeros((1, 2, 3, 5)), np.zeros((1, 2, 3, 4)))
    with pytest.raises(ValueError, match="mask"):
        flash_attention_forward(q, q, q, mask=np.ones((3, 3, 3), bool))
    with pytest.raises(ValueError, match="q must be 4-D"):
        flash_attention_forward(q[0], q, q)
    with pytest.raises(ValueError, match="lse must have shape"):
        flash_attention_backward(q, q, q, q, q, np.zeros((1, 2, 4)))


def test_flash_errors_exact_messages():
    """Each check names the argument and the sizes it compared (the whole message, so that a
    wrong name or axis in it shows)."""
    q, v4 = np.zeros((1, 2, 3, 4)), np.zeros((1, 2, 5, 4))
    with pytest.raises(ValueError) as info:
        flash_attention_forward(q, np.zeros((1, 2, 6, 4)), v4)
    assert str(info.value) == ("v must have as many rows as k (6); "
                               "got k(1, 2, 6, 4), v(1, 2, 5, 4)")
    out, lse = flash_attention_forward(q, q, q)
    cases = {"out must be 4-D, got shape (2, 3, 4)": dict(out=out[0]),
             "out must have shape (1, 2, 3, 4), got (1, 2, 3, 2)": dict(out=out[..., :2]),
             "lse must be 3-D, got shape (1, 2, 3, 1)": dict(lse=lse[..., None]),
             "lse must be 3-D, got shape (2, 3)": dict(lse=lse[0])}
    for message, bad in cases.items():
        args = dict(dout=out, q=q, k=q, v=q, out=out, lse=lse) | bad
        with pytest.raises(ValueError) as info:
            flash_attention_backward(**args)
        assert str(info.value) == message


def test_flash_computes_every_input_in_qs_dtype():
    """k, v (forward) and dout, out, lse (backward) are cast to q's compute dtype: float64
    arguments next to a float32 q give bit for bit the float32 results (one task: B = H = 1 and
    T below every block, so the kernels' order of sums is fixed)."""
    rng = np.random.default_rng(11)
    q32 = randn(rng, (1, 1, 5, 3), np.float32)
    k64, v64 = randn(rng, (1, 1, 6, 3)), randn(rng, (1, 1, 6, 4))
    k32, v32 = k64.astype(np.float32), v64.astype(np.float32)
    out, lse = flash_attention_forward(q32, k32, v32)
    for k, v in ((k64, v32), (k32, v64)):
        got = flash_attention_forward(q32, k, v)
        assert all(g.dtype == np.float32 for g in got)
        np.testing.assert_array_equal(got[0], out)
        np.testing.assert_array_equal(got[1], lse)
    dout64 = randn(rng, out.shape)
    grads = flash_attention_backward(dout64.astype(np.float32), q32, k32, v32, out, lse)
    wide = {"dout": dout64, "out": out.astype(np.float64) + 1e-12,
            "lse": lse.astype(np.float64) + 1e-9, "k": k64, "v": v64}
    for name, value in wide.items():
        args = dict(dout=dout64.astype(np.float32), q=q32, k=k32, v=v32, out=out, lse=lse)
        narrow = value.astype(np.float32)
        args[name] = narrow
        want = flash_attention_backward(**args)
        args[name] = value
        got = flash_attention_backward(**args)
        for g, w in zip(got, want):
            assert g.dtype == np.float32
            np.testing.assert_array_equal(g, w, err_msg=name)
    assert all(np.array_equal(g, w) for g, w in zip(
        flash_attention_backward(dout64.astype(np.float32), q32, k32, v32, out, lse), grads))


def test_flash_backward_defaults_and_custom_scale_match_numpy():
    """causal defaults to False in the backward as in the forward, and a custom scale reaches
    the backward: flash(q, scale=s) = reference(q · s·√D), so dq = s·√D · dq_ref."""
    rng = np.random.default_rng(12)
    q, k = randn(rng, (2, 3, 5, 4)), randn(rng, (2, 3, 7, 4))
    v, dout = randn(rng, (2, 3, 7, 6)), randn(rng, (2, 3, 5, 6))
    for scale in (None, 0.3):
        c = 1.0 if scale is None else scale * np.sqrt(4)
        out_ref, _, cache = scaled_dot_product_attention_forward(q * c, k, v)
        dq_ref, dk_ref, dv_ref = scaled_dot_product_attention_backward(dout, cache)
        out, lse = flash_attention_forward(q, k, v, scale=scale)
        assert_close("flash out", out, out_ref, np.float64)
        dq, dk, dv = flash_attention_backward(dout, q, k, v, out, lse, scale=scale)
        assert_close("flash dq", dq, c * dq_ref, np.float64)
        assert_close("flash dk", dk, dk_ref, np.float64)
        assert_close("flash dv", dv, dv_ref, np.float64)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 2, 4, 0), (1, 2, 0, 3), (0, 2, 4, 3), (2, 0, 4, 3)])
@pytest.mark.parametrize("masked, causal", [(False, False), (True, False), (False, True)])
def test_flash_forward_with_an_empty_side_has_dead_rows(dtype, shape, masked, causal):
    """No key (Tk = 0): every query row is dead, out = 0 and lse = −∞; no query, batch or
    head: empty results. Shapes and dtypes as q's, with or without a mask, causal or not."""
    B, H, Tq, Tk = shape
    q, k = np.ones((B, H, Tq, 3), dtype), np.ones((B, H, Tk, 3), dtype)
    v = np.ones((B, H, Tk, 5), dtype)
    mask = np.ones((B, H, Tq, Tk), bool) if masked else None
    out, lse = flash_attention_forward(q, k, v, mask=mask, causal=causal)
    assert out.dtype == lse.dtype == dtype
    assert out.shape == (B, H, Tq, 5) and lse.shape == (B, H, Tq)
    assert np.all(out == 0) and np.all(lse == -np.inf)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("Tq, Tk", [(0, 3), (4, 0), (0, 0)])
def test_flash_backward_of_empty_inputs_is_zero_in_the_input_dtype(dtype, Tq, Tk):
    """A backward with no query or no key rows returns zeros shaped and typed like q, k, v."""
    q, k = np.ones((1, 2, Tq, 3), dtype), np.ones((1, 2, Tk, 3), dtype)
    v = np.ones((1, 2, Tk, 5), dtype)
    out, lse = flash_attention_forward(q, k, v)
    grads = flash_attention_backward(np.ones_like(out), q, k, v, out, lse)
    for g, x in zip(grads, (q, k, v)):
        assert g.dtype == dtype and g.shape == x.shape and np.all(g == 0)

def test_compact_mask_undoes_broadcasts_and_pads_the_rank():
    """compact_mask: no mask → one True of shape (1, 1, 1, 1) and has_mask False; a mask of rank
    < 4 gets leading axes of size 1; an axis broadcast by np.broadcast_to (stride 0) shrinks to
    size 1; the result is a C-contiguous boolean copy holding the same pattern."""
    from attention_np.kernels.flash import compact_mask
    m, has_mask = compact_mask(None)
    assert m.dtype == np.bool_ and m.shape == (1, 1, 1, 1) and m.all() and has_mask is False
    rng = np.random.default_rng(14)
    m2 = rng.random((4, 5)) < 0.5
    full = rng.random((2, 3, 4, 5)) < 0.5
    for mask, want in [(m2, m2[None, None]), (m2[:, None], m2[None, :, None]),
                       (np.broadcast_to(m2, (2, 3, 4, 5)), m2[None, None]),
                       (np.broadcast_to(m2[:1], (2, 3, 4, 5)), m2[None, None, :1]),
                       (full[:, :, ::2], full[:, :, ::2])]:
        got, has_mask = compact_mask(mask)
        assert has_mask is True and got.dtype == np.bool_ and got.flags.c_contiguous
        assert got.shape == want.shape
        np.testing.assert_array_equal(got, want)


def test_flash_blas_thread_limit_policy(monkeypatch):
    """_blas_limit: BLAS is limited to one thread only when a tile product (m·k·n) exceeds
    OpenBLAS's serial size 65536·4 and Numba itself runs on several threads."""
    from attention_np.kernels import flash
    monkeypatch.setattr(flash, "single_threaded_blas", lambda: "one thread")
    for threads, (m, n, k), limited in [(2, (64, 64, 64), False), (2, (64, 64, 65), True),
                                        (2, (65, 64, 64), True), (1, (64, 64, 65), False)]:
        monkeypatch.setattr(flash.numba, "get_num_threads", lambda: threads)
        assert (flash._blas_limit(m, n, k) == "one thread") == limited, (threads, m, n, k)


def test_flash_sizes_its_blas_limit_and_tuning_by_the_problem(monkeypatch):
    """The cores ask _blas_limit about their largest tile product, (min(Tq, bq), min(Tk, bk),
    max(D, Dv)), and tell config() the flop count that decides first-use tuning:
    4·(B·H·Tq·D)·Tk for the forward (QKᵀ and PV) and 10·(B·H·Tq·D)·Tk for the backward (QKᵀ
    again, dV, dP, dQ, dK)."""
    from attention_np.kernels import flash
    calls = []
    real_limit, real_config = flash._blas_limit, flash.config
    monkeypatch.setattr(flash, "_blas_limit", lambda *a: calls.append(("blas",) + a)
                        or real_limit(*a))
    monkeypatch.setattr(flash, "config", lambda flop: calls.append(("flop", flop))
                        or real_config())
    rng = np.random.default_rng(13)
    B, H, Tq, Tk, D, Dv = 2, 3, 5, 7, 4, 6
    q, k, v = randn(rng, (B, H, Tq, D)), randn(rng, (B, H, Tk, D)), randn(rng, (B, H, Tk, Dv))
    out, lse = flash_attention_forward(q, k, v)
    flash_attention_backward(np.ones_like(out), q, k, v, out, lse)
    assert calls == [("flop", 4.0 * B * H * Tq * D * Tk), ("blas", Tq, Tk, Dv),
                     ("flop", 10.0 * B * H * Tq * D * Tk), ("blas", Tq, Tk, Dv)]


def test_flash_lse_with_empty_values_is_still_the_log_sum_exp():
    """Dv = 0 leaves no output to compute, but lse does not depend on v: it stays
    log Σ_j exp(scale q_i·k_j), not −inf (the wrapper once skipped the kernel on out.size)."""
    rng = np.random.default_rng(11)
    q, k = rng.standard_normal((1, 2, 3, 4)), rng.standard_normal((1, 2, 5, 4))
    out, lse = flash_attention_forward(q, k, np.zeros((1, 2, 5, 0)))
    scores = q @ np.swapaxes(k, -1, -2) / 2.0                          # scale 1/√D, D = 4
    top = scores.max(-1, keepdims=True)
    expected = (top + np.log(np.exp(scores - top).sum(-1, keepdims=True)))[..., 0]
    np.testing.assert_allclose(lse, expected,
                               rtol=1e-12)
    assert out.shape == (1, 2, 3, 0)


NO_JIT_SCRIPT = textwrap.dedent("""
    import numpy as np
    from attention_np import kernels
    from attention_np.core import softmax_forward
    from attention_np.self_attention import (scaled_dot_product_attention_backward as sdpa_bwd,
                                             scaled_dot_product_attention_forward as sdpa)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 5, 2))
    for axis in (1, -1):
        assert np.allclose(kernels.softmax(x, axis), softmax_forward(x, axis)[0])
        y, dy = softmax_forward(x, axis)[0], rng.standard_normal(x.shape)
        assert np.allclose(kernels.softmax_backward(y, dy, axis), y * (dy - (dy * y).sum(axis, keepdims=True)))
    a, b = rng.standard_normal((9, 10)), rng.standard_normal((10, 33))
    assert np.allclose(kernels.matmul(a, b), a @ b)
    q, k = rng.standard_normal((1, 2, 5, 3)), rng.standard_normal((1, 2, 4, 3))
    v, do = rng.standard_normal((1, 2, 4, 2)), rng.standard_normal((1, 2, 5, 2))
    mask = rng.random((5, 4)) < 0.5
    mask[1] = False
    out, lse = kernels.flash_attention_forward(q, k, v, mask=mask, causal=True)
    ref, _, cache = sdpa(q, k, v, mask=mask, causal=True)
    assert np.allclose(out, ref)
    got = kernels.flash_attention_backward(do, q, k, v, out, lse, mask=mask, causal=True)
    assert all(np.allclose(g, r) for g, r in zip(got, sdpa_bwd(do, cache)))
    from attention_np import transformer as tr                  # the fused block (kernels.encoder)
    cfg = tr.EncoderConfig(d_model=4, num_heads=2, d_ff=3, activation="gelu", causal=True)
    p, xb = tr.init_encoder_block(4, 3, rng), rng.standard_normal((2, 3, 4))
    runs = [tr.encoder_block_forward(xb, p, cfg, backend=b) for b in ("numpy", "numba")]
    assert runs[1][2]["fused"] and np.allclose(runs[0][0], runs[1][0])
    dxs = [tr.encoder_block_backward(np.cos(r[0]), r[2])[0] for r in runs]
    assert np.allclose(dxs[0], dxs[1])
    print("no-jit ok")
""")


def test_kernels_without_jit_in_subprocess():
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    res = subprocess.run([sys.executable, "-c", NO_JIT_SCRIPT], cwd=root, env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "no-jit ok" in res.stdout


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_flash_kernels_get_arrays_of_the_compute_dtype_only(monkeypatch, dtype):
    """The @njit kernels trust their input: the wrappers hand them C-contiguous arrays in one
    float dtype (q's compute dtype: float32 for float16) — their scratch and result buffers
    (out, lse, dq's per-thread parts) included — and one bool mask. A float64 buffer in a
    float32 call would compile a second kernel and change dq's rounding."""
    from attention_np.kernels import flash
    compute = np.dtype(np.float32 if dtype == np.float16 else dtype)
    seen = []

    def spy(kernel):
        def check(*args):
            arrays = [a for a in args if isinstance(a, np.ndarray)]
            floats = {a.dtype for a in arrays if a.dtype != np.bool_}
            seen.append(kernel.__name__)
            assert floats == {compute}, (kernel.__name__, floats)
            assert sum(a.dtype == np.bool_ for a in arrays) == 1
            assert all(a.flags.c_contiguous for a in arrays)
            return kernel(*args)
        return check
    monkeypatch.setattr(flash, "flash_forward_kernel", spy(flash.flash_forward_kernel))
    monkeypatch.setattr(flash, "flash_backward_kernel", spy(flash.flash_backward_kernel))
    rng = np.random.default_rng(8)
    q, k, v = (rng.standard_normal((2, 2, 5, 3)).astype(dtype) for _ in range(3))
    mask = rng.random((2, 1, 5, 5)) < 0.8
    out, lse = flash_attention_forward(q, k, v, mask=mask)
    flash_attention_backward(np.ones_like(out), q, k, v, out, lse, mask=mask)
    assert seen == ["flash_forward_kernel", "flash_backward_kernel"]
