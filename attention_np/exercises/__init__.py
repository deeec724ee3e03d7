"""Exercises with a grader: write attention's forward and backward passes yourself.

    python -m attention_np.exercises list                     # by chapter, with your progress
    python -m attention_np.exercises start softmax_backward   # writes exercises/softmax_backward.py
    python -m attention_np.exercises check softmax_backward   # grades it
    python -m attention_np.exercises check --all              # grades every exercise
    python -m attention_np.exercises --lang zh list           # 中文 (also when the locale is zh_*)

``--dir`` chooses the folder (default ./exercises); ``start`` never overwrites a file.

Each exercise is named after the library function it asks for, with that function's signature
(a backward receives the cache of the library's own forward; the skeleton documents its fields),
and belongs to the page of the learning site that teaches it (:mod:`.pages`): the exercises come
in the site's order. The grader imports the learner's file in a worker process (a hang is
stopped after a few seconds, an exception shows the learner's traceback; a file that imports
torch or the library's own solution is refused) and calls the function on seeded random cases —
odd sizes, batch > 1, heads > 1, Tq ≠ Tk, masks with fully masked rows, float32 and float64. It
compares every output with the library's own function and says what is wrong in words: a
wrong shape, NaN where the reference is finite, a transposed result, a constant factor such as
a missing 1/√D, a known mistake (mask ignored, wrong axis, …), or the first entry that differs
with both values — and, for a gradient, what finite differences of the library's forward give
there. It adds "right in float64, wrong in float32" or "right without a mask, wrong with one"
when the failures say so. The exit status is non-zero when a check fails. After a pass it says
where the library's solution lives.

Everything the learner reads is in English or Chinese (:mod:`.lang`): the skeleton's task,
hints and cache fields, the grader's diagnoses and the command line's messages.

:func:`catalogue` gives the site what it shows of each exercise, in both languages.
"""
from __future__ import annotations

import difflib

from attention_np.exercises.lang import language
from attention_np.exercises.pages import page
from attention_np.exercises.spec import Exercise, check_command, skeleton
from attention_np.exercises.tasks import EXERCISES

__all__ = ["EXERCISES", "Exercise", "UnknownExercise", "by_name", "catalogue", "suggestions"]


class UnknownExercise(ValueError):
    """No exercise has that name."""


def by_name(name: str) -> Exercise:
    """The exercise called ``name``, or :class:`UnknownExercise`."""
    for ex in EXERCISES:
        if ex.name == name:
            return ex
    raise UnknownExercise(name)


def suggestions(name: str, n: int = 3) -> list[str]:
    """The names of the exercises closest to ``name`` (a typo, a part of a name), best first."""
    names = [ex.name for ex in EXERCISES]
    close = difflib.get_close_matches(name, names, n=n, cutoff=0.6)
    within = [m for m in names if name and name.lower() in m and m not in close]
    return (close + within)[:n]


def _texts(ex: Exercise, number: int, lang: str) -> dict:
    with language(lang):
        return {"title": ex.title_in(), "task": ex.task_in(), "hints": ex.hints_in(),
                "cache": [list(field) for field in ex.cache_in()],
                "page_title": page(ex.page).heading(),
                "skeleton": skeleton(ex, number, len(EXERCISES))}


def catalogue() -> list[dict]:
    """Every exercise, in the site's order, as a plain dict (JSON-ready) for the site:

    number, name          position (1-based) and the exercise's name: the library function the
                          learner writes (``function``, when two exercises share one)
    title, section        one line, and the article's section(s) it practises
    page, chapter         the docname of the site page it belongs to, and its chapter number
                          ("" for an application page); page_title: the page's heading
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
    zh                    the same texts in Chinese: title, task, hints, cache, page_title,
                          skeleton

    The top-level texts are English.
    """
    entries = []
    for number, ex in enumerate(EXERCISES, 1):
        en = _texts(ex, number, "en")
        entries.append({
            "number": number, "name": ex.name, "function": ex.function, "title": en["title"],
            "section": ex.section, "page": ex.page, "chapter": page(ex.page).chapter,
            "page_title": en["page_title"], "signature": ex.signature, "task": en["task"],
            "hints": en["hints"], "doc": ex.doc, "cache": en["cache"],
            "cache_from": ex.cache_from, "start": f"python -m attention_np.exercises start "
                                                  f"{ex.name}",
            "command": check_command(ex.name), "solution": ex.solution,
            "graded_against": ex.reference or ex.solution, "skeleton": en["skeleton"],
            "zh": _texts(ex, number, "zh"),
        })
    return entries
