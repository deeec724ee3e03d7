"""The encoder block against torch.nn.TransformerEncoderLayer; finite differences with dropout;
the mask checked once per block; the numba backend on every path."""
import re
from dataclasses import replace

import numpy as np
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st
from torch.func import functional_call

from attention_np.core import causal_mask, padding_mask
from attention_np.nn.layers import layer_norm_forward
from attention_np.self_attention import multi_head_attention_forward
from attention_np.transformer import (EncoderConfig, encoder_backward, encoder_block_backward,
                                      encoder_block_forward, encoder_forward, feed_forward_forward,
                                      ffn_sublayer_core, init_encoder, init_encoder_block)
from tests.helpers import (assert_matches_torch, check_finite_differences,
                           torch_layer_norm_condition)
from tests.strategies import distinct_dims, dtypes, randn, random_mask, seeds


def config_of(num_heads, **fields):
    """An EncoderConfig whose sizes the block reads from params (only num_heads matters)."""
    return EncoderConfig(num_heads=num_heads, **fields)


def block_pair(mask, num_heads, seed=None, training=False, backend="numpy", **fields):
    """ours(x, **params) for the helpers; a fresh rng per call so dropout masks repeat."""
    config = config_of(num_heads, **fields)

    def ours(x, **params):
        rng = None if seed is None else np.random.default_rng(seed)
        y, _, cache = encoder_block_forward(x, params, config, mask=mask, rng=rng,
                                            training=training, backend=backend)

        def backward(dy):
            dx, grads = encoder_block_backward(dy, cache)
            return {"x": dx, **grads}
        return y, backward
    return ours


def torch_block(d, H, d_ff, activation, norm_first, dtype):
    layer = torch.nn.TransformerEncoderLayer(d, H, d_ff, dropout=0.0, activation=activation,
                                             batch_first=True, norm_first=norm_first,
                                             dtype=torch.from_numpy(np.zeros(0, dtype)).dtype)
    return layer.train()     # train mode (dropout 0) keeps torch off its fused fast path


def torch_params(p):
    """Our row-vector parameters as torch's (out, in) weights, keeping the autograd graph."""
    a = {n: p[f"attn.{n}"] for n in ("W_q", "W_k", "W_v", "W_o", "b_q", "b_k", "b_v", "b_o")}
    return {"self_attn.in_proj_weight": torch.cat([a["W_q"].T, a["W_k"].T, a["W_v"].T]),
            "self_attn.in_proj_bias": torch.cat([a["b_q"], a["b_k"], a["b_v"]]),
            "self_attn.out_proj.weight": a["W_o"].T, "self_attn.out_proj.bias": a["b_o"],
            "linear1.weight": p["ffn.W_1"].T, "linear1.bias": p["ffn.b_1"],
            "linear2.weight": p["ffn.W_2"].T, "linear2.bias": p["ffn.b_2"],
            "norm1.weight": p["ln1.gamma"], "norm1.bias": p["ln1.beta"],
            "norm2.weight": p["ln2.gamma"], "norm2.bias": p["ln2.beta"]}


def random_params(rng, d, d_ff, dtype):
    """init_encoder_block, with non-trivial biases and norms so every gradient is tested."""
    params = init_encoder_block(d, d_ff, rng, dtype)
    for name, value in params.items():
        if name.split(".")[-1].startswith("b_") or name.startswith("ln"):
            params[name] = (value + 0.3 * rng.standard_normal(value.shape)).astype(dtype)
    return params


@given(dims=distinct_dims(5, lo=1, hi=7), norm_first=st.booleans(),
       activation=st.sampled_from(["relu", "gelu"]), causal=st.booleans(), dtype=dtypes,
       seed=seeds)
@example(dims=[5, 7, 2, 1, 6], norm_first=True, activation="gelu", causal=False,   # once flaky:
         dtype=np.float32, seed=3172865085)                                         # d_model = 2
@example(dims=[5, 3, 2, 1, 7], norm_first=True, activation="relu", causal=False,
         dtype=np.float32, seed=189675)
