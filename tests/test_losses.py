"""Cross-entropy against torch.nn.functional.cross_entropy (reduction="mean")."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from attention_np.nn.losses import cross_entropy_backward, cross_entropy_forward, log_softmax
from tests.helpers import assert_matches_torch, check_finite_differences


def _ce(ignore_index=-100, label_smoothing=0.0):
    def ours(logits, targets):
        loss, cache = cross_entropy_forward(logits, targets, ignore_index, label_smoothing)
        return loss, lambda dloss: {"logits": cross_entropy_backward(dloss, cache)}
    return ours


def _torch_ce(ignore_index=-100, label_smoothing=0.0):
    def theirs(logits, targets):                     # torch wants the classes on axis 1
        C = logits.shape[-1]
        return F.cross_entropy(logits.reshape(-1, C), targets.reshape(-1),
                               ignore_index=ignore_index, label_smoothing=label_smoothing)
    return theirs


@st.composite
def ce_inputs(draw, dtypes=(np.float64, np.float32)):
    """logits (B, ..., C) with some targets ignored (but at least one kept)."""
    lead = (draw(st.integers(2, 5)),) + tuple(draw(st.lists(st.integers(1, 4), max_size=2)))
    C = draw(st.integers(2, 9))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    logits = (rng.standard_normal(lead + (C,)) * draw(st.sampled_from([1.0, 5.0])))
    targets = rng.integers(0, C, size=lead)
    ignored = rng.random(lead) < draw(st.sampled_from([0.0, 0.4]))
    ignored.flat[0] = False
    targets[ignored] = -100
    return {"logits": logits.astype(draw(st.sampled_from(dtypes))), "targets": targets}


@given(inputs=ce_inputs(), smoothing=st.sampled_from([0.0, 0.1, 0.4]))
def test_cross_entropy_matches_torch(inputs, smoothing):
    assert_matches_torch("cross_entropy", _ce(label_smoothing=smoothing),
                         _torch_ce(label_smoothing=smoothing), inputs, grad_wrt=["logits"])


@given(inputs=ce_inputs(dtypes=(np.float64,)), smoothing=st.sampled_from([0.0, 0.2]))
def test_cross_entropy_finite_differences(inputs, smoothing):
    check_finite_differences(_ce(label_smoothing=smoothing), inputs, grad_wrt=["logits"])


def test_other_ignore_index_and_1d_logits():
    logits = np.random.default_rng(0).standard_normal((4, 5))
    targets = np.array([1, 0, 4, 0])
    assert_matches_torch("cross_entropy", _ce(ignore_index=0), _torch_ce(ignore_index=0),
                         {"logits": logits, "targets": targets}, grad_wrt=["logits"])
    loss, _ = cross_entropy_forward(logits[0], np.array(3))               # (C,) with a () target
    assert loss == pytest.approx(F.cross_entropy(torch.from_numpy(logits[0]),
                                                 torch.tensor(3)).item(), rel=1e-12)


def test_full_label_smoothing_is_allowed():
    """label_smoothing = 1 (uniform targets) is the closed end of [0, 1]: accepted, as by torch."""
    rng = np.random.default_rng(1)
    inputs = {"logits": rng.standard_normal((3, 2, 5)), "targets": rng.integers(0, 5, (3, 2))}
    assert_matches_torch("cross_entropy", _ce(label_smoothing=1.0), _torch_ce(label_smoothing=1.0),
                         inputs, grad_wrt=["logits"])


def test_underflowing_non_target_class_adds_nothing():
    """A class whose log p is −inf (z − max z overflows) and whose q is 0 counts 0·log 0 = 0."""
    logits = np.array([[1e308, -1e308, 0.0], [0.5, -1e308, 2.0]])
    targets = np.array([0, 2])
    loss, _ = cross_entropy_forward(logits, targets)
    want = F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(targets)).item()
    assert np.isfinite(loss) and loss == pytest.approx(want, rel=1e-12)


def test_float16_is_computed_in_float32():
    """float16 logits give the float32 computation rounded to float16, loss and gradient."""
    rng = np.random.default_rng(272)
    logits = (rng.standard_normal((4, 7)) * 3).astype(np.float16)
    targets = rng.integers(0, 7, 4)
    loss, cache = cross_entropy_forward(logits, targets, label_smoothing=0.1)
    loss32, cache32 = cross_entropy_forward(logits.astype(np.float32), targets, label_smoothing=0.1)
    assert loss.dtype == np.float16 and loss == loss32.astype(np.float16)
    np.testing.assert_array_equal(cross_entropy_backward(1.0, cache),
                                  cross_entropy_backward(1.0, cache32).astype(np.float16))


def test_float64_gradient_is_not_copied_again():
    """When no cast is needed the backward returns its (reshaped) result without an extra copy."""
    rng = np.random.default_rng(2)
    _, cache = cross_entropy_forward(rng.standard_normal((2, 3, 4)), rng.integers(0, 4, (2, 3)))
    dlogits = cross_entropy_backward(1.0, cache)
    assert dlogits.shape == (2, 3, 4) and not dlogits.flags.owndata


@pytest.mark.parametrize("shape", [(5,), (3, 5), (2, 3, 5)])
def test_log_softmax_matches_torch(shape):
    """log_softmax works along the last axis for any rank (beam search passes (B, C) and (C,))."""
    z = np.random.default_rng(3).standard_normal(shape) * 4
    want = torch.log_softmax(torch.from_numpy(z), dim=-1).numpy()
    np.testing.assert_allclose(log_softmax(z), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_all_ignored_gives_zero_loss_and_gradient(dtype):
    loss, cache = cross_entropy_forward(np.ones((3, 4), dtype), np.full(3, -100))
    dlogits = cross_entropy_backward(1.0, cache)
    assert loss == 0 and loss.dtype == dtype
    assert dlogits.dtype == dtype and not dlogits.any()


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_extreme_logits_are_finite(dtype):
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4], [-1e4, 1e4, 1e4]], dtype=dtype)
    targets = np.array([1, 2, 0])
    loss, cache = cross_entropy_forward(logits, targets, label_smoothing=0.1)
    dlogits = cross_entropy_backward(1.0, cache)
    assert loss.dtype == dtype and dlogits.dtype == dtype
    assert np.isfinite(loss) and np.all(np.isfinite(dlogits))
    want = F.cross_entropy(torch.from_numpy(logits.astype(np.float64)), torch.from_numpy(targets),
                           label_smoothing=0.1).item()
    assert float(loss) == pytest.approx(want, rel=2e-3)


def test_rejects_bad_input():
    logits = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"targets must have shape .*\(3,\).*\(2,\)"):
        cross_entropy_forward(logits, np.array([0, 1]))
    with pytest.raises(ValueError, match=r"targets must lie in \[0, C=4\).*\[4, -1\]"):
        cross_entropy_forward(logits, np.array([4, 0, -1]))
    with pytest.raises(ValueError, match="targets must be an integer array"):
        cross_entropy_forward(logits, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="label_smoothing"):
        cross_entropy_forward(logits, np.array([0, 1, 2]), label_smoothing=1.5)
    _, cache = cross_entropy_forward(logits, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"dloss must be a scalar, got shape \(3,\)"):
        cross_entropy_backward(np.ones(3), cache)


@pytest.mark.parametrize("logits, targets, message", [
    (np.zeros((2, 3, 4)), np.zeros(3, int),
     "targets must have shape logits.shape[:-1] = (2, 3), got targets(3,) for logits(2, 3, 4)"),
    (np.zeros((7, 4)), np.array([4, 5, 6, 7, -1, -2, -3]),
     "targets must lie in [0, C=4) or equal ignore_index=-100; got [4, 5, 6, 7, -1] "
     "(targets shape (7,))"),
    (np.float64(1.0), np.array(0), "logits must have at least 1 dimensions, got shape ()"),
])
def test_bad_input_messages(logits, targets, message):
    """Exact messages: the expected target shape, at most five bad targets, a scalar logit."""
    with pytest.raises(ValueError) as info:
        cross_entropy_forward(logits, targets)
    assert str(info.value) == message
