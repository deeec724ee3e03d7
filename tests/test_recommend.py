"""The DIN recommendation demo: generated logs, the whole model's gradient, a short training run."""
import numpy as np
import pytest

from demos._recsys_data import MAX_LEN, bayes_logit, make_catalogue, make_clicks
from demos.recommend import RecConfig, backward, forward, init_model, logistic_loss, train


@pytest.fixture(scope="module")
def small():
    cat = make_catalogue(n_items=120, n_categories=12, seed=0)
    return cat, make_clicks(cat, 60, 3, seed=1)


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


@pytest.mark.parametrize("kw", [{"pooling": "mean"}, {"pooling": "din", "normalize": "softmax"},
                                {"pooling": "din", "normalize": "none"}])
def test_model_gradient_matches_finite_differences(small, kw):
    cat, data = small
    cfg = RecConfig(**kw, d_item=3, d_cat=4, d_att=5, d_mlp=6)
    params = init_model(cfg, cat, np.random.default_rng(0))
    batch = data.take(slice(0, 6))

    def loss():
        return logistic_loss(forward(cfg, params, cat, batch)[0], batch.label)[0]
    z, _, cache = forward(cfg, params, cat, batch)
    grads = backward(cfg, logistic_loss(z, batch.label)[1], cache)
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


def test_training_lowers_the_loss(small):
    cat, data = small
    cfg = RecConfig(pooling="din", epochs=8, batch=45, lr=1e-2)
    _, losses = train(cfg, cat, data, log=lambda *_: None)
    assert np.mean(losses[-4:]) < np.mean(losses[:4]) - 0.02
