"""Every exercise: a learner's correct solution passes, and realistic wrong ones — each an edit
of it — fail with the message that names the mistake (at least three for each of the first 18
exercises, at least two for each one issue 30 added). The solutions and mistakes are in
test_exercises_mistakes_basics.py and _attention.py (the first 18) and _more.py (the others)."""
import pytest

from attention_np.exercises import EXERCISES
from tests import test_exercises_mistakes_attention as attention
from tests import test_exercises_mistakes_basics as basics
from tests import test_exercises_mistakes_more as more
from tests.test_exercises import FIRST, assert_passes, assert_told, mistake_ids, mutate

SOLUTIONS = {**basics.SOLUTIONS, **attention.SOLUTIONS, **more.SOLUTIONS}
MISTAKES = basics.MISTAKES + attention.MISTAKES + more.MISTAKES


@pytest.mark.parametrize("name", SOLUTIONS)
def test_a_correct_learner_solution_passes(tmp_path, name):
    assert_passes(tmp_path, name, SOLUTIONS[name])


@pytest.mark.parametrize("name, edits, words", MISTAKES, ids=mistake_ids(MISTAKES))
def test_a_wrong_solution_is_told_what_is_wrong(tmp_path, name, edits, words):
    assert_told(tmp_path, name, mutate(SOLUTIONS[name], *edits), words)


def test_every_exercise_has_a_solution_and_its_mistakes():
    assert set(SOLUTIONS) == {ex.name for ex in EXERCISES}
    for ex in EXERCISES:
        assert sum(m[0] == ex.name for m in MISTAKES) >= (3 if ex.name in FIRST else 2), ex.name


def test_each_mistake_is_told_in_its_own_words():
    """Two mistakes of one exercise never expect the same message."""
    seen = set()
    for name, _, words in MISTAKES:
        assert (name, words[0]) not in seen, (name, words[0])
        seen.add((name, words[0]))
