"""The visual_question and pointer_sort demos end to end on tiny budgets: metrics.json has the
keys issue 32 names, and the figures are written."""
import json
from dataclasses import replace

import pytest

from demos import pointer_sort, visual_question
from demos._progress import set_quiet


@pytest.fixture(autouse=True)
def quiet():
    set_quiet(True)
    yield
    set_quiet(False)


def test_visual_question_metrics_and_figures(tmp_path, monkeypatch):
    monkeypatch.setattr(visual_question, "QUICK", replace(
        visual_question.QUICK, n_train=64, n_test=48, cnn_steps=2, steps=3, batch=4))
    figures = visual_question.run(tmp_path)
    metrics = json.loads((tmp_path / "visual_question" / "metrics.json").read_text())
    for name in ("attention", "question_only", "mean_pool"):
        assert {"test_accuracy", "train_steps"} <= set(metrics[name])
        assert metrics[name]["train_steps"] == 3
    assert 0 <= metrics["attention_on_target"] <= 1
    assert {"cnn_pretrain_steps", "cnn_column_accuracy"} <= set(metrics)
    assert all((tmp_path / f.path).exists() for f in figures) and len(figures) == 3


def test_pointer_sort_metrics_and_figures(tmp_path, monkeypatch):
    monkeypatch.setattr(pointer_sort, "QUICK", replace(pointer_sort.QUICK, steps=3, batch=4,
                                                       test_rows=5))
    figures = pointer_sort.run(tmp_path)
    metrics = json.loads((tmp_path / "pointer_sort" / "metrics.json").read_text())
    for name in ("pointer", "seq2seq"):
        assert metrics[name]["train_steps"] == 3
        assert set(metrics[name]["sequence_accuracy"]) == {"5", "10", "15", "20"}
    assert all((tmp_path / f.path).exists() for f in figures) and len(figures) == 2
