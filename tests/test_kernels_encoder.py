"""The fused encoder block (kernels.encoder, reached by encoder_block_forward(backend="numba")) and
its fused row kernels (kernels.fused) against torch autograd, the NumPy reference layers and
finite differences."""
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from attention_np.nn.activations import gelu_backward, gelu_forward, relu_backward, relu_forward
from attention_np.nn.layers import (layer_norm_backward, layer_norm_forward, masked_mean_forward)
from attention_np.models.minilm_layers import l2_normalize_forward
from attention_np.transformer import (_FUSED_NAMES, EncoderConfig, encoder_block_backward,
                                      encoder_block_forward, encoder_packed_core,
                                      init_encoder_block)
from attention_np.kernels import encoder, fused
from attention_np.kernels._validate import compute_dtype
from attention_np.kernels.encoder import packed_layout
from attention_np.nn.params import join, prefixed
from tests.helpers import (assert_close, assert_matches_torch, check_finite_differences,
                           layer_norm_condition, stacked_condition)
from tests.strategies import dtypes, examples, randn, random_mask, seeds

torch = pytest.importorskip("torch")
def _params(rng, d, d_ff, dtype):
    """init_encoder_block with every array moved off its initial value (biases 0, γ 1)."""
    p = init_encoder_block(d, d_ff, rng, np.float64)
    return {n: (v + 0.3 * rng.standard_normal(v.shape)).astype(dtype) for n, v in p.items()}


def _ours(config, mask):
    def ours(x, **p):
        y, w, cache = encoder_block_forward(x, p, config, mask, backend="numba")
        assert w is None and cache.get("fused")

        def backward(dy):
            dx, g = encoder_block_backward(dy, cache)
            return {"x": dx, **g}
        return y, backward
    return ours


def _theirs(config, visible, ln_rows):
    """The post-LN block in torch; rows that see no key get zero weights (as ours)."""
    F = torch.nn.functional

    def theirs(x, **p):
        B, T, d = x.shape
        H, Dh = config.num_heads, d // config.num_heads
        heads = [(x @ p[f"attn.W_{n}"] + p[f"attn.b_{n}"]).view(B, T, H, Dh).transpose(1, 2) for n in "qkv"]
        scores = heads[0] @ heads[1].transpose(-1, -2) / Dh**0.5
        vis = torch.from_numpy(np.ascontiguousarray(visible))
        w = torch.softmax(scores.masked_fill(~vis, -1e30), -1) * vis.any(-1, keepdim=True)
        ctx = (w @ heads[2]).transpose(1, 2).reshape(B, T, d)
        z1 = x + ctx @ p["attn.W_o"] + p["attn.b_o"]
        h = F.layer_norm(z1, (d,), p["ln1.gamma"], p["ln1.beta"], config.eps)
        u = h @ p["ffn.W_1"] + p["ffn.b_1"]
        a = F.gelu(u) if config.activation == "gelu" else F.relu(u)
        z2 = h + a @ p["ffn.W_2"] + p["ffn.b_2"]
        ln_rows.extend(z.detach().numpy().reshape(-1, d) for z in (z1, z2))
        return F.layer_norm(z2, (d,), p["ln2.gamma"], p["ln2.beta"], config.eps)
    return theirs


@st.composite
def block_cases(draw):
    B, T, H = draw(st.integers(1, 3)), draw(st.integers(1, 9)), draw(st.integers(1, 3))
    Dh, d_ff = draw(st.integers(1, 5)), draw(st.integers(1, 7))
    mask_kind = draw(st.sampled_from(["none", "keys", "full"]))
    return (B, T, H, Dh, d_ff), mask_kind, draw(st.booleans()), draw(st.sampled_from(
        ["gelu", "relu"]))


