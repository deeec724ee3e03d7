"""Location-aware attention (Chorowski et al. 2015) against torch autograd and finite differences."""
import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st

from attention_np.location_attention import (conv1d_same_backward, conv1d_same_forward,
                                             init_location_params, location_attention_backward,
                                             location_attention_forward)
from tests.helpers import assert_matches_torch, check_finite_differences
from tests.strategies import distinct_dims, dtypes, examples, randn, seeds

PARAMS = ["W", "V", "U", "F", "b", "w"]


def _inputs(B, T, Ds, Dh, A, K, r, dtype, seed):
    rng = np.random.default_rng(seed)
    p = init_location_params(Ds, Dh, A, K, r, rng, dtype)
    p = {k: (v * 2 + (randn(rng, v.shape, dtype, 0.3) if k == "b" else 0)).astype(dtype)
         for k, v in p.items()}
    alpha0 = rng.dirichlet(np.ones(T), size=B).astype(dtype)
    return {"s1": randn(rng, (B, Ds), dtype), "s2": randn(rng, (B, Ds), dtype),
            "h": randn(rng, (B, T, Dh), dtype), "alpha0": alpha0, **p}


def _torch_step(s, keys, h, alpha_prev, W, U, F, b, w, mask):
    r = F.shape[1]
    f = torch.nn.functional.conv1d(alpha_prev[:, None, :], F[:, None, :], padding=r // 2)
    e = torch.tanh((s @ W)[:, None, :] + keys + f.transpose(1, 2) @ U + b) @ w
    alpha = torch.softmax(e.masked_fill(~mask, -torch.inf), dim=-1).nan_to_num(0.0)
    return torch.einsum("bt,btd->bd", alpha, h), alpha


def _theirs(mask):
    m = torch.from_numpy(mask)

    def theirs(s1, s2, h, alpha0, W, V, U, F, b, w):
        keys = h @ V
        c1, a1 = _torch_step(s1, keys, h, alpha0, W, U, F, b, w, m)
        c2, a2 = _torch_step(s2, keys, h, a1, W, U, F, b, w, m)
        return torch.cat([c1, a1, c2, a2], dim=1)
    return theirs


def _ours(mask):
    """Two decoder steps: α₁ feeds step 2's convolution, so dα_prev is exercised."""
    def ours(s1, s2, h, alpha0, W, V, U, F, b, w):
        p = {"W": W, "U": U, "F": F, "b": b, "w": w}
        keys = h @ V
        c1, a1, k1 = location_attention_forward(s1, keys, h, alpha0, p, mask)
        c2, a2, k2 = location_attention_forward(s2, keys, h, a1, p, mask)
        Dh, T = h.shape[2], h.shape[1]

        def backward(dout):
            dc1, da1, dc2, da2 = np.split(dout, np.cumsum([Dh, T, Dh]), axis=1)
            ds2, dk2, dh2, da1_from2, g2 = location_attention_backward(dc2, k2, da2)
            ds1, dk1, dh1, dalpha0, g1 = location_attention_backward(dc1, k1, da1 + da1_from2)
            dkeys = dk1 + dk2
            grads = {k: g1[k] + g2[k] for k in g1}
            return {"s1": ds1, "s2": ds2, "h": dh1 + dh2 + dkeys @ V.T, "alpha0": dalpha0,
                    "V": np.einsum("btd,bta->da", h, dkeys), **grads}
        return np.concatenate([c1, a1, c2, a2], axis=1), backward
    return ours


@examples(ci=60, thorough=10_000)   # each example runs torch autograd; keep CI short
@given(dims=distinct_dims(5, 2, 9), K=st.integers(1, 4), r=st.sampled_from([1, 3, 5, 7]),
       dtype=dtypes, seed=seeds)
def test_two_steps_match_torch(dims, K, r, dtype, seed):
    B, T, Ds, Dh, A = dims
    inputs = _inputs(B, T, Ds, Dh, A, K, r, dtype, seed)
    mask = np.random.default_rng(seed).random((B, T)) < 0.8
    mask[0] = False                                          # fully masked utterance
    alive = mask.any(1, keepdims=True)
    assert_matches_torch("location_attention", _ours(mask), _theirs(mask), inputs,
                         ["s1", "s2", "h", "alpha0"] + PARAMS, out_rows=alive)


def test_finite_differences():
    inputs = _inputs(3, 7, 4, 5, 6, 2, 5, np.float64, 0)
    mask = np.ones((3, 7), bool)
    mask[1, 5:] = False
    check_finite_differences(_ours(mask), inputs, ["s1", "s2", "h", "alpha0"] + PARAMS)


@pytest.mark.parametrize("r", [1, 3, 9])
def test_conv1d_same_matches_torch(r):
    rng = np.random.default_rng(r)
    alpha, F = rng.random((3, 6)), rng.standard_normal((4, r))

    def ours(alpha, F):
        f, cache = conv1d_same_forward(alpha, F)
        return f, lambda df: dict(zip(("alpha", "F"), conv1d_same_backward(df, cache)))

    def theirs(alpha, F):
        return torch.nn.functional.conv1d(alpha[:, None], F[:, None], padding=r // 2).transpose(1, 2)
    assert_matches_torch("conv1d_same", ours, theirs, {"alpha": alpha, "F": F}, ["alpha", "F"])


def test_attention_follows_the_previous_alignment():
    """With keys and state giving no information, a shift filter moves the peak one frame right."""
    B, T, A = 1, 9, 3
    p = {"W": np.zeros((2, A)), "U": np.eye(1, A) * 20, "F": np.array([[1.0, 0.0, 0.0]]),
         "b": np.zeros(A), "w": np.eye(1, A)[0]}
    alpha_prev = np.eye(T)[[3]]
    _, alpha, _ = location_attention_forward(np.zeros((B, 2)), np.zeros((B, T, A)),
                                             np.zeros((B, T, 2)), alpha_prev, p)
    assert alpha.argmax() == 4          # f_j = α_{j−1}: the filter looks one frame back


def test_even_filter_width_raises():
    with pytest.raises(ValueError, match="odd"):
        init_location_params(2, 3, 4, 2, 4, np.random.default_rng(0))


# fan-in of each parameter as the docstring states it (F's is its width r, not its K rows);
# b is the one that starts at zero. Sizes are distinct and large enough that a bound computed
# from another fan-in would show.
_SIZES = {"Ds": 40, "Dh": 90, "A": 60, "K": 160, "r": 9}
_FAN_IN = {"W": "Ds", "V": "Dh", "U": "K", "F": "r", "w": "A"}
_SHAPES = {"W": ("Ds", "A"), "V": ("Dh", "A"), "U": ("K", "A"), "F": ("K", "r"), "b": ("A",),
           "w": ("A",)}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_init_location_params_shapes_dtypes_and_scale(dtype):
    """Every parameter has its shape and the requested dtype; b is zero; the others are
    U(−k, k) with k = 1/√fan_in: all inside ±k, reaching past 0.9 k, std k/√3 within 15 %."""
    p = init_location_params(**_SIZES, rng=np.random.default_rng(0), dtype=dtype)
    assert sorted(p) == sorted(_SHAPES)
    for name, dims in _SHAPES.items():
        assert p[name].shape == tuple(_SIZES[d] for d in dims), name
        assert p[name].dtype == dtype, name
    assert not p["b"].any()
    for name, fan_in in _FAN_IN.items():
        k = 1 / np.sqrt(_SIZES[fan_in])
        x = p[name].astype(np.float64)
        assert np.abs(x).max() <= k * (1 + 1e-6), name
        assert np.abs(x).max() > 0.9 * k, name
        assert abs(x.std() - k / np.sqrt(3)) < 0.15 * k / np.sqrt(3), name


def test_init_location_params_draws_from_the_given_rng():
    """The same seed gives the same parameters; the rng advances, so a second draw differs."""
    one = init_location_params(3, 4, 5, 2, 3, np.random.default_rng(7))
    rng = np.random.default_rng(7)
    two, three = (init_location_params(3, 4, 5, 2, 3, rng) for _ in range(2))
    for name in one:
        np.testing.assert_array_equal(one[name], two[name])
        assert name == "b" or not np.array_equal(two[name], three[name]), name


@pytest.mark.parametrize("bad", ["Ds", "Dh", "A", "K", "r"])
def test_init_location_params_names_the_bad_size(bad):
    """A size below 1 is refused with a message naming that size (exact text)."""
    sizes = {"Ds": 2, "Dh": 3, "A": 4, "K": 2, "r": 3} | {bad: 0}
    with pytest.raises(ValueError) as info:
        init_location_params(**sizes, rng=np.random.default_rng(0))
    assert str(info.value) == f"{bad} must be an integer ≥ 1, got 0"


def _step_args(B=2, T=5, Ds=4, Dh=3, A=6, K=2, r=3):
    rng = np.random.default_rng(0)
    p = init_location_params(Ds, Dh, A, K, r, rng)
    return {"s": randn(rng, (B, Ds)), "keys": randn(rng, (B, T, A)),
            "values": randn(rng, (B, T, Dh)), "alpha_prev": np.full((B, T), 1 / T), "params": p}


def _with_params(**changes):
    args = _step_args()
    return args | {"params": args["params"] | changes}


@pytest.mark.parametrize("args, message", [
    (_step_args() | {"values": np.ones((2, 5))}, "values must be 3-D, got shape (2, 5)"),
    (_step_args() | {"alpha_prev": np.ones((2, 5, 1))},
     "alpha_prev must be 2-D, got shape (2, 5, 1)"),
    (_step_args() | {"s": np.ones((3, 4))},
     "s dim 0 (3) must equal keys dim 0 (2); got s(3, 4) and keys(2, 5, 6)"),
    (_with_params(F=np.ones((2, 4))),
     "params['F'] must have an odd width r (axis 1), got shape (2, 4)"),
], ids=["values-rank", "alpha_prev-rank", "batch", "even-filter"])
def test_step_bad_input_messages(args, message):
    """The forward's own checks: each bad argument gets its exact message (rank before shape,
    the batch check names both s and keys, the filter check names params['F'])."""
    with pytest.raises(ValueError) as info:
        location_attention_forward(**args)
    assert str(info.value) == message


def test_backward_casts_dcontext_to_the_forward_dtype():
    """A float64 dcontext reaching a float32 step gives float32 gradients, equal (to float32
    rounding) to those of the float64 step."""
    args = _step_args()
    mask = np.ones((2, 5), bool)
    mask[1, 3:] = False
    dcontext = randn(np.random.default_rng(1), (2, 3))
    as32 = {k: (v.astype(np.float32) if k != "params" else
                {n: w.astype(np.float32) for n, w in v.items()}) for k, v in args.items()}
    *_, cache32 = location_attention_forward(**as32, mask=mask)
    *_, cache64 = location_attention_forward(**args, mask=mask)
    out32 = location_attention_backward(dcontext, cache32)
    out64 = location_attention_backward(dcontext, cache64)
    flat32 = list(out32[:4]) + [out32[4][k] for k in sorted(out32[4])]
    flat64 = list(out64[:4]) + [out64[4][k] for k in sorted(out64[4])]
    for ours, ref in zip(flat32, flat64):
        assert ours.dtype == np.float32
        np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-5)


def _step_inputs(rng, B, T, Ds, Dh, A, K, r=3):
    params = {"W": rng.standard_normal((Ds, A)), "U": rng.standard_normal((K, A)),
              "b": rng.standard_normal(A), "w": rng.standard_normal(A),
              "F": rng.standard_normal((K, r))}
    alpha = rng.random((B, T))
    return (rng.standard_normal((B, Ds)), rng.standard_normal((B, T, A)),
            rng.standard_normal((B, T, Dh)), alpha / alpha.sum(axis=1, keepdims=True), params)


def test_no_location_filters_is_one_zero_filter():
    """K = 0 filters (the backward used to fail reshaping the empty features): the step equals
    one with a single filter whose U row is zero, and no gradient reaches α_{i−1}."""
    rng = np.random.default_rng(3)
    s, keys, values, alpha, p = _step_inputs(rng, 2, 5, 3, 4, A=4, K=0)
    one = dict(p, U=np.zeros((1, 4)), F=rng.standard_normal((1, 3)))
    dc = rng.standard_normal((2, 4))
    c0, a0, cache0 = location_attention_forward(s, keys, values, alpha, p)
    c1, a1, cache1 = location_attention_forward(s, keys, values, alpha, one)
    np.testing.assert_array_equal(c0, c1)
    np.testing.assert_array_equal(a0, a1)
    *d0, g0 = location_attention_backward(dc, cache0)
    *d1, g1 = location_attention_backward(dc, cache1)
    for x0, x1 in zip(d0, d1):
        np.testing.assert_allclose(x0, x1, rtol=1e-12, atol=1e-12)
    assert not d0[3].any()                                              # dα_{i−1} = 0
    assert g0["U"].shape == (0, 4) and g0["F"].shape == (0, 3)
    for name in ("W", "b", "w"):
        np.testing.assert_allclose(g0[name], g1[name], rtol=1e-12, atol=1e-12)


def test_no_attention_units_gives_uniform_weights_and_zero_gradients():
    """A = 0 attention units: every score is 0, so α is uniform over the real keys, c is the
    mean of the values, and only the values get a gradient (dc / T each)."""
    rng = np.random.default_rng(4)
    s, keys, values, alpha, p = _step_inputs(rng, 2, 5, 3, 4, A=0, K=3)
    c, a, cache = location_attention_forward(s, keys, values, alpha, p)
    np.testing.assert_allclose(a, np.full((2, 5), 0.2))
    np.testing.assert_allclose(c, values.mean(axis=1))
    dc = rng.standard_normal((2, 4))
    ds, dkeys, dvalues, dalpha, grads = location_attention_backward(dc, cache)
    assert dkeys.shape == (2, 5, 0) and not ds.any() and not dalpha.any()
    np.testing.assert_allclose(dvalues, np.repeat(dc[:, None, :] / 5, 5, axis=1))
    assert {k: v.shape for k, v in grads.items()} == {"W": (3, 0), "b": (0,), "w": (0,),
                                                     "U": (3, 0), "F": (3, 3)}
    assert not grads["F"].any()
