"""kernels.matmul against np.matmul and torch.matmul (values and autograd-free shapes)."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from attention_np.kernels import matmul
from attention_np.kernels.matmul import KC, MC, MR, NR
from tests.helpers import assert_close
from tests.strategies import dtypes, examples, randn, seeds


@st.composite
def matmul_shapes(draw):
    M, K, N = (draw(st.integers(1, hi)) for hi in (2 * MR + 3, KC + 5, 2 * NR + 5))
    batch_a = tuple(draw(st.lists(st.sampled_from([1, 3]), max_size=2)))
    batch_b = tuple(draw(st.sampled_from([(), (3,), (1,), batch_a])))
    return batch_a + (M, K), batch_b + (K, N)


@examples(ci=30, thorough=10_000)
@given(matmul_shapes(), dtypes, seeds)
def test_matmul_matches_numpy_and_torch(shapes, dtype, seed):
    import torch
    rng = np.random.default_rng(seed)
    a, b = randn(rng, shapes[0], dtype), randn(rng, shapes[1], dtype)
    c = matmul(a, b)
    assert c.dtype == dtype
    scale = np.sqrt(a.shape[-1])                      # errors grow with the length of the dot
    truth = np.matmul(a.astype(np.float64), b.astype(np.float64))      # float32: the yardstick
    assert_close("matmul vs numpy", c, np.matmul(a, b), dtype, scale=scale, truth=truth)
    ref = torch.matmul(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    assert_close("matmul vs torch", c, ref, dtype, op="kernels.matmul", scale=scale, truth=truth)


def test_matmul_several_blocks_non_contiguous_mixed_dtypes():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((2 * KC + 3, MC + 17)).T  # (MC+17, 2KC+3), Fortran order, float64
    b = rng.standard_normal((2 * KC + 3, 3 * NR + 1)).astype(np.float32)
    c = matmul(a, b)
    assert c.dtype == np.float64
    np.testing.assert_allclose(c, a @ b.astype(np.float64), rtol=1e-10, atol=1e-10)


def test_matmul_errors_name_the_arguments():
    with pytest.raises(ValueError, match="a's last dim"):
        matmul(np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="batch dims"):
        matmul(np.zeros((2, 2, 3)), np.zeros((3, 3, 4)))
    with pytest.raises(ValueError, match="b must have at least 2"):
        matmul(np.zeros((2, 3)), np.zeros(3))
