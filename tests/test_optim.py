"""SGD, Adam/AdamW and clip_grad_norm against torch.optim / torch.nn.utils on the same gradients."""
import numpy as np
import pytest
import torch

from attention_np.nn.optim import SGD, Adam, clip_grad_norm

SHAPES = {"W": (3, 5), "b": (5,), "gamma": (1, 2, 3)}
TOL = {np.float64: dict(rtol=1e-12, atol=1e-14), np.float32: dict(rtol=2e-5, atol=1e-6)}


def _params_and_grads(dtype, n_steps=6, seed=0):
    rng = np.random.default_rng(seed)
    params = {k: rng.standard_normal(s).astype(dtype) for k, s in SHAPES.items()}
    grads = [{k: rng.standard_normal(s).astype(dtype) for k, s in SHAPES.items()}
             for _ in range(n_steps)]
    return params, grads


def _compare_with_torch(ours, make_torch_opt, dtype):
    params, grads = _params_and_grads(dtype)
    tparams = {k: torch.tensor(v.copy(), requires_grad=True) for k, v in params.items()}
    topt = make_torch_opt(list(tparams.values()))
    for step_grads in grads:
        ours.step(params, {k: g.copy() for k, g in step_grads.items()})
        for k, t in tparams.items():
            t.grad = torch.from_numpy(step_grads[k].copy())
        topt.step()
        for k, t in tparams.items():
            assert params[k].dtype == dtype
            np.testing.assert_allclose(params[k], t.detach().numpy(), **TOL[dtype], err_msg=k)


SGD_CONFIGS = [dict(lr=0.1), dict(lr=0.05, momentum=0.9),
               dict(lr=0.05, momentum=0.8, weight_decay=0.1)]
ADAM_CONFIGS = [dict(lr=1e-2, weight_decay=0.0),   # explicit: AdamW defaults to 0.01
                dict(lr=3e-3, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("config", SGD_CONFIGS)
def test_sgd_matches_torch(config, dtype):
    _compare_with_torch(SGD(**config), lambda ps: torch.optim.SGD(ps, **config), dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("config", ADAM_CONFIGS)
@pytest.mark.parametrize("decoupled", [True, False])
def test_adam_matches_torch(config, decoupled, dtype):
    torch_cls = torch.optim.AdamW if decoupled else torch.optim.Adam
    _compare_with_torch(Adam(**config, decoupled=decoupled),
                        lambda ps: torch_cls(ps, **config), dtype)


def test_step_skips_missing_and_none_grads():
    params = {"a": np.ones(2), "b": np.ones(2)}
    Adam(lr=0.1).step(params, {"a": np.ones(2), "b": None})
    assert np.all(params["a"] < 1) and np.all(params["b"] == 1)
    SGD(lr=0.1).step(params, {"b": np.ones(2)})
    np.testing.assert_allclose(params["b"], 0.9)


@pytest.mark.parametrize("max_norm", [0.5, 100.0])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_clip_grad_norm_matches_torch(max_norm, dtype):
    _, (grads, *_) = _params_and_grads(dtype, n_steps=1)
    tgrads = {k: torch.nn.Parameter(torch.zeros(g.shape, dtype=torch.from_numpy(g).dtype))
              for k, g in grads.items()}
    for k, t in tgrads.items():
        t.grad = torch.from_numpy(grads[k].copy())
    want = torch.nn.utils.clip_grad_norm_(list(tgrads.values()), max_norm).item()
    total = clip_grad_norm(grads, max_norm)
    assert total == pytest.approx(want, rel=1e-6)
    for k, t in tgrads.items():
        assert grads[k].dtype == dtype
        np.testing.assert_allclose(grads[k], t.grad.numpy(), **TOL[dtype], err_msg=k)
    if max_norm < total:
        new_norm = np.sqrt(sum(np.sum(g.astype(np.float64) ** 2) for g in grads.values()))
        assert new_norm == pytest.approx(max_norm, rel=1e-5)


def test_rejects_bad_input():
    params = {"W": np.zeros((2, 3))}
    with pytest.raises(ValueError, match=r"grads\['W'\] must have the shape .*\(2, 3\), got \(3,"):
        SGD(lr=0.1).step(params, {"W": np.zeros((3, 2))})
    with pytest.raises(ValueError, match="grads has key 'V' that is not in params"):
        Adam().step(params, {"V": np.zeros((2, 3))})
    with pytest.raises(ValueError, match=r"params\['x'\] must be a floating ndarray"):
        SGD(lr=0.1).step({"x": [1.0]}, {"x": np.zeros(1)})
    with pytest.raises(ValueError, match="lr must be non-negative"):
        SGD(lr=-1.0)
    with pytest.raises(ValueError, match="betas"):
        Adam(betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="max_norm must be positive"):
        clip_grad_norm(params, 0.0)
    with pytest.raises(ValueError, match=r"grads\['W'\] must be an ndarray"):
        clip_grad_norm({"W": [1.0, 2.0]}, 1.0)


@pytest.mark.parametrize("opt", [SGD(lr=0.5, momentum=0.9), Adam(lr=0.05, weight_decay=1e-3)])
def test_optimisers_train_a_softmax_classifier(opt):
    from attention_np.core import linear_backward, linear_forward
    from attention_np.nn.losses import cross_entropy_backward, cross_entropy_forward
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 4))
    targets = np.argmax(x @ rng.standard_normal((4, 3)), axis=1)   # linearly separable labels
    params = {"W": np.zeros((4, 3)), "b": np.zeros(3)}
    losses = []
    for _ in range(60):
        logits, lin = linear_forward(x, params["W"], params["b"])
        loss, ce = cross_entropy_forward(logits, targets)
        _, dW, db = linear_backward(cross_entropy_backward(1.0, ce), lin)
        grads = {"W": dW, "b": db}
        clip_grad_norm(grads, 5.0)
        opt.step(params, grads)
        losses.append(float(loss))
    assert losses[-1] < 0.3 * losses[0]
