"""The sentiment demo's honest numbers: the negated-test definition, the validation split and
the head chosen on it, the mean-pooling baseline (against torch), the attention gradients the
explanations read, and the classifier's faithfulness curves."""
import numpy as np
import pytest
from hypothesis import given

from attention_np.apps.sentiment import (SentimentConfig, init_sentiment_classifier,
                                         sentiment_backward, sentiment_forward)
from attention_np.transformer import EncoderConfig, encoder_backward
from demos._sentiment_data import (held_out_pairs, make_splits, make_validation,
                                   sentence_label)
from tests.helpers import assert_matches_torch, check_finite_differences
from tests.strategies import distinct_dims, dtypes, examples, seeds
from tests.test_classify_sentiment import tiny_model


@pytest.fixture(scope="module")
def splits():
    return make_splits(600, 200, seed=3)


@pytest.mark.parametrize("sentence,negated", [
    ("the movie was not good", True),
    ("the plot was not good but the acting was excellent", False),   # "but" overrides "not"
    ("the plot was good but the acting was not excellent", True),
    ("the plot was not good but the ending was long", True),         # neutral B: A decides
    ("the plot was good but the ending was not long", False),        # … and B's "not" is moot
    ("hardly a bad film but a short film", True),
])
def test_negated_counts_only_the_deciding_clause(sentence, negated):
    from demos._sentiment_data import _encode, build_vocab
    words = sentence.split()
    split = _encode([words], [sentence_label(words)], build_vocab())
    assert split.negated.tolist() == [negated]
    assert split.has_negator.tolist() == [True]


def test_validation_split_is_drawn_like_training_from_its_own_stream():
    train, _, _ = make_splits(300, 50, seed=3)
    val = make_validation(300, seed=3)
    held = held_out_pairs(3)
    assert not any({(m, a) for c in " ".join(s).split(" but ") for m in c.split()
                    for a in c.split()} & held for s in val.sentences)
    assert val.sentences != train.sentences
    assert make_validation(300, seed=3).sentences == val.sentences
    assert [sentence_label(s) for s in val.sentences] == val.labels.tolist()


def test_best_head_is_chosen_on_validation_and_scored_on_test():
    from demos.classify_sentiment import ROLES, best_heads
    val = {"L0H0": dict.fromkeys(ROLES, 1.0), "L0H1": dict.fromkeys(ROLES, 2.0)}
    val["L0H0"]["negator"] = 5.0
    val["L0H1"]["contrast"] = float("nan")                  # absent class: never chosen
    test = {"L0H0": dict.fromkeys(ROLES, 0.5), "L0H1": dict.fromkeys(ROLES, 9.0)}
    best = best_heads(val, test)
    assert best["negator"] == {"head": "L0H0", "validation_score": 5.0, "test_score": 0.5}
    assert best["sentiment"]["head"] == "L0H1" and best["contrast"]["head"] == "L0H0"


def _mean_pool_torch(ids, lengths):
    import torch

    def theirs(**p):
        embed, W, b = p["tok_emb.W"], p["head.W"], p["head.b"]
        words = torch.arange(ids.shape[1])[None, :] < torch.as_tensor(lengths)[:, None]
        words[:, 0] = False
        m = words.to(embed.dtype)[..., None]                              # (B, T, 1)
        pooled = (embed[torch.as_tensor(ids)] * m).sum(1) / m.sum(1).clamp(min=1)
        return pooled @ W + b
    return theirs


@examples(ci=100, thorough=1000)
@given(dims=distinct_dims(4, 2, 9), dtype=dtypes, seed=seeds)
def test_mean_pool_baseline_matches_torch(dims, dtype, seed):
    """The bag-of-words baseline: logits = mean_{t ≥ 1} E[w_t] W_c + b_c; a sentence of [CLS]
    alone (length 1) pools nothing and gives b_c."""
    B, T, d, C = dims
    rng = np.random.default_rng(seed)
    config = SentimentConfig(11, C, T, EncoderConfig(d_model=d, num_heads=1), pooling="mean")
    params = init_sentiment_classifier(config, rng, dtype)
    assert set(params) == {"tok_emb.W", "head.W", "head.b"}
    params["head.b"] = rng.standard_normal(C).astype(dtype)
    lengths = rng.integers(1, T + 1, B)
    ids = rng.integers(2, 11, (B, T))
    ids[:, 0] = 1
    ids[np.arange(T)[None] >= lengths[:, None]] = 0

    def ours(**p):
        logits, weights, cache = sentiment_forward(ids, lengths, p, config)
        assert weights == []
        return logits, lambda dout: sentiment_backward(dout, cache)
    assert_matches_torch("mean_pool_classifier", ours, _mean_pool_torch(ids, lengths), params,
                         grad_wrt=list(params))
    if dtype == np.float64:
        check_finite_differences(ours, params, list(params), n_entries=4)
    with pytest.raises(ValueError, match="pooling"):
        SentimentConfig(11, C, T, pooling="max")


def test_return_dweights_gives_the_encoder_attention_gradients(splits):
    train, _, vocab = splits
    config, params = tiny_model(len(vocab))
    ids, lengths = train.ids[:3, :train.lengths[:3].max()], train.lengths[:3]
    logits, weights, cache = sentiment_forward(ids, lengths, params, config)
    dlogits = np.random.default_rng(0).standard_normal(logits.shape)
    grads, dweights = sentiment_backward(dlogits, cache, return_dweights=True)
    for k, g in sentiment_backward(dlogits, cache).items():
        np.testing.assert_array_equal(grads[k], g)
    dh = np.zeros(cache["h_shape"])
    dh[:, 0] = dlogits @ params["head.W"].T               # post-LN: no final norm
    _, _, expected = encoder_backward(dh, cache["enc"], return_dweights=True)
    assert len(dweights) == len(weights) == 2
    for got, want, w in zip(dweights, expected, weights):
        assert got.shape == w.shape
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_faithfulness_curves_of_the_classifier_start_at_its_prediction(splits):
    from attention_np.core import softmax_forward
    from demos.classify_sentiment import (attention_and_gradients, class_probability,
                                               sentiment_faithfulness)
    _, test, vocab = splits
    config, params = tiny_model(len(vocab))
    ids = test.ids[0, :test.lengths[0]]
    c, attn, dattn = attention_and_gradients(params, config, ids)
    logits = sentiment_forward(ids[None], np.array([len(ids)]), params, config)[0]
    p = softmax_forward(logits)[0][0]
    assert c == p.argmax() and attn.shape == dattn.shape == (2, 2, len(ids), len(ids))
    output = class_probability(params, config, int(ids[0]), ids[1:], c)
    n = len(ids) - 1
    keep = np.ones((2, n), bool)
    keep[1, 1:] = False                                   # only the first word
    first = sentiment_forward(ids[None, :2], np.array([2]), params, config)[0]
    np.testing.assert_allclose(output(keep), [p[c], softmax_forward(first)[0][0, c]],
                               rtol=1e-10)
    summary = sentiment_faithfulness(params, config, test, 4)
    assert set(summary) >= {"random", "relevance", "flow"}
    for s in summary.values():
        assert 0 <= s["deletion_auc"] <= 1 and 0 <= s["insertion_auc"] <= 1