def test_block_matches_torch_encoder_layer(dims, norm_first, activation, causal, dtype, seed):
    B, T, H, Dh, d_ff = dims
    d = H * Dh
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, T + 1, size=B)
    pad = padding_mask(lengths, T)                                        # (B, T) True = real
    mask = pad[:, None, None, :] & (causal_mask(T) if causal else True)   # (B, 1, T, T)
    params = random_params(rng, d, d_ff, dtype)
    layer = torch_block(d, H, d_ff, activation, norm_first, dtype)

    def theirs(x, **p):
        kwargs = {"src_key_padding_mask": torch.from_numpy(~pad)}
        if causal:
            kwargs.update(src_mask=torch.from_numpy(~causal_mask(T)), is_causal=True)
        return functional_call(layer, torch_params(p), (x,), kwargs)

    pair = block_pair(mask, H, activation=activation, norm_first=norm_first)
    inputs = {"x": randn(rng, (B, T, d), dtype), **params}
    cond = 1.0 if dtype == np.float64 else torch_layer_norm_condition(   # d_model = 2: σ tiny
        [layer.norm1, layer.norm2], theirs, inputs)
    assert_matches_torch("encoder_block", pair, theirs, inputs, ["x", *params], seed=seed,
                         cond=cond)


@pytest.mark.parametrize("norm_first", [False, True])
def test_attention_dropout_path_matches_torch_when_nothing_is_dropped(norm_first):
    """The attention-dropout path (soft attention's dropout_p, taken when training with
    attn_dropout > 0) with p so small that no weight is dropped equals torch's layer."""
    rng = np.random.default_rng(3)
    B, T, H, d, d_ff = 3, 5, 2, 6, 7
    pad = padding_mask([5, 2, 4], T)
    params = random_params(rng, d, d_ff, np.float64)
    layer = torch_block(d, H, d_ff, "gelu", norm_first, np.float64)
    pair = block_pair(pad[:, None, None, :], H, seed=0, training=True, attn_dropout=1e-15,
                      activation="gelu", norm_first=norm_first)
    assert_matches_torch(
        "encoder_block attn-dropout path", pair,
        lambda x, **p: functional_call(layer, torch_params(p), (x,),
                                       {"src_key_padding_mask": torch.from_numpy(~pad)}),
        {"x": randn(rng, (B, T, d)), **params}, ["x", *params])


@pytest.mark.parametrize("norm_first,activation", [(False, "relu"), (True, "gelu")])
def test_block_finite_differences_with_dropout_and_dead_rows(norm_first, activation):
    rng = np.random.default_rng(4)
    B, T, H, d, d_ff = 2, 4, 2, 6, 5
    mask = random_mask(rng, (B, 1, T, T), p_dead_row=0.3)
    mask[0, 0, 1] = False                                                 # at least one dead row
    params = random_params(rng, d, d_ff, np.float64)
    pair = block_pair(mask, H, seed=7, training=True, dropout=0.2, attn_dropout=0.3,
                      activation=activation, norm_first=norm_first)
    inputs = {"x": randn(rng, (B, T, d)), **params}
    y, _ = pair(**inputs)
    assert np.all(np.isfinite(y))
    check_finite_differences(pair, inputs, ["x", *params], n_entries=6)


@pytest.mark.parametrize("norm_first", [False, True])
def test_dropout_is_off_at_evaluation_and_seeded_in_training(norm_first):
    rng = np.random.default_rng(5)
    x, params = randn(rng, (2, 3, 4)), init_encoder_block(4, 8, rng)
    config = config_of(2, dropout=0.5, attn_dropout=0.5, norm_first=norm_first)
    y_eval, _, _ = encoder_block_forward(x, params, config)
    y_ref, _, _ = encoder_block_forward(x, params, config_of(2, norm_first=norm_first))
    np.testing.assert_array_equal(y_eval, y_ref)
    # the FFN sub-layer's own default is evaluation too (lm.generate calls it without training)
    h = randn(rng, (2, 3, 4))
    np.testing.assert_array_equal(ffn_sublayer_core(h, params, config)[0],
                                  ffn_sublayer_core(h, params, replace(config, dropout=0.0))[0])
    # training with both dropouts 0 needs no rng and is the evaluation block
    y_train, _, _ = encoder_block_forward(x, params, config_of(2, norm_first=norm_first),
                                          training=True)
    np.testing.assert_array_equal(y_train, y_ref)
    runs = [encoder_block_forward(x, params, config, rng=np.random.default_rng(s),
                                  training=True)[0] for s in (1, 1, 2)]
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.allclose(runs[0], runs[2])


