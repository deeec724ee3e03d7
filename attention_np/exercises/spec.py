"""What an exercise is (:class:`Exercise`), what one graded call is (:class:`Case`), and the
skeleton file ``start`` writes.

An exercise is named after the library function the learner writes again; the grader calls the
learner's function on each case's arguments and compares what it returns with ``Case.expected``,
computed by the library's own function.
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from typing import Callable

import numpy as np


@dataclass
class FiniteDiff:
    """How to differentiate the library's forward numerically, for a backward exercise.

    ``forward(**inputs)`` returns the forward's output; the fake loss is Σ out ⊙ dout, so the
    gradient the learner returns as ``wrt``'s key is ∂L/∂inputs[wrt[key]]. ``inputs`` are
    float64 copies (upcast from a float32 case).
    """
    forward: Callable[..., np.ndarray]
    inputs: dict
    dout: np.ndarray
    wrt: dict

    def numeric(self, grad_name: str, idx: tuple, eps: float = 1e-6) -> float:
        """Central difference ∂L/∂x[idx] ≈ Σ (out(x + ε) − out(x − ε)) ⊙ dout / 2ε, output by
        output before the sum (outputs a perturbation leaves alone cancel exactly)."""
        x = self.inputs[self.wrt[grad_name]]
        old = x[idx]
        x[idx] = old + eps
        plus = np.asarray(self.forward(**self.inputs), dtype=np.float64)
        x[idx] = old - eps
        minus = np.asarray(self.forward(**self.inputs), dtype=np.float64)
        x[idx] = old
        return float(np.sum((plus - minus) * self.dout) / (2 * eps))


@dataclass
class Case:
    """One call of the learner's function and what it must return.

    label: how the case is named to the learner (dtype, shapes, mask).
    args, kwargs: the call. expected: output name → the library's result (None where the library
    returns None). dtype: the inputs' float dtype (None for integer-only inputs). masked: whether
    the case has a mask (None when the exercise has none). dead: output name → boolean array,
    True at the positions of fully masked rows. scale_dim: D where a 1/√D scale applies.
    variants: () → [(words, {output: result})], the results of known mistakes, computed only when
    the learner's result is wrong. fd: the finite-difference check of a backward exercise.
    """
    label: str
    args: tuple
    expected: dict
    dtype: np.dtype | None = None
    masked: bool | None = None
    kwargs: dict = field(default_factory=dict)
    dead: dict = field(default_factory=dict)
    scale_dim: int | None = None
    variants: Callable[[], list] | None = None
    fd: FiniteDiff | None = None
    nonfinite_hint: str = ""
    none_why: str = ""


@dataclass(frozen=True)
class Exercise:
    """One exercise: the library function ``name`` written again by the learner.

    signature: the learner's ``def`` line without "def" and ":"; outputs: the names of what it
    returns, in order (one name: returned bare, not in a tuple); graded: the outputs compared
    (default: all); doc: the function's docstring in the skeleton (formula and shapes);
    cache_fields: (key, meaning) of the library forward's cache a backward receives;
    solution: dotted name of the library's own function; reference: dotted name of what the
    grader compares with when that is another function; preamble: module-level lines of the
    skeleton (e.g. a block size); make_cases: rng → the cases.
    """
    name: str
    title: str
    section: str
    signature: str
    outputs: tuple
    doc: str
    task: str
    hints: tuple
    solution: str
    make_cases: Callable[[np.random.Generator], list]
    graded: tuple | None = None
    cache_fields: tuple = ()
    cache_from: str = ""
    reference: str | None = None
    preamble: str = ""

    @property
    def graded_outputs(self) -> tuple:
        return self.outputs if self.graded is None else self.graded


def _wrap(text: str, first: str = "", rest: str = "") -> str:
    """``text`` filled to 96 columns, never breaking inside parentheses or brackets (where the
    shapes and the formulas are) nor at a hyphen."""
    kept, depth = [], 0
    for char in " ".join(text.split()):
        depth += (char in "([") - (char in ")]")
        kept.append("\0" if char == " " and depth > 0 else char)
    return textwrap.fill("".join(kept), 96, initial_indent=first, subsequent_indent=rest,
                         break_on_hyphens=False).replace("\0", " ")


def check_command(name: str, folder: str | None = None) -> str:
    """The command that grades exercise ``name`` (with ``--dir`` unless the default folder)."""
    where = "" if folder in (None, "exercises") else f" --dir {folder}"
    return f"python -m attention_np.exercises check {name}{where}"


def skeleton(ex: Exercise, number: int, total: int, folder: str | None = None) -> str:
    """The file ``start`` writes: the task, the cache's fields, hints, the command, and the
    function with its signature and docstring, raising NotImplementedError."""
    parts = [f"Exercise {number} of {total}: {ex.name}\n"
             f"{ex.title[0].upper() + ex.title[1:]} (article {ex.section}).", _wrap(ex.task)]
    if ex.cache_fields:
        width = max(len(key) for key, _ in ex.cache_fields) + 10
        lines = [_wrap(meaning, f"    {('cache[' + repr(key) + ']').ljust(width)} ",
                       " " * (width + 5)) for key, meaning in ex.cache_fields]
        parts.append(f"The cache is the dict that the library's forward returns,\n"
                     f"{ex.cache_from}:\n" + "\n".join(lines))
    hints = "\n".join(_wrap(hint, f"  {i}. ", "     ") for i, hint in enumerate(ex.hints, 1))
    parts.append("Hints (try without them first):\n" + hints)
    parts.append(f"Check your work:\n    {check_command(ex.name, folder)}\n"
                 f"The library's own solution, to read once you pass:\n    {ex.solution}")
    doc = textwrap.indent(ex.doc.strip(), "    ").lstrip()
    preamble = f"\n{ex.preamble.strip()}\n" if ex.preamble else ""
    return ('"""' + "\n\n".join(parts) + '\n"""\nimport numpy as np\n' + preamble + "\n\n"
            f"def {ex.signature}:\n    \"\"\"{doc}\n    \"\"\"\n"
            f"    raise NotImplementedError(\"write {ex.name}\")\n")
