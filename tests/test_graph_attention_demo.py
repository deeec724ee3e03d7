"""The knowledge-graph demo: its generated graph, its models' gradients and its metrics."""
import numpy as np
import pytest

import demos._progress
from demos._kg_data import INFORMATIVE, RELATIONS, TYPES, KGConfig, ideal_vote, make_graph
from demos.knowledge_graph import (MODELS, ModelConfig, fit_all, init_model, model_backward,
                                   model_forward, train)
from tests.helpers import check_finite_differences

SMALL = KGConfig(people=60, companies=12, cities=6)


@pytest.fixture(scope="module")
def small():
    demos._progress.set_quiet(True)
    yield make_graph(SMALL, seed=3)
    demos._progress.set_quiet(False)


def test_generated_graph_is_consistent(small):
    kg = small
    i, j = kg.edges
    kind = {t: k for k, t in enumerate(TYPES)}
    assert np.all(kg.node_type[i] == kind["person"]) and np.all(i != j)
    assert len(np.unique(i * len(kg.field) + j)) == len(i)               # duplicate-free
    want = {"works_at": "company", "colleague_of": "person", "lives_in": "city",
            "visited": "city", "follows": "person"}
    for r, name in enumerate(RELATIONS):
        assert np.all(kg.node_type[j[kg.relation == r]] == kind[want[name]]), name
    same = kg.field[i] == kg.field[j]
    assert np.all(same[kg.informative])                       # informative edges: same field
    np.testing.assert_array_equal(np.bincount(i[kg.relation == 0], minlength=len(kg.people))
                                  [kg.people], 1)             # one employer each
    assert set(kg.train) | set(kg.test) == set(kg.people) and not set(kg.train) & set(kg.test)
    again = make_graph(SMALL, seed=3)
    np.testing.assert_array_equal(again.edges, kg.edges)
    np.testing.assert_array_equal(again.features, kg.features)
    assert INFORMATIVE.sum() == 2


def test_ideal_vote_beats_the_own_signal_alone():
    kg = make_graph(KGConfig(people=600, companies=120), seed=0)
    vote = ideal_vote(kg, KGConfig(), kg.people)
    own = kg.features[kg.people, 3:8].argmax(1)
    assert np.mean(vote == kg.field[kg.people]) > np.mean(own == kg.field[kg.people]) + 0.2


@pytest.mark.parametrize("kind", MODELS)
def test_model_gradients_match_finite_differences(small, kind):
    cfg = ModelConfig(kind, heads=2, per_head=3)
    params = init_model(cfg, small.features.shape[1], np.random.default_rng(0))
    nodes = small.train[:15]

    def ours(**p):
        logits, _, cache = model_forward(cfg, p, small, nodes)
        return logits, lambda d: model_backward(cfg, d, cache)

    trained = [k for k in params if not (kind == "mean_aggregation" and k.endswith(("a_src",
                                                                                   "a_dst")))]
    check_finite_differences(ours, params, trained, n_entries=6)
    assert set(ours(**params)[1](np.ones((15, 5)))) == set(trained)


def test_training_lowers_the_loss_and_metrics_have_the_contract_keys(small):
    _, losses = train(ModelConfig("relation_gat"), small, 30, seed=0)
    assert losses[-1] < 0.8 * losses[0]
    metrics, trained = fit_all(small, 5, seed=0)
    for kind in MODELS:
        assert 0 <= metrics[kind]["test_accuracy"] <= 1 and kind in trained
    assert 0 <= metrics["relation_gat"]["attention_on_informative"] <= 1
    assert 0 < metrics["chance"]["attention_on_informative"] < 1
