"""The contracts the kernels share with the NumPy reference: masked and all −inf softmax rows
give zeros, a NaN input propagates to exactly the outputs it reaches, zero-size inputs give
zero-size outputs or a ValueError naming the argument, and backward checks dout's shape."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from attention_np import kernels
from attention_np.core import softmax_backward as np_softmax_backward
from attention_np.core import softmax_forward as np_softmax_forward
from attention_np.efficient import sliding_window_attention_forward as np_window_forward
from attention_np.self_attention import scaled_dot_product_attention_forward as np_sdpa
from attention_np.kernels import efficient as ke
from attention_np.kernels._validate import compute_dtype, float_input, upstream_gradient
from tests.helpers import assert_close
from tests.strategies import distinct_dims, dtypes, examples, randn, random_mask, seeds


@st.composite
def masked_rows(draw):
    """(shape, axis, mask shape): the mask broadcasts along some axes and has dead rows."""
    shape = tuple(draw(distinct_dims(draw(st.integers(1, 4)), hi=7)))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    mask_shape = tuple(draw(st.sampled_from([1, n])) for n in shape)
    return shape, axis, mask_shape


@examples(ci=40, thorough=10_000)
@given(masked_rows(), dtypes, seeds, st.booleans())
def test_masked_softmax_matches_reference(case, dtype, seed, minus_inf_rows):
    shape, axis, mask_shape = case
    rng = np.random.default_rng(seed)
    x = randn(rng, shape, dtype, scale=3.0)
    mask = random_mask(rng, mask_shape)
    if minus_inf_rows:                                 # rows of −inf behave like masked rows
        x[rng.random(shape) < 0.3] = -np.inf
    y = kernels.softmax(x, axis, mask=mask)
    y_ref, cache = np_softmax_forward(x, axis, mask)
    y_true, cache_true = np_softmax_forward(x.astype(np.float64), axis, mask)
    assert not np.isnan(y).any() and y.dtype == dtype
    dead = ~np.broadcast_to(mask, shape) | (x == -np.inf)
    assert np.all(y[dead] == 0)
    assert_close("masked softmax vs numpy", y, y_ref, dtype, truth=y_true)
    dy = randn(rng, shape, dtype)
    assert_close("masked softmax_backward vs numpy", kernels.softmax_backward(y, dy, axis),
                 np_softmax_backward(dy, cache), dtype,
                 truth=np_softmax_backward(dy.astype(np.float64), cache_true))


@pytest.mark.parametrize("axis", [-1, 0])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_nan_rows_and_all_minus_inf_rows(axis, dtype):
    x = np.random.default_rng(0).standard_normal((6, 4099)).astype(dtype)
    x[0, 3] = np.nan                                   # one NaN in row 0
    x[1] = -np.inf                                     # row 1 all −inf
    x = x if axis == -1 else np.ascontiguousarray(x.T)
    y, y_ref = kernels.softmax(x, axis), np_softmax_forward(x, axis)[0]
    np.testing.assert_array_equal(np.isnan(y), np.isnan(y_ref))
    rows = y if axis == -1 else y.T
    assert np.isnan(rows[0]).all() and np.all(rows[1] == 0) and not np.isnan(rows[2:]).any()


def _poisoned(rng, shape, dtype, where):
    x = randn(rng, shape, dtype)
    x[where] = np.nan
    return x


@examples(ci=20, thorough=2_000)
@given(st.sampled_from("qkv"), dtypes, seeds, st.booleans(), st.booleans())
def test_flash_nan_reaches_exactly_the_outputs_it_feeds(name, dtype, seed, causal, masked):
    rng = np.random.default_rng(seed)
    B, H, Tq, Tk, D, Dv = 2, 3, 300, 270, 5, 4          # several key and query blocks
    shapes = {"q": (B, H, Tq, D), "k": (B, H, Tk, D), "v": (B, H, Tk, Dv)}
    spot = tuple(int(rng.integers(n)) for n in shapes[name])
    args = {n: (_poisoned(rng, s, dtype, spot) if n == name else randn(rng, s, dtype))
            for n, s in shapes.items()}
    mask = random_mask(rng, (B, 1, Tq, Tk)) if masked else None
    out, lse = kernels.flash_attention_forward(**args, mask=mask, causal=causal)
    ref = np_sdpa(*(args[n].astype(np.float64) for n in "qkv"), mask=mask, causal=causal)[0]
    if name == "v":   # the reference's 0 · NaN makes hidden pairs NaN too: compare seen pairs
        visible = np.broadcast_to(True if mask is None else mask, (B, H, Tq, Tk))
        visible = visible & (np.tril(np.ones((Tq, Tk), bool)) if causal else True)
        seen = visible[spot[0], spot[1], :, spot[2]]
        assert np.isnan(out[spot[0], spot[1], seen, spot[3]]).all()
        assert not np.isnan(np.delete(out, spot[3], axis=3)).any()
    else:
        np.testing.assert_array_equal(np.isnan(out), np.isnan(ref))
    if np.isnan(out).any():
        grads = kernels.flash_attention_backward(np.ones_like(out), **args, out=out, lse=lse,
                                                 mask=mask, causal=causal)
        assert all(np.isnan(g).any() for g in grads[:2])


@pytest.mark.parametrize("name", ["q", "k"])
@pytest.mark.parametrize("causal", [False, True])
def test_sliding_window_nan_matches_reference(name, causal):
    rng = np.random.default_rng(1)
    qkv = {n: randn(rng, (2, 3, 40, 6)) for n in "qkv"}
    qkv[name][1, 2, 17, 3] = np.nan
    out, lse = ke.sliding_window_attention_forward(*qkv.values(), 4, causal)
    ref = np_window_forward(*qkv.values(), 4, causal)[0]
    np.testing.assert_array_equal(np.isnan(out), np.isnan(ref))
    assert np.isnan(out).any() and np.isnan(lse).any()


def test_zero_size_inputs():
    rng = np.random.default_rng(2)
    for a_shape, b_shape in [((0, 3), (3, 4)), ((2, 0), (0, 4)), ((2, 3), (3, 0)),
                             ((0, 2, 3), (3, 4)), ((1, 2, 3), (0, 3, 4))]:
        a, b = rng.standard_normal(a_shape), rng.standard_normal(b_shape)
        got, want = kernels.matmul(a, b), np.matmul(a, b)
        assert got.shape == want.shape
        np.testing.assert_array_equal(got, want)
    q = np.zeros((1, 2, 0, 4))
    out, lse = kernels.flash_attention_forward(q, np.ones((1, 2, 3, 4)), np.ones((1, 2, 3, 5)))
    assert out.shape == (1, 2, 0, 5) and lse.shape == (1, 2, 0)
    out, lse = kernels.flash_attention_forward(np.ones((1, 2, 3, 4)), q, q)
    assert np.all(out == 0) and np.all(lse == -np.inf)           # no key: dead rows
    for forward in (kernels.flash_attention_forward,
                    lambda q, k, v: ke.sliding_window_attention_forward(q, k, v, 2)):
        with pytest.raises(ValueError, match=r"\bq\b.*head dim"):
            forward(np.zeros((1, 2, 3, 0)), np.zeros((1, 2, 3, 0)), np.zeros((1, 2, 3, 4)))


def test_backwards_check_the_full_shape_of_dout():
    qkv = [np.random.default_rng(3).standard_normal((1, 2, 5, 3)) for _ in range(3)]
    out, lse = ke.sliding_window_attention_forward(*qkv, 1)
    with pytest.raises(ValueError, match="dout must have shape"):
        ke.sliding_window_attention_backward(out[..., :2], *qkv, out, lse, 1)
    out, den = ke.linear_attention_forward(*qkv)
    with pytest.raises(ValueError, match="dout must have shape"):
        ke.linear_attention_backward(out[:, :, :4], *qkv, out, den)
    out, lse = kernels.flash_attention_forward(*qkv)
    with pytest.raises(ValueError, match="dout must have shape"):
        kernels.flash_attention_backward(out[:, :1], *qkv, out, lse)
    with pytest.raises(ValueError, match="dy must have"):
        kernels.softmax_backward(out, out[..., :2])


@pytest.mark.parametrize("in_dtype, forced, work, out", [
    (np.int64, None, np.float64, np.float64),        # integers and booleans → float64
    (np.bool_, None, np.float64, np.float64),
    (np.uint8, None, np.float64, np.float64),
    (np.float16, None, np.float32, np.float16),      # float16 computed in float32, cast back
    (np.float32, None, np.float32, np.float32),
    (np.float64, None, np.float64, np.float64),
    (np.float32, np.float64, np.float64, np.float32),  # dtype= wins (all inputs share it)
    (np.float64, np.float32, np.float32, np.float64),
])
def test_float_input_hands_the_kernel_c_contiguous_compute_dtype(in_dtype, forced, work, out):
    """float_input returns (the array the kernel reads, the dtype the result is cast back to)."""
    x = np.arange(12).reshape(3, 4).T.astype(in_dtype)   # (4, 3), Fortran order
    arr, out_dtype = float_input(x, "x", ndim=2, dtype=forced)
    assert (arr.dtype, out_dtype) == (np.dtype(work), np.dtype(out))
    assert arr.flags.c_contiguous
    np.testing.assert_array_equal(arr, x.astype(work))
    assert compute_dtype(in_dtype) == (np.float32 if in_dtype == np.float16 else in_dtype)


@pytest.mark.skipif(np.dtype(np.longdouble) == np.float64, reason="long double is float64 here")
def test_float_input_rejects_a_float_the_kernels_cannot_compute_in():
    with pytest.raises(ValueError) as info:
        float_input(np.zeros(2, np.longdouble), "x")
    assert str(info.value) == (f"x must be float16, float32 or float64 (the kernels compute in "
                               f"float32 or float64), got dtype {np.dtype(np.longdouble)} "
                               f"with shape (2,)")


def test_upstream_gradient_names_its_argument():
    dout = np.zeros((2, 3))
    assert upstream_gradient(dout, (2, 3), "dy") is dout
    with pytest.raises(ValueError) as info:
        upstream_gradient(dout, [3, 2], "dy")
    assert str(info.value) == "dy must have the forward output's shape (3, 2), got (2, 3)"
