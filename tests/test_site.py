"""The learning site (docs/) in a real headless Chromium, opened from file:// with no network:
every page loads with no failed request and no script error, all math is rendered by the
vendored MathJax (no $ or \\frac left in the text, no MathJax error), every image loads and
every internal link — with its #anchor — resolves.

Skipped, saying why, when the site has not been built (``.ci/run`` builds it before pytest:
``python -m sphinx -j auto -W --keep-going -b html docs docs/_build/html``) or when no Chromium
is installed.
"""
from __future__ import annotations

import re
import sys
from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs"))          # docs/ is not a package: its browser driver
from site_browser import Browser, find_browser  # noqa: E402

SITE = ROOT / "docs" / "_build" / "html"
SKIP_DIRS = {"_static", "_sources", "_images", "_sphinx_design_static"}
PAGES = sorted(p.relative_to(SITE).as_posix() for p in SITE.rglob("*.html")
               if not SKIP_DIRS & set(p.relative_to(SITE).parts)) if SITE.exists() else []

pytestmark = [
    pytest.mark.skipif(not (SITE / "index.html").exists(),
                       reason="site not built: run `pip install -e '.[docs]' && python -m sphinx "
                              "-j auto -W --keep-going -b html docs docs/_build/html` "
                              "(.ci/run does)"),
    pytest.mark.skipif(find_browser() is None, reason="no headless Chromium installed"),
]

# Runs in the page once MathJax is done: what the checks below need, as plain data.
REPORT_JS = r"""
(() => {
  const skip = el => el.closest('pre, code, script, style, textarea, mjx-container, .highlight');
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const raw = [];
  while (walker.nextNode()) {
    const node = walker.currentNode, text = node.textContent;
    if (!skip(node.parentElement) && /\$|\\frac|\\sum|\\alpha|\\(begin|mathbb)\b/.test(text))
      raw.push(text.trim().slice(0, 80));
  }
  return {
    math: document.querySelectorAll('mjx-container').length,
    unrendered: [...document.querySelectorAll('.math')].filter(
        m => !m.querySelector('mjx-container')).map(m => m.textContent.slice(0, 60)),
    mathErrors: document.querySelectorAll('mjx-merror, [data-mjx-error]').length,
    raw,
    images: [...document.images].map(i => ({src: i.src, ok: i.complete && i.naturalWidth > 0})),
    links: [...document.querySelectorAll('a[href]')].map(a => a.href),
    deadXrefs: [...document.querySelectorAll('.xref')].filter(x => !x.closest('a'))
        .map(x => x.textContent),
    figures: document.querySelectorAll('.cell_output img').length,
    views: [...document.querySelectorAll('iframe')].map(f =>
        f.contentDocument && f.contentDocument.body ? f.contentDocument.body.children.length : 0),
  };
})()
"""


@pytest.fixture(scope="module")
def reports():
    """Every page loaded once in one browser: {page: (failed requests, errors, report)}."""
    out = {}
    with Browser() as browser:
        for rel in PAGES:
            page = browser.open((SITE / rel).as_uri())
            out[rel] = (page.failed, page.errors, page.evaluate(REPORT_JS))
            page.close()
    return out


@lru_cache(maxsize=None)
def anchors(path: Path) -> frozenset:
    return frozenset(re.findall(r'\sid="([^"]+)"', path.read_text(encoding="utf-8")))


def test_the_site_has_every_chapter():
    chapters = [p for p in PAGES if p.startswith("chapters/")]
    numbers = {int(m.group(1)) for p in chapters if (m := re.match(r"chapters/(\d+)-", p))}
    assert numbers == set(range(1, 15)), f"chapters found: {sorted(numbers)}"
    assert {"api/index.html", "index.html", "search.html"} <= set(PAGES)


@pytest.mark.parametrize("page", PAGES)
def test_page_loads_offline_without_errors(reports, page):
    failed, errors, _ = reports[page]
    assert failed == [], f"failed requests on {page}: {failed}"
    assert errors == [], f"script errors on {page}: {errors}"


@pytest.mark.parametrize("page", PAGES)
def test_math_is_rendered(reports, page):
    _, _, r = reports[page]
    assert r["unrendered"] == [], f"math left unrendered on {page}: {r['unrendered'][:3]}"
    assert r["mathErrors"] == 0, f"MathJax errors on {page}"
    assert r["raw"] == [], f"raw TeX in the text of {page}: {r['raw'][:3]}"


@pytest.mark.parametrize("page", PAGES)
def test_images_and_internal_links_resolve(reports, page):
    _, _, r = reports[page]
    assert [i["src"] for i in r["images"] if not i["ok"]] == []
    assert r["deadXrefs"] == [], f"cross-references that link nowhere: {r['deadXrefs'][:5]}"
    for href in r["links"]:
        url = urlparse(href)
        if url.scheme != "file":
            assert url.scheme in ("http", "https", "mailto"), href
            continue
        target = Path(unquote(url.path))
        assert target.exists(), f"{page} links to a missing file: {href}"
        if url.fragment and target.suffix == ".html":
            assert unquote(url.fragment) in anchors(target), \
                f"{page}: no #{url.fragment} in {target.name}"


@pytest.mark.parametrize("page", [p for p in PAGES if re.match(r"chapters/\d+-[^/]+\.html$|"
                                                                r"chapters/11-projects/", p)])
def test_chapters_show_math_and_figures_computed_at_build_time(reports, page):
    _, _, r = reports[page]
    if page.endswith("11-projects/index.html"):
        return                                  # the section's table of contents
    assert r["math"] > 0, f"{page} has no rendered math"
    assert r["figures"] > 0, f"{page} has no figure drawn at build time"
    assert all(n > 0 for n in r["views"]), f"{page}: an embedded view is empty"


def test_no_page_loads_anything_from_the_network():
    pattern = re.compile(r"""<(?:script|link|img|iframe)\b[^>]*\s(?:src|href)="""
                         r"""["']((?:https?:)?//[^"']+)""")
    remote = {p: pattern.findall((SITE / p).read_text(encoding="utf-8")) for p in PAGES}
    assert {p: r for p, r in remote.items() if r} == {}
    assert (SITE / "_static" / "mathjax" / "tex-svg-full.js").stat().st_size > 1_000_000
