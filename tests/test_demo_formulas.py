"""The foundation demo and the `python -m demos` gallery."""
import json

import numpy as np

from demos import __main__ as demos_main
from demos import _formulas_sentence as sentence
from demos import formulas


def test_formulas_demo_writes_its_figures_and_numbers(tmp_path):
    figures = formulas.run(tmp_path)
    assert len(figures) >= 6
    for fig in figures:
        assert (tmp_path / fig.path).stat().st_size > 1000, fig.path
        assert fig.caption
    numbers = json.loads((tmp_path / "formulas" / "metrics.json").read_text())
    soft = numbers["soft"]
    assert np.isclose(sum(soft["alpha_t"]), 1.0)
    np.testing.assert_allclose(soft["c_t"], np.array(soft["alpha_t"]) @ np.array(soft["h"]))
    hard = numbers["hard"]
    np.testing.assert_allclose(hard["frequency"], hard["alpha"], atol=0.05)
    np.testing.assert_allclose(hard["reinforce_mean"], hard["exact_gradient"], atol=0.03)


def test_hand_built_heads_do_their_jobs():
    _, _, _, weights, _ = formulas.self_attention_example()
    tokens = sentence.TOKENS
    assert weights[0, tokens.index("it"), tokens.index("animal")] > 0.9      # coreference head
    prev = [weights[1, i, i - 1] for i in range(1, len(tokens))]
    assert min(prev) > 0.5                                                    # previous-token head


def test_python_m_demos_builds_the_gallery(tmp_path):
    demos_main.main(["formulas", "--out", str(tmp_path)])
    index = (tmp_path / "index.html").read_text()
    assert index.count("<figure>") >= 6 and "formulas/multi_head.png" in index


def test_python_m_demos_skips_a_demo_whose_optional_model_is_missing(tmp_path, monkeypatch):
    from attention_np.models import minilm

    def missing(*args, **kwargs):
        raise ImportError("MiniLM weights not found")
    monkeypatch.setattr(minilm.MiniLM, "from_pretrained", classmethod(missing))
    demos_main.main(["bert_attention", "formulas", "--out", str(tmp_path)])
    index = (tmp_path / "index.html").read_text()
    assert "Skipped in this run: MiniLM weights not found" in index
    assert "formulas/multi_head.png" in index
