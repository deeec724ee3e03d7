"""What an exercise is (:class:`Exercise`), what one graded call is (:class:`Case`), and the
skeleton file ``start`` writes.

An exercise is named after the library function the learner writes again; the grader calls the
learner's function on each case's arguments and compares what it returns with ``Case.expected``,
computed by the library's own function. Its texts are (English, Chinese) pairs; the skeleton is
written in the current language (:mod:`attention_np.exercises.lang`).
"""
from __future__ import annotations

import re
import textwrap
import unicodedata
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from attention_np.exercises.lang import pick, say
from attention_np.exercises.pages import ORDER, page


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
    written: name → position in ``args`` of an array the function must write in place (a KV
    cache); its value after the call is graded as an output of that name, against
    ``expected[name]``.
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
    written: dict = field(default_factory=dict)


def _is_pair(text) -> bool:
    return isinstance(text, tuple) and len(text) == 2 and all(isinstance(t, str) and t.strip()
                                                              for t in text)


@dataclass(frozen=True)
class Exercise:
    """One exercise: the library function ``function`` (by default ``name``) written again by
    the learner.

    title, task: (English, Chinese) pairs; hints: a tuple of such pairs; section: the article's
    section(s) it practises; page: the docname of the site page it belongs to
    (:mod:`attention_np.exercises.pages`); signature: the learner's ``def`` line without "def"
    and ":"; outputs: the names of what it returns, in order (one name: returned bare, not in a
    tuple); graded: the outputs compared (default: all); doc: the function's docstring in the
    skeleton (formula and shapes; the same in both languages); cache_fields: (key, (English,
    Chinese) meaning) of the library forward's cache a backward receives; solution: dotted name
    of the library's own function; reference: dotted name of what the grader compares with
    when that is another function; function: the name of the learner's function when it is
    not ``name`` (two exercises on one function); forbidden: more library functions the
    learner's file may not call (besides the solution and the reference: e.g. its trusting
    core); preamble: module-level lines of the skeleton (e.g. a block size); make_cases: rng →
    the cases.
    """
    name: str
    title: tuple
    section: str
    page: str
    signature: str
    outputs: tuple
    doc: str
    task: tuple
    hints: tuple
    solution: str
    make_cases: Callable[[np.random.Generator], list]
    graded: tuple | None = None
    cache_fields: tuple = ()
    cache_from: str = ""
    reference: str | None = None
    preamble: str = ""
    function: str = ""
    forbidden: tuple = ()

    def __post_init__(self):
        page(self.page)                                   # a page of the site, or UnknownPage
        texts = [self.title, self.task, *self.hints, *(m for _, m in self.cache_fields)]
        if not all(_is_pair(t) for t in texts):
            raise ValueError(f"{self.name}: every text must be an (English, Chinese) pair of "
                             "non-empty strings")
        if not self.function:
            object.__setattr__(self, "function", self.name)

    @property
    def graded_outputs(self) -> tuple:
        return self.outputs if self.graded is None else self.graded

    @property
    def chapter_order(self) -> int:
        return ORDER[self.page]

    @property
    def forbidden_names(self) -> tuple:
        """Dotted names of the library functions a learner's file may not use: the solution,
        the reference it is graded against, and ``forbidden``."""
        return tuple(dict.fromkeys((self.solution,) + ((self.reference,) if self.reference
                                                       else ()) + tuple(self.forbidden)))

    def title_in(self, lang: str | None = None) -> str:
        return pick(self.title, lang)

    def task_in(self, lang: str | None = None) -> str:
        """The task as one paragraph (the source's line breaks joined)."""
        return flow(pick(self.task, lang))

    def hints_in(self, lang: str | None = None) -> list[str]:
        return [flow(pick(hint, lang)) for hint in self.hints]

    def cache_in(self, lang: str | None = None) -> list[tuple[str, str]]:
        return [(key, flow(pick(meaning, lang))) for key, meaning in self.cache_fields]


_CJK = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef\u3000-\u303f]")
_CJK_PUNCT = re.compile(r"[\uff00-\uffef\u3000-\u303f]")


def flow(text: str) -> str:
    """``text`` as one paragraph: runs of spaces become one, and a line break becomes a space
    — except between two Chinese characters, or beside Chinese punctuation, where it goes."""
    out = ""
    for line in text.strip().splitlines():
        line = " ".join(line.split())
        if not line:
            continue
        if out:
            a, b = out[-1], line[0]
            both = _CJK.match(a) and _CJK.match(b)
            out += "" if both or _CJK_PUNCT.match(a) or _CJK_PUNCT.match(b) else " "
        out += line
    return out