@examples(ci=25, thorough=2_000)   # ~0.1 s an example (torch twice, our block, both dtypes)
@given(block_cases(), dtypes, seeds)
def test_fused_block_matches_torch(case, dtype, seed):
    (B, T, H, Dh, d_ff), mask_kind, causal, activation = case
    rng = np.random.default_rng(seed)
    d = H * Dh
    config = EncoderConfig(d_model=d, num_heads=H, d_ff=d_ff, activation=activation,
                           eps=1e-5, causal=causal)
    mask = {"none": None, "full": random_mask(rng, (B, H, T, T)),
            "keys": (np.arange(T) < rng.integers(0, T + 1, (B, 1, 1, 1)))}[mask_kind]
    visible = np.ones((B, H, T, T), bool) if mask is None else np.broadcast_to(mask, (B, H, T, T))
    visible = visible & (np.tril(np.ones((T, T), bool)) if causal else True)
    inputs = {"x": randn(rng, (B, T, d), dtype), **_params(rng, d, d_ff, dtype)}
    rows = []
    theirs = _theirs(config, visible, rows)
    if dtype == np.float32:                  # the layer norms' condition, from float64 rows
        _theirs(config, visible, rows)(**{k: torch.from_numpy(v.astype(np.float64))
                                          for k, v in inputs.items()})
    cond = stacked_condition(rows, config.eps)
    assert_matches_torch("kernels.encoder block", _ours(config, mask), theirs, inputs,
                         grad_wrt=list(inputs), seed=seed, cond=cond)


def test_fused_block_matches_numpy_block_and_finite_differences():
    rng = np.random.default_rng(3)
    config = EncoderConfig(d_model=6, num_heads=2, d_ff=5, activation="gelu", eps=1e-12)
    mask = (np.arange(4) < np.array([4, 2, 0])[:, None])[:, None, None, :]   # a dead sequence
    x, p = rng.standard_normal((3, 4, 6)), _params(rng, 6, 5, np.float64)
    y_ref, _, cache_ref = encoder_block_forward(x, p, config, mask)
    y, _, cache = encoder_block_forward(x, p, config, mask, backend="numba")
    assert_close("fused block y", y, y_ref, np.float64)
    dy = rng.standard_normal(y.shape)
    (dx_ref, g_ref), (dx, g) = encoder_block_backward(dy, cache_ref), encoder_block_backward(
        dy, cache)
    assert_close("fused block dx", dx, dx_ref, np.float64)
    assert set(g) == set(g_ref) == set(p)
    for n in g_ref:
        assert_close(f"fused block d{n}", g[n], g_ref[n], np.float64)
    check_finite_differences(_ours(config, mask), {"x": x, **p},
                             ["x", "attn.W_q", "ffn.W_1", "ffn.b_2", "ln1.gamma"])
    with pytest.raises(ValueError, match="dy"):
        encoder_block_backward(dy[:, :3], cache)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fused_rows_match_the_reference_layers(dtype):
    rng = np.random.default_rng(4)
    N, d, f = 37, 19, 23
    a, res, dy = (randn(rng, (N, d), dtype, scale=3.0) for _ in range(3))
    bias, gamma, beta = (randn(rng, d, dtype) for _ in range(3))
    x = a.astype(np.float64) + bias + res
    y_true, c_true = layer_norm_forward(x, gamma.astype(float), beta.astype(float), 1e-5)
    y_peer, c_peer = layer_norm_forward((a + bias + res).astype(dtype), gamma, beta, 1e-5)
    y, rstd, z = np.empty_like(a), np.empty(N, dtype), a.copy()
    fused.add_layer_norm(z, bias, res, gamma, beta, dtype(1e-5), y, rstd)
    cond = layer_norm_condition(x, 1e-5)
    assert_close("add_layer_norm", y, y_peer, dtype, truth=y_true, cond=cond)
    dz, dg, db = np.empty_like(a), np.empty(d, dtype), np.empty(d, dtype)
    fused.layer_norm_backward(dy, z, rstd, gamma, dz, dg, db)
    for name, ours, peer, truth in zip(("dx", "dgamma", "dbeta"), (dz, dg, db),
                                       layer_norm_backward(dy, c_peer),
                                       layer_norm_backward(dy.astype(float), c_true)):
        assert_close(f"layer_norm_backward {name}", ours, peer, dtype, truth=truth, cond=cond)
    u = randn(rng, (N, f), dtype, scale=4.0)
    u[0, :4] = [-12.0, -8.0, 9.0, 0.0]                            # tails and zero
    b1 = randn(rng, f, dtype)
    for gelu, (fwd, bwd) in ((True, (gelu_forward, gelu_backward)),
                             (False, (relu_forward, relu_backward))):
        pre, out = u.copy(), np.empty_like(u)
        fused.bias_activation(pre, b1, gelu, out)
        inplace = u.copy()
        fused.bias_activation_inplace(inplace, b1, gelu)
        (ref, c_ref), (ref64, c64) = fwd(u + b1), fwd((u + b1).astype(np.float64))
        assert_close(f"bias_activation gelu={gelu}", out, ref, dtype, truth=ref64)
        np.testing.assert_array_equal(inplace, out)
        da = randn(rng, (N, f), dtype)
        grad = da.copy()
        fused.activation_backward(grad, pre, gelu)
        assert_close(f"activation_backward gelu={gelu}", grad, bwd(da, c_ref), dtype,
                     truth=bwd(da.astype(np.float64), c64))


