"""kernels.matmul against np.matmul and torch.matmul (values and autograd-free shapes)."""
import sys
import tracemalloc

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from attention_np.kernels import _tune, matmul
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


# The wrapper's contract, one branch at a time (mutation testing, issue 34).
_MATMUL_MODULE = sys.modules["attention_np.kernels.matmul"]      # the package re-exports the name


@pytest.mark.parametrize("a_dtype, b_dtype", [(np.float32, np.float64), (np.float64, np.float32),
                                              (np.float16, np.float64), (np.float16, np.float32),
                                              (np.float32, np.float16)])
def test_matmul_mixed_dtypes_promote_like_numpy(a_dtype, b_dtype):
    """Mixed inputs: the result has np.result_type's dtype, and a float64 result is computed in
    float64 whichever side is the float32 one (neither input is rounded to the narrower type)."""
    rng = np.random.default_rng(5)
    a, b = randn(rng, (3, 5), a_dtype), randn(rng, (5, 4), b_dtype)
    c = matmul(a, b)
    assert c.dtype == np.result_type(a, b)
    truth = a.astype(np.float64) @ b.astype(np.float64)
    rtol = 1e-12 if c.dtype == np.float64 else 1e-5
    np.testing.assert_allclose(c, truth, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("a_dtype, b_dtype, work", [
    (np.float32, np.float32, np.float32), (np.float16, np.float32, np.float32),
    (np.float64, np.float32, np.float64), (np.float32, np.float64, np.float64)])
def test_matmul_hands_the_kernel_contiguous_arrays_of_one_compute_dtype(monkeypatch, a_dtype,
                                                                         b_dtype, work):
    """_gemm trusts its input (docstring: "all C-contiguous, one dtype"): the wrapper casts both
    sides to the wider compute dtype (float32 stays float32, float16 computes in float32) and
    makes transposed inputs contiguous."""
    seen, gemm = [], _MATMUL_MODULE._gemm

    def spy(a, b, c, mc, kc):
        seen.append([(x.dtype, x.flags.c_contiguous) for x in (a, b, c)])
        return gemm(a, b, c, mc, kc)

    monkeypatch.setattr(_MATMUL_MODULE, "_gemm", spy)
    rng = np.random.default_rng(6)
    a = randn(rng, (2, 5, 3), a_dtype).transpose(0, 2, 1)           # (2, 3, 5), not contiguous
    b = np.asfortranarray(randn(rng, (5, 4), b_dtype))                # (5, 4), Fortran order
    c = matmul(a, b)
    assert seen == [[(np.dtype(work), True)] * 3] * 2                  # one call per batch item
    np.testing.assert_allclose(c, a.astype(np.float64) @ b.astype(np.float64),
                               rtol=1e-5, atol=1e-5)


def test_matmul_asks_the_tuner_with_its_flop_count(tmp_path, monkeypatch):
    """The first call of ≥ TUNE_AT_FLOP flops tunes; the wrapper counts 2·n·M·N·K flops
    (a multiply and an add per term), so a call just below the threshold does not."""
    calls = []
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("ATTENTION_NP_TUNE", raising=False)
    monkeypatch.setattr(_tune, "_STATE", {"config": None, "source": "default"})
    monkeypatch.setitem(_tune._TUNER, "tune", lambda: calls.append("tune"))
    a, b = np.ones((2, 3, 4)), np.ones((4, 5))
    flop = 2 * 2 * 3 * 4 * 5
    monkeypatch.setattr(_tune, "TUNE_AT_FLOP", flop + 1)
    matmul(a, b)
    assert calls == []
    monkeypatch.setattr(_tune, "TUNE_AT_FLOP", flop)
    matmul(a, b)
    assert calls == ["tune"]


def test_matmul_error_messages_name_the_argument_and_its_shape():
    with pytest.raises(ValueError) as info:
        matmul(np.zeros((5, 2, 3)), np.zeros((4, 6)))
    assert str(info.value) == ("a's last dim (3) must equal b's second-to-last dim (4); "
                               "got a(5, 2, 3) and b(4, 6)")
    with pytest.raises(ValueError) as info:
        matmul(np.zeros(3), np.zeros((3, 4)))
    assert str(info.value) == "a must have at least 2 dimensions, got shape (3,)"
    with pytest.raises(ValueError) as info:
        matmul(np.zeros((2, 3), complex), np.zeros((3, 4)))
    assert str(info.value) == "a must be a floating-point array, got dtype complex128"
    with pytest.raises(ValueError) as info:
        matmul(np.zeros((2, 3)), np.zeros((3, 4), complex))
    assert str(info.value) == "b must be a floating-point array, got dtype complex128"


@pytest.mark.parametrize("a_shape, b_shape", [((0, 0, 3), (3, 2)), ((0, 2, 0), (0, 4)),
                                              ((2, 0), (0, 0, 4)), ((1, 2, 3), (0, 3, 0))])
def test_matmul_empty_batch_with_an_empty_matrix_dim(a_shape, b_shape):
    """No batch item and an empty M, K or N at once: the result is empty, of np.matmul's shape."""
    a, b = np.ones(a_shape), np.ones(b_shape)
    c = matmul(a, b)
    assert c.shape == np.matmul(a, b).shape and c.dtype == np.float64


def test_matmul_k0_is_zero_even_on_reused_memory():
    """K = 0 gives the empty sum, 0, even when the allocator hands back dirty memory (NumPy
    caches freed small buffers: NaN-filled ones of the result's size are freed first)."""
    for _ in range(3):
        dirty = [np.full((3, 5), np.nan) for _ in range(8)]
        del dirty
        c = matmul(np.ones((3, 0)), np.ones((0, 5)))
        np.testing.assert_array_equal(c, np.zeros((3, 5)))


def test_matmul_returns_its_result_without_a_final_copy():
    """The result is written once, in place: when no cast back (float16) is needed, no second
    result-sized buffer is allocated (traced peak memory stays below 1.5 results)."""
    a, b = np.ones((512, 1)), np.ones((1, 512))                     # C: 512 × 512 float64, 2 MiB
    matmul(a, b)                                                     # compile, load the config
    tracemalloc.start()
    try:
        c = matmul(a, b)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(c, np.ones((512, 512)))
    assert peak < 1.5 * c.nbytes, (peak, c.nbytes)
