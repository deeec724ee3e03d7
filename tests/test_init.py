"""The initialisers of attention_np.nn.init: their distributions and their contracts."""
import math

import numpy as np
import pytest

from attention_np.nn import init

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_xavier_uniform(dtype):
    W = init.xavier_uniform((300, 200), np.random.default_rng(0), dtype=dtype)
    a = math.sqrt(6 / 500)
    assert W.dtype == dtype and W.shape == (300, 200)
    assert np.all(np.abs(W) <= a) and np.max(np.abs(W)) > 0.99 * a
    assert W.var() == pytest.approx(2 / 500, rel=0.02)
    assert init.zeros(3, dtype).dtype == dtype and not init.zeros(3).any()
    assert np.all(init.ones((2, 3), dtype) == 1)
    with pytest.raises(ValueError, match=r"shape must have at least 2 .*\(5,\)"):
        init.xavier_uniform((5,), np.random.default_rng(0))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_uniform_fan_in_and_normal(dtype):
    """U(−1/√fan_in, 1/√fan_in) as torch's nn.Linear (fan_in = shape[0] unless given), and
    N(0, std²) = std · standard_normal: the same draws as the generator's own calls."""
    W = init.uniform_fan_in((400, 300), np.random.default_rng(0), dtype=dtype)
    a = 1 / math.sqrt(400)
    assert W.dtype == dtype and W.shape == (400, 300)
    assert np.all(np.abs(W) <= a) and np.max(np.abs(W)) > 0.99 * a
    assert W.var() == pytest.approx(a * a / 3, rel=0.02)
    b = init.uniform_fan_in(7, np.random.default_rng(1), fan_in=49, dtype=dtype)
    np.testing.assert_array_equal(
        b, np.random.default_rng(1).uniform(-1 / 7, 1 / 7, 7).astype(dtype))
    E = init.normal((500, 200), np.random.default_rng(2), std=0.3, dtype=dtype)
    assert E.dtype == dtype and E.std() == pytest.approx(0.3, rel=0.02)
    np.testing.assert_array_equal(
        E, (np.random.default_rng(2).standard_normal((500, 200)) * 0.3).astype(dtype))
    with pytest.raises(ValueError, match="fan_in must be a positive integer"):
        init.uniform_fan_in((0, 3), np.random.default_rng(0))
