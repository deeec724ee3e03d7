"""Every exercise: a learner's correct solution passes, and at least three realistic wrong ones —
each an edit of it — fail with the message that names the mistake. The solutions and mistakes
are in test_exercises_mistakes_basics.py (exercises 1–9) and _attention.py (10–18)."""
import pytest

from attention_np.exercises import EXERCISES
from tests import test_exercises_mistakes_attention as attention
from tests import test_exercises_mistakes_basics as basics
from tests.test_exercises import assert_passes, assert_told, mistake_ids, mutate

SOLUTIONS = {**basics.SOLUTIONS, **attention.SOLUTIONS}
MISTAKES = basics.MISTAKES + attention.MISTAKES


@pytest.mark.parametrize("name", SOLUTIONS)
def test_a_correct_learner_solution_passes(tmp_path, name):
    assert_passes(tmp_path, name, SOLUTIONS[name])


@pytest.mark.parametrize("name, edits, words", MISTAKES, ids=mistake_ids(MISTAKES))
def test_a_wrong_solution_is_told_what_is_wrong(tmp_path, name, edits, words):
    assert_told(tmp_path, name, mutate(SOLUTIONS[name], *edits), words)


def test_every_exercise_has_a_solution_and_three_mistakes():
    assert set(SOLUTIONS) == {ex.name for ex in EXERCISES}
    for ex in EXERCISES:
        assert sum(m[0] == ex.name for m in MISTAKES) >= 3, ex.name
