"""The "Exercises" section that docs/_ext/exercise_sections.py appends to every chapter and
application page, and the "✎ exercise" links beside formulas, in both languages.

A small site is built here in a temporary folder (plain MyST pages, no notebook execution, a
few seconds): two pages with exercises — one showing real library code through
``literalinclude :pyobject:`` below a formula —, a chapter without exercises, a page the
exercises do not know yet, and the exercises page (docs/site_code/exercises.py's HTML). Its
English and Chinese editions are opened in headless Chromium from file:// and every link of
the sections and beside the formulas is followed to its #anchor. When the real site has been
built (docs/_build/html), the same is checked on two of its chapters in both editions.
Skipped, saying why, without myst_parser or Chromium.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs"))
from site_browser import Browser, find_browser  # noqa: E402

SITE = ROOT / "docs" / "_build" / "html"
needs_browser = pytest.mark.skipif(find_browser() is None, reason="no headless Chromium installed")

CONF = f"""
import sys
sys.path.insert(0, {str(ROOT / 'docs' / '_ext')!r})
sys.path.insert(0, {str(ROOT)!r})
extensions = ["myst_parser", "exercise_sections"]
myst_enable_extensions = ["dollarmath", "amsmath"]
source_suffix = {{".rst": "restructuredtext", ".md": "markdown"}}
html_theme = "basic"
"""
INDEX = """# Home

```{toctree}
chapters/01-why-attention
chapters/03-soft-attention
applications/knowledge-graphs
applications/overfitting
exercises
```
"""
SOFT = """# Soft attention

## The backward pass

$$
dx = y \\odot (dy - \\langle dy, y \\rangle)
$$

That is the whole of `softmax_backward`:

```{literalinclude} REL/attention_np/core.py
:pyobject: softmax_backward
:language: python
```
"""
PAGES = {
    "index.md": INDEX,
    "chapters/01-why-attention.md": "# Why attention\n\nNo exercise here.\n",
    "chapters/03-soft-attention.md": SOFT,
    "applications/knowledge-graphs.md": "# Knowledge graphs\n\nGraph attention.\n",
    "applications/overfitting.md": "# Overfitting\n\nA page added after the exercises.\n",
    "exercises.rst": "Exercises\n=========\n\n.. raw:: html\n   :file: exercises.html\n",
}

# In the page: the links of its Exercises section and beside its formulas.
LINKS_JS = r"""
(() => {
  const section = document.getElementById('exercises');
  return {
    title: section ? section.querySelector('h2').textContent.replace('¶', '').trim() : null,
    items: section ? [...section.querySelectorAll('li.exercise-item')].map(li => li.id) : [],
    links: [...document.querySelectorAll('#exercises a[href], p.exercise-link a[href]')]
        .map(a => a.href),
    formulaLinks: [...document.querySelectorAll('p.exercise-link a')].map(a => a.textContent),
    afterMath: [...document.querySelectorAll('p.exercise-link')].map(p =>
        p.previousElementSibling ? p.previousElementSibling.className : ''),
  };
})()
"""
TARGET_JS = r"""
(() => {
  const id = decodeURIComponent(location.hash.slice(1));
  return {found: id === '' || document.getElementById(id) !== null, title: document.title};
})()
"""


def _build(src: Path, out: Path, language: str) -> None:
    done = subprocess.run([sys.executable, "-m", "sphinx", "-q", "-b", "html", "-D",
                           f"language={language}", str(src), str(out)],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.fixture(scope="module")
def small_site(tmp_path_factory):
    """{language: output folder} of the small site, built in both languages."""
    pytest.importorskip("myst_parser", reason="the docs extra is not installed")
    from site_code.exercises import render
    src = tmp_path_factory.mktemp("site")
    rel = os.path.relpath(ROOT, src / "chapters")
    for name, text in PAGES.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text(text.replace("REL", rel), encoding="utf-8")
    (src / "exercises.html").write_text(render(), encoding="utf-8")
    (src / "conf.py").write_text(CONF, encoding="utf-8")
    out = {"en": src / "_build" / "en", "zh": src / "_build" / "zh"}
    _build(src, out["en"], "en")
    _build(src, out["zh"], "zh_CN")
    return out


def _html(site: Path, page: str) -> str:
    return (site / f"{page}.html").read_text(encoding="utf-8")


def _text(html: str) -> str:
    """The page's text: tags dropped (an inline literal wraps each word in a span)."""
    return re.sub(r"<[^>]+>", "", html)


