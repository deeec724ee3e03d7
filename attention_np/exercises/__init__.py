"""Exercises with a grader: write attention's forward and backward passes yourself.

    python -m attention_np.exercises list                     # the exercises, in order, with status
    python -m attention_np.exercises start softmax_backward   # writes exercises/softmax_backward.py
    python -m attention_np.exercises check softmax_backward   # grades it
    python -m attention_np.exercises check --all              # grades every exercise

``--dir`` chooses the folder (default ./exercises); ``start`` never overwrites a file.

Each exercise is named after the library function it asks for, with that function's signature
(a backward receives the cache of the library's own forward; the skeleton documents its fields).
The grader imports the learner's file in a worker process (a hang is stopped after a few
seconds, an exception shows the learner's traceback) and calls the function on seeded random
cases — odd sizes, batch > 1, heads > 1, Tq ≠ Tk, masks with fully masked rows, float32 and
float64. It compares every output with the library's own function and says what is wrong in
words: a wrong shape, NaN where the reference is finite, a transposed result, a constant factor
such as a missing 1/√D, a known mistake (mask ignored, wrong axis, …), or the first entry that
differs with both values — and, for a gradient, what finite differences of the library's
forward give there. It adds "right in float64, wrong in float32" or "right without a mask,
wrong with one" when the failures say so. The exit status is non-zero when a check fails.

:func:`catalogue` gives the site what it shows of each exercise.
"""
from __future__ import annotations

from attention_np.exercises.spec import Exercise, check_command, skeleton
from attention_np.exercises.tasks import EXERCISES

__all__ = ["EXERCISES", "Exercise", "UnknownExercise", "by_name", "catalogue"]


class UnknownExercise(ValueError):
    """No exercise has that name."""


def by_name(name: str) -> Exercise:
    """The exercise called ``name``, or :class:`UnknownExercise`."""
    for ex in EXERCISES:
        if ex.name == name:
            return ex
    raise UnknownExercise(name)


def catalogue() -> list[dict]:
    """Every exercise, in learning-path order, as a plain dict (JSON-ready) for the site:

    number, name          position (1-based) and the library function the learner writes
    title, section        one line, and the article's section(s) it practises
    signature             the learner's function, e.g. "softmax_backward(dy, cache)"
    task                  what to do (one paragraph, plain text with Unicode math)
    hints                 list of hints, to reveal one at a time
    doc                   the function's docstring: formula and shapes
    cache                 [[key, meaning], …] of the library forward's cache (backward exercises)
    cache_from            the forward whose cache a backward receives ("" for a forward)
    start, command        the shell commands that write the skeleton and grade it
    solution              dotted name of the library's own function (the solution to link)
    graded_against        dotted name of the function the grader compares with (the solution
                          itself, except where the library's version is not NumPy)
    skeleton              the text of the file ``start`` writes
    """
    return [{
        "number": number, "name": ex.name, "title": ex.title, "section": ex.section,
        "signature": ex.signature, "task": " ".join(ex.task.split()), "hints": list(ex.hints),
        "doc": ex.doc, "cache": [list(field) for field in ex.cache_fields],
        "cache_from": ex.cache_from,
        "start": f"python -m attention_np.exercises start {ex.name}",
        "command": check_command(ex.name), "solution": ex.solution,
        "graded_against": ex.reference or ex.solution,
        "skeleton": skeleton(ex, number, len(EXERCISES)),
    } for number, ex in enumerate(EXERCISES, 1)]
