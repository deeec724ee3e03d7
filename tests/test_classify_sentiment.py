"""The sentiment grammar's rules and splits, the classifier's gradient, and a tiny training run
(the baseline, the negated set, validation and faithfulness: tests/test_sentiment_eval.py)."""
import numpy as np
import pytest

from attention_np.apps.sentiment import (SentimentConfig, ablate_head, init_sentiment_classifier,
                                         loss_and_grads, predict, role_scores,
                                         sentiment_backward, sentiment_forward)
from attention_np.transformer import EncoderConfig
from demos._sentiment_data import (CLS, MAX_LEN, MIN_LEN, NEGATORS, deciding_clause,
                                   held_out_pairs, make_splits, sentence_label, word_class)
from tests.helpers import check_finite_differences


@pytest.fixture(scope="module")
def splits():
    return make_splits(600, 200, seed=3)


@pytest.mark.parametrize("sentence,label", [
    ("the movie was good", 3),
    ("the movie was very good", 4),
    ("the movie was slightly terrible", 1),
    ("the movie was awful", 0),
    ("the movie was not good", 1),
    ("the movie was not very good", 1),           # negation damps to magnitude 1
    ("hardly a terrible film", 3),
    ("honestly never a somewhat dull show overall", 3),
    ("not a very long film", 2),                  # neutral stays neutral
    ("the plot was awful but the acting was excellent", 4),    # the second clause decides
    ("the plot was excellent but the acting was not very bad", 3),
    ("the plot was not good but the ending was terrible", 0),
    ("the plot was very good but the ending was long", 4),     # … unless it is neutral
    ("hardly a bad film but a short one", 3),
])
def test_composition_rules(sentence, label):
    assert sentence_label(sentence.split()) == label


def test_word_classes():
    assert [word_class(w) for w in "the film was not very good but slightly long".split()] == [
        "other", "other", "other", "negator", "intensifier", "sentiment", "contrast",
        "intensifier", "other"]


def test_splits_have_the_promised_shape_and_hold_out_pairs(splits):
    train, test, vocab = splits
    held = held_out_pairs(3)
    for split in (train, test):
        assert np.all((split.lengths >= MIN_LEN + 1) & (split.lengths <= MAX_LEN + 1))
        assert np.all(split.ids[:, 0] == vocab.index(CLS))
        real = np.arange(split.ids.shape[1]) < split.lengths[:, None]
        assert np.all((split.ids > 0) == real)                           # 0 = padding only
        assert set(np.unique(split.labels)) == set(range(5))
        decoded = [[vocab[i] for i in row[1:n]] for row, n in zip(split.ids, split.lengths)]
        assert decoded == split.sentences
        assert [sentence_label(s) for s in split.sentences] == split.labels.tolist()

    def pairs(s):                                  # (modifier, adjective) within a clause
        clauses = " ".join(s).split(" but ")
        return {(m, a) for c in clauses for m in c.split() for a in c.split()} & held
    assert not any(pairs(s) for s in train.sentences)
    assert all(pairs(s) for s in test.sentences)
    assert np.array_equal(test.negated, [any(w in NEGATORS for w in deciding_clause(s))
                                         for s in test.sentences])
    assert np.array_equal(test.has_negator, [any(w in NEGATORS for w in s)
                                             for s in test.sentences])
    assert np.all(test.has_negator[test.negated]) and np.any(test.has_negator & ~test.negated)
    assert make_splits(600, 200, seed=3)[0].sentences == train.sentences
    assert make_splits(600, 200, seed=4)[0].sentences != train.sentences


def tiny_model(vocab_size, dtype=np.float64, d_model=8, **encoder):
    config = SentimentConfig(vocab_size, 5, 48, EncoderConfig(d_model=d_model, num_heads=2,
                                                              d_ff=12, num_layers=2, **encoder))
    return config, init_sentiment_classifier(config, np.random.default_rng(0), dtype)


@pytest.mark.parametrize("norm_first", [False, True])
def test_full_model_gradient_matches_finite_differences(splits, norm_first):
    train, _, vocab = splits
    config, params = tiny_model(len(vocab), dropout=0.1, attn_dropout=0.2, activation="gelu",
                                norm_first=norm_first)
    assert ("ln_f.gamma" in params) == norm_first           # pre-LN ends with a layer norm
    ids, lengths = train.ids[:3], train.lengths[:3]
    ids = ids[:, : lengths.max()]

    def ours(**p):
        rng = np.random.default_rng(1)
        logits, _, cache = sentiment_forward(ids, lengths, p, config, rng, training=True)
        return logits, lambda d: sentiment_backward(d, cache)
    check_finite_differences(ours, dict(params), list(params), n_entries=3)


def test_loss_and_grads_is_the_mean_cross_entropy_and_its_gradient(splits):
    train, _, vocab = splits
    config, params = tiny_model(len(vocab), dropout=0.1, attn_dropout=0.2)
    ids, lengths, labels = train.ids[:4, :train.lengths[:4].max()], train.lengths[:4], \
        train.labels[:4]
    loss, grads, logits = loss_and_grads(params, config, ids, lengths, labels, training=False)
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    assert loss == pytest.approx(-log_p[np.arange(4), labels].mean(), rel=1e-12)
    assert set(grads) == set(params)

    def ours(**p):
        value, g, _ = loss_and_grads(p, config, ids, lengths, labels, np.random.default_rng(2))
        return np.array([value]), lambda d: {k: v * d[0] for k, v in g.items()}
    check_finite_differences(ours, dict(params), ["tok_emb.W", "blocks.0.attn.W_q", "blocks.1.ffn.W_2", "head.W"],
                             n_entries=3)


def test_tiny_training_lowers_the_loss(splits):
    from demos.classify_sentiment import train_classifier
    train, _, vocab = splits
    config, params = tiny_model(len(vocab), np.float32, d_model=16)
    history = train_classifier(params, config, train, steps=150, lr=5e-3, batch_size=32,
                               rng=np.random.default_rng(0))
    first, last = np.mean(history["loss"][:10]), np.mean(history["loss"][-10:])
    assert last < 0.8 * first and last < np.log(5), (first, last)     # below chance


def test_role_scores_and_ablation():
    # one sentence, [CLS] + 3 tokens; head 0 puts all of [CLS]'s attention on the negator
    weights = np.zeros((1, 2, 4, 4))
    weights[0, 0, 0, 2] = 1.0
    weights[0, 1, 0] = 0.25                                              # head 1: uniform
    classes = np.array([["other", "other", "negator", "sentiment"]])
    scores = role_scores(weights, classes, np.array([4]), ["negator", "sentiment", "contrast"])
    np.testing.assert_allclose(scores[:, :2], [[4.0, 0.0], [1.0, 1.0]])
    assert np.all(np.isnan(scores[:, 2]))                                # class absent

    config, params = tiny_model(30)
    ablated = ablate_head(params, 1, 0, 2)
    key = "blocks.1.attn.W_o"
    assert np.all(ablated[key][:4] == 0) and np.any(params[key][:4] != 0)
    ids, lengths = np.array([[1, 5, 7, 0]]), np.array([3])
    full = sentiment_forward(ids, lengths, params, config)[0]
    without = sentiment_forward(ids, lengths, ablated, config)[0]
    assert not np.allclose(full, without)
    preds, weights = predict(ids, lengths, params, config, return_weights=True)
    assert preds.shape == (1,) and weights[0].shape == (1, 2, 4, 4)
    assert np.all(weights[1][0, :, :, 3] == 0)                           # the padded key

