"""DIN activation unit and attention pooling against torch autograd (its baseline, masked mean
pooling, is tested in test_layers.py)."""
import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st

from attention_np.din import (din_activation_backward, din_activation_forward,
                              din_attention_backward, din_attention_forward, init_din_params)
from tests.helpers import assert_matches_torch, check_finite_differences
from tests.strategies import distinct_dims, dtypes, examples, randn, seeds

PARAM_NAMES = ["W1", "b1", "w2", "b2"]


def _inputs(B, T, D, H, dtype, seed):
    rng = np.random.default_rng(seed)
    p = init_din_params(D, H, rng, dtype)
    p["b1"] = randn(rng, H, dtype, 0.5)
    p["b2"] = randn(rng, 1, dtype)
    mask = rng.random((B, T)) < 0.7
    mask[0] = False                                   # a user with no behaviour at all
    return {"h": randn(rng, (B, T, D), dtype), "a": randn(rng, (B, D), dtype), **p}, mask


def _torch_din(mask, normalize):
    m = torch.from_numpy(mask)

    def theirs(h, a, W1, b1, w2, b2):
        ab = a[:, None, :].expand_as(h)
        z = torch.cat([h, ab, h * ab, h - ab], dim=-1)
        s = torch.sigmoid(z @ W1 + b1) @ w2 + b2
        if normalize == "softmax":
            w = torch.softmax(s.masked_fill(~m, -torch.inf), dim=-1).nan_to_num(0.0)
        else:
            w = s.masked_fill(~m, 0.0)
        return torch.cat([torch.einsum("bt,btd->bd", w, h), w], dim=1)
    return theirs


def _ours_din(mask, normalize):
    def ours(h, a, W1, b1, w2, b2):
        params = {"W1": W1, "b1": b1, "w2": w2, "b2": b2}
        pooled, weights, cache = din_attention_forward(h, a, params, mask, normalize)
        D = h.shape[2]

        def backward(dout):
            dh, da, g = din_attention_backward(dout[:, :D], cache, dweights=dout[:, D:])
            return {"h": dh, "a": da, **g}
        return np.concatenate([pooled, weights], axis=1), backward
    return ours


@examples(ci=80, thorough=10_000)   # each example runs torch autograd; keep CI short
@given(dims=distinct_dims(4, 1, 7), dtype=dtypes, seed=seeds,
       normalize=st.sampled_from(["none", "softmax"]))
def test_din_attention_matches_torch(dims, dtype, seed, normalize):
    B, T, D, H = dims
    B += 1                                            # row 0 is fully masked; keep others
    inputs, mask = _inputs(B, T, D, H, dtype, seed)
    assert_matches_torch(f"din_attention[{normalize}]", _ours_din(mask, normalize),
                         _torch_din(mask, normalize), inputs, ["h", "a"] + PARAM_NAMES)


@pytest.mark.parametrize("normalize", ["none", "softmax"])
def test_din_attention_finite_differences(normalize):
    inputs, mask = _inputs(3, 5, 4, 6, np.float64, 7)
    check_finite_differences(_ours_din(mask, normalize), inputs, ["h", "a"] + PARAM_NAMES)


def test_fully_masked_user_gets_zero_pooling_and_gradients():
    inputs, mask = _inputs(3, 5, 4, 6, np.float64, 1)
    out, backward = _ours_din(mask, "softmax")(**inputs)
    assert np.all(out[0] == 0)
    grads = backward(np.ones_like(out))
    assert np.all(grads["h"][0] == 0) and np.all(np.isfinite(grads["a"]))


def test_no_mask_means_every_behaviour_counts():
    """mask=None is the all-True mask, for both poolings, forward and backward (softmax
    backward also without dweights)."""
    inputs, _ = _inputs(3, 5, 4, 6, np.float64, 2)
    h, a = inputs["h"], inputs["a"]
    p = {k: inputs[k] for k in PARAM_NAMES}
    dpooled = np.random.default_rng(5).standard_normal((3, 4))
    for normalize in ("none", "softmax"):
        pooled, weights, cache = din_attention_forward(h, a, p, None, normalize)
        pooled_m, weights_m, cache_m = din_attention_forward(h, a, p, np.ones((3, 5), bool),
                                                             normalize)
        np.testing.assert_array_equal(pooled, pooled_m)
        np.testing.assert_array_equal(weights, weights_m)
        assert np.all(weights != 0)
        assert cache["mask"].dtype == bool                   # masks are boolean, True = attend
        dh, da, g = din_attention_backward(dpooled, cache)
        dh_m, da_m, g_m = din_attention_backward(dpooled, cache_m, dweights=np.zeros((3, 5)))
        np.testing.assert_array_equal(dh, dh_m)
        np.testing.assert_array_equal(da, da_m)
        for k in PARAM_NAMES:
            np.testing.assert_array_equal(g[k], g_m[k])


