"""The fused encoder block (kernels.encoder, reached by encoder_block_forward(backend="numba")) and
its fused row kernels (kernels.fused) against torch autograd, the NumPy reference layers and
finite differences."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from attention_np.nn.activations import gelu_backward, gelu_forward, relu_backward, relu_forward
from attention_np.nn.layers import (layer_norm_backward, layer_norm_forward, masked_mean_forward)
from attention_np.models.minilm_layers import l2_normalize_forward
from attention_np.transformer import (EncoderConfig, encoder_block_backward,
                                      encoder_block_forward, encoder_packed_core,
                                      init_encoder_block)
from attention_np.kernels import fused
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
    dz, dg, db = np.empty_like(a), np.empty((3, d), dtype), np.empty((3, d), dtype)
    fused.layer_norm_backward(dy, z, rstd, gamma, dz, dg, db)
    for name, ours, peer, truth in zip(("dx", "dgamma", "dbeta"), (dz, dg.sum(0), db.sum(0)),
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