def test_segment_mean_normalize_matches_reference():
    rng = np.random.default_rng(5)
    h = rng.standard_normal((4, 6, 5))
    mask = np.arange(6) < np.array([6, 3, 1, 0])[:, None]                   # an empty row
    starts, lengths, _ = packed_layout(mask.sum(axis=1))
    u = np.empty((4, 5))
    fused.segment_mean_normalize(np.ascontiguousarray(h[mask]), starts, lengths, u)
    ref = l2_normalize_forward(masked_mean_forward(h, mask)[0])[0]
    assert_close("segment_mean_normalize", u, ref, np.float64)
    assert np.all(u[3] == 0)


@pytest.mark.parametrize("causal,prefix", [(False, ""), (True, "enc")])
def test_packed_sequences_equal_the_padded_batch(causal, prefix):
    """The packed stack (the fused kernels on the real tokens back to back, its blocks read
    under ``prefix``) = the padded block on those tokens."""
    rng = np.random.default_rng(6)
    config = EncoderConfig(d_model=6, num_heads=3, d_ff=7, num_layers=1, activation="gelu",
                           causal=causal)
    p, x = _params(rng, 6, 7, np.float64), rng.standard_normal((4, 5, 6))
    mask = np.arange(5) < np.array([5, 2, 0, 4])[:, None]                   # (B, T) real tokens
    y, _, _ = encoder_block_forward(x, p, config, mask[:, None, None, :])
    packed = encoder_packed_core(np.ascontiguousarray(x[mask]), mask.sum(axis=1),
                                 prefixed(join(prefix, "blocks.0"), p), config, prefix)
    assert_close("packed block", packed, y[mask], np.float64)


# --- the wrappers of kernels.encoder called directly: dtypes, layouts, caches, copies ---------

def _kernel_case(rng, B, T, H, Dh, d_ff):
    """x (B, T, d), the block's parameters under the library's names (for the NumPy reference)
    and the same arrays under the names of kernels.encoder.WEIGHTS, all float64."""
    p = _params(rng, H * Dh, d_ff, np.float64)
    return rng.standard_normal((B, T, H * Dh)), p, {n: p[k] for n, k in _FUSED_NAMES.items()}