@pytest.mark.parametrize("norm_first", [False, True])
def test_training_dropout_equals_the_block_written_out_with_the_same_masks(norm_first):
    """Sub-layer dropout while training: the block's two inverted-dropout masks are the rng's
    next two draws (after the attention, which draws nothing when attn_dropout = 0), and the
    block equals its formula written out with the package's tested parts and those masks."""
    rng = np.random.default_rng(13)
    B, T, H, d, d_ff, p = 2, 3, 2, 4, 5, 0.4
    params, x = random_params(rng, d, d_ff, np.float64), randn(rng, (B, T, d))
    config = config_of(H, dropout=p, norm_first=norm_first)
    y, _, _ = encoder_block_forward(x, params, config, rng=np.random.default_rng(0),
                                    training=True)
    draws = np.random.default_rng(0)
    drop1, drop2 = ((draws.random((B, T, d)) >= p) / (1 - p) for _ in range(2))
    assert drop1.min() == drop2.min() == 0 and drop1.max() > 0          # both masks drop a few
    attn = {k[5:]: v for k, v in params.items() if k.startswith("attn.")}
    ffn = {k[4:]: v for k, v in params.items() if k.startswith("ffn.")}

    def ln(i, z):
        return layer_norm_forward(z, params[f"ln{i}.gamma"], params[f"ln{i}.beta"])[0]

    def mha(z):
        return multi_head_attention_forward(z, z, attn, H)[0]
    if norm_first:
        h = x + drop1 * mha(ln(1, x))
        ref = h + drop2 * feed_forward_forward(ln(2, h), ffn)[0]
    else:
        h = ln(1, x + drop1 * mha(x))
        ref = ln(2, h + drop2 * feed_forward_forward(h, ffn)[0])
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("norm_first,prefix", [(False, ""), (True, "enc")])
def test_encoder_stack_equals_blocks_in_turn_and_its_gradient(norm_first, prefix):
    """The stack reads prefix.blocks.{l}.* (and prefix.ln_f.* for pre-LN) from one flat dict,
    equals its blocks applied in turn (then LN_f), and its gradient is keyed like that dict."""
    rng = np.random.default_rng(6)
    config = EncoderConfig(d_model=6, num_heads=3, d_ff=5, num_layers=2, activation="gelu",
                           norm_first=norm_first, eps=0.3)                # LN_f reads config.eps
    params = init_encoder(config, rng, prefix=prefix)
    first = "enc." if prefix else ""
    assert f"{first}blocks.1.attn.W_q" in params and (f"{first}ln_f.gamma" in params) == norm_first
    params = {k: v + 0.1 * rng.standard_normal(v.shape) for k, v in params.items()}
    x, mask = randn(rng, (2, 4, 6)), padding_mask([4, 3], 4)[:, None, None, :]
    y, weights, cache, hidden = encoder_forward(x, params, config, prefix=prefix, mask=mask,
                                                return_hidden=True)
    h = x
    for layer in range(2):
        np.testing.assert_array_equal(hidden[layer], h)
        block = {k[len(f"{first}blocks.{layer}."):]: v for k, v in params.items()
                 if k.startswith(f"{first}blocks.{layer}.")}
        h = encoder_block_forward(h, block, config, mask=mask)[0]
    np.testing.assert_array_equal(hidden[2], h)
    if norm_first:
        h = layer_norm_forward(h, params[f"{first}ln_f.gamma"], params[f"{first}ln_f.beta"],
                               eps=0.3)[0]
    np.testing.assert_allclose(y, h, rtol=1e-12)
    assert [w.shape for w in weights] == [(2, 3, 4, 4)] * 2
    assert np.all(weights[0][1, :, :, 3] == 0)                            # the padded key

    def ours(x, **p):
        out, _, c = encoder_forward(x, p, config, prefix=prefix, mask=mask)

        def backward(dy):
            dx, g = encoder_backward(dy, c)
            return {"x": dx, **g}
        return out, backward
    check_finite_differences(ours, {"x": x, **params}, ["x", *params], n_entries=3)
    dx, grads = encoder_backward(np.ones_like(y), cache)
    assert dx.shape == x.shape and set(grads) == set(params)