@pytest.mark.parametrize("lang, title", [("en", "Exercises"), ("zh", "练习")])
def test_every_chapter_and_application_page_ends_with_its_exercises(small_site, lang, title):
    from attention_np.exercises import catalogue
    site = small_site[lang]
    soft = _html(site, "chapters/03-soft-attention")
    assert f">{title}<" in soft
    names = [e["name"] for e in catalogue() if e["page"] == "chapters/03-soft-attention"]
    listed = re.findall(r'<li class="exercise-item" id="exercise-(\w+)"', soft)
    assert listed == names
    for name in names:
        assert f"python -m attention_np.exercises start {name}" in _text(soft)
        assert f"python -m attention_np.exercises check {name}" in _text(soft)
    graphs = _html(site, "applications/knowledge-graphs")
    assert re.findall(r'id="exercise-(\w+)"', graphs) == ["edge_softmax_forward",
                                                           "edge_softmax_backward"]
    none = _html(site, "chapters/01-why-attention")
    assert 'class="exercise-none"' in none                  # points to the nearest ones
    assert 'href="../chapters/03-soft-attention.html#exercises"' in none
    assert 'href="../exercises.html"' in _html(site, "applications/overfitting")
    assert 'class="exercise' not in _html(site, "index")   # only chapters and applications


def test_the_formula_gets_a_link_to_its_exercise(small_site):
    soft = _html(small_site["en"], "chapters/03-soft-attention")
    math, link = soft.index('class="math'), soft.index('class="exercise-link"')
    code = soft.index('<div class="highlight')
    assert math < link < code                              # after the formula, before the code
    assert '<a class="reference internal" href="#exercise-softmax_backward">✎ exercise: ' \
           'softmax_backward</a>' in soft
    assert "✎ 练习：softmax_backward" in _html(small_site["zh"], "chapters/03-soft-attention")


def _local(failed: list) -> list:
    """The failed requests for the site's own files (the small site's MathJax comes from a CDN
    this offline machine cannot reach; the real site vendors it, tests/test_site.py checks)."""
    return [f for f in failed if str(f).startswith("file:")]


def _follow(browser, url: str) -> list[str]:
    """Open ``url``; the problems with its section's links, each followed to its anchor."""
    page = browser.open(url)
    found = page.evaluate(LINKS_JS)
    problems = [f"{url}: failed request {f}" for f in _local(page.failed)]
    page.close()
    if not found["links"]:
        problems.append(f"{url}: no Exercises links")
    for href in dict.fromkeys(found["links"]):
        if not href.startswith("file://"):
            problems.append(f"{url}: link {href} leaves the site")
            continue
        target = browser.open(href)
        where = target.evaluate(TARGET_JS)
        if _local(target.failed) or not where["found"]:
            problems.append(f"{url}: link {href} → failed {_local(target.failed)}, anchor "
                            f"found {where['found']}")
        target.close()
    return problems


@needs_browser
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_sections_links_work_in_chromium(small_site, lang):
    site = small_site[lang]
    with Browser() as browser:
        problems = []
        for page in ("chapters/03-soft-attention", "applications/knowledge-graphs",
                     "chapters/01-why-attention"):
            problems += _follow(browser, (site / f"{page}.html").as_uri())
        page = browser.open((site / "chapters/03-soft-attention.html").as_uri())
        found = page.evaluate(LINKS_JS)
        page.close()
    assert not problems, "\n".join(problems)
    assert found["title"] == {"en": "Exercises", "zh": "练习"}[lang]
    assert found["items"][:2] == ["exercise-softmax_forward", "exercise-softmax_backward"]
    assert found["afterMath"] and all("math" in c for c in found["afterMath"])


@needs_browser
@pytest.mark.skipif(not (SITE / "index.html").exists(),
                    reason="site not built: run `python -m sphinx -j auto -W --keep-going -b html "
                           "docs docs/_build/html` (.ci/run does)")
@pytest.mark.parametrize("edition", ["", "zh_CN/"])
def test_the_built_site_s_sections_links_work(edition):
    pages = [f"{edition}chapters/03-soft-attention.html",
             f"{edition}applications/knowledge-graphs.html"]
    if not all((SITE / p).exists() for p in pages):
        pytest.skip(f"{pages} not in the built site")
    with Browser() as browser:
        problems = [p for page in pages for p in _follow(browser, (SITE / page).as_uri())]
    assert not problems, "\n".join(problems)


def test_the_real_pages_formulas_that_get_a_link():
    """Read from the pages' sources (no build): the code each page shows by ``:pyobject:`` and
    the exercise its formula links to."""
    sys.path.insert(0, str(ROOT / "docs" / "_ext"))
    import exercise_sections as ext
    by_function = {}
    for entry in ext._entries():
        by_function.setdefault(entry["function"], entry)

    def linked(page):
        source = (ROOT / "docs" / f"{page}.md").read_text(encoding="utf-8")
        shown = re.findall(r":pyobject: (\w+)", source)
        return {ext._exercise_of(name, by_function)["name"] for name in shown
                if ext._exercise_of(name, by_function)}

    assert linked("chapters/03-soft-attention") >= {"softmax_forward", "softmax_backward",
                                                    "soft_attention_backward"}
    assert linked("chapters/08-multi-head-attention") >= {
        "split_heads", "merge_heads", "multi_head_attention_forward",
        "multi_head_attention_backward"}
    assert "decoder_block_forward" in linked("chapters/09-transformer")
    assert "cached_attention" in linked("applications/induction-heads")
    assert ext._exercise_of("encoder_block_core", by_function) is None   # no such exercise