def _floating_arrays(obj, path="cache"):
    """(path, dtype) of every floating array or scalar inside a nested cache."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _floating_arrays(v, f"{path}[{k!r}]")
    elif isinstance(obj, (tuple, list)):
        for i, v in enumerate(obj):
            yield from _floating_arrays(v, f"{path}[{i}]")
    elif isinstance(obj, (np.ndarray, np.floating)) and obj.dtype.kind == "f":
        yield path, obj.dtype


def _key_mask(B, T, lengths):
    """(B, 1, 1, T): the first lengths[b] keys of sequence b are visible (0: a dead sequence,
    every query row of it fully masked)."""
    return (np.arange(T) < np.asarray(lengths)[:, None])[:, None, None, :]


@pytest.mark.parametrize("x_dtype,w_dtype,B,T,causal,lengths", [
    (np.float32, np.float32, 2, 3, False, None),
    (np.float32, np.float64, 3, 4, True, [4, 0, 2]),    # → float64 (x is promoted)
    (np.float64, np.float32, 2, 3, False, [3, 1]),      # → float64 (the weights are promoted)
    (np.float16, np.float16, 1, 1, False, None),        # → computed in float32, float16 out
    (np.float16, np.float32, 1, 5, True, [0]),           # → float32, one dead sequence
])
def test_run_block_computes_in_the_promoted_dtype(x_dtype, w_dtype, B, T, causal, lengths):
    """run_block / run_block_backward on mixed dtypes: y, dx and every gradient come out in
    result_type(x, W), computed in compute_dtype of it (float16 → float32), bit for bit the block
    on inputs cast to that dtype first; every floating array the cache keeps is in the compute
    dtype; a float64 dy reaching a float32 forward is cast to float32 first; the caller's
    arrays are left unchanged; a float64 result is the NumPy reference block's."""
    rng = np.random.default_rng(11)
    H, Dh, d_ff = 2, 3, 5
    x64, p, w64 = _kernel_case(rng, B, T, H, Dh, d_ff)
    mask = None if lengths is None else _key_mask(B, T, lengths)
    x, w = x64.astype(x_dtype), {n: v.astype(w_dtype) for n, v in w64.items()}
    x_before, w_before = x.copy(), {n: v.copy() for n, v in w.items()}
    out_dtype = np.result_type(x_dtype, w_dtype)
    dt = compute_dtype(out_dtype)

    y, cache = encoder.run_block(x, w, H, causal, True, 1e-5, mask)
    assert y.dtype == out_dtype and y.shape == x.shape
    wrong = [(path, t) for path, t in _floating_arrays(cache) if t != dt]
    assert not wrong, f"cache arrays not in the compute dtype {dt}: {wrong}"
    y_ref, cache_ref = encoder.run_block(x.astype(dt), {n: v.astype(dt) for n, v in w.items()},
                                         H, causal, True, 1e-5, mask)
    np.testing.assert_array_equal(y, y_ref.astype(out_dtype))
    assert np.all(np.isfinite(y))

    dy = rng.standard_normal(y.shape)                         # float64, whatever y's dtype
    dx, g = encoder.run_block_backward(dy, cache)
    dx_ref, g_ref = encoder.run_block_backward(dy.astype(dt), cache_ref)
    assert dx.dtype == out_dtype and set(g) == set(encoder.WEIGHTS)
    np.testing.assert_array_equal(dx, dx_ref.astype(out_dtype))
    for n in encoder.WEIGHTS:
        assert g[n].dtype == out_dtype, n
        np.testing.assert_array_equal(g[n], g_ref[n].astype(out_dtype), err_msg=n)

    np.testing.assert_array_equal(x, x_before)
    for n in w:
        np.testing.assert_array_equal(w[n], w_before[n], err_msg=n)
    if dt == np.float64:                         # the promoted block is the reference block
        config = EncoderConfig(d_model=H * Dh, num_heads=H, d_ff=d_ff, activation="gelu",
                               eps=1e-5, causal=causal)
        p_in = {k: v.astype(w_dtype).astype(dt) for k, v in p.items()}        # w's values
        y_np, _, c_np = encoder_block_forward(x.astype(dt), p_in, config, mask)
        assert_close("promoted block y", y, y_np, np.float64)
        dx_np, _ = encoder_block_backward(dy, c_np)
        assert_close("promoted block dx", dx, dx_np, np.float64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_block_forward_and_backward_stay_in_the_rows_dtype(dtype):
    """block_forward (keeping its cache by default, marked fused) and block_backward on rows
    and parameters of one dtype return y, dx and every gradient in that dtype, and are
    run_block's results on the padded batch."""
    rng = np.random.default_rng(12)
    B, T, H, Dh, d_ff = 2, 4, 3, 2, 5
    x64, _, w64 = _kernel_case(rng, B, T, H, Dh, d_ff)
    x, w = x64.astype(dtype), {n: v.astype(dtype) for n, v in w64.items()}
    rows, mask = x.reshape(B * T, H * Dh), _key_mask(B, T, [4, 2])
    y, cache = encoder.block_forward(rows, encoder.padded_layout(B, T), w, H, mask, True, False,
                                     1e-5)
    assert cache is not None and cache["fused"] is True
    assert y.dtype == dtype and y.shape == rows.shape
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx, g = encoder.block_backward(dy, cache)
    assert dx.dtype == dtype and dx.shape == rows.shape
    assert {n: v.dtype for n, v in g.items()} == {n: np.dtype(dtype) for n in encoder.WEIGHTS}
    y_run, c_run = encoder.run_block(x, w, H, True, False, 1e-5, mask)
    np.testing.assert_array_equal(y, y_run.reshape(rows.shape))
    dx_run, g_run = encoder.run_block_backward(dy.reshape(x.shape), c_run)
    np.testing.assert_array_equal(dx, dx_run.reshape(rows.shape))
    for n in encoder.WEIGHTS:
        np.testing.assert_array_equal(g[n], g_run[n], err_msg=n)


@pytest.mark.parametrize("gelu", [True, False])
def test_run_block_without_keep_returns_no_cache(gelu):
    """run_block(keep=False) returns (y, None), y bit for bit that of keep=True (the in-place
    activation gives the same values)."""
    rng = np.random.default_rng(13)
    x, _, w = _kernel_case(rng, 2, 3, 2, 2, 4)
    y_keep, cache = encoder.run_block(x, w, 2, False, gelu, 1e-5)
    y, none = encoder.run_block(x, w, 2, False, gelu, 1e-5, keep=False)
    assert cache is not None and none is None
    np.testing.assert_array_equal(y, y_keep)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_run_block_hands_back_its_arrays_without_a_copy(dtype, monkeypatch):
    """When no cast is needed (x and the weights in one float dtype), run_block returns the
    kernel's y rows reshaped, and run_block_backward the kernel's dx and gradients themselves:
    no extra copy of the (B, T, d) output or of the weights' gradients."""
    rng = np.random.default_rng(14)
    x64, _, w64 = _kernel_case(rng, 2, 3, 2, 2, 4)
    x, w = x64.astype(dtype), {n: v.astype(dtype) for n, v in w64.items()}
    seen = {}
    block_forward, block_backward = encoder.block_forward, encoder.block_backward

    def forward_spy(*args, **kwargs):
        seen["forward"] = block_forward(*args, **kwargs)
        return seen["forward"]

    def backward_spy(*args, **kwargs):
        seen["backward"] = block_backward(*args, **kwargs)
        return seen["backward"]

    monkeypatch.setattr(encoder, "block_forward", forward_spy)
    monkeypatch.setattr(encoder, "block_backward", backward_spy)
    y, cache = encoder.run_block(x, w, 2, False, True, 1e-5)
    assert y.dtype == dtype and np.shares_memory(y, seen["forward"][0])
    dx, g = encoder.run_block_backward(rng.standard_normal(y.shape).astype(dtype), cache)
    dx_kernel, g_kernel = seen["backward"]
    assert dx.dtype == dtype and np.shares_memory(dx, dx_kernel)
    for n in encoder.WEIGHTS:
        assert g[n].dtype == dtype and np.shares_memory(g[n], g_kernel[n]), n


def test_run_block_backward_names_dy_in_its_error():
    """A dy of the wrong shape is refused with the exact message naming dy and both shapes."""
    rng = np.random.default_rng(15)
    x, _, w = _kernel_case(rng, 2, 3, 2, 2, 4)
    _, cache = encoder.run_block(x, w, 2, False, True, 1e-5)
    msg = "dy must have the forward output's shape (2, 3, 4), got (2, 3)"
    with pytest.raises(ValueError, match="^" + re.escape(msg) + "$"):
        encoder.run_block_backward(np.zeros((2, 3)), cache)


def _torch_attention_rows(heads, visible, causal, B, T, H, dctx):
    """torch: ctx rows (N, d) of the multi-head attention at the heads (3, B·H, T, Dh) (rows that
    see no key get zero weights) and ∂(Σ ctx ⊙ dctx)/∂(q, k, v) as rows (3, N, d)."""
    Dh = heads.shape[-1]
    q, k, v = (torch.from_numpy(np.ascontiguousarray(h)).reshape(B, H, T, Dh).requires_grad_(True)
               for h in heads)
    vis = torch.from_numpy(np.ascontiguousarray(np.broadcast_to(visible, (B, H, T, T))))
    if causal:
        vis = vis & torch.ones(T, T, dtype=torch.bool).tril()
    w = torch.softmax((q @ k.transpose(-1, -2) / Dh**0.5).masked_fill(~vis, -1e30), -1)
    out = (w * vis.any(-1, keepdim=True)) @ v                                   # (B, H, T, Dh)
    ctx = out.transpose(1, 2).reshape(B * T, H * Dh)                            # (N, d)
    (ctx * torch.from_numpy(dctx)).sum().backward()
    grads = [t.grad.transpose(1, 2).reshape(B * T, H * Dh).numpy() for t in (q, k, v)]
    return ctx.detach().numpy(), np.stack(grads)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_attention_cache_and_backward_match_torch(dtype):
    """The forward's attention cache holds the q, k, v heads (3, B·H, T, Dh) = x W + b split into
    heads and ctx rows = torch's multi-head attention of them; _attention_backward turns dctx
    rows (N, d) into (dq, dk, dv) rows (3, N, d) in dctx's dtype, torch's gradients (causal,
    a dead sequence, T = 1 ≠ B)."""
    for B, T, H, Dh, lengths in ((3, 4, 2, 3, [4, 0, 2]), (2, 1, 3, 2, [1, 1])):
        rng = np.random.default_rng(16 + T)
        x64, _, w64 = _kernel_case(rng, B, T, H, Dh, 3)
        x, w = x64.astype(dtype), {n: v.astype(dtype) for n, v in w64.items()}
        mask, d = _key_mask(B, T, lengths), H * Dh
        _, cache = encoder.run_block(x, w, H, True, True, 1e-5, mask)
        heads = cache["attn"][0]
        assert heads.shape == (3, B * H, T, Dh)
        for i, n in enumerate("qkv"):
            proj = x.astype(np.float64) @ w[f"W_{n}"].astype(np.float64) + w[f"b_{n}"]
            split = proj.reshape(B, T, H, Dh).transpose(0, 2, 1, 3).reshape(B * H, T, Dh)
            assert_close(f"{n} heads", heads[i], split.astype(dtype), dtype, truth=split)
        dctx = rng.standard_normal((B * T, d)).astype(dtype)
        dq, dk, dv = encoder._attention_backward(dctx, cache["attn"], cache["layout"], H)
        assert dq.dtype == dk.dtype == dv.dtype == dtype
        heads64 = heads.astype(np.float64)
        ctx_peer, grads_peer = _torch_attention_rows(heads, mask, True, B, T, H, dctx)
        ctx_true, grads_true = _torch_attention_rows(heads64, mask, True, B, T, H,
                                                     dctx.astype(np.float64))
        assert_close("attention ctx rows", cache["ctx"], ctx_peer, dtype, truth=ctx_true)
        for name, ours, peer, truth in zip("qkv", (dq, dk, dv), grads_peer, grads_true):
            assert_close(f"attention d{name} rows", ours, peer, dtype, truth=truth)


@pytest.mark.parametrize("lengths,want_T", [
    ([3, 0, 2], 3),
    (np.array([1, 4], np.int32), 4),
    (np.array([2, 2, 1], np.uint8), 2),
    ([0, 0], 0),                                    # only empty sequences: no padded length
    ([], 0),                                        # no sequence at all
])
def test_packed_layout_is_int64_back_to_back(lengths, want_T):
    """packed_layout: int64 starts (the running sum of the lengths before each sequence) and
    int64 lengths whatever integer type the lengths come in, and T_max the longest length
    (0 when there is no token)."""
    starts, lens, T = encoder.packed_layout(lengths)
    lengths = np.asarray(lengths, np.int64)
    assert lens.dtype == np.int64 and starts.dtype == np.int64
    np.testing.assert_array_equal(lens, lengths)
    if len(lengths):
        np.testing.assert_array_equal(starts, np.cumsum(lengths) - lengths)
    assert T == want_T and isinstance(T, int)


@pytest.mark.parametrize("B,T", [(3, 4), (1, 1), (np.uint64(2), np.uint32(5)),
                                 (np.int32(3), np.int16(2))])
def test_padded_layout_is_int64(B, T):
    """padded_layout(B, T): int64 starts b·T and int64 lengths T, whatever integer type the
    sizes come in (shapes from NumPy arrays), and the padded length T."""
    starts, lengths, T_out = encoder.padded_layout(B, T)
    assert starts.dtype == np.int64 and lengths.dtype == np.int64
    np.testing.assert_array_equal(starts, np.arange(int(B)) * int(T))
    np.testing.assert_array_equal(lengths, np.full(int(B), int(T)))
    assert T_out == T


def test_run_packed_computes_in_the_rows_dtype_and_keeps_no_cache(monkeypatch):
    """run_packed computes in the rows' dtype: float32 rows with float64 weights give float32
    rows, bit for bit those of the weights cast to float32 first, equal to the padded block on
    the same tokens; it asks the block for no cache (none pinned in memory)."""
    rng = np.random.default_rng(17)
    B, T, H, Dh = 3, 4, 2, 3
    x64, _, w64 = _kernel_case(rng, B, T, H, Dh, 5)
    real = np.arange(T) < np.array([4, 0, 1])[:, None]                        # (B, T) tokens
    rows = np.ascontiguousarray(x64[real], np.float32)
    caches = []
    block_forward = encoder.block_forward

    def spy(*args, **kwargs):
        y, cache = block_forward(*args, **kwargs)
        caches.append(cache)
        return y, cache

    monkeypatch.setattr(encoder, "block_forward", spy)
    y = encoder.run_packed(rows, real.sum(axis=1), w64, H, False, True, 1e-5)
    assert caches == [None]
    assert y.dtype == np.float32 and y.shape == rows.shape
    w32 = {n: v.astype(np.float32) for n, v in w64.items()}
    np.testing.assert_array_equal(y, encoder.run_packed(rows, real.sum(axis=1), w32, H, False,
                                                        True, 1e-5))
    x32 = np.where(real[..., None], x64, 0).astype(np.float32)
    y_padded, _ = encoder.run_block(x32, w32, H, False, True, 1e-5, real[:, None, None, :])
    y64, _ = encoder.run_block(x32.astype(np.float64), w32, H, False, True, 1e-5,
                               real[:, None, None, :])
    assert_close("packed rows", y, y_padded[real], np.float32, truth=y64[real])