def test_encoder_stack_dropout_and_dweights_follow_its_blocks():
    """Training, the stack draws its dropout masks block after block from the one rng it was
    given (= encoder_block_forward in turn sharing a generator); at evaluation (the default)
    it needs no rng; return_dweights gives each layer's ∂L/∂α in layer order, as the blocks'
    own backwards walked from the top give them."""
    rng = np.random.default_rng(14)
    config = EncoderConfig(d_model=6, num_heads=3, d_ff=5, num_layers=2, dropout=0.3,
                           attn_dropout=0.2)
    params = init_encoder(config, rng)
    params = {k: v + 0.1 * rng.standard_normal(v.shape) for k, v in params.items()}
    blocks = [{k[len(f"blocks.{i}."):]: v for k, v in params.items()
               if k.startswith(f"blocks.{i}.")} for i in range(2)]
    x, mask = randn(rng, (2, 4, 6)), padding_mask([4, 3], 4)[:, None, None, :]
    y, _, cache = encoder_forward(x, params, config, mask=mask, rng=np.random.default_rng(1),
                                  training=True)
    shared, h = np.random.default_rng(1), x
    for block in blocks:
        h = encoder_block_forward(h, block, config, mask=mask, rng=shared, training=True)[0]
    np.testing.assert_array_equal(y, h)
    off = replace(config, dropout=0.0, attn_dropout=0.0)
    y_eval, y_off = encoder_forward(x, params, config)[0], encoder_forward(x, params, off)[0]
    np.testing.assert_array_equal(y_eval, y_off)
    assert not np.allclose(y, y_eval)

    dy = randn(rng, y.shape)
    dx, grads, dweights = encoder_backward(dy, cache, return_dweights=True)
    d, by_block = dy, {}
    for layer in (1, 0):
        d, _, by_block[layer] = encoder_block_backward(d, cache["blocks"][layer],
                                                       return_dweights=True)
    np.testing.assert_array_equal(dx, d)
    assert len(dweights) == 2 and not np.allclose(by_block[0], by_block[1])
    for layer in (0, 1):
        np.testing.assert_array_equal(dweights[layer], by_block[layer])


def test_float32_in_float32_out():
    rng = np.random.default_rng(8)
    params = init_encoder_block(4, 6, rng, np.float32)
    x = randn(rng, (2, 3, 4), np.float32)
    y, w, cache = encoder_block_forward(x, params, config_of(2, dropout=0.1, attn_dropout=0.1),
                                        training=True, rng=rng)
    dx, grads = encoder_block_backward(np.ones_like(y), cache)
    assert y.dtype == w.dtype == dx.dtype == np.float32
    assert all(g.dtype == np.float32 for g in grads.values())


def test_bad_arguments_raise_value_error():
    rng = np.random.default_rng(9)
    params = init_encoder_block(4, 6, rng)
    x = randn(rng, (2, 3, 4))
    with pytest.raises(ValueError, match="activation"):
        encoder_block_forward(x, params, config_of(2, activation="swish"))
    with pytest.raises(ValueError, match="missing"):
        encoder_block_forward(x, {k: v for k, v in params.items() if k != "ffn.W_1"},
                              config_of(2))
    with pytest.raises(ValueError, match="num_heads"):
        encoder_block_forward(x, params, config_of(3))
    with pytest.raises(ValueError, match="x must be 3-D"):
        encoder_block_forward(x[0], params, config_of(2))
    with pytest.raises(ValueError, match="rng"):
        encoder_block_forward(x, params, config_of(2, dropout=0.5), training=True)


def _raises_exactly(message, call):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        call()