def width(text: str) -> int:
    """Columns ``text`` takes on a terminal: two for a wide (Chinese) character."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def pad(text: str, columns: int) -> str:
    """``text`` padded with spaces to ``columns`` terminal columns (ljust by display width)."""
    return text + " " * max(0, columns - width(text))


def _protect(text: str) -> str:
    """``text`` with the spaces inside parentheses and brackets (shapes, formulas) made
    unbreakable (a NUL, put back after wrapping)."""
    kept, depth = [], 0
    for char in text:
        depth += (char in "([") - (char in ")]")
        kept.append("\0" if char == " " and depth > 0 else char)
    return "".join(kept)


# Chinese text breaks between any two characters, but never before a closing mark nor after an
# opening one (the rules of Chinese typesetting).
_NO_LINE_START = set("，。、：；！？）》」』”’…—%")
_NO_LINE_END = set("（《「『“‘")
_TOKEN = re.compile(r"\s+|[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef\u3000-\u303f“”‘’…—]"
                    r"|[^\s\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef\u3000-\u303f“”‘’…—]+")


def _wrap_cjk(text: str, first: str, rest: str, columns: int = 96) -> str:
    """Fill Chinese ``text`` to ``columns`` terminal columns (a Chinese character is two)."""
    tokens = []
    for token in _TOKEN.findall(text):
        if tokens and (token in _NO_LINE_START or tokens[-1][-1] in _NO_LINE_END) \
                and not token.isspace() and not tokens[-1].isspace():
            tokens[-1] += token
        else:
            tokens.append(token)
    lines, line = [], first
    for token in tokens:
        if token.isspace():
            if line.strip():
                line += " "
            continue
        if width(line.rstrip()) + width(token) > columns and line.strip():
            lines.append(line.rstrip())
            line = rest
        line += token
    lines.append(line.rstrip())
    return "\n".join(lines)


def _wrap(text: str, first: str = "", rest: str = "") -> str:
    """``text`` filled to 96 columns, never breaking inside parentheses or brackets (where the
    shapes and the formulas are) nor at a hyphen; Chinese text breaks between characters."""
    if _CJK.search(text):
        return _wrap_cjk(_protect(flow(text)), first, rest).replace("\0", " ")
    return textwrap.fill(_protect(" ".join(text.split())), 96, initial_indent=first,
                         subsequent_indent=rest, break_on_hyphens=False).replace("\0", " ")


def check_command(name: str, folder: str | None = None) -> str:
    """The command that grades exercise ``name`` (with ``--dir`` unless the default folder)."""
    where = "" if folder in (None, "exercises") else f" --dir {folder}"
    return f"python -m attention_np.exercises check {name}{where}"


def skeleton(ex: Exercise, number: int, total: int, folder: str | None = None) -> str:
    """The file ``start`` writes, in the current language: the task, the cache's fields, hints
    and the command, then the function with its signature and docstring (formula and shapes,
    the same in every language), raising NotImplementedError. It never shows the solution."""
    title, where = ex.title_in(), page(ex.page).heading()
    parts = [say(f"Exercise {number} of {total}: {ex.name}\n"
                 f"{title[0].upper() + title[1:]} (article {ex.section}; {where}).",
                 f"练习 {number}/{total}：{ex.name}\n{title}（原文 {ex.section}；本站 {where}）。"),
             _wrap(ex.task_in())]
    if ex.cache_fields:
        column = max(len(key) for key, _ in ex.cache_fields) + 10
        lines = [_wrap(meaning, f"    {('cache[' + repr(key) + ']').ljust(column)} ",
                       " " * (column + 5)) for key, meaning in ex.cache_in()]
        parts.append(say(f"The cache is the dict that the library's forward returns,\n"
                         f"{ex.cache_from}:\n",
                         f"cache 是代码库的前向函数返回的字典，\n{ex.cache_from}：\n")
                     + "\n".join(lines))
    hints = "\n".join(_wrap(hint, f"  {i}. ", "     ")
                      for i, hint in enumerate(ex.hints_in(), 1))
    parts.append(say("Hints (try without them first):\n", "提示（先试着不看）：\n") + hints)
    parts.append(say(f"Check your work:\n    {check_command(ex.name, folder)}\n"
                     "Once you pass, check shows where the library's own solution lives.",
                     f"检查你的答案：\n    {check_command(ex.name, folder)}\n"
                     "通过之后，check 会告诉你代码库自己的解答在哪里。"))
    doc = textwrap.indent(ex.doc.strip(), "    ").lstrip()
    preamble = f"\n{ex.preamble.strip()}\n" if ex.preamble else ""
    return ('"""' + "\n\n".join(parts) + '\n"""\nimport numpy as np\n' + preamble + "\n\n"
            f"def {ex.signature}:\n    \"\"\"{doc}\n    \"\"\"\n"
            f"    raise NotImplementedError(\"write {ex.function}\")\n")
