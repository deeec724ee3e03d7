"""The site's sources keep its contract without a build: every chapter has math, code included
from the library by object name (never pasted), and code cells executed at build time; the
included objects exist; the build is configured to vendor MathJax rather than load it."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
CHAPTERS = sorted((DOCS / "chapters").glob("[0-9][0-9]-*.md")) + sorted(
    p for p in (DOCS / "chapters" / "11-projects").glob("*.md") if p.name != "index.md")
INCLUDE = re.compile(r"```\{literalinclude\} (\S+)\n:pyobject: (\S+)")


def test_fourteen_chapters_and_five_project_pages():
    numbers = sorted(int(p.name[:2]) for p in (DOCS / "chapters").glob("[0-9][0-9]-*"))
    assert numbers == list(range(1, 15))
    assert len(CHAPTERS) == 13 + 5


@pytest.mark.parametrize("page", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_has_math_included_code_and_executed_cells(page):
    text = page.read_text(encoding="utf-8")
    assert re.search(r"\$[^$\n]+\$", text), "no math"
    assert INCLUDE.search(text), "no code included by object name"
    assert "```{code-cell}" in text, "nothing executed at build time"
    assert text.startswith("---\nfile_format: mystnb"), "not an executable MyST notebook"


@pytest.mark.parametrize("page", sorted(DOCS.rglob("*.md")), ids=lambda p: p.stem)
def test_included_objects_exist_and_no_function_is_pasted(page):
    text = page.read_text(encoding="utf-8")
    for rel, name in INCLUDE.findall(text):
        source = (page.parent / rel).resolve()
        tree = ast.parse(source.read_text(encoding="utf-8"))
        defined = {n.name for n in ast.walk(tree)
                   if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))}
        assert name in defined, f"{page.name}: {rel} has no {name}"
    for block in re.findall(r"```(?:python|ipython3|\{code-cell\}[^\n]*)\n(.*?)```", text, re.S):
        assert not re.search(r"^\s*def \w+\(", block, re.M), \
            f"{page.name}: a function is defined in a code block; include it from the source"


def test_math_is_vendored_not_fetched():
    conf = (DOCS / "conf.py").read_text(encoding="utf-8")
    assert re.search(r'^mathjax_path = "mathjax/tex-svg-full\.js"', conf, re.M)
    assert "http" not in re.search(r"^mathjax_path.*$", conf, re.M).group(0)


TRY_IT_PAGES = sorted(p for p in DOCS.rglob("*.md")
                      if "_build" not in p.parts and "## Try it" in p.read_text(encoding="utf-8"))


@pytest.mark.parametrize("page", TRY_IT_PAGES, ids=lambda p: p.stem)
def test_try_it_runs_and_its_questions_have_answers(page):
    """Issue 30: a "Try it" section is an executed cell followed by questions whose answers
    open on click (a dropdown admonition), never a code block that does not run."""
    section = page.read_text(encoding="utf-8").split("## Try it", 1)[1]
    section = re.split(r"^## ", section, flags=re.M)[0]
    first_fence = re.search(r"^```+\S*", section, re.M)
    assert first_fence and first_fence.group(0).endswith("{code-cell}"), \
        f"{page.name}: the Try-it code must be a code-cell, found {first_fence and first_fence.group(0)}"
    assert re.search(r":class: dropdown", section), f"{page.name}: no answer behind a click"
