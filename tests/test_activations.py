"""GELU (exact, tanh), ReLU, tanh, sigmoid against torch autograd and finite differences."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from attention_np.nn import activations as act
from tests.helpers import assert_matches_torch, check_finite_differences

OPS = {  # name: (forward, backward, torch reference)
    "gelu": (act.gelu_forward, act.gelu_backward, F.gelu),
    "gelu_tanh": (lambda x: act.gelu_forward(x, approximate="tanh"), act.gelu_backward,
                  lambda x: F.gelu(x, approximate="tanh")),
    "relu": (act.relu_forward, act.relu_backward, torch.relu),
    "tanh": (act.tanh_forward, act.tanh_backward, torch.tanh),
    "sigmoid": (act.sigmoid_forward, act.sigmoid_backward, torch.sigmoid),
}


def _ours(name):
    forward, backward, _ = OPS[name]

    def ours(x):
        y, cache = forward(x)
        return y, lambda dy: {"x": backward(dy, cache)}
    return ours


@st.composite
def float_arrays(draw, dtypes=(np.float64, np.float32)):
    """An array of 1–4 odd-ish dims (first dim > 1), scale up to 6, float64 or float32."""
    shape = draw(st.lists(st.integers(1, 7), min_size=0, max_size=3))
    shape = [draw(st.integers(2, 5))] + shape
    dtype = draw(st.sampled_from(dtypes))
    seed = draw(st.integers(0, 2 ** 32 - 1))
    scale = draw(st.sampled_from([0.5, 2.0, 6.0]))
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


@pytest.mark.parametrize("name", sorted(OPS))
@given(x=float_arrays())
def test_matches_torch(name, x):
    assert_matches_torch(name, _ours(name), OPS[name][2], {"x": x}, grad_wrt=["x"])


@pytest.mark.parametrize("name", sorted(OPS))
@given(x=float_arrays(dtypes=(np.float64,)))
def test_finite_differences(name, x):
    x = np.where(np.abs(x) < 1e-3, 0.5, x)          # keep ReLU away from its kink
    check_finite_differences(_ours(name), {"x": x}, grad_wrt=["x"])


@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_extreme_inputs_are_finite(name, dtype):
    x = np.array([-1e4, -80.0, -1.0, 0.0, 1.0, 80.0, 1e4], dtype=dtype)
    forward, backward, reference = OPS[name]
    y, cache = forward(x)
    dx = backward(np.ones_like(x), cache)
    assert y.dtype == dtype and dx.dtype == dtype
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(dx))
    want = reference(torch.from_numpy(x.astype(np.float64))).numpy()
    np.testing.assert_allclose(y.astype(np.float64), want, rtol=2e-3, atol=1e-3)


def test_sigmoid_saturates_exactly():
    y, _ = act.sigmoid_forward(np.array([-1e4, 1e4]))
    assert y.tolist() == [0.0, 1.0]


@pytest.mark.parametrize("name", sorted(OPS))
def test_backward_rejects_wrong_dy_shape(name):
    forward, backward, _ = OPS[name]
    _, cache = forward(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"dy must have .*\(2, 3\).*\(3, 2\)"):
        backward(np.zeros((3, 2)), cache)


def test_forward_rejects_bad_input():
    with pytest.raises(ValueError, match="approximate"):
        act.gelu_forward(np.zeros(3), approximate="erf")
    with pytest.raises(ValueError, match="x must be a floating-point array"):
        act.relu_forward(np.array(["a", "b"]))


def test_relu_gradient_at_nan_is_torchs():
    """torch's threshold_backward passes dy wherever x ≤ 0 is false, NaN included."""
    x = np.array([np.nan, -1.0, 0.0, 2.0])
    y, cache = act.relu_forward(x)
    dx = act.relu_backward(np.full(4, 3.0), cache)
    xt = torch.tensor(x, requires_grad=True)
    torch.relu(xt).backward(torch.full((4,), 3.0, dtype=torch.float64))
    np.testing.assert_array_equal(dx, xt.grad.numpy())
    assert np.isnan(y[0]) and dx[0] == 3.0
