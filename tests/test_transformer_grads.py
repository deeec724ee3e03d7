"""The encoder block's ∂L/∂α output (against torch autograd on a block written by hand) and the
numba backend on every path (the block against torch's TransformerEncoderLayer:
tests/test_transformer.py)."""
import numpy as np
import pytest
import torch

from attention_np.core import padding_mask
from attention_np.nn import backend as numba_backend
from attention_np.transformer import (EncoderConfig, encoder_backward, encoder_block_backward,
                                      encoder_block_forward, encoder_forward, init_encoder)
from tests.strategies import randn
from tests.test_transformer import config_of, random_params

def torch_block_by_hand(x, p, H, key_mask, norm_first):
    """The ReLU block written out in torch → (y, α), α.grad filled by torch: the reference for
    ∂L/∂α."""
    (B, T, d), F = x.shape, torch.nn.functional

    def ln(i, z):
        return F.layer_norm(z, (d,), p[f"ln{i}.gamma"], p[f"ln{i}.beta"], eps=1e-5)

    def heads(z, n):                                                      # (B, H, T, Dh)
        return (z @ p[f"attn.W_{n}"] + p[f"attn.b_{n}"]).view(B, T, H, d // H).transpose(1, 2)

    def attention(z):
        scores = heads(z, "q") @ heads(z, "k").transpose(-1, -2) / np.sqrt(d // H)
        alpha = torch.softmax(scores.masked_fill(~key_mask, -torch.inf), dim=-1)
        alpha.retain_grad()
        merged = (alpha @ heads(z, "v")).transpose(1, 2).reshape(B, T, d)
        return merged @ p["attn.W_o"] + p["attn.b_o"], alpha

    def ffn(z):
        return torch.relu(z @ p["ffn.W_1"] + p["ffn.b_1"]) @ p["ffn.W_2"] + p["ffn.b_2"]
    if norm_first:
        a, alpha = attention(ln(1, x))
        return x + a + ffn(ln(2, x + a)), alpha
    a, alpha = attention(x)
    h = ln(1, x + a)
    return ln(2, h + ffn(h)), alpha


@pytest.mark.parametrize("norm_first", [False, True])
def test_dweights_are_the_gradient_of_the_attention_weights(norm_first):
    """return_dweights=True adds ∂L/∂α (B, H, T, T), compared with torch autograd."""
    rng = np.random.default_rng(11)
    params, pad = random_params(rng, 6, 5, np.float64), padding_mask([4, 3], 4)
    x = randn(rng, (2, 4, 6))
    y, weights, cache = encoder_block_forward(x, params, config_of(2, norm_first=norm_first),
                                              mask=pad[:, None, None, :])
    dy = randn(rng, y.shape)
    dx, grads, dweights = encoder_block_backward(dy, cache, return_dweights=True)
    np.testing.assert_array_equal(dx, encoder_block_backward(dy, cache)[0])
    p = {k: torch.from_numpy(v).requires_grad_(True) for k, v in params.items()}
    yt, alpha = torch_block_by_hand(torch.from_numpy(x), p, 2,
                                    torch.from_numpy(pad[:, None, None, :]), norm_first)
    (yt * torch.from_numpy(dy)).sum().backward()
    np.testing.assert_allclose(weights, alpha.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(dweights, alpha.grad.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("norm_first", [False, True])
def test_numba_backend_matches_numpy_on_every_path(norm_first, monkeypatch):
    """backend="numba": the fused block for post-LN with no dropout active (evaluation, or
    training with both dropouts 0), else flash kernels (no weights) for the attention; while
    training with attention dropout the attention takes the NumPy path (weights returned),
    with sub-layer dropout alone it stays on the kernels; same dropout masks as NumPy."""
    pytest.importorskip("numba")
    fused_calls = []
    fused_forward = numba_backend.fused_block_forward

    def spy(*args, **kwargs):
        fused_calls.append(1)
        return fused_forward(*args, **kwargs)
    monkeypatch.setattr(numba_backend, "fused_block_forward", spy)
    rng = np.random.default_rng(12)
    params = random_params(rng, 6, 5, np.float64)
    x, mask = randn(rng, (2, 4, 6)), padding_mask([4, 3], 4)[:, None, None, :]
    for fields, training in (({}, False), ({}, True), ({"dropout": 0.2}, True),
                             ({"attn_dropout": 0.3}, True),
                             ({"dropout": 0.2, "attn_dropout": 0.3}, True)):
        config = config_of(2, norm_first=norm_first, **fields)
        runs = {}
        for backend in ("numpy", "numba"):
            fused_calls.clear()
            y, w, cache = encoder_block_forward(x, params, config, mask=mask, training=training,
                                                rng=np.random.default_rng(0), backend=backend)
            dx, grads, dw = encoder_block_backward(np.cos(y), cache, return_dweights=True)
            runs[backend] = {"y": y, "x": dx, **grads}
        fused = not norm_first and not fields                            # w, dw: the numba run's
        assert len(fused_calls) == fused, (fields, training)
        assert (w is None) == (dw is None) == (not (training and "attn_dropout" in fields))
        for name, value in runs["numpy"].items():
            np.testing.assert_allclose(runs["numba"][name], value, atol=1e-10, err_msg=name)


def test_numba_encoder_stack_matches_numpy():
    """encoder_forward passes its backend to every block: no weights, no ∂L/∂α, same values."""
    pytest.importorskip("numba")
    rng = np.random.default_rng(13)
    config = EncoderConfig(d_model=6, num_heads=2, d_ff=5, num_layers=2)
    params = init_encoder(config, rng)
    x = randn(rng, (2, 4, 6))
    y, weights, cache = encoder_forward(x, params, config, backend="numba")
    dx, _, dweights = encoder_backward(np.cos(y), cache, return_dweights=True)
    y_ref, weights_ref, cache_ref = encoder_forward(x, params, config)
    assert weights == dweights == [None, None] and weights_ref[0] is not None
    np.testing.assert_allclose(y, y_ref, atol=1e-10)
    np.testing.assert_allclose(dx, encoder_backward(np.cos(y_ref), cache_ref)[0], atol=1e-10)
