"""``backend="numba"`` of conv2d and max_pool2d (attention_np.kernels.conv): the copies around
the products on Numba kernels, the products NumPy's — so every output and gradient equals the
NumPy reference's bit for bit, on any shape, stride, padding and dtype, ties, NaN and ±inf."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from attention_np.apps.captioning.encoder import (encoder_backward, encoder_forward,
                                                  init_encoder_params)
from attention_np.apps.captioning.model import CaptionConfig
from attention_np.nn.conv import (conv2d_backward, conv2d_forward, max_pool2d_backward,
                                  max_pool2d_forward)
from tests.strategies import dtypes, randn, seeds
from tests.test_conv import conv_cases, pool_cases


def _identical(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(a, b)       # NaN equals NaN here; ±0 compare equal


def _conv_both(x, W, b, stride, padding, dy):
    """{backend: (y, dx, dW, db)}."""
    out = {}
    for backend in ("numpy", "numba"):
        y, cache = conv2d_forward(x, W, b, stride=stride, padding=padding, backend=backend)
        out[backend] = (y,) + conv2d_backward(dy, cache)
    return out


@given(case=conv_cases(), dtype=dtypes, seed=seeds, bias=st.booleans(), w_dtype=dtypes,
       b_dtype=dtypes)
def test_conv2d_numba_is_the_reference_bit_for_bit(case, dtype, seed, bias, w_dtype, b_dtype):
    """x, W and b each float32 or float64: the output takes NumPy's promoted dtype."""
    x_shape, w_shape, stride, padding = case
    rng = np.random.default_rng(seed)
    x, W = randn(rng, x_shape, dtype), randn(rng, w_shape, w_dtype)
    b = randn(rng, w_shape[:1], b_dtype) if bias else None
    y, _ = conv2d_forward(x, W, b, stride=stride, padding=padding)
    dy = randn(rng, y.shape, y.dtype)
    out = _conv_both(x, W, b, stride, padding, dy)
    for ref, fast in zip(out["numpy"], out["numba"]):
        if ref is None:
            assert fast is None
        else:
            _identical(ref, fast)


@given(case=pool_cases(), dtype=dtypes, seed=seeds, special=st.booleans())
def test_max_pool2d_numba_is_the_reference_bit_for_bit(case, dtype, seed, special):
    """Ties (values drawn from a handful), and with ``special`` NaN, +∞ and −∞ sprinkled in:
    the first maximum wins, a NaN wins over everything, a window inside the padding alone
    passes no gradient back."""
    shape, kernel, stride, padding = case
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, shape).astype(dtype)
    if special:
        x[rng.random(shape) < 0.15] = np.nan
        x[rng.random(shape) < 0.1] = np.inf
        x[rng.random(shape) < 0.1] = -np.inf
    results = {}
    for backend in ("numpy", "numba"):
        y, cache = max_pool2d_forward(x, kernel, stride, padding, backend=backend)
        dy = np.arange(y.size, dtype=dtype).reshape(y.shape) + 1
        results[backend] = (y, cache["arg"], max_pool2d_backward(dy, cache))
    for ref, fast in zip(results["numpy"], results["numba"]):
        _identical(ref, fast)


@pytest.mark.parametrize("types", [(np.float32, np.float32, np.float64),
                                   (np.float64, np.float64, np.float32),
                                   (np.float32, np.float32, None)])
def test_conv2d_numba_output_dtype_is_numpys(types):
    """The bias can widen the output (float32 products + float64 bias → float64) but not
    narrow it (float64 products + float32 bias stay float64); no bias keeps the products'."""
    x_dtype, w_dtype, b_dtype = types
    rng = np.random.default_rng(6)
    x, W = randn(rng, (2, 2, 5, 4), x_dtype), randn(rng, (3, 2, 3, 3), w_dtype)
    b = None if b_dtype is None else randn(rng, (3,), b_dtype)
    ref, fast = (conv2d_forward(x, W, b, padding=1, backend=backend)[0]
                 for backend in ("numpy", "numba"))
    assert fast.dtype == np.result_type(x, W, *([] if b is None else [b]))
    _identical(ref, fast)