def test_bad_arguments_raise_exact_messages():
    """The messages name the argument as the caller wrote it (config.activation, params['…']
    with the block's, the FFN's or the stack's key) and say why an rng is needed."""
    rng = np.random.default_rng(9)
    params, x = init_encoder_block(4, 6, rng), randn(rng, (2, 3, 4))
    ffn = {k[4:]: v for k, v in params.items() if k.startswith("ffn.")}
    stack_config = EncoderConfig(d_model=4, num_heads=2, d_ff=6, norm_first=True)
    stack = init_encoder(stack_config, rng, prefix="enc")
    cases = [
        (lambda: encoder_block_forward(x, params, config_of(2, activation="swish")),
         "config.activation must be one of ['gelu', 'relu'], got 'swish'"),
        (lambda: encoder_block_forward(x, {k: v for k, v in params.items() if k != "ffn.b_1"},
                                       config_of(2)),
         "params is missing ['ffn.b_1'] (make them with init_encoder_block)"),
        (lambda: encoder_block_forward(x, params | {"attn.W_q": np.ones((4, 3))}, config_of(2)),
         "params['attn.W_q'] must have shape (4, 4), got (4, 3)"),
        (lambda: encoder_block_forward(x, params | {"ffn.W_1": np.ones((3, 6))}, config_of(2)),
         "params['ffn.W_1'] must have shape (4, ?), got (3, 6)"),
        (lambda: encoder_block_forward(x, params, config_of(2, dropout=0.5), training=True),
         "rng must be a numpy.random.Generator when training with dropout 0.5, got NoneType"),
        (lambda: encoder_block_forward(x, params, config_of(2, attn_dropout=0.3), training=True),
         "rng must be a numpy.random.Generator when dropout_p > 0 (dropout_p=0.3), "
         "got NoneType"),
        (lambda: feed_forward_forward(x, ffn | {"W_1": np.ones((3, 6))}),
         "params['W_1'] must have shape (4, ?), got (3, 6)"),
        (lambda: feed_forward_forward(x, ffn | {"W_2": np.ones((6, 3))}),
         "params['W_2'] must have shape (6, 4), got (6, 3)"),
        (lambda: feed_forward_forward(np.float64(1.0), ffn),
         "h must have at least 1 dimensions, got shape ()"),
        (lambda: init_encoder(EncoderConfig(d_model=6, num_heads=4), rng),
         "num_heads (4) must be a positive divisor of d_model (6); config.d_model is 6"),
        (lambda: encoder_forward(x, stack | {"enc.ln_f.gamma": np.ones(3)}, stack_config,
                                 prefix="enc"),
         "params['enc.ln_f.gamma'] must have shape (4,), got (3,)"),
        (lambda: encoder_forward(x, stack, replace(stack_config, dropout=0.5), prefix="enc",
                                 training=True),
         "rng must be a numpy.random.Generator when training with dropout 0.5, got NoneType"),
    ]
    for call, message in cases:
        _raises_exactly(message, call)


def test_feed_forward_acts_on_each_position_of_any_rank():
    """FFN is position-wise: one position h (d,) gives that row of a batch (..., d)."""
    rng = np.random.default_rng(15)
    ffn = {k[4:]: v for k, v in random_params(rng, 4, 6, np.float64).items()
           if k.startswith("ffn.")}
    h = randn(rng, (2, 3, 4))
    f = feed_forward_forward(h, ffn, "gelu")[0]
    np.testing.assert_allclose(feed_forward_forward(h[1, 2], ffn, "gelu")[0], f[1, 2],
                               rtol=1e-13, atol=1e-15)


def test_one_block_call_checks_its_mask_once(mask_checks):
    """check_mask runs once per block call, wherever the library imported it from."""
    rng = np.random.default_rng(10)
    params = init_encoder_block(6, 5, rng)
    x, mask = randn(rng, (2, 4, 6)), padding_mask([4, 2], 4)[:, None, None, :]
    for config, training in ((config_of(3), False), (config_of(3, norm_first=True), False),
                             (config_of(3, dropout=0.1, attn_dropout=0.2), True)):
        mask_checks.clear()
        y, _, cache = encoder_block_forward(x, params, config, mask=mask, rng=rng,
                                            training=training)
        encoder_block_backward(np.ones_like(y), cache, return_dweights=True)
        assert mask_checks == ["mask"], (config, mask_checks)