@pytest.mark.parametrize("normalize", ["none", "softmax"])
def test_float32_stays_float32_with_float64_dout(normalize):
    """A float64 dpooled (and dweights) does not promote the float32 gradients: dpooled is cast
    to the forward's dtype."""
    inputs, mask = _inputs(3, 5, 4, 6, np.float32, 4)
    p = {k: inputs[k] for k in PARAM_NAMES}
    _, _, cache = din_attention_forward(inputs["h"], inputs["a"], p, mask, normalize)
    rng = np.random.default_rng(6)
    dh, da, g = din_attention_backward(rng.standard_normal((3, 4)), cache)
    assert dh.dtype == da.dtype == np.float32
    assert all(g[k].dtype == np.float32 for k in PARAM_NAMES)


def test_forward_keeps_the_inputs_without_copying():
    """Float inputs of one dtype are cached as they are (copy=False), not copied."""
    inputs, _ = _inputs(2, 3, 5, 4, np.float64, 3)
    h, a = inputs["h"], inputs["a"]
    _, cache = din_activation_forward(h, a, {k: inputs[k] for k in PARAM_NAMES})
    assert np.shares_memory(cache["h"], h) and np.shares_memory(cache["a"], a)


def test_activation_unit_matches_torch():
    inputs, _ = _inputs(2, 3, 5, 4, np.float64, 3)

    def ours(h, a, W1, b1, w2, b2):
        s, cache = din_activation_forward(h, a, {"W1": W1, "b1": b1, "w2": w2, "b2": b2})
        return s, lambda ds: dict(zip(("h", "a"), din_activation_backward(ds, cache)[:2]))

    def theirs(h, a, W1, b1, w2, b2):
        return _torch_din(np.ones(h.shape[:2], bool), "none")(h, a, W1, b1, w2, b2)[:, h.shape[2]:]
    assert_matches_torch("din_activation", ours, theirs, inputs, ["h", "a"])


def test_bad_shapes_raise():
    p = init_din_params(4, 3, np.random.default_rng(0))
    with pytest.raises(ValueError, match="candidate"):
        din_attention_forward(np.zeros((2, 5, 4)), np.zeros((2, 3)), p)
    with pytest.raises(ValueError, match="normalize"):
        din_attention_forward(np.zeros((2, 5, 4)), np.zeros((2, 4)), p, normalize="max")
    with pytest.raises(ValueError, match="W1"):
        din_attention_forward(np.zeros((2, 5, 3)), np.zeros((2, 3)), p)


def test_bad_input_messages_name_the_argument():
    """The exact messages: which argument, which axis, and both shapes."""
    p = init_din_params(4, 3, np.random.default_rng(0))
    cases = [((np.zeros((2, 4)), np.zeros((2, 4))), "behaviours must be 3-D, got shape (2, 4)"),
             ((np.zeros((2, 5, 4)), np.zeros((2, 4, 4))),
              "candidate must be 2-D, got shape (2, 4, 4)"),
             ((np.zeros((2, 5, 4)), np.zeros((3, 4))),
              "behaviours dim 0 (2) must equal candidate dim 0 (3); "
              "got behaviours(2, 5, 4) and candidate(3, 4)"),
             ((np.zeros((2, 5, 4)), np.zeros((2, 3))),
              "behaviours dim 2 (4) must equal candidate dim 1 (3); "
              "got behaviours(2, 5, 4) and candidate(2, 3)")]
    for (h, a), message in cases:
        for call in (lambda: din_attention_forward(h, a, p),
                     lambda: din_activation_forward(h, a, p)):
            with pytest.raises(ValueError) as info:
                call()
            assert str(info.value) == message
    with pytest.raises(ValueError) as info:
        init_din_params(4, 0, np.random.default_rng(0))
    assert str(info.value) == "H must be an integer ≥ 1, got 0"


def test_init_din_params_follows_the_docstring():
    """W₁ ~ U(±√(6/(4D+H))) then w₂ ~ U(±√(6/(H+1))) from the same rng stream, zero biases,
    all in the requested dtype."""
    D, H = 3, 5
    p = init_din_params(D, H, np.random.default_rng(11), np.float32)
    rng = np.random.default_rng(11)
    a1, a2 = np.sqrt(6 / (4 * D + H)), np.sqrt(6 / (H + 1))
    expected = {"W1": rng.uniform(-a1, a1, (4 * D, H)), "b1": np.zeros(H),
                "w2": rng.uniform(-a2, a2, H), "b2": np.zeros(1)}
    for k in PARAM_NAMES:
        assert p[k].dtype == np.float32, k
        np.testing.assert_array_equal(p[k], expected[k].astype(np.float32))