def test_conv2d_numba_reads_non_contiguous_inputs():
    """A transposed view and an upstream gradient given as a view: the same numbers as the
    reference on copies."""
    rng = np.random.default_rng(3)
    x = randn(rng, (2, 3, 9, 7)).transpose(0, 1, 3, 2)          # (2, 3, 7, 9), not contiguous
    W, b = randn(rng, (4, 3, 3, 3)), randn(rng, (4,))
    dy = randn(rng, (2, 7, 4, 4)).transpose(0, 2, 1, 3)          # (2, 4, 7, 4) view
    out = _conv_both(x, W, b, (1, 2), (1, 0), dy)
    for ref, fast in zip(out["numpy"], out["numba"]):
        _identical(ref, fast)


def test_captioning_encoder_numba_is_the_reference_bit_for_bit():
    """The demo's encoder (three blocks, pools 2×2, 2×2, 4×1) in float32."""
    rng = np.random.default_rng(4)
    pools = ((2, 2), (2, 2), (4, 1))
    params = init_encoder_params((16, 64), (8, 16, 32), rng, np.float32, pools)
    images = rng.random((5, 16, 64)).astype(np.float32)
    da = randn(rng, (5, 16, 32), np.float32)
    (a_ref, c_ref), (a_fast, c_fast) = (encoder_forward(images, params, pools, backend)
                                        for backend in ("numpy", "numba"))
    _identical(a_ref, a_fast)
    ref, fast = encoder_backward(da, c_ref), encoder_backward(da, c_fast)
    assert ref.keys() == fast.keys()
    for name in ref:
        _identical(ref[name], fast[name])


def test_backend_is_checked():
    x, W = np.zeros((1, 1, 4, 4)), np.zeros((1, 1, 3, 3))
    with pytest.raises(ValueError, match="backend must be one of"):
        conv2d_forward(x, W, backend="torch")
    with pytest.raises(ValueError, match="backend must be one of"):
        max_pool2d_forward(x, 2, backend="cuda")
    with pytest.raises(ValueError, match="backend must be one of"):
        CaptionConfig(backend="fast")
    from attention_np.vision.cnn import CNNConfig
    with pytest.raises(ValueError, match="backend must be one of"):
        CNNConfig(backend="gpu")


@pytest.mark.parametrize("attention", ["none", "se", "cbam"])
def test_vision_cnn_numba_is_the_reference_bit_for_bit(attention):
    """The vision demo's CNNs (3×3 convs, 2×2 pools, SE or CBAM between them) in float32:
    loss and every gradient as the NumPy layers give them."""
    from attention_np.vision import cnn
    rng = np.random.default_rng(5)
    configs = {backend: cnn.CNNConfig(attention=attention, backend=backend)
               for backend in ("numpy", "numba")}
    params = cnn.init_cnn(configs["numpy"], rng, np.float32)
    images = rng.random((6, 1, 8, 8)).astype(np.float32)
    labels = rng.integers(0, 10, 6)
    (loss_ref, grads_ref), (loss_fast, grads_fast) = (
        cnn.loss_and_grads(params, configs[backend], images, labels)[:2]
        for backend in ("numpy", "numba"))
    assert loss_ref == loss_fast
    assert grads_ref.keys() == grads_fast.keys()
    for name in grads_ref:
        _identical(grads_ref[name], grads_fast[name])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cbam_spatial_conv_on_numba_is_the_reference_bit_for_bit(dtype):
    """CBAM with ``backend="numba"`` (its 7×7 spatial convolution on the Numba copies): the
    output, the attention maps and every gradient as with the NumPy layers."""
    from attention_np.vision.spatial import cbam_backward, cbam_forward, init_cbam
    rng = np.random.default_rng(11)
    params = init_cbam(8, 4, 7, rng, dtype)
    x = rng.standard_normal((3, 8, 9, 6)).astype(dtype)
    dy = rng.standard_normal(x.shape).astype(dtype)
    runs = {}
    for backend in ("numpy", "numba"):
        y, (s, a), cache = cbam_forward(x, params, 4, backend=backend)
        assert cache["sa"]["conv"]["backend"] == backend         # the conv did run on it
        runs[backend] = (y, s, a, *cbam_backward(dy, cache))
    ref, fast = runs["numpy"], runs["numba"]
    for r, f in zip(ref[:4], fast[:4]):
        _identical(r, f)
    assert ref[4].keys() == fast[4].keys()
    for name in ref[4]:
        _identical(ref[4][name], fast[4][name])
