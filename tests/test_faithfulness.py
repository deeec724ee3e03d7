"""Deletion / insertion faithfulness (demos/_faithfulness.py): the curves and AUCs by hand, the
oracle order of an additive model beats every other order, one model call per distinct input,
and the explanation scores on attention maps whose answer is known."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from demos._faithfulness import (METHODS, curve_auc, keep_masks, removal_order,
                                 sentence_curves, summarise, token_scores)
from tests.strategies import examples, seeds


def additive(w):
    """A model whose output is the summed weight of the kept tokens."""
    return lambda keep: np.asarray(keep, dtype=np.float64) @ w


def test_curves_and_auc_by_hand():
    # weights 3, 1, 0 deleted in that order: 4 → 1 → 0 → 0; inserted: 0 → 3 → 4 → 4
    w = np.array([0.0, 3.0, 1.0])
    order = removal_order(w)
    assert order.tolist() == [1, 2, 0]
    deletion, insertion = keep_masks(order)
    assert deletion.tolist() == [[True] * 3, [True, False, True], [True, False, False],
                                 [False] * 3]
    np.testing.assert_array_equal(insertion, ~deletion)
    assert (deletion @ w).tolist() == [4, 1, 0, 0] and (insertion @ w).tolist() == [0, 3, 4, 4]
    # trapezoid with Δt = 1/3: (4/2 + 1 + 0 + 0/2)/3 = 1, (0/2 + 3 + 4 + 4/2)/3 = 3
    assert curve_auc(deletion @ w) == pytest.approx(1.0)
    assert curve_auc(insertion @ w) == pytest.approx(3.0)
    assert curve_auc(np.linspace(0, 1, 8)) == pytest.approx(0.5)         # y = t
    assert removal_order([1.0, 2.0, 2.0]).tolist() == [1, 2, 0]           # ties: earlier first


@examples(ci=200, thorough=2000)
@given(n=st.integers(1, 9), seed=seeds)
def test_the_oracle_order_of_an_additive_model_beats_every_order(n, seed):
    rng = np.random.default_rng(seed)
    w = rng.exponential(size=n)
    scores = {"oracle": w, "other": rng.permutation(w), "reversed": -w}
    curves = sentence_curves(additive(w), scores)
    for c in curves.values():
        assert c["deletion"][0] == pytest.approx(w.sum()) and c["deletion"][-1] == 0
        assert c["insertion"][0] == 0 and c["insertion"][-1] == pytest.approx(w.sum())
        np.testing.assert_allclose(c["deletion"] + c["insertion"], w.sum())   # complements
    auc = {k: (curve_auc(c["deletion"]), curve_auc(c["insertion"])) for k, c in curves.items()}
    for k in ("other", "reversed"):
        assert auc["oracle"][0] <= auc[k][0] + 1e-12 and auc["oracle"][1] >= auc[k][1] - 1e-12


def test_each_distinct_input_reaches_the_model_once():
    calls = []
    w = np.array([1.0, 2.0, 4.0, 8.0])

    def output(keep):
        calls.append(keep.copy())
        return additive(w)(keep)
    scores = {"a": w, "b": w.copy(), "c": -w}
    curves = sentence_curves(output, scores)
    assert len(calls) == 1
    rows = [tuple(r) for r in calls[0]]
    assert len(rows) == len(set(rows))             # "a" and "b" share every input
    for name, s in scores.items():                 # same values as a direct evaluation
        deletion, insertion = keep_masks(removal_order(s))
        np.testing.assert_allclose(curves[name]["deletion"], deletion @ w)
        np.testing.assert_allclose(curves[name]["insertion"], insertion @ w)


def test_summarise_means_aucs_and_puts_curves_on_the_grid():
    curves = [{"m": {"deletion": np.array([1.0, 0.0]), "insertion": np.array([0.0, 1.0])}},
              {"m": {"deletion": np.array([1.0, 1.0, 0.0]),
                     "insertion": np.array([0.0, 0.0, 1.0])}}]
    s = summarise(curves)["m"]
    assert s["deletion_auc"] == pytest.approx((0.5 + 0.75) / 2)
    assert s["insertion_auc"] == pytest.approx((0.5 + 0.25) / 2)
    assert s["deletion_auc_sem"] == pytest.approx(0.125)                  # std 0.177 / √2
    assert s["deletion_curve"][0] == 1.0 and s["deletion_curve"][-1] == 0.0
    assert s["deletion_curve"][5] == pytest.approx((0.5 + 1.0) / 2)       # t = 0.5


def test_scores_where_every_token_attends_to_itself():
    """Identity attention in every layer: rollout, flow and (with a zero gradient) relevance
    are the identity, so the scores of row i are one-hot at i; raw attention too."""
    L, H, T = 3, 2, 5
    eye = np.broadcast_to(np.eye(T), (L, H, T, T))
    scores = token_scores(eye, np.zeros((L, H, T, T)), [2], np.random.default_rng(0))
    assert set(scores) == set(METHODS)
    for name in ("raw_attention", "rollout", "flow", "relevance"):
        np.testing.assert_allclose(scores[name], np.eye(T)[2], atol=1e-6, err_msg=name)
    np.testing.assert_array_equal(scores["grad_x_attention"], 0)
    assert np.all((scores["random"] >= 0) & (scores["random"] < 1))


@examples(ci=50, thorough=500)
@given(L=st.integers(1, 3), H=st.integers(1, 3), T=st.integers(2, 6), seed=seeds)
def test_scores_are_row_means_of_each_map(L, H, T, seed):
    """Raw attention is the last layer's head mean averaged over the rows asked for; the
    attention-only maps are row-stochastic, so their row means sum to 1; gradient × attention
    is the head mean of ∂y/∂A ⊙ A in the last layer."""
    rng = np.random.default_rng(seed)
    a = rng.random((L, H, T, T))
    a /= a.sum(axis=-1, keepdims=True)
    g = rng.standard_normal((L, H, T, T))
    rows = rng.choice(T, size=rng.integers(1, T + 1), replace=False)
    s = token_scores(a, g, rows, rng)
    np.testing.assert_allclose(s["raw_attention"], a[-1].mean(axis=0)[rows].mean(axis=0))
    np.testing.assert_allclose(s["grad_x_attention"], (g[-1] * a[-1]).mean(axis=0)[rows].mean(0))
    for name in ("raw_attention", "rollout"):
        assert s[name].sum() == pytest.approx(1.0), name
    assert np.all(s["flow"] >= 0) and np.all(s["flow"] <= 1 + 1e-6)
    assert np.all(s["relevance"] >= 0)
