"""The DIN recommender (attention_np.apps.recommend) against torch and finite differences, and
the demo's generated logs and training loop."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from attention_np.apps.recommend import (RecConfig, init_recommender, logistic_loss_backward,
                                         logistic_loss_forward, loss_and_grads, predict,
                                         recommender_backward, recommender_forward)
from demos._recsys_data import MAX_LEN, bayes_logit, make_catalogue, make_clicks
from demos.recommend import Schedule, model_inputs, train
from tests.helpers import assert_matches_torch

POOLINGS = [{"pooling": "mean"}, {"pooling": "din", "normalize": "softmax"},
            {"pooling": "din", "normalize": "none"}]


@pytest.fixture(scope="module")
def small():
    cat = make_catalogue(n_items=120, n_categories=12, seed=0)
    return cat, make_clicks(cat, 60, 3, seed=1)


def _config(cat, **kw):
    return RecConfig(len(cat.category), int(cat.category.max()) + 1, **kw)


def test_generated_logs_are_consistent(small):
    cat, data = small
    assert data.history.shape == (180, MAX_LEN) and data.mask.sum(1).min() >= 10
    assert np.all(data.history[~data.mask] == 0)
    # ground truth relation: same category or the partner category (2k, 2k + 1)
    n, j = np.argwhere(data.related)[0]
    assert cat.category[data.history[n, j]] // 2 == cat.category[data.candidate[n]] // 2
    assert not np.any(data.related & ~data.mask)
    # clicks follow the true probability: related candidates are clicked more often
    logit = bayes_logit(cat, data)
    assert data.label[logit > 0].mean() > data.label[logit < 0].mean()


def _tiny_model(small, kw, seed, n):
    """A small recommender with pooling ``kw`` and the first ``n`` clicks of the small data set
    → (catalogue, config, params, batch)."""
    cat, data = small
    config = _config(cat, **kw, d_item=3, d_cat=4, d_att=5, d_mlp=6)
    return cat, config, init_recommender(config, np.random.default_rng(seed)), data.take(slice(0, n))


@pytest.mark.parametrize("kw", POOLINGS)
def test_model_gradient_matches_finite_differences(small, kw):
    cat, config, params, batch = _tiny_model(small, kw, seed=0, n=6)
    inputs = model_inputs(cat, batch)

    def loss():
        return loss_and_grads(params, config, *inputs, batch.label)[0]
    _, grads = loss_and_grads(params, config, *inputs, batch.label)
    rng = np.random.default_rng(1)
    for name in params:
        p = params[name]
        idx = (cat.category[batch.history[0, 0]], 1) if name == "cat_emb" else tuple(
            rng.integers(0, s) for s in p.shape)
        old = p[idx]
        p[idx] = old + 1e-6
        plus = loss()
        p[idx] = old - 1e-6
        minus = loss()
        p[idx] = old
        np.testing.assert_allclose(grads[name][idx], (plus - minus) / 2e-6, rtol=1e-4, atol=1e-8,
                                   err_msg=name)


def _torch_loss(config, history, mask, candidate, labels):
    """The whole model and its loss written in torch, for autograd to differentiate."""
    m = torch.from_numpy(mask)
    h, c, y = (torch.from_numpy(a) for a in (history, candidate, labels))

    def theirs(**p):
        def embed(ids):
            return torch.cat([p["item_emb"][ids[..., 0]], p["cat_emb"][ids[..., 1]]], dim=-1)
        e_h, e_a = embed(h), embed(c)
        if config.pooling == "mean":
            w = m.double() / m.sum(1, keepdim=True).clamp(min=1)
        else:
            ab = e_a[:, None, :].expand_as(e_h)
            z = torch.cat([e_h, ab, e_h * ab, e_h - ab], dim=-1)
            s = torch.sigmoid(z @ p["att.W1"] + p["att.b1"]) @ p["att.w2"] + p["att.b2"]
            w = (torch.softmax(s.masked_fill(~m, -torch.inf), dim=-1).nan_to_num(0.0)
                 if config.normalize == "softmax" else s.masked_fill(~m, 0.0))
        v = torch.einsum("bt,btd->bd", w, e_h)
        x = torch.cat([v, e_a, v * e_a], dim=-1)
        logits = (torch.relu(x @ p["mlp.W1"] + p["mlp.b1"]) @ p["mlp.W2"] + p["mlp.b2"])[:, 0]
        return F.binary_cross_entropy_with_logits(logits, y.double())
    return theirs


@pytest.mark.parametrize("kw", POOLINGS)
def test_model_matches_torch(small, kw):
    cat, config, params, batch = _tiny_model(small, kw, seed=2, n=9)
    history, mask, candidate = model_inputs(cat, batch)
    mask = mask.copy()
    mask[0] = False                                     # a user with no history at all
    inputs = (history, mask, candidate)

    def ours(**p):
        logits, _, cache = recommender_forward(*inputs, p, config)
        loss, loss_cache = logistic_loss_forward(logits, batch.label)
        return np.asarray(loss), lambda dl: recommender_backward(
            logistic_loss_backward(dl, loss_cache), cache)
    name = config.pooling if config.pooling == "mean" else f"din, {config.normalize}"
    assert_matches_torch(f"recommender[{name}]", ours,
                         _torch_loss(config, *inputs, batch.label), params, list(params))


def test_logistic_loss_is_stable_and_predict_batches(small):
    z = np.array([-800.0, -3.0, 0.0, 5.0, 800.0])
    y = np.array([0, 1, 1, 0, 1])
    loss, cache = logistic_loss_forward(z, y)
    assert np.isfinite(loss) and np.all(np.isfinite(logistic_loss_backward(1.0, cache)))
    cat, data = small
    config = _config(cat, pooling="din")
    params = init_recommender(config, np.random.default_rng(0))
    inputs = model_inputs(cat, data.take(slice(0, 30)))
    np.testing.assert_allclose(predict(params, config, *inputs, batch=7),
                               recommender_forward(*inputs, params, config)[0], rtol=1e-12)


def test_bad_input_raises(small):
    cat, data = small
    with pytest.raises(ValueError, match="pooling"):
        _config(cat, pooling="max")
    config = _config(cat, pooling="mean")
    params = init_recommender(config, np.random.default_rng(0))
    history, mask, candidate = model_inputs(cat, data.take(slice(0, 4)))
    with pytest.raises(ValueError, match="history"):
        recommender_forward(history[..., 0], mask, candidate, params, config)
    with pytest.raises(ValueError, match="candidate"):
        recommender_forward(history, mask, candidate[:3], params, config)
    with pytest.raises(ValueError, match="labels"):
        loss_and_grads(params, config, history, mask, candidate, np.zeros(5))


def test_training_lowers_the_loss(small):
    cat, data = small
    config = _config(cat, pooling="din")
    _, losses = train(config, Schedule(lr=1e-2, batch=45, epochs=8), cat, data)
    assert np.mean(losses[-4:]) < np.mean(losses[:4]) - 0.02


def test_every_model_gets_the_same_learning_rate_search(small, monkeypatch):
    """search_lr trains once per lr of the shared grid and keeps the one with the best
    validation AUC (its parameters and losses): the same search for pooling and DIN."""
    from sklearn.metrics import roc_auc_score

    import demos.recommend as demo
    cat, data = small
    val = make_clicks(cat, 40, 3, seed=5)
    monkeypatch.setattr(demo, "LEARNING_RATES", (1e-4, 3e-2))
    for fields in (POOLINGS[0], POOLINGS[1]):
        found = demo.search_lr("m", _config(cat, **fields), cat, data, val, epochs=2)
        assert set(found["validation_auc"]) == {"0.0001", "0.03"}
        assert found["validation_auc"][f"{found['lr']:g}"] == max(found["validation_auc"].values())
        scores = predict(found["params"], _config(cat, **fields), *model_inputs(cat, val))
        assert roc_auc_score(val.label, scores) == pytest.approx(
            found["validation_auc"][f"{found['lr']:g}"])
        assert len(found["losses"]) == 2 * -(-len(data) // Schedule().batch)
