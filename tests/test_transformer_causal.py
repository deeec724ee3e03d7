"""The encoder block's ``causal`` and ``mlp`` options (a decoder-only LM's block): against a block
written out in torch, causal=True equal to an explicit causal mask, and the numba backend on the
flash kernels' causal mode."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from attention_np.core import causal_mask, padding_mask
from attention_np.transformer import (EncoderConfig, encoder_block_backward,
                                      encoder_block_forward, init_encoder, init_encoder_block)
from tests.helpers import assert_matches_torch, check_finite_differences, stacked_condition
from tests.strategies import distinct_dims, dtypes, randn, seeds
from tests.test_transformer import block_pair


def torch_block(x, p, H, *, norm_first, mlp, causal, activation="relu", eps=1e-5, mask=None,
                ln_rows=None):
    """The block written out in torch (F.scaled_dot_product_attention with a boolean mask,
    True = may attend); ``ln_rows`` collects every layer norm's input (for the float32 cond)."""
    B, T, d = x.shape
    act = F.relu if activation == "relu" else F.gelu

    def ln(i, z):
        if ln_rows is not None:
            ln_rows.append(z.detach().numpy())
        return F.layer_norm(z, (d,), p[f"ln{i}.gamma"], p[f"ln{i}.beta"], eps=eps)

    def heads(z, n):                                                      # (B, H, T, Dh)
        return (z @ p[f"attn.W_{n}"] + p[f"attn.b_{n}"]).view(B, T, H, d // H).transpose(1, 2)

    def attention(z):
        m = np.ones((T, T), bool) if mask is None else mask
        m = torch.from_numpy(np.asarray(m & (causal_mask(T) if causal else True)))
        o = F.scaled_dot_product_attention(heads(z, "q"), heads(z, "k"), heads(z, "v"),
                                           attn_mask=m)
        return o.transpose(1, 2).reshape(B, T, d) @ p["attn.W_o"] + p["attn.b_o"]

    def ffn(z):
        return act(z @ p["ffn.W_1"] + p["ffn.b_1"]) @ p["ffn.W_2"] + p["ffn.b_2"]
    if norm_first:
        h = x + attention(ln(1, x))
        return h + ffn(ln(2, h)) if mlp else h
    h = ln(1, x + attention(x))
    return ln(2, h + ffn(h)) if mlp else h


def random_block(rng, d, d_ff, dtype, mlp=True):
    """init_encoder_block with non-trivial biases and norms (every gradient matters)."""
    params = init_encoder_block(d, d_ff, rng, dtype, mlp)
    return {k: (v + 0.3 * rng.standard_normal(v.shape)).astype(dtype)
            if k.split(".")[-1].startswith("b_") or k.startswith("ln") else v
            for k, v in params.items()}


@given(dims=distinct_dims(4, lo=1, hi=6), d_ff=st.integers(1, 6), norm_first=st.booleans(),
       mlp=st.booleans(), causal=st.booleans(), activation=st.sampled_from(["relu", "gelu"]),
       padded=st.booleans(), dtype=dtypes, seed=seeds)
def test_block_options_match_torch(dims, d_ff, norm_first, mlp, causal, activation, padded,
                                   dtype, seed):
    """causal and mlp in every combination with pre/post-LN, with a padding mask on top (key 0
    is always real, so no row is dead)."""
    B, T, H, Dh = dims
    rng = np.random.default_rng(seed)
    mask = padding_mask(rng.integers(1, T + 1, size=B), T)[:, None, None, :] if padded else None
    params = random_block(rng, H * Dh, d_ff, dtype, mlp)
    inputs = {"x": randn(rng, (B, T, H * Dh), dtype), **params}

    def theirs(x, **p):
        return torch_block(x, p, H, norm_first=norm_first, mlp=mlp, causal=causal,
                           activation=activation, mask=mask)
    rows = []
    torch_block(torch.from_numpy(inputs["x"].astype(np.float64)),
                {k: torch.from_numpy(v.astype(np.float64)) for k, v in params.items()}, H,
                norm_first=norm_first, mlp=mlp, causal=causal, activation=activation,
                mask=mask, ln_rows=rows)
    cond = stacked_condition(rows)
    ours = block_pair(mask, H, activation=activation, norm_first=norm_first, causal=causal,
                      mlp=mlp)
    assert_matches_torch("encoder_block causal/mlp", ours, theirs, inputs,
                         list(inputs), seed=seed, cond=cond)


@pytest.mark.parametrize("norm_first", [False, True])
def test_every_layer_norm_uses_config_eps(norm_first):
    """config.eps reaches LN₁ and LN₂ on both paths: a large ε (0.5, far from the default
    1e-5) against the block written out in torch with that ε."""
    rng = np.random.default_rng(4)
    params = random_block(rng, 6, 5, np.float64)
    x = randn(rng, (2, 4, 6), scale=0.5)                                 # σ² comparable to ε
    y, _, _ = encoder_block_forward(x, params, EncoderConfig(num_heads=3, norm_first=norm_first,
                                                             eps=0.5))
    ref = torch_block(torch.from_numpy(x), {k: torch.from_numpy(v) for k, v in params.items()},
                      3, norm_first=norm_first, mlp=True, causal=False, eps=0.5)
    np.testing.assert_allclose(y, ref.numpy(), rtol=1e-12, atol=1e-12)


def test_attention_only_block_has_no_ffn_and_finite_differences():
    rng = np.random.default_rng(1)
    params = random_block(rng, 6, 5, np.float64, mlp=False)
    assert set(params) == {f"attn.{w}_{n}" for w in "Wb" for n in "qkvo"} | {"ln1.gamma",
                                                                            "ln1.beta"}
    for norm_first in (False, True):
        ours = block_pair(None, 3, norm_first=norm_first, causal=True, mlp=False)
        inputs = {"x": randn(rng, (2, 5, 6)), **params}
        check_finite_differences(ours, inputs, list(inputs), n_entries=5)
    stack = init_encoder(EncoderConfig(d_model=6, num_heads=3, d_ff=5, mlp=False), rng)
    assert set(stack) == {f"blocks.{i}.{k}" for i in range(2) for k in params}


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("mlp, norm_first", [(True, True), (False, True), (True, False)])
def test_causal_flag_equals_an_explicit_causal_mask(backend, mlp, norm_first):
    """causal=True (for numba: the flash kernels' causal mode, or the fused post-LN block) =
    mask=causal_mask(T) (numpy), forward and backward, also with a padding mask on top."""
    if backend == "numba":
        pytest.importorskip("numba")
    rng = np.random.default_rng(2)
    params = random_block(rng, 6, 5, np.float64, mlp)
    x, pad = randn(rng, (3, 7, 6)), padding_mask([7, 3, 5], 7)[:, None, None, :]
    fields = {"num_heads": 3, "mlp": mlp, "norm_first": norm_first}
    for mask in (None, pad):
        explicit = causal_mask(7) if mask is None else mask & causal_mask(7)
        y_ref, _, c_ref = encoder_block_forward(x, params, EncoderConfig(**fields),
                                                mask=explicit)
        y, w, c = encoder_block_forward(x, params, EncoderConfig(**fields, causal=True),
                                        mask=mask, backend=backend)
        np.testing.assert_allclose(y, y_ref, rtol=1e-12, atol=1e-12)
        assert (w is None) == (backend == "numba")
        dy = randn(rng, y.shape)
        (dx_ref, g_ref), (dx, g) = encoder_block_backward(dy, c_ref), encoder_block_backward(dy, c)
        np.testing.assert_allclose(dx, dx_ref, rtol=1e-10, atol=1e-12)
        for name in g_ref:
            np.testing.assert_allclose(g[name], g_ref[name], rtol=1e-10, atol=1e-12, err_msg=name)


def test_attention_only_params_are_checked():
    rng = np.random.default_rng(3)
    params, x = init_encoder_block(6, 5, rng, mlp=False), randn(rng, (2, 3, 6))
    with pytest.raises(ValueError, match="missing"):                      # mlp=True needs W_1
        encoder_block_forward(x, params, EncoderConfig(num_heads=3))
    bad = params | {"ln1.gamma": np.ones(5)}
    with pytest.raises(ValueError, match=r"params\['ln1.gamma'\]"):
        encoder_block_forward(x, bad, EncoderConfig(num_heads=3, mlp=False))
    y, _, _ = encoder_block_forward(x, params, EncoderConfig(num_heads=3, mlp=False))
    assert y.shape == x.shape
